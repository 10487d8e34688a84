// The PUBLISH packets of one pump turn, written into a single buffer: one allocation and one copy of each payload,
// instead of a buffer per packet and a Buffer.concat of them all.
import { publishPacketSize, writePublish } from '../broker/packet-writer.js';

interface PlainPublish {
  topic: Buffer;
  payload: Buffer;
  retain: boolean;
  dup: boolean;
  packetId: number;
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
    this.parts.push({ topic, payload, retain, dup, packetId });
    this.bytes += publishPacketSize(topic.length, payload.length, 1, this.v5);
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
      at = Buffer.isBuffer(part) ? at + part.copy(out, at) : writePublish(out, at, part.topic, part.payload, 1, part.retain, part.dup, part.packetId, this.v5);
    }
    return out;
  }
}
