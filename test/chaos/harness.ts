// The chaos run: the whole gateway as a child process (`node bin/fieldgate.js run --config …`),
// a real Mosquitto as the cloud, QoS 1 publishers (3.1.1 and 5.0), persistent local subscribers,
// a Modbus TCP device that answers, hangs or refuses, and kill -9 / SIGTERM at random moments
// (during start-up and during stop too), cloud outages while a backlog builds, and one disk-full
// episode. At the end, after a bounded drain, every acknowledged message must have reached the cloud
// subscriber and every persistent local subscriber, in order per publisher (see ledger.ts).
//
// Used by test/chaos/chaos.test.ts (CI, about a minute) and bench/chaos/run.ts (long mode).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { ensureBuilt, freePort, ROOT } from '../gateway/helpers.js';
import { hasAll, judge, record, type PublisherRecord, type ReceiverRecord, type ReceiverVerdict } from './ledger.js';
import { judgeHeld, type HoldRunRecord, type HoldVerdict } from './hold-ledger.js';
import { CloudMosquitto, ControllableDevice, sleep, type DeviceMode } from './peers.js';

export interface ChaosOptions {
  seed: number;
  /** How long the chaos phase lasts at least (the drain comes after). */
  durationMs: number;
  /** Keep going past durationMs until this many kill -9s and SIGTERMs happened (long mode). */
  minKills?: number;
  minSigterms?: number;
  durability?: 'full' | 'normal' | 'off';
  commitWindowMs?: number;
  /** The bridge's hold.ms (0: everything written first); undefined: the gateway's default. */
  holdMs?: number;
  /** QoS 0 messages per second (nobody waits for them: the hold stage's kind) checked by hold-ledger.ts; 0: none. */
  holdCheckRate?: number;
  /** Publishers, alternating MQTT 3.1.1 and 5.0. */
  publishers?: number;
  /** Messages per second per publisher. */
  rate?: number;
  /** Unacknowledged messages one publisher may have outstanding. */
  publisherWindow?: number;
  /** One disk-full episode (needs root for a size-limited tmpfs); 'auto': when root. */
  diskFull?: boolean | 'auto';
  outages?: boolean;
  /** Mean time the gateway runs between incidents. */
  meanUptimeMs?: number;
  drainTimeoutMs?: number;
  /** Another checkout's root (with dist/ built) to run instead of this one, e.g. an old commit for comparison. */
  appRoot?: string;
  /** Keep the work directory (logs, databases) for a look after the run. */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  durability: string;
  holdMs: number | null;
  durationMs: number;
  starts: number;
  kills: number;
  killsDuringStartup: number;
  killsDuringStop: number;
  sigterms: number;
  sigtermExitCodes: Record<string, number>;
  stopMs: { max: number; p50: number };
  outages: number;
  diskFull: { episodes: number; skipped?: string; refusedV5: number; gatewayAliveThroughout: boolean | null };
  sent: number;
  acknowledged: number;
  refused: number;
  lost: number;
  reordered: number;
  duplicates: number;
  duplicateBound: number;
  verdicts: ReceiverVerdict[];
  /** QoS 0 messages (held, not acknowledged to anyone): lost only to a kill -9 shortly after they were routed. */
  held: HoldVerdict;
  /** Time from a gateway start to the first message the cloud subscriber got after it (cloud up). */
  firstCloudDeliveryMs: { count: number; p50: number; max: number };
  drained: boolean;
  drainMs: number;
  workDir: string;
}

/** A small deterministic generator (mulberry32): the seed printed reproduces the schedule. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface GatewayRun {
  child: ChildProcess;
  record: HoldRunRecord;
  startedAt: number;
  readyAt: number | null;
  exited: Promise<{ code: number | null; signal: string | null }>;
  ready: Promise<boolean>;
}

const LOCAL_SUBSCRIBERS = [
  { name: 'local-v4', clientId: 'chaos-sub-v4', protocolVersion: 4 as const },
  { name: 'local-v5', clientId: 'chaos-sub-v5', protocolVersion: 5 as const },
];
const BROKER_INFLIGHT = 32;
const BRIDGE_WINDOW = 64;
const CLOUD_INFLIGHT = 20;
const ACK_TIMEOUT_S = 10;
/** The gateway's default hold.ms, for the allowed loss window when the run does not set one. */
const DEFAULT_HOLD_MS = 1000;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const random = rng(options.seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (lo: number, hi: number) => lo + random() * (hi - lo);
  const durability = options.durability ?? 'full';
  const publisherCount = options.publishers ?? 4;
  const rate = options.rate ?? 100;
  const publisherWindow = options.publisherWindow ?? 16;
  const meanUptimeMs = options.meanUptimeMs ?? 1500;
  const outagesOn = options.outages ?? true;
  log(`chaos: seed ${options.seed}, durability ${durability}, hold ${options.holdMs ?? 'default'}, ${publisherCount} publishers at ${rate}/s, ${options.durationMs} ms`);

  if (options.appRoot === undefined) ensureBuilt();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-chaos-'));
  const bin = privateCopy(workDir, options.appRoot ?? ROOT);
  const dataDir = path.join(workDir, 'data');
  fs.mkdirSync(dataDir);
  let mounted = false;
  let diskFullSkipped: string | undefined;
  const wantDiskFull = options.diskFull === 'auto' || options.diskFull === undefined ? process.getuid?.() === 0 : options.diskFull;
  if (wantDiskFull) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', dataDir], { stdio: 'pipe' });
      mounted = true;
    } catch (error) {
      diskFullSkipped = `cannot mount a tmpfs for the data directory: ${(error as Error).message.split('\n')[0]}`;
    }
  } else diskFullSkipped = process.getuid?.() === 0 ? 'disabled' : 'not root: no size-limited filesystem to fill';
  if (diskFullSkipped) log(`chaos: disk-full episode skipped (${diskFullSkipped})`);

  const [brokerPort, cloudPort, devicePort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const cloud = new CloudMosquitto(cloudPort, path.join(workDir, 'cloud'));
  const device = new ControllableDevice(devicePort, options.seed);
  const gatewayLog = fs.openSync(path.join(workDir, 'gateway.log'), 'a');
  const deviceFile = path.join(workDir, 'device.json');
  fs.writeFileSync(deviceFile, JSON.stringify({
    buses: [{ id: 'meter-bus', type: 'modbus-tcp', host: '127.0.0.1', port: devicePort }],
    devices: [{
      id: 'meter', bus: 'meter-bus', unitId: 1, pollIntervalMs: 250, timeoutMs: 500, offlinePollIntervalMs: 1000,
      points: [
        { name: 'voltage', table: 'input', address: 0, type: 'float32', decimals: 1 },
        { name: 'power', table: 'input', address: 12, type: 'float32', decimals: 0 },
      ],
    }],
  }));
  const configFile = path.join(workDir, 'fieldgate.json');
  fs.writeFileSync(configFile, JSON.stringify({
    gatewayId: 'chaos',
    broker: {
      host: '127.0.0.1', port: brokerPort, dataDir, durability, sysIntervalSeconds: 1,
      maxInflightMessages: BROKER_INFLIGHT, ...(options.commitWindowMs !== undefined ? { commitWindowMs: options.commitWindowMs } : {}),
    },
    devices: [deviceFile],
    bridges: [{
      name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'chaos-gateway', protocolVersion: 5,
      cleanSession: false, sessionExpirySeconds: 3600, inflightWindow: BRIDGE_WINDOW,
      reconnect: { minMs: 200, maxMs: 1000 }, connectTimeoutMs: 3000, ackTimeoutSeconds: ACK_TIMEOUT_S,
      ...(options.holdMs !== undefined ? { hold: { ms: options.holdMs } } : {}),
      rules: [
        { direction: 'out', filter: 'chaos/#', remotePrefix: 'edge/' },
        { direction: 'out', filter: 'fieldgate/#', remotePrefix: 'edge/' },
        { direction: 'out', filter: 'hold/#', remotePrefix: 'edge/' },
      ],
    }],
    metrics: { host: '127.0.0.1', port: metricsPort },
  }, null, 2));

  // ---- the gateway process
  let current: GatewayRun | null = null;
  let starts = 0;
  const runRecords: HoldRunRecord[] = [];
  const startTimes: number[] = [];
  const spawnGateway = (): GatewayRun => {
    const child = spawn(process.execPath, [bin, 'run', '--config', configFile, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    starts++;
    const runRecord: HoldRunRecord = { startedAt: Date.now(), endedAt: null, end: null };
    runRecords.push(runRecord);
    // How the run ends decides which held messages it may lose: note each signal the harness sends.
    let sentTerm = false;
    const kill = child.kill.bind(child);
    child.kill = ((signal?: NodeJS.Signals | number) => {
      if (child.exitCode === null && child.signalCode === null) {
        if (signal === 'SIGTERM' && runRecord.endedAt === null) { sentTerm = true; runRecord.endedAt = Date.now(); }
        if (signal === 'SIGKILL') runRecord.endedAt = Date.now();
      }
      return kill(signal);
    }) as typeof child.kill;
    child.once('exit', (_code, signal) => {
      runRecord.end = signal === 'SIGKILL' ? 'kill' : sentTerm ? 'term' : 'crash';
      runRecord.endedAt ??= Date.now();
    });
    const run: GatewayRun = {
      child, record: runRecord, startedAt: runRecord.startedAt, readyAt: null,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
      ready: Promise.resolve(false),
    };
    startTimes.push(run.startedAt);
    fs.writeSync(gatewayLog, `\n==== start ${starts} at ${new Date(run.startedAt).toISOString()} pid ${child.pid}\n`);
    let pending = '';
    run.ready = new Promise<boolean>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        fs.writeSync(gatewayLog, chunk);
        pending += chunk.toString();
        if (run.readyAt === null && pending.includes('MQTT broker listening')) {
          run.readyAt = Date.now();
          resolve(true);
        }
        if (pending.length > 10_000) pending = pending.slice(-2000);
      });
      child.once('exit', () => resolve(false));
    });
    child.stderr!.on('data', (chunk: Buffer) => fs.writeSync(gatewayLog, chunk));
    return run;
  };
  const alive = (run: GatewayRun | null) => run !== null && run.child.exitCode === null && run.child.signalCode === null;

  // ---- receivers
  const receivers: ReceiverRecord[] = [
    { name: 'cloud', received: new Map() },
    ...LOCAL_SUBSCRIBERS.map((s) => ({ name: s.name, received: new Map<string, number[]>() })),
  ];
  const firstDeliveries: number[] = [];
  let awaitingFirstCloud: number | null = null;
  const onMessage = (receiver: ReceiverRecord) => (topic: string, payload: Buffer) => {
    const match = /chaos\/(p\d+)$/.exec(topic);
    if (!match) return;
    const seq = Number(payload.toString().split(':')[1]);
    record(receiver, match[1]!, seq);
    if (receiver.name === 'cloud' && awaitingFirstCloud !== null) {
      firstDeliveries.push(Date.now() - awaitingFirstCloud);
      awaitingFirstCloud = null;
    }
  };
  const clients: MqttClient[] = [];
  // ---- QoS 0 messages (held by the bridge, nobody waits for them): when routed, and which reached the cloud
  const holdCheckRate = options.holdCheckRate ?? 20;
  const heldObservedAt = new Map<number, number>();
  const heldAtCloud = new Set<number>();
  let heldPublished = 0;
  const heldSeq = (payload: Buffer) => Number(payload.toString().split(':')[1]);

  // ---- publishers
  const publishers: (PublisherRecord & { client: MqttClient; outstanding: number; refused: number })[] = [];
  let publishing = true;
  let totalSent = 0;

  let kills = 0, killsDuringStartup = 0, killsDuringStop = 0, sigterms = 0, outages = 0, diskEpisodes = 0;
  const sigtermExitCodes: Record<string, number> = {};
  const stopDurations: number[] = [];
  let gatewayAliveThroughDisk: boolean | null = null;
  let drained = false;
  let drainMs = 0;
  const started = Date.now();
  const stopTimers: (() => void)[] = [];

  try {
    await cloud.start();
    await device.setMode('blackhole');
    const cloudSub = mqtt.connect({ host: '127.0.0.1', port: cloudPort, clientId: 'chaos-cloud-sub', clean: false, protocolVersion: 4, reconnectPeriod: 200, connectTimeout: 3000 });
    cloudSub.on('error', () => undefined);
    cloudSub.on('message', onMessage(receivers[0]!));
    cloudSub.on('message', (topic, payload) => { if (topic === 'edge/hold/q0') heldAtCloud.add(heldSeq(payload)); });
    clients.push(cloudSub);
    await waitUntil(() => cloudSub.connected, 'cloud subscriber connected', 15_000);
    await cloudSub.subscribeAsync('edge/chaos/#', { qos: 1 });
    await cloudSub.subscribeAsync('edge/hold/#', { qos: 1 });

    current = spawnGateway();
    if (!(await current.ready)) throw new Error(`the gateway did not start; see ${workDir}/gateway.log`);
    LOCAL_SUBSCRIBERS.forEach((s, i) => {
      const client = mqtt.connect({
        host: '127.0.0.1', port: brokerPort, clientId: s.clientId, clean: false, protocolVersion: s.protocolVersion,
        reconnectPeriod: 100, connectTimeout: 3000,
        ...(s.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
      });
      client.on('error', () => undefined);
      client.on('message', onMessage(receivers[i + 1]!));
      clients.push(client);
    });
    for (const client of clients.slice(1)) {
      await waitUntil(() => client.connected, 'local subscriber connected', 30_000);
      await client.subscribeAsync('chaos/#', { qos: 1 });
    }
    // The bridge's durable subscription exists once the bridge connected once: before that a
    // message would not be in its outbox on main's code either way; wait for it so the first
    // publish is covered by the promise.
    await waitUntil(() => fs.readFileSync(path.join(workDir, 'gateway.log'), 'utf8').includes('bridge connected'), 'bridge connected', 30_000);

    for (let i = 0; i < publisherCount; i++) {
      const protocolVersion = i % 2 === 0 ? 4 : 5;
      const client = mqtt.connect({
        host: '127.0.0.1', port: brokerPort, clientId: `chaos-pub-${i}`, clean: true, protocolVersion,
        reconnectPeriod: 100, connectTimeout: 3000, resubscribe: false,
      });
      client.on('error', () => undefined);
      clients.push(client);
      publishers.push({ id: `p${i}`, acked: new Set(), lastSent: 0, client, outstanding: 0, refused: 0 });
    }
    const publishTimer = setInterval(() => {
      if (!publishing) return;
      for (const p of publishers) {
        if (p.outstanding >= publisherWindow || !p.client.connected) continue;
        const seq = ++p.lastSent;
        p.outstanding++;
        totalSent++;
        p.client.publish(`chaos/${p.id}`, `${p.id}:${seq}:${'x'.repeat(32)}`, { qos: 1 }, (error, packet) => {
          p.outstanding--;
          const reason = (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
          if (!error && reason < 0x80) p.acked.add(seq);
          else p.refused++;
        });
      }
    }, Math.max(1, Math.round(1000 / rate)));
    stopTimers.push(() => clearInterval(publishTimer));

    if (holdCheckRate > 0) {
      // A local subscriber sees each QoS 0 message in the turn the broker routes it to the bridge's subscription.
      const observer = mqtt.connect({ host: '127.0.0.1', port: brokerPort, clientId: 'chaos-q0-observer', clean: true, protocolVersion: 4, reconnectPeriod: 100, connectTimeout: 3000 });
      observer.on('error', () => undefined);
      observer.on('connect', () => observer.subscribe('hold/#', { qos: 0 }));
      observer.on('message', (topic, payload) => {
        if (topic !== 'hold/q0') return;
        const seq = heldSeq(payload);
        if (!heldObservedAt.has(seq)) heldObservedAt.set(seq, Date.now());
      });
      clients.push(observer);
      const q0 = mqtt.connect({ host: '127.0.0.1', port: brokerPort, clientId: 'chaos-q0', clean: true, protocolVersion: 4, reconnectPeriod: 100, connectTimeout: 3000 });
      q0.on('error', () => undefined);
      clients.push(q0);
      const q0Timer = setInterval(() => {
        if (!publishing || !q0.connected || !observer.connected) return;
        q0.publish('hold/q0', `q0:${++heldPublished}:${'y'.repeat(32)}`, { qos: 0 });
      }, Math.max(1, Math.round(1000 / holdCheckRate)));
      stopTimers.push(() => clearInterval(q0Timer));
    }

    // Device moods change on their own schedule, as real meters do.
    let deviceTimer: NodeJS.Timeout;
    const moodSwing = () => {
      // A device that black-holes connects is the one that held start and stop up (issue 9): often.
      const mode = pick<DeviceMode>(['ok', 'ok', 'mute', 'refuse', 'blackhole', 'blackhole']);
      void device.setMode(mode).catch((error: Error) => log(`chaos: device mode ${mode} failed: ${error.message}`));
      deviceTimer = setTimeout(moodSwing, between(1000, 4000));
    };
    deviceTimer = setTimeout(moodSwing, between(500, 2000));
    stopTimers.push(() => clearTimeout(deviceTimer));

    // Cloud outages while the backlog builds, on their own schedule too.
    let outageBusy = Promise.resolve();
    let outageTimer: NodeJS.Timeout | undefined;
    const outage = () => {
      outageBusy = (async () => {
        outages++;
        // A restart that overlaps an outage says nothing about the gateway's own start: not timed.
        awaitingFirstCloud = null;
        await cloud.stop();
        await sleep(between(1000, 4000));
        await cloud.start();
      })().catch((error: Error) => log(`chaos: outage failed: ${error.message}`));
      outageTimer = setTimeout(outage, between(4000, 10_000));
    };
    if (outagesOn) outageTimer = setTimeout(outage, between(2000, 5000));
    stopTimers.push(() => clearTimeout(outageTimer));

    const diskAt = started + options.durationMs * 0.5;
    let diskDone = !mounted;
    const enoughIncidents = () => kills >= (options.minKills ?? 0) && sigterms >= (options.minSigterms ?? 0);

    // ---- the kill loop
    let lastProgress = Date.now();
    while (Date.now() - started < options.durationMs || !enoughIncidents()) {
      if (Date.now() - lastProgress >= 60_000) {
        lastProgress = Date.now();
        const ackedSoFar = publishers.reduce((n, p) => n + p.acked.size, 0);
        log(`chaos: ${Math.round((Date.now() - started) / 1000)} s: starts ${starts}, kill -9 ${kills}, SIGTERM ${sigterms}, outages ${outages}, acknowledged ${ackedSoFar}`);
      }
      if (Date.now() - started > Math.max(options.durationMs * 20, options.durationMs + 3_600_000)) break;
      if (!diskDone && Date.now() >= diskAt) {
        diskDone = true;
        // A running gateway whose disk fills (one that starts on a full disk exits: it cannot open the WAL).
        if (!alive(current)) current = spawnGateway();
        await current!.ready;
        await sleep(500);
        gatewayAliveThroughDisk = await diskFullEpisode(dataDir, () => alive(current), log);
        diskEpisodes++;
      }
      const run = current!;
      const duringStartup = random() < 0.2;
      if (duringStartup) {
        await sleep(between(0, 800));
        if (alive(run) && run.readyAt === null) killsDuringStartup++;
        if (alive(run)) { run.child.kill('SIGKILL'); kills++; }
      } else {
        await run.ready;
        awaitingFirstCloud = cloud.running ? run.startedAt : null;
        await sleep(between(meanUptimeMs * 0.3, meanUptimeMs * 1.7));
        if (!alive(run)) {
          // It exited by itself: that is a crash, and the log says why.
          log(`chaos: the gateway exited by itself (${run.child.exitCode ?? run.child.signalCode}); see ${workDir}/gateway.log`);
        } else if (random() < 0.7) {
          run.child.kill('SIGKILL');
          kills++;
        } else {
          const t0 = Date.now();
          run.child.kill('SIGTERM');
          sigterms++;
          if (random() < 0.3) {
            await sleep(between(0, 400));
            if (alive(run)) { run.child.kill('SIGKILL'); kills++; killsDuringStop++; }
          } else {
            const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
            const { code, signal } = await run.exited;
            clearTimeout(timer);
            stopDurations.push(Date.now() - t0);
            const key = String(code ?? signal);
            sigtermExitCodes[key] = (sigtermExitCodes[key] ?? 0) + 1;
          }
        }
      }
      await run.exited;
      awaitingFirstCloud = null;
      await sleep(between(0, 300));
      current = spawnGateway();
      awaitingFirstCloud = cloud.running ? current.startedAt : null;
    }

    // ---- the drain: no more incidents, everything up, no new messages
    stopTimers.forEach((stop) => stop());
    stopTimers.length = 0;
    await outageBusy;
    await cloud.start();
    await device.setMode('ok');
    if (!alive(current)) current = spawnGateway();
    await current!.ready;
    const drainStart = Date.now();
    const drainTimeout = options.drainTimeoutMs ?? 60_000;
    publishing = false;
    try {
      await waitUntil(() => publishers.every((p) => p.outstanding === 0), 'every publisher has its PUBACKs', drainTimeout);
      // Bounded: the whole timeout, or 15 s in which nothing new arrived anywhere (what is missing then stays missing).
      let lastCount = -1;
      let lastProgress = Date.now();
      await waitUntil(() => {
        if (receivers.every((r) => hasAll(r, publishers))) return true;
        const count = receivers.reduce((n, r) => n + [...r.received.values()].reduce((m, l) => m + l.length, 0), 0);
        if (count !== lastCount) { lastCount = count; lastProgress = Date.now(); }
        if (Date.now() - lastProgress > 15_000) throw new Error('no new message for 15 s while some acknowledged ones are missing');
        return false;
      }, 'every receiver has every acknowledged message', Math.max(5000, drainTimeout - (Date.now() - drainStart)));
      drained = true;
    } catch (error) {
      log(`chaos: drain incomplete: ${(error as Error).message}`);
    }
    // The QoS 0 messages routed by this last run: they are sent now (bounded: 15 s without one arriving).
    const lastStart = current!.record.startedAt;
    let heldProgress = Date.now();
    let heldCount = heldAtCloud.size;
    await waitUntil(() => {
      if ([...heldObservedAt].every(([seq, at]) => at < lastStart || heldAtCloud.has(seq))) return true;
      if (heldAtCloud.size !== heldCount) { heldCount = heldAtCloud.size; heldProgress = Date.now(); }
      return Date.now() - heldProgress > 15_000;
    }, 'the last run\'s QoS 0 messages at the cloud', 60_000).catch(() => undefined);
    drainMs = Date.now() - drainStart;
    // A little longer, so late duplicates are counted too.
    await sleep(500);
  } finally {
    stopTimers.forEach((stop) => stop());
    for (const client of clients) client.end(true);
    if (alive(current)) {
      current!.child.kill('SIGTERM');
      const timer = setTimeout(() => current!.child.kill('SIGKILL'), 10_000);
      await current!.exited;
      clearTimeout(timer);
    }
    await cloud.stop();
    await device.close();
    fs.closeSync(gatewayLog);
    if (mounted) {
      try { execFileSync('umount', ['-l', dataDir], { stdio: 'pipe' }); } catch { /* left for the OS */ }
    }
    if (!options.keep) fs.rmSync(workDir, { recursive: true, force: true });
  }

  const verdicts = receivers.map((r) => judge(r, publishers));
  // A kill -9 may cost what was held (hold.ms) and what was in flight on a connection that did not answer (the ack
  // timeout); 2 s more for a loaded machine's late timers.
  const held = judgeHeld(heldPublished, heldObservedAt, heldAtCloud, runRecords, (options.holdMs ?? DEFAULT_HOLD_MS) + ACK_TIMEOUT_S * 1000 + 2000);
  const acknowledged = publishers.reduce((n, p) => n + p.acked.size, 0);
  // Per incident, a receiver may see again what was in flight towards it, plus what publishers
  // resend because their PUBACK was lost: the windows of every hop.
  const incidents = starts + outages + 1;
  const duplicateBound = incidents * (publisherCount * publisherWindow + BROKER_INFLIGHT + BRIDGE_WINDOW + CLOUD_INFLIGHT);
  const sortedStops = [...stopDurations].sort((a, b) => a - b);
  const sortedFirst = [...firstDeliveries].sort((a, b) => a - b);
  return {
    seed: options.seed, durability, holdMs: options.holdMs ?? null, durationMs: Date.now() - started, starts, kills, killsDuringStartup, killsDuringStop, sigterms, sigtermExitCodes,
    stopMs: { max: sortedStops.at(-1) ?? 0, p50: sortedStops[Math.floor(sortedStops.length / 2)] ?? 0 },
    outages,
    diskFull: { episodes: diskEpisodes, skipped: diskFullSkipped, refusedV5: publishers.filter((_, i) => i % 2 === 1).reduce((n, p) => n + p.refused, 0), gatewayAliveThroughout: gatewayAliveThroughDisk },
    sent: totalSent, acknowledged, refused: publishers.reduce((n, p) => n + p.refused, 0),
    lost: verdicts.reduce((n, v) => n + v.lost, 0),
    reordered: verdicts.reduce((n, v) => n + v.reordered, 0),
    duplicates: verdicts.reduce((n, v) => n + v.duplicates, 0),
    duplicateBound, verdicts, held,
    firstCloudDeliveryMs: { count: sortedFirst.length, p50: sortedFirst[Math.floor(sortedFirst.length / 2)] ?? 0, max: sortedFirst.at(-1) ?? 0 },
    drained, drainMs, workDir,
  };
}

/**
 * The gateway runs from a copy of bin/ and dist/ taken at the start: a build during a long run
 * (another test's ensureBuilt after an edit) must not hand a restart half-written modules.
 */
function privateCopy(workDir: string, root: string): string {
  const app = path.join(workDir, 'app');
  fs.mkdirSync(app);
  fs.cpSync(path.join(root, 'dist'), path.join(app, 'dist'), { recursive: true });
  fs.cpSync(path.join(root, 'bin'), path.join(app, 'bin'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'));
  return path.join(app, 'bin', 'fieldgate.js');
}

/** Fills the data directory's filesystem, holds it full for a while, frees it. Returns whether the gateway lived through it. */
async function diskFullEpisode(dataDir: string, gatewayAlive: () => boolean, log: (line: string) => void): Promise<boolean> {
  const filler = path.join(dataDir, 'filler');
  log('chaos: disk-full episode: filling the data filesystem');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'pipe' });
  } catch {
    // dd stops with "No space left on device": that is the point.
  }
  let aliveThroughout = gatewayAlive();
  for (let i = 0; i < 30; i++) {
    await sleep(100);
    aliveThroughout &&= gatewayAlive();
  }
  fs.rmSync(filler, { force: true });
  log('chaos: disk-full episode: space freed');
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    aliveThroughout &&= gatewayAlive();
  }
  return aliveThroughout;
}

async function waitUntil(probe: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function formatReport(r: ChaosReport): string {
  const lines = [
    `chaos report (seed ${r.seed}, durability ${r.durability}, hold ${r.holdMs ?? 'default'}, ${Math.round(r.durationMs / 1000)} s)`,
    `  gateway starts ${r.starts}, kill -9 ${r.kills} (during start-up ${r.killsDuringStartup}, during stop ${r.killsDuringStop}), SIGTERM ${r.sigterms} (exit ${JSON.stringify(r.sigtermExitCodes)}; stop p50 ${r.stopMs.p50} ms, max ${r.stopMs.max} ms)`,
    `  cloud outages ${r.outages}; disk-full episodes ${r.diskFull.episodes}${r.diskFull.skipped ? ` (skipped: ${r.diskFull.skipped})` : `, gateway alive throughout: ${r.diskFull.gatewayAliveThroughout}`}`,
    `  messages sent ${r.sent}, acknowledged ${r.acknowledged}, refused/unacknowledged ${r.refused}`,
    `  LOST ${r.lost}, reordered ${r.reordered}, duplicates ${r.duplicates} (bound ${r.duplicateBound})`,
    `  QoS 0 (held): published ${r.held.published}, routed ${r.held.observed}, at the cloud ${r.held.atCloud}, routed in runs ended by SIGTERM ${r.held.inTermRuns}, lost to a kill -9 ${r.held.lostToKill} (at most ${r.held.lostToKillMaxAgeMs} ms before it), LOST otherwise ${r.held.lostUnexcused}${r.held.unexcusedSamples.length ? ` e.g. ${r.held.unexcusedSamples.join('; ')}` : ''}`,
    ...r.verdicts.map((v) => `    ${v.receiver}: received ${v.received}, lost ${v.lost}${v.lostSamples.length ? ` e.g. ${v.lostSamples.join(' ')}` : ''}, reordered ${v.reordered}${v.reorderSamples.length ? ` e.g. ${v.reorderSamples.join('; ')}` : ''}, duplicates ${v.duplicates}, unacknowledged delivered ${v.unacknowledgedDelivered}`),
    `  restart to first cloud delivery: ${r.firstCloudDeliveryMs.count} restarts, p50 ${r.firstCloudDeliveryMs.p50} ms, max ${r.firstCloudDeliveryMs.max} ms`,
    `  drain ${r.drained ? 'complete' : 'INCOMPLETE'} in ${r.drainMs} ms${r.workDir ? `; work dir ${r.workDir}` : ''}`,
  ];
  return lines.join('\n');
}
