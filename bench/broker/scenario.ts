// A scenario run: a fresh broker process, load from separate generator processes
// (bench/broker/scenarios/), measurements taken on the broker's process from outside (/proc).

import os from 'node:os';
import { statusKiB } from '../lib/proc.js';
import type { BrokerUnderTest, RunningBroker } from './brokers.js';
import type { LoadWorker } from './load-worker.js';
import { connects } from './scenarios/connects.js';
import { fairness } from './scenarios/fairness.js';
import { idleRss } from './scenarios/idle-rss.js';
import { latency } from './scenarios/latency.js';
import { throughput } from './scenarios/throughput.js';

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

export type ScenarioName = 'fanin' | 'fanout' | 'fanout-qos1' | 'latency' | 'latency-warm' | 'fairness' | 'idle-rss' | 'connects';
export const scenarioNames: ScenarioName[] = ['fanin', 'fanout', 'fanout-qos1', 'latency', 'latency-warm', 'fairness', 'idle-rss', 'connects'];

export const scenarioTitles: Record<ScenarioName, string> = {
  fanin: 'fan-in QoS 0 (10 → 1)',
  fanout: 'fan-out QoS 0 (1 → 50)',
  'fanout-qos1': 'fan-out QoS 1 (1 → 50)',
  latency: 'latency at 1,000 msg/s (QoS 0, 1 → 1)',
  'latency-warm': 'latency at 1,000 msg/s after 8 s warm-up',
  fairness: 'probe latency under fan-in + fan-out flat out',
  'idle-rss': 'RSS per idle connection',
  connects: 'connects/s (CONNECT → CONNACK → DISCONNECT)',
};

const cores = os.availableParallelism();

export type Body = (broker: RunningBroker, workers: LoadWorker[], timing: Timing) => Promise<Omit<ScenarioResult, 'scenario' | 'broker' | 'peakRssMiB'>>;

const scenarioBodies: Record<ScenarioName, Body> = {
  fanin: throughput({ publishers: 10, subscribers: 1, qos: 0, topic: (i) => `bench/fanin/${i}`, filter: 'bench/fanin/+', label: 'msg/s' }),
  fanout: throughput({ publishers: 1, subscribers: 50, qos: 0, topic: () => 'bench/fanout', filter: 'bench/fanout', label: 'deliveries/s' }),
  'fanout-qos1': throughput({ publishers: 1, subscribers: 50, qos: 1, topic: () => 'bench/fanout1', filter: 'bench/fanout1', label: 'deliveries/s' }),
  latency: latency(),
  'latency-warm': latency(8000),
  fairness,
  'idle-rss': idleRss,
  connects,
};

export async function runScenario(name: ScenarioName, broker: BrokerUnderTest, timing: Timing): Promise<ScenarioResult> {
  const running = await broker.launch();
  const workers: LoadWorker[] = [];
  try {
    const partial = await scenarioBodies[name](running, workers, timing);
    const limit = limitNote(name, partial);
    if (limit) partial.notes.push(limit);
    return { scenario: name, broker: broker.name, peakRssMiB: statusKiB(running.pid, 'VmHWM') / 1024, ...partial };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await running.stop();
  }
}

/** Says when a rate may be the generator's or the machine's limit rather than the broker's. */
function limitNote(name: ScenarioName, result: { busiestGeneratorPercent: number; generatorCpuPercent: number; brokerCpuPercent: number }): string | null {
  // idle-rss measures memory, not a rate, and its generator CPU includes the process start-up.
  if (name === 'idle-rss' || name === 'latency' || name === 'latency-warm' || name === 'fairness') return null;
  const generator = result.busiestGeneratorPercent.toFixed(0);
  const broker = result.brokerCpuPercent.toFixed(0);
  if (result.busiestGeneratorPercent > 85 && result.brokerCpuPercent >= 90) {
    return `a generator process used ${generator}% of a core and the broker ${broker}%: both near saturation on this machine`;
  }
  if (result.busiestGeneratorPercent > 85) return `a generator process used ${generator}% of a core (the broker ${broker}%): the figure may be limited by the generator`;
  const together = (result.generatorCpuPercent + result.brokerCpuPercent) / 100;
  if (together > 0.9 * cores) return `generator and broker together used ${together.toFixed(2)} of ${cores} cores: the figure may be the machine's limit rather than the broker's`;
  return null;
}

