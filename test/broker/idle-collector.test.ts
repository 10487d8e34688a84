// The broker's collection after a burst of connections (src/broker/idle-collector.ts): once per burst,
// only after the broker has been quiet, never while connections keep coming.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleCollector } from '../../src/broker/idle-collector.js';

function collector(messages: { count: number }) {
  const runs: { pauseMs: number; events: number }[] = [];
  const c = new IdleCollector({ activity: () => messages.count, collected: (pauseMs, events) => runs.push({ pauseMs, events }) });
  return { c, runs };
}

describe('idle collector', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once after a burst of 256 connection events, 5–10 s after the last one', () => {
    vi.useFakeTimers();
    const messages = { count: 0 };
    const { c, runs } = collector(messages);
    for (let i = 0; i < 300; i++) c.noteConnection();
    // Events came after the burst armed the timer: the first look (at 5 s) sees them and waits another 5 s.
    vi.advanceTimersByTime(5_100);
    expect(runs).toHaveLength(0);
    vi.advanceTimersByTime(5_000);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.events).toBe(300);
    expect(runs[0]!.pauseMs).toBeGreaterThanOrEqual(0);
    vi.advanceTimersByTime(60_000);
    expect(runs).toHaveLength(1);
    c.stop();
  });

  it('does not collect for fewer than 256 events, nor while connections keep coming, nor under heavy traffic', () => {
    vi.useFakeTimers();
    const messages = { count: 0 };
    const { c, runs } = collector(messages);
    for (let i = 0; i < 255; i++) c.noteConnection();
    vi.advanceTimersByTime(60_000);
    expect(runs).toHaveLength(0);
    c.noteConnection(); // the 256th: the burst is there
    for (let s = 0; s < 30; s++) {
      c.noteConnection();
      vi.advanceTimersByTime(1_000);
    }
    expect(runs).toHaveLength(0);
    // Connections stopped, but 1000 messages a second are routed: not quiet either.
    for (let s = 0; s < 30; s++) {
      messages.count += 1000;
      vi.advanceTimersByTime(1_000);
    }
    expect(runs).toHaveLength(0);
    // A gateway's own few readings a second do not keep it from collecting.
    for (let s = 0; s < 12; s++) {
      messages.count += 5;
      vi.advanceTimersByTime(1_000);
    }
    expect(runs).toHaveLength(1);
    c.stop();
  });

  it('does nothing after stop()', () => {
    vi.useFakeTimers();
    const { c, runs } = collector({ count: 0 });
    for (let i = 0; i < 300; i++) c.noteConnection();
    c.stop();
    vi.advanceTimersByTime(60_000);
    expect(runs).toHaveLength(0);
  });
});
