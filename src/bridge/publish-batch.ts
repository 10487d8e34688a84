// The PUBLISH packets of one pump turn, written into a single buffer: one allocation and one copy of each payload,
// instead of a buffer per packet and a Buffer.concat of them all.

interface PlainPublish {
  topic: Buffer;
  payload: Buffer;
  flags: number;
  packetId: number;
  remaining: number;
}

export class PublishBatch {
  private readonly parts: (PlainPublish | Buffer)[] = [];
  private bytes = 0;

  constructor(private readonly v5: boolean) {}

  get length(): number {
    return this.parts.length;
  }

  /** A QoS 1 PUBLISH without properties (MQTT 5: an empty property list). */
  addPublish(topic: Buffer, payload: Buffer, retain: boolean, dup: boolean, packetId: number): void {
    const remaining = 2 + topic.length + 2 + (this.v5 ? 1 : 0) + payload.length;
    this.parts.push({ topic, payload, flags: 0x32 | (dup ? 0x08 : 0) | (retain ? 0x01 : 0), packetId, remaining });
    this.bytes += 1 + varintLength(remaining) + remaining;
  }

  /** A packet encoded elsewhere (one with properties). */
  addEncoded(packet: Buffer): void {
    this.parts.push(packet);
    this.bytes += packet.length;
  }

  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.bytes);
    let at = 0;
    for (const part of this.parts) {
      if (Buffer.isBuffer(part)) {
        at += part.copy(out, at);
        continue;
      }
      out[at++] = part.flags;
      let n = part.remaining;
      do {
        out[at++] = n > 0x7f ? (n & 0x7f) | 0x80 : n;
        n >>>= 7;
      } while (n > 0);
      out[at++] = part.topic.length >> 8;
      out[at++] = part.topic.length & 0xff;
      at += part.topic.copy(out, at);
      out[at++] = part.packetId >> 8;
      out[at++] = part.packetId & 0xff;
      if (this.v5) out[at++] = 0;
      at += part.payload.copy(out, at);
    }
    return out;
  }
}

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}
