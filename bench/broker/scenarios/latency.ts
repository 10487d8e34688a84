// Latency at 1,000 msg/s, QoS 0, one publisher and one subscriber in one generator process.
// Measured twice: right after the broker starts ("latency"), and after 8 s at that rate
// ("latency-warm"). A Node broker is still JIT-compiling its hot path for seconds after start, at
// this rate: the cold tail is that compilation competing for the cores; the warm one is the
// steady state a gateway that runs for months is in.

import { LoadWorker } from '../load-worker.js';
import { sleep, snapshot, windowCosts } from '../measure.js';
import type { Body } from '../scenario.js';

export const latency = (fixedWarmupMs?: number): Body => async (broker, workers, timing) => {
  const warmupMs = fixedWarmupMs ?? timing.warmupMs / 2;
  const worker = await LoadWorker.start('latency', {
    kind: 'latency', port: broker.port, ratePerSecond: 1000, warmupMs, measureMs: timing.measureMs, topic: 'bench/latency',
  });
  workers.push(worker);
  const done = worker.waitFor('done');
  worker.send({ cmd: 'start' });
  await sleep(warmupMs);
  const first = await snapshot(broker, workers);
  const result = (await done).counters;
  const second = await snapshot(broker, workers);
  const notes = [`${result['samples']} samples after ${(warmupMs / 1000).toFixed(1)} s at this rate, max ${result['maxMs']!.toFixed(2)} ms`];
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

