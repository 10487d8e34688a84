// The on-disk format of the spill log (spill-log.ts): one frame per spill batch, appended and synced in one go.
//
//   frame  = u32le bodyLength, u32le crc32(body), body
//   body   = u8 version (1), varint count, varint baseCreatedAt, varint watermark, record × count
//   record = u8 flags, topic, zigzag (createdAt - baseCreatedAt), [zigzag (expiresAt - createdAt)], [props],
//            varint n, n bytes payload
//   topic  = flags & NEW_TOPIC: varint n, n bytes (becomes the segment's next topic index);
//            flags & INLINE_TOPIC: varint n, n bytes (not indexed: the segment's table is full);
//            otherwise: varint index of a topic defined earlier in the same segment
//   props  = (flags & HAS_PROPS) the MQTT 5 properties as JSON, indexed the same way (NEW_PROPS, INLINE_PROPS): a
//            device's readings repeat theirs ({"userProperties":{"unit":"V"}}) with every value
//
// A frame whose length or CRC does not check (a write torn by a power cut, or damage) ends the segment: it and
// everything after it are not read. `watermark` is the outbox's last row id when the batch was written, so the
// sender can put each batch where its rows would have been in the outbox (the order per topic is the outbox's).
import { crc32 } from 'node:zlib';
import type { MessageProperties } from '../broker/types.js';
import type { OutboxRow } from './outbox.js';

export const FRAME_HEADER_BYTES = 8;
/** A frame larger than this is taken for damage (a batch is at most the hold stage's maxBytes plus overhead). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
const VERSION = 1;
const RETAIN = 1;
const HAS_PROPS = 2;
const HAS_EXPIRY = 4;
const NEW_TOPIC = 8;
const INLINE_TOPIC = 16;
const NEW_PROPS = 32;
const INLINE_PROPS = 64;
/** Topics (and property sets) one segment indexes; more are written out in full in each record. */
export const MAX_TOPICS_PER_SEGMENT = 4096;

/** What a spill record keeps of a message: the outbox row's fields less its id and size. */
export type SpillMessage = Pick<OutboxRow, 'topic' | 'payload' | 'retain' | 'properties' | 'expiresAt' | 'createdAt'>;

export interface DecodedRecord extends SpillMessage {
  /** Set by the reader: the id the sender knows it by (SPILL_ID_BASE + its sequence number). */
  id: number;
  /** What the record counts towards the outbox's maxBytes (as OutboxRow.size). */
  size: number;
  /** The batch's watermark. */
  watermark: number;
}

export interface DecodedFrame {
  watermark: number;
  records: DecodedRecord[];
}

/** One segment's table of repeated strings, as the writer builds it and as a reader rebuilds it from the start. */
export class StringTable {
  private readonly indexOf = new Map<string, number>();
  readonly topics: string[] = [];

  lookup(topic: string): number | undefined {
    return this.indexOf.get(topic);
  }

  add(topic: string): void {
    this.indexOf.set(topic, this.topics.length);
    this.topics.push(topic);
  }

  get full(): boolean {
    return this.topics.length >= MAX_TOPICS_PER_SEGMENT;
  }
}

/** The tables of one segment: topics and property sets. */
export class TopicTable {
  readonly topics = new StringTable();
  readonly props = new StringTable();
}

/** Writes `value` as an index into `table` when it is there, else in full (and adds it unless the table is full). */
function tableFlags(table: StringTable, value: string, newFlag: number, inlineFlag: number): { flags: number; index: number | undefined } {
  const index = table.lookup(value);
  if (index !== undefined) return { flags: 0, index };
  return { flags: table.full ? inlineFlag : newFlag, index: undefined };
}

/** The size the outbox counts for a message (payload + topic + properties JSON). */
export function messageSize(topic: string, payload: Buffer, propsJson: string | null): number {
  return payload.length + Buffer.byteLength(topic) + (propsJson === null ? 0 : Buffer.byteLength(propsJson));
}

export function encodeProps(p: MessageProperties | undefined): string | null {
  if (p === undefined || Object.keys(p).length === 0) return null;
  const { correlationData, ...rest } = p;
  return JSON.stringify(correlationData === undefined ? rest : { ...rest, correlationData: correlationData.toString('base64') });
}

function decodeProps(json: string): MessageProperties | undefined {
  try {
    const { correlationData, ...rest } = JSON.parse(json) as MessageProperties & { correlationData?: string };
    return correlationData === undefined ? rest : { ...rest, correlationData: Buffer.from(correlationData, 'base64') };
  } catch {
    return undefined;
  }
}

class Writer {
  private buf: Buffer;
  length = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, size));
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }

  /** Unsigned, up to 2^53: seven bits a byte, arithmetic (not bitwise, which stops at 32 bits). */
  varint(n: number): void {
    this.room(8);
    let v = Math.max(0, Math.floor(n));
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  zigzag(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  bytes(b: Buffer): void {
    this.varint(b.length);
    this.room(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }

  text(s: string): void {
    this.bytes(Buffer.from(s));
  }

  u32At(offset: number, n: number): void {
    this.buf.writeUInt32LE(n >>> 0, offset);
  }

  slice(from: number): Buffer {
    return this.buf.subarray(from, this.length);
  }

  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Encodes one batch as a frame, adding new topics to the segment's table (the caller keeps the table only if the
 * frame is written: on a failed write it must start a new segment, see SpillLog).
 */
export function encodeFrame(messages: readonly SpillMessage[], watermark: number, table: TopicTable): { frame: Buffer; sizes: number[] } {
  const w = new Writer(64 + messages.reduce((n, m) => n + m.payload.length + 16, 0));
  w.length = FRAME_HEADER_BYTES;
  const base = messages.length > 0 ? messages[0]!.createdAt : 0;
  w.byte(VERSION);
  w.varint(messages.length);
  w.varint(base);
  w.varint(watermark);
  const sizes: number[] = [];
  for (const m of messages) {
    const props = encodeProps(m.properties);
    const topic = tableFlags(table.topics, m.topic, NEW_TOPIC, INLINE_TOPIC);
    const prop = props === null ? undefined : tableFlags(table.props, props, NEW_PROPS, INLINE_PROPS);
    w.byte((m.retain ? RETAIN : 0) | (m.expiresAt !== null ? HAS_EXPIRY : 0) | topic.flags | (prop === undefined ? 0 : HAS_PROPS | prop.flags));
    if (topic.index !== undefined) w.varint(topic.index);
    else {
      w.text(m.topic);
      if (topic.flags === NEW_TOPIC) table.topics.add(m.topic);
    }
    w.zigzag(m.createdAt - base);
    if (m.expiresAt !== null) w.zigzag(m.expiresAt - m.createdAt);
    if (prop !== undefined) {
      if (prop.index !== undefined) w.varint(prop.index);
      else {
        w.text(props!);
        if (prop.flags === NEW_PROPS) table.props.add(props!);
      }
    }
    w.bytes(m.payload);
    sizes.push(messageSize(m.topic, m.payload, props));
  }
  const body = w.slice(FRAME_HEADER_BYTES);
  w.u32At(0, body.length);
  w.u32At(4, crc32(body));
  return { frame: w.done(), sizes };
}

/** The frame header at `offset`: the body's length, or undefined when what is there cannot be a frame (torn, damaged). */
export function readFrameHeader(header: Buffer): { bodyLength: number; crc: number } | undefined {
  if (header.length < FRAME_HEADER_BYTES) return undefined;
  const bodyLength = header.readUInt32LE(0);
  if (bodyLength === 0 || bodyLength > MAX_FRAME_BYTES) return undefined;
  return { bodyLength, crc: header.readUInt32LE(4) };
}

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    if (this.offset >= this.buf.length) throw new RangeError('frame ends early');
    return this.buf[this.offset++]!;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw new RangeError('varint too long');
  }

  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  bytes(): Buffer {
    const n = this.varint();
    if (this.offset + n > this.buf.length) throw new RangeError('frame ends early');
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  text(): string {
    return this.bytes().toString();
  }
}

function readString(r: Reader, table: StringTable, flags: number, newFlag: number, inlineFlag: number): string | undefined {
  if ((flags & (newFlag | inlineFlag)) === 0) return table.topics[r.varint()];
  const value = r.text();
  if ((flags & newFlag) !== 0) table.add(value);
  return value;
}

/**
 * Decodes a frame's body whose CRC has been checked against `crc`; undefined when it does not check or does not
 * parse (the caller treats the rest of the segment as gone). New topics are added to `table`.
 */
export function decodeFrame(body: Buffer, crc: number, table: TopicTable): DecodedFrame | undefined {
  if (crc32(body) !== crc) return undefined;
  try {
    const r = new Reader(body);
    if (r.byte() !== VERSION) return undefined;
    const count = r.varint();
    const base = r.varint();
    const watermark = r.varint();
    const records: DecodedRecord[] = [];
    for (let i = 0; i < count; i++) {
      const flags = r.byte();
      const topic = readString(r, table.topics, flags, NEW_TOPIC, INLINE_TOPIC);
      if (topic === undefined) return undefined;
      const createdAt = base + r.zigzag();
      const expiresAt = (flags & HAS_EXPIRY) !== 0 ? createdAt + r.zigzag() : null;
      const propsJson = (flags & HAS_PROPS) !== 0 ? readString(r, table.props, flags, NEW_PROPS, INLINE_PROPS) : null;
      if (propsJson === undefined) return undefined;
      // A view: each frame's body is a buffer of its own (see SegmentCursor), owned by its records from here on.
      const payload = r.bytes();
      records.push({
        id: 0, watermark, topic, payload, retain: (flags & RETAIN) !== 0,
        properties: propsJson === null ? undefined : decodeProps(propsJson),
        expiresAt, createdAt, size: messageSize(topic, payload, propsJson),
      });
    }
    if (r.offset !== body.length) return undefined;
    return { watermark, records };
  } catch {
    return undefined;
  }
}
