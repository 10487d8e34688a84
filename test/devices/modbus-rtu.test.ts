// Modbus RTU over a socat pty pair against a pymodbus slave: decoding over RTU, a dead unit id on the
// shared bus, and losing the port (the pty disappears) and getting it back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { startDevices, type DevicesHandle } from '../../src/devices/index.js';
import type { DeviceMapping } from '../../src/devices/mapping-schema.js';
import type { ModbusDevice, ModbusPoint } from '../../src/devices/modbus/model.js';
import type { ModbusRtuBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, requireSocat, startPtyPair, startSlave, type PtyPair, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function point(name: string, address: number, extra: Partial<ModbusPoint> = {}): ModbusPoint {
  return { name, topic: '', table: 'holding', address, type: 'uint16', count: 1, byteOrder: 'ABCD', pollIntervalMs: 0, deadband: 0, writable: false, ...extra };
}

function device(bus: ModbusRtuBus, id: string, unitId: number, pollIntervalMs: number, points: ModbusPoint[], extra: Partial<ModbusDevice> = {}): ModbusDevice {
  const topicPrefix = `fieldgate/${id}`;
  return {
    id,
    name: id,
    bus,
    unitId,
    pollIntervalMs,
    timeoutMs: 150,
    retries: 1,
    maxRegistersPerRequest: 125,
    maxBitsPerRequest: 2000,
    maxGap: 8,
    interRequestDelayMs: 0,
    offlinePollIntervalMs: 2000,
    topicPrefix,
    qos: 0,
    retain: true,
    publish: { onChange: false, maxSilenceMs: 0, state: false },
    points: points.map((p) => ({ ...p, topic: `${topicPrefix}/${p.name}`, pollIntervalMs: p.pollIntervalMs || pollIntervalMs })),
    ...extra,
  };
}

describe.skipIf(!requirePymodbus() || !requireSocat())('Modbus RTU on a pty pair against a pymodbus slave', () => {
  let pty: PtyPair;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const messages: Array<{ topic: string; payload: string; at: number }> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;
  const units = {
    1: { hr: { size: 10, values: { 0: 0xe979, 1: 0x42f6, 2: 0xfb2e } } },
    2: { ir: { size: 4, values: { 0: 0x0000, 1: 0xc07f, 2: 321 } } },
  };

  beforeAll(async () => {
    pty = await startPtyPair();
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units });
    const bus: ModbusRtuBus = { id: 'rs485', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, interRequestDelayMs: 0 };
    const mapping: DeviceMapping = {
      files: [],
      buses: [bus],
      lineDevices: [],
      modbusDevices: [
        // The answering units get a timeout a loaded machine cannot mistake for silence; the dead one keeps
        // the short default, so a bus that waited for it every cycle would visibly lose its rate.
        device(bus, 'meter', 1, 100, [point('power', 0, { type: 'float32', count: 2, byteOrder: 'CDAB', decimals: 3 }), point('temp', 2, { type: 'int16', scale: 0.1, writable: true, min: -50, max: 50 })], { timeoutMs: 500 }),
        device(bus, 'sensor', 2, 100, [point('nan', 0, { table: 'input', type: 'float32', count: 2, byteOrder: 'DCBA' }), point('raw', 2, { table: 'input' })], { timeoutMs: 500 }),
        device(bus, 'ghost', 9, 100, [point('x', 0)]),
      ],
    };
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('test-watcher');
    watcher.subscribe('fieldgate/#', (m) => messages.push({ topic: m.topic, payload: m.payload.toString(), at: Date.now() }));
    devices = await startDevices(mapping, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    await slave?.stop();
    await pty?.stop();
  });

  it('decodes values read over RTU', async () => {
    await waitFor(() => last('fieldgate/meter/power') && last('fieldgate/meter/temp') && last('fieldgate/sensor/nan') && last('fieldgate/sensor/raw'), 20_000, 'all values');
    expect(last('fieldgate/meter/power')).toBe('123.456');
    expect(last('fieldgate/meter/temp')).toBe('-123.4');
    expect(last('fieldgate/sensor/nan')).toBe('NaN');
    expect(last('fieldgate/sensor/raw')).toBe('321');
  });

  it('writes over RTU (FC 6), reads back and answers on …/set/result', async () => {
    const from = slave.requests.length;
    await watcher.publish('fieldgate/meter/temp/set', '-5.5', { qos: 1 });
    await waitFor(() => last('fieldgate/meter/temp/set/result') !== undefined, 20_000, 'write result');
    expect(JSON.parse(last('fieldgate/meter/temp/set/result')!)).toEqual({ ok: true, value: -5.5 });
    expect(slave.requests.slice(from).some((r) => r.unit === 1 && r.fc === 6 && r.address === 2)).toBe(true);
    await waitFor(() => last('fieldgate/meter/temp') === '-5.5', 5000, 'new value published');
    await slave.set(1, 'hr', 2, [0xfb2e]);
    await waitFor(() => last('fieldgate/meter/temp') === '-123.4', 5000, 'value restored');
  });

  it('marks a dead unit offline and backs off, while the others keep their poll rate', async () => {
    await waitFor(() => last('fieldgate/ghost/availability') === 'offline', 20_000, 'ghost offline');
    expect(last('fieldgate/meter/availability')).toBe('online');
    expect(last('fieldgate/sensor/availability')).toBe('online');
    // Let the backoff reach its ceiling, then measure a window.
    await sleep(3000);
    const from = Date.now();
    const meterBefore = messages.filter((m) => m.topic === 'fieldgate/meter/power').length;
    const busBefore = devices.buses()[0];
    await sleep(4000);
    const elapsed = Date.now() - from;
    const meterPolls = messages.filter((m) => m.topic === 'fieldgate/meter/power').length - meterBefore;
    const busAfter = devices.buses()[0];
    const ghostProbes = busAfter.timeouts - busBefore.timeouts;
    const seen = JSON.stringify({ elapsed, meterPolls, ghostProbes, status: devices.status().map((d) => [d.id, d.polls, d.failedPolls]) });
    // 100 ms interval → about 40 polls in 4 s; a bus stalled by the dead unit (150 ms timeout + retry every cycle) manages about a quarter of that.
    expect(meterPolls, seen).toBeGreaterThanOrEqual(Math.floor((elapsed / 100) * 0.5));
    expect(ghostProbes, seen).toBeLessThanOrEqual(3);
    expect(ghostProbes, seen).toBeGreaterThanOrEqual(1);
    expect(devices.status().find((d) => d.id === 'ghost')).toMatchObject({ online: false });
  });

  it('goes offline when the port disappears and recovers when it comes back', async () => {
    await slave.stop();
    await pty.kill();
    await waitFor(() => last('fieldgate/meter/availability') === 'offline' && last('fieldgate/sensor/availability') === 'offline', 20_000, 'devices offline after unplug');
    expect(devices.buses()[0].online).toBe(false);
    await sleep(1000);
    await pty.restart();
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { ...units, 1: { hr: { size: 10, values: { 0: 0, 1: 0x4120, 2: 5 } } } } });
    await waitFor(() => last('fieldgate/meter/availability') === 'online' && last('fieldgate/sensor/availability') === 'online', 30_000, 'devices online after re-plug');
    await waitFor(() => last('fieldgate/meter/power') === '10', 10_000, 'fresh value after re-plug');
    expect(last('fieldgate/meter/temp')).toBe('0.5');
    expect(devices.buses()[0].reconnects).toBeGreaterThanOrEqual(1);
    expect(last('fieldgate/ghost/availability')).toBe('offline');
  });
});

describe.skipIf(!requirePymodbus() || !requireSocat())('Modbus RTU: a reply that arrives after the timeout', () => {
  let pty: PtyPair;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const messages: Array<{ topic: string; payload: string }> = [];

  beforeAll(async () => {
    pty = await startPtyPair();
    // The slave answers every request 400 ms late; the gateway gives up after 300 ms. (The unit is then
    // quarantined for twice its timeout: the margin lets a loaded machine delay the late reply further.)
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 3: { hr: { size: 4, values: { 0: 777 } }, delayMs: 400 } } });
    const bus: ModbusRtuBus = { id: 'slow-line', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, interRequestDelayMs: 0 };
    const slow = device(bus, 'slowpoke', 3, 100, [point('value', 0)], { timeoutMs: 300, offlinePollIntervalMs: 400, retries: 1 });
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('test-watcher');
    watcher.subscribe('fieldgate/#', (m) => messages.push({ topic: m.topic, payload: m.payload.toString() }));
    devices = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [slow] }, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    await slave?.stop();
    await pty?.stop();
  });

  it('is never taken for the answer to the next request', async () => {
    await waitFor(() => slave.requests.length >= 5 && devices.buses()[0].strayBytes >= 14, 20_000, 'several late replies');
    // Each late reply is a complete, valid frame (unit 3, function 3, value 777) that arrived after its request
    // timed out: accepting it as the answer to the next request would publish 777.
    expect(messages.filter((m) => m.topic === 'fieldgate/slowpoke/value')).toEqual([]);
    expect(messages.filter((m) => m.topic === 'fieldgate/slowpoke/availability').at(-1)?.payload).toBe('offline');
  });
});
