// Storage writes and footprint: what the gateway writes to storage per forwarded message, and its RSS at idle,
// side by side with Mosquitto as the edge bridge (persistence true and false) in the same run.
//   write_bytes / syscw of the process (/proc/PID/io) per forwarded message: steady state (cloud connected) and outage
//   (cloud down, per message produced), and the drain after the outage (bytes and rate)
//   RSS of the whole gateway (demo + one bridge) at idle, and of bare Node
// Run: npm run bench -- storage [--seconds 60] [--loads demo,100] [--small-board] [--write] [--hold-ms N] [--durability full]
//   [--no-mosquitto | --mosquitto-only DEMO_RATE,HUNDRED_RATE]
//   --small-board: every measured process pinned to CPU 0 (taskset) and the gateway run with --max-old-space-size=96.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { loadAverage, machineInfo } from '../lib/proc.js';
import { ensureGatewayBuilt } from '../lib/build.js';
import { canConnect, freePort, scratch, sleep, waitFor } from '../lib/scratch.js';
import { startSimulatedMeter } from '../../src/demo/simulated-meter.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { dir: work, children, stop: stopProc } = scratch('fieldgate-bench-storage-');

interface Io { writeBytes: number; syscw: number }

function readIo(pid: number): Io {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { writeBytes: field('write_bytes'), syscw: field('syscw') };
}

interface Options {
  seconds: number;
  loads: ('demo' | '100')[];
  smallBoard: boolean;
  write: boolean;
  holdMs: number | undefined;
  durability: 'full' | 'normal' | 'off';
  skipMosquitto: boolean;
  /** Only the Mosquitto rows, at these rates (messages/s) for demo and 100 (e.g. the fieldgate steady rates of a run). */
  mosquittoOnly: { demo: number; '100': number } | undefined;
}

function parseArgs(args: string[]): Options {
  const o: Options = { seconds: 60, loads: ['demo', '100'], smallBoard: false, write: false, holdMs: undefined, durability: 'full', skipMosquitto: false, mosquittoOnly: undefined };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--loads') o.loads = args[++i]!.split(',') as Options['loads'];
    else if (a === '--small-board') o.smallBoard = true;
    else if (a === '--write') o.write = true;
    else if (a === '--hold-ms') o.holdMs = Number(args[++i]);
    else if (a === '--durability') o.durability = args[++i] as Options['durability'];
    else if (a === '--no-mosquitto') o.skipMosquitto = true;
    else if (a === '--mosquitto-only') {
      const [demo, hundred] = args[++i]!.split(',').map(Number);
      o.mosquittoOnly = { demo: demo!, '100': hundred! };
    }
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** RSS split: pages of the node executable (file-backed, shared, clean: the kernel can drop them) and anonymous memory. */
function rssSplit(pid: number): { rss: number; executable: number; anonymous: number } {
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
    if (name === process.execPath || name.endsWith('/node')) executable += kib;
    else if (name === '' || name === '[heap]' || name.startsWith('[anon')) anonymous += kib;
  }
  return { rss, executable, anonymous };
}

function pinned(smallBoard: boolean, command: string, args: string[]): [string, string[]] {
  return smallBoard ? ['taskset', ['-c', '0', command, ...args]] : [command, args];
}

// ---------- processes

/** The cloud keeps the counting subscriber's session across its restart (SIGTERM saves it); its own writes are not measured. */
const CLOUD = ['persistence true', 'autosave_interval 0', 'max_queued_messages 0', 'max_inflight_messages 0'];

async function startMosquitto(name: string, port: number, extra: string[], smallBoard: boolean): Promise<ChildProcess> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  const conf = join(dir, 'mosquitto.conf');
  // As root Mosquitto switches to the "mosquitto" user, which cannot write this directory (0755 after the umask): its
  // persistence file would silently never be written, and its rows would show 0 bytes for that reason alone.
  const asRoot = process.getuid?.() === 0 ? ['user root'] : [];
  writeFileSync(conf, [...asRoot, `listener ${port} 127.0.0.1`, 'allow_anonymous true', `persistence_location ${dir}/`, 'log_dest none', ...extra, ''].join('\n'));
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



/** The gateway as `fieldgate run` with a config file, from dist/ (no tsx cache writes inside the measured process). */
async function startGateway(name: string, config: object, smallBoard: boolean): Promise<{ proc: ChildProcess; port: number }> {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const file = join(dir, 'fieldgate.json');
  writeFileSync(file, JSON.stringify({ ...config, broker: { ...(config as { broker?: object }).broker, host: '127.0.0.1', port, dataDir: join(dir, 'data') } }, null, 2));
  const shebang = readFileSync(join(root, 'bin', 'fieldgate.js'), 'utf8').split('\n')[0]!;
  const nodeArgs = shebang.replace(/^#!\/usr\/bin\/env -S node\s*/, '').split(/\s+/).filter(Boolean);
  if (smallBoard) nodeArgs.push('--max-old-space-size=96');
  const [cmd, args] = pinned(smallBoard, process.execPath, [...nodeArgs, join(root, 'bin', 'fieldgate.js'), 'run', '--config', file, '--log-level', 'warn']);
  // stdout is a pipe (not a file), so the log is not counted as the gateway's storage writes.
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`gateway ${name} exited: ${out}`);
    return canConnect(port);
  }, 30_000, `gateway ${name}`);
  return { proc, port };
}

/** The measured process: with taskset the child is taskset until it execs, so read the pid after a moment. */
function pidOf(proc: ChildProcess): number {
  return proc.pid!;
}

/**
 * Counts live messages on a filter. On the cloud it is a persistent session (the cloud Mosquitto keeps it across its
 * restart), so what the bridge drains while the counter reconnects is still counted.
 */
async function counter(port: number, filter: string, persistent = false): Promise<{ client: MqttClient; count: () => number; bytes: () => number }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clean: !persistent, reconnectPeriod: 100, clientId: `bench-count-${Math.random().toString(16).slice(2)}` });
  let n = 0;
  let bytes = 0;
  client.on('message', (topic, payload, packet) => {
    if (packet.retain) return;
    n += 1;
    bytes += Buffer.byteLength(topic) + payload.length;
  });
  client.on('connect', (connack) => {
    if (!connack.sessionPresent) client.subscribe(filter, { qos: 1 });
  });
  client.on('error', () => undefined);
  await waitFor(() => client.connected, 10_000, 'counting subscriber');
  await sleep(300);
  return { client, count: () => n, bytes: () => bytes };
}

// ---------- configurations

function bridgeConfig(cloudPort: number, holdMs: number | undefined): object {
  return {
    name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'bench-gw',
    rules: [{ direction: 'out', filter: 'fieldgate/#', remotePrefix: 'fleet/gw/' }],
    reconnect: { minMs: 200, maxMs: 1000 },
    ...(holdMs !== undefined ? { hold: { ms: holdMs } } : {}),
  };
}

/** 100 readings/s: the simulated meter's 7 floats every 70 ms, published whether or not they changed. */
function hundredPerSecondMapping(meterPort: number): object {
  const names = ['voltage', 'current', 'power', 'power-factor', 'frequency', 'energy-import', 'energy-total'];
  const addresses = [0, 6, 12, 30, 70, 72, 342];
  return {
    buses: [{ id: 'sim', type: 'modbus-tcp', host: '127.0.0.1', port: meterPort }],
    devices: [{
      id: 'fast-meter', bus: 'sim', unitId: 1, pollIntervalMs: 70, timeoutMs: 1000, byteOrder: 'ABCD',
      publish: { onChange: false, maxSilenceMs: 60000, state: false },
      points: names.map((name, i) => ({ name, table: 'input', address: addresses[i], type: 'float32', decimals: 3 })),
    }],
  };
}

// ---------- scenarios

interface Row { what: string; messages: number; seconds: number; writeBytes: number; syscw: number; extra?: string }

/** Outage rows: the goal per message produced is its (local) topic + payload + 64 bytes, amortised. */
function outageGoal(messages: number, bytes: number): string {
  return messages > 0 ? `goal ≤ ${fmt(bytes / messages + 64)} (topic + payload ${fmt(bytes / messages)} + 64)` : '';
}

async function window(pid: number, seconds: number, count: () => number, bytes?: () => number): Promise<Omit<Row, 'what'>> {
  const io0 = readIo(pid);
  const n0 = count();
  const b0 = bytes?.() ?? 0;
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const io1 = readIo(pid);
  const messages = count() - n0;
  return {
    messages, seconds: (Date.now() - t0) / 1000, writeBytes: io1.writeBytes - io0.writeBytes, syscw: io1.syscw - io0.syscw,
    ...(bytes !== undefined ? { extra: outageGoal(messages, bytes() - b0) } : {}),
  };
}

async function fieldgateRun(o: Options, load: 'demo' | '100', rows: Row[]): Promise<ReturnType<typeof rssSplit> | undefined> {
  const cloudPort = await freePort();
  let cloud = await startMosquitto(`cloud-fg-${load}`, cloudPort, CLOUD, o.smallBoard);
  const meter = load === '100' ? await startSimulatedMeter({ port: 0 }) : undefined;
  const config: Record<string, unknown> = {
    gatewayId: 'bench', demo: load === 'demo', homeAssistant: { discovery: load === 'demo' },
    broker: { durability: o.durability }, bridges: [bridgeConfig(cloudPort, o.holdMs)],
  };
  if (meter) {
    const mappingFile = join(work, `fast-${load}.json`);
    writeFileSync(mappingFile, JSON.stringify(hundredPerSecondMapping(meter.port)));
    config.devices = [mappingFile];
  }
  const gw = await startGateway(`fg-${load}`, config, o.smallBoard);
  const pid = pidOf(gw.proc);
  const atCloud = await counter(cloudPort, 'fleet/gw/#', true);
  const produced = await counter(gw.port, 'fieldgate/#');
  // Start-up writes (schema, discovery configs, first retained values) are not the steady state.
  await sleep(10_000);
  const rss = rssSplit(pid);
  const label = load === 'demo' ? 'demo meter' : '100 readings/s';
  rows.push({ what: `fieldgate, ${label}, steady (cloud connected)`, ...(await window(pid, o.seconds, atCloud.count)) });
  await stopProc(cloud);
  await sleep(2000);
  const outage = await window(pid, o.seconds, produced.count, produced.bytes);
  rows.push({ what: `fieldgate, ${label}, outage (per message produced)`, ...outage });
  const expected = atCloud.count() + outage.messages + Math.round(outage.messages * 2 / o.seconds) + 10;
  const io0 = readIo(pid);
  const t0 = Date.now();
  const before = atCloud.count();
  cloud = await startMosquitto(`cloud-fg-${load}`, cloudPort, CLOUD, o.smallBoard);
  // Drained when the cloud has everything produced until now (the production goes on meanwhile).
  await waitFor(() => atCloud.count() >= produced.count() - 2, 120_000, 'drain after the outage').catch(() => undefined);
  const io1 = readIo(pid);
  const drainSeconds = (Date.now() - t0) / 1000;
  rows.push({ what: `fieldgate, ${label}, drain after the outage`, messages: atCloud.count() - before, seconds: drainSeconds, writeBytes: io1.writeBytes - io0.writeBytes, syscw: io1.syscw - io0.syscw, extra: `expected ≈ ${expected - before}` });
  atCloud.client.end(true);
  produced.client.end(true);
  await stopProc(gw.proc);
  await stopProc(cloud);
  await meter?.stop();
  return load === 'demo' ? rss : undefined;
}

/**
 * How the edge Mosquitto keeps its state: not at all, with its defaults (a snapshot every 30 min and at exit), or a
 * snapshot every second, which loses at most the last second on a crash, as the hold stage's default does.
 */
const MOSQUITTO_MODES = [
  { name: 'Mosquitto persistence true', key: 'true', config: ['persistence true'] },
  { name: 'Mosquitto persistence false', key: 'false', config: ['persistence false'] },
  { name: 'Mosquitto autosave_interval 1', key: 'autosave1', config: ['persistence true', 'autosave_interval 1'] },
] as const;
type MosquittoMode = (typeof MOSQUITTO_MODES)[number];

/** Mosquitto as the edge: a local publisher at the same rate, a bridge to the cloud Mosquitto. */
async function mosquittoRun(o: Options, mode: MosquittoMode, ratePerSecond: number, label: string, rows: Row[]): Promise<void> {
  const cloudPort = await freePort();
  let cloud = await startMosquitto(`cloud-mq-${mode.key}-${label}`, cloudPort, CLOUD, o.smallBoard);
  const edgePort = await freePort();
  const edge = await startMosquitto(`edge-mq-${mode.key}-${label}`, edgePort, [
    ...mode.config,
    'connection cloud', `address 127.0.0.1:${cloudPort}`, 'topic # out 1 fieldgate/ fleet/gw/', 'cleansession false',
    'restart_timeout 1 1', 'bridge_attempt_unsubscribe false',
  ], o.smallBoard);
  const pid = edge.pid!;
  const atCloud = await counter(cloudPort, 'fleet/gw/#', true);
  const produced = await counter(edgePort, 'fieldgate/#');
  const pub = mqtt.connect(`mqtt://127.0.0.1:${edgePort}`, { clientId: 'bench-device' });
  await waitFor(() => pub.connected, 10_000, 'publisher');
  let seq = 0;
  const period = 1000 / ratePerSecond;
  const perTick = Math.max(1, Math.round(ratePerSecond / 50));
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) pub.publish(`fieldgate/meter/point${seq++ % 7}`, (230 + Math.random()).toFixed(3), { qos: 0, retain: true });
  }, period * perTick);
  await sleep(3000);
  rows.push({ what: `${mode.name}, ${label}, steady`, ...(await window(pid, o.seconds, atCloud.count)) });
  await stopProc(cloud);
  await sleep(2000);
  rows.push({ what: `${mode.name}, ${label}, outage (per message produced)`, ...(await window(pid, o.seconds, produced.count, produced.bytes)) });
  cloud = await startMosquitto(`cloud-mq-${mode.key}-${label}`, cloudPort, CLOUD, o.smallBoard);
  clearInterval(timer);
  pub.end(true);
  atCloud.client.end(true);
  produced.client.end(true);
  await stopProc(edge);
  await stopProc(cloud);
}

async function bareNodeRss(): Promise<ReturnType<typeof rssSplit>> {
  const proc = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.add(proc);
  await sleep(1500);
  const rss = rssSplit(proc.pid!);
  await stopProc(proc);
  return rss;
}

// ---------- report

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';
}

export async function run(args: string[]): Promise<void> {
  const o = parseArgs(args);
  ensureGatewayBuilt(root);
  const load0 = loadAverage();
  const rows: Row[] = [];
  let gatewayRss: ReturnType<typeof rssSplit> | undefined;
  const rates: Record<string, number> = {};
  for (const load of o.mosquittoOnly === undefined ? o.loads : []) {
    process.stdout.write(`fieldgate, load ${load} …\n`);
    const rss = await fieldgateRun(o, load, rows);
    if (rss !== undefined) gatewayRss = rss;
    const steady = rows.find((r) => r.what.startsWith('fieldgate') && r.what.includes(load === 'demo' ? 'demo' : '100') && r.what.includes('steady'))!;
    rates[load] = steady.messages / steady.seconds;
  }
  if (!o.skipMosquitto) {
    for (const load of o.loads) {
      for (const mode of MOSQUITTO_MODES) {
        process.stdout.write(`${mode.name}, load ${load} …\n`);
        await mosquittoRun(o, mode, Math.max(1, o.mosquittoOnly?.[load] ?? rates[load] ?? 3), load === 'demo' ? 'demo rate' : '100 readings/s', rows);
      }
    }
  }
  const bare = await bareNodeRss();
  const load1 = loadAverage();
  const lines: string[] = [];
  lines.push(`# Storage writes and footprint, ${new Date().toISOString().slice(0, 10)}`, '');
  const m = machineInfo();
  lines.push(`Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}. Load average before ${load0}, after ${load1}.`);
  lines.push(`Options: ${o.seconds} s windows, durability ${o.durability}${o.holdMs !== undefined ? `, holdMs ${o.holdMs}` : ''}${o.smallBoard ? ', small board (taskset -c 0, --max-old-space-size=96)' : ''}. \`npm run bench -- storage ${args.join(' ')}\`.`, '');
  lines.push('Bytes are `/proc/PID/io` write_bytes (sent to the block layer) and syscw (write system calls) of the one process: the gateway, or the edge Mosquitto. Steady and drain rows count messages received by the cloud Mosquitto; outage rows count messages produced (seen by a local subscriber).', '');
  lines.push('| scenario | messages | s | write_bytes | bytes / message | write calls / message | write calls / s | notes |', '|---|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    lines.push(`| ${r.what} | ${fmt(r.messages)} | ${fmt(r.seconds, 1)} | ${fmt(r.writeBytes)} | ${fmt(r.writeBytes / Math.max(1, r.messages), 1)} | ${fmt(r.syscw / Math.max(1, r.messages), 2)} | ${fmt(r.syscw / r.seconds, 1)} | ${r.extra ?? (r.what.includes('drain') ? `${fmt(r.messages / r.seconds)} msg/s` : '')} |`);
  }
  lines.push('');
  const ratio = (a: Row | undefined, b: Row | undefined) => (a && b && b.writeBytes > 0 ? fmt(a.writeBytes / Math.max(1, a.messages) / (b.writeBytes / Math.max(1, b.messages)), 2) : b && b.writeBytes === 0 ? '(Mosquitto wrote 0)' : '–');
  for (const load of o.loads) {
    const tag = load === 'demo' ? 'demo' : '100 readings';
    const fg = (k: string) => rows.find((r) => r.what.startsWith('fieldgate') && r.what.includes(tag) && r.what.includes(k));
    const mq = (name: string, k: string) => rows.find((r) => r.what.startsWith(`${name}, `) && r.what.includes(load === 'demo' ? 'demo rate' : '100 readings') && r.what.includes(k));
    const parts = MOSQUITTO_MODES.map((m) => `${m.name}: steady ${ratio(fg('steady'), mq(m.name, 'steady'))}, outage ${ratio(fg('outage'), mq(m.name, 'outage'))}`);
    lines.push(`Ratios of bytes per message, ${tag}, fieldgate ÷ ${parts.join('; ')}.`);
  }
  lines.push('');
  const mib = (k: number) => fmt(k / 1024, 1);
  const split = (r: ReturnType<typeof rssSplit>) => `${mib(r.rss)} MiB (node executable's pages ${mib(r.executable)}, anonymous ${mib(r.anonymous)})`;
  lines.push(`RSS at idle (after 10 s): gateway with the demo and one bridge ${gatewayRss !== undefined ? split(gatewayRss) : '–'}; bare Node ${process.version} ${split(bare)}.`);
  lines.push('', 'syscw counts every write-type system call of the process, sockets and pipes included, and with Node 20 also the io_uring submissions libuv makes for its own bookkeeping (about 250/s in an idle gateway; `UV_USE_IO_URING=0` takes them away): it is not a count of storage writes. write_bytes is.');
  const text = lines.join('\n') + '\n';
  process.stdout.write(`\n${text}`);
  if (o.write) {
    const file = join(root, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-storage${o.smallBoard ? '-small-board' : ''}.md`);
    writeFileSync(file, existsSync(file) ? readFileSync(file, 'utf8') + '\n' + text : text);
    process.stdout.write(`written to ${file}\n`);
  }
}
