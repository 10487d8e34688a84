// fieldgate's broker alone in a process, as the benchmark runs it: default options, state in
// memory (dataDir null), errors to stderr (its QoS 0 drop warnings would interleave with the
// progress output; drops show up as lost messages anyway). Usage: node fieldgate.mjs <path of broker.js or broker.ts>
// (the orchestrator passes dist/broker/broker.js, or src/broker/broker.ts when run through tsx).
// Prints {"port":N} on stdout once listening; SIGTERM closes the broker and exits.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

interface BrokerLike {
  start(): Promise<void>;
  listen(options: { port: number; host: string }): Promise<{ port: number }>;
  close(): Promise<void>;
}
type BrokerConstructor = new (options: Record<string, unknown>) => BrokerLike;

const modulePath = process.argv[2];
if (!modulePath) {
  process.stderr.write('usage: fieldgate.ts <path to broker module>\n');
  process.exit(2);
}
const { Broker } = (await import(pathToFileURL(modulePath).href)) as { Broker: BrokerConstructor };
const logger = pino({ level: 'error' }, pino.destination(2));
const broker = new Broker({ dataDir: null, logger });
await broker.start();
const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ port })}\n`);

// FIELDGATE_BENCH_LOOP_DELAY=1: the event loop's delay percentiles go to stderr at exit (for profiling fairness).
const loopDelay = process.env.FIELDGATE_BENCH_LOOP_DELAY ? monitorEventLoopDelay({ resolution: 1 }) : null;
loopDelay?.enable();
process.on('exit', () => {
  if (!loopDelay) return;
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  process.stderr.write(`event loop delay: p50 ${ms(loopDelay.percentile(50))} p99 ${ms(loopDelay.percentile(99))} max ${ms(loopDelay.max)} ms\n`);
});

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  broker.close().then(() => process.exit(0), () => process.exit(1));
});
