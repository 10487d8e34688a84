// RTU framing over a TCP socket (a serial-to-Ethernet converter), played by socat bridging a TCP port to a
// pty where the pymodbus RTU slave listens. Also checks per-point poll intervals.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { startDevices, type DevicesHandle } from '../../src/devices/index.js';
import type { ModbusDevice } from '../../src/devices/modbus/model.js';
import type { ModbusRtuOverTcpBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, requireSocat, startSlave, type Slave } from './helpers/modbus-peers.js';

async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe.skipIf(!requirePymodbus() || !requireSocat())('Modbus RTU over TCP through a socat converter', () => {
  let dir: string;
  let socat: ChildProcess;
  let slave: Slave;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const messages: Array<{ topic: string; payload: string }> = [];
  const last = (topic: string) => messages.filter((m) => m.topic === topic).at(-1)?.payload;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-rtutcp-'));
    const link = path.join(dir, 'converter');
    const port = await freePort();
    socat = spawn('socat', [`pty,raw,echo=0,link=${link}`, `tcp-listen:${port},bind=127.0.0.1,reuseaddr`], { stdio: 'ignore' });
    await waitFor(() => existsSync(link), 10_000, 'socat pty');
    slave = await startSlave({ transport: 'rtu', device: link, units: { 4: { hr: { size: 20, values: { 0: 0x0001, 1: 0x86a0, 10: 0xffff } } } } });
    const bus: ModbusRtuOverTcpBus = { id: 'converter', type: 'modbus-rtu-over-tcp', host: '127.0.0.1', port, interRequestDelayMs: 0 };
    const base = { table: 'holding' as const, byteOrder: 'ABCD' as const, deadband: 0, writable: false };
    const dev: ModbusDevice = {
      id: 'remote',
      name: 'remote',
      bus,
      unitId: 4,
      pollIntervalMs: 100,
      timeoutMs: 500,
      retries: 1,
      maxRegistersPerRequest: 125,
      maxBitsPerRequest: 2000,
      maxGap: 2,
      interRequestDelayMs: 0,
      offlinePollIntervalMs: 1000,
      topicPrefix: 'fieldgate/remote',
      qos: 0,
      retain: true,
      publish: { onChange: false, maxSilenceMs: 0, state: false },
      points: [
        { ...base, name: 'counter', topic: 'fieldgate/remote/counter', address: 0, type: 'uint32', count: 2, pollIntervalMs: 100 },
        { ...base, name: 'slow', topic: 'fieldgate/remote/slow', address: 10, type: 'int16', count: 1, pollIntervalMs: 1000 },
      ],
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
    if (socat && socat.exitCode === null) {
      const exited = new Promise((r) => socat.once('exit', r));
      socat.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads through the converter and polls each point at its own interval', async () => {
    await waitFor(() => last('fieldgate/remote/counter') === '100000' && last('fieldgate/remote/slow') === '-1', 20_000, 'values');
    const start = slave.requests.length;
    await new Promise((r) => setTimeout(r, 3000));
    const window = slave.requests.slice(start).filter((r) => r.unit === 4);
    const fast = window.filter((r) => r.address === 0).length;
    const slow = window.filter((r) => r.address === 10).length;
    expect(fast).toBeGreaterThanOrEqual(15);
    expect(slow).toBeGreaterThanOrEqual(2);
    expect(slow).toBeLessThanOrEqual(4);
    // The two points are never merged: they belong to different poll groups.
    expect(window.every((r) => r.count === (r.address === 0 ? 2 : 1))).toBe(true);
  });
});
