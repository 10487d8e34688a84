import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/bridge/outbox.js';
import { outboxLimitsSchema } from '../../src/bridge/config.js';
import { captureLogger } from './helpers.js';

const dbs: Database.Database[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openOutbox(limits: Partial<ReturnType<typeof outboxLimitsSchema.parse>> = {}, file = ':memory:') {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  dbs.push(db);
  const { logger, entries } = captureLogger();
  const outbox = new Outbox(db, 'cloud', outboxLimitsSchema.parse(limits), logger);
  outbox.open();
  return { db, outbox, entries };
}

describe('Outbox', () => {
  it('keeps FIFO order across pages and deletes only acknowledged rows', () => {
    const { outbox } = openOutbox();
    for (let i = 0; i < 25; i++) outbox.enqueue(`t/${i}`, Buffer.from(`m${i}`), false);
    const first = outbox.readAfter(0, 10);
    const second = outbox.readAfter(first.at(-1)!.id, 10);
    expect([...first, ...second].map((r) => r.topic)).toEqual(Array.from({ length: 20 }, (_, i) => `t/${i}`));
    outbox.remove(first.map((r) => r.id));
    expect(outbox.stats().rows).toBe(15);
    expect(outbox.readAfter(0, 1)[0]!.topic).toBe('t/10');
    // deleting ids that are already gone changes nothing
    outbox.remove(first.map((r) => r.id));
    expect(outbox.stats().rows).toBe(15);
  });

  it('deletes exactly the acknowledged ids when they are not one gap-free run, and keeps the byte total right', () => {
    const { outbox } = openOutbox();
    for (let i = 0; i < 10; i++) outbox.enqueue(`t/${i}`, Buffer.alloc(i + 1), false);
    const ids = outbox.readAfter(0, 10).map((r) => r.id);
    const bytesBefore = outbox.stats().bytes;
    // spans three ids but names only two of them (one twice): the id in between is not acknowledged
    outbox.remove([ids[2]!, ids[2]!, ids[4]!]);
    outbox.remove([ids[7]!, ids[0]!]);
    expect(outbox.readAfter(0, 10).map((r) => r.topic)).toEqual(['t/1', 't/3', 't/5', 't/6', 't/8', 't/9']);
    // payloads of 3, 5, 8 and 1 bytes and four 3-byte topics are gone
    expect(outbox.stats()).toMatchObject({ rows: 6, bytes: bytesBefore - (3 + 5 + 8 + 1) - 4 * 3 });
    outbox.remove([ids[5]!, ids[6]!, ids[8]!, ids[9]!].reverse());
    expect(outbox.readAfter(0, 10).map((r) => r.topic)).toEqual(['t/1', 't/3']);
    expect(outbox.stats().rows).toBe(2);
  });

  it('deletes acknowledged rows with the byte total the sender counted, and counts exactly when limits dropped some of them', () => {
    const { db, outbox } = openOutbox({ maxRows: 20 });
    const tableCount = () => db.prepare('SELECT count(*) AS rows, coalesce(sum(size), 0) AS bytes FROM bridge_outbox_cloud').get() as { rows: number; bytes: number };
    for (let i = 0; i < 12; i++) outbox.enqueue(`t/${i}`, Buffer.alloc(i + 1), false);
    const page = outbox.readAfter(0, 12);
    expect(page.map((r) => r.size)).toEqual(page.map((r) => r.payload.length + Buffer.byteLength(r.topic)));
    const sum = (rows: typeof page) => rows.reduce((n, r) => n + r.size, 0);
    // a gap-free run, then an out-of-order pair
    outbox.removeAcknowledged(page.slice(0, 4).map((r) => r.id), sum(page.slice(0, 4)));
    outbox.removeAcknowledged([page[6]!.id, page[5]!.id], sum([page[5]!, page[6]!]));
    expect(outbox.stats()).toMatchObject(tableCount());
    expect(outbox.stats().rows).toBe(6);
    // The outbox fills while rows 4, 7 and 11 are in flight: drop-oldest deletes 4, 7, 8, 9 and 10 under the sender.
    for (let i = 12; i < 31; i++) outbox.enqueue(`t/${i}`, Buffer.alloc(3), false);
    expect(tableCount().rows).toBe(20);
    expect(outbox.stats()).toMatchObject(tableCount());
    const inFlight = [page[4]!, page[7]!, page[11]!];
    outbox.removeAcknowledged(inFlight.map((r) => r.id), sum(inFlight));
    expect(tableCount().rows).toBe(19);
    expect(outbox.stats()).toMatchObject(tableCount());
    expect(outbox.suspect).toBe(false);
  });

  it('drops the oldest rows past maxRows, counts and logs the drops', () => {
    const { outbox, entries } = openOutbox({ maxRows: 5 });
    for (let i = 0; i < 12; i++) expect(outbox.enqueue(`t/${i}`, Buffer.from('x'), false)).toBe(true);
    expect(outbox.readAfter(0, 100).map((r) => r.topic)).toEqual(['t/7', 't/8', 't/9', 't/10', 't/11']);
    expect(outbox.stats()).toMatchObject({ rows: 5, dropped: 7 });
    outbox.close();
    const logged = entries.filter((e) => e.msg === 'bridge: outbox limit reached, messages dropped');
    expect(logged.length).toBeGreaterThan(0);
    const total = logged.reduce((n, e) => n + ((e.dropped as Record<string, number>)['max-rows'] ?? 0), 0);
    expect(total).toBe(7);
  });

  it('refuses new rows past maxRows with drop-newest', () => {
    const { outbox } = openOutbox({ maxRows: 3, policy: 'drop-newest' });
    const accepted = Array.from({ length: 5 }, (_, i) => outbox.enqueue(`t/${i}`, Buffer.from('x'), false));
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(outbox.readAfter(0, 10).map((r) => r.topic)).toEqual(['t/0', 't/1', 't/2']);
    expect(outbox.stats().dropped).toBe(2);
  });

  it('keeps the byte total under maxBytes by dropping the oldest', () => {
    const { outbox } = openOutbox({ maxBytes: 1000 });
    for (let i = 0; i < 20; i++) outbox.enqueue('t', Buffer.alloc(99), false); // 100 bytes each with the topic
    const s = outbox.stats();
    expect(s.bytes).toBeLessThanOrEqual(1000);
    expect(s.rows).toBe(10);
    expect(s.dropped).toBe(10);
  });

  it('expires rows older than maxAgeSeconds from the head', () => {
    const { outbox } = openOutbox({ maxAgeSeconds: 60 });
    const now = Date.now();
    for (let i = 0; i < 2500; i++) outbox.enqueue('old', Buffer.from('x'), false, undefined, undefined, now - 120_000);
    for (let i = 0; i < 3; i++) outbox.enqueue('new', Buffer.from('x'), false, undefined, undefined, now);
    expect(outbox.expireOld(now)).toBe(2500);
    expect(outbox.readAfter(0, 10).map((r) => r.topic)).toEqual(['new', 'new', 'new']);
    expect(outbox.stats()).toMatchObject({ rows: 3, dropped: 2500 });
  });

  it('moves an undeliverable row to bridge_dead', () => {
    const { db, outbox } = openOutbox();
    outbox.enqueue('big', Buffer.alloc(5000), true);
    const [row] = outbox.readAfter(0, 1);
    outbox.moveToDead(row!, 'too large');
    expect(outbox.stats()).toMatchObject({ rows: 0, dead: 1 });
    const dead = db.prepare('SELECT bridge, topic, length(payload) AS n, retain, reason FROM bridge_dead').all();
    expect(dead).toEqual([{ bridge: 'cloud', topic: 'big', n: 5000, retain: 1, reason: 'too large' }]);
  });

  it('keeps bridge_dead bounded in bytes', () => {
    const { db, outbox } = openOutbox({ maxBytes: 80_000 }); // dead rows keep at most maxBytes / 8 = 10,000 payload bytes
    for (let i = 0; i < 5; i++) {
      outbox.enqueue(`big/${i}`, Buffer.alloc(4000), false);
      outbox.moveToDead(outbox.readAfter(0, 1)[0]!, 'too large');
    }
    const kept = db.prepare('SELECT topic FROM bridge_dead ORDER BY id').all();
    expect(kept).toEqual([{ topic: 'big/3' }, { topic: 'big/4' }]);
    expect(outbox.stats().dead).toBe(5);
  });

  it('round-trips MQTT 5 properties and survives reopening the database file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-outbox-'));
    dirs.push(dir);
    const file = join(dir, 'gw.db');
    const { db, outbox } = openOutbox({}, file);
    outbox.enqueue('p', Buffer.from('x'), false, { contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { a: 'b' } });
    outbox.enqueue('q', Buffer.from('yy'), false);
    db.close();
    dbs.splice(dbs.indexOf(db), 1);
    const again = openOutbox({}, file);
    expect(again.outbox.stats().rows).toBe(2);
    const [p] = again.outbox.readAfter(0, 1);
    expect(p!.properties).toEqual({ contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: { a: 'b' } });
  });

  it('reports an unusable database clearly', () => {
    const db = new Database(':memory:');
    db.close();
    const outbox = new Outbox(db, 'cloud', outboxLimitsSchema.parse({}), captureLogger().logger);
    expect(() => outbox.open()).toThrow(/bridge "cloud": cannot open the outbox table/);
  });
});
