// The default maxGap comes from the bus: an SDM-style map (points in clusters with gaps of tens of
// registers) takes the fewest reads a device's request cap allows where a request costs more than the
// unused registers (TCP, RTU at 9600 baud), and a hole in the bridged range (exception 02) is split
// once and remembered — checked against a pymodbus slave that has such a hole.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { loadDeviceMapping, minimumRequests, planDeviceReads, startDevices } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, startSlave } from './helpers/modbus-peers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-maxgap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sdm120On(bus: Record<string, unknown>, name: string) {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ buses: [{ id: 'b', ...bus }], include: [{ profile: 'eastron-sdm120', id: 'meter', bus: 'b', unitId: 1 }] }));
  const loaded = loadDeviceMapping(file);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.mapping.modbusDevices[0]!;
}

describe('the default maxGap', () => {
  it('an SDM120 over TCP and on RTU at 9600 baud: the minimum number of reads (2)', () => {
    for (const [name, bus] of [['tcp', { type: 'modbus-tcp', host: '127.0.0.1', port: 502 }], ['rtu9600', { type: 'modbus-rtu', path: '/dev/null', baudRate: 9600 }]] as const) {
      const device = sdm120On(bus, name);
      const minimum = minimumRequests(device.points, { maxRegisters: device.maxRegistersPerRequest, maxBits: device.maxBitsPerRequest });
      expect(minimum).toBe(2);
      expect(planDeviceReads(device).length, name).toBe(minimum);
    }
  });

  it('at 2400 baud a 38-register gap costs more wire time (317 ms) than a request (~190 ms): not bridged', () => {
    const device = sdm120On({ type: 'modbus-rtu', path: '/dev/null', baudRate: 2400 }, 'rtu2400');
    expect(device.maxGap).toBe(22);
    expect(planDeviceReads(device).map((b) => [b.address, b.count])).toEqual([[0, 32], [70, 10], [342, 4]]);
  });

  it('an explicit maxGap still wins', () => {
    const file = path.join(dir, 'explicit.json');
    writeFileSync(file, JSON.stringify({ buses: [{ id: 'b', type: 'modbus-tcp', host: '127.0.0.1' }], include: [{ profile: 'eastron-sdm120', id: 'meter', bus: 'b', unitId: 1, maxGap: 8 }] }));
    const loaded = loadDeviceMapping(file);
    expect(loaded.ok && loaded.mapping.modbusDevices[0]!.maxGap).toBe(8);
  });

  it.skipIf(!requirePymodbus())('a hole inside the bridged range is split once (exception 02) and every value still arrives', async () => {
    // Input registers 0–345 exist except 40 (inside the bridged 32–69 gap).
    const slave = await startSlave({ transport: 'tcp', units: { 1: { ir: { size: 350 }, holes: { ir: [40] } } } });
    const file = path.join(dir, 'holey.json');
    writeFileSync(file, JSON.stringify({
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: slave.port }],
      include: [{ profile: 'eastron-sdm120', id: 'meter', bus: 'lan', unitId: 1, pollIntervalMs: 200 }],
    }));
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const seen = new Set<string>();
    const watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/meter/+', (m) => seen.add(m.topic));
    const devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
    try {
      const points = loaded.mapping.modbusDevices[0]!.points.map((p) => p.topic);
      const deadline = Date.now() + 15_000;
      while (!points.every((t) => seen.has(t)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(points.filter((t) => !seen.has(t))).toEqual([]);
      // Let a few more polls run: the refused range is asked for once, then the split is remembered.
      const polls = () => slave.requests.filter((r) => r.ok && r.address === 342).length;
      const refusedBefore = slave.requests.filter((r) => !r.ok);
      expect(refusedBefore.length).toBeGreaterThanOrEqual(1);
      expect(refusedBefore[0]).toMatchObject({ fc: 4, address: 0 });
      const start = polls();
      while (polls() < start + 3 && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 50));
      expect(polls()).toBeGreaterThanOrEqual(start + 3);
      // The splits found in the first poll are kept: later polls are refused nothing.
      expect(slave.requests.filter((r) => !r.ok).length).toBe(refusedBefore.length);
    } finally {
      await devices.stop();
      watcher.close();
      await broker.close();
      await slave.stop();
    }
  }, 40_000);
});
