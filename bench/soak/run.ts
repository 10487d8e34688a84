// Soak: one gateway process (`node bin/fieldgate.js run`) for minutes with everything moving at once:
// QoS 0/1 publishers, persistent subscribers that come and go, connection churn, Modbus TCP devices
// (one of them flapping between answering, hanging and refusing) and a bridge whose cloud Mosquitto
// goes away and comes back. RSS and open file descriptors of the gateway are sampled; the report
// gives their least-squares slopes over the run after a warm-up (a leak shows as a steady slope).
//   node --import tsx bench/soak/run.ts [--duration-s 300] [--publishers 8] [--rate 50] [--flap-s 15]
//        [--warmup-s 30] [--seed N] [--json FILE]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { BIN, ensureBuilt, freePort } from '../../test/gateway/helpers.js';
import { rng } from '../../test/chaos/harness.js';
import { CloudMosquitto, ControllableDevice, sleep, type DeviceMode } from '../../test/chaos/peers.js';

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '300' }, publishers: { type: 'string', default: '8' },
    rate: { type: 'string', default: '50' }, 'flap-s': { type: 'string', default: '15' },
    'warmup-s': { type: 'string', default: '30' }, seed: { type: 'string' }, json: { type: 'string' },
  },
});
const durationMs = Number(values['duration-s']) * 1000;
const warmupMs = Math.min(Number(values['warmup-s']) * 1000, durationMs / 2);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const random = rng(seed);
console.log(`soak: seed ${seed}, ${durationMs / 1000} s, ${values.publishers} publishers at ${values.rate}/s, cloud flaps every ~${values['flap-s']} s`);

ensureBuilt();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-soak-'));
const [brokerPort, cloudPort] = [await freePort(), await freePort()];
const cloud = new CloudMosquitto(cloudPort, path.join(work, 'cloud'));
await cloud.start();
const devices = await Promise.all([0, 1, 2].map(async (i) => new ControllableDevice(await freePort(), seed + i)));
for (const d of devices) await d.setMode('ok');
const mappingFile = path.join(work, 'devices.json');
fs.writeFileSync(mappingFile, JSON.stringify({
  buses: devices.map((d, i) => ({ id: `bus${i}`, type: 'modbus-tcp', host: '127.0.0.1', port: d.port })),
  devices: devices.map((_, i) => ({
    id: `meter${i}`, bus: `bus${i}`, unitId: 1, pollIntervalMs: 200, timeoutMs: 500, offlinePollIntervalMs: 1000,
    points: [{ name: 'voltage', table: 'input', address: 0, type: 'float32' }, { name: 'power', table: 'input', address: 12, type: 'float32' }],
  })),
}));
const configFile = path.join(work, 'fieldgate.json');
fs.writeFileSync(configFile, JSON.stringify({
  broker: { host: '127.0.0.1', port: brokerPort, dataDir: path.join(work, 'data'), sysIntervalSeconds: 2 },
  devices: [mappingFile],
  bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'soak-gw', reconnect: { minMs: 200, maxMs: 2000 },
    rules: [{ direction: 'out', filter: 'soak/#', remotePrefix: 'edge/' }, { direction: 'out', filter: 'fieldgate/#', remotePrefix: 'edge/' }] }],
}));
const gateway = spawn(process.execPath, [BIN, 'run', '--config', configFile, '--log-level', 'warn'], { stdio: ['ignore', fs.openSync(path.join(work, 'gateway.log'), 'a'), 'inherit'] });
const pid = gateway.pid!;
const deadline0 = Date.now() + 30_000;
while (!(await canMqtt(brokerPort))) {
  if (Date.now() > deadline0 || gateway.exitCode !== null) throw new Error(`gateway did not start; see ${work}/gateway.log`);
  await sleep(100);
}

const clients = new Set<MqttClient>();
const open = (options: mqtt.IClientOptions): MqttClient => {
  const c = mqtt.connect({ host: '127.0.0.1', port: brokerPort, reconnectPeriod: 500, ...options });
  c.on('error', () => undefined);
  clients.add(c);
  c.on('end', () => clients.delete(c));
  return c;
};
let published = 0;
let received = 0;
const publishers = Array.from({ length: Number(values.publishers) }, (_, i) => open({ clientId: `soak-pub-${i}`, protocolVersion: i % 2 === 0 ? 4 : 5 }));
const pubTimer = setInterval(() => {
  for (const [i, p] of publishers.entries()) {
    if (!p.connected) continue;
    p.publish(`soak/p${i}`, `${i}:${published++}:${'y'.repeat(64)}`, { qos: (i % 2) as 0 | 1 });
  }
}, Math.max(1, Math.round(1000 / Number(values.rate))));
// Persistent subscribers that go away and come back (their queue builds while away).
const subscriberIds = ['soak-sub-a', 'soak-sub-b', 'soak-sub-c'];
let subscribers = subscriberIds.map((id) => subscriber(id));
function subscriber(id: string): MqttClient {
  const c = open({ clientId: id, clean: false, protocolVersion: id.endsWith('b') ? 5 : 4, ...(id.endsWith('b') ? { properties: { sessionExpiryInterval: 600 } } : {}) });
  c.on('connect', () => c.subscribe('soak/#', { qos: 1 }));
  c.on('message', () => received++);
  return c;
}
const subTimer = setInterval(() => {
  const i = Math.floor(random() * subscribers.length);
  subscribers[i]!.end(true);
  setTimeout(() => { subscribers[i] = subscriber(subscriberIds[i]!); }, 500 + random() * 3000);
}, 4000);
// Connection churn: short-lived clients connecting, publishing one message, leaving.
let churned = 0;
const churnTimer = setInterval(() => {
  const c = open({ clientId: `soak-churn-${churned++}`, reconnectPeriod: 0 });
  c.on('connect', () => c.publish('soak/churn', 'hello', { qos: 1 }, () => c.end()));
}, 200);
// The flapping bridge and device.
let flaps = 0;
let flapping = true;
void (async () => {
  while (flapping) {
    await sleep(Number(values['flap-s']) * 1000 * (0.5 + random()));
    if (!flapping) break;
    flaps++;
    await cloud.stop();
    await sleep(1000 + random() * 4000);
    await cloud.start();
  }
})();
const deviceTimer = setInterval(() => {
  void devices[0]!.setMode((['ok', 'mute', 'refuse', 'blackhole'] as DeviceMode[])[Math.floor(random() * 4)]!);
}, 3000);

interface Sample { t: number; rssKiB: number; fds: number }
const samples: Sample[] = [];
const start = Date.now();
while (Date.now() - start < durationMs) {
  if (gateway.exitCode !== null || gateway.signalCode !== null) throw new Error(`the gateway exited during the soak (${gateway.exitCode ?? gateway.signalCode}); see ${work}/gateway.log`);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  samples.push({ t: Date.now() - start, rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)![1]), fds: fs.readdirSync(`/proc/${pid}/fd`).length });
  await sleep(2000);
}
flapping = false;
[pubTimer, subTimer, churnTimer, deviceTimer].forEach(clearInterval);
for (const c of clients) c.end(true);
gateway.kill('SIGTERM');
await new Promise((r) => gateway.once('exit', r));
await cloud.stop();
for (const d of devices) await d.close();

const steady = samples.filter((s) => s.t >= warmupMs);
const slope = (pick: (s: Sample) => number) => {
  const n = steady.length;
  const mx = steady.reduce((a, s) => a + s.t, 0) / n;
  const my = steady.reduce((a, s) => a + pick(s), 0) / n;
  let num = 0, den = 0;
  for (const s of steady) { num += (s.t - mx) * (pick(s) - my); den += (s.t - mx) ** 2; }
  return den === 0 ? 0 : (num / den) * 60_000;
};
const report = {
  seed, durationS: durationMs / 1000, warmupS: warmupMs / 1000, samples: samples.length, published, received, churned, flaps,
  rssKiB: { first: steady[0]?.rssKiB, last: steady.at(-1)?.rssKiB, max: Math.max(...samples.map((s) => s.rssKiB)), slopePerMinute: Math.round(slope((s) => s.rssKiB)) },
  fds: { first: steady[0]?.fds, last: steady.at(-1)?.fds, max: Math.max(...samples.map((s) => s.fds)), slopePerMinute: Number(slope((s) => s.fds).toFixed(2)) },
  work,
};
console.log(`soak report (seed ${seed}, ${report.durationS} s, warm-up ${report.warmupS} s, ${report.samples} samples)`);
console.log(`  published ${published}, received by persistent subscribers ${received}, churned connections ${churned}, cloud flaps ${flaps}`);
console.log(`  RSS KiB: first ${report.rssKiB.first}, last ${report.rssKiB.last}, max ${report.rssKiB.max}, slope ${report.rssKiB.slopePerMinute} KiB/min`);
console.log(`  open fds: first ${report.fds.first}, last ${report.fds.last}, max ${report.fds.max}, slope ${report.fds.slopePerMinute} /min`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
fs.rmSync(work, { recursive: true, force: true });
process.exit(0);

async function canMqtt(port: number): Promise<boolean> {
  try {
    const c = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 1000 });
    await c.endAsync();
    return true;
  } catch {
    return false;
  }
}
