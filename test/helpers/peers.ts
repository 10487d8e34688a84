import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const installHints: Record<string, string> = {
  mosquitto: 'apt-get install -y mosquitto',
  mosquitto_pub: 'apt-get install -y mosquitto-clients',
  mosquitto_sub: 'apt-get install -y mosquitto-clients',
  mosquitto_rr: 'apt-get install -y mosquitto-clients',
  socat: 'apt-get install -y socat',
  chromium: 'apt-get install -y chromium',
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
