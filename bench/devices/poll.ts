// Benchmark: the gateway's CPU time per 1,000 Modbus points polled and published, and the requests
// per poll cycle against the minimum possible, for a 200-point mapping.
// Peer: a pymodbus slave (Debian python3-pymodbus) in another process over Modbus TCP on loopback,
// so its CPU is not counted. Poll latency comes from startDevices' onPoll hook (bus queueing included).
// Run: node --import tsx bench/devices/poll.ts  (about 25 s)
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Broker } from '../../src/broker/broker.js';
import { startDevices } from '../../src/devices/index.js';
import type { ModbusDevice, ModbusPoint } from '../../src/devices/modbus/model.js';
import { minimumRequests, planReads } from '../../src/devices/modbus/planner.js';
import type { ModbusTcpBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';

const secondsPerScenario = Number(process.env.BENCH_SECONDS ?? 5);
const slaveScript = path.resolve(import.meta.dirname, '../../test/devices/fixtures/modbus_slave.py');

function buildPoints(prefix: string): ModbusPoint[] {
  const points: ModbusPoint[] = [];
  const add = (p: Omit<ModbusPoint, 'topic' | 'byteOrder' | 'pollIntervalMs' | 'deadband' | 'writable'>) =>
    points.push({ ...p, topic: `${prefix}/${p.name}`, byteOrder: 'ABCD', pollIntervalMs: 0, deadband: 0, writable: false });
  // 100 float32 in four groups of 25 with 6 unused registers between groups (as energy meters lay them out).
  for (let i = 0; i < 100; i++) add({ name: `hr/${i}`, table: 'holding', address: i * 2 + Math.floor(i / 25) * 6, type: 'float32', count: 2, decimals: 2 });
  for (let i = 0; i < 60; i++) add({ name: `ir/${i}`, table: 'input', address: i, type: 'int16', count: 1, scale: 0.1 });
  for (let i = 0; i < 40; i++) add({ name: `co/${i}`, table: 'coil', address: i, type: 'bool', count: 1 });
  return points;
}

interface SlaveHandle {
  port: number;
  requests(): number;
  stop(): void;
}

async function startSlave(): Promise<SlaveHandle> {
  const values: Record<number, number> = {};
  for (let a = 0; a < 260; a++) values[a] = (a * 7919) & 0xffff;
  const config = { transport: 'tcp', units: { 1: { hr: { size: 260, values }, ir: { size: 60, values: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [i, i * 10])) }, co: { size: 40 } } } };
  const child = spawn('/usr/bin/python3', [slaveScript, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'ignore'] });
  let count = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`pymodbus slave exited (${code})`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('"request"')) count++;
      else if (line.includes('"listening"')) resolve(Number((JSON.parse(line) as { port: number }).port));
    });
  });
  return { port, requests: () => count, stop: () => child.kill('SIGKILL') };
}

function device(bus: ModbusTcpBus, pollIntervalMs: number, onChange: boolean, maxGap: number): ModbusDevice {
  const prefix = 'bench/meter';
  return {
    id: 'meter',
    name: 'meter',
    bus,
    unitId: 1,
    pollIntervalMs,
    timeoutMs: 2000,
    retries: 0,
    maxRegistersPerRequest: 125,
    maxBitsPerRequest: 2000,
    maxGap,
    interRequestDelayMs: 0,
    offlinePollIntervalMs: 5000,
    topicPrefix: prefix,
    qos: 0,
    retain: true,
    publish: { onChange, maxSilenceMs: 0, state: false },
    points: buildPoints(prefix).map((p) => ({ ...p, pollIntervalMs })),
  };
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function scenario(name: string, bus: ModbusTcpBus, slave: SlaveHandle, onChange: boolean, maxGap: number) {
  const broker = new Broker({ dataDir: null, logger: silentLogger });
  await broker.start();
  let delivered = 0;
  const subscriber = broker.createLocalClient('bench-subscriber');
  subscriber.subscribe('bench/#', () => delivered++);
  const dev = device(bus, 10, onChange, maxGap);
  let measuring = false;
  const latencies: number[] = [];
  const handle = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [dev] }, (id) => broker.createLocalClient(id), silentLogger, {
    onPoll: (_id, seconds) => {
      if (measuring) latencies.push(seconds * 1000);
    },
  });
  // Warm up (JIT, first publishes of every point), then measure.
  const warm = Date.now();
  while (Date.now() - warm < 1000) await new Promise((r) => setTimeout(r, 50));
  const polls0 = handle.status()[0].polls;
  const requests0 = slave.requests();
  const delivered0 = delivered;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  measuring = true;
  await new Promise((r) => setTimeout(r, secondsPerScenario * 1000));
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cycles = handle.status()[0].polls - polls0;
  const requests = slave.requests() - requests0;
  const published = delivered - delivered0;
  await handle.stop();
  subscriber.close();
  await broker.close();
  const points = cycles * dev.points.length;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const limits = { maxRegisters: 125, maxBits: 2000 };
  return {
    scenario: name,
    'cycles/s': (cycles / (wallMs / 1000)).toFixed(1),
    'points/s': Math.round(points / (wallMs / 1000)),
    'published/s': Math.round(published / (wallMs / 1000)),
    'CPU ms / 1000 points': points > 0 ? ((cpuMs / points) * 1000).toFixed(2) : 'n/a',
    'CPU %': ((cpuMs / wallMs) * 100).toFixed(0),
    'requests/cycle': cycles > 0 ? (requests / cycles).toFixed(2) : 'n/a',
    'poll ms p50/p99': `${percentile(latencies, 0.5).toFixed(1)}/${percentile(latencies, 0.99).toFixed(1)}`,
    planned: planReads(dev.points, { ...limits, maxGap }).length,
    minimum: minimumRequests(dev.points, limits),
  };
}

const slave = await startSlave();
try {
  const bus: ModbusTcpBus = { id: 'bench', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port, interRequestDelayMs: 0 };
  const rows = [];
  rows.push(await scenario('publish every poll, maxGap 8', bus, slave, false, 8));
  rows.push(await scenario('publish on change (static values), maxGap 8', bus, slave, true, 8));
  rows.push(await scenario('publish every poll, no gap bridging', bus, slave, false, 0));
  console.log(`200-point mapping (100 float32 holding in 4 groups, 60 int16 input, 40 coils), Modbus TCP to pymodbus on loopback, poll interval 10 ms, ${secondsPerScenario} s per scenario`);
  console.log('one request per point would be 200 requests/cycle');
  console.table(rows);
} finally {
  slave.stop();
}
