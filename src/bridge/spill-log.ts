// Where the hold stage writes the messages nobody waits for (device readings, QoS 0) when the cloud has not
// acknowledged them in time: an append-only log of its own, not SQLite rows. One spill batch is one frame
// (spill-codec.ts), written with one write() and one fdatasync(), so a batch costs the pages it covers and nothing
// else (a SQLite commit costs several 4 KiB WAL frames and a checkpoint writes the rows a second time).
//
// Files: <dir>/<12-digit number>.spill, a new one after SEGMENT_BYTES and after every start (a segment is never
// appended to by a later process, so a torn tail is simply where that segment ends). Which records the cloud has
// acknowledged is kept in memory only; a segment is deleted once all of its records are acknowledged (or dropped by
// the outbox's limits). After a crash the segments left are sent again from their start: at least once, duplicates
// possible (at most one segment's acknowledged records), losses not.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { OutboxRow } from './outbox.js';
import {
  decodeFrame, encodeFrame, FRAME_HEADER_BYTES, MAX_FRAME_BYTES, readFrameHeader, TopicTable, type DecodedRecord, type SpillMessage,
} from './spill-codec.js';

/** Record ids the sender sees are SPILL_ID_BASE + the record's sequence number: far above any outbox row id. */
export const SPILL_ID_BASE = 2 ** 48;
export const DEFAULT_SEGMENT_BYTES = 1024 * 1024;
/** Far below MAX_FRAME_BYTES, so that the estimate in splitBatch() can be off by a factor of 16 and still fit. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const SEGMENT_NAME = /^(\d{12})\.spill$/;

/**
 * A record as the sender takes it: an OutboxRow with id SPILL_ID_BASE + seq, and `watermark`, the outbox's last row id
 * when its batch was written (outbox rows up to it go first).
 */
export type SpillRow = OutboxRow & DecodedRecord;

export interface SpillLogOptions {
  dir: string;
  /** fdatasync every batch (durability full and normal); false with durability off. */
  sync: boolean;
  segmentBytes?: number;
  logger: Logger;
  /** The file operations, for tests that make them fail (ENOSPC, EIO); node:fs by default. */
  fs?: SpillFs;
  /**
   * A batch is cut into frames of about this many bytes at most (DEFAULT_MAX_FRAME_BYTES), all written with one write
   * and one fdatasync: a reader takes a frame over MAX_FRAME_BYTES for damage, and hold.maxBytes has no such bound.
   */
  maxFrameBytes?: number;
  /** The clock for read retries (tests); Date.now by default. */
  now?: () => number;
}

/** A segment that cannot be read (EIO, EMFILE...) is tried this many times, READ_RETRY_MS apart, then given up. */
export const READ_ATTEMPTS = 3;
export const READ_RETRY_MS = 1000;

export type SpillFs = Pick<typeof fs,
  'openSync' | 'closeSync' | 'writeSync' | 'fdatasyncSync' | 'fsyncSync' | 'ftruncateSync' | 'readSync' | 'unlinkSync' | 'readdirSync' |
  'mkdirSync' | 'readFileSync'>;

interface Segment {
  number: number;
  file: string;
  firstSeq: number;
  count: number;
  /** Sum of the records' sizes (as the outbox counts them). */
  bytes: number;
  /** Length of the valid frames in the file. */
  fileBytes: number;
  deleted: boolean;
  /** Sum of the sizes of its records acknowledged (or given up) so far. */
  ackedBytes: number;
  /** Failed reads in a row (I/O errors), and when the last one was. */
  readErrors: number;
  lastReadError: number;
}

interface Active {
  segment: Segment;
  fd: number;
  table: TopicTable;
}

export interface SpillStats {
  /** Records not yet acknowledged (or dropped). */
  records: number;
  bytes: number;
  segments: number;
  /** Batches written, records written, bytes written to files by this process. */
  batchesWritten: number;
  recordsWritten: number;
  fileBytesWritten: number;
  /** Records found unreadable (a torn tail or damage) and given up. */
  lost: number;
  /** Segment files open() could not read (skipped in this run, left on disk). */
  unreadableSegments: number;
}

/** Reads one segment's records in order, frame by frame, from its start (the topic table is built on the way). */
class Cursor {
  private fd: number | undefined;
  private offset = 0;
  private readonly table = new TopicTable();
  private records: DecodedRecord[] = [];
  private index = 0;
  /** Sequence number of the next record next() returns. */
  nextSeq: number;

  constructor(readonly segment: Segment, private readonly io: SpillFs) {
    this.nextSeq = segment.firstSeq;
  }

  /**
   * The next record, 'end' past the segment's last one (more may come to the active segment), 'damaged' when a frame
   * does not check, or the I/O error that stopped the read (the cursor is where it was: the read can be tried again).
   */
  next(): DecodedRecord | 'end' | 'damaged' | { error: unknown } {
    if (this.index >= this.records.length) {
      if (this.offset >= this.segment.fileBytes) return 'end';
      let ok: boolean;
      try {
        ok = this.readFrame();
      } catch (error) {
        this.close();
        return { error };
      }
      if (!ok) return 'damaged';
    }
    const record = this.records[this.index++]!;
    record.id = SPILL_ID_BASE + this.nextSeq++;
    return record;
  }

  private readFrame(): boolean {
    this.fd ??= this.io.openSync(this.segment.file, 'r');
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    if (this.io.readSync(this.fd, header, 0, FRAME_HEADER_BYTES, this.offset) !== FRAME_HEADER_BYTES) return false;
    const h = readFrameHeader(header);
    if (h === undefined || this.offset + FRAME_HEADER_BYTES + h.bodyLength > this.segment.fileBytes) return false;
    const body = Buffer.allocUnsafe(h.bodyLength);
    if (this.io.readSync(this.fd, body, 0, h.bodyLength, this.offset + FRAME_HEADER_BYTES) !== h.bodyLength) return false;
    const frame = decodeFrame(body, h.crc, this.table);
    if (frame === undefined || frame.records.length === 0) return false;
    this.offset += FRAME_HEADER_BYTES + h.bodyLength;
    this.records = frame.records;
    this.index = 0;
    return true;
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      this.io.closeSync(fd);
    } catch {
      // closing only
    }
  }
}

export class SpillLog {
  private readonly io: SpillFs;
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private active: Active | undefined;
  private nextNumber = 1;
  private nextSeq = 0;
  private dirReady = false;
  /** open() ran: before it, the segments a previous run left are not known and nothing may be appended. */
  private opened = false;
  /** Every record below this sequence number is acknowledged (or dropped). */
  private ackedPrefix = 0;
  /** Acknowledged records at or above ackedPrefix (PUBACKs out of order; usually empty). */
  private readonly ackedAbove = new Set<number>();
  private live = 0;
  private liveBytes = 0;
  private send: Cursor | undefined;
  private sendPending: SpillRow | undefined;
  /**
   * Records taken (sent) and not yet known to be acknowledged, in order: the first unacknowledged one is the oldest
   * record of all (everything before the send cursor is taken or acknowledged), so the limits and the age need no
   * second reader. At most the sender's window is unacknowledged; acknowledged ones are trimmed from the front.
   */
  private taken: DecodedRecord[] = [];
  private takenHead = 0;
  private readonly counters = { batchesWritten: 0, recordsWritten: 0, fileBytesWritten: 0, lost: 0, unreadableSegments: 0 };

  private readonly now: () => number;

  constructor(private readonly options: SpillLogOptions) {
    this.io = options.fs ?? fs;
    this.now = options.now ?? Date.now;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /**
   * Finds the segments a previous run left (their unacknowledged records are sent again). Reads, never writes. A
   * segment that cannot be read is skipped (logged); throws only when the directory itself cannot be listed.
   */
  open(): void {
    if (this.opened) return;
    let names: string[];
    try {
      names = this.io.readdirSync(this.options.dir) as string[];
      this.dirReady = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.opened = true;
        return;
      }
      throw err;
    }
    const numbers = names.map((n) => SEGMENT_NAME.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    for (const number of numbers) {
      const file = this.fileOf(number);
      this.nextNumber = number + 1;
      let scanned: ReturnType<SpillLog['scan']>;
      try {
        scanned = this.scan(file);
      } catch (err) {
        // One unreadable file (EIO, EACCES, not a file) must not keep the others from being replayed. It is left where
        // it is (a later start reads it if it has become readable) and no new segment takes its number.
        this.counters.unreadableSegments += 1;
        this.options.logger.error(
          { file, err: (err as Error).message },
          'bridge: spill log segment cannot be read; skipped in this run (left on disk), the other segments are replayed',
        );
        continue;
      }
      if (scanned.count === 0) {
        this.unlink(file);
        continue;
      }
      this.segments.push({ number, file, firstSeq: this.nextSeq, count: scanned.count, bytes: scanned.bytes, fileBytes: scanned.validBytes, deleted: false, ackedBytes: 0, readErrors: 0, lastReadError: 0 });
      this.nextSeq += scanned.count;
      this.live += scanned.count;
      this.liveBytes += scanned.bytes;
      if (scanned.validBytes < scanned.fileBytes) {
        this.options.logger.warn(
          { file, validBytes: scanned.validBytes, fileBytes: scanned.fileBytes, records: scanned.count },
          'bridge: spill log segment ends in a torn or damaged frame (a power cut while writing?); what follows the last whole frame is not read',
        );
      }
    }
    this.opened = true;
  }

  private scan(file: string): { count: number; bytes: number; validBytes: number; fileBytes: number } {
    const data = this.io.readFileSync(file) as Buffer;
    const table = new TopicTable();
    let offset = 0;
    let count = 0;
    let bytes = 0;
    while (offset + FRAME_HEADER_BYTES <= data.length) {
      const h = readFrameHeader(data.subarray(offset, offset + FRAME_HEADER_BYTES));
      if (h === undefined || offset + FRAME_HEADER_BYTES + h.bodyLength > data.length) break;
      const frame = decodeFrame(data.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + h.bodyLength), h.crc, table);
      if (frame === undefined) break;
      count += frame.records.length;
      for (const r of frame.records) bytes += r.size;
      offset += FRAME_HEADER_BYTES + h.bodyLength;
    }
    return { count, bytes, validBytes: offset, fileBytes: data.length };
  }

  stats(): SpillStats {
    return { records: this.live, bytes: this.liveBytes, segments: this.segments.length, ...this.counters };
  }

  get records(): number {
    return this.live;
  }

  get bytes(): number {
    return this.liveBytes;
  }

  /**
   * Appends one batch as one frame with one write and (with `sync`) one fdatasync. Returns the record ids
   * (SPILL_ID_BASE + seq), in order. Throws when it could not be written (disk full, I/O error): then nothing of the
   * batch counts as written, the file is cut back to its last whole frame, and the next batch goes to a new segment.
   */
  append(messages: readonly SpillMessage[], watermark: number): number[] {
    if (!this.opened) throw new Error('the spill log is not open yet (the outbox could not be opened)');
    if (messages.length === 0) return [];
    if (this.active !== undefined && this.active.segment.fileBytes >= this.segmentBytes) this.seal();
    const active = this.active ?? this.startSegment();
    const frames: Buffer[] = [];
    const sizes: number[] = [];
    for (const chunk of splitBatch(messages, Math.min(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_BYTES / 16))) {
      const encoded = encodeFrame(chunk, watermark, active.table);
      frames.push(encoded.frame);
      for (const size of encoded.sizes) sizes.push(size);
    }
    const frame = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
    const segment = active.segment;
    try {
      let written = 0;
      while (written < frame.length) written += this.io.writeSync(active.fd, frame, written, frame.length - written, segment.fileBytes + written);
      if (this.options.sync) this.io.fdatasyncSync(active.fd);
    } catch (err) {
      // The frame may be partly in the file (ENOSPC mid-write): cut it off so the segment ends at a whole frame, and
      // retire the segment (its topic table now has topics no frame defines).
      try {
        this.io.ftruncateSync(active.fd, segment.fileBytes);
      } catch {
        // A reader stops at the partial frame anyway (its CRC does not check).
      }
      this.seal();
      throw err;
    }
    const firstSeq = this.nextSeq;
    segment.count += messages.length;
    segment.fileBytes += frame.length;
    let bytes = 0;
    for (const s of sizes) bytes += s;
    segment.bytes += bytes;
    this.nextSeq += messages.length;
    this.live += messages.length;
    this.liveBytes += bytes;
    this.counters.batchesWritten += 1;
    this.counters.recordsWritten += messages.length;
    this.counters.fileBytesWritten += frame.length;
    return messages.map((_, i) => SPILL_ID_BASE + firstSeq + i);
  }

  private startSegment(): Active {
    if (!this.dirReady) {
      const created = this.io.mkdirSync(this.options.dir, { recursive: true });
      // The new directory's name is an entry in its parent: synced like a segment's name, or a power cut can take
      // the directory and every segment in it. (`created` is the first directory mkdir made; undefined when it was
      // there already, e.g. made by an attempt whose sync failed: its parent is synced again.)
      if (this.options.sync) {
        const top = path.dirname(created ?? this.options.dir);
        for (let d = path.dirname(this.options.dir); ; d = path.dirname(d)) {
          this.syncDir(d);
          if (d === top || d === path.dirname(d)) break;
        }
      }
      this.dirReady = true;
    }
    const number = this.nextNumber++;
    const file = this.fileOf(number);
    const fd = this.io.openSync(file, 'wx');
    try {
      // The new name must survive a power cut as well as the data appended to it.
      if (this.options.sync) this.syncDir();
    } catch (err) {
      this.io.closeSync(fd);
      this.unlink(file);
      throw err;
    }
    const segment: Segment = { number, file, firstSeq: this.nextSeq, count: 0, bytes: 0, fileBytes: 0, deleted: false, ackedBytes: 0, readErrors: 0, lastReadError: 0 };
    this.segments.push(segment);
    this.active = { segment, fd, table: new TopicTable() };
    return this.active;
  }

  private syncDir(dir = this.options.dir): void {
    const fd = this.io.openSync(dir, 'r');
    try {
      this.io.fsyncSync(fd);
    } finally {
      this.io.closeSync(fd);
    }
  }

  /** No more appends to the active segment; an empty one is removed. */
  private seal(): void {
    const active = this.active;
    if (active === undefined) return;
    this.active = undefined;
    try {
      this.io.closeSync(active.fd);
    } catch {
      // nothing more to do with it
    }
    if (active.segment.count === 0) this.removeSegment(active.segment);
    else this.collect();
  }

  /**
   * The next record to send (not consumed), in order; undefined when every record has been taken, or while the next
   * segment cannot be read (it is tried again READ_RETRY_MS later). Never throws: the sender and the outbox's limits
   * call it on their way to the outbox rows.
   */
  peek(): SpillRow | undefined {
    try {
      return this.peekRecord();
    } catch (err) {
      // Nothing below is expected to throw (read errors are handled in advance()); if it does, the outbox goes on.
      this.options.logger.error({ err: (err as Error).message }, 'bridge: spill log read failed unexpectedly');
      return undefined;
    }
  }

  private peekRecord(): SpillRow | undefined {
    if (this.live === 0) return undefined;
    for (;;) {
      if (this.sendPending !== undefined) {
        if (!this.isAcked(this.sendPending.id - SPILL_ID_BASE)) return this.sendPending;
        this.sendPending = undefined;
      }
      const next = this.advance();
      if (next === undefined) return undefined;
      if (this.isAcked(next.id - SPILL_ID_BASE)) continue;
      this.sendPending = next;
    }
  }

  /** When peek() tries an unreadable segment again (ms since the epoch), or undefined when it is not waiting to. */
  readRetryAt(): number | undefined {
    const segment = this.send?.segment;
    return segment !== undefined && segment.readErrors > 0 && !segment.deleted ? segment.lastReadError + READ_RETRY_MS : undefined;
  }

  /** Consumes what peek() returned. */
  take(): SpillRow | undefined {
    const row = this.peek();
    this.sendPending = undefined;
    if (row !== undefined) this.taken.push(row);
    return row;
  }

  /** A new connection: send again from the oldest record not acknowledged. */
  rewind(): void {
    this.send?.close();
    this.send = undefined;
    this.sendPending = undefined;
    this.taken = [];
    this.takenHead = 0;
  }

  /** The remote acknowledged a record (or it was given up): false if it already was. */
  acknowledge(id: number, size: number): boolean {
    const seq = id - SPILL_ID_BASE;
    if (seq < 0 || seq >= this.nextSeq || this.isAcked(seq)) return false;
    if (seq === this.ackedPrefix) {
      this.ackedPrefix++;
      while (this.ackedAbove.delete(this.ackedPrefix)) this.ackedPrefix++;
    } else this.ackedAbove.add(seq);
    this.live -= 1;
    this.liveBytes -= size;
    const segment = this.segmentOf(seq);
    if (segment !== undefined) segment.ackedBytes += size;
    this.trimTaken();
    this.collect();
    return true;
  }

  /**
   * A taken record that cannot be settled now (its move to bridge_dead failed): written again at the log's end (one
   * frame, synced) and the original acknowledged, so it no longer pins the oldest end of the log (the segments behind
   * it can go, `taken` can be trimmed) and is still on disk. Returns the copy's id; throws when it cannot be written,
   * then the original stays as it was.
   */
  requeue(row: SpillRow): number {
    const seq = row.id - SPILL_ID_BASE;
    if (seq < 0 || seq >= this.nextSeq || this.isAcked(seq)) throw new Error('not a record of this log waiting for settlement');
    const message: SpillMessage = {
      topic: row.topic, payload: row.payload, retain: row.retain, properties: row.properties, expiresAt: row.expiresAt, createdAt: row.createdAt,
    };
    const [id] = this.append([message], row.watermark);
    this.acknowledge(row.id, row.size);
    return id!;
  }

  private trimTaken(): void {
    while (this.takenHead < this.taken.length && this.isAcked(this.taken[this.takenHead]!.id - SPILL_ID_BASE)) this.takenHead++;
    if (this.takenHead === this.taken.length) {
      this.taken = [];
      this.takenHead = 0;
    } else if (this.takenHead > 1024 && this.takenHead * 2 > this.taken.length) {
      this.taken = this.taken.slice(this.takenHead);
      this.takenHead = 0;
    }
  }

  /** Drops the oldest record not yet acknowledged (the outbox's limits); returns its size, or undefined when none. */
  dropOldest(): { size: number; createdAt: number } | undefined {
    const head = this.oldest();
    if (head === undefined) return undefined;
    this.acknowledge(head.id, head.size);
    return { size: head.size, createdAt: head.createdAt };
  }

  /** The oldest record not yet acknowledged: its watermark (where it belongs among outbox rows) and age. */
  oldestInfo(): { watermark: number; createdAt: number } | undefined {
    const head = this.oldest();
    return head === undefined ? undefined : { watermark: head.watermark, createdAt: head.createdAt };
  }

  private oldest(): DecodedRecord | undefined {
    if (this.live === 0) return undefined;
    this.trimTaken();
    if (this.takenHead < this.taken.length) return this.taken[this.takenHead];
    return this.peek();
  }

  /** The segment holding record `seq` (segments are in sequence order). */
  private segmentOf(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (seq < s.firstSeq) hi = mid - 1;
      else if (seq >= s.firstSeq + s.count) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  private isAcked(seq: number): boolean {
    return seq < this.ackedPrefix || this.ackedAbove.has(seq);
  }

  /** The send cursor's next record, opening segments as needed. */
  private advance(): DecodedRecord | undefined {
    for (;;) {
      let cursor = this.send;
      if (cursor !== undefined && cursor.segment.deleted) {
        cursor.close();
        cursor = undefined;
      }
      if (cursor === undefined) {
        const segment = this.segments.find((s) => s.firstSeq + s.count > this.ackedPrefix);
        if (segment === undefined) return undefined;
        cursor = new Cursor(segment, this.io);
        this.send = cursor;
      }
      const segment = cursor.segment;
      if (segment.readErrors > 0 && this.now() - segment.lastReadError < READ_RETRY_MS) return undefined;
      const next = cursor.next();
      if (typeof next === 'object' && 'error' in next) {
        segment.readErrors += 1;
        segment.lastReadError = this.now();
        if (segment.readErrors < READ_ATTEMPTS) return undefined;
        this.giveUp(cursor, next.error);
      } else if (next !== 'end' && next !== 'damaged') {
        segment.readErrors = 0;
        return next;
      } else if (next === 'damaged') this.giveUp(cursor);
      const i = this.segments.indexOf(cursor.segment);
      const following = i >= 0 ? this.segments[i + 1] : this.segments.find((s) => s.firstSeq >= cursor!.nextSeq);
      if (following === undefined) return undefined;
      cursor.close();
      this.send = new Cursor(following, this.io);
    }
  }

  /**
   * A frame that read well before cannot be read now (the file was damaged, or reads fail with an I/O error
   * READ_ATTEMPTS times): its records and the rest of the segment are lost.
   */
  private giveUp(cursor: Cursor, error?: unknown): void {
    const segment = cursor.segment;
    // No more appends behind the damage: a later record there would be given up with it at the next read.
    if (this.active?.segment === segment) this.seal();
    const end = segment.firstSeq + segment.count;
    // The sizes of the records lost are not known without their frames, but their sum is: the segment's bytes less
    // those acknowledged and those before the cursor still waiting (taken since the cursor started at the segment's
    // start, so all of them are in `taken`).
    let waiting = 0;
    for (let i = this.takenHead; i < this.taken.length; i++) {
      const seq = this.taken[i]!.id - SPILL_ID_BASE;
      if (seq >= segment.firstSeq && seq < cursor.nextSeq && !this.isAcked(seq)) waiting += this.taken[i]!.size;
    }
    const lostBytes = Math.max(0, segment.bytes - segment.ackedBytes - waiting);
    let lost = 0;
    for (let seq = cursor.nextSeq; seq < end; seq++) {
      if (this.isAcked(seq)) continue;
      this.acknowledge(SPILL_ID_BASE + seq, 0);
      lost++;
    }
    segment.readErrors = 0;
    // Read again after a rewind (records before the damage not yet acknowledged): nothing more is lost, nothing to say.
    if (lost === 0) return;
    this.liveBytes = Math.max(0, this.liveBytes - lostBytes);
    segment.ackedBytes += lostBytes;
    this.counters.lost += lost;
    this.options.logger.error(
      { file: segment.file, lost, lostBytes, ...(error === undefined ? {} : { err: (error as Error).message ?? String(error), attempts: READ_ATTEMPTS }) },
      'bridge: spill log segment unreadable; its remaining records are lost',
    );
  }

  /** Deletes segments whose records are all acknowledged. */
  private collect(): void {
    while (this.segments.length > 0) {
      const first = this.segments[0]!;
      if (first.firstSeq + first.count > this.ackedPrefix) return;
      if (this.active?.segment === first) {
        // Everything written so far is acknowledged: the next batch starts a new file.
        const fd = this.active.fd;
        this.active = undefined;
        try {
          this.io.closeSync(fd);
        } catch {
          // gone already
        }
      }
      this.removeSegment(first);
    }
  }

  private removeSegment(segment: Segment): void {
    segment.deleted = true;
    // A reader's descriptor would keep the unlinked file's space until its next read: close it now.
    if (this.send?.segment === segment) {
      this.send.close();
      this.send = undefined;
    }
    const i = this.segments.indexOf(segment);
    if (i >= 0) this.segments.splice(i, 1);
    // (a guard only: given-up records' bytes are settled in giveUp)
    if (this.segments.length === 0 && this.live === 0) this.liveBytes = 0;
    this.unlink(segment.file);
  }

  private unlink(file: string): void {
    try {
      this.io.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.options.logger.warn({ file, err: (err as Error).message }, 'bridge: cannot delete an acknowledged spill log segment; it is sent again after a restart');
      }
    }
  }

  private fileOf(number: number): string {
    return path.join(this.options.dir, `${String(number).padStart(12, '0')}.spill`);
  }

  close(): void {
    this.send?.close();
    this.send = undefined;
    this.sendPending = undefined;
    this.taken = [];
    this.takenHead = 0;
    if (this.active !== undefined) {
      try {
        this.io.closeSync(this.active.fd);
      } catch {
        // closing only
      }
      this.active = undefined;
    }
  }
}

/**
 * Cuts a batch into runs whose frames stay below about `limit` bytes, by an estimate that is never below a record's
 * encoded size (payload, topic, properties as JSON (a Buffer's JSON is larger than the Buffer), and 32 bytes of
 * flags, times and lengths). A single record larger than the limit gets a frame of its own.
 */
function splitBatch(messages: readonly SpillMessage[], limit: number): SpillMessage[][] {
  const out: SpillMessage[][] = [];
  let run: SpillMessage[] = [];
  let bytes = 64;
  for (const m of messages) {
    const est = m.payload.length + Buffer.byteLength(m.topic) + (m.properties === undefined ? 0 : Buffer.byteLength(JSON.stringify(m.properties))) + 32;
    if (run.length > 0 && bytes + est > limit) {
      out.push(run);
      run = [];
      bytes = 64;
    }
    run.push(m);
    bytes += est;
  }
  if (run.length > 0) out.push(run);
  return out;
}
