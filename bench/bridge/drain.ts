// Focused drain measurement (for profiling): one gateway process with a queued backlog drains to a Mosquitto cloud.
// Run: node --import tsx bench/bridge/drain.ts   env: BENCH_DRAIN (100000), BENCH_WINDOW, GATEWAY_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cpuSeconds } from '../lib/proc.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';
import { CountingSubscriber, publishFlood } from './loadgen.js';

const { dir: work, children } = scratch('fieldgate-bench-drain-');

const DRAIN = Number(process.env.BENCH_DRAIN ?? 100_000);
const WINDOW = process.env.BENCH_WINDOW !== undefined ? Number(process.env.BENCH_WINDOW) : undefined;




const cloudPort = await freePort();
const nodeArgs = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const gw = spawn(
  process.execPath,
  [...nodeArgs, '--import', 'tsx', join(import.meta.dirname, 'gateway.ts'), JSON.stringify({ dataDir: join(work, 'gw'), remoteUrl: `mqtt://127.0.0.1:${cloudPort}`, window: WINDOW })],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
children.add(gw);
const lines = createInterface({ input: gw.stdout! });
const answers: ((line: string) => void)[] = [];
let ready!: (port: number) => void;
const portP = new Promise<number>((r) => (ready = r));
lines.on('line', (line) => {
  const m = /^READY (\d+)/.exec(line);
  if (m) ready(Number(m[1]));
  else answers.shift()?.(line);
});
const state = (): Promise<{ outboxDepth: number; resent: number; sent: number; acked: number }> =>
  new Promise((resolve) => {
    answers.push((line) => resolve(JSON.parse(line)));
    gw.stdin!.write('state\n');
  });
const gwPort = await portP;
await sleep(500);
const t0 = performance.now();
const per = Math.ceil(DRAIN / 4);
await Promise.all(Array.from({ length: 4 }, (_, i) => publishFlood(gwPort, { count: per, topic: `sensors/dev${i}/value`, payloadBytes: 64, window: 500, clientId: `drain-pub-${i}` })));
const enqueue = (per * 4 * 1000) / (performance.now() - t0);

const cpuBefore = cpuSeconds(gw.pid!);
const dir = join(work, 'cloud');
mkdirSync(dir, { mode: 0o777 });
chmodSync(dir, 0o777);
writeFileSync(join(dir, 'm.conf'), `listener ${cloudPort} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n`);
const cloud = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' });
children.add(cloud);
await waitFor(() => canConnect(cloudPort), 10_000, 'mosquitto');
const cloudCpuBefore = cpuSeconds(cloud.pid!);
const selfCpuBefore = process.cpuUsage();
const sub = new CountingSubscriber();
await sub.start(cloudPort, 'fleet/#');
await waitFor(() => sub.count >= per * 4, 300_000, 'all messages at the cloud');
await waitFor(async () => (await state()).outboxDepth === 0, 60_000, 'outbox empty');
const cpu = cpuSeconds(gw.pid!) - cpuBefore;
const cloudCpu = cpuSeconds(cloud.pid!) - cloudCpuBefore;
const selfCpu = process.cpuUsage(selfCpuBefore);
const st = await state();
sub.stop();
const drain = ((sub.count - 1) * 1000) / (sub.lastAt - sub.firstAt);
const wall = (sub.lastAt - sub.firstAt) / 1000;
console.log(
  `enqueue ${Math.round(enqueue)} msg/s, drain ${Math.round(drain)} msg/s, gateway CPU ${(cpu * 1e6 / sub.count).toFixed(1)} µs/msg (${Math.round((100 * cpu) / wall)}% of the drain) (${sub.count} received, sent ${st.sent}, acked ${st.acked}, resent ${st.resent})`,
);
console.log(`  cloud Mosquitto CPU ${((cloudCpu * 1e6) / sub.count).toFixed(1)} µs/msg, counting subscriber ${((selfCpu.user + selfCpu.system) / sub.count).toFixed(1)} µs/msg, drain took ${wall.toFixed(2)} s`);
gw.stdin!.write('stop\n');
await new Promise((r) => gw.once('exit', r));
process.exit(0);
