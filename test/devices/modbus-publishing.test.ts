// How readings are published and read, end to end against a pymodbus slave over Modbus TCP and an MQTT.js
// subscriber on the real Broker: deadband, maximum silence, QoS per device, retained values and availability,
// the device's own request cap, and data-sheet (1-based, 4xxxx) addresses as the slave sees them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { loadDeviceMapping, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, startSlave, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  topic: string;
  unit?: unknown;
  payload: string;
  qos: number;
  retain: boolean;
  at: number;
}

async function connect(port: number): Promise<MqttClient> {
  const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

describe.skipIf(!requirePymodbus())('publishing Modbus readings', () => {
  let dir: string;
  let slave: Slave;
  let broker: Broker;
  let brokerPort: number;
  let devices: DevicesHandle;
  let subscriber: MqttClient;
  const messages: Received[] = [];
  const on = (topic: string) => messages.filter((m) => m.topic === topic);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-publish-'));
    slave = await startSlave({
      transport: 'tcp',
      units: {
        1: { hr: { size: 4, values: { 0: 1000, 1: 2931 } } },
        2: { hr: { size: 4, values: { 0: 7 } } },
        3: { ir: { size: 12, values: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, 100 + i])) } },
        4: { hr: { size: 12, values: { 2: 4242 } }, co: { size: 4, values: { 2: true } } },
        5: { hr: { size: 12, values: { 9: 99 } }, holes: { hr: [11] } },
      },
    });
    const file = path.join(dir, 'site.json');
    writeFileSync(
      file,
      JSON.stringify({
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port }],
        devices: [
          {
            id: 'tank',
            bus: 'lan',
            unitId: 1,
            pollIntervalMs: 100,
            qos: 2,
            publish: { onChange: true, deadband: 5, maxSilenceMs: 1500 },
            points: [
              { name: 'level', table: 'holding', address: 0, unit: 'cm' },
              { name: 'temperature', table: 'holding', address: 1, scale: 0.1, offset: -273.1, decimals: 1, unit: '°C', writable: true, min: -40, max: 120 },
            ],
          },
          {
            id: 'pump',
            bus: 'lan',
            unitId: 2,
            pollIntervalMs: 100,
            qos: 0,
            retain: false,
            points: [
              { name: 'speed', table: 'holding', address: 0 },
              { name: 'target', table: 'holding', address: 1, writable: true },
            ],
          },
          {
            id: 'capped',
            bus: 'lan',
            unitId: 3,
            pollIntervalMs: 60_000,
            maxRegistersPerRequest: 4,
            points: Array.from({ length: 10 }, (_, i) => ({ name: `r${i}`, table: 'input', address: i })),
          },
          {
            id: 'datasheet',
            bus: 'lan',
            unitId: 4,
            pollIntervalMs: 60_000,
            addressBase: 'modicon',
            maxGap: 0,
            points: [
              { name: 'setpoint', address: 40003 },
              { name: 'relay', address: 3 },
            ],
          },
          { id: 'onebased', bus: 'lan', unitId: 5, pollIntervalMs: 60_000, addressBase: 1, topicPrefix: 'fieldgate/onebased', points: [{ name: 'reg10', table: 'holding', address: 10 }, { name: 'reg12', table: 'holding', address: 12, writable: true }] },
        ],
      }),
    );
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    brokerPort = (await broker.listen({ port: 0, host: '127.0.0.1' })).port;
    subscriber = await connect(brokerPort);
    subscriber.on('message', (topic, payload, packet) =>
      messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, at: Date.now(), unit: packet.properties?.userProperties?.unit }),
    );
    await subscriber.subscribeAsync('fieldgate/#', { qos: 2 });
    // A command someone published with retain before the gateway started: stale, must not reach the device.
    await subscriber.publishAsync('fieldgate/pump/target/set', '55', { qos: 1, retain: true });
    devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    subscriber?.end(true);
    await devices?.stop();
    await broker?.close();
    await slave?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes with each device\'s own QoS', async () => {
    // "online" now comes before a device's first values: wait for both.
    await waitFor(() => ['fieldgate/tank/availability', 'fieldgate/pump/availability', 'fieldgate/tank/level', 'fieldgate/pump/speed'].every((t) => on(t).length > 0), 15_000, 'first polls');
    expect(on('fieldgate/tank/level')[0]).toMatchObject({ payload: '1000', qos: 2 });
    expect(on('fieldgate/tank/availability')[0]).toMatchObject({ payload: 'online', qos: 2 });
    expect(on('fieldgate/pump/speed')[0]).toMatchObject({ payload: '7', qos: 0 });
  });

  it('applies scale, offset and decimals both ways and sends the unit as a user property', async () => {
    await waitFor(() => on('fieldgate/tank/temperature').length > 0, 10_000, 'temperature');
    expect(on('fieldgate/tank/temperature')[0]).toMatchObject({ payload: '20', unit: '°C' });
    expect(on('fieldgate/tank/level')[0]).toMatchObject({ unit: 'cm' });
    expect(on('fieldgate/tank/availability')[0].unit).toBeUndefined();
    const from = slave.requests.length;
    await subscriber.publishAsync('fieldgate/tank/temperature/set', '-20.5', { qos: 1 });
    await waitFor(() => on('fieldgate/tank/temperature/set/result').length > 0, 10_000, 'write result');
    expect(JSON.parse(on('fieldgate/tank/temperature/set/result')[0].payload)).toEqual({ ok: true, value: -20.5 });
    // (-20.5 + 273.1) / 0.1 = 2526 on the wire
    expect(slave.requests.slice(from).filter((r) => r.fc === 6).map((r) => [r.unit, r.address])).toEqual([[1, 1]]);
    expect(on('fieldgate/tank/temperature').at(-1)?.payload).toBe('-20.5');
  });

  it('ignores changes inside the deadband, publishes a change beyond it', async () => {
    const before = on('fieldgate/tank/level').length;
    await slave.set(1, 'hr', 0, [1003]);
    const polls = devices.status().find((s) => s.id === 'tank')!.polls;
    await waitFor(() => devices.status().find((s) => s.id === 'tank')!.polls >= polls + 3, 10_000, 'three polls of 1003');
    expect(on('fieldgate/tank/level').slice(before).map((m) => m.payload)).not.toContain('1003');
    await slave.set(1, 'hr', 0, [1006]);
    await waitFor(() => on('fieldgate/tank/level').some((m) => m.payload === '1006'), 10_000, '1006 published');
    // The deadband counts from the last published value (1000), so 1003 → 1006 is not swallowed piece by piece.
  });

  it('republishes an unchanged value after the maximum silence', async () => {
    await waitFor(() => on('fieldgate/tank/level').at(-1)?.payload === '1006', 10_000, 'settled on 1006');
    const lastChange = on('fieldgate/tank/level').at(-1)!.at;
    await waitFor(() => on('fieldgate/tank/level').filter((m) => m.at > lastChange).length >= 2, 10_000, 'two republications');
    const repeats = on('fieldgate/tank/level').filter((m) => m.at > lastChange);
    expect(repeats.map((m) => m.payload)).toEqual(['1006', '1006']);
    // maxSilenceMs 1500 with 100 ms polls: about 1.5 s apart, never at the poll rate.
    expect(repeats[0].at - lastChange).toBeGreaterThanOrEqual(1300);
    expect(repeats[1].at - repeats[0].at).toBeGreaterThanOrEqual(1300);
  });

  it('retains values and availability for a late subscriber, except on a device with retain false', async () => {
    const late = await connect(brokerPort);
    const retained: Received[] = [];
    late.on('message', (topic, payload, packet) => retained.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, at: Date.now() }));
    await late.subscribeAsync(['fieldgate/tank/#', 'fieldgate/pump/#'], { qos: 2 });
    await waitFor(() => ['fieldgate/tank/level', 'fieldgate/tank/availability', 'fieldgate/pump/availability'].every((t) => retained.some((m) => m.topic === t)), 5000, 'retained messages');
    await sleep(300);
    late.end(true);
    expect(retained.find((m) => m.topic === 'fieldgate/tank/level')).toMatchObject({ retain: true, payload: '1006' });
    expect(retained.find((m) => m.topic === 'fieldgate/tank/availability')).toMatchObject({ retain: true, payload: 'online' });
    // Availability is always retained; the pump's values are not.
    expect(retained.find((m) => m.topic === 'fieldgate/pump/availability')).toMatchObject({ retain: true, payload: 'online' });
    expect(retained.filter((m) => m.topic === 'fieldgate/pump/speed' && m.retain)).toEqual([]);
  });

  it('does not write a retained …/set left on the broker into the device at start; live commands still work', async () => {
    await waitFor(() => on('fieldgate/pump/target').length > 0, 10_000, 'target read');
    await sleep(300);
    expect(slave.requests.filter((r) => r.unit === 2 && r.fc !== 3)).toEqual([]);
    expect(on('fieldgate/pump/target/set/result')).toEqual([]);
    expect(on('fieldgate/pump/target').at(-1)?.payload).toBe('0');
    await subscriber.publishAsync('fieldgate/pump/target/set', '', { qos: 1, retain: true }); // clearing it is no command
    await subscriber.publishAsync('fieldgate/pump/target/set', '56', { qos: 1 });
    await waitFor(() => on('fieldgate/pump/target/set/result').length > 0, 10_000, 'live command result');
    expect(JSON.parse(on('fieldgate/pump/target/set/result')[0].payload)).toEqual({ ok: true, value: 56 });
    expect(slave.requests.filter((r) => r.unit === 2 && r.fc === 6).map((r) => r.address)).toEqual([1]);
  });

  it('keeps each read within the device\'s maxRegistersPerRequest', async () => {
    await waitFor(() => on('fieldgate/capped/r9').length > 0, 10_000, 'capped values');
    const reads = slave.requests.filter((r) => r.unit === 3).map((r) => [r.fc, r.address, r.count]);
    expect(reads.slice(0, 3)).toEqual([
      [4, 0, 4],
      [4, 4, 4],
      [4, 8, 2],
    ]);
    expect(Array.from({ length: 10 }, (_, i) => on(`fieldgate/capped/r${i}`).at(-1)?.payload)).toEqual(Array.from({ length: 10 }, (_, i) => String(100 + i)));
  });

  it('reads data-sheet addresses (40003, 00003, 1-based 10) at the right wire addresses', async () => {
    await waitFor(() => on('fieldgate/datasheet/setpoint').length > 0 && on('fieldgate/datasheet/relay').length > 0 && on('fieldgate/onebased/reg10').length > 0, 10_000, 'datasheet values');
    expect(on('fieldgate/datasheet/setpoint').at(-1)?.payload).toBe('4242');
    expect(on('fieldgate/datasheet/relay').at(-1)?.payload).toBe('true');
    expect(on('fieldgate/onebased/reg10').at(-1)?.payload).toBe('99');
    expect(slave.requests.filter((r) => r.unit === 4).map((r) => [r.fc, r.address, r.count])).toEqual(expect.arrayContaining([[3, 2, 1], [1, 2, 1]]));
    // 10 and 12 (wire 9 and 11) merge into one read; the device refuses it (11 is a hole) and it is split.
    expect(slave.requests.filter((r) => r.unit === 5).map((r) => [r.fc, r.address, r.count, r.ok])).toEqual([
      [3, 9, 3, false],
      [3, 9, 1, true],
      [3, 11, 1, false],
    ]);
  });

  it('answers a write the device refuses with the device\'s reason, and the device stays online', async () => {
    await waitFor(() => on('fieldgate/onebased/reg12/error').length > 0, 10_000, 'error on reg12');
    await subscriber.publishAsync('fieldgate/onebased/reg12/set', '5', { qos: 1 });
    await waitFor(() => on('fieldgate/onebased/reg12/set/result').length > 0, 10_000, 'write result');
    expect(JSON.parse(on('fieldgate/onebased/reg12/set/result')[0].payload)).toEqual({ ok: false, error: 'device refused: illegal data address (exception 2 to function 6)' });
    expect(slave.requests.filter((r) => r.unit === 5 && r.fc === 6).map((r) => [r.address, r.ok])).toEqual([[11, false]]);
    expect(on('fieldgate/onebased/availability').map((m) => m.payload)).toEqual(['online']);
  });
});
