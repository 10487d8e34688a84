// Modbus TCP end to end: pymodbus slave in another process → fieldgate devices → real Broker → MQTT.js subscriber.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { loadDeviceMapping } from '../../src/devices/mapping-schema.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, startSlave, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const hr: Record<number, number> = {
  0: 0xfb2e, // int16 -1234 ABCD
  1: 0x2efb, // int16 -1234 BADC
  2: 0xffff, // uint16 65535
  3: 0xf8a4, 4: 0x32eb, // int32 -123456789 ABCD
  5: 0x32eb, 6: 0xf8a4, // … CDAB
  7: 0xa4f8, 8: 0xeb32, // … BADC
  9: 0xeb32, 10: 0xa4f8, // … DCBA
  11: 0x2800, 12: 0xee6b, // uint32 4000000000 CDAB
  13: 0xc366, 14: 0x8000, // float32 -230.5 ABCD
  15: 0xe979, 16: 0x42f6, // float32 123.456 CDAB
  17: 0xc07f, 18: 0x0000, // float32 NaN BADC
  19: 0, 20: 0, 21: 0, 22: 0xf8bf, // float64 -1.5 DCBA
  23: 0xffff, 24: 0xfee0, 25: 0x8e04, 26: 0xfb35, // int64 -1234567890123 ABCD
  27: 0x0708, 28: 0x0506, 29: 0x0304, 30: 0x0102, // uint64 0x0102030405060708 CDAB
  31: 0x5344, 32: 0x4d36, 33: 0x3330, // "SDM630"
  34: 0x8004, // bits 2 and 15
  35: 2345, // uint16 ×0.1 → 234.5
  36: 0x4500, // float32 high word, BADC / DCBA tests below
  37: 0x0000,
  40: 0, 41: 0, // writable int32 CDAB, scale 0.01
  42: 0, 43: 0, // writable float32
  44: 0, // writable int16
  45: 0, // writable bits
};

const expected: Record<string, string> = {
  'int16-abcd': '-1234',
  'int16-badc': '-1234',
  uint16: '65535',
  'int32-abcd': '-123456789',
  'int32-cdab': '-123456789',
  'int32-badc': '-123456789',
  'int32-dcba': '-123456789',
  'uint32-cdab': '4000000000',
  'float32-abcd': '-230.5',
  'float32-cdab': '123.456',
  'float32-nan': 'NaN',
  'float64-dcba': '-1.5',
  'int64-abcd': '-1234567890123',
  'uint64-cdab': '72623859790382856',
  model: 'SDM630',
  'flags/b2': 'true',
  'flags/b15': 'true',
  'flags/b0': 'false',
  'scaled': '234.5',
  'relay/0': 'true',
  'relay/5': 'false',
  'door': 'true',
  'frequency': '50',
};

describe.skipIf(!requirePymodbus())('Modbus TCP against a pymodbus slave', () => {
  let dir: string;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let subscriber: MqttClient;
  const messages: Array<{ topic: string; payload: string; retain: boolean }> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-mbtcp-'));
    slave = await startSlave({
      transport: 'tcp',
      units: {
        1: { hr: { size: 50, values: hr }, co: { size: 10, values: { 0: true } }, di: { size: 10, values: { 3: true } }, ir: { size: 4, values: { 0: 0x4248, 1: 0 } } },
        3: { hr: { size: 10 }, co: { size: 4 } },
        2: { ir: { size: 20, values: { 0: 10, 1: 11, 2: 12, 3: 13, 4: 14, 6: 16 } }, holes: { ir: [5] } },
      },
    });
    const file = path.join(dir, 'plant.json');
    const p = (name: string, address: number, type: string, extra: Record<string, unknown> = {}) => ({ name, table: 'holding', address, type, ...extra });
    writeFileSync(
      file,
      JSON.stringify({
        buses: [{ id: 'plc', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port }],
        devices: [
          {
            id: 'meter',
            bus: 'plc',
            unitId: 1,
            pollIntervalMs: 60_000,
            timeoutMs: 2000,
            publish: { state: true },
            points: [
              p('int16-abcd', 0, 'int16'),
              p('int16-badc', 1, 'int16', { byteOrder: 'BADC' }),
              p('uint16', 2, 'uint16'),
              p('int32-abcd', 3, 'int32'),
              p('int32-cdab', 5, 'int32', { byteOrder: 'CDAB' }),
              p('int32-badc', 7, 'int32', { byteOrder: 'BADC' }),
              p('int32-dcba', 9, 'int32', { byteOrder: 'DCBA' }),
              p('uint32-cdab', 11, 'uint32', { byteOrder: 'CDAB' }),
              p('float32-abcd', 13, 'float32'),
              p('float32-cdab', 15, 'float32', { byteOrder: 'CDAB', decimals: 3 }),
              p('float32-nan', 17, 'float32', { byteOrder: 'BADC' }),
              p('float64-dcba', 19, 'float64', { byteOrder: 'DCBA' }),
              p('int64-abcd', 23, 'int64'),
              p('uint64-cdab', 27, 'uint64', { byteOrder: 'CDAB' }),
              p('model', 31, 'string', { length: 3 }),
              p('flags/b2', 34, 'bit', { bit: 2 }),
              p('flags/b15', 34, 'bit', { bit: 15 }),
              p('flags/b0', 34, 'bit', { bit: 0 }),
              p('scaled', 35, 'uint16', { scale: 0.1, decimals: 1, unit: 'V' }),
              { name: 'relay/0', table: 'coil', address: 0, writable: true },
              { name: 'relay/5', table: 'coil', address: 5 },
              { name: 'door', table: 'discrete-input', address: 3 },
              { name: 'frequency', table: 'input', address: 0, type: 'float32' },
              p('setpoint', 40, 'int32', { byteOrder: 'CDAB', scale: 0.01, writable: true, min: -100, max: 100 }),
              p('gain', 42, 'float32', { writable: true }),
              p('offset', 44, 'int16', { writable: true, min: -500, max: 500 }),
              p('mode/auto', 45, 'bit', { bit: 3, writable: true }),
            ],
          },
          {
            id: 'strict',
            description: 'Same unit, a device that only understands FC 15/16',
            bus: 'plc',
            unitId: 3,
            writeFunctions: 'multiple',
            pollIntervalMs: 60_000,
            points: [
              { name: 'valve', table: 'coil', address: 2, writable: true },
              { name: 'level', table: 'holding', address: 7, type: 'uint16', writable: true },
            ],
          },
          {
            id: 'holey',
            bus: 'plc',
            unitId: 2,
            pollIntervalMs: 700,
            points: [0, 1, 2, 3, 4, 5, 6].map((a) => ({ name: `r${a}`, table: 'input', address: a })),
          },
        ],
      }),
    );
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
    subscriber = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      subscriber.once('connect', () => resolve());
      subscriber.once('error', reject);
    });
    subscriber.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await subscriber.subscribeAsync('fieldgate/#', { qos: 1 });
    devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    subscriber?.end(true);
    await devices?.stop();
    await broker?.close();
    await slave?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('decodes every type and byte order to the known values', async () => {
    await waitFor(() => Object.keys(expected).every((k) => last(`fieldgate/meter/${k}`) !== undefined), 15_000, 'all meter points');
    const got = Object.fromEntries(Object.keys(expected).map((k) => [k, last(`fieldgate/meter/${k}`)]));
    expect(got).toEqual(expected);
    expect(last('fieldgate/meter/availability')).toBe('online');
  });

  it('merges the points into one read per table (counted by the slave)', async () => {
    await waitFor(() => devices.status().find((d) => d.id === 'meter')?.polls === 1, 15_000, 'first meter poll');
    const unit1 = slave.requests.filter((r) => r.unit === 1);
    expect(unit1.map((r) => [r.fc, r.address, r.count]).sort()).toEqual([
      [1, 0, 6],
      [2, 3, 1],
      [3, 0, 46],
      [4, 0, 2],
    ]);
  });

  it('publishes one JSON state message with all points and a timestamp', async () => {
    await waitFor(() => last('fieldgate/meter') !== undefined, 10_000, 'state message');
    const state = JSON.parse(last('fieldgate/meter')!) as { timestamp: string; values: Record<string, unknown> };
    expect(Date.parse(state.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(state.values['float32-abcd']).toBe(-230.5);
    expect(state.values['float32-nan']).toBeNull();
    expect(state.values['int64-abcd']).toBe(-1234567890123);
    expect(state.values['uint64-cdab']).toBe('72623859790382856');
  });

  it('splits a merged read the device refuses (exception 02), remembers it, and reports only the bad point', async () => {
    // r6 is read right after r5 is refused: on a loaded machine its value can come a moment after the error.
    await waitFor(() => last('fieldgate/holey/r5/error') !== undefined && last('fieldgate/holey/r6') !== undefined, 15_000, 'error on r5 and the value after it');
    expect(last('fieldgate/holey/r5/error')).toMatch(/illegal data address \(exception 2/);
    for (const a of [0, 1, 2, 3, 4, 6]) expect(last(`fieldgate/holey/r${a}`)).toBe(String(10 + a));
    expect(last('fieldgate/holey/r5')).toBeUndefined();
    expect(last('fieldgate/holey/availability')).toBe('online');
    // Later polls use the remembered split: the same four reads every cycle, one of them refused.
    const before = slave.requests.filter((r) => r.unit === 2).length;
    await waitFor(() => slave.requests.filter((r) => r.unit === 2).length >= before + 8, 15_000, 'two more holey polls');
    const cycle = slave.requests.filter((r) => r.unit === 2).slice(before, before + 8);
    const shape = cycle.map((r) => `${r.address}+${r.count}${r.ok ? '' : '!'}`);
    expect(shape.slice(0, 4).sort()).toEqual(['0+3', '3+2', '5+1!', '6+1']);
    expect(shape.slice(4, 8).sort()).toEqual(['0+3', '3+2', '5+1!', '6+1']);
  });

  async function command(topic: string, payload: string): Promise<Record<string, unknown>> {
    const count = messages.filter((m) => m.topic === `${topic}/set/result`).length;
    await subscriber.publishAsync(`${topic}/set`, payload, { qos: 1 });
    await waitFor(() => messages.filter((m) => m.topic === `${topic}/set/result`).length > count, 15_000, `result on ${topic}`);
    return JSON.parse(last(`${topic}/set/result`)!) as Record<string, unknown>;
  }

  it('writes with the point type and order (FC 16), reads back and publishes the new value', async () => {
    const from = slave.requests.length;
    expect(await command('fieldgate/meter/setpoint', '-12.34')).toEqual({ ok: true, value: -12.34 });
    const writes = slave.requests.slice(from).filter((r) => r.unit === 1 && r.fc === 16);
    expect(writes.map((r) => [r.address, r.count])).toEqual([[40, 2]]);
    expect(last('fieldgate/meter/setpoint')).toBe('-12.34');
    expect(slave.requests.slice(from).some((r) => r.fc === 3 && r.address === 40 && r.count === 2)).toBe(true);

    expect(await command('fieldgate/meter/gain', '{"value": 1.5}')).toEqual({ ok: true, value: 1.5 });
    expect(await command('fieldgate/meter/offset', '-321')).toEqual({ ok: true, value: -321 });
    expect(slave.requests.slice(from).some((r) => r.fc === 6 && r.address === 44)).toBe(true);
    expect(await command('fieldgate/meter/relay/0', 'off')).toEqual({ ok: true, value: false });
    expect(slave.requests.slice(from).some((r) => r.fc === 5 && r.address === 0)).toBe(true);
    expect(last('fieldgate/meter/relay/0')).toBe('false');
    expect(await command('fieldgate/meter/mode/auto', 'true')).toEqual({ ok: true, value: true });
    expect(await command('fieldgate/meter/mode/auto', 'false')).toEqual({ ok: true, value: false });
  });

  it('uses FC 15/16 for single coils and registers on a device that asks for it', async () => {
    const from = slave.requests.length;
    expect(await command('fieldgate/strict/valve', 'on')).toEqual({ ok: true, value: true });
    expect(await command('fieldgate/strict/level', '500')).toEqual({ ok: true, value: 500 });
    const writes = slave.requests.slice(from).filter((r) => r.unit === 3 && [5, 6, 15, 16].includes(r.fc));
    expect(writes.map((r) => [r.fc, r.address, r.count])).toEqual([[15, 2, 1], [16, 7, 1]]);
    expect(last('fieldgate/strict/level')).toBe('500');
  });

  it('answers rejected commands on …/set/result with the reason and writes nothing', async () => {
    const from = slave.requests.length;
    expect(await command('fieldgate/meter/setpoint', '150')).toEqual({ ok: false, error: '150 is above max 100' });
    expect(await command('fieldgate/meter/setpoint', 'warm')).toEqual({ ok: false, error: 'expected a number (got "warm")' });
    expect(await command('fieldgate/meter/offset', '1.5')).toEqual({ ok: false, error: 'int16 needs an integer (got 1.5)' });
    expect(await command('fieldgate/meter/uint16', '5')).toEqual({ ok: false, error: 'point "uint16" is not writable' });
    expect(await command('fieldgate/meter/relay/0', 'maybe')).toMatchObject({ ok: false });
    expect(slave.requests.slice(from).filter((r) => [5, 6, 15, 16].includes(r.fc))).toEqual([]);
  });
});
