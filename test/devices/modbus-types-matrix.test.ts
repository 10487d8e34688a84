// Every register type in every byte order, over Modbus TCP against pymodbus: values the slave holds are
// decoded to the known numbers, and values written through `…/set` land on the wire as the known images.
// The images are built here from Node's own big-endian encoders plus the order definitions, independently of
// fieldgate's codec: ABCD = registers in order, high byte first; CDAB = registers reversed (all four for
// 64-bit values); BADC = bytes swapped inside each register; DCBA = both. 16-bit values honour only the byte swap.
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { probeRegisters, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import type { ModbusDevice, ModbusPoint } from '../../src/devices/modbus/model.js';
import type { ModbusTcpBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, startSlave, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Order = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';
type WideType = 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'int64' | 'uint64' | 'float64';
const orders: Order[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

function bigEndian(type: WideType, value: number | bigint): Buffer {
  const sizes = { int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8 };
  const b = Buffer.alloc(sizes[type]);
  if (type === 'int16') b.writeInt16BE(Number(value));
  if (type === 'uint16') b.writeUInt16BE(Number(value));
  if (type === 'int32') b.writeInt32BE(Number(value));
  if (type === 'uint32') b.writeUInt32BE(Number(value));
  if (type === 'float32') b.writeFloatBE(Number(value));
  if (type === 'int64') b.writeBigInt64BE(BigInt(value));
  if (type === 'uint64') b.writeBigUInt64BE(BigInt(value));
  if (type === 'float64') b.writeDoubleBE(Number(value));
  return b;
}

function wireImage(type: WideType, value: number | bigint, order: Order): number[] {
  const bytes = bigEndian(type, value);
  let registers = Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16BE(i * 2));
  if (order === 'BADC' || order === 'DCBA') registers = registers.map((r) => ((r & 0xff) << 8) | (r >> 8));
  if ((order === 'CDAB' || order === 'DCBA') && registers.length > 1) registers = registers.reverse();
  return registers;
}

const known: Array<{ type: WideType; read: number | bigint; payload: string; write: string }> = [
  { type: 'int16', read: -12345, payload: '-12345', write: '-3' },
  { type: 'uint16', read: 54321, payload: '54321', write: '65535' },
  { type: 'int32', read: -123456789, payload: '-123456789', write: '-2147483648' },
  { type: 'uint32', read: 3456789012, payload: '3456789012', write: '4294967295' },
  { type: 'float32', read: -1234.5, payload: '-1234.5', write: '0.15625' },
  { type: 'int64', read: -1234567890123456789n, payload: '-1234567890123456789', write: '-9223372036854775808' },
  { type: 'uint64', read: 12345678901234567890n, payload: '12345678901234567890', write: '18446744073709551615' },
  { type: 'float64', read: -12345.678901, payload: '-12345.678901', write: '-1e-300' },
];

describe.skipIf(!requirePymodbus())('every type in every byte order over Modbus TCP', () => {
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let subscriber: MqttClient;
  let bus: ModbusTcpBus;
  const points: Array<ModbusPoint & { known: (typeof known)[number] | 'nan32' | 'nan64' }> = [];
  const messages = new Map<string, string[]>();
  const last = (topic: string) => messages.get(topic)?.at(-1);

  beforeAll(async () => {
    const values: Record<number, number> = {};
    let address = 0;
    const add = (name: string, type: WideType, order: Order, registers: number[], k: (typeof points)[number]['known']) => {
      registers.forEach((r, i) => (values[address + i] = r));
      points.push({ name, topic: `fieldgate/matrix/${name}`, table: 'holding', address, type, count: registers.length, byteOrder: order, pollIntervalMs: 60_000, deadband: 0, writable: true, known: k });
      address += registers.length;
    };
    for (const k of known) for (const order of orders) add(`${k.type}/${order}`, k.type, order, wireImage(k.type, k.read, order), k);
    for (const order of orders) add(`nan32/${order}`, 'float32', order, wireImage('float32', NaN, order), 'nan32');
    for (const order of orders) add(`nan64/${order}`, 'float64', order, wireImage('float64', NaN, order), 'nan64');
    slave = await startSlave({ transport: 'tcp', units: { 1: { hr: { size: address, values } } } });
    bus = { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port, interRequestDelayMs: 0 };
    const device: ModbusDevice = {
      id: 'matrix', name: 'matrix', bus, unitId: 1, pollIntervalMs: 60_000, timeoutMs: 2000, retries: 1,
      maxRegistersPerRequest: 125, maxBitsPerRequest: 2000, maxGap: 8, interRequestDelayMs: 0, offlinePollIntervalMs: 5000,
      topicPrefix: 'fieldgate/matrix', qos: 1, retain: true, publish: { onChange: false, maxSilenceMs: 0, state: false },
      points: points.map(({ known: _k, ...p }) => p),
    };
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
    subscriber = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      subscriber.once('connect', () => resolve());
      subscriber.once('error', reject);
    });
    subscriber.on('message', (topic, payload) => messages.set(topic, [...(messages.get(topic) ?? []), payload.toString()]));
    await subscriber.subscribeAsync('fieldgate/matrix/#', { qos: 1 });
    devices = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [device] }, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    subscriber?.end(true);
    await devices?.stop();
    await broker?.close();
    await slave?.stop();
  });

  it('decodes each of the 40 points to its known value', async () => {
    await waitFor(() => points.every((p) => last(p.topic) !== undefined), 15_000, 'all points');
    const got = Object.fromEntries(points.map((p) => [p.name, last(p.topic)]));
    const want = Object.fromEntries(points.map((p) => [p.name, p.known === 'nan32' || p.known === 'nan64' ? 'NaN' : p.known.payload]));
    expect(got).toEqual(want);
    expect(points).toHaveLength(40);
  });

  it('writes each type in each order as the known wire image (checked on the raw registers), and reads it back', async () => {
    for (const p of points) {
      if (p.known === 'nan32' || p.known === 'nan64') continue;
      const resultTopic = `${p.topic}/set/result`;
      const before = messages.get(resultTopic)?.length ?? 0;
      await subscriber.publishAsync(`${p.topic}/set`, p.known.write, { qos: 1 });
      await waitFor(() => (messages.get(resultTopic)?.length ?? 0) > before, 10_000, `result for ${p.name}`);
      expect({ point: p.name, result: JSON.parse(last(resultTopic)!) as unknown }).toMatchObject({ point: p.name, result: { ok: true } });
      expect(last(p.topic)).toBe(String(p.known.type === 'float32' || p.known.type === 'float64' ? Number(p.known.write) : p.known.write));
      const raw = await probeRegisters({ bus, unitId: 1, table: 'holding', address: p.address, count: p.count });
      const value = p.known.type.endsWith('64') && !p.known.type.startsWith('float') ? BigInt(p.known.write) : Number(p.known.write);
      expect({ point: p.name, registers: raw.registers }).toEqual({ point: p.name, registers: wireImage(p.known.type, value, p.byteOrder) });
    }
    const writes = slave.requests.filter((r) => r.fc === 6 || r.fc === 16);
    // One register: FC 6; wider values: FC 16 over the whole value.
    expect(writes.filter((r) => r.fc === 6)).toHaveLength(8);
    expect(writes.filter((r) => r.fc === 16)).toHaveLength(24);
  });
});
