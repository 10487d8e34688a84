// Splits the incoming byte stream into whole MQTT packets (fixed header + remaining length, §2.1),
// so the packet size limit is enforced before a body is buffered, and PUBLISH — nearly all the
// traffic — can be decoded without a general-purpose parser.

import { FrameError } from './decode/errors.js';

export { FrameError };

/**
 * Reassembly in linear time: whole packets inside a chunk are handed out without a copy; a packet
 * that spans chunks is copied into one buffer of its own as its bytes arrive (grown by doubling up
 * to the length its header announced, so a lying header costs no more than the bytes really sent).
 */
export class PacketFramer {
  /** Received bytes not yet returned, from chunks[head] at `offset` on (at most a few chunks). */
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  private buffered = 0;
  /** Fixed header length of the packet next() returned last. */
  headerLength = 0;
  /** The packet being assembled across chunks. */
  private partial: Buffer | null = null;
  private partialLength = 0;
  private partialTotal = 0;
  private partialHeader = 0;

  /** `maximumPacketSize` may change between packets (a small cap until CONNECT completes). */
  constructor(public maximumPacketSize: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.partial !== null) {
      const take = Math.min(chunk.length, this.partialTotal - this.partialLength);
      if (this.partialLength + take > this.partial.length) this.grow(this.partialLength + take);
      chunk.copy(this.partial, this.partialLength, 0, take);
      this.partialLength += take;
      if (take === chunk.length) return;
      chunk = chunk.subarray(take);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes received and not yet returned as a packet. */
  get bufferedBytes(): number {
    return this.buffered + this.partialLength;
  }

  /**
   * The next whole packet, or null until more bytes arrive; its fixed header length is then in
   * `headerLength` (a field, not a wrapper object: this runs once per packet).
   * Throws FrameError on a malformed or oversized header (known from its first bytes, before the body).
   * The frame may share memory with a received chunk: copy what must outlive the call.
   */
  next(): Buffer | null {
    if (this.partial !== null) {
      if (this.partialLength < this.partialTotal) return null;
      const frame = this.partial.length === this.partialTotal ? this.partial : this.partial.subarray(0, this.partialTotal);
      this.partial = null;
      this.partialLength = 0;
      this.headerLength = this.partialHeader;
      return frame;
    }
    if (this.buffered < 2) return null;
    let remaining = 0;
    let multiplier = 1;
    let headerLength = 0;
    for (let i = 1; i <= 4; i++) {
      if (i >= this.buffered) return null;
      const byte = this.byteAt(i);
      remaining += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) {
        headerLength = i + 1;
        break;
      }
      if (i === 4) throw new FrameError('remaining length longer than four bytes', 0x81);
    }
    const total = headerLength + remaining;
    if (total > this.maximumPacketSize) throw new FrameError(`packet of ${total} bytes exceeds the maximum packet size of ${this.maximumPacketSize}`, 0x95);
    const first = this.chunks[this.head];
    if (first.length - this.offset >= total) {
      const frame = first.subarray(this.offset, this.offset + total);
      this.consume(total);
      this.headerLength = headerLength;
      return frame;
    }
    if (this.buffered < total) {
      // Not all there: from now on its bytes are copied into a buffer of its own as they arrive.
      this.partial = Buffer.allocUnsafe(Math.min(total, Math.max(2 * this.buffered, 4096)));
      this.partialTotal = total;
      this.partialHeader = headerLength;
      this.partialLength = this.copyOut(this.partial, this.buffered);
      return null;
    }
    const frame = Buffer.allocUnsafe(total);
    this.copyOut(frame, total);
    this.headerLength = headerLength;
    return frame;
  }

  /** Drops everything buffered (the connection is closing). */
  clear(): void {
    this.chunks = [];
    this.head = this.offset = this.buffered = 0;
    this.partial = null;
    this.partialLength = 0;
  }

  private grow(needed: number): void {
    const bigger = Buffer.allocUnsafe(Math.min(this.partialTotal, Math.max(needed, 2 * this.partial!.length)));
    this.partial!.copy(bigger, 0, 0, this.partialLength);
    this.partial = bigger;
  }

  /** Moves `count` buffered bytes into `target` and returns `count`. */
  private copyOut(target: Buffer, count: number): number {
    let copied = 0;
    while (copied < count) {
      const chunk = this.chunks[this.head];
      const take = Math.min(chunk.length - this.offset, count - copied);
      chunk.copy(target, copied, this.offset, this.offset + take);
      copied += take;
      this.consume(take);
    }
    return count;
  }

  /** Advances past `count` bytes, all inside chunks[head]. */
  private consume(count: number): void {
    this.offset += count;
    this.buffered -= count;
    if (this.offset < this.chunks[this.head].length) return;
    this.offset = 0;
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 32) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private byteAt(index: number): number {
    let i = index + this.offset;
    for (let c = this.head; c < this.chunks.length; c++) {
      const chunk = this.chunks[c];
      if (i < chunk.length) return chunk[i];
      i -= chunk.length;
    }
    return 0;
  }
}

// PUBLISH is decoded and validated in decode/publish.ts; the connection calls it by this name.
export { decodePublish as decodeSimplePublish, type DecodedPublish } from './decode/publish.js';
