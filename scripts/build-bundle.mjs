// Bundles the compiled CLI (dist/cli.js and what it imports) into dist/bundle/, which bin/fieldgate.js
// runs: one ES module for the start-up path plus a chunk per lazily imported part (bridge, metrics,
// demo, …), zod included and tree-shaken, whitespace and syntax minified, ASCII only. V8 keeps every
// module's source text on its heap (as two bytes a character when a file has one non-Latin-1
// character, as our comments do) and a record per module: the bundle takes the idle gateway's heap
// from ~17 to ~14 MiB used (bench/results/2026-12-04-footprint-rss.md). Identifiers are kept, so
// stack traces name the functions; dist/bundle/*.js.map maps them back to src/ under
// `node --enable-source-maps`. The other dependencies stay in node_modules: native addons
// (better-sqlite3, serialport) and CommonJS packages that measured no smaller bundled.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'bundle');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const bundled = new Set(['zod']);
fs.rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { cli: path.join(root, 'dist', 'cli.js') },
  outdir: out,
  bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  external: Object.keys(pkg.dependencies).filter((name) => !bundled.has(name)),
  minifyWhitespace: true, minifySyntax: true, charset: 'ascii', legalComments: 'none',
  sourcemap: 'linked', logLevel: 'warning',
});
