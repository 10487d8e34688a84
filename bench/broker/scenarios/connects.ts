// Connection rate: CONNECT → CONNACK → DISCONNECT as fast as the generators can open sockets.

import { LoadWorker } from '../load-worker.js';
import { sleep, snapshot, windowCosts } from '../measure.js';
import type { Body } from '../scenario.js';

// Two generator processes: opening sockets costs a Node process far more CPU than it costs a
// broker to accept them, and one process alone would be the bottleneck.
const CONNECT_WORKERS = 2;

export const connects: Body = async (broker, workers, timing) => {
  for (let i = 0; i < CONNECT_WORKERS; i++) {
    workers.push(await LoadWorker.start(`connects-${i}`, { kind: 'connects', port: broker.port, concurrency: 8, clientPrefix: `bench-conn-${i}-` }));
  }
  for (const worker of workers) worker.send({ cmd: 'start' });
  await sleep(timing.warmupMs / 2);
  const first = await snapshot(broker, workers);
  await sleep(timing.measureMs);
  const second = await snapshot(broker, workers);
  const stopped = await Promise.all(workers.map((w) => w.request({ cmd: 'stop' }, 'stopped')));
  let rate = 0;
  second.replies.forEach((reply, i) => {
    const earlier = first.replies[i]!;
    rate += (reply.counters['completed']! - earlier.counters['completed']!) / ((reply.t - earlier.t) / 1000);
  });
  const failed = stopped.reduce((sum, reply) => sum + reply.counters['failed']!, 0);
  return {
    figures: [{ label: 'connects/s', value: rate, unit: 'connects/s', higherIsBetter: true }],
    lost: null,
    ...windowCosts(first, second),
    notes: failed > 0 ? [`${failed} attempts failed`] : [],
  };
};
