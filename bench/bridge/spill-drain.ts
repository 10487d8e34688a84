// Drain of a backlog of held messages (QoS 0, the hold stage's kind: what a device reading is), as opposed to
// bench/bridge/run.ts --drain-only, whose QoS 1 messages never go through the hold stage. The cloud is down while N
// QoS 0 messages are published; the hold stage spills them (memory full: half of it at a time; then per hold time);
// then the cloud comes up and the drain is timed at the cloud subscriber. Gateway write_bytes (/proc/PID/io) are
// counted for the outage and for the drain.
// Run: node --import tsx bench/bridge/spill-drain.ts [--count 100000] [--rounds 3] [--root DIR ...]
//   env GATEWAY_NODE_ARGS: node options for the gateway process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
//   --root: a checkout whose bench/bridge/gateway.ts (and src/) to run; several are run interleaved per round
//   (default: this checkout). E.g. --root /tmp/base --root . for before/after in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import mqttPacket from 'mqtt-packet';
import { cpuSeconds, loadAverage } from '../lib/proc.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';
import { CountingSubscriber } from './loadgen.js';

const { dir: work, children, stop: stopProc } = scratch('fieldgate-bench-spill-drain-');
const args = process.argv.slice(2);
const opt = (name: string): string[] => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
const COUNT = Number(opt('--count')[0] ?? 100_000);
const ROUNDS = Number(opt('--rounds')[0] ?? 3);
const roots = opt('--root').map((r) => resolve(r));
if (roots.length === 0) roots.push(resolve(import.meta.dirname, '..', '..'));
const PAYLOAD = 64;
const TOPICS = 8;

function writeBytes(pid: number): number {
  return Number(/^write_bytes: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

async function startMosquitto(name: string, port: number): Promise<ChildProcess> {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'log_dest none', ''].join('\n'));
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  await waitFor(() => canConnect(port), 10_000, `mosquitto ${name}`);
  return proc;
}


interface Gw { proc: ChildProcess; port: number; state(): Promise<{ outboxDepth: number; held: number; connected: boolean }> }

async function startGateway(root: string, dataDir: string, cloudPort: number): Promise<Gw> {
  const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, 'bench', 'bridge', 'gateway.ts'), JSON.stringify({ dataDir, remoteUrl: `mqtt://127.0.0.1:${cloudPort}` })], {
    stdio: ['pipe', 'pipe', 'inherit'], cwd: root,
  });
  children.add(proc);
  const lines = createInterface({ input: proc.stdout! });
  const waiting: ((line: string) => void)[] = [];
  let ready!: (port: number) => void;
  const port = new Promise<number>((r) => (ready = r));
  lines.on('line', (line) => {
    const m = /^READY (\d+)/.exec(line);
    if (m) ready(Number(m[1]));
    else waiting.shift()?.(line);
  });
  return {
    proc, port: await port,
    state: () => new Promise((r) => {
      waiting.push((line) => r(JSON.parse(line)));
      proc.stdin!.write('state\n');
    }),
  };
}

/** QoS 0 PUBLISHes on TOPICS topics over one raw socket, respecting the socket's backpressure. */
async function publishQos0(port: number, count: number): Promise<void> {
  const socket: Socket = await new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1', () => res(s));
    s.once('error', rej);
  });
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `spill-pub-${Date.now()}`, keepalive: 0 }));
  await new Promise<void>((r) => socket.once('data', () => r()));
  const payload = Buffer.alloc(PAYLOAD, 0x61);
  for (let i = 0; i < count;) {
    const chunk: Buffer[] = [];
    for (let j = 0; j < 200 && i < count; j++, i++) chunk.push(mqttPacket.generate({ cmd: 'publish', topic: `sensors/dev${i % TOPICS}/value`, payload, qos: 0, retain: false, dup: false }));
    if (!socket.write(Buffer.concat(chunk))) await new Promise((r) => socket.once('drain', r));
    // Let the broker route between chunks (a QoS 0 flood faster than routing would be shed at the socket).
    if (i % 5000 === 0) await sleep(5);
  }
  await new Promise<void>((r) => socket.end(() => r()));
}

interface Result { root: string; outageBytes: number; drainRate: number; drained: number; drainBytes: number; cpuPerMsg: number }

async function round(root: string): Promise<Result> {
  const cloudPort = await freePort();
  const dataDir = join(work, 'gw-data');
  rmSync(dataDir, { recursive: true, force: true });
  const gw = await startGateway(root, dataDir, cloudPort);
  await sleep(500);
  const w0 = writeBytes(gw.proc.pid!);
  await publishQos0(gw.port, COUNT);
  // Everything routed and spilled (held 0): the hold time has passed for the last ones.
  await waitFor(async () => {
    const s = await gw.state();
    return s.outboxDepth >= COUNT * 0.99 && s.held === 0;
  }, 120_000, 'backlog spilled');
  const depth = (await gw.state()).outboxDepth;
  const outageBytes = writeBytes(gw.proc.pid!) - w0;
  const cloud = await startMosquitto('cloud', cloudPort);
  const sub = new CountingSubscriber();
  await sub.start(cloudPort, 'fleet/#');
  const w1 = writeBytes(gw.proc.pid!);
  const cpu0 = cpuSeconds(gw.proc.pid!);
  await waitFor(() => sub.count >= depth || (sub.count > 0 && performance.now() - sub.lastAt > 2000), 300_000, 'drain').catch(() => undefined);
  await waitFor(async () => (await gw.state()).outboxDepth === 0, 60_000, 'backlog acknowledged').catch(() => undefined);
  const drainBytes = writeBytes(gw.proc.pid!) - w1;
  const cpu = cpuSeconds(gw.proc.pid!) - cpu0;
  sub.stop();
  const drainRate = sub.count > 1 ? ((sub.count - 1) * 1000) / (sub.lastAt - sub.firstAt) : 0;
  gw.proc.stdin!.write('stop\n');
  await new Promise((r) => gw.proc.once('exit', r));
  await stopProc(cloud, 'SIGKILL');
  console.log(`${root}: ${depth} spilled, outage ${Math.round(outageBytes / depth)} B/msg written; drained ${sub.count} at ${Math.round(drainRate)} msg/s, ${Math.round(drainBytes / Math.max(1, sub.count))} B/msg written, CPU ${((cpu * 1e6) / Math.max(1, sub.count)).toFixed(1)} µs/msg`);
  return { root, outageBytes: outageBytes / depth, drainRate, drained: sub.count, drainBytes: drainBytes / Math.max(1, sub.count), cpuPerMsg: (cpu * 1e6) / Math.max(1, sub.count) };
}

console.log(`spill drain: ${COUNT} QoS 0 messages of ${PAYLOAD} bytes on ${TOPICS} topics, ${ROUNDS} round(s), load ${loadAverage()}`);
const results: Result[] = [];
for (let r = 0; r < ROUNDS; r++) for (const root of roots) results.push(await round(root));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`\n| checkout | rounds | drain msg/s (median) | each round | written in the outage, B/msg | written in the drain, B/msg | gateway CPU µs/msg |`);
console.log('|---|---:|---:|---|---:|---:|---:|');
for (const root of roots) {
  const rs = results.filter((x) => x.root === root);
  console.log(`| ${root} | ${rs.length} | ${Math.round(median(rs.map((x) => x.drainRate))).toLocaleString('en-US')} | ${rs.map((x) => Math.round(x.drainRate).toLocaleString('en-US')).join(', ')} | ${Math.round(median(rs.map((x) => x.outageBytes)))} | ${Math.round(median(rs.map((x) => x.drainBytes)))} | ${median(rs.map((x) => x.cpuPerMsg)).toFixed(1)} |`);
}
console.log(`load after: ${loadAverage()}`);
process.exit(0);
