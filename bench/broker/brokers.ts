// The three brokers under test, each started in its own process with a fresh state for every
// scenario (so that peak RSS and CPU belong to that scenario alone).

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nodeCommandFor, repoDir } from '../lib/child-scripts.js';
import { fieldgateServerArgs } from './fieldgate-dist.js';

export type BrokerName = 'fieldgate' | 'mosquitto' | 'aedes';
export const brokerNames: BrokerName[] = ['fieldgate', 'mosquitto', 'aedes'];

export interface RunningBroker {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

export interface BrokerUnderTest {
  name: BrokerName;
  version: string;
  /** How the process is run, for the results file. */
  how: string;
  launch(): Promise<RunningBroker>;
}

const START_TIMEOUT_MS = 15_000;

// Broker processes still running: killed if the orchestrator exits early (an error, Ctrl-C), so
// that no broker outlives the benchmark.
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/**
 * Small board: every broker process pinned to CPU 0 (`taskset -c 0`) and fieldgate's heap capped at
 * SMALL_BOARD_OLD_SPACE_MIB, as on a Pi-class board with one core to spare. The load generator is not pinned.
 */
export const SMALL_BOARD_OLD_SPACE_MIB = 64;
let smallBoard = false;
export function setSmallBoard(on: boolean): void {
  smallBoard = on;
}
function pinned(command: string, args: string[]): [string, string[]] {
  return smallBoard ? ['taskset', ['-c', '0', command, ...args]] : [command, args];
}

/** `fieldgateNodeArgs`: extra `node` options for fieldgate's process only (e.g. V8 heap flags the CLI may ship with). */
export async function prepareBroker(name: BrokerName, fieldgateNodeArgs: string[] = []): Promise<BrokerUnderTest> {
  switch (name) {
    case 'fieldgate': return prepareFieldgate(fieldgateNodeArgs);
    case 'mosquitto': return prepareMosquitto();
    case 'aedes': return prepareAedes();
  }
}

// ---- fieldgate: dist/ or src/ (see fieldgate-dist.ts)

/**
 * The `node` options fieldgate ships with, read from bin/fieldgate.js's
 * `#!/usr/bin/env -S node <options>` line, so that the benchmark measures what users run.
 */
function shippedNodeOptions(): string[] {
  try {
    const firstLine = readFileSync(path.join(repoDir, 'bin/fieldgate.js'), 'utf8').split('\n', 1)[0]!;
    const words = firstLine.startsWith('#!') ? firstLine.slice(2).trim().split(/\s+/) : [];
    const node = words.findIndex((word) => word === 'node' || word.endsWith('/node'));
    return node >= 0 ? words.slice(node + 1).filter((word) => word.startsWith('-')) : [];
  } catch {
    return [];
  }
}

async function prepareFieldgate(extraNodeArgs: string[]): Promise<BrokerUnderTest> {
  const server = await nodeCommandFor('broker/servers/fieldgate.ts');
  const { args, how: code } = fieldgateServerArgs(server.args, server.how);
  const shipped = shippedNodeOptions();
  const nodeArgs = [...shipped, ...extraNodeArgs];
  let how = code;
  if (shipped.length > 0) how += `; node options from bin/fieldgate.js: ${shipped.join(' ')}`;
  const packageJson = JSON.parse(readFileSync(path.join(repoDir, 'package.json'), 'utf8')) as { version: string };
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoDir, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoDir, encoding: 'utf8' }).trim();
    if (dirty) commit += ' + uncommitted changes in src/';
  } catch { /* not a git checkout */ }
  if (extraNodeArgs.length > 0) how += `; extra node options: ${extraNodeArgs.join(' ')}`;
  return {
    name: 'fieldgate',
    version: `${packageJson.version} (${commit})`,
    how,
    launch: () => launchNodeServer([...nodeArgs, ...(smallBoard ? [`--max-old-space-size=${SMALL_BOARD_OLD_SPACE_MIB}`] : []), ...args]),
  };
}

// ---- Aedes: npm dev dependency, defaults

async function prepareAedes(): Promise<BrokerUnderTest> {
  const server = await nodeCommandFor('broker/servers/aedes.ts');
  const { version } = JSON.parse(readFileSync(path.join(repoDir, 'node_modules/aedes/package.json'), 'utf8')) as { version: string };
  return { name: 'aedes', version, how: `npm package, in-memory persistence, server script ${server.how}`, launch: () => launchNodeServer(server.args) };
}

async function launchNodeServer(args: string[]): Promise<RunningBroker> {
  // With taskset the pid stays the same: taskset execs the broker.
  const [command, commandArgs] = pinned(process.execPath, args);
  const child = track(spawn(command, commandArgs, { cwd: repoDir, stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`broker did not report its port within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.once('exit', (code) => fail(new Error(`broker exited with code ${code} before listening`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((l) => l.startsWith('{"port"'));
      if (!line) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  child.stdout!.resume();
  return { pid: child.pid!, port, stop: () => stopChild(child) };
}

// ---- Mosquitto: Debian package, a temporary config, persistence off

async function prepareMosquitto(): Promise<BrokerUnderTest> {
  const probe = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
  if (probe.error) throw new Error('mosquitto is not installed (Debian package `mosquitto`): apt-get install -y mosquitto');
  const version = /mosquitto version (\S+)/.exec(`${probe.stdout}${probe.stderr}`)?.[1] ?? 'unknown';
  return { name: 'mosquitto', version, how: 'Debian package, `listener <port> 127.0.0.1`, `allow_anonymous true`, `persistence false`, other settings default', launch: launchMosquitto };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForListener(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`mosquitto did not listen on ${port} within ${START_TIMEOUT_MS} ms`);
}

async function launchMosquitto(): Promise<RunningBroker> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fieldgate-bench-mosquitto-'));
  const port = await freePort();
  const config = path.join(dir, 'mosquitto.conf');
  writeFileSync(config, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'connection_messages false',
    '',
  ].join('\n'));
  const [command, commandArgs] = pinned('mosquitto', ['-c', config]);
  const child = track(spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'inherit'] }));
  try {
    await waitForListener(port, child);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
