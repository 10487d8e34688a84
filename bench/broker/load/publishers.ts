// Publishers that send as fast as the broker handles the messages, never faster. Each writes
// pre-encoded batches and keeps at most `window` messages that the broker has not yet handled:
// at QoS 1 counted by PUBACKs; at QoS 0 by a PINGREQ after every PING_EVERY messages (a broker
// answers PINGREQ after handling the packets before it on that connection). The kernel's socket
// buffers (megabytes on loopback) would otherwise hold a large backlog: the publishers would
// look faster than the broker, the end of a run would wait for the backlog, and an overloaded
// broker would be fed far more than it can take. The stream's 'drain' also pauses a publisher.

import { encodePublish, PacketType, PINGREQ } from '../../lib/mqtt-wire.js';
import { benchPayload, SEQUENCE_OFFSET } from './payload.js';
import { connectMany, type RawClient } from './raw-client.js';
import { waitUntil, type Counters, type Role } from './role.js';

export interface PublishersSpec {
  kind: 'publishers';
  port: number;
  /** One topic per publisher. */
  topics: string[];
  qos: 0 | 1;
  /** Most messages per publisher not yet handled by the broker (QoS 1: unacknowledged). */
  window: number;
  /** Packets per socket write. */
  batch: number;
  clientPrefix: string;
}

const BATCHES_PER_TURN = 16;
const PING_EVERY = 256;

class Publisher {
  sent = 0;
  acked = 0;
  inflight = 0;
  /** QoS 0: PINGREQs sent and not yet answered. */
  pingsOutstanding = 0;
  private sincePing = 0;
  private readonly maxPings: number;
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
    this.maxPings = Math.max(1, Math.floor(window / PING_EVERY));
    client.onFrame = (buffer, start) => {
      const type = buffer[start]! >> 4;
      if (type === PacketType.PUBACK) {
        this.acked++;
        this.inflight--;
      } else if (type === PacketType.PINGRESP) {
        this.pingsOutstanding--;
      }
    };
    client.afterChunk = () => this.pump();
    client.socket.on('drain', () => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops sending; at QoS 0 a last PINGREQ lets `pingsOutstanding` reach 0 once the broker has handled everything. */
  stop(): void {
    this.running = false;
    if (this.qos === 0 && !this.client.closed) {
      this.pingsOutstanding++;
      this.client.socket.write(PINGREQ);
    }
  }

  private readonly pump = (): void => {
    if (!this.running || this.waitingForDrain || this.client.closed) return;
    for (let turn = 0; turn < BATCHES_PER_TURN; turn++) {
      let count = this.batch;
      let ping = false;
      if (this.qos > 0) {
        count = Math.min(count, this.window - this.inflight);
        if (count <= 0) return; // resumes when PUBACKs arrive
      } else {
        if (this.pingsOutstanding >= this.maxPings) return; // resumes when a PINGRESP arrives
        ping = this.sincePing + count >= PING_EVERY;
      }
      // A fresh buffer per write: a queued write keeps a reference to the bytes it was given.
      const publishBytes = count * this.packetLength;
      const bytes = Buffer.allocUnsafe(publishBytes + (ping ? PINGREQ.length : 0));
      this.template.copy(bytes, 0, 0, publishBytes);
      if (ping) {
        PINGREQ.copy(bytes, publishBytes);
        this.pingsOutstanding++;
        this.sincePing = 0;
      } else {
        this.sincePing += count;
      }
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
    const flushed = await waitUntil(() => this.publishers.every((p) => p.client.closed || (p.inflight <= 0 && p.pingsOutstanding <= 0)), 10_000);
    const counters = this.counters();
    let unacked = 0;
    for (const p of this.publishers) unacked += this.spec.qos > 0 ? Math.max(0, p.inflight) : 0;
    return { ...counters, unacked, flushed: flushed ? 1 : 0 };
  }

  async close(): Promise<void> {
    await Promise.all(this.publishers.map((p) => p.client.disconnect()));
  }
}
