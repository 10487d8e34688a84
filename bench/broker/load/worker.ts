// Load generator process: the orchestrator forks one per group of clients and drives it over IPC.
//   parent -> { cmd: 'setup', spec } | { cmd: 'start' } | { cmd: 'mark' } | { cmd: 'stop' } | { cmd: 'close' }
//   child  -> { ev: 'ready' | 'mark' | 'stopped' | 'done' | 'closed', counters, t } | { ev: 'error', message }
// `t` is performance.now() in this process, so rates are computed on the generator's own clock.

import { performance } from 'node:perf_hooks';
import { Connects, type ConnectsSpec } from './connects.js';
import { IdleConnections, type IdleSpec } from './idle.js';
import { Latency, type LatencySpec } from './latency.js';
import { Probe, type ProbeSpec } from './probe.js';
import { Publishers, type PublishersSpec } from './publishers.js';
import type { Counters, Role } from './role.js';
import { Subscribers, type SubscribersSpec } from './subscribers.js';

export type LoadSpec = PublishersSpec | SubscribersSpec | LatencySpec | IdleSpec | ConnectsSpec | ProbeSpec;
export type WorkerCommand = { cmd: 'setup'; spec: LoadSpec } | { cmd: 'start' | 'mark' | 'stop' | 'close' };
export type WorkerEvent =
  | { ev: 'ready' | 'mark' | 'stopped' | 'done' | 'closed'; counters: Counters; t: number }
  | { ev: 'error'; message: string };

function createRole(spec: LoadSpec): Role {
  switch (spec.kind) {
    case 'publishers': return new Publishers(spec);
    case 'subscribers': return new Subscribers(spec);
    case 'latency': return new Latency(spec);
    case 'idle': return new IdleConnections(spec);
    case 'connects': return new Connects(spec);
    case 'probe': return new Probe(spec);
  }
}

let role: Role | null = null;

function send(event: WorkerEvent): void {
  process.send?.(event);
}

function reply(ev: 'ready' | 'mark' | 'stopped' | 'done' | 'closed', counters: Counters): void {
  send({ ev, counters, t: performance.now() });
}

async function handle(command: WorkerCommand): Promise<void> {
  switch (command.cmd) {
    case 'setup':
      role = createRole(command.spec);
      reply('ready', await role.setup());
      return;
    case 'start':
      role!.start();
      void role!.finished?.then((counters) => reply('done', counters));
      return;
    case 'mark':
      reply('mark', role!.counters());
      return;
    case 'stop':
      reply('stopped', await role!.stop());
      return;
    case 'close':
      await role?.close();
      reply('closed', {});
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
      return;
  }
}

process.on('message', (command: WorkerCommand) => {
  handle(command).catch((error: Error) => send({ ev: 'error', message: error.message }));
});
// The orchestrator went away: nothing left to report to.
process.on('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
