// The bridge inside the real Broker, against a real Aedes remote: behaviours beyond the done-when scenarios.
import { afterEach, describe, expect, it } from 'vitest';
import { startBridge, type BridgeHandle } from '../../src/bridge/index.js';
import type { AuthorizeHook, Message } from '../../src/broker/types.js';
import { AedesRemote, RemoteSubscriber, captureLogger, sleep, waitFor, HOST } from './helpers.js';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger } from '../../src/log.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  options: {
    remoteUp?: boolean;
    config?: Record<string, unknown>;
    beforeBridge?: (broker: Broker) => void;
    remote?: ConstructorParameters<typeof AedesRemote>[0];
    scheme?: string;
    authorize?: AuthorizeHook;
  } = {},
) {
  const remote = new AedesRemote(options.remote);
  await remote.start();
  const port = remote.port;
  if (options.remoteUp === false) await remote.stop();
  cleanups.push(() => remote.stop());
  const host = new Broker({ dataDir: null, logger: silentLogger, sysIntervalMs: 0, ...(options.authorize ? { authorize: options.authorize } : {}) });
  await host.start();
  cleanups.push(() => host.close());
  options.beforeBridge?.(host);
  const { logger, entries } = captureLogger();
  let stopped = false;
  const bridge: BridgeHandle = await startBridge(
    host,
    {
      name: 'cloud',
      url: `${options.scheme ?? 'mqtt'}://${HOST}:${port}`,
      clientId: 'gw-1',
      rules: [
        { direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw-1/' },
        { direction: 'in', filter: 'cmd/#', remotePrefix: 'fleet/gw-1/' },
      ],
      reconnect: { minMs: 50, maxMs: 300 },
      statusTopic: 'fleet/gw-1/status',
      ...options.config,
    },
    logger,
  );
  const stop = async () => {
    if (!stopped) await bridge.stop();
    stopped = true;
  };
  cleanups.push(stop);
  const local = host.createLocalClient('publisher');
  return { remote, port, host, bridge, local, entries, stop };
}

async function publishLocal(local: ReturnType<Broker['createLocalClient']>, topic: string, n: number, qos: 0 | 1 = 1): Promise<void> {
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) all.push(local.publish(topic, String(i), { qos }));
  await Promise.all(all);
}

describe('bridge against Aedes', () => {
  it('forwards local messages in order with the remote prefix, and only those matching an out rule', async () => {
    const { remote, bridge, local } = await setup();
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    await publishLocal(local, 'sensors/a', 500);
    await local.publish('other/x', 'not bridged', { qos: 1 });
    await waitFor(() => bridge.state().acked >= 500, 20_000, '500 acknowledged');
    expect(remote.payloads('fleet/gw-1/sensors/a')).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    expect(remote.received.filter((m) => m.clientId === 'gw-1' && !m.topic.startsWith('fleet/gw-1/sensors/') && m.topic !== 'fleet/gw-1/status')).toEqual([]);
    await waitFor(() => bridge.state().outboxDepth === 0, 10_000, 'outbox drained');
    expect(bridge.state()).toMatchObject({ acked: 500, dropped: 0, inflight: 0 });
  });

  it('bounds the outbox while the cloud is away: drop-oldest keeps the newest maxRows, counts and logs the drops', async () => {
    const { remote, port, bridge, local, entries } = await setup({ remoteUp: false, config: { outbox: { maxRows: 100 } } });
    await publishLocal(local, 'sensors/b', 250);
    expect(bridge.state()).toMatchObject({ outboxDepth: 100, dropped: 150 });
    expect(entries.some((e) => e.msg === 'bridge: outbox limit reached, messages dropped')).toBe(true);
    await remote.start(port);
    await waitFor(() => bridge.state().outboxDepth === 0 && bridge.state().acked === 100, 20_000, 'drained');
    expect(remote.payloads('fleet/gw-1/sensors/b')).toEqual(Array.from({ length: 100 }, (_, i) => String(150 + i)));
  });

  it('queues QoS 0 by default, and with queueQos0=false sends it only while connected', async () => {
    const { remote, port, bridge, local } = await setup({
      remoteUp: false,
      config: {
        rules: [
          { direction: 'out', filter: 'sensors/#', remotePrefix: 'q/' },
          { direction: 'out', filter: 'live/#', remotePrefix: 'l/', queueQos0: false },
        ],
      },
    });
    await publishLocal(local, 'sensors/z', 10, 0);
    await publishLocal(local, 'live/z', 10, 0);
    // a QoS 1 marker commits after everything published before it: then exactly the 10 queueable ones are queued
    await local.publish('sensors/marker', 'm', { qos: 1 });
    expect(bridge.state().outboxDepth).toBe(11);
    await remote.start(port);
    await waitFor(() => bridge.state().connected && bridge.state().outboxDepth === 0, 10_000, 'drained');
    await local.publish('live/z', 'now', { qos: 0 });
    await waitFor(() => remote.payloads('l/').length > 0, 5000, 'live QoS 0 message');
    expect(remote.payloads('q/')).toHaveLength(11);
    expect(remote.payloads('l/')).toEqual(['now']);
  });

  it('caps the drain rate when rateLimit is set', async () => {
    const { remote, port, bridge, local } = await setup({ remoteUp: false, config: { rateLimit: { messagesPerSecond: 200 } } });
    await publishLocal(local, 'sensors/r', 300);
    await remote.start(port);
    await waitFor(() => bridge.state().connected, 10_000, 'connected');
    const started = Date.now();
    await waitFor(() => bridge.state().acked >= 300, 20_000, 'drained');
    // 300 messages at 200/s with a one-token burst take at least ~1.5 s
    expect(Date.now() - started).toBeGreaterThan(1200);
  });

  it('publishes a retained birth, $SYS state and counters, and a retained offline on stop', async () => {
    const received: Message[] = [];
    const { port, bridge, host, stop } = await setup({ config: { statsIntervalSeconds: 0.2 } });
    host.createLocalClient('watcher').subscribe('$SYS/broker/connection/cloud/#', (m) => received.push(m));
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    const status = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'fleet/gw-1/status');
    cleanups.push(() => status.close());
    await waitFor(() => status.messages.some((m) => m.payload === 'online' && m.retain), 10_000, 'retained birth');
    const last = (suffix: string) => received.filter((m) => m.topic === `$SYS/broker/connection/cloud/${suffix}`).at(-1)?.payload.toString();
    // Counters go out every 0.2 s, state at once: on a slow start the last counters may predate the connection.
    const stats = () => JSON.parse(last('stats') ?? '{}') as Record<string, unknown>;
    await waitFor(() => last('state') === '1' && last('outbox/depth') === '0' && stats().connected === true, 10_000, '$SYS state 1 and counters of the connected bridge');
    expect(stats()).toMatchObject({ name: 'cloud', connected: true, outboxDepth: 0 });
    await stop();
    await waitFor(() => status.messages.at(-1)?.payload === 'offline', 10_000, 'offline status');
    await waitFor(() => last('state') === '0', 5000, '$SYS state 0');
  });

  it('reports an unusable outbox clearly, keeps the broker running, and recovers once the cause is fixed', async () => {
    const { bridge, host, local, entries, remote } = await setup({
      // something else holds the outbox table's name: the outbox cannot be used
      beforeBridge: (broker) => broker.db.exec('CREATE VIEW "bridge_outbox_cloud" AS SELECT 1 AS x'),
    });
    await waitFor(() => entries.some((e) => e.msg === 'bridge: outbox unusable; outbound messages are not taken until it opens'), 5000, 'error log');
    const line = entries.find((e) => String(e.msg).startsWith('bridge: outbox unusable'))!;
    expect(String(line.err)).toMatch(/bridge "cloud": cannot open the outbox table/);
    expect(bridge.state().outboxError).toMatch(/cannot open the outbox table/);
    // the broker still routes
    const got: string[] = [];
    host.createLocalClient('w').subscribe('sensors/#', (m) => got.push(m.payload.toString()));
    await local.publish('sensors/ok', 'routed', { qos: 1 });
    await waitFor(() => got.length === 1, 5000, 'local routing');
    // fix the cause: the bridge opens its outbox on its next retry and forwards again
    host.db.exec('DROP VIEW "bridge_outbox_cloud"');
    await waitFor(() => entries.some((e) => e.msg === 'bridge connected'), 10_000, 'connected');
    await waitFor(async () => {
      await local.publish('sensors/ok', 'after fix', { qos: 1 });
      return remote.payloads('fleet/gw-1/sensors/ok').includes('after fix');
    }, 15_000, 'forwarding after the fix');
    expect(bridge.state().outboxError).toBeNull();
  });

  it('keeps FIFO order while new messages are appended during a drain', async () => {
    const { remote, port, bridge, local } = await setup({ remoteUp: false });
    const all: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) all.push(local.publish('sensors/f', String(i), { qos: 1 }));
    await Promise.all(all);
    await remote.start(port);
    for (let i = 3000; i < 6000; i++) {
      all.push(local.publish('sensors/f', String(i), { qos: 1 }));
      if (i % 100 === 0) await sleep(1);
    }
    await Promise.all(all);
    await waitFor(() => bridge.state().acked >= 6000, 30_000, 'all acknowledged');
    expect(remote.payloads('fleet/gw-1/sensors/f')).toEqual(Array.from({ length: 6000 }, (_, i) => String(i)));
  });

  it('drops and re-establishes a connection whose PUBACKs never come, then resends with DUP', async () => {
    let holding = true;
    const { remote, bridge, local, entries } = await setup({ remote: { holdPublishes: () => holding }, config: { ackTimeoutSeconds: 1 } });
    await waitFor(() => bridge.state().connected, 10_000, 'connected');
    for (let i = 0; i < 5; i++) await local.publish('sensors/stuck', String(i), { qos: 1 });
    await waitFor(() => entries.some((e) => /no PUBACK from the remote for 1 s/.test(String(e.cause))), 10_000, 'ack timeout noticed');
    holding = false;
    await waitFor(() => bridge.state().acked >= 5, 10_000, 'acknowledged after reconnecting');
    expect(remote.payloads('fleet/gw-1/sensors/stuck')).toEqual(['0', '1', '2', '3', '4']);
    const wire = remote.arrivals.filter((m) => m.topic === 'fleet/gw-1/sensors/stuck');
    expect(wire.slice(0, 5)).toEqual(['0', '1', '2', '3', '4'].map((payload) => ({ topic: 'fleet/gw-1/sensors/stuck', payload, dup: false })));
    expect(wire.slice(5).map((m) => [m.payload, m.dup])).toEqual(['0', '1', '2', '3', '4'].map((p) => [p, true]));
    expect(bridge.state().connects).toBeGreaterThanOrEqual(2);
  });

  it('holds at most ~8 MB of unacknowledged payload whatever the window, and delivers everything in order once acknowledged', async () => {
    let holding = true;
    const { remote, bridge, local } = await setup({ remote: { holdPublishes: () => holding }, config: { ackTimeoutSeconds: 4, inflightWindow: 1024 } });
    await waitFor(() => bridge.state().connected, 10_000, 'connected');
    const payload = (i: number) => Buffer.alloc(300_000, i);
    for (let i = 0; i < 40; i++) await local.publish('sensors/big', payload(i), { qos: 1 });
    // The ack timeout (4 s) must not cut the connection before the cap is observed, even on a slow machine.
    await waitFor(() => bridge.state().inflight >= 28, 3_000, '28 messages in flight');
    await sleep(500); // and no more go out
    // 40 × 300 kB = 12 MB queued; sending stops once 8 MiB are unacknowledged: 28 messages
    expect(bridge.state().inflight).toBe(28);
    holding = false;
    await waitFor(() => bridge.state().acked >= 40, 20_000, 'all acknowledged after the ack timeout and a reconnect');
    const got = remote.received.filter((m) => m.topic === 'fleet/gw-1/sensors/big');
    expect(got.map((m) => m.payload.length)).toEqual(Array(40).fill(300_000));
    expect(got.map((m) => m.payload.charCodeAt(0))).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('bridges over a ws:// URL', async () => {
    const { remote, bridge, local } = await setup({ remote: { websocket: true }, scheme: 'ws' });
    await waitFor(() => bridge.state().connected, 10_000, 'connected over WebSocket');
    for (let i = 0; i < 20; i++) await local.publish('sensors/ws', String(i), { qos: 1 });
    await waitFor(() => bridge.state().acked >= 20, 10_000, 'acknowledged');
    expect(remote.payloads('fleet/gw-1/sensors/ws')).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('does not send messages whose MQTT 5 message expiry passed while queued', async () => {
    const { remote, port, bridge, local } = await setup({ remoteUp: false });
    await local.publish('sensors/e', 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await local.publish('sensors/e', 'durable', { qos: 1 });
    expect(bridge.state().outboxDepth).toBe(2);
    await sleep(1300);
    await remote.start(port);
    await waitFor(() => bridge.state().outboxDepth === 0, 10_000, 'outbox empty');
    expect(remote.payloads('fleet/gw-1/sensors/e')).toEqual(['durable']);
    expect(bridge.state().dropped).toBe(1);
  });

  it('drops (and acknowledges) a remote message the local broker refuses, and goes on', async () => {
    const { port, bridge, host, entries } = await setup({
      authorize: (client, action, topic) => !(client.clientId === '$bridge/cloud' && action === 'publish' && topic.startsWith('cmd/locked/')),
    });
    await waitFor(() => bridge.state().connected, 10_000, 'connected');
    const got: string[] = [];
    host.createLocalClient('device').subscribe('cmd/#', (m) => got.push(m.topic));
    const cloud = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'nothing');
    cleanups.push(() => cloud.close());
    // the bridge's remote subscription follows its CONNACK: repeat until a first allowed command gets through
    await waitFor(async () => {
      await cloud.client.publishAsync('fleet/gw-1/cmd/open/first', 'yes', { qos: 1 });
      return got.length > 0;
    }, 10_000, 'remote subscription active');
    got.length = 0;
    await cloud.client.publishAsync('fleet/gw-1/cmd/locked/x', 'no', { qos: 1 });
    await cloud.client.publishAsync('fleet/gw-1/cmd/open/x', 'yes', { qos: 1 });
    await waitFor(() => got.includes('cmd/open/x'), 10_000, 'the allowed command');
    expect(got.filter((t) => t !== 'cmd/open/first')).toEqual(['cmd/open/x']);
    expect(entries.some((e) => e.msg === 'bridge: local broker refused a remote message; dropped' && e.topic === 'fleet/gw-1/cmd/locked/x')).toBe(true);
    expect(bridge.state().connected).toBe(true);
  });

  it('runs several bridges side by side, each with its own FIFO', async () => {
    const { remote, port, host, bridge, local } = await setup();
    const second = await startBridge(
      host,
      { name: 'backup', url: `mqtt://${HOST}:${port}`, clientId: 'gw-1-backup', rules: [{ direction: 'out', filter: 'sensors/#', remotePrefix: 'backup/' }], reconnect: { minMs: 50, maxMs: 300 } },
      captureLogger().logger,
    );
    cleanups.push(() => second.stop());
    await waitFor(() => bridge.state().connected && second.state().connected, 10_000, 'both connected');
    for (let i = 0; i < 50; i++) await local.publish('sensors/m', String(i), { qos: 1 });
    await waitFor(() => bridge.state().acked >= 50 && second.state().acked >= 50, 10_000, 'both drained');
    const expected = Array.from({ length: 50 }, (_, i) => String(i));
    expect(remote.payloads('fleet/gw-1/sensors/m')).toEqual(expected);
    expect(remote.payloads('backup/sensors/m')).toEqual(expected);
    const tables = host.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'bridge_outbox_%' ORDER BY name").all();
    expect(tables).toEqual([{ name: 'bridge_outbox_backup' }, { name: 'bridge_outbox_cloud' }]);
  });
});

describe('bridge with a full database', () => {
  it('reports a full disk clearly, keeps the broker running, and queues again once there is room', async () => {
    const { remote, port, bridge, host, entries } = await setup({ remoteUp: false, config: { statsIntervalSeconds: 0.2 } });
    const { default: mqtt } = await import('mqtt');
    const localPort = (await host.listen({ port: 0, host: HOST })).port;
    const publisher = await mqtt.connectAsync(`mqtt://${HOST}:${localPort}`, { reconnectPeriod: 0 });
    cleanups.push(() => publisher.endAsync(true));
    await publisher.publishAsync('sensors/d', 'before', { qos: 1 });
    const pages = (host.db.pragma('page_count', { simple: true }) as number);
    // SQLITE_FULL from here on, as on a full disk
    host.db.pragma(`max_page_count = ${pages}`);
    let acked = false;
    const big = publisher.publishAsync('sensors/d', Buffer.alloc(64 * 1024, 7), { qos: 1 }).then(() => (acked = true));
    await waitFor(() => entries.some((e) => e.msg === 'bridge: cannot append to the outbox (disk full or database unwritable?)'), 5000, 'error log');
    expect(String(entries.find((e) => String(e.msg).startsWith('bridge: cannot append'))!.err)).toMatch(/full/);
    expect(bridge.state().outboxError).toMatch(/outbox write failed: .*full/);
    // the broker still serves other clients, and the publisher's PUBACK is withheld while the row cannot be written
    const other = await mqtt.connectAsync(`mqtt://${HOST}:${localPort}`, { reconnectPeriod: 0 });
    const echoed: string[] = [];
    other.on('message', (_t, p) => echoed.push(p.toString()));
    await other.subscribeAsync('chat/#', { qos: 0 });
    await other.publishAsync('chat/x', 'hello', { qos: 0 });
    await waitFor(() => echoed.length === 1, 5000, 'QoS 0 routing while the disk is full');
    await other.endAsync();
    expect(acked).toBe(false);
    // room again: the broker's retried commit takes the row, the publisher is acknowledged
    host.db.pragma('max_page_count = 1073741823');
    await big;
    expect(acked).toBe(true);
    await publisher.publishAsync('sensors/d', 'after', { qos: 1 });
    await remote.start(port);
    await waitFor(() => bridge.state().outboxDepth === 0 && bridge.state().connected, 15_000, 'drained');
    const got = remote.received.filter((m) => m.topic === 'fleet/gw-1/sensors/d').map((m) => (m.payload.length > 20 ? 'big' : m.payload));
    expect(got).toEqual(['before', 'big', 'after']);
    expect(bridge.state().outboxError).toBeNull();
  });
});
