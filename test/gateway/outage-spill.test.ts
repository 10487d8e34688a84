// The whole gateway (startGateway) through a cloud outage with a real Mosquitto as the cloud: readings nobody waits
// for (QoS 0) that the cloud cannot acknowledge go to the spill log in the data directory, not to SQLite; QoS 1
// messages from a socket publisher still go to the outbox table before their PUBACK. When the cloud is back everything
// arrives, each publisher's messages in order, the spilled batches where the outbox would have put them, and the
// acknowledged segments are deleted.
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { CloudMosquitto } from '../chaos/peers.js';
import { freePort, tempDir, waitFor } from './helpers.js';
import { requireTool } from '../helpers/peers.js';

const haveMosquitto = requireTool('mosquitto');
const HOLD_MS = 300;

describe.skipIf(!haveMosquitto)('the gateway through a cloud outage (spill log)', () => {
  const clients: MqttClient[] = [];
  let gateway: Gateway | undefined;
  let cloud: CloudMosquitto | undefined;
  const dir = tempDir('fieldgate-outage-');

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await gateway?.stop();
    await cloud?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('spills readings to the log while the cloud is down, drains them in order when it is back, deletes the segments', async () => {
    const dataDir = path.join(dir, 'data');
    cloud = new CloudMosquitto(await freePort(), path.join(dir, 'cloud'));
    await cloud.start();
    const config = parseGatewayConfig({
      broker: { host: '127.0.0.1', port: 0, dataDir },
      bridges: [{
        name: 'cloud', url: `mqtt://127.0.0.1:${cloud.port}`, clientId: 'outage-gw', hold: { ms: HOLD_MS },
        reconnect: { minMs: 100, maxMs: 500 }, rules: [{ direction: 'out', filter: 'data/#', remotePrefix: 'edge/' }],
      }],
    }, 'outage-test', dir);
    gateway = await startGateway(config, pino({ level: 'silent' }));
    const port = gateway.listeners[0]!.port;
    const connect = (options: mqtt.IClientOptions) => {
      const c = mqtt.connect({ host: '127.0.0.1', reconnectPeriod: 100, ...options });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    };
    const atCloud: string[] = [];
    const cloudSub = connect({ port: cloud.port, clientId: 'outage-cloud-sub', clean: false });
    cloudSub.on('message', (_t, p) => atCloud.push(p.toString()));
    await waitFor(() => cloudSub.connected, 'cloud subscriber');
    await cloudSub.subscribeAsync('edge/#', { qos: 1 });
    const readings = connect({ port, clientId: 'outage-meter' });
    const q1 = connect({ port, clientId: 'outage-q1' });
    await waitFor(() => readings.connected && q1.connected, 'publishers');

    const spillDir = path.join(dataDir, 'spill-cloud');
    const segments = () => (fs.existsSync(spillDir) ? fs.readdirSync(spillDir).filter((n) => n.endsWith('.spill')) : []);
    const outboxRowsEver = () => (gateway!.broker.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'bridge_outbox_cloud'`).get() as { seq: number } | undefined)?.seq ?? 0;
    let r = 0;
    let q = 0;
    const reading = () => readings.publishAsync(`data/meter/p${r % 3}`, `r${r++}`, { qos: 0 });
    const qos1 = () => q1.publishAsync('data/q1', `q${q++}`, { qos: 1 });

    // Connected: acknowledged within the hold time, never written.
    for (let i = 0; i < 30; i++) await reading();
    await waitFor(() => atCloud.length >= 30, '30 readings at the cloud while connected');
    expect(segments()).toEqual([]);

    await cloud.stop();
    await waitFor(() => gateway!.status().some((s) => s.name === 'bridges' && /not connected/.test(s.detail ?? '')), 'bridge disconnected', 10_000);
    // The outage: readings, then QoS 1 messages after a spill, then more readings.
    for (let i = 0; i < 60; i++) await reading();
    await waitFor(() => segments().length > 0, 'a spill segment', 5000);
    await new Promise((res) => setTimeout(res, HOLD_MS * 3));
    for (let i = 0; i < 10; i++) await qos1();
    for (let i = 0; i < 60; i++) {
      await reading();
      if (i % 20 === 19) await new Promise((res) => setTimeout(res, 50));
    }
    await new Promise((res) => setTimeout(res, HOLD_MS * 3));
    // Only the QoS 1 messages are SQLite rows; the readings are on the spill log.
    expect(outboxRowsEver()).toBe(10);
    const spilledBytes = segments().reduce((n, f) => n + fs.statSync(path.join(spillDir, f)).size, 0);
    // 120 readings of ~4-byte payloads on 3 topics: each written once, a few bytes each plus one header per batch
    expect(spilledBytes).toBeGreaterThan(120 * 4);
    expect(spilledBytes).toBeLessThan(120 * 16 + 20 * 32);

    await cloud.start();
    const has = () => new Set(atCloud);
    await waitFor(() => has().size >= 150 + 10, 'everything at the cloud', 20_000);
    // QoS 1 to the cloud: a redelivery after its restart may repeat one; first arrivals are what count for the order.
    const firsts = [...new Set(atCloud)];
    const rs = firsts.filter((p) => p.startsWith('r')).map((p) => Number(p.slice(1)));
    const qs = firsts.filter((p) => p.startsWith('q')).map((p) => Number(p.slice(1)));
    expect(rs).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(qs).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // The readings spilled before the QoS 1 rows existed come first, as they would from the outbox alone; the later
    // ones after the rows.
    expect(firsts.indexOf('r89')).toBeLessThan(firsts.indexOf('q0'));
    expect(firsts.indexOf('q9')).toBeLessThan(firsts.indexOf('r149'));
    await waitFor(() => segments().length === 0, 'acknowledged segments deleted', 10_000);
    // The QoS 1 rows are deleted after their PUBACKs (in batches: a moment after the cloud subscriber has them).
    await waitFor(() => (gateway!.broker.db.prepare('SELECT count(*) AS n FROM bridge_outbox_cloud').get() as { n: number }).n === 0, 'outbox rows deleted', 10_000);
  }, 60_000);
});
