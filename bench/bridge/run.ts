// Bridge benchmark: fieldgate's SQLite-outbox bridge side by side with a Mosquitto bridge on this machine.
//   durable enqueue rate (local QoS 1 publishers, PUBACK after the outbox row is committed), msg/s
//   backlog drain rate (100,000 queued messages to a Mosquitto "cloud" on loopback), msg/s
//   RSS growth with a 1,000,000-message backlog
// Run: node --import tsx bench/bridge/run.ts   (BENCH_DRAIN / BENCH_BACKLOG override the sizes)
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cpuSeconds, statusKiB } from '../lib/proc.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';
import { CountingSubscriber, publishFlood } from './loadgen.js';

const { dir: work, children } = scratch('fieldgate-bench-bridge-');

const DRAIN = Number(process.env.BENCH_DRAIN ?? 100_000);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
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


async function stopProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((r) => {
    proc.once('exit', () => r());
    proc.kill(signal);
  });
  children.delete(proc);
}

interface GatewayProc {
  proc: ChildProcess;
  port: number;
  state(): Promise<{ outboxDepth: number; acked: number; connected: boolean; rss: number; heap: number }>;
}

async function startGateway(dataDir: string, remotePort: number): Promise<GatewayProc> {
  const script = join(import.meta.dirname, 'gateway.ts');
  const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, JSON.stringify({ dataDir, remoteUrl: `mqtt://127.0.0.1:${remotePort}` })], {
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

async function benchFieldgate(cloudPort: number) {
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
  return { enqueue, drain: drain.rate, drained: drain.received, rssBefore, rssAfter: st.rss, rssRestart: restarted.rss, backlog: st.outboxDepth };
}

async function benchMosquitto(cloudPort: number) {
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
  await sleep(1500);
  const rssBefore = statusKiB(edge.pid!, 'VmRSS') * 1024;
  await enqueueRate(edgePort, BACKLOG);
  await sleep(2000);
  const rssAfter = statusKiB(edge.pid!, 'VmRSS') * 1024;
  console.log(`mosquitto: ${k(BACKLOG)}-message backlog, RSS ${mb(rssBefore)} → ${mb(rssAfter)} MB`);
  await stopProc(edge, 'SIGKILL');
  return { enqueue, drain: drain.rate, drained: drain.received, rssBefore, rssAfter };
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
process.exit(0);
