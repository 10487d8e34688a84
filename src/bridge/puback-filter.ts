// Takes the remote's plain PUBACKs for the outbox sender's packets out of the received bytes before MQTT.js parses
// them: MQTT.js would parse each one through mqtt-packet and handle it on its own process.nextTick, which was about a
// quarter of the gateway's CPU per drained message. Everything else (CONNACK, PINGRESP, inbound PUBLISH, SUBACK,
// PUBACKs with properties or for MQTT.js's own packet ids, malformed bytes) reaches MQTT.js unchanged and in order.
import type { Readable } from 'node:stream';

/** Called for a complete PUBACK frame; returns false when the packet id is not the sender's (the frame is passed on). */
export type PubackTaker = (packetId: number, reasonCode: number) => boolean;

/**
 * Splits a byte stream into MQTT frames, only as far as needed: the fixed header of each frame is read to find the next
 * one; a frame is removed only if it is a PUBACK without properties (remaining length 2, or 3 with MQTT 5's reason code)
 * that the taker accepts. Frames split across chunks are handled: a partial header or PUBACK (at most 6 bytes) is held
 * until the next chunk; the rest of a long frame that is passed on is passed on as it arrives.
 */
export class PubackFramer {
  /** The start of a frame whose header, or whose PUBACK body, has not fully arrived. */
  private held: Buffer | undefined;
  /** Bytes still to come of a frame that is being passed on. */
  private passing = 0;
  /** A remaining length longer than 4 bytes: no more framing, everything goes to MQTT.js, whose parser reports it. */
  private broken = false;
  /** PUBACKs taken out so far. */
  taken = 0;

  constructor(
    private readonly v5: boolean,
    private readonly take: PubackTaker,
  ) {}

  /** Consumes one received chunk; returns the bytes that MQTT.js must see (undefined when none). */
  feed(input: Buffer): Buffer | undefined {
    if (this.broken) return input;
    let chunk = input;
    if (this.held !== undefined) {
      chunk = Buffer.concat([this.held, input]);
      this.held = undefined;
    }
    const end = chunk.length;
    let pos = 0;
    if (this.passing > 0) {
      const n = Math.min(this.passing, end);
      this.passing -= n;
      if (this.passing > 0) return chunk;
      pos = n;
    }
    // Bytes from keptFrom up to a removed PUBACK (or to the end) are passed on.
    let keptFrom = 0;
    let kept: Buffer[] | undefined;
    let passEnd = end;
    while (pos < end) {
      const type = chunk[pos]!;
      let remaining = 0;
      let multiplier = 1;
      let i = pos + 1;
      let complete = false;
      while (i < end && i <= pos + 4) {
        const b = chunk[i++]!;
        remaining += (b & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i > pos + 4) {
          this.broken = true;
          break;
        }
        this.hold(chunk, pos);
        passEnd = pos;
        break;
      }
      const frameEnd = i + remaining;
      if (type === 0x40 && (remaining === 2 || (this.v5 && (remaining === 3 || remaining === 4)))) {
        if (frameEnd > end) {
          this.hold(chunk, pos);
          passEnd = pos;
          break;
        }
        const packetId = (chunk[i]! << 8) | chunk[i + 1]!;
        const reasonCode = remaining >= 3 ? chunk[i + 2]! : 0;
        // Remaining length 4 is a reason code and an empty property list; anything else there is MQTT.js's to report.
        if ((remaining < 4 || chunk[i + 3] === 0) && this.take(packetId, reasonCode)) {
          this.taken += 1;
          if (pos > keptFrom) (kept ??= []).push(chunk.subarray(keptFrom, pos));
          keptFrom = frameEnd;
        }
        pos = frameEnd;
        continue;
      }
      if (frameEnd > end) {
        this.passing = frameEnd - end;
        break;
      }
      pos = frameEnd;
    }
    if (passEnd > keptFrom) {
      const tail = keptFrom === 0 && passEnd === end ? chunk : chunk.subarray(keptFrom, passEnd);
      if (kept === undefined) return tail;
      kept.push(tail);
    }
    if (kept === undefined) return undefined;
    return kept.length === 1 ? kept[0] : Buffer.concat(kept);
  }

  private hold(chunk: Buffer, from: number): void {
    this.held = Buffer.from(chunk.subarray(from));
  }
}

/**
 * Puts the framer between a stream's data source and its readers: every chunk the stream's implementation pushes
 * (net and TLS sockets, the WebSocket duplex of MQTT.js) goes through `framer.feed` first. Install it before any data
 * arrives (right after the stream is created), so that the framer starts at the first frame.
 */
export function filterPubacks(stream: Readable, framer: PubackFramer, onError: (err: Error) => void): void {
  const push = stream.push;
  stream.push = function filteredPush(this: Readable, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || chunk === undefined) return push.call(this, chunk, encoding);
    if (!(chunk instanceof Uint8Array)) {
      // Not bytes (no known transport does this): stop filtering rather than lose framing.
      stream.push = push;
      return push.call(this, chunk, encoding);
    }
    let rest: Buffer | undefined;
    try {
      rest = framer.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    if (rest === undefined) return this.readableLength < this.readableHighWaterMark;
    return push.call(this, rest);
  } as Readable['push'];
}
