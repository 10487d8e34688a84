// Bounded in-memory history for the console's charts: message rates in and out, each bridge's outbox
// depth and age of its oldest row, and the recent values of numeric points — one sample per 10 s bucket,
// the last hour. Every series is a fixed Float64Array allocated once (NaN: no sample), so memory does not
// grow, and sampling is one timer every 10 s copying counters and values that are already in memory.
import type { PointReading } from '../devices/index.js';

export const BUCKET_MS = 10_000;
export const BUCKETS = 360;
export const MAX_POINTS = 1000;
/** Series answered when a request names none: an hour of 1,000 points is ~4.7 MB of JSON, too much for one answer. */
export const DEFAULT_POINTS_ANSWERED = 100;

export interface HistorySources {
  /** Messages received from and sent to clients since the start (the broker's counters). */
  messages(): { in: number; out: number };
  bridges(): Array<{ name: string; outboxDepth: number; oldestAgeSeconds: number | null }>;
  /** Each device's readings (point name → last value and when it was read). */
  readings(): Array<{ deviceId: string; readings: ReadonlyMap<string, PointReading> }>;
}

type Series = Float64Array;

export class History {
  private timer: NodeJS.Timeout | null = null;
  /** End time of each bucket (epoch ms), NaN where none was taken yet. */
  private readonly times: Series = newSeries();
  private readonly messagesIn: Series = newSeries();
  private readonly messagesOut: Series = newSeries();
  private readonly bridges = new Map<string, { depth: Series; oldestAge: Series }>();
  private readonly points = new Map<string, Series>();
  /** Buckets taken since the start; the next one goes to index `taken % BUCKETS`. */
  private taken = 0;
  private last: { at: number; in: number; out: number } | null = null;
  private pointsLeftOut = 0;

  constructor(private readonly sources: HistorySources, private readonly bucketMs = BUCKET_MS) {}

  start(now = Date.now()): void {
    const m = this.sources.messages();
    this.last = { at: now, in: m.in, out: m.out };
    this.timer = setInterval(() => this.sample(), this.bucketMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Closes one bucket: rates since the previous one, the bridges now, the points read during it. */
  sample(now = Date.now()): void {
    const i = this.taken % BUCKETS;
    const previous = this.last ?? { at: now - this.bucketMs, ...this.sources.messages() };
    const m = this.sources.messages();
    const seconds = Math.max(0.001, (now - previous.at) / 1000);
    this.times[i] = now;
    this.messagesIn[i] = round((m.in - previous.in) / seconds);
    this.messagesOut[i] = round((m.out - previous.out) / seconds);
    this.last = { at: now, in: m.in, out: m.out };
    for (const b of this.sources.bridges()) {
      let series = this.bridges.get(b.name);
      if (!series) this.bridges.set(b.name, (series = { depth: newSeries(), oldestAge: newSeries() }));
      series.depth[i] = b.outboxDepth;
      series.oldestAge[i] = b.oldestAgeSeconds ?? NaN;
    }
    for (const series of this.points.values()) series[i] = NaN;
    for (const { deviceId, readings } of this.sources.readings()) {
      for (const [name, r] of readings) {
        if (r.readAt === undefined || r.readAt <= previous.at) continue;
        const value = typeof r.value === 'number' ? r.value : typeof r.value === 'bigint' ? Number(r.value) : typeof r.value === 'boolean' ? Number(r.value) : NaN;
        if (!Number.isFinite(value)) continue;
        const key = `${deviceId}/${name}`;
        let series = this.points.get(key);
        if (!series) {
          if (this.points.size >= MAX_POINTS) {
            this.pointsLeftOut++;
            continue;
          }
          this.points.set(key, (series = newSeries()));
        }
        series[i] = value;
      }
    }
    this.taken++;
  }

  /** Bytes the series hold (all allocated up front). */
  memoryBytes(): number {
    return (3 + 2 * this.bridges.size + this.points.size) * BUCKETS * 8;
  }

  snapshot(options: { points?: string[]; since?: number } = {}) {
    const order: number[] = [];
    const n = Math.min(this.taken, BUCKETS);
    for (let k = this.taken - n; k < this.taken; k++) {
      const i = k % BUCKETS;
      if (options.since === undefined || this.times[i] > options.since) order.push(i);
    }
    const pick = (s: Series) => order.map((i) => (Number.isNaN(s[i]) ? null : s[i]));
    const names = [...this.points.keys()];
    const wanted = options.points === undefined ? names.slice(0, DEFAULT_POINTS_ANSWERED) : options.points.filter((k) => this.points.has(k));
    return {
      bucketSeconds: this.bucketMs / 1000,
      buckets: order.length,
      start: order.length > 0 ? this.times[order[0]] - this.bucketMs : null,
      times: order.map((i) => this.times[i]),
      messages: { in: pick(this.messagesIn), out: pick(this.messagesOut) },
      bridges: Object.fromEntries([...this.bridges].map(([name, s]) => [name, { depth: pick(s.depth), oldestAgeSeconds: pick(s.oldestAge) }])),
      points: Object.fromEntries(wanted.map((key) => {
        const s = this.points.get(key)!;
        const kept = order.filter((i) => !Number.isNaN(s[i]));
        return [key, { t: kept.map((i) => this.times[i]), v: kept.map((i) => s[i]) }];
      })),
      pointNames: names,
      pointsLeftOut: this.pointsLeftOut,
      memory: { bytes: this.memoryBytes(), limitBytes: (3 + MAX_POINTS) * BUCKETS * 8 + this.bridges.size * 2 * BUCKETS * 8 },
    };
  }
}

function newSeries(): Series {
  return new Float64Array(BUCKETS).fill(NaN);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
