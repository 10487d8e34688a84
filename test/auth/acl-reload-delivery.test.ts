// A subscription granted in full under one ACL must follow a reloaded ACL (SIGHUP): a new deny
// inside it filters its messages at once, for connected and offline persistent sessions alike.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuth, type Auth } from '../../src/auth/create-auth.js';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { Broker } from '../../src/broker/broker.js';
import { waitFor } from '../gateway/helpers.js';

describe('delivery-time ACL checks after a reload', () => {
  let dir: string;
  let aclFile: string;
  let broker: Broker;
  let auth: Auth;
  let port: number;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-acl-reload-'));
    const passwordFile = join(dir, 'passwd');
    aclFile = join(dir, 'acl');
    addOrUpdateUser(passwordFile, 'dash', 'd');
    addOrUpdateUser(passwordFile, 'pub', 'p');
    writeFileSync(aclFile, 'user dash\ntopic read #\nuser pub\ntopic write #\n');
    auth = createAuth({ passwordFile, aclFile, allowAnonymous: false });
    broker = new Broker({ dataDir: join(dir, 'data'), authenticate: auth.authenticate, authorize: auth.authorize, sysIntervalMs: 0 });
    await broker.start();
    ({ port } = await broker.listen({ port: 0, host: '127.0.0.1' }));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (username: string, password: string, clientId: string, clean = true) => {
    const client = mqtt.connect({ host: '127.0.0.1', port, username, password, clientId, clean, reconnectPeriod: 0 });
    clients.push(client);
    await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject); });
    return client;
  };

  it('filters what was queued for a restored session after a restart, before its client is back', async () => {
    writeFileSync(aclFile, 'user dash\ntopic read #\ntopic deny vault/#\nuser pub\ntopic write #\n');
    expect(auth.reload()).toEqual({ ok: true });
    broker.refreshReadAccess();
    const dash = await connect('dash', 'd', 'restored', false);
    await dash.subscribeAsync('#', { qos: 1 });
    await dash.endAsync();
    // Restart: the session comes back from SQLite without knowing who its client is.
    await broker.close();
    broker = new Broker({ dataDir: join(dir, 'data'), authenticate: auth.authenticate, authorize: auth.authorize, sysIntervalMs: 0 });
    await broker.start();
    ({ port } = await broker.listen({ port: 0, host: '127.0.0.1' }));
    const pub = await connect('pub', 'p', 'pub-restart');
    await pub.publishAsync('vault/key', 'secret', { qos: 1 });
    await pub.publishAsync('open/x', 'fine', { qos: 1 });
    const seen: string[] = [];
    const back = mqtt.connect({ host: '127.0.0.1', port, username: 'dash', password: 'd', clientId: 'restored', clean: false, reconnectPeriod: 0 });
    clients.push(back);
    back.on('message', (topic) => seen.push(topic));
    await waitFor(() => seen.includes('open/x'), 'the readable queued message');
    await pub.publishAsync('vault/key2', 'secret', { qos: 1 });
    await pub.publishAsync('open/y', 'fine', { qos: 1 });
    await waitFor(() => seen.includes('open/y'), 'the live message');
    expect(seen).toEqual(['open/x', 'open/y']);
    // Back to the rules the next test starts from.
    writeFileSync(aclFile, 'user dash\ntopic read #\nuser pub\ntopic write #\n');
    expect(auth.reload()).toEqual({ ok: true });
    broker.refreshReadAccess();
  });

  it('filters a wholly granted "#" once a deny is added', async () => {
    const live = await connect('dash', 'd', 'live');
    const offline = await connect('dash', 'd', 'away', false);
    const seen: string[] = [];
    const seenLater: string[] = [];
    live.on('message', (topic) => seen.push(topic));
    await live.subscribeAsync('#', { qos: 1 });
    await offline.subscribeAsync('#', { qos: 1 });
    await offline.endAsync();
    const pub = await connect('pub', 'p', 'pub');
    await pub.publishAsync('plant/secret', 'before', { qos: 1 });
    await waitFor(() => seen.includes('plant/secret'), 'the message before the reload');

    writeFileSync(aclFile, 'user dash\ntopic read #\ntopic deny plant/secret\nuser pub\ntopic write #\n');
    expect(auth.reload()).toEqual({ ok: true });
    broker.refreshReadAccess();
    await pub.publishAsync('plant/secret', 'after', { qos: 1 });
    await pub.publishAsync('plant/open', 'after', { qos: 1 });
    await waitFor(() => seen.includes('plant/open'), 'the allowed message after the reload');
    expect(seen).toEqual(['plant/secret', 'plant/open']);

    const back = mqtt.connect({ host: '127.0.0.1', port, username: 'dash', password: 'd', clientId: 'away', clean: false, reconnectPeriod: 0 });
    clients.push(back);
    back.on('message', (topic) => seenLater.push(topic));
    await waitFor(() => seenLater.includes('plant/open'), 'the offline session\'s queue');
    // "before" was queued under the old rules; the new deny drops it too (Mosquitto re-checks the queue on connect).
    expect(seenLater).toEqual(['plant/open']);
  });
});
