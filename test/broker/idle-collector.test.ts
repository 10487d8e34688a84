// The broker's collection after a burst of connections (src/broker/idle-collector.ts): once per burst,
// only after the broker has been quiet, never while connections keep coming.
import { afterEach, describe, expect, it, vi } from 'vitest';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { IdleCollector } from '../../src/broker/idle-collector.js';
import { captureLogger, startBroker } from '../helpers/broker.js';

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

describe('idle collector in the broker', () => {
  it('a fan-out counts as traffic: no collection while 5 messages/s reach 40 subscribers, one once it stops', { timeout: 60_000 }, async () => {
    const { logger, entries } = captureLogger();
    const started = await startBroker({ sysIntervalMs: 0, logger });
    const clients: MqttClient[] = [];
    try {
      const collections = () => entries.filter((e) => e.msg === 'heap collected after a burst of connections').length;
      // A burst: 260 connections opened and closed.
      for (let i = 0; i < 260; i++) {
        await new Promise<void>((resolve) => {
          const s = net.connect(started.port, '127.0.0.1', () => { s.destroy(); resolve(); });
          s.on('error', () => resolve());
        });
      }
      for (let i = 0; i < 40; i++) {
        const c = await mqtt.connectAsync({ host: '127.0.0.1', port: started.port, reconnectPeriod: 0 });
        await c.subscribeAsync('fan/out');
        clients.push(c);
      }
      const publisher = await mqtt.connectAsync({ host: '127.0.0.1', port: started.port, reconnectPeriod: 0 });
      clients.push(publisher);
      // 5 messages/s in, 200 deliveries/s out, for 12 s: past the 5–10 s quiet window, but not quiet.
      const until = Date.now() + 12_000;
      while (Date.now() < until) {
        publisher.publish('fan/out', 'x', { qos: 0 });
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(collections(), 'collected during the fan-out').toBe(0);
      const deadline = Date.now() + 20_000;
      while (collections() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      expect(collections(), 'collected once the fan-out stopped').toBe(1);
    } finally {
      for (const c of clients) await c.endAsync().catch(() => undefined);
      await started.close();
    }
  });
});
