// A probe client measuring how long the broker makes an ordinary client wait while others load it:
// a PINGREQ on a standing connection every `pingIntervalMs` (time to its PINGRESP), and a fresh
// connection every `connectIntervalMs` (time from CONNECT to CONNACK). Only samples taken after
// the warm-up count; a reply still missing at the end counts with the time waited so far.

import net from 'node:net';
import os from 'node:os';
import { DISCONNECT, encodeConnect, PacketType, PINGREQ } from '../../lib/mqtt-wire.js';
import { RawClient } from './raw-client.js';
import type { Counters, Role } from './role.js';

export interface ProbeSpec {
  kind: 'probe';
  port: number;
  warmupMs: number;
  measureMs: number;
  pingIntervalMs: number;
  connectIntervalMs: number;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function summary(samples: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return { p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

export class Probe implements Role {
  finished?: Promise<Counters>;
  private client!: RawClient;
  private readonly pings: number[] = [];
  private readonly connacks: number[] = [];
  /** Of each CONNACK sample: the TCP handshake part (the kernel and the broker's accept queue). */
  private readonly handshakes: number[] = [];
  private pingSentAt = 0;
  private measureFrom = 0;
  private running = false;
  private timers: NodeJS.Timeout[] = [];
  private connectsInFlight = new Set<number>();
  private failures = 0;
  private reniced = 0;

  constructor(private readonly spec: ProbeSpec) {}

  async setup(): Promise<Counters> {
    // The probe measures the broker, not its own share of two busy cores: it runs at a higher
    // priority than the load generators (when allowed; the notes say whether it was).
    try {
      os.setPriority(-10);
      this.reniced = 1;
    } catch {
      this.reniced = 0;
    }
    this.client = await RawClient.connect(this.spec.port, 'bench-probe', 0);
    this.client.onFrame = (buffer, start) => {
      if (buffer[start]! >> 4 !== PacketType.PINGRESP || this.pingSentAt === 0) return;
      const sentAt = this.pingSentAt;
      this.pingSentAt = 0;
      if (sentAt >= this.measureFrom) this.pings.push(nowMs() - sentAt);
      if (this.running) this.timers.push(setTimeout(() => this.ping(), this.spec.pingIntervalMs));
    };
    return {};
  }

  start(): void {
    this.running = true;
    this.measureFrom = nowMs() + this.spec.warmupMs;
    this.ping();
    const connectTimer = setInterval(() => this.connectOnce(), this.spec.connectIntervalMs);
    this.timers.push(connectTimer as unknown as NodeJS.Timeout);
    this.finished = new Promise((resolve) => {
      setTimeout(() => {
        this.running = false;
        clearInterval(connectTimer);
        resolve(this.result());
      }, this.spec.warmupMs + this.spec.measureMs);
    });
  }

  private ping(): void {
    if (!this.running) return;
    this.pingSentAt = nowMs();
    this.client.socket.write(PINGREQ);
  }

  /** A fresh connection: TCP handshake (until 'connect'), then CONNECT → CONNACK, timed apart. */
  private connectOnce(): void {
    const started = nowMs();
    this.connectsInFlight.add(started);
    const socket = net.connect({ port: this.spec.port, host: '127.0.0.1', noDelay: true });
    let connectedAt = 0;
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 15_000);
    socket.once('connect', () => {
      connectedAt = nowMs();
      socket.write(encodeConnect(`bench-probe-${Math.floor(started * 1000)}`, { keepAliveSeconds: 0 }));
    });
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      this.connectsInFlight.delete(started);
      const now = nowMs();
      if (chunk[0]! >> 4 !== PacketType.CONNACK || chunk[3] !== 0) this.failures++;
      else if (started >= this.measureFrom) {
        this.connacks.push(now - started);
        this.handshakes.push(connectedAt - started);
      }
      socket.end(DISCONNECT);
    });
    socket.on('error', () => {
      clearTimeout(timer);
      if (this.connectsInFlight.delete(started)) this.failures++;
    });
  }

  private result(): Counters {
    const end = nowMs();
    const pings = [...this.pings];
    if (this.pingSentAt !== 0 && this.pingSentAt >= this.measureFrom) pings.push(end - this.pingSentAt);
    const connacks = [...this.connacks];
    for (const started of this.connectsInFlight) if (started >= this.measureFrom) connacks.push(end - started);
    const p = summary(pings);
    const c = summary(connacks);
    return {
      pingSamples: pings.length, pingP50Ms: p.p50, pingP99Ms: p.p99, pingMaxMs: p.max,
      connackSamples: connacks.length, connackP50Ms: c.p50, connackP99Ms: c.p99, connackMaxMs: c.max,
      handshakeP50Ms: summary(this.handshakes).p50, handshakeP99Ms: summary(this.handshakes).p99,
      connectFailures: this.failures, reniced: this.reniced,
    };
  }

  counters(): Counters {
    return { pingSamples: this.pings.length, connackSamples: this.connacks.length };
  }

  async stop(): Promise<Counters> {
    this.running = false;
    for (const timer of this.timers) clearTimeout(timer);
    return this.result();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.client?.disconnect();
  }
}
