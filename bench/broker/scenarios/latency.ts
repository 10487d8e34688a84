// Latency at 1,000 msg/s, QoS 0, one publisher and one subscriber in one generator process.

import { LoadWorker } from '../load-worker.js';
import { sleep, snapshot, windowCosts } from '../measure.js';
import type { Body } from '../scenario.js';

export const latency: Body = async (broker, workers, timing) => {
  const worker = await LoadWorker.start('latency', {
    kind: 'latency', port: broker.port, ratePerSecond: 1000, warmupMs: timing.warmupMs / 2, measureMs: timing.measureMs, topic: 'bench/latency',
  });
  workers.push(worker);
  const done = worker.waitFor('done');
  worker.send({ cmd: 'start' });
  await sleep(timing.warmupMs / 2);
  const first = await snapshot(broker, workers);
  const result = (await done).counters;
  const second = await snapshot(broker, workers);
  const notes = [`${result['samples']} samples, max ${result['maxMs']!.toFixed(2)} ms`];
  return {
    figures: [
      { label: 'p50 ms', value: result['p50Ms']!, unit: 'ms', higherIsBetter: false },
      { label: 'p99 ms', value: result['p99Ms']!, unit: 'ms', higherIsBetter: false },
    ],
    lost: result['sent']! - result['received']!,
    ...windowCosts(first, second),
    notes,
  };
};

