// The gateway's parts in process: the order they start in, what status() says about each, a start
// that does not wait for a device whose connects hang, a bounded stop, and a failed start that
// releases what the parts before it took.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { AedesRemote } from '../bridge/helpers.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';
import { freePort, tempDir, waitFor } from './helpers.js';

describe('gateway parts', () => {
  let dir: string;
  let blackhole: Blackhole;
  let meter: SimulatedMeter;
  let refusedPort: number;
  const gateways: Gateway[] = [];

  const config = (extra: Record<string, unknown> = {}) =>
    parseGatewayConfig({
      gatewayId: 'parts-gw',
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      devices: ['devices/hanging.json', 'devices/meter.json'],
      // Nothing listens there: the bridge keeps retrying in the background.
      bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${refusedPort}`, clientId: 'parts-gw', rules: [{ direction: 'out', filter: 'lan/#' }] }],
      metrics: { host: '127.0.0.1', port: 0 },
      homeAssistant: { discovery: true },
      ...extra,
    }, 'parts test', dir);

  beforeAll(async () => {
    dir = tempDir('fieldgate-parts-');
    blackhole = await startBlackhole();
    meter = await startSimulatedMeter({ seed: 9 });
    refusedPort = await freePort();
    fs.mkdirSync(path.join(dir, 'devices'));
    const device = (id: string, port: number) => ({
      buses: [{ id: `bus-${id}`, type: 'modbus-tcp', host: '127.0.0.1', port }],
      devices: [{ id, bus: `bus-${id}`, unitId: 1, pollIntervalMs: 300, points: [{ name: 'voltage', table: 'input', address: 0, type: 'float32', decimals: 1 }] }],
    });
    fs.writeFileSync(path.join(dir, 'devices', 'hanging.json'), JSON.stringify(device('hanging', blackhole.port)));
    fs.writeFileSync(path.join(dir, 'devices', 'meter.json'), JSON.stringify(device('meter', meter.port)));
  });

  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await meter?.stop();
    await blackhole?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts without waiting for the device whose connects hang, and says what each part is doing', async () => {
    const began = Date.now();
    const gateway = await startGateway(config(), silentLogger);
    gateways.push(gateway);
    // The hanging bus's connect timeout is 5 s: the start must not have waited for it.
    expect(Date.now() - began).toBeLessThan(2500);

    const status = gateway.status();
    expect(status.map((p) => p.name)).toEqual(['core', 'bridges', 'devices', 'home-assistant', 'metrics', 'management', 'listeners', 'console']);
    const byName = Object.fromEntries(status.map((p) => [p.name, p]));
    expect(byName.core.state).toBe('running');
    expect(byName.bridges).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/^cloud: not connected/) });
    expect(byName.listeners).toMatchObject({ state: 'running', detail: `mqtt://127.0.0.1:${gateway.listeners[0].port}` });
    expect(byName.metrics).toMatchObject({ state: 'running', detail: `http://127.0.0.1:${gateway.metricsServer!.port}/metrics, /healthz` });
    expect(byName.console).toMatchObject({ state: 'stopped', detail: 'console off in the config' });

    // The meter that answers comes online; the hanging one keeps the devices part degraded.
    await waitFor(() => /^1 of 2 devices online; offline: hanging/.test(gateway.status().find((p) => p.name === 'devices')!.detail) || undefined, 'the meter online, the hanging device not');
    expect(gateway.status().find((p) => p.name === 'devices')!.state).toBe('degraded');
    await waitFor(() => /discovery configs announced/.test(gateway.status().find((p) => p.name === 'home-assistant')!.detail) || undefined, 'discovery');

    // Clients get in, and /healthz says the gateway is fine (the bridge retrying is not a health failure).
    const client = await mqtt.connectAsync({ host: '127.0.0.1', port: gateway.listeners[0].port, reconnectPeriod: 0 });
    await client.endAsync();
    const health = await fetch(`http://127.0.0.1:${gateway.metricsServer!.port}/healthz`);
    expect(health.status).toBe(200);
  });

  it('stops within a second while the device connect still hangs; every part reports stopped', async () => {
    const gateway = gateways.pop()!;
    const began = Date.now();
    await gateway.stop();
    expect(Date.now() - began).toBeLessThan(1000);
    expect(gateway.status().map((p) => p.state)).toEqual(Array(8).fill('stopped'));
    // The listener is closed: a connect is refused.
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(gateway.listeners[0].port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(false); });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it('stops within a second when the cloud has stopped acknowledging (the goodbye on the status topic is cut short)', async () => {
    let holding = false;
    const cloud = new AedesRemote({ holdPublishes: () => holding });
    const cloudPort = await cloud.start();
    try {
      const gateway = await startGateway(config({
        devices: ['devices/hanging.json'],
        bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'parts-gw', statusTopic: 'fleet/parts-gw/status', rules: [{ direction: 'out', filter: 'lan/#' }] }],
      }), silentLogger);
      await waitFor(() => gateway.status().find((p) => p.name === 'bridges')!.detail.startsWith('cloud: connected') || undefined, 'the bridge to connect');
      holding = true;
      const began = Date.now();
      await gateway.stop();
      expect(Date.now() - began).toBeLessThan(1000);
    } finally {
      await cloud.stop();
    }
  });

  it('a listener that cannot open fails the start and releases the parts before it: the next start on the same data works', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as net.AddressInfo).port;
    try {
      const failing = config({ broker: { port: busyPort, dataDir: 'data', sysIntervalSeconds: 0 } });
      await expect(startGateway(failing, silentLogger)).rejects.toThrow(/the port is already in use/);
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
    const gateway = await startGateway(config(), silentLogger);
    gateways.push(gateway);
    expect(gateway.status().find((p) => p.name === 'listeners')!.state).toBe('running');
  });
});
