import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/http.js';
import { createMetrics, type MetricsSnapshot } from '../../src/metrics/registry.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const url = (path: string) => `http://127.0.0.1:${server!.port}${path}`;

/** The value of one sample line, e.g. sample(text, 'fieldgate_device_online{device="m1"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('serves every fieldgate metric with values from the collectors', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let received = 10;
    metrics.registerCollector(() => ({ clientsConnected: 3, messagesReceivedTotal: received, messagesSentTotal: 25, sqliteSizeBytes: 4096 }));
    metrics.registerCollector(async () => ({
      devices: [
        { device: 'meter1', online: true, errorsTotal: 0 },
        { device: 'meter2', online: false, errorsTotal: 7 },
      ],
      bridges: [{ bridge: 'cloud', outboxDepth: 42, outboxOldestAgeSeconds: 12.5 }],
    }));
    metrics.observePollLatency('meter1', 0.012);
    metrics.observePollLatency('meter1', 0.3);
    server = await startMetricsServer({ port: 0, metrics, health: () => true });

    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE fieldgate_clients_connected gauge');
    expect(text).toContain('# TYPE fieldgate_messages_received_total counter');
    expect(text).toContain('# TYPE fieldgate_device_poll_latency_seconds histogram');
    expect(sample(text, 'fieldgate_clients_connected')).toBe(3);
    expect(sample(text, 'fieldgate_messages_received_total')).toBe(10);
    expect(sample(text, 'fieldgate_messages_sent_total')).toBe(25);
    expect(sample(text, 'fieldgate_sqlite_size_bytes')).toBe(4096);
    expect(sample(text, 'fieldgate_device_online{device="meter1"}')).toBe(1);
    expect(sample(text, 'fieldgate_device_online{device="meter2"}')).toBe(0);
    expect(sample(text, 'fieldgate_device_errors_total{device="meter2"}')).toBe(7);
    expect(sample(text, 'fieldgate_bridge_outbox_depth{bridge="cloud"}')).toBe(42);
    expect(sample(text, 'fieldgate_bridge_outbox_oldest_age_seconds{bridge="cloud"}')).toBe(12.5);
    expect(sample(text, 'fieldgate_device_poll_latency_seconds_count{device="meter1"}')).toBe(2);
    expect(sample(text, 'fieldgate_device_poll_latency_seconds_bucket{le="0.025",device="meter1"}')).toBe(1);
    expect(sample(text, 'fieldgate_device_poll_latency_seconds_bucket{le="0.5",device="meter1"}')).toBe(2);

    // Totals follow the source on the next scrape rather than accumulating.
    received = 15;
    const again = await (await fetch(url('/metrics'))).text();
    expect(sample(again, 'fieldgate_messages_received_total')).toBe(15);
  });

  it('drops series of devices that are gone and survives a failing collector', async () => {
    const metrics = createMetrics({ processMetrics: false });
    let devices: MetricsSnapshot['devices'] = [{ device: 'old', online: true, errorsTotal: 1 }];
    metrics.registerCollector(() => ({ devices }));
    const remove = metrics.registerCollector(() => {
      throw new Error('broker gone');
    });
    server = await startMetricsServer({ port: 0, metrics, health: () => true });
    const first = await (await fetch(url('/metrics'))).text();
    expect(sample(first, 'fieldgate_device_online{device="old"}')).toBe(1);
    expect(sample(first, 'fieldgate_metrics_collector_errors_total')).toBe(1);
    devices = [{ device: 'new', online: false, errorsTotal: 0 }];
    remove();
    const second = await (await fetch(url('/metrics'))).text();
    expect(sample(second, 'fieldgate_device_online{device="old"}')).toBeUndefined();
    expect(sample(second, 'fieldgate_device_online{device="new"}')).toBe(0);
    expect(sample(second, 'fieldgate_metrics_collector_errors_total')).toBe(1);
  });

  it('includes Node process metrics by default', async () => {
    server = await startMetricsServer({ port: 0, metrics: createMetrics(), health: () => true });
    const text = await (await fetch(url('/metrics'))).text();
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('accepts a plain prom-client registry with a before-scrape hook', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'custom_total', help: 'x', registers: [registry] });
    server = await startMetricsServer({ port: 0, registry, beforeScrape: () => counter.inc(2), health: () => true });
    expect(sample(await (await fetch(url('/metrics'))).text(), 'custom_total')).toBe(2);
  });
});

describe('/healthz and the rest', () => {
  it('answers 200 ok when healthy and 503 when not, following the callback', async () => {
    let healthy = true;
    server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: async () => healthy });
    let res = await fetch(url('/healthz'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
    healthy = false;
    res = await fetch(url('/healthz'));
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/^unhealthy/);
  });

  it('treats a throwing or slow health check as unhealthy', async () => {
    server = await startMetricsServer({
      port: 0,
      metrics: createMetrics({ processMetrics: false }),
      health: () => {
        throw new Error('database is read-only');
      },
    });
    let res = await fetch(url('/healthz'));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('unhealthy: database is read-only\n');
    await server.close();
    server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: () => new Promise<boolean>(() => {}), healthTimeoutMs: 200 });
    res = await fetch(url('/healthz'));
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/longer than 200 ms/);
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: () => true });
    expect((await fetch(url('/'))).status).toBe(404);
    const post = await fetch(url('/metrics'), { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(url('/healthz?verbose=1'))).status).toBe(200);
  });

  it('says clearly when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(startMetricsServer({ port, metrics: createMetrics({ processMetrics: false }), health: () => true })).rejects.toThrow(
        new RegExp(`metrics endpoint cannot listen on 127\\.0\\.0\\.1:${port}: .*already in use`),
      );
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('stops listening on close', async () => {
    server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: () => true });
    const port = server.port;
    await server.close();
    server = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
