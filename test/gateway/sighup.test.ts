// SIGHUP on a running `fieldgate run`: new password and ACL files take effect, a changed device
// mapping restarts only its own devices, and a bad new mapping (or password file) is rejected with
// its errors while the running one keeps publishing.
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { ensureBuilt, freePort, GatewayProcess, runCli, tempDir, waitFor } from './helpers.js';

function mapping(id: string, meterPort: number, points: Array<Record<string, unknown>>) {
  return {
    buses: [{ id: `bus-${id}`, type: 'modbus-tcp', host: '127.0.0.1', port: meterPort }],
    devices: [{ id, bus: `bus-${id}`, unitId: 1, pollIntervalMs: 300, timeoutMs: 1000, publish: { onChange: false }, points }],
  };
}
const voltage = { name: 'voltage', table: 'input', address: 0, type: 'float32', decimals: 1 };
const frequency = { name: 'frequency', table: 'input', address: 70, type: 'float32', decimals: 2 };

describe('SIGHUP reload of a running gateway', () => {
  let dir: string;
  let port: number;
  let meters: SimulatedMeter[] = [];
  let gateway: GatewayProcess;
  const clients: MqttClient[] = [];
  const seen: string[] = [];
  const write = (name: string, content: unknown) =>
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  const connectAs = async (username: string, password: string) => {
    const client = await mqtt.connectAsync({ host: '127.0.0.1', port, username, password, reconnectPeriod: 0, clientId: `${username}-${clients.length}` });
    clients.push(client);
    return client;
  };
  const hup = async (match: (msg: string) => boolean, what: string) => {
    const before = gateway.logs.length;
    gateway.signal('SIGHUP');
    return gateway.waitForLog((l) => gateway.logs.indexOf(l) >= before && match(l.msg), what);
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-sighup-');
    fs.mkdirSync(path.join(dir, 'devices'));
    meters = [await startSimulatedMeter({ seed: 1 }), await startSimulatedMeter({ seed: 2 })];
    port = await freePort();
    write('devices/a.json', mapping('meter-a', meters[0].port, [voltage]));
    write('devices/b.json', mapping('meter-b', meters[1].port, [voltage]));
    expect((await runCli(['passwd', '-b', path.join(dir, 'passwd'), 'alice', 'alice-pw'])).code).toBe(0);
    write('acl', 'user alice\ntopic read fieldgate/#\n');
    write('fieldgate.json', {
      broker: { port, dataDir: 'data', sysIntervalSeconds: 0 },
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
      devices: ['devices/a.json', 'devices/b.json'],
    });
    gateway = new GatewayProcess(['--config', path.join(dir, 'fieldgate.json')], dir);
    await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the gateway to start');
    const alice = await connectAs('alice', 'alice-pw');
    alice.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await alice.subscribeAsync('fieldgate/#', { qos: 0 });
    await waitFor(() => seen.some((s) => s.startsWith('fieldgate/meter-a/voltage ')) && seen.some((s) => s.startsWith('fieldgate/meter-b/voltage ')), 'readings of both meters');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await gateway?.stop();
    await Promise.all(meters.map((m) => m.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('takes a new password file and ACL', async () => {
    await expect(connectAs('bob', 'bob-pw')).rejects.toThrow(/Bad username or password/);
    expect((await runCli(['passwd', '-b', path.join(dir, 'passwd'), 'bob', 'bob-pw'])).code).toBe(0);
    write('acl', 'user alice\ntopic read fieldgate/#\nuser bob\ntopic read fieldgate/meter-b/#\n');
    await hup((msg) => msg === 'auth files reloaded', 'the auth reload');
    const bob = await connectAs('bob', 'bob-pw');
    const bobSees: string[] = [];
    bob.on('message', (topic) => bobSees.push(topic));
    await bob.subscribeAsync('fieldgate/meter-b/#');
    await expect(bob.subscribeAsync('fieldgate/meter-a/#')).rejects.toThrow(/Not authorized|Subscribe error/);
    await waitFor(() => bobSees.includes('fieldgate/meter-b/voltage'), 'bob to read meter-b');
  });

  it('restarts only the mapping file that changed', async () => {
    write('devices/b.json', mapping('meter-b', meters[1].port, [voltage, frequency]));
    const reloaded = await hup((msg) => msg.startsWith('device mappings reloaded'), 'the mapping reload');
    expect(reloaded.files).toEqual([path.join(dir, 'devices/b.json')]);
    expect(reloaded.msg).toContain('1 file(s) changed');
    await waitFor(() => seen.some((s) => s.startsWith('fieldgate/meter-b/frequency ')), 'the new point of meter-b');
  });

  it('rejects a bad new mapping with its errors and keeps the running one publishing', async () => {
    write('devices/a.json', mapping('meter-a', meters[0].port, [{ ...voltage, type: 'float' }]));
    const rejected = await hup((msg) => msg === 'new device mapping rejected; the running one is kept', 'the rejection');
    expect(rejected.level).toBe(50);
    expect(rejected.errors).toEqual([expect.stringMatching(/a\.json: devices\[0\]\.points\[0\]\.type: expected one of .* \(got "float"\)$/)]);
    const mark = seen.length;
    await waitFor(() => seen.slice(mark).filter((s) => s.startsWith('fieldgate/meter-a/voltage ')).length >= 2, 'meter-a readings after the rejection');
    expect(gateway.running).toBe(true);
  });

  it('rejects a broken password file and keeps the users in force', async () => {
    write('passwd', 'this is not a password file\n');
    const rejected = await hup((msg) => msg.startsWith('auth reload rejected'), 'the auth rejection');
    expect(JSON.stringify(rejected.errors)).toContain('passwd');
    const alice = await connectAs('alice', 'alice-pw');
    expect(alice.connected).toBe(true);
  });

  it('reads the gateway config again: a new devices entry starts, a setting it cannot apply says "restart needed for"', async () => {
    // Undo the bad files of the tests before: all mappings are checked together.
    write('devices/a.json', mapping('meter-a', meters[0].port, [voltage]));
    fs.rmSync(path.join(dir, 'passwd'));
    expect((await runCli(['passwd', '-b', path.join(dir, 'passwd'), 'alice', 'alice-pw'])).code).toBe(0);
    write('devices/c.json', mapping('meter-c', meters[1].port, [voltage]));
    write('fieldgate.json', {
      broker: { port, dataDir: 'data', sysIntervalSeconds: 5 },
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
      devices: ['devices/a.json', 'devices/b.json', 'devices/c.json'],
    });
    const before = gateway.logs.length;
    const restart = await hup((msg) => msg.startsWith('restart needed for: '), 'the restart-needed line');
    expect(restart.msg).toBe('restart needed for: broker.sysIntervalSeconds');
    expect(restart.level).toBe(40);
    await gateway.waitForLog((l) => gateway.logs.indexOf(l) >= before && l.msg.startsWith('device mappings reloaded'), 'the new mapping file to start');
    await waitFor(() => seen.some((s) => s.startsWith('fieldgate/meter-c/voltage ')), 'readings of the device the new entry names');

    // Dropping the entry again stops that device and nothing else.
    write('fieldgate.json', {
      broker: { port, dataDir: 'data', sysIntervalSeconds: 0 },
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
      devices: ['devices/a.json', 'devices/b.json'],
    });
    const removed = await hup((msg) => msg.startsWith('device mappings reloaded'), 'the removal');
    expect(removed.removed).toEqual([path.join(dir, 'devices/c.json')]);
    const mark = seen.length;
    await waitFor(() => seen.slice(mark).filter((s) => s.startsWith('fieldgate/meter-a/voltage ')).length >= 2, 'meter-a still publishing');
    expect(seen.slice(mark).filter((s) => s.startsWith('fieldgate/meter-c/voltage '))).toEqual([]);
    expect(gateway.logs.slice(before).filter((l) => l.msg.startsWith('restart needed for: '))).toHaveLength(1);
    // The bad mapping and password file of the tests before were reported as such, not as a bad gateway config.
    const badConfig = (l: { msg: string }) => l.msg.startsWith('the gateway config has errors');
    expect(gateway.logs.filter(badConfig)).toEqual([]);

    // A gateway config that does not parse: said so, its changes ignored, the gateway keeps running.
    write('fieldgate.json', '{ "broker": { "port": ');
    const rejected = await hup((msg) => badConfig({ msg }), 'the bad gateway config');
    expect(rejected.level).toBe(50);
    expect(JSON.stringify(rejected.errors)).toContain('fieldgate.json: not valid JSON');
    const after = seen.length;
    await waitFor(() => seen.slice(after).some((s) => s.startsWith('fieldgate/meter-a/voltage ')), 'meter-a still publishing');
    expect(gateway.running).toBe(true);
  });

  it('still stops cleanly afterwards', async () => {
    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
  });
});
