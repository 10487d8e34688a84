// Splits the incoming byte stream into whole MQTT packets (fixed header + remaining length, §2.1),
// so the packet size limit is enforced before a body is buffered, and PUBLISH — nearly all the
// traffic — can be decoded without a general-purpose parser.

import { FrameError } from './decode/errors.js';

export { FrameError };

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

// PUBLISH is decoded and validated in decode/publish.ts; the connection calls it by this name.
export { decodePublish as decodeSimplePublish, type DecodedPublish } from './decode/publish.js';
