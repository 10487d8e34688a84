// Bridge benchmark: fieldgate's SQLite-outbox bridge side by side with a Mosquitto bridge on this machine.
//   durable enqueue rate (local QoS 1 publishers, PUBACK after the outbox row is committed), msg/s
//   backlog drain rate (100,000 queued messages to a Mosquitto "cloud" on loopback), msg/s
//   RSS growth with a 1,000,000-message backlog
// Run: npm run bench -- bridge [--drain-only] [--rounds N] [--drain N] [--backlog N] [--gateway-node-args "..."]
//   --drain-only: only the enqueue and drain of N (default 100,000) messages, fieldgate and Mosquitto interleaved per round,
//   with each round's figures and the medians; --gateway-node-args e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
//   (BENCH_DRAIN / BENCH_BACKLOG still override the sizes.)
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cpuSeconds, statusKiB } from '../lib/proc.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';
import { CountingSubscriber, publishFlood } from './loadgen.js';

const { dir: work, children, stop: stopProc } = scratch('fieldgate-bench-bridge-');

let DRAIN = Number(process.env.BENCH_DRAIN ?? 100_000);
let BACKLOG = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
let gatewayNodeArgs: string[] = [];
const PUBLISHERS = 4;
const PAYLOAD = 64;
const FLOORS = { enqueue: 20_000, drain: 10_000, rssMb: 20 };

// ---------- processes

async function startMosquitto(name: string, port: number, extra: string[]): Promise<ChildProcess> {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', `persistence_location ${dir}/`, ...extra, ''].join('\n'));
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`mosquitto ${name} exited: ${err}`);
    return canConnect(port);
  }, 10_000, `mosquitto ${name}`);
  return proc;
}



interface GatewayProc {
  proc: ChildProcess;
  port: number;
  state(): Promise<{ outboxDepth: number; acked: number; connected: boolean; rss: number; heap: number }>;
}

async function startGateway(dataDir: string, remotePort: number): Promise<GatewayProc> {
  const script = join(import.meta.dirname, 'gateway.ts');
  const proc = spawn(process.execPath, ['--expose-gc', ...gatewayNodeArgs, '--import', 'tsx', script, JSON.stringify({ dataDir, remoteUrl: `mqtt://127.0.0.1:${remotePort}` })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(proc);
  const lines = createInterface({ input: proc.stdout! });
  const waiting: ((line: string) => void)[] = [];
  let ready: ((port: number) => void) | undefined;
  const port = new Promise<number>((r) => (ready = r));
  lines.on('line', (line) => {
    const m = /^READY (\d+)/.exec(line);
    if (m) ready!(Number(m[1]));
    else waiting.shift()?.(line);
  });
  return {
    proc,
    port: await port,
    state: () =>
      new Promise((resolve) => {
        waiting.push((line) => resolve(JSON.parse(line)));
        proc.stdin!.write('state\n');
      }),
  };
}

// ---------- measurements

async function enqueueRate(port: number, count: number): Promise<number> {
  const per = Math.ceil(count / PUBLISHERS);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: PUBLISHERS }, (_, i) => publishFlood(port, { count: per, topic: `sensors/dev${i}/value`, payloadBytes: PAYLOAD, window: 500, clientId: `bench-pub-${i}-${Date.now()}` })),
  );
  return (per * PUBLISHERS * 1000) / (performance.now() - started);
}

async function drainRate(cloudPort: number, expected: number): Promise<{ rate: number; received: number }> {
  const sub = new CountingSubscriber();
  await sub.start(cloudPort, 'fleet/#');
  // The bridge may reconnect a moment before the subscriber is in: then the first few are not seen, and the wait
  // ends once arrivals stop for 2 s (the rate is over what was seen).
  await waitFor(() => sub.count >= expected || (sub.count > 0 && performance.now() - sub.lastAt > 2000), 300_000, `${expected} messages at the cloud`).catch(() => undefined);
  await sleep(200);
  sub.stop();
  const rate = sub.count > 1 ? ((sub.count - 1) * 1000) / (sub.lastAt - sub.firstAt) : 0;
  return { rate, received: sub.count };
}

const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
const k = (n: number) => Math.round(n).toLocaleString('en-US');
const us = (seconds: number, messages: number) => `${((seconds * 1e6) / Math.max(1, messages)).toFixed(1)} µs`;

async function benchFieldgate(cloudPort: number, drainOnly = false) {
  const dataDir = join(work, 'gw-data');
  let gw = await startGateway(dataDir, cloudPort);
  await sleep(500);
  const enqueue = await enqueueRate(gw.port, DRAIN);
  const depth = (await gw.state()).outboxDepth;
  console.log(`fieldgate: enqueued ${k(depth)} rows at ${k(enqueue)} msg/s`);

  const cloud = await startMosquitto('cloud-gw', cloudPort, ['max_queued_messages 0']);
  const cpu0 = { edge: cpuSeconds(gw.proc.pid!), cloud: cpuSeconds(cloud.pid!) };
  const drain = await drainRate(cloudPort, DRAIN);
  const cpu = { edge: cpuSeconds(gw.proc.pid!) - cpu0.edge, cloud: cpuSeconds(cloud.pid!) - cpu0.cloud };
  await waitFor(async () => (await gw.state()).outboxDepth === 0, 60_000, 'outbox empty');
  console.log(`fieldgate: drained ${k(drain.received)} at ${k(drain.rate)} msg/s; CPU per message: gateway ${us(cpu.edge, drain.received)}, cloud ${us(cpu.cloud, drain.received)}`);
  await stopProc(cloud, 'SIGKILL');
  const drainResult = { enqueue, drain: drain.rate, drained: drain.received, edgeCpu: cpu.edge / drain.received, cloudCpu: cpu.cloud / drain.received };
  if (drainOnly) {
    gw.proc.stdin!.write('stop\n');
    await new Promise((r) => gw.proc.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    return { ...drainResult, rssBefore: 0, rssAfter: 0, rssRestart: 0, backlog: 0 };
  }
  await waitFor(async () => !(await gw.state()).connected, 10_000, 'bridge disconnected');

  await sleep(1000);
  const before = await gw.state();
  const rssBefore = before.rss;
  const started = performance.now();
  await enqueueRate(gw.port, BACKLOG);
  const backlogRate = (BACKLOG * 1000) / (performance.now() - started);
  await sleep(2000);
  const st = await gw.state();
  console.log(`fieldgate: ${k(st.outboxDepth)}-row backlog (enqueued at ${k(backlogRate)} msg/s), RSS ${mb(rssBefore)} → ${mb(st.rss)} MB, JS heap ${mb(before.heap)} → ${mb(st.heap)} MB`);
  gw.proc.stdin!.write('stop\n');
  await new Promise((r) => gw.proc.once('exit', r));
  // a restart with the backlog on disk: the backlog is not loaded into memory
  gw = await startGateway(dataDir, cloudPort);
  await sleep(2000);
  const restarted = await gw.state();
  console.log(`fieldgate: restarted with ${k(restarted.outboxDepth)} rows queued, RSS ${mb(restarted.rss)} MB`);
  await stopProc(gw.proc, 'SIGKILL');
  return { ...drainResult, rssBefore, rssAfter: st.rss, rssRestart: restarted.rss, backlog: st.outboxDepth };
}

async function benchMosquitto(cloudPort: number, drainOnly = false) {
  const edgePort = await freePort();
  const edge = await startMosquitto('edge', edgePort, [
    'max_queued_messages 0', // default 1000 would drop the backlog
    'connection cloud',
    `address 127.0.0.1:${cloudPort}`,
    'topic sensors/# out 1 "" fleet/gw/',
    'cleansession false',
    'restart_timeout 1 2',
    'notifications false',
    'try_private false',
  ]);
  await sleep(500);
  const enqueue = await enqueueRate(edgePort, DRAIN);
  console.log(`mosquitto: accepted ${k(DRAIN)} at ${k(enqueue)} msg/s (held in RAM, not on disk)`);
  const cloud = await startMosquitto('cloud-mq', cloudPort, ['max_queued_messages 0']);
  const cpu0 = { edge: cpuSeconds(edge.pid!), cloud: cpuSeconds(cloud.pid!) };
  const drain = await drainRate(cloudPort, DRAIN);
  const cpu = { edge: cpuSeconds(edge.pid!) - cpu0.edge, cloud: cpuSeconds(cloud.pid!) - cpu0.cloud };
  console.log(`mosquitto: drained ${k(drain.received)} at ${k(drain.rate)} msg/s; CPU per message: edge ${us(cpu.edge, drain.received)}, cloud ${us(cpu.cloud, drain.received)}`);
  await stopProc(cloud, 'SIGKILL');
  const drainResult = { enqueue, drain: drain.rate, drained: drain.received, edgeCpu: cpu.edge / drain.received, cloudCpu: cpu.cloud / drain.received };
  if (drainOnly) {
    await stopProc(edge, 'SIGKILL');
    return { ...drainResult, rssBefore: 0, rssAfter: 0 };
  }
  await sleep(1500);
  const rssBefore = statusKiB(edge.pid!, 'VmRSS') * 1024;
  await enqueueRate(edgePort, BACKLOG);
  await sleep(2000);
  const rssAfter = statusKiB(edge.pid!, 'VmRSS') * 1024;
  console.log(`mosquitto: ${k(BACKLOG)}-message backlog, RSS ${mb(rssBefore)} → ${mb(rssAfter)} MB`);
  await stopProc(edge, 'SIGKILL');
  return { ...drainResult, rssBefore, rssAfter };
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined) throw new Error(`${name} needs a value`);
  return value;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Enqueue and drain only, fieldgate and Mosquitto interleaved, `rounds` times; prints each round and the medians. */
async function drainRounds(rounds: number): Promise<void> {
  console.log(`bridge drain benchmark: ${k(DRAIN)} messages, ${PAYLOAD}-byte payloads, ${PUBLISHERS} QoS 1 publishers, ${rounds} round(s)\n`);
  const fgs: Awaited<ReturnType<typeof benchFieldgate>>[] = [];
  const mqs: Awaited<ReturnType<typeof benchMosquitto>>[] = [];
  for (let r = 0; r < rounds; r++) {
    fgs.push(await benchFieldgate(await freePort(), true));
    mqs.push(await benchMosquitto(await freePort(), true));
  }
  const line = (name: string, cells: string[]) => console.log(`${name.padEnd(30)}${cells.map((c) => c.padStart(11)).join('')}`);
  const usMsg = (s: number) => `${(s * 1e6).toFixed(1)} µs`;
  console.log('');
  line('', [...fgs.map((_, i) => `round ${i + 1}`), 'median']);
  const rows: [string, (i: number) => number, (n: number) => string][] = [
    ['fieldgate enqueue, msg/s', (i) => fgs[i]!.enqueue, k],
    ['mosquitto enqueue, msg/s', (i) => mqs[i]!.enqueue, k],
    ['fieldgate drain, msg/s', (i) => fgs[i]!.drain, k],
    ['mosquitto drain, msg/s', (i) => mqs[i]!.drain, k],
    ['  drain ratio', (i) => fgs[i]!.drain / mqs[i]!.drain, (n) => n.toFixed(2)],
    ['fieldgate gateway CPU/msg', (i) => fgs[i]!.edgeCpu, usMsg],
    ['mosquitto bridge CPU/msg', (i) => mqs[i]!.edgeCpu, usMsg],
    ['cloud CPU/msg (fieldgate)', (i) => fgs[i]!.cloudCpu, usMsg],
    ['cloud CPU/msg (mosquitto)', (i) => mqs[i]!.cloudCpu, usMsg],
  ];
  for (const [name, get, fmt] of rows) {
    const values = fgs.map((_, i) => get(i));
    line(name, [...values.map(fmt), fmt(median(values))]);
  }
  const short = fgs.some((f) => f.drained < DRAIN) || mqs.some((m) => m.drained < DRAIN);
  if (short) console.log(`note: the cloud subscriber joined late in some round (fieldgate ${fgs.map((f) => f.drained).join('/')}, mosquitto ${mqs.map((m) => m.drained).join('/')} of ${k(DRAIN)})`);
}

export async function run(args: string[]): Promise<void> {
  const drain = option(args, '--drain');
  if (drain !== undefined) DRAIN = Number(drain);
  const backlog = option(args, '--backlog');
  if (backlog !== undefined) BACKLOG = Number(backlog);
  gatewayNodeArgs = (option(args, '--gateway-node-args') ?? '').split(' ').filter((a) => a !== '');
  const rounds = Number(option(args, '--rounds') ?? 1);
  if (args.includes('--drain-only')) {
    await drainRounds(rounds);
    return;
  }
  const cloudPort = await freePort();
  console.log(`bridge benchmark: ${DRAIN.toLocaleString('en-US')}-message drain, ${BACKLOG.toLocaleString('en-US')}-message backlog, ${PAYLOAD}-byte payloads, ${PUBLISHERS} QoS 1 publishers\n`);
  const fg = await benchFieldgate(cloudPort);
  const mq = await benchMosquitto(await freePort());

  const growthFg = fg.rssAfter - fg.rssBefore;
  const growthMq = mq.rssAfter - mq.rssBefore;
  const row = (name: string, a: string, b: string, ratio: string, floor: string) => console.log(`${name.padEnd(34)}${a.padStart(14)}${b.padStart(14)}${ratio.padStart(10)}   ${floor}`);
  console.log('');
  row('', 'fieldgate', 'mosquitto', 'ratio', 'floor');
  row('durable enqueue, msg/s', k(fg.enqueue), k(mq.enqueue), (fg.enqueue / mq.enqueue).toFixed(2), `≥ ${k(FLOORS.enqueue)} ${fg.enqueue >= FLOORS.enqueue ? 'ok' : 'MISSED'}`);
  row(`drain of ${k(DRAIN)}, msg/s`, k(fg.drain), k(mq.drain), (fg.drain / mq.drain).toFixed(2), `≥ ${k(FLOORS.drain)} ${fg.drain >= FLOORS.drain ? 'ok' : 'MISSED'}`);
  row(`RSS growth, ${k(BACKLOG)} backlog, MB`, mb(growthFg), mb(growthMq), (growthFg / growthMq).toFixed(3), `< ${FLOORS.rssMb} ${growthFg < FLOORS.rssMb * 1024 * 1024 ? 'ok' : 'MISSED'}`);
  row('RSS with the backlog, MB', mb(fg.rssAfter), mb(mq.rssAfter), (fg.rssAfter / mq.rssAfter).toFixed(2), '');
  row('RSS after restart with backlog, MB', mb(fg.rssRestart), 'n/a', '', '');
  if (fg.drained < DRAIN || mq.drained < DRAIN) console.log(`note: the cloud subscriber saw fieldgate ${k(fg.drained)}, mosquitto ${k(mq.drained)} of ${k(DRAIN)}`);
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) await run(process.argv.slice(2)).then(() => process.exit(0));
