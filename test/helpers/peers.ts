import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const installHints: Record<string, string> = {
  mosquitto: 'apt-get install -y mosquitto',
  mosquitto_pub: 'apt-get install -y mosquitto-clients',
  mosquitto_sub: 'apt-get install -y mosquitto-clients',
  mosquitto_rr: 'apt-get install -y mosquitto-clients',
  socat: 'apt-get install -y socat',
};

/** True when an executable called `name` is on PATH. */
export function toolInPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const warned = new Set<string>();

/**
 * Whether a Debian peer tool is available. Under CI=true a missing tool is an error (the test file
 * fails); elsewhere it returns false and prints a one-line reason, for `describe.skipIf(!requireTool(x))`.
 */
export function requireTool(name: string): boolean {
  if (toolInPath(name)) return true;
  const hint = installHints[name] ?? `install ${name}`;
  if (process.env.CI === 'true') {
    throw new Error(`${name} is required under CI=true but is not in PATH (${hint})`);
  }
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(`skipping tests that need ${name}: not in PATH (${hint})`);
  }
  return false;
}

/**
 * Resolves each file's "$schema" as an editor does (relative to the file) and validates the file
 * against it with python3-jsonschema (Debian); returns one result per file.
 */
export function editorSchemaCheck(files: string[]): Array<{ file: string; schema: string | null; errors: string[] }> {
  const script = fileURLToPath(new URL('editor_schema_check.py', import.meta.url));
  const result = spawnSync('/usr/bin/python3', [script, ...files], { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  if (result.status !== 0 && result.status !== 1) throw new Error(`editor_schema_check.py: exit ${result.status}: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { file: string; schema: string | null; errors: string[] });
}

/** Whether python3-jsonschema is there (the rule of requireTool: under CI=true its absence fails). */
export function requireJsonschema(): boolean {
  if (spawnSync('/usr/bin/python3', ['-c', 'import jsonschema.validators'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.CI === 'true') throw new Error('python3-jsonschema is required under CI=true (apt-get install -y python3-jsonschema)');
  if (!warned.has('jsonschema')) {
    warned.add('jsonschema');
    console.warn('skipping tests that need python3-jsonschema: not installed (apt-get install -y python3-jsonschema)');
  }
  return false;
}
