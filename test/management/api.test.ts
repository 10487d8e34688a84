// The management API end to end: a gateway with the demo meter, a password file and an ACL, asked by
// real peers (MQTT.js v5 with Response Topic and Correlation Data, MQTT.js 3.1.1 with the plain
// response topic and a transaction, mosquitto_rr and mosquitto_pub/sub), with one user allowed the
// management namespace and one denied it (who gets nothing, and whose requests do nothing).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { loadGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { tempDir, waitFor } from '../gateway/helpers.js';

const run = promisify(execFile);
const GW = 'mgmt-gw';
const NS = `fieldgate/${GW}`;

interface Answer {
  status: 'ok' | 'error';
  data?: any;
  error?: string;
  errors?: { path: string; message: string; text: string }[];
  transaction?: string | number;
}

describe('management API', () => {
  let dir: string;
  let gateway: Gateway;
  let url: string;
  let port: number;
  let configFile: string;
  const clients: MqttClient[] = [];

  const connect = async (options: mqtt.IClientOptions): Promise<MqttClient> => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return client;
  };
  const admin = (options: mqtt.IClientOptions = {}) => connect({ username: 'admin', password: 'admin-pw', protocolVersion: 5, ...options });

  /** v5: a request with its own Response Topic and Correlation Data; resolves with the answer and its properties. */
  const request = async (client: MqttClient, action: string, body: unknown = {}, raw?: string) => {
    const responseTopic = `admin/replies/${client.options.clientId}`;
    const correlationData = Buffer.from(`c-${Math.random()}`);
    await client.subscribeAsync(responseTopic, { qos: 1 });
    const answer = new Promise<{ answer: Answer; correlationData?: Buffer; contentType?: string }>((resolve) => {
      const onMessage = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket) => {
        if (topic !== responseTopic || !packet.properties?.correlationData?.equals(correlationData)) return;
        client.off('message', onMessage);
        resolve({ answer: JSON.parse(payload.toString()), correlationData: packet.properties.correlationData, contentType: packet.properties.contentType });
      };
      client.on('message', onMessage);
    });
    await client.publishAsync(`${NS}/request/${action}`, raw ?? JSON.stringify(body), { qos: 1, properties: { responseTopic, correlationData } });
    return withTimeout(answer, `an answer to ${action}`);
  };

  beforeAll(async () => {
    dir = tempDir('fieldgate-mgmt-');
    addOrUpdateUser(path.join(dir, 'passwd'), 'admin', 'admin-pw', { iterations: 1000 });
    addOrUpdateUser(path.join(dir, 'passwd'), 'viewer', 'viewer-pw', { iterations: 1000 });
    addOrUpdateUser(path.join(dir, 'passwd'), 'victim', 'victim-pw', { iterations: 1000 });
    addOrUpdateUser(path.join(dir, 'passwd'), 'operator', 'operator-pw', { iterations: 1000 });
    fs.writeFileSync(path.join(dir, 'acl'), [
      'user admin', 'topic readwrite fieldgate/#', 'topic readwrite admin/#', '',
      // The viewer may read the state topics and has a reply topic of its own, but may not ask.
      'user viewer', `topic read ${NS}/state/#`, 'topic readwrite viewer/#', '',
      'user victim', 'topic readwrite victim/#', '',
      // An operator may ask what runs, not disconnect anyone.
      'user operator', `topic write ${NS}/request/clients`, `topic write ${NS}/request/info`, `topic write ${NS}/request/client/disconnect`,
      `topic deny ${NS}/request/client/disconnect`, 'topic readwrite operator/#', '',
    ].join('\n'));
    // A config file, as `fieldgate run -c` has: the check action checks that file.
    configFile = path.join(dir, 'fieldgate.json');
    fs.writeFileSync(configFile, JSON.stringify({
      gatewayId: GW, demo: true,
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0, durability: 'normal' },
      auth: { passwordFile: 'passwd', aclFile: 'acl', allowAnonymous: false },
    }));
    const config = loadGatewayConfig(configFile);
    gateway = await startGateway(config, silentLogger, { stateIntervalMs: 200, configFile });
    port = gateway.listeners[0].port;
    url = `mqtt://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a v5 request on its Response Topic with the Correlation Data echoed', async () => {
    const client = await admin({ clientId: 'admin-v5' });
    const { answer, contentType } = await request(client, 'info');
    expect(answer.status).toBe('ok');
    expect(contentType).toBe('application/json');
    expect(answer.data).toMatchObject({ gatewayId: GW, version: expect.any(String), durability: 'normal' });
    expect(answer.data.listeners).toEqual([expect.objectContaining({ type: 'mqtt', port, allowAnonymous: false })]);
    expect(Date.parse(answer.data.startedAt)).toBeLessThanOrEqual(Date.now());
  });

  it('answers a 3.1.1 request on the plain response topic with its transaction echoed', async () => {
    const client = await connect({ clientId: 'admin-311', username: 'admin', password: 'admin-pw', protocolVersion: 4 });
    await client.subscribeAsync(`${NS}/response/#`, { qos: 1 });
    const answers: { topic: string; answer: Answer }[] = [];
    client.on('message', (topic, payload) => answers.push({ topic, answer: JSON.parse(payload.toString()) }));
    // The demo meter comes online within a poll or two.
    const meter = await waitFor(async () => {
      const transaction = `t-${Math.random()}`;
      await client.publishAsync(`${NS}/request/devices`, JSON.stringify({ transaction }), { qos: 1 });
      const got = await waitFor(() => answers.find((a) => a.answer.transaction === transaction), 'the devices answer', 10_000);
      expect(got.topic).toBe(`${NS}/response/devices`);
      expect(got.answer.status).toBe('ok');
      return got.answer.data.find((d: any) => d.availability === 'online' && d.lastPollAt !== null);
    }, 'the demo meter online');
    expect(meter).toMatchObject({ bus: expect.any(String), protocol: 'modbus', errorCount: expect.any(Number), lastError: null });

    await client.publishAsync(`${NS}/request/parts`, JSON.stringify({ transaction: 42 }), { qos: 0 });
    const parts = await waitFor(() => answers.find((a) => a.answer.transaction === 42), 'the parts answer');
    expect(parts.topic).toBe(`${NS}/response/parts`);
    expect(parts.answer.data.map((p: any) => p.name)).toEqual(['core', 'bridges', 'devices', 'home-assistant', 'metrics', 'management', 'listeners', 'console']);
    const states = Object.fromEntries(parts.answer.data.map((p: any) => [p.name, p.state]));
    expect(states).toMatchObject({ core: 'running', devices: 'running', management: 'running', listeners: 'running', metrics: 'stopped' });

    // An unknown action is answered on response/error, with its transaction (found by the 2nd README
    // walkthrough: the transaction was not echoed, so a 3.1.1 client could not tell whose error it was).
    await client.publishAsync(`${NS}/request/reboot`, JSON.stringify({ transaction: 'r1' }), { qos: 1 });
    const unknown = await waitFor(() => answers.find((a) => a.answer.transaction === 'r1'), 'the unknown action\'s answer');
    expect(unknown.topic).toBe(`${NS}/response/error`);
    expect(unknown.answer.status).toBe('error');
    expect(unknown.answer.error).toContain('unknown action "reboot"');
  });

  it('validates each request body and answers in the shape of fieldgate check, and survives malformed JSON', async () => {
    const client = await admin({ clientId: 'admin-validate' });
    const missing = (await request(client, 'client/disconnect', {})).answer;
    expect(missing.status).toBe('error');
    expect(missing.errors).toEqual([{ path: 'clientId', message: 'missing: expected string', text: `request ${NS}/request/client/disconnect: clientId: missing: expected string` }]);

    const wrongType = (await request(client, 'session/remove', { clientId: 5, transaction: 'x1' })).answer;
    expect(wrongType.errors?.[0]).toMatchObject({ path: 'clientId', message: 'expected string (got 5)' });
    expect(wrongType.transaction).toBe('x1');

    const misspelt = (await request(client, 'client/disconnect', { clientid: 'a' })).answer;
    expect(misspelt.errors?.map((e) => e.message)).toContain('unknown key (did you mean "clientId"?)');

    for (const raw of ['{"clientId": ', '\u0000\u00ff', '[1,2]', '"just a string"', 'null']) {
      const bad = (await request(client, 'info', undefined, raw)).answer;
      expect(bad.status, raw).toBe('error');
      expect(bad.errors?.length, raw).toBeGreaterThan(0);
    }

    const unknown = (await request(client, 'reboot')).answer;
    expect(unknown.status).toBe('error');
    expect(unknown.error).toContain('unknown action "reboot"');
    for (const action of ['info', 'parts', 'devices', 'bridges', 'clients', 'sessions', 'check', 'client/disconnect', 'session/remove']) expect(unknown.error).toContain(action);

    // A syntax error is told as `fieldgate check` tells it, not in V8's words (2nd README walkthrough).
    const syntax = (await request(client, 'info', undefined, 'not json')).answer;
    expect(syntax.errors?.[0]?.message).toBe('not valid JSON at line 1, column 1: expected a value (a string, number, object, array, true, false or null) (got "n"); a request body is a JSON object, or nothing');

    // Still answering after all that.
    expect((await request(client, 'info')).answer.status).toBe('ok');
  });

  it('lists clients and disconnects one by id (v5: DISCONNECT 0x98 first)', async () => {
    const victim = await connect({ clientId: 'victim-1', username: 'victim', password: 'victim-pw', protocolVersion: 5 });
    await victim.subscribeAsync('victim/a');
    await victim.subscribeAsync('victim/b');
    let reason: number | undefined;
    victim.on('disconnect', (packet) => { reason = packet.reasonCode; });
    const closed = new Promise<void>((resolve) => victim.once('close', () => resolve()));
    const client = await admin({ clientId: 'admin-clients' });

    const list = (await request(client, 'clients')).answer;
    const entry = list.data.find((c: any) => c.clientId === 'victim-1');
    expect(entry).toMatchObject({ username: 'victim', protocol: '5.0', subscriptions: 2, listener: gateway.listeners[0].url, address: expect.stringContaining('127.0.0.1') });
    expect(Date.parse(entry.connectedSince)).toBeLessThanOrEqual(Date.now());

    const done = (await request(client, 'client/disconnect', { clientId: 'victim-1' })).answer;
    expect(done).toEqual({ status: 'ok', data: { clientId: 'victim-1', disconnected: true } });
    await withTimeout(closed, 'the victim closed');
    expect(reason).toBe(0x98);
    const again = (await request(client, 'client/disconnect', { clientId: 'victim-1' })).answer;
    expect(again.errors?.[0]).toMatchObject({ path: 'clientId', message: expect.stringContaining('no connected client') });
  });

  it('a user the ACL denies the namespace gets nothing and its request does nothing', async () => {
    const victim = await connect({ clientId: 'victim-2', username: 'victim', password: 'victim-pw', protocolVersion: 4 });
    let victimClosed = false;
    victim.on('close', () => { victimClosed = true; });
    const viewer = await connect({ clientId: 'viewer-1', username: 'viewer', password: 'viewer-pw', protocolVersion: 5 });
    const received: string[] = [];
    viewer.on('message', (topic) => received.push(topic));
    await viewer.subscribeAsync('viewer/replies', { qos: 1 });
    const refused = await viewer.subscribeAsync(`${NS}/response/#`, { qos: 1 }).then(() => 'granted', (error: Error) => error.message);
    expect(refused).toContain('Not authorized');
    // Its own reply topic, a v5 request, and a plain one: the ACL refuses each PUBLISH (PUBACK 0x87 to a v5 client).
    const refusedPublish = (topic: string, body: string) =>
      viewer.publishAsync(topic, body, { qos: 1, properties: { responseTopic: 'viewer/replies', correlationData: Buffer.from('x') } }).then(() => 'accepted', (error: Error & { code?: number }) => error.code);
    expect(await refusedPublish(`${NS}/request/client/disconnect`, JSON.stringify({ clientId: 'victim-2' }))).toBe(0x87);
    expect(await refusedPublish(`${NS}/request/clients`, '{}')).toBe(0x87);
    await viewer.publishAsync(`${NS}/request/client/disconnect`, JSON.stringify({ clientId: 'victim-2' }), { qos: 0 });

    // An allowed user whose response topic it may not read: no answer, and nothing is done.
    const client = await admin({ clientId: 'admin-acl' });
    await client.publishAsync(`${NS}/request/client/disconnect`, JSON.stringify({ clientId: 'victim-2' }), { qos: 1, properties: { responseTopic: 'viewer/replies' } });

    // The victim is still connected (asked after the refused requests, in order on one broker).
    const list = (await request(client, 'clients')).answer;
    expect(list.data.map((c: any) => c.clientId)).toContain('victim-2');
    expect(victimClosed).toBe(false);
    expect(received).toEqual([]);
  });

  it('the ACL allows and denies each action by its topic: an operator may list clients but not disconnect one', async () => {
    const victim = await connect({ clientId: 'victim-3', username: 'victim', password: 'victim-pw', protocolVersion: 5 });
    let victimClosed = false;
    victim.on('close', () => { victimClosed = true; });
    const operator = await connect({ clientId: 'operator-1', username: 'operator', password: 'operator-pw', protocolVersion: 5 });
    const answers: Answer[] = [];
    operator.on('message', (_topic, payload) => answers.push(JSON.parse(payload.toString())));
    await operator.subscribeAsync('operator/reply', { qos: 1 });
    const ask = (action: string, body: unknown) =>
      operator.publishAsync(`${NS}/request/${action}`, JSON.stringify(body), { qos: 1, properties: { responseTopic: 'operator/reply' } }).then(() => 'accepted', (e: Error & { code?: number }) => e.code);
    expect(await ask('clients', { transaction: 1 })).toBe('accepted');
    const list = await waitFor(() => answers.find((a) => a.transaction === 1), 'the clients answer');
    expect(list.data.map((c: any) => c.clientId)).toContain('victim-3');
    expect(await ask('client/disconnect', { clientId: 'victim-3', transaction: 2 })).toBe(0x87);
    expect(await ask('session/remove', { clientId: 'victim-3', transaction: 3 })).toBe(0x87);
    expect(await ask('info', { transaction: 4 })).toBe('accepted');
    await waitFor(() => answers.find((a) => a.transaction === 4), 'the info answer');
    expect(answers.map((a) => a.transaction)).toEqual([1, 4]);
    expect(victimClosed).toBe(false);
  });

  it('ignores retained requests and answers into its own request namespace; random payloads never stop it', async () => {
    const client = await admin({ clientId: 'admin-fuzz' });
    const victim = await connect({ clientId: 'victim-4', username: 'victim', password: 'victim-pw', protocolVersion: 4 });
    let victimClosed = false;
    victim.on('close', () => { victimClosed = true; });
    // A retained request would run again for every subscriber and at every restart.
    await client.publishAsync(`${NS}/request/client/disconnect`, JSON.stringify({ clientId: 'victim-4' }), { qos: 1, retain: true });
    // An answer published on a request topic would be read as a request.
    await client.publishAsync(`${NS}/request/client/disconnect`, JSON.stringify({ clientId: 'victim-4' }), { qos: 1, properties: { responseTopic: `${NS}/request/client/disconnect` } });
    // Clear the retained request again (an empty retained payload is not a request either).
    await client.publishAsync(`${NS}/request/client/disconnect`, '', { qos: 1, retain: true });

    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const actions = ['info', 'clients', 'sessions', 'client/disconnect', 'session/remove', 'parts', 'nope', 'client', 'client/disconnect/x', ''];
    const values = [null, 0, -1, 1e308, '', 'victim-x', [], {}, true, 'a'.repeat(300), { clientId: 1 }];
    for (let i = 0; i < 300; i++) {
      const action = actions[Math.floor(random() * actions.length)];
      const r = random();
      let payload: string | Buffer;
      if (r < 0.3) payload = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      else if (r < 0.6) payload = JSON.stringify(values[Math.floor(random() * values.length)]);
      else payload = JSON.stringify({ clientId: values[Math.floor(random() * values.length)], transaction: values[Math.floor(random() * values.length)], [`k${i % 3}`]: 1 });
      const topic = action === '' ? `${NS}/request` : `${NS}/request/${action}`;
      client.publish(topic, payload, { qos: 0, properties: random() < 0.5 ? { responseTopic: 'admin/fuzz', correlationData: Buffer.from([i & 255]) } : {} });
    }
    const { answer } = await request(client, 'clients');
    expect(answer.status).toBe('ok');
    expect(answer.data.map((c: any) => c.clientId)).toContain('victim-4');
    expect(victimClosed).toBe(false);
  });

  it('lists sessions and removes an offline persistent one, not a connected one', async () => {
    const persistent = await connect({ clientId: 'sleeper', username: 'victim', password: 'victim-pw', protocolVersion: 4, clean: false });
    await persistent.subscribeAsync('victim/sleep', { qos: 1 });
    await persistent.endAsync();
    const client = await admin({ clientId: 'admin-sessions' });

    const connected = (await request(client, 'session/remove', { clientId: 'admin-sessions' })).answer;
    expect(connected.errors?.[0].message).toContain('connected');

    const sessions = await waitFor(async () => {
      const data = (await request(client, 'sessions')).answer.data;
      return data.find((s: any) => s.clientId === 'sleeper' && !s.connected) ? data : undefined;
    }, 'the offline session');
    expect(sessions.find((s: any) => s.clientId === 'sleeper')).toMatchObject({ persistent: true, subscriptions: 1, protocol: '3.1.1' });

    expect((await request(client, 'session/remove', { clientId: 'sleeper' })).answer).toEqual({ status: 'ok', data: { clientId: 'sleeper', removed: true } });
    const after = (await request(client, 'sessions')).answer.data;
    expect(after.map((s: any) => s.clientId)).not.toContain('sleeper');
    // Reconnecting finds no session (session present false).
    const back = await connect({ clientId: 'sleeper', username: 'victim', password: 'victim-pw', protocolVersion: 4, clean: false });
    expect((back as any).connackPacket?.sessionPresent ?? false).toBe(false);
  });

  it('answers check with the running config', async () => {
    const client = await admin({ clientId: 'admin-check' });
    const { answer } = await request(client, 'check');
    expect(answer).toMatchObject({ status: 'ok', data: { file: configFile, valid: true, errors: [] } });
    // A broken ACL file on disk (not yet reloaded) is what check reports, as `fieldgate check` would.
    const acl = fs.readFileSync(path.join(dir, 'acl'), 'utf8');
    fs.writeFileSync(path.join(dir, 'acl'), `${acl}\ntopic sideways x/#\n`);
    try {
      const broken = (await request(client, 'check')).answer;
      expect(broken.status).toBe('ok');
      expect(broken.data.valid).toBe(false);
      expect(broken.data.errors).toEqual([expect.stringContaining(`${configFile}: auth.aclFile:`)]);
    } finally {
      fs.writeFileSync(path.join(dir, 'acl'), acl);
    }
  });

  it('publishes state topics: info retained, parts/devices when they change', async () => {
    const client = await admin({ clientId: 'admin-state' });
    const seen = new Map<string, { retain: boolean; body: any }>();
    client.on('message', (topic, payload, packet) => seen.set(topic, { retain: packet.retain, body: JSON.parse(payload.toString()) }));
    await client.subscribeAsync(`${NS}/state/#`);
    // The demo meter's last poll changes the devices state, a new client the parts state; the (empty)
    // bridges state was published once, before this client subscribed, and is not retained.
    await waitFor(() => seen.size === 3, 'info, parts and devices', 10_000);
    expect(seen.get(`${NS}/state/info`)).toMatchObject({ retain: true, body: { gatewayId: GW } });
    expect(seen.get(`${NS}/state/parts`)?.retain).toBe(false);
    expect(seen.get(`${NS}/state/devices`)?.body[0]).toMatchObject({ availability: expect.stringMatching(/online|offline/) });
    expect(seen.has(`${NS}/state/bridges`)).toBe(false);
  });

  it('works with mosquitto_rr (v5 response topic) and mosquitto_pub/sub (3.1.1 plain response topic)', async () => {
    const auth = ['-u', 'admin', '-P', 'admin-pw', '-h', '127.0.0.1', '-p', String(port)];
    const rr = await run('mosquitto_rr', [...auth, '-t', `${NS}/request/info`, '-e', 'admin/rr-reply', '-m', '{}', '-W', '10'], { timeout: 15_000 });
    expect(JSON.parse(rr.stdout)).toMatchObject({ status: 'ok', data: { gatewayId: GW } });

    const sub = run('mosquitto_sub', [...auth, '-V', 'mqttv311', '-t', `${NS}/response/sessions`, '-C', '1', '-W', '10'], { timeout: 15_000 });
    // mosquitto_sub has no "subscribed" signal: publish until the answer arrives.
    let stdout = '';
    void sub.then((r) => { stdout = r.stdout; });
    await waitFor(async () => {
      await run('mosquitto_pub', [...auth, '-V', 'mqttv311', '-t', `${NS}/request/sessions`, '-m', '{"transaction":"sh"}']);
      await new Promise((r) => setTimeout(r, 200));
      return stdout !== '';
    }, 'mosquitto_sub to get the answer', 12_000);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'ok', transaction: 'sh', data: expect.any(Array) });

    const v5 = await run('mosquitto_rr', [...auth, '-t', `${NS}/request/client/disconnect`, '-e', 'admin/rr-reply2', '-m', '{}', '-W', '10'], { timeout: 15_000 });
    expect(JSON.parse(v5.stdout).errors[0]).toMatchObject({ path: 'clientId' });
  });
});

async function withTimeout<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
