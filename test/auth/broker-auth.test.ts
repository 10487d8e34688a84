// createAuth plugged into the real broker, exercised with MQTT.js clients and a mosquitto_passwd file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuth, type Auth } from '../../src/auth/create-auth.js';
import { Broker } from '../../src/broker/broker.js';
import { requireTool } from '../helpers/peers.js';

const haveTool = requireTool('mosquitto_passwd');

describe.skipIf(!haveTool)('broker with password file and ACL', () => {
  let dir: string;
  let broker: Broker;
  let auth: Auth;
  let port: number;
  let passwordFile: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-broker-auth-'));
    passwordFile = join(dir, 'passwd');
    const aclFile = join(dir, 'acl');
    execFileSync('mosquitto_passwd', ['-b', '-c', passwordFile, 'reader', 'r-pass']);
    execFileSync('mosquitto_passwd', ['-b', passwordFile, 'operator', 'o-pass']);
    writeFileSync(aclFile, ['user reader', 'topic read fieldgate/#', 'user operator', 'topic readwrite fieldgate/#', 'topic deny fieldgate/locked/#', ''].join('\n'));
    auth = createAuth({ passwordFile, aclFile, allowAnonymous: false });
    broker = new Broker({ dataDir: null, authenticate: auth.authenticate, authorize: auth.authorize, sysIntervalMs: 0 });
    await broker.start();
    ({ port } = await broker.listen({ port: 0, host: '127.0.0.1' }));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects; resolves with the client or rejects with the CONNACK error. */
  function connect(options: IClientOptions): Promise<MqttClient> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 10_000, ...options });
      clients.push(client);
      client.once('connect', () => resolve(client));
      client.once('error', (err) => reject(err));
    });
  }

  it('lets users from mosquitto_passwd in and keeps wrong passwords and anonymous clients out', async () => {
    await expect(connect({ username: 'reader', password: 'r-pass' })).resolves.toBeDefined();
    await expect(connect({ username: 'reader', password: 'o-pass' })).rejects.toMatchObject({ code: 4 });
    await expect(connect({ username: 'nobody', password: 'x', protocolVersion: 5 })).rejects.toMatchObject({ code: 0x86 });
    await expect(connect({})).rejects.toMatchObject({ code: 4 });
  });

  it('enforces the ACL on subscribe and publish', async () => {
    const reader = await connect({ username: 'reader', password: 'r-pass', protocolVersion: 5 });
    const operator = await connect({ username: 'operator', password: 'o-pass', protocolVersion: 5 });
    expect((await reader.subscribeAsync('fieldgate/#', { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    // SUBACK 0x87 "not authorized": MQTT.js turns it into a rejection.
    await expect(reader.subscribeAsync('other/#', { qos: 1 })).rejects.toThrow(/not authorized/i);
    // Overlapping the locked subtree is fine (its messages are filtered at delivery); lying inside it is not.
    expect((await operator.subscribeAsync('fieldgate/#', { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    await expect(operator.subscribeAsync('fieldgate/locked/+', { qos: 1 })).rejects.toThrow(/not authorized/i);

    const received: string[] = [];
    reader.on('message', (topic) => received.push(topic));
    // The reader may not publish: the broker answers PUBACK "not authorized" and routes nothing.
    await expect(reader.publishAsync('fieldgate/meter1/power', '1', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await expect(operator.publishAsync('fieldgate/locked/x', '1', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await operator.publishAsync('fieldgate/meter1/power', '2', { qos: 1 });
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual(['fieldgate/meter1/power']);
  });

  it('takes a password changed by mosquitto_passwd after reload', async () => {
    execFileSync('mosquitto_passwd', ['-b', passwordFile, 'reader', 'new-pass']);
    await expect(connect({ username: 'reader', password: 'new-pass' })).rejects.toMatchObject({ code: 4 });
    expect(auth.reload()).toEqual({ ok: true });
    await expect(connect({ username: 'reader', password: 'new-pass' })).resolves.toBeDefined();
  });
});
