// One full garbage collection once the gateway has started and gone quiet. V8's memory reducer hands
// memory back to the system (shrinks the young generation, releases emptied old-space pages) only in
// the seconds after a full collection, and an idle gateway allocates so little that its first one can
// come minutes after start-up: until then it keeps the garbage of start-up (sources read, config
// parsed, code compiled), 3-6 MiB of RSS (bench/results/2026-12-04-footprint-rss.md). The collection
// costs 40-50 ms of the main thread once; it waits for a quiet event loop and gives up when there is
// none within `attempts` checks. V8 exposes its gc function only with a flag: bin/fieldgate.js passes
// --expose-gc; without it this does nothing. (Not --expose-gc-as=NAME: with both flags V8 installs the
// function under NAME only, and the test helpers that add --expose-gc to the shipped options would lose gc().)
import { performance } from 'node:perf_hooks';
import { exposedGc } from '../gc.js';

export { GC_GLOBAL } from '../gc.js';

export interface SettleGcOptions {
  /** Between checks of the event loop, ms. */
  intervalMs?: number;
  /** The share of the last interval the event loop may have been busy for the gateway to count as quiet. */
  maxUtilization?: number;
  attempts?: number;
  /** The collector; default: the global V8 gives it under GC_GLOBAL. */
  gc?: () => void;
}

/** Schedules the collection; returns a function that cancels it. */
export function scheduleSettleGc(options: SettleGcOptions = {}): () => void {
  const gc = options.gc ?? exposedGc();
  if (gc === null) return () => {};
  const maxUtilization = options.maxUtilization ?? 0.2;
  let attemptsLeft = options.attempts ?? 12;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    attemptsLeft--;
    if (busy <= maxUtilization) {
      clearInterval(timer);
      gc();
    } else if (attemptsLeft <= 0) clearInterval(timer);
  }, options.intervalMs ?? 5000);
  timer.unref();
  return () => clearInterval(timer);
}
