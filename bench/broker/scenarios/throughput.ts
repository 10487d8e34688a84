// Throughput: bounded publishers saturate the broker, subscribers count what arrives in a steady
// window, and after the publishers stop everything the broker took is checked for arrival.

import { formatCount } from '../../lib/table.js';
import { LoadWorker } from '../load-worker.js';
import { settledCounters, sleep, snapshot, windowCosts } from '../measure.js';
import type { Body } from '../scenario.js';

export interface ThroughputPlan {
  publishers: number;
  subscribers: number;
  qos: 0 | 1;
  topic: (publisher: number) => string;
  filter: string;
  label: string;
}

export function throughput(plan: ThroughputPlan): Body {
  return async (broker, workers, timing) => {
    const subscribers = await LoadWorker.start('subscribers', {
      kind: 'subscribers', port: broker.port, count: plan.subscribers, filter: plan.filter, qos: plan.qos,
      publishers: plan.publishers, clientPrefix: 'bench-sub-',
    });
    workers.push(subscribers);
    const publishers = await LoadWorker.start('publishers', {
      kind: 'publishers', port: broker.port, topics: Array.from({ length: plan.publishers }, (_, i) => plan.topic(i)),
      qos: plan.qos, window: plan.qos > 0 ? 256 : 2048, batch: timing.publishBatch ?? (plan.publishers > 1 ? 32 : 16), clientPrefix: 'bench-pub-',
    });
    workers.push(publishers);

    publishers.send({ cmd: 'start' });
    await sleep(timing.warmupMs);
    const first = await snapshot(broker, workers);
    await sleep(timing.measureMs);
    const second = await snapshot(broker, workers);
    const stopped = (await publishers.request({ cmd: 'stop' }, 'stopped')).counters;
    const final = await settledCounters(subscribers);

    const received = second.replies[0]!.counters['received']! - first.replies[0]!.counters['received']!;
    const seconds = (second.replies[0]!.t - first.replies[0]!.t) / 1000;
    const accepted = plan.qos > 0 ? stopped['acked']! : stopped['sent']!;
    const offered = (second.replies[1]!.counters['sent']! - first.replies[1]!.counters['sent']!) / ((second.replies[1]!.t - first.replies[1]!.t) / 1000);
    const notes: string[] = [`offered ${formatCount(offered)} msg/s`];
    if (final['malformed']! > 0) notes.push(`${final['malformed']} malformed PUBLISH packets`);
    if (final['unique']! > accepted * plan.subscribers) notes.push(`more deliveries than accepted messages × subscribers: counting error`);
    if (plan.qos > 0 && stopped['unacked']! > 0) notes.push(`${stopped['unacked']} messages never acknowledged by the broker`);
    if (final['duplicates']! > 0) notes.push(`${final['duplicates']} duplicate deliveries`);
    if (final['closed']! > 0 || stopped['closed']! > 0) notes.push(`${final['closed']! + stopped['closed']!} clients were disconnected by the broker`);
    return {
      figures: [{ label: plan.label, value: received / seconds, unit: plan.label, higherIsBetter: true }],
      lost: Math.max(0, accepted * plan.subscribers - final['unique']!),
      ...windowCosts(first, second),
      notes,
    };
  };
}
