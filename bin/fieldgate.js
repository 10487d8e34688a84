#!/usr/bin/env -S node --max-semi-space-size=2
// A 2 MiB young generation keeps memory per idle MQTT connection at a few KiB (Pi-sized RAM) at
// little cost in throughput: see bench/results. npm start and the Dockerfile pass the same option.
// Thin launcher: the CLI is compiled to dist/ by `npm install` (the prepare script).
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
