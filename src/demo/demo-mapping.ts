// The demo device mapping with the simulated meter's real port filled in.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import template from './demo-mapping.json' with { type: 'json' };
import { makeDirectory } from '../make-directory.js';

export type DemoMapping = typeof template;

/** The demo mapping (src/demo/demo-mapping.json) pointing its "demo" bus at host:port. */
export function demoMapping(port: number, host = '127.0.0.1'): DemoMapping {
  const mapping = structuredClone(template);
  for (const bus of mapping.buses) {
    if (bus.id === 'demo') {
      bus.host = host;
      bus.port = port;
    }
  }
  return mapping;
}

/** Writes the demo mapping for `port` to <dir>/demo-meter.json (for loaders that read files) and returns the path. */
export function writeDemoMapping(dir: string, port: number, host = '127.0.0.1'): string {
  makeDirectory(dir);
  const file = join(dir, 'demo-meter.json');
  writeFileSync(file, JSON.stringify(demoMapping(port, host), null, 2) + '\n');
  return file;
}
