// mkdir -p (the data directory, the demo mapping, `schema --out`) without fs.mkdirSync's `recursive`: on Node 20 that loops for ever on paths such as
// /proc/x (ENOENT for the child of a directory that exists), at 100% CPU.
import fs from 'node:fs';
import path from 'node:path';

/** Creates `dir` and its missing parents; throws the first real error (EACCES, ENOENT, ENOTDIR …). */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  if (missing.length === 0 && !fs.statSync(at).isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
  for (const d of missing) fs.mkdirSync(d);
}
