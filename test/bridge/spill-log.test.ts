// The spill log (src/bridge/spill-log.ts) on real files: order, topic tables, a torn tail after a power cut, a crash
// between write and acknowledgement, replay after a restart, segment deletion, a full disk (injected ENOSPC, and a
// real size-limited tmpfs when root).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SPILL_ID_BASE, SpillLog, type SpillFs, type SpillRow } from '../../src/bridge/spill-log.js';
import type { SpillMessage } from '../../src/bridge/spill-codec.js';
import Database from 'better-sqlite3';
import { Outbox } from '../../src/bridge/outbox.js';
import { outboxLimitsSchema } from '../../src/bridge/config.js';
import { captureLogger, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      // keep cleaning up
    }
  }
});

function newDir(): string {
  const d = tempDir('fieldgate-spill-');
  cleanups.push(() => d.remove());
  return path.join(d.path, 'spill-cloud');
}

function open(dir: string, extra: Partial<ConstructorParameters<typeof SpillLog>[0]> = {}): { log: SpillLog; entries: { msg?: unknown }[] } {
  const { logger, entries } = captureLogger();
  const log = new SpillLog({ dir, sync: true, logger, ...extra });
  log.open();
  cleanups.push(() => log.close());
  return { log, entries };
}

let seq = 0;
function messages(n: number, topic = (i: number) => `fleet/gw/meter/p${i % 3}`): SpillMessage[] {
  return Array.from({ length: n }, (_, i) => {
    const k = seq++;
    return { topic: topic(k), payload: Buffer.from(`v${k}`), retain: k % 2 === 0, properties: undefined, expiresAt: null, createdAt: 1_700_000_000_000 + k };
  });
}

/** Everything the log gives to send now, in order (consumed). */
function drain(log: SpillLog): SpillRow[] {
  const out: SpillRow[] = [];
  for (let row = log.take(); row !== undefined; row = log.take()) out.push(row);
  return out;
}

const payloads = (rows: { payload: Buffer }[]) => rows.map((r) => r.payload.toString());
const segments = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.spill')).sort() : []);

describe('spill log', () => {
  it('gives back every record in order with its topic, flags, properties and times, also after a restart', () => {
    const dir = newDir();
    const { log } = open(dir);
    const batch: SpillMessage[] = [
      { topic: 'a/1', payload: Buffer.from('one'), retain: true, properties: undefined, expiresAt: null, createdAt: 1000 },
      { topic: 'a/2', payload: Buffer.alloc(0), retain: false, properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { k: 'v' } }, expiresAt: 61_000, createdAt: 999 },
      { topic: 'a/1', payload: Buffer.from('three'), retain: false, properties: undefined, expiresAt: null, createdAt: 1500 },
      { topic: 'ü/ñ', payload: Buffer.from([0, 255, 10]), retain: false, properties: undefined, expiresAt: null, createdAt: 1500 },
    ];
    const ids = log.append(batch, 42);
    expect(ids).toEqual([0, 1, 2, 3].map((i) => SPILL_ID_BASE + i));
    expect(log.stats()).toMatchObject({ records: 4, segments: 1, batchesWritten: 1, recordsWritten: 4 });
    const check = (rows: SpillRow[]) => {
      expect(rows.map((r) => r.topic)).toEqual(['a/1', 'a/2', 'a/1', 'ü/ñ']);
      expect(rows.map((r) => r.retain)).toEqual([true, false, false, false]);
      expect(rows.map((r) => r.createdAt)).toEqual([1000, 999, 1500, 1500]);
      expect(rows.map((r) => r.expiresAt)).toEqual([null, 61_000, null, null]);
      expect(rows.every((r) => r.watermark === 42)).toBe(true);
      expect(rows[1]!.properties).toEqual({ contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { k: 'v' } });
      expect(rows[3]!.payload).toEqual(Buffer.from([0, 255, 10]));
      expect(rows[0]!.size).toBe(3 + 3);
    };
    check(drain(log));
    log.close();
    const again = open(dir).log;
    expect(again.stats()).toMatchObject({ records: 4, segments: 1 });
    check(drain(again));
  });

  it('writes a batch as one frame: a second batch costs its records, not a page of overhead each', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(100), 0);
    const first = fs.statSync(path.join(dir, segments(dir)[0]!)).size;
    log.append(messages(100), 0);
    const second = fs.statSync(path.join(dir, segments(dir)[0]!)).size - first;
    // topic (known: 1 byte) + flags + time + payload length + ~4-byte payload: ≈ 10 bytes a record
    expect(second).toBeLessThan(100 * 16 + 32);
    expect(log.stats().fileBytesWritten).toBe(first + second);
    // A device's readings repeat their properties ({"userProperties":{"unit":"V"}}): written once per segment too.
    const withUnit = (n: number) => messages(n).map((m) => ({ ...m, properties: { userProperties: { unit: 'V' } } }));
    log.append(withUnit(1), 0);
    const before = fs.statSync(path.join(dir, segments(dir)[0]!)).size;
    log.append(withUnit(100), 0);
    expect(fs.statSync(path.join(dir, segments(dir)[0]!)).size - before).toBeLessThan(100 * 17 + 32);
    const rows = drain(log);
    expect(rows.slice(-101).every((r) => (r.properties?.userProperties as Record<string, string> | undefined)?.unit === 'V')).toBe(true);
    expect(rows.slice(0, 200).every((r) => r.properties === undefined)).toBe(true);
  });

  it('a torn tail (power cut during a write) is detected and dropped; what came before is kept; the next start writes a new segment', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(5), 0);
    log.append(messages(5), 0);
    const file = path.join(dir, segments(dir)[0]!);
    const whole = fs.statSync(file).size;
    log.append(messages(5), 0);
    log.close();
    // A power cut in the middle of the third frame: part of it reached the disk.
    const full = fs.statSync(file).size;
    fs.truncateSync(file, whole + Math.floor((full - whole) / 2));
    const { log: again, entries } = open(dir);
    expect(entries.some((e) => String(e.msg).includes('torn or damaged'))).toBe(true);
    expect(again.stats().records).toBe(10);
    again.append(messages(2), 0);
    expect(segments(dir)).toHaveLength(2);
    const rows = drain(again);
    expect(rows).toHaveLength(12);
    for (const r of rows) again.acknowledge(r.id, r.size);
    expect(segments(dir)).toEqual([]);
  });

  it('garbage after the last frame, and a flipped bit inside one, end the segment there', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(3), 0);
    const file = path.join(dir, segments(dir)[0]!);
    const oneFrame = fs.statSync(file).size;
    log.append(messages(3), 0);
    log.close();
    const bytes = fs.readFileSync(file);
    bytes[oneFrame + 12] ^= 0x40;
    fs.writeFileSync(file, Buffer.concat([bytes, Buffer.from('not a frame at all')]));
    const again = open(dir).log;
    expect(payloads(drain(again))).toHaveLength(3);
  });

  it('a crash between the write and the acknowledgement loses nothing: the next start sends it again', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(4), 0);
    const sent = drain(log);
    expect(sent).toHaveLength(4);
    // kill -9 before any PUBACK: no close(), nothing else written
    const again = open(dir).log;
    expect(payloads(drain(again))).toEqual(payloads(sent));
  });

  it('after a restart the unacknowledged segments are replayed: at least once, duplicates of a partly acknowledged segment, no loss', () => {
    const dir = newDir();
    // small segments: a new one every ~3 batches
    const { log } = open(dir, { segmentBytes: 100 });
    for (let b = 0; b < 9; b++) log.append(messages(3), b);
    const count = segments(dir).length;
    expect(count).toBeGreaterThanOrEqual(3);
    const all = drain(log);
    expect(all).toHaveLength(27);
    // the remote acknowledged the first 10 (whole first segments go) and, out of order, the 12th
    for (const r of all.slice(0, 10)) log.acknowledge(r.id, r.size);
    log.acknowledge(all[11]!.id, all[11]!.size);
    expect(log.stats().records).toBe(16);
    expect(segments(dir).length).toBeLessThan(count);
    const again = open(dir, { segmentBytes: 100 }).log;
    const replayed = payloads(drain(again));
    const expected = payloads(all.slice(10)).filter((p) => p !== all[11]!.payload.toString());
    // every unacknowledged one, in order; acknowledged ones of a segment still on disk may come again
    expect(expected.every((p) => replayed.includes(p))).toBe(true);
    expect(replayed).toEqual([...replayed].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
    // the deleted segments are not sent again: only records of segments still on disk
    expect(replayed.length).toBeLessThan(27);
    expect(replayed.length).toBeGreaterThanOrEqual(expected.length);
  });

  it('rewind sends again from the oldest unacknowledged record; acknowledged ones are skipped', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(6), 0);
    const sent = drain(log);
    log.acknowledge(sent[0]!.id, sent[0]!.size);
    log.acknowledge(sent[2]!.id, sent[2]!.size);
    log.rewind();
    expect(payloads(drain(log))).toEqual(payloads([sent[1]!, sent[3]!, sent[4]!, sent[5]!]));
    // a second PUBACK for the same record changes nothing
    expect(log.acknowledge(sent[0]!.id, sent[0]!.size)).toBe(false);
    expect(log.stats().records).toBe(4);
  });

  it('deletes a segment (also the one being written) once all of its records are acknowledged; the next batch starts a new file', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(3), 0);
    const first = segments(dir);
    expect(first).toHaveLength(1);
    const rows = drain(log);
    for (const r of rows.slice(0, 2)) log.acknowledge(r.id, r.size);
    expect(segments(dir)).toEqual(first);
    log.acknowledge(rows[2]!.id, rows[2]!.size);
    expect(segments(dir)).toEqual([]);
    expect(log.stats()).toMatchObject({ records: 0, bytes: 0, segments: 0 });
    log.append(messages(1), 0);
    expect(segments(dir)).toHaveLength(1);
    expect(segments(dir)[0]).not.toBe(first[0]);
    expect(drain(log)).toHaveLength(1);
  });

  it('appends nothing before open() has found what a previous run left', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(2), 0);
    log.close();
    const { logger } = captureLogger();
    const early = new SpillLog({ dir, sync: true, logger });
    cleanups.push(() => early.close());
    expect(() => early.append(messages(1), 0)).toThrow(/not open/);
    early.open();
    early.append(messages(1), 0);
    expect(drain(early)).toHaveLength(3);
  });

  it('drops the oldest for the limits and tells where its batch belongs among outbox rows', () => {
    const dir = newDir();
    const { log } = open(dir);
    log.append(messages(2), 7);
    log.append(messages(2), 9);
    expect(log.oldestInfo()).toMatchObject({ watermark: 7 });
    const sent = drain(log);
    expect(log.dropOldest()).toMatchObject({ size: sent[0]!.size });
    expect(log.dropOldest()).toBeDefined();
    expect(log.oldestInfo()).toMatchObject({ watermark: 9 });
    // a PUBACK for a dropped record that was in flight is ignored
    expect(log.acknowledge(sent[0]!.id, sent[0]!.size)).toBe(false);
    expect(log.stats().records).toBe(2);
  });
});

describe('spill log on a full disk', () => {
  /** node:fs, except that writes fail with ENOSPC while `full` (after writing `partial` bytes of one). */
  function failingFs(state: { full: boolean; partial: number; syncFails?: boolean }): SpillFs {
    const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return {
      ...fs,
      writeSync: ((fd: number, buffer: Buffer, offset: number, length: number, position: number) => {
        if (!state.full) return fs.writeSync(fd, buffer, offset, length, position);
        if (state.partial > 0) {
          const n = Math.min(state.partial, length);
          state.partial = 0;
          return fs.writeSync(fd, buffer, offset, n, position);
        }
        throw enospc();
      }) as SpillFs['writeSync'],
      fdatasyncSync: ((fd: number) => {
        if (state.syncFails === true) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        fs.fdatasyncSync(fd);
      }) as SpillFs['fdatasyncSync'],
    };
  }

  it('a write that fails half-way is cut back to the last whole frame; nothing of it counts; the next batch goes to a new segment', () => {
    const dir = newDir();
    const state = { full: false, partial: 0 };
    const { log } = open(dir, { fs: failingFs(state) });
    log.append(messages(3), 0);
    const file = path.join(dir, segments(dir)[0]!);
    const size = fs.statSync(file).size;
    state.full = true;
    state.partial = 5;
    expect(() => log.append(messages(3), 0)).toThrow(/ENOSPC/);
    expect(fs.statSync(file).size).toBe(size);
    expect(log.stats()).toMatchObject({ records: 3, recordsWritten: 3 });
    // creating the next segment fails too while the disk is full
    expect(() => log.append(messages(3), 0)).toThrow(/ENOSPC/);
    state.full = false;
    log.append(messages(2), 0);
    expect(log.stats().records).toBe(5);
    expect(segments(dir)).toHaveLength(2);
    const sent = drain(log);
    expect(sent).toHaveLength(5);
    log.close();
    expect(drain(open(dir).log)).toHaveLength(5);
  });

  it('an fdatasync that fails counts as a failed write', () => {
    const dir = newDir();
    const state = { full: false, partial: 0, syncFails: true };
    const { log } = open(dir, { fs: failingFs(state) });
    expect(() => log.append(messages(2), 0)).toThrow(/EIO/);
    expect(log.stats().records).toBe(0);
    state.syncFails = false;
    log.append(messages(2), 0);
    expect(drain(log)).toHaveLength(2);
  });

  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)('on a real 256 KiB tmpfs: writes fail with ENOSPC, what was written stays readable, writing resumes when space is freed', () => {
    const base = tempDir('fieldgate-spill-tmpfs-');
    const mount = path.join(base.path, 'mnt');
    fs.mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount]);
    cleanups.push(() => base.remove());
    cleanups.push(() => execFileSync('umount', ['-l', mount]));
    const dir = path.join(mount, 'spill-cloud');
    const { log } = open(dir, { segmentBytes: 64 * 1024 });
    let written = 0;
    let failure: unknown;
    const big = (n: number) => messages(n).map((m) => ({ ...m, payload: Buffer.alloc(1000, 0x61) }));
    for (let i = 0; i < 1000 && failure === undefined; i++) {
      try {
        log.append(big(10), 0);
        written += 10;
      } catch (err) {
        failure = err;
      }
    }
    expect((failure as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(written).toBeGreaterThan(50);
    expect(log.stats().records).toBe(written);
    // free space: the remote acknowledges the oldest segments
    const sent = drain(log);
    expect(sent).toHaveLength(written);
    for (const r of sent.slice(0, written / 2)) log.acknowledge(r.id, r.size);
    log.append(big(10), 0);
    log.close();
    const again = open(dir).log;
    const replayed = drain(again).map((r) => r.createdAt);
    // every record not acknowledged is there, in order (acknowledged ones of a segment still there may come again)
    const unacknowledged = sent.slice(written / 2).map((r) => r.createdAt);
    expect(unacknowledged.every((t) => replayed.includes(t))).toBe(true);
    expect(replayed).toEqual([...replayed].sort((a, b) => a - b));
    expect(replayed.length).toBe(new Set(replayed).size);
    expect(replayed.length).toBeGreaterThanOrEqual(unacknowledged.length + 10);
  });
});

describe('spill log read errors (EIO, EMFILE)', () => {
  /** node:fs, with readSync failing (EIO) for one file while `failing` is set. */
  function eioFs(state: { failFile: string | undefined; reads: number }): SpillFs {
    const fdFile = new Map<number, string>();
    return {
      ...fs,
      openSync: ((file: string, flags: string) => {
        const fd = fs.openSync(file, flags);
        fdFile.set(fd, file);
        return fd;
      }) as SpillFs['openSync'],
      readSync: ((fd: number, ...rest: Parameters<typeof fs.readSync> extends [number, ...infer R] ? R : never) => {
        if (state.failFile !== undefined && fdFile.get(fd) === state.failFile) {
          state.reads++;
          throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        }
        return (fs.readSync as (fd: number, ...a: unknown[]) => number)(fd, ...rest);
      }) as SpillFs['readSync'],
    };
  }

  it('a segment whose reads fail is retried, then given up like a damaged one (logged, counted lost); the next segments and peek go on without throwing', () => {
    const dir = newDir();
    const first = open(dir, { segmentBytes: 1 });
    first.log.append(messages(3), 0);
    first.log.append(messages(2), 0);
    first.log.close();
    const files = segments(dir);
    expect(files).toHaveLength(2);
    const state = { failFile: path.join(dir, files[0]!) as string | undefined, reads: 0 };
    let now = 1_000_000;
    const { log, entries } = open(dir, { fs: eioFs(state), now: () => now });
    expect(log.records).toBe(5);
    // First attempt fails: nothing to send from the log for now, and no exception (the outbox rows go on).
    expect(log.peek()).toBeUndefined();
    expect(log.oldestInfo()).toBeUndefined();
    expect(state.reads).toBe(1);
    // The sender is told when to look again (nothing else may wake its pump).
    expect(log.readRetryAt()).toBe(now + 1000);
    // Within the retry interval it is not read again.
    expect(log.peek()).toBeUndefined();
    expect(state.reads).toBe(1);
    now += 1000;
    expect(log.peek()).toBeUndefined();
    expect(state.reads).toBe(2);
    now += 1000;
    const rest = drain(log);
    expect(state.reads).toBe(3);
    expect(log.readRetryAt()).toBeUndefined();
    expect(payloads(rest)).toHaveLength(2);
    expect(log.stats().lost).toBe(3);
    const errors = entries.filter((e) => String(e.msg).includes('unreadable'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: path.join(dir, files[0]!), lost: 3, err: expect.stringContaining('EIO') });
    for (const r of rest) log.acknowledge(r.id, r.size);
    expect(log.records).toBe(0);
    expect(segments(dir)).toEqual([]);
  });

  it('a read that fails once and then succeeds loses nothing', () => {
    const dir = newDir();
    const first = open(dir);
    first.log.append(messages(4), 0);
    first.log.close();
    const state = { failFile: path.join(dir, segments(dir)[0]!) as string | undefined, reads: 0 };
    let now = 5_000;
    const { log } = open(dir, { fs: eioFs(state), now: () => now });
    expect(log.peek()).toBeUndefined();
    state.failFile = undefined;
    now += 1000;
    expect(drain(log)).toHaveLength(4);
    expect(log.stats().lost).toBe(0);
  });

  it('the outbox at its limits with an unreadable spill log still commits (the error does not reach enqueue)', () => {
    const dir = newDir();
    const first = open(dir);
    first.log.append(messages(2), 0);
    first.log.close();
    const state = { failFile: path.join(dir, segments(dir)[0]!) as string | undefined, reads: 0 };
    const { log } = open(dir, { fs: eioFs(state), now: () => 0 });
    const db = new Database(':memory:');
    cleanups.push(() => db.close());
    const outbox = new Outbox(db, 'cloud', outboxLimitsSchema.parse({ maxRows: 3, policy: 'drop-oldest' }), captureLogger().logger);
    outbox.open();
    outbox.attachCompanion(log);
    for (let i = 0; i < 5; i++) expect(outbox.enqueue(`t/${i}`, Buffer.from(`m${i}`), false)).toBe(true);
    expect(state.reads).toBeGreaterThan(0);
    expect(outbox.stats().rows + log.records).toBeLessThanOrEqual(3);
  });
});

describe('spill log start with an unreadable segment', () => {
  it('skips (and logs) only the segment that cannot be read; the readable ones are replayed; new segments do not take its number', () => {
    const dir = newDir();
    const first = open(dir, { segmentBytes: 1 });
    first.log.append(messages(2), 0);
    first.log.append(messages(3), 0);
    first.log.append(messages(4), 0);
    first.log.close();
    const files = segments(dir);
    expect(files).toHaveLength(3);
    // The middle segment unreadable: a directory in its place (EISDIR on read, also for root).
    const middle = path.join(dir, files[1]!);
    fs.renameSync(middle, `${middle}.moved`);
    fs.mkdirSync(middle);
    const { log, entries } = open(dir);
    expect(log.records).toBe(6);
    expect(log.stats().unreadableSegments).toBe(1);
    const errors = entries.filter((e) => String(e.msg).includes('cannot be read'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: middle });
    const rows = drain(log);
    expect(rows).toHaveLength(6);
    log.append(messages(1), 0);
    expect(segments(dir)).toHaveLength(4);
    expect(fs.statSync(middle).isDirectory()).toBe(true);
  });
});

describe('spill log damaged while running', () => {
  it('gives up a damaged frame with its bytes (not phantom bytes until the log is empty), once; later batches are not lost with it', () => {
    const dir = newDir();
    const { log, entries } = open(dir);
    log.append(messages(3), 0);
    const file = path.join(dir, segments(dir)[0]!);
    const oneFrame = fs.statSync(file).size;
    log.append(messages(4), 0);
    // Damage in the active segment, behind the first frame (a bad sector, or someone wrote to the file).
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, oneFrame + 12);
    b[0]! ^= 0x40;
    fs.writeSync(fd, b, 0, 1, oneFrame + 12);
    fs.closeSync(fd);
    const first = drain(log);
    expect(first).toHaveLength(3);
    expect(log.stats().lost).toBe(4);
    // What counts now is exactly the three taken and not acknowledged.
    expect(log.records).toBe(3);
    expect(log.bytes).toBe(first.reduce((n, r) => n + r.size, 0));
    // A batch written after the damage is read, not given up with it.
    log.append(messages(2), 0);
    const later = drain(log);
    expect(later).toHaveLength(2);
    expect(log.stats().lost).toBe(4);
    expect(log.bytes).toBe([...first, ...later].reduce((n, r) => n + r.size, 0));
    // A rewind reads the damaged segment again: nothing more is lost or logged.
    log.rewind();
    expect(drain(log)).toHaveLength(5);
    expect(log.stats().lost).toBe(4);
    expect(entries.filter((e) => String(e.msg).includes('unreadable'))).toHaveLength(1);
    for (const r of [...first, ...later]) log.acknowledge(r.id, r.size);
    expect(log.stats()).toMatchObject({ records: 0, bytes: 0 });
    expect(segments(dir)).toEqual([]);
  });
});

describe('spill log: a batch larger than a frame may be', () => {
  it('is written as several frames of bounded size (one write, one sync) and read back whole, also after a restart', () => {
    const dir = newDir();
    const { log } = open(dir, { maxFrameBytes: 4096 });
    const batch = messages(100).map((m, i) => ({ ...m, payload: Buffer.alloc(200, i) }));
    const ids = log.append(batch, 7);
    expect(ids).toHaveLength(100);
    expect(log.stats().batchesWritten).toBe(1);
    const file = path.join(dir, segments(dir)[0]!);
    const data = fs.readFileSync(file);
    const frameLengths: number[] = [];
    for (let offset = 0; offset < data.length; ) {
      const length = data.readUInt32LE(offset);
      frameLengths.push(length + 8);
      offset += length + 8;
    }
    expect(frameLengths.reduce((a, b) => a + b, 0)).toBe(data.length);
    expect(frameLengths.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...frameLengths)).toBeLessThanOrEqual(4096);
    const check = (rows: SpillRow[]) => {
      expect(rows.map((r) => r.id)).toEqual(ids);
      expect(rows.map((r) => r.payload[0])).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(rows.map((r) => r.topic)).toEqual(batch.map((m) => m.topic));
      expect(rows.every((r) => r.watermark === 7)).toBe(true);
    };
    check(drain(log));
    log.close();
    const again = open(dir).log;
    expect(again.records).toBe(100);
    check(drain(again));
    expect(again.stats().lost).toBe(0);
  });
});

describe('spill log directory creation', () => {
  function recordingFs(synced: string[]): SpillFs {
    const fdPath = new Map<number, string>();
    return {
      ...fs,
      openSync: ((file: string, flags: string) => {
        const fd = fs.openSync(file, flags);
        fdPath.set(fd, file);
        return fd;
      }) as SpillFs['openSync'],
      fsyncSync: ((fd: number) => {
        synced.push(fdPath.get(fd) ?? '?');
        fs.fsyncSync(fd);
      }) as SpillFs['fsyncSync'],
    };
  }

  it('fsyncs the parent (data) directory after creating the spill directory, and every directory it created', () => {
    const dir = newDir();
    const synced: string[] = [];
    const { log } = open(dir, { fs: recordingFs(synced) });
    log.append(messages(1), 0);
    expect(synced).toContain(path.dirname(dir));
    expect(synced).toContain(dir);
    expect(synced.indexOf(path.dirname(dir))).toBeLessThan(synced.indexOf(dir));
    // Two levels made: both parents synced, nothing above the first one made.
    const deep = path.join(newDir(), 'a', 'spill-cloud');
    const syncedDeep: string[] = [];
    const second = open(deep, { fs: recordingFs(syncedDeep) });
    second.log.append(messages(1), 0);
    expect(syncedDeep).toEqual(expect.arrayContaining([path.dirname(deep), path.dirname(path.dirname(deep)), deep]));
    expect(syncedDeep).not.toContain(path.dirname(path.dirname(path.dirname(path.dirname(deep)))));
  });

  it('does not sync directories with sync off (durability off)', () => {
    const dir = newDir();
    const synced: string[] = [];
    const { log } = open(dir, { fs: recordingFs(synced), sync: false });
    log.append(messages(1), 0);
    expect(synced).toEqual([]);
  });
});
