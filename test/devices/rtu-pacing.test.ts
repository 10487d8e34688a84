// RTU pacing: the 3.5-character silent interval at the bus's baud rate plus the configured delay separates
// every transaction on the line, measured where the requests arrive (a pymodbus slave on a socat pty).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { rtuSilentIntervalMs } from '../../src/devices/modbus/bus.js';
import type { ModbusDevice } from '../../src/devices/modbus/model.js';
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

const rtu = (baudRate: ModbusRtuBus['baudRate'], parity: ModbusRtuBus['parity'] = 'none', stopBits: 1 | 2 = 1): ModbusRtuBus => ({ id: 'b', type: 'modbus-rtu', path: '/dev/null', baudRate, parity, dataBits: 8, stopBits, interRequestDelayMs: 0 });

describe('RTU silent interval', () => {
  it('is 3.5 characters at the configured baud rate and frame format, 1.75 ms above 19200 baud', () => {
    expect(rtuSilentIntervalMs(rtu(9600))).toBeCloseTo((3.5 * 10 * 1000) / 9600, 6); // 8N1: 10 bits a character
    expect(rtuSilentIntervalMs(rtu(9600, 'even'))).toBeCloseTo((3.5 * 11 * 1000) / 9600, 6); // 8E1: 11 bits
    expect(rtuSilentIntervalMs(rtu(2400, 'none', 2))).toBeCloseTo((3.5 * 11 * 1000) / 2400, 6);
    expect(rtuSilentIntervalMs(rtu(1200))).toBeCloseTo(29.17, 2);
    expect(rtuSilentIntervalMs(rtu(19200))).toBeCloseTo(1.823, 3);
    expect(rtuSilentIntervalMs(rtu(38400))).toBe(1.75);
    expect(rtuSilentIntervalMs(rtu(115200))).toBe(1.75);
    expect(rtuSilentIntervalMs({ id: 't', type: 'modbus-tcp', host: 'h', port: 502, interRequestDelayMs: 0 })).toBe(0);
  });
});

describe.skipIf(!requirePymodbus() || !requireSocat())('RTU pacing on a pty against pymodbus', () => {
  let pty: PtyPair;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  const delayMs = 40;
  let bus: ModbusRtuBus;

  beforeAll(async () => {
    pty = await startPtyPair();
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 4 } }, 2: { hr: { size: 4 } } } });
    // 1200 baud 8N1: a 29 ms silent interval; ptys ignore the baud rate, so the gaps are fieldgate's own.
    bus = { id: 'slow-bus', type: 'modbus-rtu', path: pty.gateway, baudRate: 1200, parity: 'none', dataBits: 8, stopBits: 1, interRequestDelayMs: delayMs };
    const device = (id: string, unitId: number): ModbusDevice => ({
      id,
      name: id,
      bus,
      unitId,
      pollIntervalMs: 10,
      timeoutMs: 1000,
      retries: 0,
      maxRegistersPerRequest: 125,
      maxBitsPerRequest: 2000,
      maxGap: 8,
      interRequestDelayMs: delayMs,
      offlinePollIntervalMs: 1000,
      topicPrefix: `fieldgate/${id}`,
      qos: 0,
      retain: false,
      publish: { onChange: true, maxSilenceMs: 0, state: false },
      points: [{ name: 'v', topic: `fieldgate/${id}/v`, table: 'holding', address: 0, type: 'uint16', count: 1, byteOrder: 'ABCD', pollIntervalMs: 10, deadband: 0, writable: false }],
    });
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    // Two devices asking every 10 ms keep the line saturated: every gap is the scheduler's pacing.
    devices = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [device('a', 1), device('b', 2)] }, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    await devices?.stop();
    await broker?.close();
    await slave?.stop();
    await pty?.stop();
  });

  it('leaves at least the silent interval plus the configured delay between transactions, one at a time', async () => {
    await waitFor(() => slave.requests.length >= 25, 30_000, '25 requests');
    const requests = slave.requests.slice(5, 25);
    const gaps = requests.slice(1).map((r, i) => r.t - requests[i].t);
    const pacing = rtuSilentIntervalMs(bus) + delayMs; // ≈ 69 ms
    // Each gap also holds the reply and the next request on the wire (instant on a pty): never shorter.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(pacing - 3);
    // Both units take turns on the shared line instead of one starving the other.
    expect(new Set(requests.map((r) => r.unit))).toEqual(new Set([1, 2]));
    expect(devices.status().every((s) => s.online && s.failedPolls === 0)).toBe(true);
  });
});
