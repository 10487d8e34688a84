// Runs fuzz cases over many sockets against a broker in its own process, with good clients and
// observers beside them, and checks the invariants: the process lives, good clients lose nothing
// and stay connected, every answer is valid and within its bound, memory returns near its baseline.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBroker, type ChildBroker, type ProcessMemory } from '../../helpers/child-broker.js';
import { describeCase, generateCase, type FuzzCase } from './case.js';
import { runCase, type Bounds, type CaseResult } from './fuzz-socket.js';
import { GoodClients } from './good-clients.js';
import { Observers } from './observers.js';

/** Broker settings of a fuzz run: a short connect timeout (so cut CONNECTs end quickly) and bounded sessions. */
export const FUZZ_BROKER_OPTIONS = {
  connectTimeoutMs: 1000,
  sysIntervalMs: 0,
  durability: 'normal',
  // Fuzz client ids come from a pool of 200; their persistent sessions must not pile up over a long run.
  persistentSessionExpiry: 2,
} as const;

export const DEFAULT_BOUNDS: Bounds = { answerMs: 1000 + 500 + 3500, keepAliveSlackMs: 500 + 3000, lingerMs: 60 };

export type FailureKind = 'crash' | 'good-client' | 'invalid-answer' | 'loss' | 'memory';

export interface Failure {
  kind: FailureKind;
  message: string;
  /** Cases that may have caused it (in start order); one when attributed. */
  cases: FuzzCase[];
  at?: number;
  /** After replay and minimisation, when done. */
  minimal?: { fuzzCase: FuzzCase; note: string };
}

export interface FuzzOptions {
  seed: number;
  /** More seeds run in the same broker, interleaved with `seed` (the CI mode: fixed seeds plus a random one). */
  moreSeeds?: number[];
  /** Cases per seed. */
  cases: number;
  startIndex?: number;
  /** How long to wait after the run before measuring memory (fuzz sessions expire meanwhile). */
  settleMs?: number;
  concurrency?: number;
  exclude?: readonly string[];
  bounds?: Bounds;
  /** QoS 1 messages per second per good publisher. */
  goodRate?: number;
  /** Growth of RSS (after GC) from the baseline (after a warm-up) to the end of the run that still counts as "near the baseline". */
  memoryBudgetBytes?: number;
  /** Every this many cases, let the cases in flight end, wait settleMs and log the broker's memory after a full GC (0: never). */
  probeEvery?: number;
  /** Stop launching cases after this long (the CI mode's wall-clock bound). */
  timeLimitMs?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  seeds: number[];
  casesRun: number;
  nextIndex: number;
  elapsedMs: number;
  casesPerSecond: number;
  crashed: boolean;
  /** Fuzz connections whose answers broke a rule (each distinct rule is one failure). */
  invalidAnswers: number;
  crashOutput: string;
  goodMessagesAcked: number;
  observerPackets: number;
  churnRounds: number;
  memory: { baselineRss: number; endRss: number; peakRss: number; baselineHeap: number; endHeap: number } | null;
  classCounts: Record<string, number>;
  failures: Failure[];
}

interface Environment {
  broker: ChildBroker;
  dataDir: string;
  good: GoodClients;
  observers: Observers;
  stderr: string[];
  crashed: boolean;
}

/** Broker processes of this run: killed when the runner exits, even on an uncaught error. */
const children = new Set<ChildBroker>();
process.once('exit', () => {
  for (const child of children) child.process.kill('SIGKILL');
});

async function startEnvironment(tag: string, full: boolean): Promise<Environment> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fieldgate-fuzz-'));
  const broker = await spawnBroker(dataDir, FUZZ_BROKER_OPTIONS as never);
  children.add(broker);
  void broker.exited.then(() => children.delete(broker));
  const env: Environment = { broker, dataDir, good: new GoodClients(broker.port, tag), observers: new Observers(tag), stderr: [], crashed: false };
  broker.process.stderr!.on('data', (chunk: Buffer) => { if (env.stderr.join('').length < 20_000) env.stderr.push(chunk.toString()); });
  void broker.exited.then(() => { env.crashed = true; });
  await env.good.start();
  if (full) await env.observers.start(broker.port);
  return env;
}

async function stopEnvironment(env: Environment): Promise<void> {
  env.observers.close();
  await env.good.close();
  if (!env.crashed) await env.broker.kill9();
  await rm(env.dataDir, { recursive: true, force: true });
}

/** A failure message without its numbers, hex and time stamps: failures with one cause share it. */
export const signature = (m: string) => m.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z /g, '').replace(/0x[0-9a-f]+|[0-9a-f]{6,}|\d+/gi, '#').slice(0, 48);

/** Cases before the memory baseline is taken (at most a tenth of the run). */
const WARM_UP_CASES = 2000;
const probeDetail = (options: FuzzOptions) => (options.probeEvery ?? 0) > 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const concurrency = options.concurrency ?? 32;
  const bounds = options.bounds ?? DEFAULT_BOUNDS;
  const start = options.startIndex ?? 0;
  const seeds = [options.seed, ...(options.moreSeeds ?? [])];
  const total = options.cases * seeds.length;
  const failures: Failure[] = [];
  const classCounts: Record<string, number> = {};
  const env = await startEnvironment(`s${options.seed}-${start}`, true);
  const { broker, good, observers } = env;
  await sleep(200);
  let base: ProcessMemory | null = null;
  let peakRss = broker.rss();
  good.startPublishing(options.goodRate ?? 200);
  good.startChurn();

  const inflight = new Set<FuzzCase>();
  const recent: Array<{ fuzzCase: FuzzCase; endedAt: number }> = [];
  const suspects = () => {
    const cutoff = Date.now() - 3000;
    const list = [...recent.filter((r) => r.endedAt >= cutoff).map((r) => r.fuzzCase), ...inflight];
    return list.sort((a, b) => a.index - b.index);
  };
  let goodProblemsSeen = 0;
  let invalidAnswers = 0;
  const seen = new Set<string>();
  let observerViolationsSeen = 0;
  let k = 0;
  let casesRun = 0;
  const startedAt = Date.now();
  const timeUp = () => options.timeLimitMs !== undefined && Date.now() - startedAt > options.timeLimitMs;
  const rssTimer = setInterval(() => {
    if (!env.crashed) try { peakRss = Math.max(peakRss, broker.rss()); } catch { /* gone */ }
  }, 250);

  const watch = () => {
    const problems = [...good.problems, ...observers.problems];
    if (problems.length > goodProblemsSeen) {
      failures.push({ kind: 'good-client', message: problems.slice(goodProblemsSeen).join('; '), cases: suspects(), at: Date.now() });
      goodProblemsSeen = problems.length;
    }
    const violations = observers.violations();
    if (violations.length > observerViolationsSeen) {
      failures.push({ kind: 'invalid-answer', message: violations.slice(observerViolationsSeen).join('; '), cases: suspects() });
      observerViolationsSeen = violations.length;
    }
  };

  let launchLimit = total;
  const worker = async () => {
    while (k < launchLimit && !env.crashed && !timeUp()) {
      const n = k++;
      const fuzzCase = generateCase(seeds[n % seeds.length], start + Math.floor(n / seeds.length), { exclude: options.exclude });
      for (const c of fuzzCase.classes) classCounts[c] = (classCounts[c] ?? 0) + 1;
      inflight.add(fuzzCase);
      const result: CaseResult = await runCase(broker.port, fuzzCase, bounds);
      inflight.delete(fuzzCase);
      recent.push({ fuzzCase, endedAt: result.endedAt });
      if (recent.length > concurrency * 8) recent.splice(0, recent.length - concurrency * 8);
      casesRun++;
      // One failure per distinct message (counted in `invalidAnswers`), so a run lists every kind it found.
      if (result.violations.length > 0) invalidAnswers++;
      if (result.violations.length > 0 && !env.crashed && !seen.has(signature(result.violations[0])) && seen.size < 60) {
        seen.add(signature(result.violations[0]));
        failures.push({ kind: 'invalid-answer', message: `${result.violations.join('; ')} (broker sent ${result.output})`, cases: [fuzzCase] });
      }
      watch();
      if (casesRun % 5000 === 0) log(`  ${casesRun} cases, ${Math.round(casesRun / ((Date.now() - startedAt) / 1000))}/s, rss ${(broker.rss() / 2 ** 20).toFixed(0)} MiB`);
    }
  };
  const crashWatch = broker.exited.then(() => suspects());
  const probeEvery = options.probeEvery ?? 0;
  // The memory baseline is taken after a warm-up, not on the idle process: V8 sizes its young generation
  // to the load (new space 4.8 → ~31 MiB committed within the first thousands of cases, then flat; seed 7,
  // 80,000 cases in one process), which is a plateau, not growth. It is measured with the observers'
  // connections closed: the one that never acknowledges makes the broker keep every QoS 1/2 message on
  // the fuzzed topics for it (~7,200 messages, ~17 MiB of payload per 20,000 cases, up to maxQueuedBytes),
  // as it must for a connected client; that is load the harness put there, released with its session.
  const warmUp = Math.min(WARM_UP_CASES, Math.floor(total / 10));
  const checkpoints = [...new Set([warmUp, ...(probeEvery > 0 ? Array.from({ length: Math.floor(total / probeEvery) }, (_, i) => (i + 1) * probeEvery) : []), total])]
    .filter((n) => n > 0 && n <= total).sort((a, b) => a - b);
  for (const checkpoint of checkpoints) {
    launchLimit = checkpoint;
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (env.crashed || timeUp() || checkpoint >= total) break;
    if (checkpoint === warmUp) {
      await sleep(options.settleMs ?? 3500);
      observers.close();
      await sleep(300);
      if (!env.crashed) base = await broker.memory(probeDetail(options));
      if (base && probeDetail(options)) log(`  baseline after a warm-up of ${casesRun} cases: ${formatMemory(base)}`);
      if (!env.crashed) await observers.start(broker.port);
    }
    if (probeEvery > 0 && checkpoint % probeEvery === 0) {
      await sleep(options.settleMs ?? 3500);
      if (!env.crashed) log(`  probe after ${casesRun} cases: ${formatMemory(await broker.memory(true))}`);
    }
  }
  const elapsedMs = Date.now() - startedAt;
  clearInterval(rssTimer);

  let memory: FuzzReport['memory'] = null;
  if (env.crashed) {
    const candidates = await crashWatch;
    // What the good clients and observers saw as the process died is the crash, not more failures.
    const exitSeen = Date.now();
    for (let i = failures.length - 1; i >= 0; i--) {
      if (failures[i].kind === 'good-client' && (failures[i].at ?? 0) > exitSeen - 2000) failures.splice(i, 1);
    }
    failures.unshift({ kind: 'crash', message: `the broker process exited (${await broker.exited}): ${env.stderr.join('').slice(-3000)}`, cases: candidates });
  } else {
    const { losses } = await good.stopAndVerify(20_000);
    if (!env.crashed) await good.lateSubscriber();
    await sleep(300);
    watch();
    for (const loss of losses) failures.push({ kind: 'loss', message: loss, cases: [] });
    if (!env.crashed) {
      // Sessions of fuzz clients expire after at most 2 s (5.0) or 2 s (3.1.1, persistentSessionExpiry): let the broker forget them.
      await sleep(options.settleMs ?? 3500);
      // As for the baseline: without the observers' queues (see the warm-up above).
      observers.close();
      await sleep(300);
      const after = await broker.memory(probeDetail(options));
      if (probeDetail(options)) log(`  probe at the end (observers closed): ${formatMemory(after)}`);
      base ??= after;
      memory = { baselineRss: base.rss, endRss: after.rss, peakRss, baselineHeap: base.heapUsed, endHeap: after.heapUsed };
      const budget = options.memoryBudgetBytes ?? 64 * 2 ** 20;
      if (after.rss - base.rss > budget) {
        failures.push({ kind: 'memory', message: `RSS after the run ${(after.rss / 2 ** 20).toFixed(1)} MiB vs baseline ${(base.rss / 2 ** 20).toFixed(1)} MiB (budget +${budget / 2 ** 20} MiB)`, cases: [] });
      }
    } else {
      const candidates = suspects();
      failures.unshift({ kind: 'crash', message: `the broker process exited after the cases (${await broker.exited}): ${env.stderr.join('').slice(-3000)}`, cases: candidates });
    }
  }
  const report: FuzzReport = {
    seed: options.seed, seeds, casesRun, nextIndex: start + Math.ceil(k / seeds.length), elapsedMs, casesPerSecond: casesRun / (elapsedMs / 1000), crashed: env.crashed,
    invalidAnswers, crashOutput: env.crashed ? env.stderr.join('').slice(-3000) : '', goodMessagesAcked: good.published, observerPackets: observers.received(),
    churnRounds: good.churnRounds, memory, classCounts, failures,
  };
  await stopEnvironment(env);
  return report;
}

/** Replays `cases` (one socket each, in order, a few at a time) against a fresh broker; says which failure kinds occurred. */
export async function replay(cases: FuzzCase[], bounds: Bounds = DEFAULT_BOUNDS): Promise<{ kinds: Set<FailureKind>; messages: string[] }> {
  const env = await startEnvironment(`replay${Date.now() % 100000}`, true);
  const kinds = new Set<FailureKind>();
  const messages: string[] = [];
  try {
    for (let i = 0; i < cases.length && !env.crashed; i += 4) {
      const results = await Promise.all(cases.slice(i, i + 4).map((c) => runCase(env.broker.port, c, bounds)));
      for (const r of results) if (r.violations.length) { kinds.add('invalid-answer'); messages.push(...r.violations); }
    }
    // Wills, retained messages and forwarded PUBLISHes reach the good clients a moment later.
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && !env.crashed) await sleep(50);
    if (!env.crashed) await env.good.lateSubscriber();
    await sleep(200);
  } finally {
    if (env.crashed) { kinds.add('crash'); messages.push(env.stderr.join('').slice(-400)); }
    if (env.good.problems.length || env.observers.problems.length) { kinds.add('good-client'); messages.push(...env.good.problems, ...env.observers.problems); }
    const v = env.observers.violations();
    if (v.length) { kinds.add('invalid-answer'); messages.push(...v); }
    await stopEnvironment(env);
  }
  return { kinds, messages };
}

/**
 * Narrows the suspects of a failure to one case (halving while one half still fails) and shrinks it
 * (drops packets, shortens long ones), within a budget of replays. Each replay is a fresh broker process.
 */
export async function minimise(failure: Failure, budget: number, log: (s: string) => void = () => {}, timeLimitMs = Infinity): Promise<void> {
  let replays = 0;
  const deadline = Date.now() + timeLimitMs;
  // The same failure, not any: the first message with numbers and hex taken out (crashes: any crash).
  const wanted = signature(failure.message.split('; ')[0]);
  const fails = async (cases: FuzzCase[]) => {
    if (Date.now() > deadline) return false;
    replays++;
    const { kinds, messages } = await replay(cases);
    if (!kinds.has(failure.kind)) return false;
    return failure.kind === 'crash' || messages.some((m) => signature(m.replace(/^observer [^:]+: /, '')).startsWith(wanted.replace(/^observer [^:]+: /, '')));
  };
  let current = failure.cases;
  if (current.length === 0) return;
  if (current.length > 1 && !(await fails(current))) {
    failure.minimal = { fuzzCase: current[0], note: `did not reproduce when the ${current.length} suspects were replayed alone` };
    return;
  }
  while (current.length > 1 && replays < budget) {
    const half = Math.ceil(current.length / 2);
    const [a, b] = [current.slice(0, half), current.slice(half)];
    if (await fails(a)) current = a;
    else if (await fails(b)) current = b;
    else break;
    log(`  narrowed to ${current.length} case(s) after ${replays} replays`);
  }
  if (current.length > 1) {
    failure.minimal = { fuzzCase: current[0], note: `needs several of ${current.length} cases together: ${current.map((c) => c.index).join(',')}` };
    return;
  }
  let c = current[0];
  if (failure.cases.length === 1 && !(await fails([c]))) {
    failure.minimal = { fuzzCase: c, note: 'did not reproduce on replay' };
    return;
  }
  // Drop packets, last first.
  for (let i = c.frames.length - 1; i >= 0 && c.frames.length > 1 && replays < budget; i--) {
    const trial = { ...c, frames: c.frames.filter((_, j) => j !== i), names: c.names.filter((_, j) => j !== i) };
    if (await fails([trial])) c = trial;
  }
  // Shorten long packets (byte storms, long topics) by halves.
  for (let i = 0; i < c.frames.length && replays < budget; i++) {
    while (c.frames[i].length > 64 && replays < budget) {
      const frames = [...c.frames];
      frames[i] = frames[i].subarray(0, Math.ceil(frames[i].length / 2));
      const trial = { ...c, frames };
      if (await fails([trial])) c = trial;
      else break;
    }
  }
  failure.minimal = { fuzzCase: c, note: `minimal after ${replays} replays` };
}

export function formatFailure(f: Failure): string {
  const lines = [`[${f.kind}] ${f.message.slice(0, 2000)}`];
  if (f.minimal) lines.push(`  reproducer (${f.minimal.note}): ${describeCase(f.minimal.fuzzCase)}`);
  else if (f.cases.length === 1) lines.push(`  case: ${describeCase(f.cases[0])}`);
  else if (f.cases.length > 1) lines.push(`  ${f.cases.length} suspects: cases ${f.cases[0].index}…${f.cases[f.cases.length - 1].index}`);
  return lines.join('\n');
}

function formatMemory(m: ProcessMemory): string {
  const mib = (b: number | undefined) => (b === undefined ? '?' : (b / 2 ** 20).toFixed(1));
  const d = m.detail ?? {};
  const spaces = Object.entries(d).filter(([k]) => k.startsWith('v8.')).map(([k, v]) => `${k.slice(3).replace('_space', '')} ${mib(v)}`).join(', ');
  return `rss ${mib(m.rss)} MiB, heap used ${mib(m.heapUsed)} / total ${mib(m.heapTotal)} MiB (${spaces}), external ${mib(m.external)} MiB, arrayBuffers ${mib(m.arrayBuffers)} MiB; `
    + `sessions ${d.sessions}, queued ${d.queuedMessages} (${mib(d.queuedBytes)} MiB${Object.entries(d).filter(([k]) => k.startsWith('queue:')).map(([k, v]) => `; ${k.slice(6)} ${v}`).join('')}), retained ${d.retainedMessages} (${mib(d.retainedBytes)} MiB), connections ${d.connections}`;
}

export function formatReport(r: FuzzReport): string {
  const count = (k: FailureKind) => r.failures.filter((f) => f.kind === k).length;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return [
    `seed ${r.seeds.join(', ')}: ${r.casesRun} cases in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.casesPerSecond.toFixed(0)} cases/s)`,
    `  crashes ${r.crashed ? 1 : 0}, good-client disconnections/refusals ${count('good-client')}, losses ${count('loss')}, invalid answers ${r.invalidAnswers} connections (${count('invalid-answer')} distinct), memory ${count('memory')}`,
    `  good QoS 1 messages acknowledged ${r.goodMessagesAcked}, observer packets ${r.observerPackets}, churn rounds ${r.churnRounds}`,
    r.memory ? `  memory: RSS ${mib(r.memory.baselineRss)} -> ${mib(r.memory.endRss)} (peak ${mib(r.memory.peakRss)}), heap ${mib(r.memory.baselineHeap)} -> ${mib(r.memory.endHeap)}` : '  memory: n/a',
    `  classes: ${Object.entries(r.classCounts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ].join('\n');
}
