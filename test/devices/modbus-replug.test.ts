// A USB RS-485 adapter unplugged for a while and plugged in again (a socat pty pair that disappears and
// comes back, a pymodbus RTU slave behind it), with the bus settings a user gets from a mapping file:
// the bus is back within ~2 s of the adapter, "online" comes before the first values, scaled values
// carry no binary noise, and `…/set/result` shows a 64-bit value as the value topic does.
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { loadDeviceMapping, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, requireSocat, startPtyPair, startSlave, type PtyPair, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** int64 as four big-endian registers (ABCD … high word first). */
function int64Registers(v: bigint): number[] {
  const u = BigInt.asUintN(64, v);
  return [48n, 32n, 16n, 0n].map((shift) => Number((u >> shift) & 0xffffn));
}

describe.skipIf(!requirePymodbus() || !requireSocat())('a Modbus RTU adapter unplugged and plugged in again', () => {
  let dir: string;
  let pty: PtyPair;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const messages: Array<{ topic: string; payload: string; at: number }> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;
  const registers = (temperature: number, counter: number) => ({
    0: temperature & 0xffff, 1: 5,
    // Far from the first two: a second read in every poll.
    ...Object.fromEntries(int64Registers(BigInt(counter)).map((r, i) => [100 + i, r])),
  });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-replug-'));
    pty = await startPtyPair();
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 110, values: registers(-12, 42) } } } });
    const file = path.join(dir, 'meter.json');
    writeFileSync(file, JSON.stringify({
      buses: [{ id: 'rs485', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600 }],
      devices: [{
        id: 'meter', bus: 'rs485', unitId: 1, pollIntervalMs: 200, timeoutMs: 300, retries: 0, offlinePollIntervalMs: 500,
        points: [
          { name: 'temperature', table: 'holding', address: 0, type: 'int16', scale: 0.1 },
          { name: 'quarter', table: 'holding', address: 1, type: 'uint16', scale: 0.25, offset: -0.1 },
          { name: 'counter', table: 'holding', address: 100, type: 'int64', writable: true },
        ],
      }],
    }));
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/#', (m) => messages.push({ topic: m.topic, payload: m.payload.toString(), at: Date.now() }));
    devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
  }, 60_000);

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    await slave?.stop();
    await pty?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes scaled values rounded to the precision the scale implies (-12 × 0.1 is -1.2)', async () => {
    await waitFor(() => ['temperature', 'quarter', 'counter'].every((p) => last(`fieldgate/meter/${p}`) !== undefined), 20_000, 'first values');
    expect(last('fieldgate/meter/temperature')).toBe('-1.2');
    expect(last('fieldgate/meter/quarter')).toBe('1.15');
    expect(last('fieldgate/meter/counter')).toBe('42');
  });

  it('answers a 64-bit write on …/set/result with the number the value topic shows', async () => {
    const big = '9007199254740993'; // 2^53 + 1: not representable as a JS number
    watcher.publish('fieldgate/meter/counter/set', big, { qos: 1 });
    await waitFor(() => last('fieldgate/meter/counter/set/result') !== undefined, 10_000, 'the set result');
    const result = last('fieldgate/meter/counter/set/result')!;
    expect(result).toBe(`{"ok":true,"value":${big}}`);
    await waitFor(() => last('fieldgate/meter/counter') === big, 5000, 'the value topic');
    // The same digits, and a number in both places (not "…" in one and … in the other).
    expect(typeof JSON.parse(result).value).toBe('number');
  });

  it('is back within ~2 s of the adapter after 17 s away, saying "online" before the first values', async () => {
    await slave.stop();
    await pty.kill();
    await waitFor(() => last('fieldgate/meter/availability') === 'offline', 20_000, 'offline after the unplug');
    // Long enough for a 30 s backoff ceiling to leave the bus waiting ~15 s after the replug.
    await sleep(17_000);
    await pty.restart();
    const back = Date.now();
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 110, values: registers(-35, 43) } } } });
    const slaveReady = Date.now();
    await waitFor(() => last('fieldgate/meter/availability') === 'online', 20_000, 'online after the replug');
    const online = messages.filter((m) => m.topic === 'fieldgate/meter/availability').at(-1)!;
    console.info(`replug: online ${online.at - back} ms after the adapter, ${online.at - slaveReady} ms after the slave was ready`);
    expect(online.at - slaveReady).toBeLessThan(3000);
    await waitFor(() => last('fieldgate/meter/temperature') === '-3.5' && last('fieldgate/meter/counter') === '43', 10_000, 'fresh values');
    const afterReplug = messages.filter((m) => m.at >= back);
    const onlineIndex = afterReplug.findIndex((m) => m.topic === 'fieldgate/meter/availability' && m.payload === 'online');
    const firstValue = afterReplug.findIndex((m) => ['fieldgate/meter/temperature', 'fieldgate/meter/counter'].includes(m.topic));
    expect(onlineIndex).toBeGreaterThanOrEqual(0);
    expect(firstValue).toBeGreaterThan(onlineIndex);
  }, 60_000);
});

describe('the reopen backoff is settable per bus', () => {
  it('reconnectInitialDelayMs / reconnectMaxDelayMs from the mapping pace the reconnects', async () => {
    const connects: number[] = [];
    const server = net.createServer((socket) => {
      connects.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-backoff-'));
    const file = path.join(dir, 'm.json');
    writeFileSync(file, JSON.stringify({
      buses: [{ id: 'flappy', type: 'modbus-tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 100 }],
      devices: [{ id: 'behind', bus: 'flappy', unitId: 1, points: [{ name: 'v', table: 'holding', address: 0 }] }],
    }));
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
    try {
      await waitFor(() => connects.length >= 1, 10_000, 'first connection');
      await sleep(2000);
      const inWindow = connects.filter((t) => t - connects[0]! <= 2000).length;
      // A fixed 100 ms pause: ~15-20 connects in 2 s (the default 250 ms doubling to 2 s: about 4).
      expect(inWindow).toBeGreaterThanOrEqual(8);
    } finally {
      await devices.stop();
      await broker.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
