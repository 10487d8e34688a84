// Measuring around a scenario's window: counters from the generators, CPU from /proc.

import { cpuSeconds } from '../lib/proc.js';
import type { RunningBroker } from './brokers.js';
import type { LoadWorker, Reply } from './load-worker.js';
import type { Counters } from './load/role.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Snapshot {
  replies: Reply[];
  brokerCpu: number;
  workerCpu: number[];
  at: number;
}

export async function snapshot(broker: RunningBroker, workers: LoadWorker[]): Promise<Snapshot> {
  const replies = await Promise.all(workers.map((w) => w.request({ cmd: 'mark' }, 'mark')));
  return {
    replies,
    brokerCpu: cpuSeconds(broker.pid),
    workerCpu: workers.map((w) => w.cpuSeconds()),
    at: performance.now(),
  };
}

export function windowCosts(from: Snapshot, to: Snapshot) {
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
export async function settledCounters(subscribers: LoadWorker, quietMs = 300, timeoutMs = 5_000): Promise<Counters> {
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
