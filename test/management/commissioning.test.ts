// Commissioning through the running gateway's bus scheduler, on a Modbus RTU line (socat pty) with a
// pymodbus slave the gateway polls every 100 ms: bus/scan and bus/read interleave with the polls (no
// CRC errors, no failed poll, the device stays online), `fieldgate probe --gateway` reads through the
// gateway instead of opening the port a second time, and when the slave goes silent the device's
// points are shown stale (never fresh) with the bus state.
import fs from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { requirePymodbus, requireSocat, startPtyPair, startSlave, type PtyPair, type Slave } from '../devices/helpers/modbus-peers.js';
import { ensureBuilt, runCli, tempDir, waitFor } from '../gateway/helpers.js';
import { ask, connectClient } from './helpers.js';

const GW = 'commission-gw';
const NS = `fieldgate/${GW}`;

describe.skipIf(!requirePymodbus() || !requireSocat())('management API: commissioning through the bus scheduler (RTU, pymodbus)', () => {
  let dir: string;
  let pty: PtyPair;
  let slave: Slave;
  let gateway: Gateway;
  let url: string;
  let admin: MqttClient;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-commission-');
    pty = await startPtyPair();
    // Unit 1: 230.5 V as float32 ABCD (0x4366 0x8000) at holding 0; unit 3: another device on the line.
    slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 10, values: { 0: 0x4366, 1: 0x8000, 2: 2305 } } }, 3: { hr: { size: 4 } } } });
    const mapping = path.join(dir, 'line.json');
    fs.writeFileSync(mapping, JSON.stringify({
      buses: [{ id: 'rs485', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600, reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 2000 }],
      devices: [{ id: 'meter', bus: 'rs485', unitId: 1, pollIntervalMs: 100, timeoutMs: 300, retries: 0, offlinePollIntervalMs: 500,
        points: [{ name: 'voltage', table: 'holding', address: 0, type: 'float32', unit: 'V' }, { name: 'raw', table: 'holding', address: 2 }] }],
    }));
    gateway = await startGateway(parseGatewayConfig({
      gatewayId: GW, devices: [mapping], broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
    }, 'commissioning test', dir), silentLogger);
    url = `mqtt://127.0.0.1:${gateway.listeners[0].port}`;
    admin = await connectClient(url, { clientId: 'commission-admin', username: 'admin' }, clients);
    await waitFor(async () => (await ask(admin, NS, 'device', { id: 'meter' })).data?.availability === 'online', 'the meter polled');
  }, 240_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await gateway?.stop();
    await slave?.stop();
    await pty?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const meter = async () => (await ask(admin, NS, 'device', { id: 'meter' })).data;

  it('bus/scan finds the units that answer while the gateway keeps polling, without a failed poll', async () => {
    const before = await meter();
    const scan = await ask(admin, NS, 'bus/scan', { bus: 'rs485', from: 1, to: 6, timeoutMs: 100 });
    expect(scan.status, scan.error).toBe('ok');
    expect(scan.data.answered).toEqual([{ unitId: 1, answer: 'registers' }, { unitId: 3, answer: 'registers' }]);
    expect(scan.data.silent).toBe(4);
    const after = await meter();
    // The meter was polled during the scan (it took ≥ 4 timeouts), and no poll failed: one master on the line.
    expect(after.polls).toBeGreaterThan(before.polls + 2);
    expect(after.errorCount).toBe(before.errorCount);
    expect(after.availability).toBe('online');
    // The scan's requests reached the slave, between the polls.
    const units = new Set(slave.requests.map((r) => r.unit));
    expect(units.has(3)).toBe(true);
    const serialOnly = await ask(admin, NS, 'bus/scan', { bus: 'rs485', from: 0, to: 3 });
    expect(serialOnly.errors![0]).toMatchObject({ path: 'from', message: expect.stringContaining('broadcast') });
  });

  it('a second scan of the same bus is refused while one runs', async () => {
    const first = ask(admin, NS, 'bus/scan', { bus: 'rs485', from: 4, to: 8, timeoutMs: 100 });
    await new Promise((r) => setTimeout(r, 50));
    const second = await ask(admin, NS, 'bus/scan', { bus: 'rs485', from: 1, to: 2 });
    expect(second.errors![0].message).toContain('already running');
    expect((await first).data.silent).toBe(5);
  });

  it('bus/read shows the decodings near the display value, through the scheduler', async () => {
    const before = await meter();
    const near = await ask(admin, NS, 'bus/read', { bus: 'rs485', unitId: 1, table: 'holding', address: 0, count: 3, expect: 230.5 });
    expect(near.status, near.error).toBe('ok');
    expect(near.data.registers).toEqual([0x4366, 0x8000, 2305]);
    expect(near.data.decodings).toContainEqual({ address: 0, type: 'float32', byteOrder: 'ABCD', value: '230.5', scale: 1 });
    expect(near.data.decodings).toContainEqual({ address: 2, type: 'uint16', byteOrder: 'ABCD', value: '2305', scale: 0.1 });
    const refused = await ask(admin, NS, 'bus/read', { bus: 'rs485', unitId: 3, table: 'holding', address: 50, count: 2 });
    expect(refused.errors![0]).toMatchObject({ path: 'address', message: expect.stringContaining('unit 3 refused the read') });
    expect((await meter()).errorCount).toBe(before.errorCount);

    // The decoding picked, as point JSON, checked in the meter's mapping: register 2 is its "raw" point already
    // (check's overlap error); at a free register `fieldgate check` accepts the mapping with it.
    const taken = await ask(admin, NS, 'bus/point', { name: 'voltage-raw', table: 'holding', address: 2, type: 'uint16', scale: 0.1, unit: 'V', device: 'meter' });
    expect(taken.data).toMatchObject({ valid: false, errors: [expect.stringMatching(/overlaps "raw"/)] });
    const point = await ask(admin, NS, 'bus/point', { name: 'voltage-raw', table: 'holding', address: 4, type: 'uint16', scale: 0.1, unit: 'V', device: 'meter' });
    expect(point.data).toMatchObject({ valid: true, point: { name: 'voltage-raw', address: 4, type: 'uint16', scale: 0.1 } });
    const mapping = JSON.parse(fs.readFileSync(path.join(dir, 'line.json'), 'utf8'));
    mapping.devices[0].points.push(point.data.point);
    fs.writeFileSync(path.join(dir, 'checked.json'), JSON.stringify(mapping));
    fs.writeFileSync(path.join(dir, 'checked-config.json'), JSON.stringify({ gatewayId: 'x', devices: ['checked.json'], broker: { port: 0, dataDir: 'data' } }));
    const check = await runCli(['check', '--config', path.join(dir, 'checked-config.json')], { timeoutMs: 30_000 });
    expect(check.code, check.stderr).toBe(0);
  });

  it('fieldgate probe --gateway reads through the running gateway while it polls that bus', async () => {
    const before = await meter();
    const probe = await runCli(['probe', '--gateway', url, '--bus', 'rs485', '--unit', '1', '--address', '0', '--count', '2', '--expect', '230.5'], { timeoutMs: 30_000 });
    expect(probe.stderr).toBe('');
    expect(probe.code).toBe(0);
    expect(probe.stdout.split('\n')[0]).toMatch(/4366 8000$/);
    expect(probe.stdout).toMatch(/^0\s+float32\s+ABCD\s+230\.5$/m);
    const after = await meter();
    expect(after.errorCount).toBe(before.errorCount);
    expect(after.availability).toBe('online');

    const wrongBus = await runCli(['probe', '--gateway', url, '--bus', 'nope', '--address', '0'], { timeoutMs: 30_000 });
    expect(wrongBus.code).toBe(1);
    expect(wrongBus.stderr).toMatch(/no running Modbus bus has this id \(got "nope"; buses: rs485\)/);
    const noBus = await runCli(['probe', '--gateway', url, '--address', '0']);
    expect(noBus.code).toBe(2);
    expect(noBus.stderr).toMatch(/--gateway needs --bus/);
  });

  it('shows a silent device\'s points as stale, not fresh, and the bus state when the line is lost', async () => {
    const good = await meter();
    expect(good.points[0]).toMatchObject({ name: 'voltage', value: 230.5, quality: 'good' });
    await slave.stop();
    const silent = await waitFor(async () => {
      const d = await meter();
      return d.availability === 'offline' ? d : undefined;
    }, 'the meter offline');
    expect(silent.points[0]).toMatchObject({ name: 'voltage', value: 230.5, quality: 'stale', unit: 'V' });
    expect(silent.errorCount).toBeGreaterThan(good.errorCount);
    expect(silent.lastError).toMatch(/did not answer/);
    expect(Date.parse(silent.lastErrorAt)).toBeGreaterThan(Date.parse(good.lastPollAt));
    expect(silent.bus.state).toBe('open');
    // The adapter unplugged: the bus reopens with backoff.
    await pty.kill();
    const lost = await waitFor(async () => {
      const d = await meter();
      return d.bus.state !== 'open' ? d : undefined;
    }, 'the bus not open');
    expect(['retrying', 'backing-off']).toContain(lost.bus.state);
    expect(lost.bus.lastError).toBeTruthy();
    const backingOff = await waitFor(async () => {
      const d = await meter();
      return d.bus.state === 'backing-off' ? d : undefined;
    }, 'the bus backing off');
    expect(backingOff.bus.retryInMs).toBeGreaterThanOrEqual(0);
    expect(backingOff.bus.retryInMs).toBeLessThanOrEqual(2000);
    for (const p of backingOff.points) expect(p.quality).not.toBe('good');
  });
});
