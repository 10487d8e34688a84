// Makes sure dist/ and its bundle are up to date before a bench runs the gateway as `fieldgate run`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function ensureGatewayBuilt(root: string): void {
  const dist = join(root, 'dist', 'cli.js');
  const newest = (dir: string): number => Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const bundle = join(root, 'dist', 'bundle', 'cli.js');
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest(join(root, 'src'))) {
    process.stdout.write('building dist/ (npx tsc -p tsconfig.build.json)\n');
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  }
  // bin/fieldgate.js runs the bundle of dist/ when it is up to date (scripts/build-bundle.mjs).
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= statSync(dist).mtimeMs) return;
  process.stdout.write('bundling dist/ into dist/bundle/ (node scripts/build-bundle.mjs)\n');
  execFileSync(process.execPath, [join(root, 'scripts', 'build-bundle.mjs')], { cwd: root, stdio: 'inherit' });
}
