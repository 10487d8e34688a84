// startDevices wires Modbus and line devices from one mapping file into the real broker.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { loadDeviceMapping, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, requireSocat, startPtyPair, startSlave, type PtyPair, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!requirePymodbus() || !requireSocat())('startDevices with a Modbus and a line device', () => {
  let dir: string;
  let pty: PtyPair;
  let far: SerialPort;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const messages: Array<{ topic: string; payload: string }> = [];
  const polls: Array<[string, boolean]> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-start-'));
    pty = await startPtyPair();
    slave = await startSlave({ transport: 'tcp', units: { 1: { ir: { size: 4, values: { 1: 215, 2: 483 } } } } });
    // The XY-MD02 profile, included by name, against the simulator.
    const file = path.join(dir, 'site.json');
    writeFileSync(
      file,
      JSON.stringify({
        buses: [
          { id: 'tcp', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port },
          { id: 'scale-port', type: 'serial-line', path: pty.gateway },
        ],
        include: [{ profile: 'xy-md02', id: 'climate', bus: 'tcp', unitId: 1, pollIntervalMs: 200 }],
        devices: [
          { id: 'scale', protocol: 'line', bus: 'scale-port', parser: { type: 'json' }, fields: { weight: { unit: 'kg' } } },
          {
            id: 'pinger',
            protocol: 'line',
            bus: 'scale-port',
            description: 'Polled on the same port; nobody answers its PING',
            parser: { type: 'regex', pattern: '^PONG (?<rtt>\\d+)$' },
            fields: { rtt: {} },
            poll: { command: 'PING\n', intervalMs: 300, timeoutMs: 100, offlineAfterMissedReplies: 1 },
          },
        ],
      }),
    );
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/#', (m) => messages.push({ topic: m.topic, payload: m.payload.toString() }));
    devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger, { onPoll: (id, _seconds, ok) => polls.push([id, ok]) });
    far = new SerialPort({ path: pty.slave, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => far.open((err) => (err ? reject(err) : resolve())));
  });

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    if (far?.isOpen) await new Promise<void>((r) => far.close(() => r()));
    await slave?.stop();
    await pty?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes the profile device and the line device and reports both in status()', async () => {
    await waitFor(() => last('fieldgate/climate/temperature') !== undefined && last('fieldgate/climate/humidity') !== undefined, 20_000, 'climate values');
    expect(last('fieldgate/climate/temperature')).toBe('21.5');
    expect(last('fieldgate/climate/humidity')).toBe('48.3');
    const deadline = Date.now() + 20_000;
    while (last('fieldgate/scale/weight') === undefined && Date.now() < deadline) {
      far.write('{"weight": 12.5}\n');
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(last('fieldgate/scale/weight')).toBe('12.5');
    const status = devices.status();
    // Line devices are online one by one: the silent poller on the same open port is not.
    expect(status.map((s) => [s.id, s.protocol, s.online])).toEqual([
      ['climate', 'modbus', true],
      ['scale', 'line', true],
      ['pinger', 'line', false],
    ]);
    await waitFor(() => (devices.status().find((s) => s.id === 'pinger')?.failedPolls ?? 0) >= 1, 10_000, 'a missed PING');
    expect(last('fieldgate/pinger/availability')).toBe('offline');
    expect(last('fieldgate/scale/availability')).toBe('online');
    // onPoll hears from both kinds of device; the streaming scale has no polls.
    expect(new Set(polls.map(([id, ok]) => `${id}:${ok}`))).toEqual(new Set(['climate:true', 'pinger:false']));
  });
});

describe.skipIf(!requirePymodbus() || !requireSocat())('startDevices before the RS-485 adapter is plugged in', () => {
  it('does not count polls as failed while the port is missing, and polls once it appears', async () => {
    const pty = await startPtyPair();
    await pty.kill(); // the link names are known, the ptys are gone: an adapter not plugged in yet
    const broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const seen: Array<{ topic: string; payload: string }> = [];
    const watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/#', (m) => seen.push({ topic: m.topic, payload: m.payload.toString() }));
    const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-later-'));
    const file = path.join(dir, 'm.json');
    writeFileSync(file, JSON.stringify({
      buses: [{ id: 'usb', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600 }],
      devices: [{ id: 'late', bus: 'usb', unitId: 1, pollIntervalMs: 100, timeoutMs: 300, offlinePollIntervalMs: 500, points: [{ name: 'v', table: 'holding', address: 0 }] }],
    }));
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const polls: boolean[] = [];
    const handle = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger, { onPoll: (_id, _s, ok) => polls.push(ok) });
    let slave: Slave | undefined;
    try {
      await waitFor(() => seen.some((m) => m.topic === 'fieldgate/late/availability' && m.payload === 'offline'), 10_000, 'offline');
      await new Promise((r) => setTimeout(r, 1500));
      // Nothing was sent to the device: the bus is down, not the device.
      expect(handle.status()[0]).toMatchObject({ id: 'late', online: false, polls: 0, failedPolls: 0 });
      expect(handle.status()[0].lastError).toContain(pty.gateway);
      expect(polls).toEqual([]);
      await pty.restart();
      slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 2, values: { 0: 4321 } } } } });
      await waitFor(() => seen.some((m) => m.topic === 'fieldgate/late/v' && m.payload === '4321'), 30_000, 'a value once plugged in');
      await waitFor(() => seen.filter((m) => m.topic === 'fieldgate/late/availability').at(-1)?.payload === 'online', 5000, 'online');
      expect(handle.status()[0].polls).toBeGreaterThanOrEqual(1);
      expect(polls).toContain(true);
    } finally {
      await handle.stop();
      watcher.close();
      await broker.close();
      await slave?.stop();
      await pty.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('startDevices with a serial port that is not there', () => {
  it('starts, marks the device offline with the reason, and stops cleanly', async () => {
    const broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const seen: string[] = [];
    const watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/ghost/availability', (m) => seen.push(m.payload.toString()));
    const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-noport-'));
    const file = path.join(dir, 'm.json');
    writeFileSync(file, JSON.stringify({ buses: [{ id: 'usb', type: 'modbus-rtu', path: path.join(dir, 'ttyUSB-missing') }], include: [{ profile: 'eastron-sdm120', id: 'ghost', bus: 'usb', unitId: 1 }] }));
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const handle = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
    try {
      await waitFor(() => seen.includes('offline'), 10_000, 'offline');
      expect(handle.buses()[0]).toMatchObject({ online: false });
      expect(handle.buses()[0].lastError).toMatch(/ttyUSB-missing/);
      expect(handle.status()[0]).toMatchObject({ id: 'ghost', online: false });
      expect(handle.status()[0].lastError).toMatch(/ttyUSB-missing/);
    } finally {
      await handle.stop();
      watcher.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
