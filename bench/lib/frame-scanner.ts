// Splits a byte stream into MQTT control packets without decoding them: the handler gets the
// buffer and offsets, so counting PUBLISH packets allocates nothing per packet.

/** `start` is the first byte of the fixed header, `bodyStart` the first byte after it, `end` one past the packet. */
export type FrameHandler = (buffer: Buffer, start: number, bodyStart: number, end: number) => void;

export class FrameScanner {
  private rest: Buffer | null = null;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let buffer = chunk;
    if (this.rest !== null) {
      buffer = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    const length = buffer.length;
    let offset = 0;
    while (offset + 2 <= length) {
      let remaining = 0;
      let multiplier = 1;
      let index = offset + 1;
      let byte = 0;
      let complete = false;
      for (let i = 0; i < 4 && index < length; i++) {
        byte = buffer[index++]!;
        remaining += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) { complete = true; break; }
      }
      if (!complete) {
        if (index - offset > 4) throw new Error('malformed remaining length from broker');
        break;
      }
      const end = index + remaining;
      if (end > length) break;
      this.onFrame(buffer, offset, index, end);
      offset = end;
    }
    // Copy the tail so that a large chunk is not kept alive by a few leftover bytes.
    if (offset < length) this.rest = Buffer.from(buffer.subarray(offset));
  }
}
