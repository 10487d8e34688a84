// Connection rate: `concurrency` lanes each open a socket, send CONNECT, wait for CONNACK, send
// DISCONNECT and start the next one at once. Client ids are all distinct (no takeovers).

import net from 'node:net';
import { DISCONNECT, encodeConnect, PacketType } from '../../lib/mqtt-wire.js';
import { waitUntil, type Counters, type Role } from './role.js';

export interface ConnectsSpec {
  kind: 'connects';
  port: number;
  concurrency: number;
  clientPrefix: string;
}

const ATTEMPT_TIMEOUT_MS = 5_000;

export class Connects implements Role {
  private running = false;
  private completed = 0;
  private failed = 0;
  private lanesActive = 0;
  private nextId = 0;

  constructor(private readonly spec: ConnectsSpec) {}

  async setup(): Promise<Counters> {
    return {};
  }

  start(): void {
    this.running = true;
    for (let lane = 0; lane < this.spec.concurrency; lane++) {
      this.lanesActive++;
      this.attempt();
    }
  }

  private attempt(): void {
    if (!this.running) {
      this.lanesActive--;
      return;
    }
    const connect = encodeConnect(`${this.spec.clientPrefix}${this.nextId++}`, { keepAliveSeconds: 60 });
    const socket = net.connect({ port: this.spec.port, host: '127.0.0.1', noDelay: true });
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ok) this.completed++;
      else this.failed++;
      if (ok) socket.end(DISCONNECT);
      else socket.destroy();
      // A failed attempt (refused, reset) waits a little so a broken broker does not spin the lane.
      if (ok) this.attempt();
      else setTimeout(() => this.attempt(), 10);
    };
    const timer = setTimeout(() => settle(false), ATTEMPT_TIMEOUT_MS);
    socket.on('connect', () => socket.write(connect));
    socket.on('data', (chunk: Buffer) => {
      // CONNACK is 4 bytes and the first thing a broker sends.
      if (chunk.length >= 4 && chunk[0]! >> 4 === PacketType.CONNACK) settle(chunk[3] === 0);
      else settle(false);
    });
    socket.on('error', () => settle(false));
    socket.on('close', () => settle(false));
  }

  counters(): Counters {
    return { completed: this.completed, failed: this.failed };
  }

  async stop(): Promise<Counters> {
    this.running = false;
    await waitUntil(() => this.lanesActive === 0, ATTEMPT_TIMEOUT_MS + 1_000);
    return this.counters();
  }

  async close(): Promise<void> {}
}
