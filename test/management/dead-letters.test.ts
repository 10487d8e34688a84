// A bridge's dead letters through the management API, against a real Mosquitto "cloud" whose ACL
// refuses one topic (PUBACK 0x87: the message goes to bridge_dead): listed, retried once the cloud's
// ACL allows it (it then arrives), deleted.
import { chmodSync, writeFileSync } from 'node:fs';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { MosquittoRemote } from '../bridge/helpers.js';
import { requireTool } from '../helpers/peers.js';
import { tempDir, waitFor } from '../gateway/helpers.js';
import { ask, connectClient } from './helpers.js';

const GW = 'dead-gw';
const NS = `fieldgate/${GW}`;

describe.skipIf(!requireTool('mosquitto'))('management API: bridge dead letters', () => {
  let dir: string;
  let aclFile: string;
  let cloud: MosquittoRemote;
  let cloudPort: number;
  let gateway: Gateway;
  let subscriber: MqttClient;
  const arrived: string[] = [];
  const clients: MqttClient[] = [];

  const startCloud = async (rules: string[]) => {
    writeFileSync(aclFile, [...rules, 'topic read fleet/#', ''].join('\n'), { mode: 0o644 });
    cloud = new MosquittoRemote([`acl_file ${aclFile}`]);
    cloudPort = await cloud.start(cloudPort);
    subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${cloudPort}`, { reconnectPeriod: 0, protocolVersion: 5 });
    subscriber.on('message', (t, p) => arrived.push(`${t} ${p.toString()}`));
    await subscriber.subscribeAsync('fleet/#', { qos: 1 });
  };

  beforeAll(async () => {
    dir = tempDir('fieldgate-dead-');
    chmodSync(dir, 0o755);
    aclFile = path.join(dir, 'cloud.acl');
    await startCloud(['topic write fleet/gw/data/ok/#']);
    gateway = await startGateway(parseGatewayConfig({
      gatewayId: GW,
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      bridges: [{
        name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: GW, protocolVersion: 5,
        reconnect: { minMs: 50, maxMs: 300 },
        rules: [{ direction: 'out', filter: 'data/#', remotePrefix: 'fleet/gw/' }],
      }],
    }, 'dead letters test', dir), silentLogger);
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await subscriber?.endAsync();
    await gateway?.stop();
    await cloud?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the messages the cloud refused, retries them once it takes them, deletes the rest', async () => {
    const url = `mqtt://127.0.0.1:${gateway.listeners[0].port}`;
    const admin = await connectClient(url, { clientId: 'dead-admin', username: 'admin' }, clients);
    await waitFor(async () => (await ask(admin, NS, 'bridges')).data?.[0]?.state === 'connected', 'the bridge connected');
    await admin.publishAsync('data/ok/1', 'first', { qos: 1 });
    await admin.publishAsync('data/secret/a', 'refused-a', { qos: 1 });
    await admin.publishAsync('data/secret/b', Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    await admin.publishAsync('data/ok/2', 'second', { qos: 1 });
    await waitFor(() => arrived.includes('fleet/gw/data/ok/2 second'), 'the allowed messages at the cloud');

    const listed = await waitFor(async () => {
      const a = await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud' });
      return a.data?.total === 2 ? a : undefined;
    }, 'two dead letters');
    const [a, b] = listed.data.rows;
    expect(a).toMatchObject({ topic: 'fleet/gw/data/secret/a', payload: 'refused-a', payloadEncoding: 'utf8', bytes: 9, retain: false, reason: expect.stringMatching(/0x87/) });
    expect(b).toMatchObject({ topic: 'fleet/gw/data/secret/b', payload: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), payloadEncoding: 'base64', bytes: 3 });
    expect(Date.parse(a.deadAt)).toBeGreaterThanOrEqual(Date.parse(a.createdAt));
    const page = await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud', after: a.id, limit: 1 });
    expect(page.data.rows.map((r: any) => r.id)).toEqual([b.id]);

    // The cloud's ACL now takes secret/a: retried, it arrives, and leaves the dead letters.
    await subscriber.endAsync();
    await cloud.stop();
    await startCloud(['topic write fleet/gw/data/ok/#', 'topic write fleet/gw/data/secret/a']);
    await waitFor(async () => (await ask(admin, NS, 'bridges')).data?.[0]?.state === 'connected', 'the bridge reconnected');
    const retried = await ask(admin, NS, 'bridge/dead/retry', { bridge: 'cloud', ids: [a.id] });
    expect(retried).toMatchObject({ status: 'ok', data: { bridge: 'cloud', retried: 1 } });
    await waitFor(() => arrived.includes('fleet/gw/data/secret/a refused-a'), 'the retried message at the cloud');
    const left = await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud' });
    expect(left.data.rows.map((r: any) => r.topic)).toEqual(['fleet/gw/data/secret/b']);

    // secret/b is still refused: retried, it comes back as a new dead letter; then deleted.
    await ask(admin, NS, 'bridge/dead/retry', { bridge: 'cloud', all: true });
    const back = await waitFor(async () => {
      const l = await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud' });
      return l.data.rows.length === 1 && l.data.rows[0].id !== b.id ? l : undefined;
    }, 'secret/b refused again');
    expect(back.data.rows[0].topic).toBe('fleet/gw/data/secret/b');
    const deleted = await ask(admin, NS, 'bridge/dead/delete', { bridge: 'cloud', ids: [back.data.rows[0].id, 999_999] });
    expect(deleted.data).toEqual({ bridge: 'cloud', deleted: 1 });
    expect((await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud' })).data).toMatchObject({ total: 0, rows: [] });

    // A long text is shown cut to 4 KiB, still as text though the cut falls inside a character.
    const long = 'x' + 'é'.repeat(3000);
    await admin.publishAsync('data/secret/long', long, { qos: 1 });
    const cut = await waitFor(async () => (await ask(admin, NS, 'bridge/dead/list', { bridge: 'cloud' })).data.rows[0], 'the long dead letter');
    expect(cut).toMatchObject({ topic: 'fleet/gw/data/secret/long', bytes: Buffer.byteLength(long), truncated: true, payloadEncoding: 'utf8' });
    expect(long.startsWith(cut.payload)).toBe(true);
    expect(Buffer.byteLength(cut.payload)).toBe(4095);
    expect((await ask(admin, NS, 'bridge/dead/delete', { bridge: 'cloud', all: true })).data.deleted).toBe(1);

    const unknown = await ask(admin, NS, 'bridge/dead/list', { bridge: 'moon' });
    expect(unknown.errors![0]).toMatchObject({ path: 'bridge', message: expect.stringContaining('bridges: cloud') });
    const neither = await ask(admin, NS, 'bridge/dead/delete', { bridge: 'cloud' });
    expect(neither.status).toBe('error');
    const empty = await ask(admin, NS, 'bridge/dead/delete', { bridge: 'cloud', ids: [] });
    expect(empty.status).toBe('error');
    expect(arrived.filter((m) => m.includes('secret/b'))).toEqual([]);
  });
});
