// Latency at a fixed, low rate: one publisher sends on a schedule (open loop: the schedule does
// not wait for deliveries), each payload stamped with the monotonic clock just before the write;
// one subscriber in the same process takes the difference when the chunk arrives.

import { encodePublish, PacketType } from '../../lib/mqtt-wire.js';
import { benchPayload, payloadStart, SEQUENCE_OFFSET, TIMESTAMP_OFFSET } from './payload.js';
import { RawClient } from './raw-client.js';
import { waitUntil, type Counters, type Role } from './role.js';

export interface LatencySpec {
  kind: 'latency';
  port: number;
  ratePerSecond: number;
  warmupMs: number;
  measureMs: number;
  topic: string;
}

export class Latency implements Role {
  finished?: Promise<Counters>;
  private publisher!: RawClient;
  private subscriber!: RawClient;
  private sent = 0;
  private received = 0;
  private samples: Float64Array;
  private sampleCount = 0;
  private measureFromNs = 0n;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly spec: LatencySpec) {
    this.samples = new Float64Array(Math.ceil((spec.ratePerSecond * spec.measureMs) / 1000) + 1000);
  }

  async setup(): Promise<Counters> {
    this.subscriber = await RawClient.connect(this.spec.port, 'bench-latency-sub');
    await this.subscriber.subscribe(this.spec.topic, 0);
    this.publisher = await RawClient.connect(this.spec.port, 'bench-latency-pub');
    this.subscriber.onFrame = (buffer, start, bodyStart) => {
      if (buffer[start]! >> 4 !== PacketType.PUBLISH) return;
      const now = process.hrtime.bigint();
      this.received++;
      const sentAt = buffer.readBigUInt64BE(payloadStart(buffer, start, bodyStart) + TIMESTAMP_OFFSET);
      if (sentAt >= this.measureFromNs && this.sampleCount < this.samples.length) {
        this.samples[this.sampleCount++] = Number(now - sentAt) / 1e6;
      }
    };
    return {};
  }

  start(): void {
    const { spec } = this;
    const template = encodePublish(spec.topic, benchPayload(0), 0);
    const total = Math.round((spec.ratePerSecond * (spec.warmupMs + spec.measureMs)) / 1000);
    const startedAt = process.hrtime.bigint();
    this.measureFromNs = startedAt + BigInt(spec.warmupMs) * 1_000_000n;
    this.finished = new Promise<Counters>((resolve) => {
      const tick = () => {
        const elapsedMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
        const due = Math.min(total, Math.floor((elapsedMs * spec.ratePerSecond) / 1000));
        while (this.sent < due) {
          const bytes = Buffer.from(template.bytes);
          bytes.writeUInt32BE(this.sent, template.payloadOffset + SEQUENCE_OFFSET);
          bytes.writeBigUInt64BE(process.hrtime.bigint(), template.payloadOffset + TIMESTAMP_OFFSET);
          this.publisher.socket.write(bytes);
          this.sent++;
        }
        if (this.sent < total) {
          this.timer = setTimeout(tick, 1);
          return;
        }
        void waitUntil(() => this.received >= this.sent, 2_000).then(() => resolve(this.summary()));
      };
      this.timer = setTimeout(tick, 1);
    });
  }

  counters(): Counters {
    return { sent: this.sent, received: this.received };
  }

  async stop(): Promise<Counters> {
    if (this.timer) clearTimeout(this.timer);
    return this.summary();
  }

  async close(): Promise<void> {
    await Promise.all([this.publisher?.disconnect(), this.subscriber?.disconnect()]);
  }

  private summary(): Counters {
    const sorted = this.samples.slice(0, this.sampleCount).sort();
    const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      sent: this.sent,
      received: this.received,
      samples: sorted.length,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    };
  }
}
