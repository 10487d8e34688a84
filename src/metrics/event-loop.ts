// Event-loop delay gauges (nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds) sampled
// every `sampleMs` instead of prom-client's 10 ms, which wakes an idle gateway ~100 times a second.
// The histogram records the time between samples, so the sampling interval itself is taken off:
// the gauges show how late the loop was, as prom-client's do at its own resolution (where the
// 10 ms stays in, a known quirk).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

export const histogramLagMetrics = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `nodejs_eventloop_lag_${s}_seconds`);

/** Replaces prom-client's histogram-based lag gauges in `registry` with ones sampled every `sampleMs`. */
export function registerEventLoopLag(registry: Registry, sampleMs: number): () => void {
  for (const name of histogramLagMetrics) registry.removeSingleMetric(name);
  const histogram = monitorEventLoopDelay({ resolution: sampleMs });
  histogram.enable();
  const offsetNs = sampleMs * 1e6;
  const late = (ns: number) => (Number.isFinite(ns) && ns > offsetNs ? (ns - offsetNs) / 1e9 : 0);
  const read: Record<string, () => number> = {
    min: () => late(histogram.min),
    max: () => late(histogram.max),
    mean: () => late(histogram.mean),
    stddev: () => (Number.isFinite(histogram.stddev) ? histogram.stddev / 1e9 : 0),
    p50: () => late(histogram.percentile(50)),
    p90: () => late(histogram.percentile(90)),
    p99: () => late(histogram.percentile(99)),
  };
  const stats = Object.keys(read);
  for (const stat of stats) {
    const lastOfScrape = stat === stats[stats.length - 1];
    new Gauge({
      name: `nodejs_eventloop_lag_${stat}_seconds`,
      help: `The ${stat} of the event loop delays recorded since the last scrape (sampled every ${sampleMs} ms).`,
      registers: [registry],
      collect() {
        this.set(read[stat]!());
        // The gauges are collected in order: after the last one the next scrape starts a fresh window (as prom-client does).
        if (lastOfScrape) histogram.reset();
      },
    });
  }
  return () => histogram.disable();
}
