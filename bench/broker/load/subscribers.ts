// Subscribers that count PUBLISH packets with the frame scanner, check per-publisher sequence
// numbers (gaps = lost in flight, repeats = duplicates) and, at QoS 1, acknowledge every message
// with one write per received chunk.

import { PacketType, PUBACK_LENGTH, writePuback } from '../../lib/mqtt-wire.js';
import { PAYLOAD_BYTES, PUBLISHER_OFFSET, SEQUENCE_OFFSET, payloadStart } from './payload.js';
import { connectMany, type RawClient } from './raw-client.js';
import type { Counters, Role } from './role.js';

export interface SubscribersSpec {
  kind: 'subscribers';
  port: number;
  count: number;
  filter: string;
  qos: 0 | 1;
  /** Number of publishers whose sequence numbers are tracked. */
  publishers: number;
  clientPrefix: string;
}

class Subscriber {
  received = 0;
  unique = 0;
  duplicates = 0;
  gaps = 0;
  /** PUBLISH packets whose payload is not the benchmark's 64 bytes: a broker or scanner error. */
  malformed = 0;
  private readonly nextSequence: Float64Array;
  private pendingAcks: number[] = [];

  constructor(readonly client: RawClient, publishers: number) {
    this.nextSequence = new Float64Array(publishers);
    client.onFrame = (buffer, start, bodyStart, end) => {
      const firstByte = buffer[start]!;
      if (firstByte >> 4 !== PacketType.PUBLISH) return;
      this.received++;
      const payload = payloadStart(buffer, start, bodyStart);
      if (end - payload !== PAYLOAD_BYTES) {
        this.malformed++;
        return;
      }
      if (((firstByte >> 1) & 3) > 0) this.pendingAcks.push(buffer.readUInt16BE(payload - 2));
      const publisher = buffer.readUInt32BE(payload + PUBLISHER_OFFSET);
      const sequence = buffer.readUInt32BE(payload + SEQUENCE_OFFSET);
      const expected = this.nextSequence[publisher] ?? 0;
      if (sequence >= expected) {
        this.unique++;
        this.gaps += sequence - expected;
        this.nextSequence[publisher] = sequence + 1;
      } else {
        this.duplicates++;
      }
    };
    client.afterChunk = () => {
      const acks = this.pendingAcks;
      if (acks.length === 0) return;
      const bytes = Buffer.allocUnsafe(acks.length * PUBACK_LENGTH);
      for (let i = 0; i < acks.length; i++) writePuback(bytes, i * PUBACK_LENGTH, acks[i]!);
      this.pendingAcks = [];
      client.socket.write(bytes);
    };
  }
}

export class Subscribers implements Role {
  private subscribers: Subscriber[] = [];

  constructor(private readonly spec: SubscribersSpec) {}

  async setup(): Promise<Counters> {
    const { spec } = this;
    const clients = await connectMany(spec.port, spec.count, 20, (i) => `${spec.clientPrefix}${i}`);
    await Promise.all(clients.map((client) => client.subscribe(spec.filter, spec.qos)));
    this.subscribers = clients.map((client) => new Subscriber(client, spec.publishers));
    return { subscribers: clients.length };
  }

  start(): void {}

  counters(): Counters {
    let received = 0;
    let unique = 0;
    let duplicates = 0;
    let gaps = 0;
    let closed = 0;
    let malformed = 0;
    for (const s of this.subscribers) {
      malformed += s.malformed;
      received += s.received;
      unique += s.unique;
      duplicates += s.duplicates;
      gaps += s.gaps;
      if (s.client.closed) closed++;
    }
    return { received, unique, duplicates, gaps, malformed, closed };
  }

  async stop(): Promise<Counters> {
    return this.counters();
  }

  async close(): Promise<void> {
    await Promise.all(this.subscribers.map((s) => s.client.disconnect()));
  }
}
