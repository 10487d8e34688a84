// The device-mapping files of the running gateway, for `mapping/get`, `mapping/save` and `bus/point`:
// only the files it runs can be read or written. A new text is checked as `fieldgate check` checks the
// mappings (all running files together: ids, buses, topics, overlaps), from a temporary file beside the
// real one so that relative `include`s resolve the same; a good one replaces the file atomically and
// the old text is kept as `<file>.previous`.
import fs from 'node:fs';
import path from 'node:path';
import { loadDeviceMappings } from '../devices/index.js';
import { formatMappingError, type MappingError } from '../devices/mapping-errors.js';

export type Validation = { ok: true } | { ok: false; errors: MappingError[] };

let temporaryCount = 0;

export class MappingFiles {
  constructor(private readonly running: () => string[]) {}

  files(): string[] {
    return this.running();
  }

  /** The running file a request names: its path as listed, or its file name when only one has it. */
  resolve(name: string): string | undefined {
    const files = this.files();
    if (files.includes(name)) return name;
    const byBase = files.filter((f) => path.basename(f) === name || f.endsWith(`/${name}`));
    return byBase.length === 1 ? byBase[0] : undefined;
  }

  read(file: string): string {
    return fs.readFileSync(file, 'utf8');
  }

  /** Checks `text` as the new content of `file`, with the other running files as they are. Writes nothing that stays. */
  validate(file: string, text: string): Validation {
    const temporary = this.temporaryPath(file);
    try {
      fs.writeFileSync(temporary, text, { mode: 0o600 });
      const result = loadDeviceMappings(this.files().map((f) => (f === file ? temporary : f)));
      if (result.ok) return { ok: true };
      return { ok: false, errors: result.details.map((e) => ({ ...e, file: e.file === temporary ? file : e.file, message: e.message.split(temporary).join(file) })) };
    } finally {
      fs.rmSync(temporary, { force: true });
    }
  }

  /** Validates, then replaces the file atomically, keeping the old text as `<file>.previous`. */
  save(file: string, text: string): Validation & { previous?: string } {
    const checked = this.validate(file, text);
    if (!checked.ok) return checked;
    const previous = `${file}.previous`;
    const dir = path.dirname(file);
    if (fs.existsSync(file)) writeAtomically(previous, fs.readFileSync(file), this.temporaryPath(previous));
    writeAtomically(file, Buffer.from(text, 'utf8'), this.temporaryPath(file));
    syncDirectory(dir);
    return { ok: true, previous };
  }

  private temporaryPath(file: string): string {
    return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++temporaryCount}.tmp`);
  }
}

export function errorLines(errors: MappingError[]): string[] {
  return errors.map(formatMappingError);
}

function writeAtomically(file: string, data: Buffer, temporary: string): void {
  let mode = 0o644;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    // a new file
  }
  const fd = fs.openSync(temporary, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(temporary, file);
  } catch (err) {
    fs.rmSync(temporary, { force: true });
    throw err;
  }
}

function syncDirectory(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename itself is still atomic.
  }
}
