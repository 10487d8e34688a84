#!/usr/bin/env -S node --max-semi-space-size=2 --v8-pool-size=1 --expose-gc
// A 2 MiB young generation keeps memory per idle MQTT connection at a few KiB (Pi-sized RAM) at
// little cost in throughput: see bench/results. One V8 worker thread instead of four: each worker's
// malloc arena kept up to 5 MiB of the optimizing compiler's freed memory (−5 MiB RSS at idle,
// bench/results/2026-12-04-footprint-rss.md). --expose-gc lets the gateway run one full collection
// once it is quiet after start-up (src/gateway/settle-gc.ts). npm start and the Dockerfile
// pass the same options.
// Thin launcher: the CLI is compiled to dist/ and bundled into dist/bundle/ by `npm install` (the
// prepare script). The bundle costs ~3 MiB less heap (scripts/build-bundle.mjs); it runs only when it
// was built from the dist/ that is there now (tsc rewrites dist/cli.js on every build), else dist/cli.js.
import { statSync } from 'node:fs';

const mtime = (relative) => {
  try { return statSync(new URL(relative, import.meta.url)).mtimeMs; } catch { return -1; }
};
const entry = mtime('../dist/bundle/cli.js') >= mtime('../dist/cli.js') ? '../dist/bundle/cli.js' : '../dist/cli.js';
const { main } = await import(entry);

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
