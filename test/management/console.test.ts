// The console's management actions end to end on the embedded demo (its simulated SDM120 on Modbus TCP):
// asked by MQTT.js v5 and mosquitto_rr as a user with the whole namespace, refused for a user whose
// ACL denies them, and — for the actions that change something — not carried out when the requester
// may not read its answer.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { loadGatewayConfig } from '../../src/config/gateway-config.js';
import { loadDeviceMapping } from '../../src/devices/index.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log.js';
import { LogRing } from '../../src/log-ring.js';
import { ensureBuilt, runCli, tempDir, waitFor } from '../gateway/helpers.js';
import { ask, connectClient, silent } from './helpers.js';

const run = promisify(execFile);
const GW = 'console-gw';
const NS = `fieldgate/${GW}`;
const CONSOLE_ACTIONS = [
  'device', 'history', 'logs', 'homeassistant/entities', 'bridge/dead/list', 'bridge/dead/retry', 'bridge/dead/delete',
  'bus/scan', 'bus/read', 'bus/point', 'mapping/get', 'mapping/save',
];

describe('management API: the console actions', () => {
  let dir: string;
  let configFile: string;
  let gateway: Gateway;
  let url: string;
  let port: number;
  const ring = new LogRing();
  const clients: MqttClient[] = [];
  const admin = (clientId: string) => connectClient(url, { clientId, username: 'admin', password: 'admin-pw' }, clients);

  beforeAll(async () => {
    ensureBuilt(); // for `fieldgate check`
    dir = tempDir('fieldgate-console-');
    for (const user of ['admin', 'viewer', 'blind']) addOrUpdateUser(path.join(dir, 'passwd'), user, `${user}-pw`, { iterations: 1000 });
    fs.writeFileSync(path.join(dir, 'acl'), [
      'user admin', 'topic readwrite fieldgate/#', 'topic readwrite admin/#', '',
      // The viewer may look at one device, nothing else of the console.
      'user viewer', `topic write ${NS}/request/device`, 'topic readwrite viewer/#', '',
      // "blind" may ask anything but read no answer: what changes something must not be done.
      'user blind', `topic write ${NS}/request/#`, 'topic write blind/#', '',
    ].join('\n'));
    configFile = path.join(dir, 'fieldgate.json');
    fs.writeFileSync(configFile, JSON.stringify({
      gatewayId: GW, demo: true, homeAssistant: { discovery: true },
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0, durability: 'normal' },
      auth: { passwordFile: 'passwd', aclFile: 'acl', allowAnonymous: false },
    }));
    const logger = createLogger('debug', { output: 'json', write: () => undefined, ring });
    gateway = await startGateway(loadGatewayConfig(configFile), logger, { stateIntervalMs: 500, configFile, logRing: ring, historyBucketMs: 250 });
    port = gateway.listeners[0].port;
    url = `mqtt://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('device: every point with value, unit, age and quality, the last poll, its latency and the bus state', async () => {
    const client = await admin('admin-device');
    const answer = await waitFor(async () => {
      const a = await ask(client, NS, 'device', { id: 'demo-meter' });
      return a.data?.points?.find((p: any) => p.name === 'voltage')?.quality === 'good' ? a : undefined;
    }, 'the demo meter read', 15_000);
    const d = answer.data;
    expect(d).toMatchObject({ id: 'demo-meter', availability: 'online', protocol: 'modbus', unitId: 1, errorCount: 0, lastError: null });
    expect(d.bus).toMatchObject({ id: 'demo', type: 'modbus-tcp', state: 'open', retryInMs: null });
    expect(d.pollLatencyMs).toBeGreaterThan(0);
    expect(Date.now() - Date.parse(d.lastPollAt)).toBeLessThan(10_000);
    const voltage = d.points.find((p: any) => p.name === 'voltage');
    expect(voltage).toMatchObject({ unit: 'V', table: 'input', address: 0, type: 'float32', writable: false, quality: 'good', error: null });
    expect(voltage.value).toBeGreaterThan(200);
    expect(voltage.ageSeconds).toBeLessThan(5);
    expect(d.points.find((p: any) => p.name === 'relay')).toMatchObject({ writable: true, value: expect.any(Boolean) });
    expect(d.points).toHaveLength(8);

    const unknown = await ask(client, NS, 'device', { id: 'nope' });
    expect(unknown.status).toBe('error');
    expect(unknown.errors![0]).toMatchObject({ path: 'id', text: expect.stringContaining(`request ${NS}/request/device: id: no running device has this id ("nope"`.slice(0, 40)) });
    expect(unknown.errors![0].message).toContain('devices: demo-meter');
    const bad = await ask(client, NS, 'device', { idd: 'demo-meter' });
    expect(bad.errors!.map((e) => e.text).join('\n')).toMatch(/idd.*did you mean "id"/);
  });

  it('device through mosquitto_rr -V mqttv5', async () => {
    const rr = await run('mosquitto_rr', ['-V', 'mqttv5', '-u', 'admin', '-P', 'admin-pw', '-h', '127.0.0.1', '-p', String(port),
      '-t', `${NS}/request/device`, '-e', 'admin/rr', '-m', '{"id":"demo-meter"}', '-W', '10'], { timeout: 15_000 });
    expect(JSON.parse(rr.stdout)).toMatchObject({ status: 'ok', data: { id: 'demo-meter', bus: { id: 'demo' } } });
  });

  it('history: message rates, and the recent values of a point, bounded', async () => {
    const client = await admin('admin-history');
    const answer = await waitFor(async () => {
      const a = await ask(client, NS, 'history', { points: ['demo-meter/voltage', 'demo-meter/nothing'] });
      return a.data?.points?.['demo-meter/voltage']?.v.length >= 2 ? a : undefined;
    }, 'two voltage samples', 15_000);
    const h = answer.data;
    expect(h.bucketSeconds).toBe(0.25);
    expect(h.messages.in).toHaveLength(h.buckets);
    expect(h.times).toHaveLength(h.buckets);
    expect(h.messages.out.some((r: number | null) => r !== null && r > 0)).toBe(true);
    expect(Object.keys(h.points)).toEqual(['demo-meter/voltage']);
    const v = h.points['demo-meter/voltage'];
    expect(v.t).toHaveLength(v.v.length);
    for (const x of v.v) expect(x).toBeGreaterThan(200);
    expect(h.memory.bytes).toBeGreaterThan(0);
    expect(h.memory.bytes).toBeLessThanOrEqual(h.memory.limitBytes);
    const all = await ask(client, NS, 'history', {});
    expect(Object.keys(all.data.points)).toEqual(expect.arrayContaining(['demo-meter/voltage', 'demo-meter/power', 'demo-meter/relay']));
    const since = await ask(client, NS, 'history', { since: h.times.at(-1) });
    expect(since.data.times.every((t: number) => t > h.times.at(-1))).toBe(true);
  });

  it('logs: the recent lines, by level and part, and those after a sequence number', async () => {
    const client = await admin('admin-logs');
    const info = await ask(client, NS, 'logs', { part: 'management', level: 'info' });
    expect(info.data.capacity).toBe(1000);
    expect(info.data.lines.some((l: any) => l.msg.startsWith('management API: requests on'))).toBe(true);
    for (const l of info.data.lines) expect(l.part).toBe('management');
    // A refused request is logged as a warning: the newest line at warn and above.
    const before = (await ask(client, NS, 'logs', { limit: 1 })).data.lines[0].seq;
    await ask(client, NS, 'info', {}, { responseTopic: 'not/readable', ms: 500 }).catch(() => undefined);
    const warned = await waitFor(async () => {
      const a = await ask(client, NS, 'logs', { level: 'warn', after: before });
      return a.data.lines.length > 0 ? a : undefined;
    }, 'the warning about the unreadable response topic');
    expect(warned.data.lines[0]).toMatchObject({ level: 'warn', part: 'management', msg: expect.stringContaining('may not read its response topic') });
    expect(warned.data.lines[0].seq).toBeGreaterThan(before);
    const errorsOnly = await ask(client, NS, 'logs', { level: 'error' });
    for (const l of errorsOnly.data.lines) expect(['error', 'fatal']).toContain(l.level);
    const bad = await ask(client, NS, 'logs', { level: 'loud' });
    expect(bad.errors![0].path).toBe('level');
  });

  it('check: the running config as `fieldgate check` prints it, the demo meter counted as a device', async () => {
    const client = await admin('admin-check');
    const answer = await ask(client, NS, 'check', {});
    expect(answer).toMatchObject({ status: 'ok', data: { file: configFile, valid: true, errors: [], devices: 1 } });
    const cli = await runCli(['check', '-c', configFile], { cwd: dir });
    expect(cli.code).toBe(0);
    const printed = cli.stdout.trim().split('\n').slice(1).map((l) => l.trim());
    expect(printed).toContain('demo: simulated SDM120 energy meter under fieldgate/demo-meter/');
    expect(answer.data.lines).toEqual(printed);
  });

  it('homeassistant/entities: what was announced', async () => {
    const client = await admin('admin-ha');
    const a = await ask(client, NS, 'homeassistant/entities');
    expect(a.data.prefix).toBe('homeassistant');
    const voltage = a.data.entities.find((e: any) => e.stateTopic === 'fieldgate/demo-meter/voltage');
    expect(voltage).toMatchObject({ component: 'sensor', unit: 'V', topic: expect.stringMatching(/^homeassistant\/sensor\//) });
    expect(a.data.entities.find((e: any) => e.commandTopic === 'fieldgate/demo-meter/relay/set')).toMatchObject({ component: 'switch' });
  });

  it('bus/read and bus/point: every decoding of the voltage register, the one near the display, a point check accepts', async () => {
    const client = await admin('admin-probe');
    const device = await waitFor(async () => (await ask(client, NS, 'device', { id: 'demo-meter' })).data?.points?.[0]?.value, 'a voltage');
    const all = await ask(client, NS, 'bus/read', { bus: 'demo', unitId: 1, table: 'input', address: 0, count: 2 });
    expect(all.data.registers).toHaveLength(2);
    // int16/uint16 ×2 orders at 2 addresses, 32-bit types ×4 orders at 1: 8 + 12.
    expect(all.data.decodings).toHaveLength(20);
    const near = await ask(client, NS, 'bus/read', { bus: 'demo', unitId: 1, table: 'input', address: 0, count: 2, expect: device, tolerance: 0.02 });
    expect(near.data.decodings).toContainEqual(expect.objectContaining({ address: 0, type: 'float32', byteOrder: 'ABCD', scale: 1 }));
    expect(near.data.decodings.find((d: any) => d.type === 'float32' && d.byteOrder === 'DCBA')).toBeUndefined();

    const point = await ask(client, NS, 'bus/point', { name: 'voltage-l1', table: 'input', address: 0, type: 'float32', byteOrder: 'ABCD', unit: 'V', decimals: 1 });
    expect(point.data).toEqual({ point: { name: 'voltage-l1', table: 'input', address: 0, type: 'float32', byteOrder: 'ABCD', unit: 'V', decimals: 1 }, valid: true, errors: [] });
    // Checked in the demo meter's own mapping: check's overlap error (the meter reads voltage there already), and
    // a free address is accepted.
    const overlapping = await ask(client, NS, 'bus/point', { name: 'voltage-l1', table: 'input', address: 0, type: 'float32', device: 'demo-meter' });
    expect(overlapping.data).toMatchObject({ valid: false, errors: [expect.stringMatching(/demo-meter\.json: devices\[0\]\.points\[8\]: "voltage-l1" \(input 0–1\) overlaps "voltage"/)] });
    const free = await ask(client, NS, 'bus/point', { name: 'voltage-l2', table: 'input', address: 2, type: 'float32', scale: 0.1, device: 'demo-meter' });
    expect(free.data).toEqual({ point: { name: 'voltage-l2', table: 'input', address: 2, type: 'float32', byteOrder: 'ABCD', scale: 0.1 }, valid: true, errors: [] });
    // The point `check` accepts: in a mapping file of its own, loaded as `fieldgate check` loads it.
    const file = path.join(dir, 'probed.json');
    fs.writeFileSync(file, JSON.stringify({ buses: [{ id: 'm', type: 'modbus-tcp', host: '127.0.0.1', port: 502 }], devices: [{ id: 'meter', bus: 'm', unitId: 1, points: [point.data.point] }] }));
    expect(loadDeviceMapping(file).ok).toBe(true);
    // Its own name again in that device: check's duplicate error, nothing written.
    const duplicate = await ask(client, NS, 'bus/point', { name: 'voltage', table: 'input', address: 0, type: 'float32', device: 'demo-meter' });
    expect(duplicate.data.valid).toBe(false);
    expect(duplicate.data.errors.join('\n')).toMatch(/voltage/);
    const badName = await ask(client, NS, 'bus/point', { name: 'a/#', table: 'input', address: 0, type: 'float32' });
    expect(badName.data).toMatchObject({ valid: false, errors: [expect.stringContaining('point.name')] });

    const noBus = await ask(client, NS, 'bus/read', { bus: 'rs485', unitId: 1, address: 0 });
    expect(noBus.errors![0]).toMatchObject({ path: 'bus', message: expect.stringContaining('buses: demo') });
    const silentUnit = await ask(client, NS, 'bus/read', { bus: 'demo', unitId: 9, address: 0, timeoutMs: 100 });
    expect(silentUnit.errors![0]).toMatchObject({ path: 'unitId', message: 'unit 9 did not answer within 100 ms' });
    const tooMany = await ask(client, NS, 'bus/read', { bus: 'demo', unitId: 1, address: 0, count: 126 });
    expect(tooMany.errors![0].path).toBe('count');
  });

  it('bus/scan: which unit ids answer, through the bus scheduler while the meter is polled', async () => {
    const client = await admin('admin-scan');
    const polls = (await ask(client, NS, 'device', { id: 'demo-meter' })).data.polls;
    const a = await ask(client, NS, 'bus/scan', { bus: 'demo', from: 1, to: 6, table: 'input', timeoutMs: 150 });
    expect(a.data).toMatchObject({ bus: 'demo', from: 1, to: 6, answered: [{ unitId: 1, answer: 'registers' }], silent: 5 });
    const after = (await ask(client, NS, 'device', { id: 'demo-meter' })).data;
    expect(after.polls).toBeGreaterThanOrEqual(polls);
    expect(after.errorCount).toBe(0);
    const reversed = await ask(client, NS, 'bus/scan', { bus: 'demo', from: 5, to: 2 });
    expect(reversed.errors![0]).toMatchObject({ path: 'to', message: expect.stringContaining('"to" ≥ "from"') });
  });

  it('mapping/get and mapping/save: a bad mapping refused with check\'s errors, a good one saved atomically and reloaded', async () => {
    const client = await admin('admin-mapping');
    const got = await ask(client, NS, 'mapping/get');
    const file = got.data.file as string;
    expect(got.data.files).toEqual([file]);
    const text = got.data.text as string;
    const edited = (change: (m: any) => void) => {
      const m = JSON.parse(text);
      change(m);
      return JSON.stringify(m, null, 2);
    };
    expect(JSON.parse(text).devices[0].id).toBe('demo-meter');

    const wrongType = edited((m) => (m.devices[0].points[0].type = 'float'));
    const refused = await ask(client, NS, 'mapping/save', { file, text: wrongType });
    expect(refused.status).toBe('error');
    expect(refused.errors![0]).toMatchObject({ file, path: 'devices[0].points[0].type', text: expect.stringMatching(/^.*: devices\[0\]\.points\[0\]\.type: expected one of .*\(got "float"\)$/) });
    const syntax = await ask(client, NS, 'mapping/save', { file, text: text.replace('"buses"', '"buses" "') });
    expect(syntax.errors![0].message).toMatch(/line \d+, column \d+/);
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    expect(fs.existsSync(`${file}.previous`)).toBe(false);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await ask(client, NS, 'device', { id: 'demo-meter' })).data.points.map((p: any) => p.name)).toContain('voltage');

    const renamed = edited((m) => (m.devices[0].points[0].name = 'voltage-l1'));
    const saved = await ask(client, NS, 'mapping/save', { file, text: renamed });
    expect(saved).toMatchObject({ status: 'ok', data: { file, previous: `${file}.previous`, reloaded: true } });
    expect(fs.readFileSync(file, 'utf8')).toBe(renamed);
    expect(fs.readFileSync(`${file}.previous`, 'utf8')).toBe(text);
    await waitFor(async () => (await ask(client, NS, 'device', { id: 'demo-meter' })).data?.points?.some((p: any) => p.name === 'voltage-l1' && p.quality === 'good'), 'the reloaded device polling its renamed point');

    const elsewhere = await ask(client, NS, 'mapping/get', { file: '/etc/passwd' });
    expect(elsewhere.errors![0]).toMatchObject({ path: 'file', message: expect.stringContaining('not a mapping file the gateway runs') });
    const write = await ask(client, NS, 'mapping/save', { file: path.join(dir, 'fieldgate.json'), text: '{}' });
    expect(write.errors![0].path).toBe('file');
  });

  it('refuses every console action to a user whose ACL denies it (0x87, no answer, nothing done)', async () => {
    const viewer = await connectClient(url, { clientId: 'viewer-1', username: 'viewer', password: 'viewer-pw' }, clients);
    const allowed = await ask(viewer, NS, 'device', { id: 'demo-meter' }, { responseTopic: 'viewer/r' });
    expect(allowed.status).toBe('ok');
    for (const action of CONSOLE_ACTIONS.filter((a) => a !== 'device')) {
      const a = await ask(viewer, NS, action, {}, { responseTopic: 'viewer/r', ms: 2000 });
      expect(a.refused, action).toMatch(/Not authorized|135|0x87/i);
    }
  });

  it('does not carry out a change when the requester may not read the answer', async () => {
    const admin1 = await admin('admin-check-file');
    const file = (await ask(admin1, NS, 'mapping/get')).data.file as string;
    const before = fs.readFileSync(file, 'utf8');
    const blind = await connectClient(url, { clientId: 'blind-1', username: 'blind', password: 'blind-pw' }, clients);
    const m = JSON.parse(before);
    m.devices[0].points[2].name = 'power-x';
    expect(await silent(blind, NS, 'mapping/save', { file, text: JSON.stringify(m) }, 'blind/r')).toBe(true);
    expect(await silent(blind, NS, 'bus/scan', { bus: 'demo', from: 1, to: 3 }, 'blind/r')).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    const logs = await ask(admin1, NS, 'logs', { level: 'warn', part: 'management' });
    expect(logs.data.lines.filter((l: any) => l.fields.username === 'blind').map((l: any) => l.fields.action)).toEqual(expect.arrayContaining(['mapping/save', 'bus/scan']));
  });
});
