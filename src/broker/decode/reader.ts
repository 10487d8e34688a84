// A cursor over one whole packet (as cut by the framer) that checks every length it reads against
// the end of the packet, or of the enclosing property block, and every string against the UTF-8
// rules (MQTT 5.0 §1.5.4, 3.1.1 §1.5.3): well-formed, no U+0000. Anything else is malformed.

import { isUtf8 } from 'node:buffer';
import { malformed } from './errors.js';

export class PacketReader {
  pos: number;
  /** Where the current field may end: the packet, or the property block being read. */
  limit: number;

  constructor(readonly frame: Buffer, start: number, readonly what: string) {
    this.pos = start;
    this.limit = frame.length;
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.limit;
  }

  private need(bytes: number, field: string): void {
    if (this.limit - this.pos < bytes) throw malformed(`${this.what}: ${field} runs past the end of the ${this.limit === this.frame.length ? 'packet' : 'property block'}`);
  }

  byte(field: string): number {
    this.need(1, field);
    return this.frame[this.pos++];
  }

  uint16(field: string): number {
    this.need(2, field);
    const value = (this.frame[this.pos] << 8) | this.frame[this.pos + 1];
    this.pos += 2;
    return value;
  }

  uint32(field: string): number {
    this.need(4, field);
    const value = this.frame.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  /** Variable Byte Integer (§1.5.5): at most four bytes. */
  varint(field: string): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.byte(field);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        // [MQTT-1.5.5-1]: the fewest bytes that hold the value.
        if (byte === 0 && i > 0) throw malformed(`${this.what}: ${field} is not minimally encoded`);
        return value;
      }
      multiplier *= 128;
    }
    throw malformed(`${this.what}: ${field} is a variable byte integer longer than four bytes`);
  }

  /** A UTF-8 Encoded String (§1.5.4). */
  string(field: string): string {
    const length = this.uint16(`${field} length`);
    this.need(length, field);
    const start = this.pos;
    this.pos += length;
    checkUtf8(this.frame, start, this.pos, this.what, field);
    return this.frame.toString('utf8', start, this.pos);
  }

  /** Binary Data (§1.5.6), copied: it may outlive the socket's read buffer. */
  binary(field: string): Buffer {
    const length = this.uint16(`${field} length`);
    this.need(length, field);
    const bytes = Buffer.allocUnsafe(length);
    this.frame.copy(bytes, 0, this.pos, this.pos + length);
    this.pos += length;
    return bytes;
  }

  /** Everything up to the end of the packet, copied. */
  rest(): Buffer {
    const bytes = Buffer.allocUnsafe(this.frame.length - this.pos);
    this.frame.copy(bytes, 0, this.pos);
    this.pos = this.frame.length;
    return bytes;
  }

  /** Nothing may follow the last field [e.g. MQTT-3.1.2 "surplus data"]. */
  expectEnd(): void {
    if (this.pos !== this.frame.length) throw malformed(`${this.what}: ${this.frame.length - this.pos} byte(s) after the last field`);
  }
}

/** Well-formed UTF-8 without U+0000 in frame[start, end) [MQTT-1.5.4-1, MQTT-1.5.4-2]; throws malformed. */
export function checkUtf8(frame: Buffer, start: number, end: number, what: string, field: string): void {
  let high = false;
  for (let i = start; i < end; i++) {
    const byte = frame[i];
    if (byte === 0) throw malformed(`${what}: ${field} contains U+0000`);
    if (byte >= 0x80) high = true;
  }
  if (high && !isUtf8(frame.subarray(start, end))) throw malformed(`${what}: ${field} is not well-formed UTF-8`);
}
