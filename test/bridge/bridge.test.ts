// The bridge inside the real Broker, against a real Aedes remote.
import { afterEach, describe, expect, it } from 'vitest';
import { startBridge, type BridgeHandle } from '../../src/bridge/index.js';
import { AedesRemote, RemoteSubscriber, captureLogger, waitFor, HOST } from './helpers.js';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger } from '../../src/log.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: { remoteUp?: boolean; config?: Record<string, unknown> } = {}) {
  const remote = new AedesRemote();
  await remote.start();
  const port = remote.port;
  if (options.remoteUp === false) await remote.stop();
  cleanups.push(() => remote.stop());
  const host = new Broker({ dataDir: null, logger: silentLogger, sysIntervalMs: 0 });
  await host.start();
  cleanups.push(() => host.close());
  const { logger, entries } = captureLogger();
  const bridge: BridgeHandle = await startBridge(
    host,
    {
      name: 'cloud',
      url: `mqtt://${HOST}:${port}`,
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
  cleanups.push(() => bridge.stop());
  const local = host.createLocalClient('publisher');
  return { remote, port, host, bridge, local, entries };
}

describe('bridge against Aedes', () => {
  it('forwards local messages in order with the remote prefix', async () => {
    const { port, bridge, local } = await setup();
    const sub = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'fleet/gw-1/sensors/#');
    cleanups.push(() => sub.close());
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    for (let i = 0; i < 500; i++) await local.publish('sensors/a', String(i), { qos: 1 });
    await local.publish('other/x', 'not bridged', { qos: 1 });
    await waitFor(() => sub.messages.length >= 500, 20_000, '500 messages at the remote');
    expect(sub.payloads()).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    expect(sub.messages.every((m) => m.topic === 'fleet/gw-1/sensors/a')).toBe(true);
    await waitFor(() => bridge.state().outboxDepth === 0, 10_000, 'outbox drained');
    expect(bridge.state()).toMatchObject({ acked: 500, dropped: 0 });
  });

  it('queues while the remote is down and drains in order once it is up', async () => {
    const { remote, port, bridge, local } = await setup({ remoteUp: false });
    for (let i = 0; i < 2000; i++) await local.publish('sensors/b', String(i), { qos: 1 });
    expect(bridge.state()).toMatchObject({ connected: false, outboxDepth: 2000 });
    await remote.start(port);
    const sub = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'fleet/gw-1/sensors/#');
    cleanups.push(() => sub.close());
    // the subscriber may attach after the bridge started draining: wait for the drain, then check what it saw in order
    await waitFor(() => bridge.state().outboxDepth === 0, 30_000, 'outbox drained');
    const got = sub.payloads().map(Number);
    for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1]!);
  });

  it('delivers a remote command to a local subscriber through an in rule', async () => {
    const { port, bridge, host } = await setup();
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    const got: string[] = [];
    host.createLocalClient('device').subscribe('cmd/#', (m) => got.push(`${m.topic}=${m.payload.toString()}`));
    const cloud = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'nothing');
    cleanups.push(() => cloud.close());
    await waitFor(async () => {
      await cloud.client.publishAsync('fleet/gw-1/cmd/valve/set', 'open', { qos: 1 });
      return got.length > 0;
    }, 10_000, 'command delivered locally');
    expect(got[0]).toBe('cmd/valve/set=open');
  });

  it('publishes a retained birth and $SYS state', async () => {
    const { port, bridge, host } = await setup();
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    const status = await RemoteSubscriber.connect(`mqtt://${HOST}:${port}`, 'fleet/gw-1/status');
    cleanups.push(() => status.close());
    await waitFor(() => status.messages.some((m) => m.payload === 'online' && m.retain), 10_000, 'retained birth');
    expect(bridge.state().lastError).toBeNull();
    void host;
  });
});
