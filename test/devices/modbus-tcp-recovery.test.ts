// Modbus TCP: the slave process dies and comes back on the same port; `probeRegisters` for the CLI;
// stopping the devices leaves a retained `offline`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { probeRegisters, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import type { ModbusDevice } from '../../src/devices/modbus/model.js';
import type { ModbusTcpBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, startSlave, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!requirePymodbus())('Modbus TCP recovery and probing', () => {
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  let bus: ModbusTcpBus;
  const messages: Array<{ topic: string; payload: string }> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;

  beforeAll(async () => {
    slave = await startSlave({ transport: 'tcp', units: { 5: { hr: { size: 8, values: { 0: 0x4049, 1: 0x0fdb, 2: 0xfffe } } } } });
    bus = { id: 'gw', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port, interRequestDelayMs: 0 };
    const dev: ModbusDevice = {
      id: 'pump',
      name: 'pump',
      bus,
      unitId: 5,
      pollIntervalMs: 100,
      timeoutMs: 300,
      retries: 0,
      maxRegistersPerRequest: 125,
      maxBitsPerRequest: 2000,
      maxGap: 8,
      interRequestDelayMs: 0,
      offlinePollIntervalMs: 500,
      topicPrefix: 'fieldgate/pump',
      qos: 1,
      retain: true,
      publish: { onChange: true, maxSilenceMs: 0, state: false },
      points: [{ name: 'speed', topic: 'fieldgate/pump/speed', table: 'holding', address: 2, type: 'int16', count: 1, byteOrder: 'ABCD', pollIntervalMs: 100, deadband: 0, writable: true }],
    };
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/#', (m) => messages.push({ topic: m.topic, payload: m.payload.toString() }));
    devices = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [dev] }, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    await slave?.stop();
  });

  it('publishes on change only', async () => {
    await waitFor(() => last('fieldgate/pump/speed') === '-2', 15_000, 'speed');
    // The bus opened before the device started: no offline flash at startup.
    expect(messages.filter((m) => m.topic === 'fieldgate/pump/availability').map((m) => m.payload)).toEqual(['online']);
    const polls = devices.status()[0].polls;
    await waitFor(() => devices.status()[0].polls >= polls + 5, 15_000, 'more polls');
    expect(messages.filter((m) => m.topic === 'fieldgate/pump/speed')).toHaveLength(1);
    await slave.set(5, 'hr', 2, [7]);
    await waitFor(() => last('fieldgate/pump/speed') === '7', 15_000, 'changed speed');
    expect(messages.filter((m) => m.topic === 'fieldgate/pump/speed')).toHaveLength(2);
  });

  it('marks the device offline when the slave dies and recovers when it is back on the same port', async () => {
    await slave.stop();
    await waitFor(() => last('fieldgate/pump/availability') === 'offline', 15_000, 'offline');
    expect(devices.buses()[0].online).toBe(false);
    // A command while the gateway cannot reach the device is answered at once with the reason, not left hanging.
    await watcher.publish('fieldgate/pump/speed/set', '5', { qos: 1 });
    await waitFor(() => last('fieldgate/pump/speed/set/result') !== undefined, 10_000, 'result while offline');
    expect(JSON.parse(last('fieldgate/pump/speed/set/result')!)).toMatchObject({ ok: false, error: expect.stringMatching(/^bus offline: (bus gw lost|connect to 127\.0\.0\.1)/) });
    slave = await startSlave({ transport: 'tcp', port: bus.port, units: { 5: { hr: { size: 8, values: { 2: 42 } } } } });
    await waitFor(() => last('fieldgate/pump/availability') === 'online', 30_000, 'online again');
    await waitFor(() => last('fieldgate/pump/speed') === '42', 10_000, 'fresh value');
    expect(devices.buses()[0].reconnects).toBeGreaterThanOrEqual(1);
  });

  it('probes a register range and decodes it in every type and byte order', async () => {
    const result = await probeRegisters({ bus, unitId: 5, table: 'holding', address: 0, count: 4 });
    expect(result.registers).toEqual([0, 0, 42, 0]);
    await slave.set(5, 'hr', 0, [0x4049, 0x0fdb]);
    const pi = await probeRegisters({ bus, unitId: 5, table: 'holding', address: 0, count: 2 });
    const f = pi.decodings.find((d) => d.address === 0 && d.type === 'float32' && d.byteOrder === 'ABCD');
    expect(Number(f?.value)).toBeCloseTo(Math.PI, 5);
    expect(pi.decodings.filter((d) => d.address === 0 && d.type === 'float32').map((d) => d.byteOrder)).toEqual(['ABCD', 'CDAB', 'BADC', 'DCBA']);
    expect(pi.decodings.some((d) => d.address === 1 && d.type === 'int16' && d.value === String(0x0fdb))).toBe(true);
    await expect(probeRegisters({ bus, unitId: 5, table: 'holding', address: 100, count: 2 })).rejects.toThrow(/refused the read: illegal data address/);
  });

  it('leaves a retained offline when stopped', async () => {
    await devices.stop();
    const retained: string[] = [];
    const late = broker.createLocalClient('late');
    late.subscribe('fieldgate/pump/availability', (m) => retained.push(m.payload.toString()));
    await waitFor(() => retained.length > 0, 5000, 'retained availability');
    expect(retained).toEqual(['offline']);
    late.close();
  });
});
