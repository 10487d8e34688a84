// The gateway's listeners and authentication with real clients: MQTT.js over mqtts://, ws:// and wss://,
// certificates made with the openssl CLI, a password file made by mosquitto_passwd, a Mosquitto ACL
// with %c/%u patterns, and the Mosquitto-2-style refusal of anonymous clients off loopback.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig, type GatewayConfigInput } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogger } from '../helpers/broker.js';
import { requireTool } from '../helpers/peers.js';
import { run, tempDir, waitFor } from './helpers.js';

const haveTools = requireTool('openssl') && requireTool('mosquitto_passwd');

/** A CA, a server certificate for 127.0.0.1, a client certificate "sensor-7" from the CA and a self-signed "intruder". */
function makeCertificates(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=fieldgate test CA');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, cn, ext] of [['server', 'localhost', 'server.ext'], ['client', 'sensor-7', undefined]] as const) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2',
      ...(ext ? ['-extfile', ext] : []));
  }
  ssl('req', '-x509', ...ec, '-keyout', 'intruder.key', '-out', 'intruder.crt', '-days', '2', '-subj', '/CN=sensor-7');
}

describe.skipIf(!haveTools)('gateway security with real clients', () => {
  let dir: string;
  let gateway: Gateway;
  const log = captureLogger();
  const clients: MqttClient[] = [];
  const url = (type: string) => gateway.listeners.find((l) => l.type === type && (type !== 'mqtt' || l.host === '127.0.0.1'))!;
  const tlsFiles = () => ({ ca: fs.readFileSync(path.join(dir, 'ca.crt')) });
  const clientCert = (name: 'client' | 'intruder') => ({ cert: fs.readFileSync(path.join(dir, `${name}.crt`)), key: fs.readFileSync(path.join(dir, `${name}.key`)) });

  async function connect(target: string, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await mqtt.connectAsync(target, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
    clients.push(client);
    return client;
  }

  /**
   * Resolves with how the server refused: an error message, or "closed" when the TLS layer just drops
   * the connection (MQTT.js's connectAsync would wait forever then). Rejects if the client gets in.
   */
  function refusal(target: string, options: IClientOptions = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(target, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
      const done = (outcome: string) => {
        client.end(true);
        resolve(outcome);
      };
      client.once('connect', () => {
        client.end(true);
        reject(new Error(`${target} accepted a client it should refuse`));
      });
      client.once('error', (error) => done(error.message));
      client.once('close', () => done('closed'));
    });
  }

  /** A subscriber collecting "topic payload". */
  async function watch(filter: string): Promise<string[]> {
    const admin = await connect(`mqtt://127.0.0.1:${url('mqtt').port}`, { username: 'admin', password: 'admin-pw', clientId: `watch-${clients.length}` });
    const seen: string[] = [];
    admin.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await admin.subscribeAsync(filter, { qos: 1 });
    return seen;
  }

  beforeAll(async () => {
    dir = tempDir('fieldgate-security-');
    makeCertificates(dir);
    const passwd = path.join(dir, 'passwd');
    run('mosquitto_passwd', ['-c', '-b', passwd, 'admin', 'admin-pw']);
    run('mosquitto_passwd', ['-b', passwd, 'alice', 'alice-pw']);
    fs.writeFileSync(path.join(dir, 'acl'), [
      '# clients publish under their client id, read under their user name',
      'pattern readwrite devices/%c/#',
      'pattern read users/%u/#',
      'user admin',
      'topic readwrite #',
      'user sensor-7',
      'topic write sensors/7/#',
      '',
    ].join('\n'));
    const tls = { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' };
    const input: GatewayConfigInput = {
      broker: { host: '127.0.0.1', port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      listeners: [
        { type: 'mqtts', port: 0, tls: { ...tls, useIdentityAsUsername: true } },
        { type: 'mqtts', port: 0, tls: { ...tls, requireClientCertificate: true, useIdentityAsUsername: true } },
        { type: 'ws', port: 0, path: '/mqtt' },
        { type: 'wss', port: 0, path: '/mqtt', tls },
        { type: 'mqtt', host: '0.0.0.0', port: 0 },
        { type: 'mqtt', host: '0.0.0.0', port: 0, allowAnonymous: true },
      ],
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
    };
    gateway = await startGateway(parseGatewayConfig(input, 'security-test', dir), log.logger);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts users from a mosquitto_passwd file and refuses a wrong password', async () => {
    const port = url('mqtt').port;
    await connect(`mqtt://127.0.0.1:${port}`, { username: 'alice', password: 'alice-pw' });
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'alice', password: 'nope', reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password/);
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'mallory', password: 'x', reconnectPeriod: 0, protocolVersion: 5 })).rejects.toThrow(/Bad User Name or Password/i);
  });

  it('enforces ACL patterns with %c and %u', async () => {
    const seen = await watch('#');
    const alice = await connect(`mqtt://127.0.0.1:${url('mqtt').port}`, { username: 'alice', password: 'alice-pw', clientId: 'dev1', protocolVersion: 5 });
    await alice.publishAsync('devices/dev2/temp', 'not mine', { qos: 1 }).catch(() => undefined);
    await alice.publishAsync('users/alice/note', 'read-only area', { qos: 1 }).catch(() => undefined);
    await alice.publishAsync('devices/dev1/temp', '21.5', { qos: 1 });
    await waitFor(() => seen.includes('devices/dev1/temp 21.5'), 'the allowed publish');
    expect(seen.filter((s) => !s.startsWith('$SYS'))).toEqual(['devices/dev1/temp 21.5']);

    const own = await alice.subscribeAsync('users/alice/#', { qos: 1 });
    expect(own[0].qos).toBe(1);
    await expect(alice.subscribeAsync('users/bob/#', { qos: 1 })).rejects.toThrow(/Not authorized/);
    const inbox: string[] = [];
    alice.on('message', (topic, payload) => inbox.push(`${topic} ${payload.toString()}`));
    const admin = clients[clients.length - 2];
    await admin.publishAsync('users/alice/msg', 'hello alice', { qos: 1 });
    await waitFor(() => inbox.includes('users/alice/msg hello alice'), 'a message in alice\'s own area');
  });

  it('mqtts: a client certificate from the CA becomes the user name; without one a password works', async () => {
    const seen = await watch('sensors/#');
    const sensor = await connect(`mqtts://127.0.0.1:${url('mqtts').port}`, { ...tlsFiles(), ...clientCert('client'), clientId: 'anything', servername: 'localhost' });
    await sensor.publishAsync('sensors/8/temp', 'wrong sensor', { qos: 1 }).catch(() => undefined);
    await sensor.publishAsync('sensors/7/temp', '19.0', { qos: 1 });
    await waitFor(() => seen.includes('sensors/7/temp 19.0'), 'the certificate user\'s publish');
    expect(seen).toEqual(['sensors/7/temp 19.0']);

    // A certificate that claims one name and a CONNECT that claims another is refused.
    await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${url('mqtts').port}`, { ...tlsFiles(), ...clientCert('client'), username: 'admin', password: 'admin-pw', reconnectPeriod: 0 }))
      .rejects.toThrow(/Bad username or password/);
    const withPassword = await connect(`mqtts://127.0.0.1:${url('mqtts').port}`, { ...tlsFiles(), username: 'alice', password: 'alice-pw' });
    expect(withPassword.connected).toBe(true);
    // The server certificate is checked by the client as usual: no CA, no connection.
    expect(await refusal(`mqtts://127.0.0.1:${url('mqtts').port}`, { username: 'alice', password: 'alice-pw' })).toMatch(/self[- ]signed|unable to (verify|get local issuer)/i);
  });

  it('mqtts with requireClientCertificate refuses clients without one or with a certificate from another CA', async () => {
    const port = gateway.listeners.filter((l) => l.type === 'mqtts')[1].port;
    const ok = await connect(`mqtts://127.0.0.1:${port}`, { ...tlsFiles(), ...clientCert('client') });
    expect(ok.connected).toBe(true);
    expect(await refusal(`mqtts://127.0.0.1:${port}`, { ...tlsFiles(), username: 'alice', password: 'alice-pw' })).toMatch(/certificate required|closed|ECONNRESET/);
    expect(await refusal(`mqtts://127.0.0.1:${port}`, { ...tlsFiles(), ...clientCert('intruder') })).toMatch(/unknown ca|closed|ECONNRESET/);
    await waitFor(() => log.entries.filter((e) => e.msg === 'TLS handshake failed').length >= 2, 'a log line per refused handshake');
  });

  it('ws:// and wss:// carry MQTT for browser dashboards', async () => {
    const seen = await watch('dash/#');
    const ws = await connect(`ws://127.0.0.1:${url('ws').port}/mqtt`, { username: 'alice', password: 'alice-pw', clientId: 'dash' });
    const wss = await connect(`wss://127.0.0.1:${url('wss').port}/mqtt`, { ...tlsFiles(), username: 'admin', password: 'admin-pw', protocolVersion: 5 });
    // dash is alice's client id: devices/dash/# is hers by the %c pattern; admin may publish anywhere.
    await ws.publishAsync('devices/dash/clicks', '1', { qos: 1 });
    const received: string[] = [];
    ws.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    await ws.subscribeAsync('users/alice/#', { qos: 1 });
    await wss.publishAsync('users/alice/from-wss', 'hi', { qos: 1 });
    await wss.publishAsync('dash/status', 'up', { qos: 1 });
    await waitFor(() => received.includes('users/alice/from-wss hi'), 'wss → ws delivery');
    await waitFor(() => seen.includes('dash/status up'), 'wss → tcp delivery');
    // A WebSocket on another path is not MQTT.
    expect(await refusal(`ws://127.0.0.1:${url('ws').port}/other`)).toMatch(/Unexpected server response: 404|closed/);
  });

  it('a WebSocket message far over the packet size limit closes that connection (1009) before it is buffered', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${url('ws').port}/mqtt`, 'mqtt');
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(Buffer.alloc(4 * 1024 * 1024));
    expect(await closed).toBe(1009);
    const other = await connect(`ws://127.0.0.1:${url('ws').port}/mqtt`, { username: 'alice', password: 'alice-pw' });
    expect(other.connected).toBe(true);
  });

  it('a listener bound to 0.0.0.0 refuses anonymous clients unless allowAnonymous, and says so at start', async () => {
    const lan = gateway.listeners.filter((l) => l.type === 'mqtt' && l.host === '0.0.0.0');
    expect(lan.map((l) => l.allowAnonymous)).toEqual([false, true]);
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${lan[0].port}`, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${lan[0].port}`, { reconnectPeriod: 0, protocolVersion: 5 })).rejects.toThrow(/Not authorized/i);
    const withPassword = await connect(`mqtt://127.0.0.1:${lan[0].port}`, { username: 'alice', password: 'alice-pw' });
    expect(withPassword.connected).toBe(true);
    const open = await connect(`mqtt://127.0.0.1:${lan[1].port}`);
    expect(open.connected).toBe(true);
    // The loopback listener next to them still lets local tools in without a user name.
    const local = await connect(`mqtt://127.0.0.1:${url('mqtt').port}`);
    expect(local.connected).toBe(true);
    expect(log.entries.map((e) => e.msg)).toContain(`mqtt://0.0.0.0:${lan[0].port}: anonymous clients refused (set "allowAnonymous": true on the listener to allow them)`);
  });

  it('reload() serves a renewed server certificate to new connections and keeps the old one if the new is bad', async () => {
    const served = () => new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: url('mqtts').port, ca: tlsFiles().ca, servername: 'localhost' }, () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.end();
      });
      socket.once('error', reject);
    });
    const fingerprint = (file: string) => new X509Certificate(fs.readFileSync(path.join(dir, file))).fingerprint256;
    const before = await served();
    expect(before).toBe(fingerprint('server.crt'));
    // Renewal: a new key and certificate from the same CA, written over the old files.
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], { cwd: dir });
    run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], { cwd: dir });
    const renewed = fingerprint('server.crt');
    expect(renewed).not.toBe(before);
    expect(await gateway.reload()).toEqual({ ok: true, errors: [], restartNeeded: [] });
    expect(await served()).toBe(renewed);

    fs.writeFileSync(path.join(dir, 'server.crt'), 'not a certificate\n');
    const result = await gateway.reload();
    expect(result.ok).toBe(false);
    expect(result.errors.join('\n')).toMatch(/mqtts:\/\/127\.0\.0\.1:\d+: new certificate\/key not usable, the old ones stay/);
    expect(await served()).toBe(renewed);
  });
});

describe('an ACL file without a password file', () => {
  let dir: string;
  let gateway: Gateway;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    dir = tempDir('fieldgate-acl-only-');
    fs.writeFileSync(path.join(dir, 'acl'), 'user ops\ntopic readwrite ops/#\n');
    const input: GatewayConfigInput = {
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      listeners: [{ type: 'mqtt', host: '0.0.0.0', port: 0 }],
      auth: { aclFile: 'acl' },
    };
    gateway = await startGateway(parseGatewayConfig(input, 'acl-only', dir), captureLogger().logger);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('does not let any user name through a listener that refuses anonymous clients', async () => {
    const lan = gateway.listeners[1];
    expect(lan.allowAnonymous).toBe(false);
    await expect(mqtt.connectAsync({ host: '127.0.0.1', port: lan.port, username: 'ops', password: 'anything', reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
  });

  it('on loopback takes the user name as given and applies the ACL to it', async () => {
    const port = gateway.listeners[0].port;
    const ops = await mqtt.connectAsync({ host: '127.0.0.1', port, username: 'ops', reconnectPeriod: 0, protocolVersion: 5 });
    clients.push(ops);
    const seen: string[] = [];
    ops.on('message', (topic) => seen.push(topic));
    await ops.subscribeAsync('ops/#');
    await expect(ops.subscribeAsync('other/#')).rejects.toThrow(/Not authorized/);
    await ops.publishAsync('ops/ping', 'x', { qos: 1 });
    await waitFor(() => seen.includes('ops/ping'), 'ops/ping');
  });
});

describe('a LAN listener without any password file', () => {
  it('refuses everyone, user names included, and warns at start', async () => {
    const dir = tempDir('fieldgate-no-auth-');
    const log = captureLogger();
    const gateway = await startGateway(parseGatewayConfig({ broker: { host: '0.0.0.0', port: 0, dataDir: 'data', sysIntervalSeconds: 0 } }, 'no-auth', dir), log.logger);
    try {
      const { port, url: where } = gateway.listeners[0];
      expect(log.entries.find((e) => e.level === 40)?.msg).toBe(`${where}: not on loopback and no auth.passwordFile: every client is refused (add a password file, or "allowAnonymous": true on the listener)`);
      await expect(mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
      await expect(mqtt.connectAsync({ host: '127.0.0.1', port, username: 'root', password: 'root', reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
    } finally {
      await gateway.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
