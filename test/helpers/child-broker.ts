import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrokerOptions } from './broker.js';

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, '..', '..');

export interface ChildBroker {
  port: number;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<number | string>;
  /** kill -9: no chance to flush anything. */
  kill9(): Promise<void>;
  /** SIGTERM: graceful close. */
  stop(): Promise<void>;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  /** Memory of the broker process after a full garbage collection. */
  memory(detail?: boolean): Promise<ProcessMemory>;
}

export interface ProcessMemory {
  rss: number;
  heapUsed: number;
  heapTotal?: number;
  external: number;
  arrayBuffers: number;
  detail?: Record<string, number>;
}

/** The node options fieldgate ships with: those on the `#!/usr/bin/env -S node …` line of bin/fieldgate.js. */
export function shippedNodeArgs(): string[] {
  const first = readFileSync(join(projectRoot, 'bin', 'fieldgate.js'), 'utf8').split('\n')[0];
  return first.replace(/^#!.*?\bnode\b/, '').trim().split(/\s+/).filter((a) => a.startsWith('--'));
}

/** Runs test/helpers/broker-process.ts in its own Node process and waits until it listens. */
export function spawnBroker(dataDir: string, options: Partial<BrokerOptions> = {}, timeoutMs = 30_000, nodeArgs: string[] = []): Promise<ChildBroker> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--expose-gc', '--import', 'tsx', join(here, 'broker-process.ts'), dataDir, '0', JSON.stringify(options)], {
      cwd: projectRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const memoryWaiters: Array<(m: ProcessMemory) => void> = [];
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{"memory"')) continue;
        memoryWaiters.shift()?.((JSON.parse(line) as { memory: ProcessMemory }).memory);
      }
    });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | string>((done) => child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker process did not report a port within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker process exited (${code}) before listening; stderr: ${stderr}`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      const { port } = JSON.parse(line) as { port: number };
      resolve({
        port,
        pid: child.pid!,
        process: child,
        exited,
        async kill9() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
        memory(detail = false) {
          return new Promise<ProcessMemory>((resolveMemory, rejectMemory) => {
            const timer = setTimeout(() => rejectMemory(new Error('broker process did not report memory')), 10_000);
            memoryWaiters.push((m) => {
              clearTimeout(timer);
              resolveMemory(m);
            });
            child.stdin!.write(detail ? 'memory-detail\n' : 'memory\n');
          });
        },
        rss() {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const match = /VmRSS:\s+(\d+) kB/.exec(status);
          return match ? Number(match[1]) * 1024 : NaN;
        },
      });
    });
  });
}
