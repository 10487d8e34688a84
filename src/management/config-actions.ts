// `mapping/get` and `mapping/save`: a running device-mapping file's text, and replacing it after the
// checks `fieldgate check` makes (a bad one is refused with those errors; the running one is kept).
import type { ActionResult, Handlers } from './actions.js';
import type { MappingFiles } from './mapping-files.js';
import { requestError, type RequestError } from './requests.js';

export interface ConfigSources {
  mappingFiles: MappingFiles;
  /** Reloads as SIGHUP does (the device mappings that changed restart). */
  reload(): Promise<{ ok: boolean; errors: string[]; restartNeeded: string[] }>;
}

const fail = (source: string, path: string, message: string): ActionResult => ({ ok: false, errors: [requestError(source, path, message)] });

export function configHandlers(s: ConfigSources): Pick<Handlers, 'mapping/get' | 'mapping/save'> {
  const fileOf = (name: string | undefined, source: string): string | ActionResult => {
    const files = s.mappingFiles.files();
    if (name === undefined) return files[0] ?? fail(source, 'file', 'the gateway runs no device-mapping file');
    return s.mappingFiles.resolve(name) ?? fail(source, 'file', `not a mapping file the gateway runs (got ${JSON.stringify(name)}; files: ${files.join(', ') || 'none'})`);
  };
  // One save at a time: two racing saves must not both validate against the same old text.
  let saving: Promise<unknown> = Promise.resolve();
  return {
    'mapping/get': (body, source) => {
      const file = fileOf(body.file, source);
      if (typeof file !== 'string') return file;
      try {
        return { ok: true, data: { files: s.mappingFiles.files(), file, text: s.mappingFiles.read(file) } };
      } catch (err) {
        return fail(source, 'file', `cannot read ${file}: ${(err as Error).message}`);
      }
    },
    'mapping/save': (body, source) => {
      const run = async (): Promise<ActionResult> => {
        const file = fileOf(body.file, source);
        if (typeof file !== 'string') return file;
        let saved;
        try {
          saved = s.mappingFiles.save(file, body.text);
        } catch (err) {
          return fail(source, 'file', `cannot write ${file}: ${(err as Error).message}; the running mapping is kept`);
        }
        if (!saved.ok) {
          const errors: RequestError[] = saved.errors.map((e) => ({ path: e.path, message: e.message, text: e.path ? `${e.file}: ${e.path}: ${e.message}` : `${e.file}: ${e.message}`, file: e.file }));
          return { ok: false, errors };
        }
        const reloaded = await s.reload();
        if (!reloaded.ok) return { ok: false, errors: reloaded.errors.map((text) => ({ path: '', message: text, text })) };
        return { ok: true, data: { file, previous: saved.previous, reloaded: true, restartNeeded: reloaded.restartNeeded } };
      };
      const next = saving.then(run, run);
      saving = next.catch(() => undefined);
      return next;
    },
  };
}
