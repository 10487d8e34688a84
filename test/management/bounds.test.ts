// The console's in-memory buffers stay within what the README promises, however long the gateway runs:
// the history's series (360 buckets, memory fixed per series, at most 1,000 points) and the log ring
// (1,000 lines, 1 MiB, 4 KiB a line).
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { LOG_LINE_MAX, LOG_RING_BYTES, LogRing } from '../../src/log-ring.js';
import { BUCKETS, DEFAULT_POINTS_ANSWERED, History, MAX_POINTS } from '../../src/management/history.js';
import type { PointReading } from '../../src/devices/index.js';

describe('history bounds', () => {
  it('keeps the last hour of buckets and a fixed memory per series after many hours', () => {
    let now = 1_000_000;
    let received = 0;
    const readings = new Map<string, PointReading>();
    const history = new History({
      messages: () => ({ in: received, out: 2 * received }),
      bridges: () => [{ name: 'cloud', outboxDepth: 5, oldestAgeSeconds: null }],
      readings: () => [{ deviceId: 'm', readings }],
    });
    history.start(now);
    let memory = 0;
    for (let k = 0; k < 3 * BUCKETS; k++) {
      now += 10_000;
      received += 100;
      readings.set('v', { value: k, readAt: now - 1 });
      if (k % 2 === 0) readings.set('s', { value: 'text', readAt: now - 1 });
      history.sample(now);
      if (k === BUCKETS) memory = history.memoryBytes();
    }
    const h = history.snapshot();
    expect(h.buckets).toBe(BUCKETS);
    expect(h.messages.in.every((r) => r === 10)).toBe(true);
    expect(h.messages.out.every((r) => r === 20)).toBe(true);
    expect(h.points['m/v'].v).toEqual(Array.from({ length: BUCKETS }, (_, i) => 2 * BUCKETS + i));
    expect(h.points['m/s']).toBeUndefined();
    expect(h.bridges.cloud.oldestAgeSeconds.every((x) => x === null)).toBe(true);
    expect(history.memoryBytes()).toBe(memory);
    expect(memory).toBe((3 + 2 + 1) * BUCKETS * 8);
    // A point not read in a bucket has no sample there (it is not repeated as if fresh).
    now += 10_000;
    history.sample(now);
    expect(history.snapshot({ since: now - 1 }).points['m/v']).toEqual({ t: [], v: [] });
  });

  it('records at most MAX_POINTS points and says how many it left out', () => {
    const readings = new Map<string, PointReading>();
    for (let i = 0; i < MAX_POINTS + 5; i++) readings.set(`p${i}`, { value: i, readAt: 2 });
    const history = new History({ messages: () => ({ in: 0, out: 0 }), bridges: () => [], readings: () => [{ deviceId: 'd', readings }] });
    history.start(0);
    history.sample(10_000);
    const h = history.snapshot();
    expect(h.pointNames).toHaveLength(MAX_POINTS);
    // Unasked, an answer carries the first 100 series (all 1,000 would be ~4.7 MB of JSON).
    expect(Object.keys(h.points)).toHaveLength(DEFAULT_POINTS_ANSWERED);
    expect(Object.keys(history.snapshot({ points: ['d/p999', 'd/p1004'] }).points)).toEqual(['d/p999']);
    expect(h.pointsLeftOut).toBe(5);
    expect(h.memory.bytes).toBe(h.memory.limitBytes);
  });
});

describe('log ring bounds', () => {
  it('keeps the newest 1,000 lines, cuts a long line, and stays under 1 MiB', () => {
    const ring = new LogRing();
    const logger = createLogger('info', { output: 'json', write: () => undefined, ring });
    for (let i = 0; i < 2500; i++) logger.info({ device: 'd', i }, `line ${i}`);
    logger.warn({ part: 'broker', blob: 'x'.repeat(100_000) }, 'a huge line');
    const lines = ring.query({ limit: 1000 });
    expect(lines).toHaveLength(1000);
    expect(lines.at(-1)).toMatchObject({ level: 'warn', part: 'broker', msg: 'a huge line', fields: { truncated: true } });
    expect(lines[0].msg).toBe('line 1501');
    expect(lines[0].part).toBe('devices');
    expect(ring.query({ level: 'warn' }).map((l) => l.msg)).toEqual(['a huge line']);
    expect(ring.query({ after: lines.at(-2)!.seq }).map((l) => l.msg)).toEqual(['a huge line']);
    for (let i = 0; i < 1000; i++) logger.info({ blob: 'y'.repeat(LOG_LINE_MAX - 300) }, 'big');
    const total = ring.query({ limit: 1000 }).reduce((n, l) => n + JSON.stringify(l).length, 0);
    expect(ring.query({ limit: 1000 }).length).toBeLessThan(1000);
    expect(total).toBeLessThan(LOG_RING_BYTES * 1.2);
  });
});
