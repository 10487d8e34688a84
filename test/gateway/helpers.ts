// Running fieldgate as a user does: `node bin/fieldgate.js …` as a child process, its JSON log lines
// collected, plus the small waits and peers the CLI and gateway tests share.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/fieldgate.js');

/**
 * bin/fieldgate.js runs dist/ (bundled into dist/bundle/): rebuild both when a source file is newer (as after editing src/ without
 * `npm install`). The check and the build run under one lock, so parallel test files never start
 * the CLI while another one is rewriting dist/.
 */
export function ensureBuilt(): void {
  const script = `
    const fs = require('fs'), path = require('path');
    const newest = (dir, ext) => { let t = 0; for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) t = Math.max(t, newest(p, ext)); else if (ext.some((x) => e.name.endsWith(x))) t = Math.max(t, fs.statSync(p).mtimeMs); }
      return t; };
    let built = 0; try { built = fs.statSync('dist/cli.js').mtimeMs; } catch {}
    if (newest('src', ['.ts', '.json']) > built) {
      // tsc emits even with type errors (someone else's file in progress): warn, run what was emitted.
      try { require('child_process').execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' }); }
      catch { console.error('ensureBuilt: tsc reported errors; the CLI tests run the JavaScript it emitted'); }
    }
    // bin/fieldgate.js runs dist/bundle/ when it is not older than dist/cli.js (scripts/build-bundle.mjs).
    let bundled = -1; try { bundled = fs.statSync('dist/bundle/cli.js').mtimeMs; } catch {}
    if (bundled < fs.statSync('dist/cli.js').mtimeMs) require('child_process').execFileSync(process.execPath, ['scripts/build-bundle.mjs'], { stdio: 'inherit' });`;
  execFileSync('flock', [path.join(os.tmpdir(), 'fieldgate-test-build.lock'), process.execPath, '-e', script], {
    cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000,
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion. */
export function runCli(args: string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fieldgate ${args.join(' ')} did not finish in time; stdout: ${stdout} stderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A long-running `fieldgate run`, its log lines parsed (stdout is not a terminal: JSON lines). */
export class GatewayProcess {
  readonly logs: LogLine[] = [];
  readonly rawOutput: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  /** `node bin/fieldgate.js run …args`, or exactly `nodeArgs` (e.g. a Dockerfile's ENTRYPOINT + CMD) when given. */
  constructor(args: string[], cwd: string, nodeArgs: string[] = [BIN, 'run', ...args]) {
    this.child = spawn(process.execPath, nodeArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.rawOutput.push(line);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line: kept in rawOutput
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.rawOutput.push(`stderr: ${chunk.toString()}`));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> {
    return waitFor(() => {
      if (!this.running && !this.logs.some(match)) throw new Error(`fieldgate exited before ${what}:\n${this.rawOutput.join('\n')}`);
      return this.logs.find(match);
    }, what, timeoutMs);
  }

  /** SIGTERM, then SIGKILL if it does not stop in time; for afterAll. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A mosquitto_sub child collecting "topic payload" lines (-v). */
export class MosquittoSub {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.lines.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.lines.push(`stderr: ${chunk.toString().trim()}`));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The last payload seen on `topic`. */
  latest(topic: string): string | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i];
      if (line.startsWith(`${topic} `)) return line.slice(topic.length + 1);
    }
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** Runs a command to completion (openssl, mosquitto_passwd, mosquitto_pub …); throws with its output on failure. */
export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): string {
  return execFileSync(command, args, { cwd: options.cwd, timeout: options.timeoutMs ?? 20_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
