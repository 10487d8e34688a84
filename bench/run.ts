// `npm run bench -- [suite] [options]`: broker (default), bridge or devices.
// Suites are imported only when chosen, so one missing or broken suite does not stop the others.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

const suites: Record<string, { file: string; what: string }> = {
  broker: { file: 'broker/run.ts', what: 'fieldgate vs Mosquitto vs Aedes: throughput, latency, memory, connects' },
  bridge: { file: 'bridge/run.ts', what: 'upstream bridge' },
  devices: { file: 'devices/poll.ts', what: 'device polling' },
  console: { file: 'console/run.ts', what: 'web console: the gateway\'s CPU with no browser and with one open console; asset size' },
  footprint: { file: 'footprint/run.ts', what: 'RSS at idle, per idle connection, CPU per connect, idle CPU and wakeups, vs Mosquitto' },
  storage: { file: 'storage/run.ts', what: 'storage writes per forwarded message (steady, outage), RSS at idle, vs Mosquitto' },
};

function usage(): string {
  return ['usage: npm run bench -- [suite] [options]', ...Object.entries(suites).map(([name, s]) => `  ${name.padEnd(8)} ${s.what} (bench/${s.file})`)].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const first = args[0];
  if (first === '--help' || first === '-h') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const name = first === undefined || first.startsWith('-') ? 'broker' : first;
  const rest = first === undefined || first.startsWith('-') ? args : args.slice(1);
  const suite = suites[name];
  if (!suite) throw new Error(`unknown suite "${name}"\n${usage()}`);
  const file = path.join(here, suite.file);
  if (!existsSync(file)) throw new Error(`the ${name} suite is not there yet (bench/${suite.file} is missing)`);
  const module = (await import(file)) as { run?: (args: string[]) => Promise<void>; default?: (args: string[]) => Promise<void> };
  const entry = module.run ?? module.default;
  // A suite without an exported run() does its work when imported.
  if (entry) await entry(rest);
}

// Exit through process.exit so that suites' 'exit' hooks stop the processes they started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping\n`);
    process.exit(130);
  });
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error: Error) => {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(1);
  },
);
