// Builds the console's assets for a test that runs before `npm run build` did (a single test file).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../gateway/helpers.js';

/** The console's assets, built by `npm run build`: built here too when a test runs before it. */
export function ensureConsoleBuilt(): void {
  const built = path.join(ROOT, 'dist', 'console-ui', 'app.js');
  const sources = path.join(ROOT, 'src', 'console', 'ui');
  const newest = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true })
    .reduce((t, e) => Math.max(t, e.isDirectory() ? newest(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).mtimeMs), 0);
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newest(sources)) return;
  execFileSync('flock', [path.join(os.tmpdir(), 'fieldgate-console-build.lock'), process.execPath, path.join(ROOT, 'scripts', 'build-console.mjs')], { cwd: ROOT, stdio: 'inherit', timeout: 120_000 });
}
