// The gateway under test, as its own process so its RSS can be measured: a durable Broker plus one bridge.
// Argument: JSON { dataDir, remoteUrl, window? }. Prints "READY <port>"; answers "state" on stdin with one JSON line.
// env: BENCH_DURABILITY (full, normal, off; default full), BENCH_WINDOW (the bridge inflightWindow when window is not given).
import { createInterface } from 'node:readline';
import { Broker } from '../../src/broker/broker.js';
import { startBridge } from '../../src/bridge/index.js';
import { createLogger } from '../../src/log.js';

const args = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; remoteUrl: string; window?: number };
const logger = createLogger('warn', false);
const durability = (process.env.BENCH_DURABILITY ?? 'full') as 'full' | 'normal' | 'off';
const broker = new Broker({ dataDir: args.dataDir, logger, sysIntervalMs: 0, durability });
await broker.start();
const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
const bridge = await startBridge(
  broker,
  {
    name: 'cloud',
    url: args.remoteUrl,
    clientId: 'bench-gw',
    rules: [{ direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw/' }],
    reconnect: { minMs: 100, maxMs: 500 },
    outbox: { maxRows: 2_000_000 },
    ...(args.window !== undefined ? { inflightWindow: args.window } : process.env.BENCH_WINDOW !== undefined ? { inflightWindow: Number(process.env.BENCH_WINDOW) } : {}),
  },
  logger,
);
process.stdout.write(`READY ${port}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  // With --expose-gc, measure memory that is kept, not garbage waiting for the next collection.
  if (line === 'state') (globalThis as { gc?: () => void }).gc?.();
  if (line === 'state') process.stdout.write(JSON.stringify({ ...bridge.state(), rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, ext: process.memoryUsage().external }) + '\n');
  if (line === 'stop') void bridge.stop().then(() => broker.close()).then(() => process.exit(0));
});
