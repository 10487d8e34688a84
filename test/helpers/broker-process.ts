// A broker in its own process, for tests that kill -9 it:
//   node --import tsx test/helpers/broker-process.ts <dataDir> <port> [optionsJson]
// Prints one line `{"port":N}` on stdout once it listens. SIGTERM closes it gracefully.
import v8 from 'node:v8';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger } from '../../src/log.js';

type BrokerOptions = ConstructorParameters<typeof Broker>[0];

async function main(): Promise<void> {
  const [dataDir, portArg, optionsJson] = process.argv.slice(2);
  if (!dataDir || portArg === undefined) {
    process.stderr.write('usage: broker-process.ts <dataDir> <port> [optionsJson]\n');
    process.exit(2);
  }
  const extra = optionsJson ? (JSON.parse(optionsJson) as Partial<BrokerOptions>) : {};
  const broker = new Broker({ dataDir, logger: silentLogger, ...extra } as BrokerOptions);
  await broker.start();
  const { port } = await broker.listen({ port: Number(portArg), host: '127.0.0.1' });
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const stop = () => {
    broker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The test that spawned it holds stdin open: when that process is gone (a crashed or killed
  // vitest worker, a test without cleanup), so is this broker, instead of outliving the run.
  process.stdin.once('end', stop);
  // "memory" on stdin: collect garbage (when run with --expose-gc) and report memory, for leak tests
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    if (!text.includes('memory')) return;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
    // "memory-detail": where the RSS is (the fuzzer's memory probes): V8's spaces as committed, the sessions and queues.
    const detail = text.includes('memory-detail') ? memoryDetail(broker) : undefined;
    process.stdout.write(`${JSON.stringify({ memory: { rss, heapUsed, heapTotal, external, arrayBuffers, detail } })}\n`);
  });
}

function memoryDetail(broker: Broker): Record<string, number> {
  const detail: Record<string, number> = {};
  for (const space of v8.getHeapSpaceStatistics()) detail[`v8.${space.space_name}`] = space.physical_space_size;
  const stats = broker.snapshotStats();
  detail.sessions = stats.sessions;
  detail.queuedMessages = stats.queuedMessages;
  detail.retainedMessages = stats.retainedMessages;
  detail.retainedBytes = broker.retained.totalBytes;
  detail.connections = broker.connections.size;
  let queuedBytes = 0;
  for (const session of broker.sessions.values()) {
    queuedBytes += session.queuedBytes;
    if (session.queue.length >= 1000) detail[`queue:${session.clientId}`] = session.queue.length;
  }
  detail.queuedBytes = queuedBytes;
  return detail;
}

main().catch((err: unknown) => {
  process.stderr.write(`broker-process failed: ${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
