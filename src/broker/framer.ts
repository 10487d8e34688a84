// Splits the incoming byte stream into whole MQTT packets (fixed header + remaining length, §2.1),
// so the packet size limit is enforced before a body is buffered, and PUBLISH — nearly all the
// traffic — can be decoded without a general-purpose parser.

import type { QoS } from './types.js';

export class FrameError extends Error {
  constructor(message: string, readonly reasonCode: number) {
    super(message);
  }
}

export interface FrameSink {
  /** `frame` is the whole packet; it is only valid during the call. */
  onFrame(frame: Buffer, headerLength: number): void;
}

export class PacketFramer {
  private pending: Buffer | null = null;

  constructor(private readonly maximumPacketSize: number) {}

  /** Feeds bytes; calls the sink once per complete packet. Throws FrameError on a malformed or oversized header. */
  push(chunk: Buffer, sink: FrameSink): void {
    let data = chunk;
    if (this.pending !== null) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let offset = 0;
    const end = data.length;
    while (offset < end) {
      if (end - offset < 2) break;
      let remaining = 0;
      let multiplier = 1;
      let pos = offset + 1;
      let complete = false;
      for (let i = 0; i < 4; i++) {
        if (pos >= end) break;
        const byte = data[pos++];
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        if (i === 3) throw new FrameError('remaining length longer than four bytes', 0x81);
      }
      if (!complete) break;
      const headerLength = pos - offset;
      const total = headerLength + remaining;
      if (total > this.maximumPacketSize) throw new FrameError(`packet of ${total} bytes exceeds the maximum packet size of ${this.maximumPacketSize}`, 0x95);
      if (end - offset < total) break;
      sink.onFrame(data.subarray(offset, offset + total), headerLength);
      offset += total;
    }
    if (offset < end) this.pending = Buffer.from(data.subarray(offset));
  }

  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }
}

export interface DecodedPublish {
  cmd: 'publish';
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  messageId: number | undefined;
  properties: undefined;
  length: number;
}

/**
 * Decodes a PUBLISH without properties (3.1/3.1.1, or 5.0 with an empty property block).
 * Returns null when a 5.0 PUBLISH carries properties (the general parser handles those).
 */
export function decodeSimplePublish(frame: Buffer, headerLength: number, v5: boolean): DecodedPublish | null {
  const flags = frame[0] & 0x0f;
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw new FrameError('PUBLISH with QoS 3', 0x81);
  let pos = headerLength;
  if (pos + 2 > frame.length) throw new FrameError('PUBLISH too short for its topic length', 0x81);
  const topicLength = frame.readUInt16BE(pos);
  pos += 2;
  if (pos + topicLength > frame.length) throw new FrameError('PUBLISH topic runs past the end of the packet', 0x81);
  const topic = frame.toString('utf8', pos, pos + topicLength);
  pos += topicLength;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > frame.length) throw new FrameError('PUBLISH too short for its packet identifier', 0x81);
    messageId = frame.readUInt16BE(pos);
    pos += 2;
  }
  if (v5) {
    if (pos >= frame.length) throw new FrameError('PUBLISH too short for its properties', 0x81);
    if (frame[pos] !== 0) return null;
    pos += 1;
  }
  // A copy: the payload may outlive this chunk (queues, retained store) and must not pin it.
  const payload = Buffer.allocUnsafe(frame.length - pos);
  frame.copy(payload, 0, pos);
  return {
    cmd: 'publish', topic, payload, qos: qos as QoS, retain: (flags & 0x01) !== 0, dup: (flags & 0x08) !== 0,
    messageId, properties: undefined, length: frame.length - headerLength,
  };
}
