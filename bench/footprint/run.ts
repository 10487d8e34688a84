// Footprint of the whole gateway, side by side with Mosquitto in the same run, as ratios:
//   idle: RSS (and its split), CPU % of a core and context switches per second over a window, the gateway
//   as `fieldgate run` with the demo meter, one bridge to a "cloud" Mosquitto and metrics on; Mosquitto as
//   the edge with a bridge to the same kind of cloud
//   per idle connection: (RSS with N idle MQTT 3.1.1 connections − without) / N, each read once the process is quiet
//   after the burst (see perConnectionRss), against the same processes
//   per connect: broker CPU seconds over K sequential connect → CONNACK → DISCONNECT cycles, / K
// Run: npm run bench -- footprint [--seconds 60] [--clients 1000] [--connects 2000] [--small-board] [--write]
//   --small-board: the gateway and Mosquitto pinned to CPU 0 (taskset) and the gateway with --max-old-space-size=64
//   (what a 512 MiB board would give it); the load generator is not pinned.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, loadAverage, machineInfo, statusKiB } from '../lib/proc.js';
import { DISCONNECT, encodeConnect } from '../lib/mqtt-wire.js';
import { ensureGatewayBuilt } from '../lib/build.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { dir: work, children, stop: stopProc } = scratch('fieldgate-bench-footprint-');

interface Options { seconds: number; clients: number; connects: number; smallBoard: boolean; write: boolean; settleSeconds: number }

function parseArgs(args: string[]): Options {
  const o: Options = { seconds: 60, clients: 1000, connects: 2000, smallBoard: false, write: false, settleSeconds: 15 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--clients') o.clients = Number(args[++i]);
    else if (a === '--connects') o.connects = Number(args[++i]);
    else if (a === '--settle') o.settleSeconds = Number(args[++i]);
    else if (a === '--small-board') o.smallBoard = true;
    else if (a === '--write') o.write = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const SMALL_BOARD_OLD_SPACE_MIB = 64;

function pinned(smallBoard: boolean, command: string, args: string[]): [string, string[]] {
  return smallBoard ? ['taskset', ['-c', '0', command, ...args]] : [command, args];
}

// ---------- /proc

/** RSS split: the node (or mosquitto) executable's file pages, anonymous memory, other files (libraries). */
function rssSplit(pid: number): { rss: number; executable: number; anonymous: number } {
  const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  let name = '';
  let rss = 0;
  let executable = 0;
  let anonymous = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      name = header[1]!;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const kib = Number(m[1]);
    rss += kib;
    if (name === process.execPath || name.endsWith('/node') || name.endsWith('/mosquitto') || (exe !== '' && name.endsWith(exe))) executable += kib;
    else if (name === '' || name === '[heap]' || name.startsWith('[anon')) anonymous += kib;
  }
  return { rss, executable, anonymous };
}

/** Context switches of all threads: voluntary (the process went to sleep: a wakeup follows) and all. */
function switches(pid: number): { voluntary: number; all: number } {
  let voluntary = 0;
  let all = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    } catch {
      continue; // a thread that ended meanwhile
    }
    const v = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const n = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    voluntary += v;
    all += v + n;
  }
  return { voluntary, all };
}

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

// ---------- processes

async function startMosquitto(name: string, port: number, extra: string[], smallBoard: boolean): Promise<ChildProcess> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest none', 'max_connections -1', ...extra, ''].join('\n'));
  const [cmd, args] = pinned(smallBoard, 'mosquitto', ['-c', conf]);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`mosquitto ${name} exited: ${err}`);
    return canConnect(port);
  }, 10_000, `mosquitto ${name}`);
  return proc;
}



/** The node options fieldgate ships with: the `#!/usr/bin/env -S [VAR=value…] node …` line of bin/fieldgate.js. */
export function launcherSettings(): { env: Record<string, string>; nodeArgs: string[] } {
  const shebang = readFileSync(join(root, 'bin', 'fieldgate.js'), 'utf8').split('\n')[0]!;
  const words = shebang.replace(/^#!\/usr\/bin\/env -S\s*/, '').split(/\s+/).filter(Boolean);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
    const [k, ...v] = words.shift()!.split('=');
    env[k!] = v.join('=');
  }
  if (words[0] === 'node') words.shift();
  return { env, nodeArgs: words };
}

async function startGateway(o: Options, cloudPort: number): Promise<{ proc: ChildProcess; port: number; metricsPort: number }> {
  const dir = join(work, 'gateway');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const metricsPort = await freePort();
  const file = join(dir, 'fieldgate.json');
  writeFileSync(file, JSON.stringify({
    gatewayId: 'bench', demo: true,
    broker: { host: '127.0.0.1', port, dataDir: join(dir, 'data') },
    metrics: { host: '127.0.0.1', port: metricsPort },
    bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'bench-gw', rules: [{ direction: 'out', filter: 'fieldgate/#', remotePrefix: 'fleet/gw/' }] }],
  }, null, 2));
  const { env, nodeArgs } = launcherSettings();
  if (o.smallBoard) nodeArgs.push(`--max-old-space-size=${SMALL_BOARD_OLD_SPACE_MIB}`);
  const [cmd, args] = pinned(o.smallBoard, process.execPath, [...nodeArgs, join(root, 'bin', 'fieldgate.js'), 'run', '--config', file, '--log-level', 'warn']);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`gateway exited: ${out}`);
    return canConnect(port);
  }, 30_000, 'gateway');
  return { proc, port, metricsPort };
}

// ---------- measurements

interface Idle { rssKiB: number; executableKiB: number; anonymousKiB: number; threads: number; cpuPercent: number; voluntaryPerSecond: number; switchesPerSecond: number }

async function idleWindow(pid: number, seconds: number): Promise<Idle> {
  const c0 = cpuSeconds(pid);
  const s0 = switches(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const c1 = cpuSeconds(pid);
  const s1 = switches(pid);
  const elapsed = (Date.now() - t0) / 1000;
  const split = rssSplit(pid);
  return {
    rssKiB: split.rss, executableKiB: split.executable, anonymousKiB: split.anonymous, threads: threads(pid),
    cpuPercent: ((c1 - c0) / elapsed) * 100,
    voluntaryPerSecond: (s1.voluntary - s0.voluntary) / elapsed,
    switchesPerSecond: (s1.all - s0.all) / elapsed,
  };
}

/** Opens one MQTT 3.1.1 connection and resolves once its CONNACK (accepted) has arrived. */
function connectOne(port: number, clientId: string, keepAliveSeconds: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no CONNACK for ${clientId}`));
    }, 10_000);
    socket.once('connect', () => socket.write(encodeConnect(clientId, { cleanSession: true, keepAliveSeconds })));
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (got[0] !== 0x20 || got[3] !== 0) {
        socket.destroy();
        reject(new Error(`CONNACK refused for ${clientId}: ${got.subarray(0, 4).toString('hex')}`));
      } else resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface PerConnection { kib: number; rssBeforeKiB: number; rssAfterKiB: number; burstKiB: number; oldSpaceBytes: number }

/**
 * How long after a burst of connections the memory is read: long enough for the process to have gone quiet
 * and for its memory to have settled (fieldgate collects 5–10 s after a burst and V8 unmaps the freed pages
 * within ~4 s after that; V8's own memory reducer, when it runs, ~8–10 s after a full collection).
 */
const SETTLE_AFTER_BURST_MS = 20_000;

/** The median of RSS samples taken every 500 ms for 4 s, once the process has been left alone for `waitMs`. */
async function settledRss(pid: number, waitMs: number): Promise<number> {
  await sleep(waitMs);
  const samples: number[] = [];
  for (let i = 0; i < 9; i++) {
    if (i > 0) await sleep(500);
    samples.push(statusKiB(pid, 'VmRSS'));
  }
  return samples.sort((a, b) => a - b)[4]!;
}

async function openIdle(port: number, clients: number, prefix: string): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < clients; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, clients - i) }, (_, j) => connectOne(port, `${prefix}-${i + j}`, 60)));
    sockets.push(...batch);
  }
  return sockets;
}

async function closeAll(sockets: net.Socket[]): Promise<void> {
  for (const s of sockets) s.end(DISCONNECT);
  await sleep(1000);
  for (const s of sockets) s.destroy();
}

/**
 * What an idle connection costs: (RSS with N idle connections − RSS without) / N, both read the same way,
 * a while after the last connection came or went (the median of 9 samples after SETTLE_AFTER_BURST_MS).
 * Warm-up first: 50 connections held and closed (pools), then WARM_UP_CYCLES connect → DISCONNECT cycles,
 * 8 at a time (the code of the connect path compiled and optimised), so that neither compiled code nor the
 * garbage of the warm-up is counted as memory the connections hold; the cycles leave at most 8 connections'
 * worth of freed memory behind for the N to reuse. RSS 2 s after the burst (against the same reading before),
 * nearly the old reading (that was against RSS 2 s after the 50), is reported beside it: it moved by several KiB per connection with whether V8 had collected
 * the burst's garbage yet (see bench/results/2026-12-04-footprint-connections.md).
 */
const WARM_UP_CYCLES = 500;

async function perConnectionRss(pid: number, port: number, clients: number, metricsPort?: number): Promise<PerConnection> {
  const warm = await openIdle(port, 50, 'warm');
  await closeAll(warm);
  await connectCost(pid, port, WARM_UP_CYCLES);
  const before = await settledRss(pid, SETTLE_AFTER_BURST_MS);
  const oldBefore = metricsPort === undefined ? NaN : await oldSpaceUsed(metricsPort);
  const sockets = await openIdle(port, clients, 'idle');
  await sleep(2000);
  const burst = statusKiB(pid, 'VmRSS');
  const after = await settledRss(pid, SETTLE_AFTER_BURST_MS - 2000);
  const oldAfter = metricsPort === undefined ? NaN : await oldSpaceUsed(metricsPort);
  await closeAll(sockets);
  return { kib: (after - before) / clients, rssBeforeKiB: before, rssAfterKiB: after, burstKiB: (burst - before) / clients, oldSpaceBytes: (oldAfter - oldBefore) / clients };
}

/**
 * V8's old space in use (prom-client's nodejs_heap_space_size_used_bytes): read once the broker has collected
 * after a burst, it is what the connections hold in V8's heap (survivors are promoted there; the garbage made
 * since, by the demo and this request, is still in the young generation). RSS moves by MiBs with where V8's
 * and malloc's pages are; this does not.
 */
async function oldSpaceUsed(metricsPort: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return Number(/^nodejs_heap_space_size_used_bytes\{space="old"\} (\S+)$/m.exec(text)?.[1]);
  } catch {
    return NaN;
  }
}

interface Connects { cpuMicrosPerConnect: number; perSecond: number }

/** Between closing the idle connections and the connect cycles: the closes' own work is not counted as the connects'. */
const QUIET_BEFORE_CONNECTS_MS = 3000;

/** K connect → CONNACK → DISCONNECT cycles, 8 lanes at a time; the broker's CPU over them / K. */
async function connectCost(pid: number, port: number, total: number): Promise<Connects> {
  const lanes = 8;
  let next = 0;
  const c0 = cpuSeconds(pid);
  const t0 = Date.now();
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    while (next < total) {
      const n = next++;
      const socket = await connectOne(port, `c-${lane}-${n}`, 0);
      await new Promise<void>((r) => {
        socket.once('close', () => r());
        socket.end(DISCONNECT);
      });
    }
  }));
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - c0;
  return { cpuMicrosPerConnect: (cpu / total) * 1e6, perSecond: total / elapsed };
}

async function metricsHeap(metricsPort: number): Promise<string> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const g = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    return `V8 heap used ${mib(g('nodejs_heap_size_used_bytes'))} of ${mib(g('nodejs_heap_size_total_bytes'))} MiB, external ${mib(g('nodejs_external_memory_bytes'))} MiB (from /metrics, after the window)`;
  } catch (err) {
    return `(metrics unavailable: ${(err as Error).message})`;
  }
}

// ---------- report

const mib = (kib: number) => (kib / 1024).toFixed(1);
const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : '–');

export async function run(args: string[]): Promise<void> {
  const o = parseArgs(args);
  ensureGatewayBuilt(root);
  const load0 = loadAverage();

  process.stdout.write('gateway (demo, one bridge, metrics) …\n');
  const gwCloudPort = await freePort();
  const gwCloud = await startMosquitto('cloud-fg', gwCloudPort, [], false);
  const gw = await startGateway(o, gwCloudPort);
  const gwPid = gw.proc.pid!;
  await sleep(o.settleSeconds * 1000);
  const gwIdle = await idleWindow(gwPid, o.seconds);
  const heap = await metricsHeap(gw.metricsPort);
  const gwConn = await perConnectionRss(gwPid, gw.port, o.clients, gw.metricsPort);
  await sleep(QUIET_BEFORE_CONNECTS_MS);
  const gwConnects = await connectCost(gwPid, gw.port, o.connects);
  await stopProc(gw.proc);
  await stopProc(gwCloud);

  process.stdout.write('Mosquitto (edge with a bridge) …\n');
  const mqCloudPort = await freePort();
  const mqCloud = await startMosquitto('cloud-mq', mqCloudPort, [], false);
  const edgePort = await freePort();
  const edge = await startMosquitto('edge-mq', edgePort, [
    'connection cloud', `address 127.0.0.1:${mqCloudPort}`, 'topic # out 1 fieldgate/ fleet/gw/', 'cleansession false', 'restart_timeout 1 1',
  ], o.smallBoard);
  // With taskset the child is taskset only until it execs mosquitto: the pid is the same.
  const mqPid = edge.pid!;
  await sleep(o.settleSeconds * 1000);
  const mqIdle = await idleWindow(mqPid, o.seconds);
  const mqConn = await perConnectionRss(mqPid, edgePort, o.clients);
  await sleep(QUIET_BEFORE_CONNECTS_MS);
  const mqConnects = await connectCost(mqPid, edgePort, o.connects);
  await stopProc(edge);
  await stopProc(mqCloud);

  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.add(bare);
  await sleep(1500);
  const bareRss = rssSplit(bare.pid!);
  await stopProc(bare);
  const load1 = loadAverage();

  const m = machineInfo();
  const { env, nodeArgs } = launcherSettings();
  const lines: string[] = [];
  lines.push(`# Footprint, ${new Date().toISOString().slice(0, 10)}${o.smallBoard ? ' (small board)' : ''}`, '');
  lines.push(`Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}; shared with other work: load average before ${load0}, after ${load1}.`);
  lines.push(`fieldgate: \`fieldgate run\` from dist/ with the launcher's settings (${[...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...nodeArgs].join(' ') || 'none'})${o.smallBoard ? `, --max-old-space-size=${SMALL_BOARD_OLD_SPACE_MIB}, pinned to CPU 0 (taskset -c 0)` : ''}; the demo meter, one bridge to a cloud Mosquitto, metrics on. Mosquitto ${o.smallBoard ? 'pinned the same way, ' : ''}as the edge with a bridge (\`persistence false\`) to its own cloud Mosquitto. Node ${process.version}.`);
  lines.push(`\`npm run bench -- footprint ${args.join(' ')}\`: idle window ${o.seconds} s after ${o.settleSeconds} s of settling; ${o.clients} idle connections (MQTT 3.1.1, keep alive 60 s) after a warm-up (50 connections, then ${WARM_UP_CYCLES} connect → DISCONNECT cycles), RSS read ${SETTLE_AFTER_BURST_MS / 1000} s after each burst (median of 9 samples over 4 s), V8 old space from /metrics after it; ${o.connects} connect → CONNACK → DISCONNECT cycles in 8 lanes.`, '');
  lines.push('| figure | fieldgate | Mosquitto | fieldgate ÷ Mosquitto | goal |', '|---|---:|---:|---:|---|');
  lines.push(`| RSS at idle, MiB | ${mib(gwIdle.rssKiB)} | ${mib(mqIdle.rssKiB)} | ${ratio(gwIdle.rssKiB, mqIdle.rssKiB)} | ≤ 55 MiB |`);
  lines.push(`| … of it the executable's file pages, MiB | ${mib(gwIdle.executableKiB)} | ${mib(mqIdle.executableKiB)} | | |`);
  lines.push(`| … anonymous memory, MiB | ${mib(gwIdle.anonymousKiB)} | ${mib(mqIdle.anonymousKiB)} | | |`);
  lines.push(`| threads | ${gwIdle.threads} | ${mqIdle.threads} | | |`);
  lines.push(`| idle CPU, % of a core | ${fmt(gwIdle.cpuPercent, 2)} | ${fmt(mqIdle.cpuPercent, 2)} | ${ratio(gwIdle.cpuPercent, mqIdle.cpuPercent)} | ≤ 0.3 % |`);
  lines.push(`| voluntary context switches (wakeups) / s | ${fmt(gwIdle.voluntaryPerSecond)} | ${fmt(mqIdle.voluntaryPerSecond)} | ${ratio(gwIdle.voluntaryPerSecond, mqIdle.voluntaryPerSecond)} | ≤ 15 / s |`);
  lines.push(`| all context switches / s | ${fmt(gwIdle.switchesPerSecond)} | ${fmt(mqIdle.switchesPerSecond)} | ${ratio(gwIdle.switchesPerSecond, mqIdle.switchesPerSecond)} | |`);
  lines.push(`| RSS per idle connection, KiB | ${fmt(gwConn.kib, 2)} | ${fmt(mqConn.kib, 2)} | ${ratio(gwConn.kib, mqConn.kib)} | ≤ 1.5 KiB |`);
  lines.push(`| … 2 s after the burst, KiB | ${fmt(gwConn.burstKiB, 2)} | ${fmt(mqConn.burstKiB, 2)} | ${ratio(gwConn.burstKiB, mqConn.burstKiB)} | |`);
  lines.push(`| V8 old space per idle connection, bytes | ${fmt(gwConn.oldSpaceBytes, 0)} | | | |`);
  lines.push(`| broker CPU per connect, µs | ${fmt(gwConnects.cpuMicrosPerConnect)} | ${fmt(mqConnects.cpuMicrosPerConnect)} | ${ratio(gwConnects.cpuMicrosPerConnect, mqConnects.cpuMicrosPerConnect)} | ≤ 1.5× Mosquitto |`);
  lines.push(`| connects / s (8 lanes, one generator) | ${fmt(gwConnects.perSecond, 0)} | ${fmt(mqConnects.perSecond, 0)} | ${ratio(gwConnects.perSecond, mqConnects.perSecond)} | |`);
  lines.push('');
  lines.push(`RSS before/after the ${o.clients} connections: fieldgate ${mib(gwConn.rssBeforeKiB)} → ${mib(gwConn.rssAfterKiB)} MiB, Mosquitto ${mib(mqConn.rssBeforeKiB)} → ${mib(mqConn.rssAfterKiB)} MiB. fieldgate's ${heap}. Bare Node ${process.version}: ${mib(bareRss.rss)} MiB (executable ${mib(bareRss.executable)}, anonymous ${mib(bareRss.anonymous)}).`);
  lines.push('', 'Wakeups are voluntary context switches of all the process\'s threads (/proc/PID/task/*/status): each is the process going to sleep, so one wakeup follows. The gateway\'s idle includes its own work (the demo meter polled every 2 s, its readings forwarded over the bridge); Mosquitto\'s has no device behind it.');
  const text = lines.join('\n') + '\n';
  process.stdout.write(`\n${text}`);
  if (o.write) {
    const file = join(root, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-footprint.md`);
    writeFileSync(file, existsSync(file) ? readFileSync(file, 'utf8') + '\n' + text : text);
    process.stdout.write(`written to ${file}\n`);
  }
}
