// Opens many connections that then stay idle (keep alive 60 s, longer than the measurement),
// so the broker's memory per connected client can be read from outside.

import { connectMany, type RawClient } from './raw-client.js';
import type { Counters, Role } from './role.js';

export interface IdleSpec {
  kind: 'idle';
  port: number;
  count: number;
  concurrency: number;
  clientPrefix: string;
}

export class IdleConnections implements Role {
  private clients: RawClient[] = [];

  constructor(private readonly spec: IdleSpec) {}

  async setup(): Promise<Counters> {
    const { spec } = this;
    this.clients = await connectMany(spec.port, spec.count, spec.concurrency, (i) => `${spec.clientPrefix}${i}`);
    return this.counters();
  }

  start(): void {}

  counters(): Counters {
    return { connected: this.clients.filter((c) => !c.closed).length };
  }

  async stop(): Promise<Counters> {
    return this.counters();
  }

  async close(): Promise<void> {
    // Closing 1,000 sockets at once is fine for every broker under test.
    await Promise.all(this.clients.map((c) => c.disconnect()));
  }
}
