// The broker scenarios. Each one starts a fresh broker process, runs its load from separate
// generator processes, and measures on the broker's process from outside (/proc).

import os from 'node:os';
import { cpuSeconds, statusKiB } from '../lib/proc.js';
import { formatCount } from '../lib/table.js';
import type { BrokerUnderTest, RunningBroker } from './brokers.js';
import { LoadWorker, type Reply } from './load-worker.js';
import type { Counters } from './load/role.js';

export interface Timing {
  warmupMs: number;
  measureMs: number;
  /** PUBLISH packets per socket write in the throughput scenarios; null = 32 for fan-in, 16 for fan-out. */
  publishBatch: number | null;
  /** Clients held open by the idle-rss scenario. */
  idleClients: number;
}

export interface Figure {
  label: string;
  value: number;
  unit: string;
  higherIsBetter: boolean;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  broker: string;
  figures: Figure[];
  /** Messages the broker accepted (QoS 0: sent; QoS 1: acknowledged) but never delivered; null where it does not apply. */
  lost: number | null;
  /** Broker CPU seconds (user + system) in the measured window. */
  brokerCpuSeconds: number;
  /** Broker peak resident memory (VmHWM) at the end of the scenario, MiB. */
  peakRssMiB: number;
  /** Generator CPU seconds in the measured window (all generator processes together). */
  generatorCpuSeconds: number;
  /** The same as a share of one core; the busiest single generator process, also in percent. */
  generatorCpuPercent: number;
  busiestGeneratorPercent: number;
  /** Broker CPU as a share of one core over the same window. */
  brokerCpuPercent: number;
  notes: string[];
}

export type ScenarioName = 'fanin' | 'fanout' | 'fanout-qos1' | 'latency' | 'idle-rss' | 'connects';
export const scenarioNames: ScenarioName[] = ['fanin', 'fanout', 'fanout-qos1', 'latency', 'idle-rss', 'connects'];

export const scenarioTitles: Record<ScenarioName, string> = {
  fanin: 'fan-in QoS 0 (10 → 1)',
  fanout: 'fan-out QoS 0 (1 → 50)',
  'fanout-qos1': 'fan-out QoS 1 (1 → 50)',
  latency: 'latency at 1,000 msg/s (QoS 0, 1 → 1)',
  'idle-rss': 'RSS per idle connection',
  connects: 'connects/s (CONNECT → CONNACK → DISCONNECT)',
};

const cores = os.availableParallelism();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runScenario(name: ScenarioName, broker: BrokerUnderTest, timing: Timing): Promise<ScenarioResult> {
  const running = await broker.launch();
  const workers: LoadWorker[] = [];
  try {
    const partial = await scenarioBodies[name](running, workers, timing);
    // idle-rss measures memory, not a rate, and its generator CPU includes the process start-up.
    if (name === 'idle-rss') {
      // no limit notes
    } else if (partial.busiestGeneratorPercent > 85) {
      partial.notes.push(`a generator process used ${partial.busiestGeneratorPercent.toFixed(0)}% of a core (the broker ${partial.brokerCpuPercent.toFixed(0)}%): the figure may be limited by the generator`);
    } else if (partial.generatorCpuPercent + partial.brokerCpuPercent > 90 * cores) {
      partial.notes.push(`generator and broker together used ${((partial.generatorCpuPercent + partial.brokerCpuPercent) / 100).toFixed(2)} of ${cores} cores: the figure may be the machine's limit rather than the broker's`);
    }
    return { scenario: name, broker: broker.name, peakRssMiB: statusKiB(running.pid, 'VmHWM') / 1024, ...partial };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await running.stop();
  }
}

type Body = (broker: RunningBroker, workers: LoadWorker[], timing: Timing) => Promise<Omit<ScenarioResult, 'scenario' | 'broker' | 'peakRssMiB'>>;

interface Snapshot {
  replies: Reply[];
  brokerCpu: number;
  workerCpu: number[];
  at: number;
}

async function snapshot(broker: RunningBroker, workers: LoadWorker[]): Promise<Snapshot> {
  const replies = await Promise.all(workers.map((w) => w.request({ cmd: 'mark' }, 'mark')));
  return {
    replies,
    brokerCpu: cpuSeconds(broker.pid),
    workerCpu: workers.map((w) => w.cpuSeconds()),
    at: performance.now(),
  };
}

function windowCosts(from: Snapshot, to: Snapshot) {
  const seconds = (to.at - from.at) / 1000;
  const perWorker = to.workerCpu.map((cpu, i) => cpu - (from.workerCpu[i] ?? 0));
  const generatorCpuSeconds = perWorker.reduce((sum, cpu) => sum + cpu, 0);
  return {
    brokerCpuSeconds: to.brokerCpu - from.brokerCpu,
    generatorCpuSeconds,
    generatorCpuPercent: (100 * generatorCpuSeconds) / seconds,
    busiestGeneratorPercent: (100 * Math.max(...perWorker)) / seconds,
    brokerCpuPercent: (100 * (to.brokerCpu - from.brokerCpu)) / seconds,
  };
}

/** Polls the subscribers until their count stops moving (bounded): what is still in flight arrives. */
async function settledCounters(subscribers: LoadWorker, quietMs = 300, timeoutMs = 5_000): Promise<Counters> {
  const deadline = Date.now() + timeoutMs;
  let last = (await subscribers.request({ cmd: 'mark' }, 'mark')).counters;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = (await subscribers.request({ cmd: 'mark' }, 'mark')).counters;
    if (now['received'] !== last['received']) quietSince = Date.now();
    else if (Date.now() - quietSince >= quietMs) return now;
    last = now;
  }
  return last;
}

interface ThroughputPlan {
  publishers: number;
  subscribers: number;
  qos: 0 | 1;
  topic: (publisher: number) => string;
  filter: string;
  label: string;
}

function throughput(plan: ThroughputPlan): Body {
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

const latency: Body = async (broker, workers, timing) => {
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


const idleRss: Body = async (broker, workers, timing) => {
  const IDLE_CLIENTS = timing.idleClients;
  // A first round of connections warms the broker's code paths and allocators, so that the
  // measured growth is what the connections themselves hold.
  const warmup = await LoadWorker.start('idle-warmup', { kind: 'idle', port: broker.port, count: 50, concurrency: 25, clientPrefix: 'bench-warm-' });
  await warmup.close();
  await sleep(500);
  const before = statusKiB(broker.pid, 'VmRSS');
  const cpuBefore = cpuSeconds(broker.pid);
  const started = performance.now();
  const idle = await LoadWorker.start('idle', { kind: 'idle', port: broker.port, count: IDLE_CLIENTS, concurrency: 50, clientPrefix: 'bench-idle-' });
  workers.push(idle);
  const connectedAt = performance.now();
  const connectSeconds = (connectedAt - started) / 1000;
  const generatorCpu = idle.cpuSeconds();
  const brokerCpu = cpuSeconds(broker.pid) - cpuBefore;
  await sleep(1000);
  const after = statusKiB(broker.pid, 'VmRSS');
  const connected = (await idle.request({ cmd: 'mark' }, 'mark')).counters['connected']!;
  const notes = [`RSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MiB; ${formatCount(IDLE_CLIENTS)} connects took ${((connectedAt - started) / 1000).toFixed(2)} s`];
  if (connected !== IDLE_CLIENTS) notes.push(`only ${connected} of ${IDLE_CLIENTS} stayed connected`);
  return {
    figures: [{ label: 'KiB/conn', value: (after - before) / IDLE_CLIENTS, unit: 'KiB', higherIsBetter: false }],
    lost: null,
    brokerCpuSeconds: brokerCpu,
    generatorCpuSeconds: generatorCpu,
    generatorCpuPercent: (100 * generatorCpu) / connectSeconds,
    busiestGeneratorPercent: (100 * generatorCpu) / connectSeconds,
    brokerCpuPercent: (100 * brokerCpu) / connectSeconds,
    notes,
  };
};

// Two generator processes: opening sockets costs a Node process far more CPU than it costs a
// broker to accept them, and one process alone would be the bottleneck.
const CONNECT_WORKERS = 2;

const connects: Body = async (broker, workers, timing) => {
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

const scenarioBodies: Record<ScenarioName, Body> = {
  fanin: throughput({ publishers: 10, subscribers: 1, qos: 0, topic: (i) => `bench/fanin/${i}`, filter: 'bench/fanin/+', label: 'msg/s' }),
  fanout: throughput({ publishers: 1, subscribers: 50, qos: 0, topic: () => 'bench/fanout', filter: 'bench/fanout', label: 'deliveries/s' }),
  'fanout-qos1': throughput({ publishers: 1, subscribers: 50, qos: 1, topic: () => 'bench/fanout1', filter: 'bench/fanout1', label: 'deliveries/s' }),
  latency,
  'idle-rss': idleRss,
  connects,
};
