// Done-when scenarios of issue 4: the real Broker with a bridge, against a real second broker.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { startBridge, type BridgeConfigInput, type BridgeHandle } from '../../src/bridge/index.js';
import { requireTool } from '../helpers/peers.js';
import { AedesRemote, MosquittoRemote, HOST, captureLogger, checkSequence, freePort, publishMany, sleep, tempDir, waitFor } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning up
    }
  }
});

interface Gateway {
  broker: Broker;
  port: number;
  url: string;
  bridge: BridgeHandle;
  entries: Array<Record<string, unknown>>;
}

async function startGateway(bridgeConfig: Partial<BridgeConfigInput> & { url: string }, dataDir: string | null = null): Promise<Gateway> {
  const { logger, entries } = captureLogger();
  const broker = new Broker({ dataDir, logger, sysIntervalMs: 0, durability: dataDir === null ? 'off' : 'normal' });
  await broker.start();
  const { port } = await broker.listen({ port: 0, host: HOST });
  cleanups.push(() => broker.close());
  const bridge = await startBridge(
    broker,
    {
      name: 'cloud',
      clientId: 'gw-1',
      rules: [
        { direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw-1/' },
        { direction: 'in', filter: 'cmd/#', remotePrefix: 'fleet/gw-1/' },
      ],
      reconnect: { minMs: 50, maxMs: 400 },
      inflightWindow: 64,
      ...bridgeConfig,
    },
    logger,
  );
  cleanups.push(() => bridge.stop());
  return { broker, port, url: `mqtt://${HOST}:${port}`, bridge, entries };
}

describe('bridge store-and-forward (Aedes remote)', () => {
  it('cloud down → 10,000 published locally → cloud up → all 10,000 arrive in order, none lost', async () => {
    const remote = new AedesRemote();
    const port = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}` });
    await publishMany(gw.url, 'sensors/line1', 10_000);
    expect(gw.bridge.state()).toMatchObject({ connected: false, outboxDepth: 10_000 });
    await remote.start(port);
    await waitFor(() => remote.received.length >= 10_000 && gw.bridge.state().outboxDepth === 0, 60_000, '10,000 messages at the remote');
    expect(remote.payloads('fleet/gw-1/sensors/line1')).toEqual(Array.from({ length: 10_000 }, (_, i) => String(i)));
    expect(gw.bridge.state()).toMatchObject({ connected: true, outboxDepth: 0, acked: 10_000, dropped: 0 });
  }, 90_000);

  it('survives the cloud broker restarting in the middle of a drain', async () => {
    const remote = new AedesRemote();
    const port = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, rateLimit: { messagesPerSecond: 4000 } });
    await publishMany(gw.url, 'sensors/a', 8000);
    await remote.start(port);
    await waitFor(() => remote.received.length >= 2000, 30_000, 'drain under way');
    await remote.stop();
    const atRestart = remote.received.length;
    expect(atRestart).toBeLessThan(8000);
    expect(gw.bridge.state().outboxDepth).toBeGreaterThan(0);
    await sleep(300);
    await remote.start(port);
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 60_000, 'outbox drained after the restart');
    const result = checkSequence(remote.payloads('fleet/gw-1/sensors/a'), 8000);
    expect(result).toMatchObject({ missing: [], outOfOrder: 0 });
    expect(result.duplicates).toBeLessThanOrEqual(64);
    expect(gw.bridge.state().connects).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('delivers a cloud command through an in rule to a local MQTT subscriber', async () => {
    const remote = new AedesRemote();
    const port = await remote.start();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}` });
    const device = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => device.endAsync());
    const commands: string[] = [];
    device.on('message', (topic, payload) => commands.push(`${topic} ${payload.toString()}`));
    await device.subscribeAsync('cmd/#', { qos: 1 });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'bridge connected');
    const dashboard = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => dashboard.endAsync());
    // the bridge's remote subscription completes shortly after CONNACK: repeat until the first command arrives
    await waitFor(async () => {
      await dashboard.publishAsync('fleet/gw-1/cmd/pump7/set', 'on', { qos: 1 });
      return commands.length > 0;
    }, 10_000, 'command at the local subscriber');
    expect(commands[0]).toBe('cmd/pump7/set on');
    expect(gw.bridge.state().received).toBeGreaterThan(0);
    // and it does not come back out through the out rule (different prefix) nor loop
    expect(remote.received.filter((m) => m.clientId === 'gw-1' && m.topic.includes('cmd'))).toEqual([]);
  });

  it('logs a refused connection with its CONNACK code, keeps retrying, and the local broker keeps working', async () => {
    const remote = new AedesRemote({ authenticate: (user, pass) => user === 'gw' && pass?.toString() === 'right' });
    const port = await remote.start();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, username: 'gw', password: 'wrong' });
    await waitFor(() => gw.entries.some((e) => String(e.cause ?? '').includes('bad user name or password (CONNACK return code 4')), 10_000, 'log line naming the cause');
    const line = gw.entries.find((e) => String(e.cause ?? '').includes('CONNACK'))!;
    expect(line.level).toBe(40);
    expect(line.msg).toBe('bridge: cannot connect to the remote');
    await sleep(600);
    expect(gw.bridge.state()).toMatchObject({ connected: false });
    expect(gw.bridge.state().lastError).toMatch(/bad user name or password/);
    // local traffic is unaffected, and is queued
    const local = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => local.endAsync());
    const echoed: string[] = [];
    local.on('message', (_t, p) => echoed.push(p.toString()));
    await local.subscribeAsync('sensors/#', { qos: 1 });
    await local.publishAsync('sensors/x', 'still here', { qos: 1 });
    await waitFor(() => echoed.length === 1, 5000, 'local delivery');
    expect(gw.bridge.state().outboxDepth).toBe(1);
  });
});

describe('bridge crash safety (gateway process killed with -9)', () => {
  it('kill -9 with a backlog → restart → all arrive, duplicates only within the in-flight window', async () => {
    const remote = new AedesRemote();
    const remotePort = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const data = tempDir();
    cleanups.push(() => data.remove());
    const window = 32;
    const config = { dataDir: data.path, remoteUrl: `mqtt://${HOST}:${remotePort}`, window, rate: 2000 };
    const first = await spawnGateway(config);
    await publishMany(`mqtt://${HOST}:${first.port}`, 'sensors/k', 6000);
    await remote.start(remotePort);
    await waitFor(() => remote.received.length >= 1500, 30_000, 'drain under way');
    first.proc.kill('SIGKILL');
    await new Promise((resolve) => first.proc.once('exit', resolve));
    const beforeRestart = remote.received.length;
    expect(beforeRestart).toBeLessThan(6000);
    const second = await spawnGateway({ ...config, rate: undefined });
    void second;
    await waitFor(() => new Set(remote.payloads('fleet/gw/sensors/k')).size === 6000, 60_000, 'all 6000 at the remote');
    const result = checkSequence(remote.payloads('fleet/gw/sensors/k'), 6000);
    expect(result).toMatchObject({ missing: [], outOfOrder: 0 });
    expect(result.duplicates).toBeLessThanOrEqual(window);
  }, 120_000);
});

async function spawnGateway(args: Record<string, unknown>): Promise<{ proc: ChildProcess; port: number }> {
  const script = join(import.meta.dirname, 'fixtures', 'gateway.ts');
  const proc = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
  });
  return { proc, port };
}

const haveMosquitto = requireTool('mosquitto');
const haveOpenssl = requireTool('openssl');

describe.skipIf(!haveMosquitto)('bridge against Mosquitto', () => {
  it('cloud down → 10,000 published locally → cloud up → all arrive in order at a Mosquitto subscriber', async () => {
    const mosq = new MosquittoRemote(['persistence true', 'max_queued_messages 0', 'autosave_interval 1']);
    cleanups.push(() => mosq.dispose());
    const port = await mosq.start();
    // a persistent subscriber session on the cloud, so it gets everything the cloud accepts while it is away
    const sub = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { clientId: 'dashboard', clean: false, reconnectPeriod: 0 });
    await sub.subscribeAsync('fleet/gw-1/#', { qos: 1 });
    await sub.endAsync();
    await mosq.stop('SIGTERM');
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}` });
    await publishMany(gw.url, 'sensors/m', 10_000);
    expect(gw.bridge.state().outboxDepth).toBe(10_000);
    await mosq.start(port);
    const got: string[] = [];
    const sub2 = mqtt.connect(`mqtt://${HOST}:${port}`, { clientId: 'dashboard', clean: false, reconnectPeriod: 200 });
    cleanups.push(() => sub2.endAsync());
    sub2.on('message', (_t, p) => got.push(p.toString()));
    await waitFor(() => got.length >= 10_000, 60_000, '10,000 at the Mosquitto subscriber');
    expect(got).toEqual(Array.from({ length: 10_000 }, (_, i) => String(i)));
    // the subscriber can see the last message just before its PUBACK reaches the bridge
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 10_000, 'outbox empty');
    expect(gw.bridge.state()).toMatchObject({ dropped: 0, acked: 10_000 });
  }, 90_000);

  it('moves a message larger than the remote Maximum Packet Size aside (MQTT 5) and keeps draining', async () => {
    const mosq = new MosquittoRemote(['max_packet_size 2000', 'max_inflight_messages 5']);
    cleanups.push(() => mosq.dispose());
    const port = await mosq.start();
    const got: string[] = [];
    const sub = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (_t, p) => got.push(p.length > 100 ? `big${p.length}` : p.toString()));
    await sub.subscribeAsync('fleet/#', { qos: 1 });
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, protocolVersion: 5 });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'bridge connected');
    const local = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => local.endAsync());
    await local.publishAsync('sensors/s', 'before', { qos: 1 });
    await local.publishAsync('sensors/s', Buffer.alloc(5000, 1), { qos: 1 });
    await local.publishAsync('sensors/s', 'after', { qos: 1 });
    await waitFor(() => got.includes('after'), 10_000, 'the message after the big one');
    expect(got).toEqual(['before', 'after']);
    // acknowledged rows are deleted in batches, a few ms after their PUBACK
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 10_000, 'acknowledged rows deleted');
    expect(gw.bridge.state()).toMatchObject({ dead: 1, outboxDepth: 0 });
    const dead = gw.broker.db.prepare('SELECT topic, length(payload) AS n, reason FROM bridge_dead').all() as { topic: string; n: number; reason: string }[];
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ topic: 'fleet/gw-1/sensors/s', n: 5000 });
    expect(dead[0]!.reason).toMatch(/maximum packet size 2000/);
    expect(gw.entries.some((e) => e.msg === 'bridge: message cannot be delivered to the remote; moved to bridge_dead')).toBe(true);
  });
});

describe.skipIf(!haveMosquitto)('bridge against Mosquitto (MQTT 5 PUBACK reason codes)', () => {
  it('moves a message the remote refuses with PUBACK 0x87 (not authorized) to bridge_dead and delivers the rest in order', async () => {
    const acl = tempDir('fieldgate-acl-');
    cleanups.push(() => acl.remove());
    chmodSync(acl.path, 0o755);
    const aclFile = join(acl.path, 'acl');
    writeFileSync(aclFile, ['topic write fleet/gw-1/sensors/ok/#', 'topic read fleet/#', ''].join('\n'), { mode: 0o644 });
    const mosq = new MosquittoRemote([`acl_file ${aclFile}`]);
    cleanups.push(() => mosq.dispose());
    const port = await mosq.start();
    const got: string[] = [];
    const sub = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (t, p) => got.push(`${t} ${p.toString()}`));
    await sub.subscribeAsync('fleet/#', { qos: 1 });
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, protocolVersion: 5 });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'bridge connected');
    const local = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => local.endAsync());
    for (let i = 0; i < 200; i++) await local.publishAsync(i === 100 ? 'sensors/secret/x' : 'sensors/ok/n', String(i), { qos: 1 });
    await waitFor(() => gw.bridge.state().dead === 1 && gw.bridge.state().outboxDepth === 0, 10_000, 'refused message set aside, the rest delivered');
    await waitFor(() => got.length >= 199, 10_000, '199 at the cloud subscriber');
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i).filter((i) => i !== 100).map((i) => `fleet/gw-1/sensors/ok/n ${i}`));
    expect(gw.bridge.state()).toMatchObject({ connects: 1, acked: 199, dead: 1, connected: true });
    const dead = gw.broker.db.prepare('SELECT topic, reason FROM bridge_dead').all() as { topic: string; reason: string }[];
    expect(dead).toEqual([{ topic: 'fleet/gw-1/sensors/secret/x', reason: expect.stringMatching(/0x87/) }]);
  });
});

describe.skipIf(!haveMosquitto)('bridge against Mosquitto (MQTT 5 limits)', () => {
  it("honours the remote's Receive Maximum, and a both rule does not echo its own messages back", async () => {
    const mosq = new MosquittoRemote(['max_inflight_messages 5']);
    cleanups.push(() => mosq.dispose());
    const port = await mosq.start();
    const gw = await startGateway({
      url: `mqtt://${HOST}:${port}`,
      protocolVersion: 5,
      rules: [{ direction: 'both', filter: 'sensors/#', remotePrefix: 'fleet/gw-1/' }],
    });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'connected');
    const connected = gw.entries.find((e) => e.msg === 'bridge connected')!;
    expect(connected.receiveMaximum).toBe(5);
    const cloudSeen: string[] = [];
    const cloud = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => cloud.endAsync());
    cloud.on('message', (_t, p) => cloudSeen.push(p.toString()));
    await cloud.subscribeAsync('fleet/#', { qos: 1 });
    const localSeen: string[] = [];
    const device = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => device.endAsync());
    device.on('message', (_t, p) => localSeen.push(p.toString()));
    await device.subscribeAsync('sensors/#', { qos: 1 });
    let maxInflight = 0;
    const sampler = setInterval(() => (maxInflight = Math.max(maxInflight, gw.bridge.state().inflight)), 1);
    cleanups.push(() => clearInterval(sampler));
    await publishMany(gw.url, 'sensors/w', 3000);
    await waitFor(() => gw.bridge.state().acked >= 3000, 30_000, 'drained');
    clearInterval(sampler);
    expect(maxInflight).toBeLessThanOrEqual(5);
    expect(maxInflight).toBeGreaterThan(1);
    expect(cloudSeen).toEqual(Array.from({ length: 3000 }, (_, i) => String(i)));
    await waitFor(() => localSeen.length >= 3000, 10_000, '3000 local deliveries');
    await sleep(300);
    // no-local on the remote subscription: each local message reached local subscribers exactly once
    expect(localSeen).toHaveLength(3000);
    expect(gw.bridge.state().received).toBe(0);
    // while a message from the cloud side does come in
    await cloud.publishAsync('fleet/gw-1/sensors/from-cloud', 'hello', { qos: 1 });
    await waitFor(() => localSeen.includes('hello'), 5000, 'cloud message delivered locally');
  });
});

describe.skipIf(!haveMosquitto)('bridge with a persistent cloud session (Mosquitto)', () => {
  it('receives commands the cloud queued while the gateway was away (cleanSession=false, MQTT 5 session expiry)', async () => {
    const mosq = new MosquittoRemote();
    cleanups.push(() => mosq.dispose());
    const port = await mosq.start();
    const { logger } = captureLogger();
    const broker = new Broker({ dataDir: null, logger, sysIntervalMs: 0 });
    await broker.start();
    cleanups.push(() => broker.close());
    const config: BridgeConfigInput = {
      name: 'cloud',
      url: `mqtt://${HOST}:${port}`,
      clientId: 'gw-persistent',
      protocolVersion: 5,
      cleanSession: false,
      sessionExpirySeconds: 3600,
      rules: [{ direction: 'in', filter: 'cmd/#', remotePrefix: 'fleet/gw-p/' }],
      reconnect: { minMs: 50, maxMs: 300 },
    };
    const got: string[] = [];
    broker.createLocalClient('device').subscribe('cmd/#', (m) => got.push(m.payload.toString()));
    const first = await startBridge(broker, config, logger);
    await waitFor(() => first.state().connected, 10_000, 'first connection');
    const cloud = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => cloud.endAsync());
    await waitFor(async () => {
      await cloud.publishAsync('fleet/gw-p/cmd/probe', 'probe', { qos: 1 });
      return got.length > 0;
    }, 10_000, 'subscription active');
    await first.stop();
    for (let i = 0; i < 5; i++) await cloud.publishAsync('fleet/gw-p/cmd/valve', `while-away-${i}`, { qos: 1 });
    got.length = 0;
    const second = await startBridge(broker, config, logger);
    cleanups.push(() => second.stop());
    await waitFor(() => got.length >= 5, 10_000, 'queued commands delivered');
    expect(got.filter((p) => p.startsWith('while-away'))).toEqual(Array.from({ length: 5 }, (_, i) => `while-away-${i}`));
  });
});

describe.skipIf(!haveOpenssl)('bridge over mutual TLS with a test CA', () => {
  function makePki(): { dir: string; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string } {
    const d = tempDir('fieldgate-pki-');
    cleanups.push(() => d.remove());
    const dir = d.path;
    const f = (name: string) => join(dir, name);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=fieldgate test CA');
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=unrelated CA');
    writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, cn, ext] of [['server', '127.0.0.1', 'server.ext'], ['client', 'gw-1', undefined]] as const) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...(ext ? ['-extfile', ext] : []));
    }
    // Mosquitto started as root reads these as the mosquitto user (test keys only)
    chmodSync(dir, 0o755);
    for (const name of ['ca.crt', 'server.crt', 'server.key']) chmodSync(f(name), 0o644);
    return { dir, ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key'), otherCa: f('other.crt') };
  }

  it('connects to Aedes behind a TLS server that requires a client certificate, and refuses without one', async () => {
    const pki = makePki();
    const remote = new AedesRemote({
      tls: { ca: readFileSync(pki.ca), cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), requestCert: true, rejectUnauthorized: true },
    });
    const port = await remote.start();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtts://${HOST}:${port}`, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
    await waitFor(() => gw.bridge.state().connected, 15_000, 'TLS bridge connected');
    await publishMany(gw.url, 'sensors/tls', 100);
    await waitFor(() => remote.received.length >= 100, 15_000, '100 messages over TLS');
    expect(remote.payloads('fleet/gw-1/sensors/tls')).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));

    // no client certificate: the remote rejects the handshake; the log says what to check
    const noCert = await startGatewayNamed('nocert', { url: `mqtts://${HOST}:${port}`, tls: { ca: pki.ca } });
    await waitFor(() => noCert.bridge.state().lastError !== null, 15_000, 'a failure cause');
    expect(noCert.entries.some((e) => e.msg === 'bridge: cannot connect to the remote' && /client certificate/.test(String(e.cause)))).toBe(true);
    await sleep(500);
    expect(noCert.bridge.state().lastError).toMatch(/requires a client certificate: set tls.cert and tls.key/);
    expect(noCert.bridge.state().connected).toBe(false);
    // wrong CA for the server certificate: named as such
    const wrongCa = await startGatewayNamed('wrongca', { url: `mqtts://${HOST}:${port}`, tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey } });
    await waitFor(() => /tls\.ca/.test(wrongCa.bridge.state().lastError ?? ''), 15_000, 'a cause naming tls.ca');
    expect(wrongCa.bridge.state().connected).toBe(false);
  });

  it.skipIf(!haveMosquitto)('connects to Mosquitto with require_certificate', async () => {
    const pki = makePki();
    const port = await freePort();
    const mosq = new MosquittoRemote([`cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true']);
    cleanups.push(() => mosq.dispose());
    await mosq.start(port);
    const gw = await startGateway({ url: `mqtts://${HOST}:${port}`, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }, protocolVersion: 5 });
    await waitFor(() => gw.bridge.state().connected, 15_000, 'TLS bridge connected to Mosquitto');
    const got: string[] = [];
    const sub = await mqtt.connectAsync(`mqtts://${HOST}:${port}`, { ca: readFile(pki.ca), cert: readFile(pki.clientCert), key: readFile(pki.clientKey), reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync('fleet/#', { qos: 1 });
    await publishMany(gw.url, 'sensors/t', 200);
    await waitFor(() => got.length >= 200, 15_000, '200 at the Mosquitto subscriber');
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });
});

function readFile(path: string): Buffer {
  return readFileSync(path);
}

async function startGatewayNamed(name: string, config: Partial<BridgeConfigInput> & { url: string }): Promise<Gateway> {
  return startGateway({ name, clientId: `gw-${name}`, ...config });
}
