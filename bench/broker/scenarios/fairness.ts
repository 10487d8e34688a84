// Fairness (issue 8): a probe client's CONNACK and PINGRESP latency while fan-in (10 → 1) and
// fan-out (1 → 50) run flat out at the same time, each as in the throughput scenarios. What a hot
// publisher or a large fan-out costs everybody else.

import { formatCount } from '../../lib/table.js';
import { LoadWorker } from '../load-worker.js';
import { sleep, snapshot, windowCosts } from '../measure.js';
import type { Body } from '../scenario.js';

/** Counters cross the IPC channel as JSON: a NaN (no samples) arrives as null. */
const ms = (value: number | null | undefined) => (typeof value === 'number' && Number.isFinite(value) ? value.toFixed(2) : '—');
const num = (value: number | null | undefined) => (typeof value === 'number' ? value : NaN);

export const fairness: Body = async (broker, workers, timing) => {
  const start = async (label: string, spec: Parameters<typeof LoadWorker.start>[1]) => {
    const worker = await LoadWorker.start(label, spec);
    workers.push(worker);
    return worker;
  };
  await start('fanin-subscriber', { kind: 'subscribers', port: broker.port, count: 1, filter: 'bench/fair-in/+', qos: 0, publishers: 10, clientPrefix: 'fair-in-sub-' });
  await start('fanout-subscribers', { kind: 'subscribers', port: broker.port, count: 50, filter: 'bench/fair-out', qos: 0, publishers: 1, clientPrefix: 'fair-out-sub-' });
  const fanin = await start('fanin-publishers', {
    kind: 'publishers', port: broker.port, topics: Array.from({ length: 10 }, (_, i) => `bench/fair-in/${i}`), qos: 0, window: 2048,
    batch: timing.publishBatch ?? 32, clientPrefix: 'fair-in-pub-',
  });
  const fanout = await start('fanout-publisher', {
    kind: 'publishers', port: broker.port, topics: ['bench/fair-out'], qos: 0, window: 2048, batch: timing.publishBatch ?? 16, clientPrefix: 'fair-out-pub-',
  });
  const probe = await start('probe', {
    kind: 'probe', port: broker.port, warmupMs: timing.warmupMs, measureMs: timing.measureMs, pingIntervalMs: 10, connectIntervalMs: 50,
  });
  fanin.send({ cmd: 'start' });
  fanout.send({ cmd: 'start' });
  const done = probe.waitFor('done');
  probe.send({ cmd: 'start' });
  await sleep(timing.warmupMs);
  const first = await snapshot(broker, workers);
  const result = (await done).counters;
  const second = await snapshot(broker, workers);
  const offered = (i: number) => (second.replies[i]!.counters['sent']! - first.replies[i]!.counters['sent']!) / ((second.replies[i]!.t - first.replies[i]!.t) / 1000);
  const delivered = (i: number) => (second.replies[i]!.counters['received']! - first.replies[i]!.counters['received']!) / ((second.replies[i]!.t - first.replies[i]!.t) / 1000);
  await Promise.all([fanin.request({ cmd: 'stop' }, 'stopped'), fanout.request({ cmd: 'stop' }, 'stopped')]);
  const notes = [
    `${result['pingSamples']} PINGRESP (p50 ${ms(result['pingP50Ms'])} ms), ${result['connackSamples']} CONNACK (p50 ${ms(result['connackP50Ms'])} ms; of it the TCP handshake p50 ${ms(result['handshakeP50Ms'])} / p99 ${ms(result['handshakeP99Ms'])} ms) samples`,
    `meanwhile fan-in ${formatCount(delivered(0))} msg/s (offered ${formatCount(offered(2))}), fan-out ${formatCount(delivered(1))} deliveries/s (offered ${formatCount(offered(3))} msg/s)`,
  ];
  notes.push(result['reniced'] ? 'probe at nice -10' : 'probe at normal priority (renice not allowed)');
  if (result['connectFailures']! > 0) notes.push(`${result['connectFailures']} probe connections failed`);
  return {
    figures: [
      { label: 'CONNACK p99 ms', value: num(result['connackP99Ms']), unit: 'ms', higherIsBetter: false },
      { label: 'CONNACK max ms', value: num(result['connackMaxMs']), unit: 'ms', higherIsBetter: false },
      { label: 'PINGRESP p99 ms', value: num(result['pingP99Ms']), unit: 'ms', higherIsBetter: false },
      { label: 'PINGRESP max ms', value: num(result['pingMaxMs']), unit: 'ms', higherIsBetter: false },
    ],
    lost: null,
    ...windowCosts(first, second),
    notes,
  };
};
