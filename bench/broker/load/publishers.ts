// Publishers that send as fast as the broker takes the bytes, never faster: each writes
// pre-encoded batches until its socket's buffer is over the stream's high-water mark and then
// waits for 'drain'; at QoS 1 it also keeps at most `window` messages unacknowledged.

import { encodePublish, PacketType } from '../../lib/mqtt-wire.js';
import { benchPayload, SEQUENCE_OFFSET } from './payload.js';
import { connectMany, type RawClient } from './raw-client.js';
import { waitUntil, type Counters, type Role } from './role.js';

export interface PublishersSpec {
  kind: 'publishers';
  port: number;
  /** One topic per publisher. */
  topics: string[];
  qos: 0 | 1;
  /** QoS 1: most unacknowledged messages per publisher. */
  window: number;
  /** Packets per socket write. */
  batch: number;
  clientPrefix: string;
}

const BATCHES_PER_TURN = 16;

class Publisher {
  sent = 0;
  acked = 0;
  inflight = 0;
  private sequence = 0;
  private running = false;
  private waitingForDrain = false;
  private turnScheduled = false;
  private readonly template: Buffer;
  private readonly packetLength: number;
  private readonly packetIdOffset: number;
  private readonly sequenceOffset: number;

  constructor(readonly client: RawClient, index: number, topic: string, private readonly qos: 0 | 1, private readonly window: number, private readonly batch: number) {
    const one = encodePublish(topic, benchPayload(index), qos);
    this.packetLength = one.bytes.length;
    this.packetIdOffset = one.packetIdOffset;
    this.sequenceOffset = one.payloadOffset + SEQUENCE_OFFSET;
    this.template = Buffer.concat(Array.from({ length: batch }, () => one.bytes));
    client.onFrame = (buffer, start) => {
      if (buffer[start]! >> 4 === PacketType.PUBACK) {
        this.acked++;
        this.inflight--;
      }
    };
    client.afterChunk = () => {
      if (this.qos > 0) this.pump();
    };
    client.socket.on('drain', () => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  stop(): void {
    this.running = false;
  }

  private readonly pump = (): void => {
    if (!this.running || this.waitingForDrain || this.client.closed) return;
    for (let turn = 0; turn < BATCHES_PER_TURN; turn++) {
      let count = this.batch;
      if (this.qos > 0) {
        count = Math.min(count, this.window - this.inflight);
        if (count <= 0) return; // resumes when PUBACKs arrive
      }
      // A fresh buffer per write: a queued write keeps a reference to the bytes it was given.
      const bytes = Buffer.allocUnsafe(count * this.packetLength);
      this.template.copy(bytes, 0, 0, count * this.packetLength);
      for (let k = 0, base = 0; k < count; k++, base += this.packetLength) {
        bytes.writeUInt32BE(this.sequence, base + this.sequenceOffset);
        if (this.qos > 0) bytes.writeUInt16BE((this.sequence % 65535) + 1, base + this.packetIdOffset);
        this.sequence++;
      }
      this.sent += count;
      if (this.qos > 0) this.inflight += count;
      if (!this.client.socket.write(bytes)) {
        this.waitingForDrain = true;
        return;
      }
    }
    // Yield to the event loop so that the other publishers and incoming acks get their turn.
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(() => {
        this.turnScheduled = false;
        this.pump();
      });
    }
  };
}

export class Publishers implements Role {
  private publishers: Publisher[] = [];

  constructor(private readonly spec: PublishersSpec) {}

  async setup(): Promise<Counters> {
    const { spec } = this;
    const clients = await connectMany(spec.port, spec.topics.length, 20, (i) => `${spec.clientPrefix}${i}`);
    this.publishers = clients.map((client, i) => new Publisher(client, i, spec.topics[i]!, spec.qos, spec.window, spec.batch));
    return { publishers: clients.length };
  }

  start(): void {
    for (const publisher of this.publishers) publisher.start();
  }

  counters(): Counters {
    let sent = 0;
    let acked = 0;
    let closed = 0;
    for (const p of this.publishers) {
      sent += p.sent;
      acked += p.acked;
      if (p.client.closed) closed++;
    }
    return { sent, acked, closed };
  }

  async stop(): Promise<Counters> {
    for (const publisher of this.publishers) publisher.stop();
    const flushed = await waitUntil(() => this.publishers.every((p) => p.client.closed || (p.client.socket.writableLength === 0 && p.inflight <= 0)), 10_000);
    const counters = this.counters();
    let unacked = 0;
    for (const p of this.publishers) unacked += this.spec.qos > 0 ? Math.max(0, p.inflight) : 0;
    return { ...counters, unacked, flushed: flushed ? 1 : 0 };
  }

  async close(): Promise<void> {
    await Promise.all(this.publishers.map((p) => p.client.disconnect()));
  }
}
