// The ready-made collectors and health check against the real broker, device runtime and bridge.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startBridge, type BridgeHandle } from '../../src/bridge/index.js';
import { Broker } from '../../src/broker/broker.js';
import { writeDemoMapping } from '../../src/demo/demo-mapping.js';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { loadDeviceMapping, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';
import { brokerCollector, bridgesCollector, devicesCollector, gatewayHealth, sqliteSizeBytes } from '../../src/metrics/collectors.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/http.js';
import { createMetrics } from '../../src/metrics/registry.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startBroker(dataDir: string | null): Promise<{ broker: Broker; port: number }> {
  const broker = new Broker({ dataDir, sysIntervalMs: 0 });
  await broker.start();
  const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => broker.close());
  return { broker, port };
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('collectors', () => {
  it('report broker traffic, device state and the bridge outbox on /metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-collect-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { broker, port } = await startBroker(join(dir, 'data'));

    const meter: SimulatedMeter = await startSimulatedMeter({ seed: 3 });
    cleanups.push(() => meter.stop());
    const loaded = loadDeviceMapping(writeDemoMapping(dir, meter.port));
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    for (const p of loaded.mapping.modbusDevices[0]!.points) p.pollIntervalMs = 200;
    const devices: DevicesHandle = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
    cleanups.push(() => devices.stop());

    // A bridge whose cloud is unreachable: everything it forwards waits in the outbox.
    const bridge: BridgeHandle = await startBridge(
      broker,
      { name: 'cloud', url: `mqtt://127.0.0.1:${await closedPort()}`, clientId: 'gw-test', rules: [{ direction: 'out', filter: 'fieldgate/#' }] },
      silentLogger,
    );
    cleanups.push(() => bridge.stop());

    const metrics = createMetrics({ processMetrics: false });
    metrics.registerCollector(brokerCollector(broker));
    metrics.registerCollector(devicesCollector(() => devices));
    metrics.registerCollector(bridgesCollector(() => [bridge]));
    const server: MetricsServer = await startMetricsServer({ port: 0, metrics, health: () => true });
    cleanups.push(() => server.close());

    const client = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0 });
    cleanups.push(() => client.endAsync(true));
    await client.subscribeAsync('fieldgate/demo-meter/voltage');
    await client.publishAsync('fieldgate/test', 'x', { qos: 1 });

    let text = '';
    await waitFor(async () => {
      text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      return (
        (sample(text, 'fieldgate_messages_sent_total') ?? 0) >= 1 &&
        (sample(text, 'fieldgate_bridge_outbox_depth{bridge="cloud"}') ?? 0) >= 2 &&
        sample(text, 'fieldgate_device_online{device="demo-meter"}') === 1
      );
    }, 'traffic and a filled outbox in /metrics');
    expect(sample(text, 'fieldgate_clients_connected')).toBe(1);
    expect(sample(text, 'fieldgate_messages_received_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'fieldgate_device_online{device="demo-meter"}')).toBe(1);
    // (The device runtime may count one failed poll at start, before its bus connection is open.)
    const errorsWhileOnline = sample(text, 'fieldgate_device_errors_total{device="demo-meter"}')!;
    expect(errorsWhileOnline).toBeLessThanOrEqual(1);
    expect(sample(text, 'fieldgate_bridge_outbox_oldest_age_seconds{bridge="cloud"}')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'fieldgate_sqlite_size_bytes')).toBeGreaterThan(0);

    // The meter goes away: the device is reported offline; the error counter mirrors the runtime's.
    await meter.stop();
    await waitFor(async () => {
      text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      return sample(text, 'fieldgate_device_online{device="demo-meter"}') === 0;
    }, 'the device to be reported offline');
    const errors = sample(text, 'fieldgate_device_errors_total{device="demo-meter"}')!;
    expect(errors).toBeGreaterThanOrEqual(errorsWhileOnline);
    expect(errors).toBeLessThanOrEqual(devices.status()[0]!.failedPolls);
  });

  it('measures an in-memory and an on-disk database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-size-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const memory = await startBroker(null);
    const disk = await startBroker(join(dir, 'data'));
    expect(sqliteSizeBytes(memory.broker.db)).toBeGreaterThan(0);
    expect(sqliteSizeBytes(disk.broker.db)).toBeGreaterThanOrEqual(sqliteSizeBytes(memory.broker.db));
  });
});

describe('gatewayHealth', () => {
  it('is healthy while the broker listens and its database is writable', async () => {
    const { broker, port } = await startBroker(null);
    const health = gatewayHealth({ broker, listeners: () => [{ host: '0.0.0.0', port }] });
    await expect(health()).resolves.toBe(true);
  });

  it('names a listener that does not accept connections', async () => {
    const { broker } = await startBroker(null);
    const port = await closedPort();
    const health = gatewayHealth({ broker, listeners: () => [{ host: '127.0.0.1', port }] });
    await expect(health()).rejects.toThrow(`listener 127.0.0.1:${port} does not accept connections`);
  });

  it('reports a database that cannot be written', async () => {
    if (process.getuid?.() === 0) {
      // root ignores file modes; close the database instead to make it unusable.
      const { broker, port } = await startBroker(null);
      const health = gatewayHealth({ broker, listeners: () => [{ host: '127.0.0.1', port }] });
      broker.db.close();
      await expect(health()).rejects.toThrow('database is closed');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-ro-'));
    cleanups.push(() => { chmodSync(join(dir, 'data'), 0o755); rmSync(dir, { recursive: true, force: true }); });
    const { broker, port } = await startBroker(join(dir, 'data'));
    chmodSync(join(dir, 'data'), 0o555);
    const health = gatewayHealth({ broker, listeners: () => [{ host: '127.0.0.1', port }] });
    await expect(health()).rejects.toThrow(/database/);
  });

  it('is unhealthy once the broker shuts down, and /healthz says why', async () => {
    const broker = new Broker({ dataDir: null, sysIntervalMs: 0 });
    await broker.start();
    const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
    const server = await startMetricsServer({ port: 0, metrics: createMetrics({ processMetrics: false }), health: gatewayHealth({ broker, listeners: () => [{ host: '127.0.0.1', port }] }) });
    cleanups.push(() => server.close());
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    await broker.close();
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/^unhealthy: (shutting down|database is closed)\n$/);
  });
});
