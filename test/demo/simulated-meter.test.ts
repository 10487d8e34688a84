import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ModbusSerial from 'modbus-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { demoMapping, writeDemoMapping } from '../../src/demo/demo-mapping.js';
import { loadCurveWatts, sdm120Registers, startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { loadDeviceMapping } from '../../src/devices/mapping-schema.js';

// modbus-serial is CommonJS; its d.ts default export is reachable as `.default`.
const ModbusRTU = ModbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

let meter: SimulatedMeter | undefined;
let client: ModbusRTU | undefined;
afterEach(async () => {
  if (client?.isOpen) await new Promise<void>((r) => client!.close(() => r()));
  client = undefined;
  await meter?.stop();
  meter = undefined;
});

async function connect(port: number, unitId = 1, timeoutMs = 3000): Promise<ModbusRTU> {
  const c = new ModbusRTU();
  await c.connectTCP('127.0.0.1', { port });
  c.setID(unitId);
  c.setTimeout(timeoutMs);
  return c;
}

async function readFloat(c: ModbusRTU, address: number): Promise<number> {
  const { buffer } = await c.readInputRegisters(address, 2);
  return buffer.readFloatBE(0);
}

describe('simulated SDM120 over Modbus TCP', () => {
  it('serves plausible float32 ABCD readings at the SDM120 addresses', async () => {
    meter = await startSimulatedMeter({ seed: 1 });
    expect(meter.port).toBeGreaterThan(0);
    client = await connect(meter.port);
    const voltage = await readFloat(client, sdm120Registers.voltage);
    const current = await readFloat(client, sdm120Registers.current);
    const power = await readFloat(client, sdm120Registers.activePower);
    const pf = await readFloat(client, sdm120Registers.powerFactor);
    const frequency = await readFloat(client, sdm120Registers.frequency);
    const importEnergy = await readFloat(client, sdm120Registers.importEnergy);
    const total = await readFloat(client, sdm120Registers.totalEnergy);
    expect(voltage).toBeGreaterThan(220);
    expect(voltage).toBeLessThan(240);
    expect(power).toBeGreaterThan(50);
    expect(power).toBeLessThan(5000);
    expect(pf).toBeGreaterThan(0.8);
    expect(pf).toBeLessThanOrEqual(1);
    expect(current).toBeGreaterThan(0.1);
    expect(current).toBeLessThan(25);
    expect(frequency).toBeGreaterThan(49.9);
    expect(frequency).toBeLessThan(50.1);
    expect(importEnergy).toBeGreaterThan(1234);
    expect(total).toBeGreaterThanOrEqual(importEnergy - 0.01);
  });

  it('answers one merged read across the gaps, consistently (I = P / (V·PF))', async () => {
    meter = await startSimulatedMeter({ seed: 2 });
    client = await connect(meter.port);
    const { buffer } = await client.readInputRegisters(0, 0x20); // voltage … power factor in one request
    const v = buffer.readFloatBE(0x00 * 2);
    const i = buffer.readFloatBE(0x06 * 2);
    const p = buffer.readFloatBE(0x0c * 2);
    const s = buffer.readFloatBE(0x12 * 2);
    const q = buffer.readFloatBE(0x18 * 2);
    const pf = buffer.readFloatBE(0x1e * 2);
    expect(buffer.readUInt32BE(0x02 * 2)).toBe(0); // unused registers read as 0
    expect(i).toBeCloseTo(p / (v * pf), 3);
    expect(s).toBeCloseTo(p / pf, 1);
    expect(Math.sqrt(s * s - p * p)).toBeCloseTo(q, 0);
  });

  it('keeps energy increasing while values change from read to read', async () => {
    meter = await startSimulatedMeter({ seed: 3, dayLengthMs: 60_000 });
    client = await connect(meter.port);
    const energies: number[] = [];
    const voltages = new Set<number>();
    for (let n = 0; n < 6; n++) {
      energies.push(await readFloat(client, sdm120Registers.totalEnergy));
      voltages.add(await readFloat(client, sdm120Registers.voltage));
      await new Promise((r) => setTimeout(r, 60));
    }
    for (let n = 1; n < energies.length; n++) expect(energies[n]!).toBeGreaterThanOrEqual(energies[n - 1]!);
    expect(energies.at(-1)!).toBeGreaterThan(energies[0]!);
    expect(voltages.size).toBeGreaterThan(1);
  });

  it('switches the load with the relay coil', async () => {
    meter = await startSimulatedMeter({ seed: 4 });
    client = await connect(meter.port);
    expect((await client.readCoils(0, 1)).data[0]).toBe(true);
    await client.writeCoil(0, false);
    expect((await client.readCoils(0, 1)).data[0]).toBe(false);
    expect(meter.relayOn).toBe(false);
    expect(await readFloat(client, sdm120Registers.activePower)).toBe(0);
    expect(await readFloat(client, sdm120Registers.current)).toBe(0);
    const energyOff = await readFloat(client, sdm120Registers.totalEnergy);
    await new Promise((r) => setTimeout(r, 50));
    expect(await readFloat(client, sdm120Registers.totalEnergy)).toBe(energyOff);
    expect(await readFloat(client, sdm120Registers.voltage)).toBeGreaterThan(220); // still live
    await client.writeCoil(0, true);
    expect(await readFloat(client, sdm120Registers.activePower)).toBeGreaterThan(50);
  });

  it('answers Modbus exceptions for what an SDM120 does not have', async () => {
    meter = await startSimulatedMeter();
    client = await connect(meter.port);
    await expect(client.readCoils(5, 1)).rejects.toMatchObject({ modbusCode: 2 });
    await expect(client.writeCoil(7, true)).rejects.toMatchObject({ modbusCode: 2 });
    await expect(client.readInputRegisters(0x1ff, 2)).rejects.toMatchObject({ modbusCode: 2 });
    await expect(client.readHoldingRegisters(0, 2)).rejects.toMatchObject({ modbusCode: 2 });
    // still serving afterwards
    expect(await readFloat(client, sdm120Registers.frequency)).toBeGreaterThan(49);
  });

  it('ignores requests for another unit id, as a device on a bus does', async () => {
    meter = await startSimulatedMeter({ unitId: 1 });
    client = await connect(meter.port, 7, 500);
    await expect(client.readInputRegisters(0, 2)).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
  });

  it('listens on a given port and refuses a taken one clearly', async () => {
    meter = await startSimulatedMeter();
    await expect(startSimulatedMeter({ port: meter.port })).rejects.toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${meter.port}`));
    const port = meter.port;
    await meter.stop();
    meter = await startSimulatedMeter({ port });
    expect(meter.port).toBe(port);
    client = await connect(port);
    expect(await readFloat(client, sdm120Registers.voltage)).toBeGreaterThan(200);
  });

  it('stops: the port no longer answers', async () => {
    meter = await startSimulatedMeter();
    const port = meter.port;
    await meter.stop();
    await meter.stop(); // idempotent
    meter = undefined;
    await expect(connect(port)).rejects.toBeDefined();
  });
});

describe('simulated load over a day', () => {
  it('follows a daily curve: night base load, morning and evening peaks', () => {
    expect(loadCurveWatts(3)).toBeLessThan(250);
    expect(loadCurveWatts(7.5)).toBeGreaterThan(1000);
    expect(loadCurveWatts(19)).toBeGreaterThan(1500);
    expect(loadCurveWatts(15)).toBeLessThan(loadCurveWatts(19));
  });

  it('integrates energy over simulated time from the power it reports', async () => {
    let now = 1_000_000;
    meter = await startSimulatedMeter({ seed: 5, dayLengthMs: 24_000, startHour: 0, now: () => now }); // 1 simulated hour = 1 s
    const start = meter.readings();
    expect(start.simulatedHour).toBe(0);
    let watts = 0;
    for (let step = 0; step < 60; step++) {
      now += 1000 / 60; // one simulated minute
      watts += meter.readings().activePower;
    }
    const end = meter.readings();
    expect(end.simulatedHour).toBeCloseTo(1, 5);
    // kWh over one hour ≈ mean power / 1000
    expect(end.totalEnergy - start.totalEnergy).toBeCloseTo(watts / 60 / 1000, 2);
    now += 6.5 * 1000; // to 07:30
    expect(meter.readings().activePower).toBeGreaterThan(900);
  });
});

describe('demo mapping', () => {
  it('is a valid device mapping once the simulator port is filled in', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-demo-'));
    try {
      const file = writeDemoMapping(dir, 15020);
      const result = loadDeviceMapping(file);
      expect(result.ok ? [] : result.errors).toEqual([]);
      if (!result.ok) return;
      expect(result.mapping.buses).toMatchObject([{ id: 'demo', type: 'modbus-tcp', host: '127.0.0.1', port: 15020 }]);
      const device = result.mapping.modbusDevices[0]!;
      expect(device.points.map((p) => p.name)).toEqual(['voltage', 'current', 'power', 'power-factor', 'frequency', 'energy-import', 'energy-total', 'relay']);
      expect(device.points.find((p) => p.name === 'relay')).toMatchObject({ table: 'coil', address: 0, writable: true });
      // Every register point sits where the simulator serves it.
      const served = new Set<number>(Object.values(sdm120Registers));
      for (const p of device.points.filter((p) => p.table === 'input')) expect(served.has(p.address)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the template untouched', () => {
    demoMapping(1);
    expect(demoMapping(2).buses[0]!.port).toBe(2);
  });
});

describe('read by an independent Modbus client (pymodbus)', () => {
  const python = '/usr/bin/python3';
  const hasPymodbus = spawnSync(python, ['-c', 'import pymodbus.client'], { timeout: 20_000 }).status === 0;
  if (!hasPymodbus && process.env.CI === 'true') throw new Error('python3-pymodbus is required under CI=true (apt-get install -y python3-pymodbus)');
  it.skipIf(!hasPymodbus)('decodes the same float32 ABCD values', async () => {
    meter = await startSimulatedMeter({ seed: 6 });
    const script = [
      'import struct, sys',
      'from pymodbus.client import ModbusTcpClient',
      `c = ModbusTcpClient("127.0.0.1", port=${meter.port}, timeout=3)`,
      'assert c.connect()',
      'r = c.read_input_registers(0x46, 2, slave=1)',
      'print(struct.unpack(">f", struct.pack(">HH", *r.registers))[0])',
      'c.close()',
    ].join('\n');
    // Asynchronously: the meter runs in this process and must keep answering.
    const out = await promisify(execFile)(python, ['-c', script], { timeout: 20_000, encoding: 'utf8' });
    expect(out.stderr).toBe('');
    const frequency = Number(out.stdout.trim());
    expect(frequency).toBeGreaterThan(49.9);
    expect(frequency).toBeLessThan(50.1);
  });
});
