// The orchestrator's handle on one load-generator process (load/worker.ts).

import { fork, type ChildProcess } from 'node:child_process';
import { nodeCommandFor } from '../lib/child-scripts.js';
import { cpuSeconds } from '../lib/proc.js';
import type { Counters } from './load/role.js';
import type { LoadSpec, WorkerCommand, WorkerEvent } from './load/worker.js';

type EventName = 'ready' | 'mark' | 'stopped' | 'done' | 'closed';
export interface Reply { counters: Counters; t: number }

interface Waiter { ev: EventName; resolve: (reply: Reply) => void; reject: (error: Error) => void }

const REPLY_TIMEOUT_MS = 60_000;

export class LoadWorker {
  private readonly waiters: Waiter[] = [];
  private failure: Error | null = null;

  private constructor(private readonly child: ChildProcess, readonly label: string) {
    child.on('message', (event: WorkerEvent) => {
      if (event.ev === 'error') {
        this.failAll(new Error(`load generator ${label}: ${event.message}`));
        return;
      }
      const index = this.waiters.findIndex((w) => w.ev === event.ev);
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve({ counters: event.counters, t: event.t });
    });
    child.on('exit', (code, signal) => {
      if (this.waiters.length > 0) this.failAll(new Error(`load generator ${label} exited (${signal ?? code})`));
    });
  }

  static async start(label: string, spec: LoadSpec): Promise<LoadWorker> {
    const command = await nodeCommandFor('broker/load/worker.ts');
    const script = command.args[command.args.length - 1]!;
    const child = fork(script, [], { execArgv: command.args.slice(0, -1), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const worker = new LoadWorker(child, label);
    try {
      await worker.request({ cmd: 'setup', spec }, 'ready');
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  send(command: WorkerCommand): void {
    if (this.failure) throw this.failure;
    this.child.send(command);
  }

  request(command: WorkerCommand, ev: EventName): Promise<Reply> {
    const reply = this.waitFor(ev);
    this.send(command);
    return reply;
  }

  waitFor(ev: EventName, timeoutMs = REPLY_TIMEOUT_MS): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`load generator ${this.label}: no '${ev}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        ev,
        resolve: (reply) => { clearTimeout(timer); resolve(reply); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
      this.waiters.push(waiter);
    });
  }

  /** Disconnects its clients and exits; killed if it does not within a few seconds. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 8_000);
    try {
      if (!this.failure && this.child.connected) this.child.send({ cmd: 'close' });
      else this.child.kill('SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
    await exited;
    clearTimeout(timer);
  }

  private failAll(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
