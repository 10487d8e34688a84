// /metrics and /healthz of a running gateway with "metrics" in its config: the demo meter, a device
// whose Modbus slave is gone, and a bridge whose cloud is unreachable (so its outbox fills).
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { freePort, tempDir, waitFor } from './helpers.js';

/** The value of one series in Prometheus text, e.g. series(text, 'fieldgate_device_online{device="x"}'). */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('metrics endpoint of a running gateway', () => {
  let dir: string;
  let gateway: Gateway;
  let base: string;
  let client: MqttClient;
  let meter: SimulatedMeter;
  const scrape = async () => {
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    return { type: response.headers.get('content-type'), text: await response.text() };
  };

  beforeAll(async () => {
    dir = tempDir('fieldgate-metrics-');
    // A Modbus TCP server that answers unit 1 only: unit 9 behind it never replies, as a dead meter on a gateway.
    meter = await startSimulatedMeter({ seed: 3 });
    const deadCloud = await freePort();
    fs.writeFileSync(path.join(dir, 'gone.json'), JSON.stringify({
      buses: [{ id: 'gone', type: 'modbus-tcp', host: '127.0.0.1', port: meter.port }],
      devices: [{ id: 'gone-meter', bus: 'gone', unitId: 9, pollIntervalMs: 200, timeoutMs: 300, offlinePollIntervalMs: 1000, points: [{ name: 'v', table: 'input', address: 0, type: 'uint16' }] }],
    }));
    const config = parseGatewayConfig({
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      demo: true,
      devices: ['gone.json'],
      bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${deadCloud}`, clientId: 'gw', reconnect: { minMs: 1000, maxMs: 2000 }, rules: [{ direction: 'out', filter: 'fieldgate/#' }] }],
      metrics: { host: '127.0.0.1', port: 0 },
    }, 'metrics-test', dir);
    gateway = await startGateway(config, silentLogger);
    base = `http://127.0.0.1:${gateway.metricsServer!.port}`;
    client = await mqtt.connectAsync({ host: '127.0.0.1', port: gateway.listeners[0].port, reconnectPeriod: 0 });
    await client.publishAsync('fieldgate/manual/hello', 'x', { qos: 1 });
  }, 60_000);

  afterAll(async () => {
    await client?.endAsync(true);
    await gateway?.stop();
    await meter?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves Prometheus text with the fieldgate_* series', async () => {
    let last = '';
    const { type, text } = await waitFor(async () => {
      const s = await scrape();
      last = s.text;
      const ready = series(s.text, 'fieldgate_device_online{device="demo-meter"}') === 1
        && (series(s.text, 'fieldgate_device_errors_total{device="gone-meter"}') ?? 0) > 0
        && (series(s.text, 'fieldgate_bridge_outbox_depth{bridge="cloud"}') ?? 0) > 0;
      return ready && s;
    }, 'device and bridge series', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; last scrape:\n${last.split('\n').filter((l) => l.startsWith('fieldgate_')).join('\n')}`);
    });
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(series(text, 'fieldgate_clients_connected')).toBe(1);
    expect(series(text, 'fieldgate_messages_received_total')).toBeGreaterThanOrEqual(1);
    expect(series(text, 'fieldgate_messages_sent_total')).toBeGreaterThanOrEqual(0);
    expect(series(text, 'fieldgate_device_online{device="gone-meter"}')).toBe(0);
    expect(series(text, 'fieldgate_device_errors_total{device="demo-meter"}')).toBe(0);
    expect(series(text, 'fieldgate_bridge_outbox_oldest_age_seconds{bridge="cloud"}')).toBeGreaterThanOrEqual(0);
    expect(series(text, 'fieldgate_sqlite_size_bytes')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE fieldgate_device_poll_latency_seconds histogram');
    expect(series(text, 'fieldgate_device_poll_latency_seconds_count{device="demo-meter"}')).toBeGreaterThan(0);
    expect(series(text, 'fieldgate_device_poll_latency_seconds_bucket{le="+Inf",device="demo-meter"}')).toBeGreaterThan(0);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('the outbox depth follows what waits for the cloud', async () => {
    const before = series((await scrape()).text, 'fieldgate_bridge_outbox_depth{bridge="cloud"}')!;
    for (let i = 0; i < 5; i++) await client.publishAsync(`fieldgate/manual/n${i}`, String(i), { qos: 1 });
    await waitFor(async () => (series((await scrape()).text, 'fieldgate_bridge_outbox_depth{bridge="cloud"}') ?? 0) >= before + 5, 'the outbox to grow by 5');
  });

  it('/healthz answers 200 while the broker accepts connections and the database is writable; unknown paths 404', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
