// The durable FIFO of one bridge: a SQLite table on the broker's database.
// Rows are appended inside the broker's group-commit transaction and deleted only once the remote acknowledged them.
import type { Database, Statement } from 'better-sqlite3';
import type { Logger } from '../log.js';
import type { MessageProperties } from '../broker/types.js';
import type { OutboxLimits } from './config.js';

export interface OutboxRow {
  id: number;
  topic: string;
  payload: Buffer;
  retain: boolean;
  properties: MessageProperties | undefined;
  /** Epoch ms after which the message must not be sent (MQTT 5 message expiry), or null. */
  expiresAt: number | null;
  createdAt: number;
  /** What the row counts towards maxBytes. */
  size: number;
}

export interface OutboxStats {
  rows: number;
  bytes: number;
  /** Epoch ms of the oldest queued row, null when empty. */
  oldestCreatedAt: number | null;
  dropped: number;
  dead: number;
}

export type DropReason = 'max-rows' | 'max-bytes' | 'max-age' | 'expired';

/**
 * Another store of the same bridge's queue (the spill log of held messages): the outbox's limits cover both, and
 * drop-oldest drops whichever head is older (a spilled batch comes after the outbox rows up to its watermark).
 */
export interface OutboxCompanion {
  readonly records: number;
  readonly bytes: number;
  oldestInfo(): { watermark: number; createdAt: number } | undefined;
  dropOldest(): { size: number } | undefined;
}

/** A page row as returned by the raw statement: id, topic, payload, retain, props, expires_at, created_at, size. */
type RawRow = [number, string, Buffer, number, string | null, number | null, number, number];

const DEAD_ROWS_KEPT = 10_000;
const DEAD_BYTES_KEPT = 64 * 1024 * 1024;
const DROP_LOG_INTERVAL_MS = 10_000;

export function outboxTableName(bridgeName: string): string {
  return `bridge_outbox_${bridgeName}`;
}

export class Outbox {
  private readonly table: string;
  private rows = 0;
  private bytes = 0;
  private droppedTotal = 0;
  private deadTotal = 0;
  private readonly dropsSinceLog = new Map<DropReason, number>();
  private lastDropLog = 0;
  private dropLogTimer: NodeJS.Timeout | undefined;
  private countersSuspect = false;
  /** Highest id this process inserted; AUTOINCREMENT ids only grow, so seeing one again means a rollback. */
  private lastInsertId = 0;
  private companion: OutboxCompanion | undefined;
  /** Limits and expiry delete from the head of the queue: every row with an id up to this one may be gone. */
  private headDeletedUpTo = 0;

  private insertStmt!: Statement;
  private dropHeadStmt!: Statement;
  private pageStmt!: Statement;
  private deleteStmt!: Statement;
  private deleteRangeStmt!: Statement;
  private deleteListStmt!: Statement;
  private deleteRangePlainStmt!: Statement;
  private deleteListPlainStmt!: Statement;
  private headStmt!: Statement;
  private headPageStmt!: Statement;
  private deleteUpToStmt!: Statement;
  private deadInsertStmt!: Statement;
  private deadTrimStmt!: Statement;
  private deadTrimBytesStmt!: Statement;
  private countStmt!: Statement;
  private sequenceStmt!: Statement;

  constructor(
    readonly db: Database,
    readonly bridgeName: string,
    private readonly limits: OutboxLimits,
    private readonly logger: Logger,
  ) {
    this.table = `"${outboxTableName(bridgeName)}"`;
  }

  /** Creates the tables if needed, prepares statements and loads the counters. Throws with a clear message if the database is unusable. */
  open(): void {
    try {
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS ${this.table} (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          topic TEXT NOT NULL,
          payload BLOB NOT NULL,
          retain INTEGER NOT NULL,
          props TEXT,
          expires_at INTEGER,
          created_at INTEGER NOT NULL,
          size INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS bridge_dead (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          bridge TEXT NOT NULL,
          topic TEXT NOT NULL,
          payload BLOB NOT NULL,
          retain INTEGER NOT NULL,
          props TEXT,
          reason TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          dead_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS bridge_dead_by_bridge ON bridge_dead (bridge, id);
      `);
      const t = this.table;
      this.insertStmt = this.db.prepare(
        `INSERT INTO ${t} (topic, payload, retain, props, expires_at, created_at, size) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      this.dropHeadStmt = this.db.prepare(`DELETE FROM ${t} WHERE id = (SELECT min(id) FROM ${t}) RETURNING id, size`);
      this.pageStmt = this.db
        .prepare(`SELECT id, topic, payload, retain, props, expires_at, created_at, size FROM ${t} WHERE id > ? ORDER BY id LIMIT ?`)
        .raw();
      this.deleteStmt = this.db.prepare(`DELETE FROM ${t} WHERE id = ? RETURNING size`);
      this.deleteRangeStmt = this.db.prepare(`DELETE FROM ${t} WHERE id BETWEEN ? AND ? RETURNING size`).pluck();
      this.deleteListStmt = this.db.prepare(`DELETE FROM ${t} WHERE id IN (SELECT value FROM json_each(?)) RETURNING size`).pluck();
      this.deleteRangePlainStmt = this.db.prepare(`DELETE FROM ${t} WHERE id BETWEEN ? AND ?`);
      this.deleteListPlainStmt = this.db.prepare(`DELETE FROM ${t} WHERE id IN (SELECT value FROM json_each(?))`);
      this.headStmt = this.db.prepare(`SELECT id, created_at FROM ${t} ORDER BY id LIMIT 1`);
      this.headPageStmt = this.db.prepare(`SELECT id, created_at FROM ${t} ORDER BY id LIMIT ?`);
      this.deleteUpToStmt = this.db.prepare(`DELETE FROM ${t} WHERE id <= ? RETURNING size`);
      this.deadInsertStmt = this.db.prepare(
        `INSERT INTO bridge_dead (bridge, topic, payload, retain, props, reason, created_at, dead_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      this.deadTrimStmt = this.db.prepare(
        `DELETE FROM bridge_dead WHERE bridge = ? AND id <= (SELECT id FROM bridge_dead WHERE bridge = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      );
      // Keeps the newest dead rows whose payloads add up to at most the given bytes.
      this.deadTrimBytesStmt = this.db.prepare(
        `DELETE FROM bridge_dead WHERE bridge = ? AND id <= (
           SELECT id FROM (SELECT id, sum(length(payload)) OVER (ORDER BY id DESC) AS total FROM bridge_dead WHERE bridge = ?)
           WHERE total > ? ORDER BY id DESC LIMIT 1)`,
      );
      this.countStmt = this.db.prepare(`SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM ${t}`);
      this.sequenceStmt = this.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = ?`);
      this.lastInsertId = this.committedSequence();
      this.resync();
    } catch (err) {
      throw new Error(`bridge "${this.bridgeName}": cannot open the outbox table ${this.table} in the gateway database: ${describeError(err)}`);
    }
  }

  /** Recounts rows and bytes from the table (after an error may have left the in-memory counters wrong). */
  resync(): void {
    const { n, b } = this.countStmt.get() as { n: number; b: number };
    this.rows = n;
    this.bytes = b;
    this.countersSuspect = false;
  }

  /** Marks the in-memory counters as possibly wrong (a transaction they took part in may have rolled back). */
  markSuspect(): void {
    this.countersSuspect = true;
  }

  /** True when the counters may be wrong: an error, or a transaction with our inserts rolled back. Call outside transactions. */
  get suspect(): boolean {
    if (!this.countersSuspect && !this.db.inTransaction && this.committedSequence() < this.lastInsertId) this.countersSuspect = true;
    return this.countersSuspect;
  }

  private committedSequence(): number {
    const r = this.sequenceStmt.get(outboxTableName(this.bridgeName)) as { seq: number } | undefined;
    return r?.seq ?? 0;
  }

  /**
   * Appends a message. Synchronous; meant to run inside the broker's durable transaction.
   * Applies maxRows/maxBytes with the configured policy. Returns false when the message itself was dropped.
   */
  enqueue(topic: string, payload: Buffer, retain: boolean, properties?: MessageProperties, expiresAt?: number, now = Date.now()): boolean {
    const props = properties !== undefined && Object.keys(properties).length > 0 ? encodeProperties(properties) : null;
    const size = payload.length + Buffer.byteLength(topic) + (props?.length ?? 0);
    if (!this.makeRoomFor(size)) return false;
    const id = Number(this.insertStmt.run(topic, payload, retain ? 1 : 0, props, expiresAt ?? null, now, size).lastInsertRowid);
    // The broker retries a failed group commit by running this handler again: ids repeat, the counters double.
    if (id <= this.lastInsertId) this.countersSuspect = true;
    this.lastInsertId = id;
    this.rows += 1;
    this.bytes += size;
    return true;
  }

  /** The spill log of held messages: counted against maxRows/maxBytes with the rows. */
  attachCompanion(companion: OutboxCompanion): void {
    this.companion = companion;
  }

  /**
   * Makes room (per the limits and policy) for a message of `size` about to go to the companion, which is about to
   * take `pendingRows` / `pendingBytes` more already admitted. False when the message is to be dropped (counted).
   */
  admit(size: number, pendingRows = 0, pendingBytes = 0): boolean {
    return this.makeRoomFor(size, pendingRows, pendingBytes);
  }

  private makeRoomFor(size: number, pendingRows = 0, pendingBytes = 0): boolean {
    const { maxRows, maxBytes, policy } = this.limits;
    const c = this.companion;
    const rows = (): number => this.rows + (c?.records ?? 0) + pendingRows;
    const bytes = (): number => this.bytes + (c?.bytes ?? 0) + pendingBytes;
    const fits = (): boolean => rows() + 1 <= maxRows && bytes() + size <= maxBytes;
    if (fits()) return true;
    if (policy === 'drop-newest' || size > maxBytes) {
      this.countDrop(rows() + 1 > maxRows ? 'max-rows' : 'max-bytes', 1);
      return false;
    }
    while (!fits()) {
      const reason: DropReason = rows() + 1 > maxRows ? 'max-rows' : 'max-bytes';
      // The older head goes: a spilled batch belongs after the outbox rows up to its watermark.
      const spilled = c !== undefined && c.records > 0 ? companionOldest(c) : undefined;
      if (spilled !== undefined) {
        const head = this.rows > 0 ? (this.headStmt.get() as { id: number } | undefined) : undefined;
        if (head === undefined || head.id > spilled.watermark) {
          if (companionDrop(c!) === undefined) break;
          this.countDrop(reason, 1);
          continue;
        }
      }
      if (this.rows <= 0) break;
      const dropped = this.dropHeadStmt.get() as { id: number; size: number } | undefined;
      if (dropped === undefined) {
        this.rows = 0;
        this.bytes = 0;
        break;
      }
      this.rows -= 1;
      this.bytes -= dropped.size;
      if (dropped.id > this.headDeletedUpTo) this.headDeletedUpTo = dropped.id;
      this.countDrop(reason, 1);
    }
    return true;
  }

  /** The id of the last row this process appended. */
  get lastAppendedId(): number {
    return this.lastInsertId;
  }

  /** Counts messages dropped before they reached the table (the hold stage's memory was full and the table unwritable). */
  countDropped(n: number): void {
    this.countDrop('max-bytes', n);
  }

  /** Up to `limit` rows with id greater than `afterId`, in FIFO order. */
  readAfter(afterId: number, limit: number): OutboxRow[] {
    return (this.pageStmt.all(afterId, limit) as RawRow[]).map(toRow);
  }

  /** Deletes acknowledged rows in one statement and transaction; ids already gone (dropped meanwhile) are ignored. */
  remove(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const run = (): void => {
      // Acknowledgements usually come as a gap-free ascending run of ids: then a range is deleted, otherwise the exact list.
      let dense = true;
      for (let i = 1; i < ids.length && dense; i++) dense = ids[i] === ids[i - 1]! + 1;
      const lowest = ids[0]!;
      const highest = ids[ids.length - 1]!;
      const sizes = (dense ? this.deleteRangeStmt.all(lowest, highest) : this.deleteListStmt.all(JSON.stringify(ids))) as number[];
      for (const size of sizes) this.bytes -= size;
      this.rows -= sizes.length;
    };
    if (this.db.inTransaction) run();
    else this.db.transaction(run)();
  }

  /**
   * Deletes acknowledged rows whose sizes add up to `bytes`, as `remove` does but without asking SQLite for each
   * row's size. Only rows at the head can have been deleted meanwhile (limits, expiry): when some of these ids may be
   * among them, `remove` counts exactly.
   */
  removeAcknowledged(ids: readonly number[], bytes: number): void {
    if (ids.length === 0) return;
    const lowest = ids[0]!;
    if (lowest <= this.headDeletedUpTo) {
      this.remove(ids);
      return;
    }
    let counted = true;
    const run = (): void => {
      let dense = true;
      for (let i = 1; i < ids.length && dense; i++) dense = ids[i] === ids[i - 1]! + 1;
      const highest = ids[ids.length - 1]!;
      const { changes } = dense ? this.deleteRangePlainStmt.run(lowest, highest) : this.deleteListPlainStmt.run(JSON.stringify(ids));
      counted = changes === ids.length;
      if (counted) {
        this.rows -= changes;
        this.bytes -= bytes;
      }
    };
    if (this.db.inTransaction) run();
    else this.db.transaction(run)();
    if (counted) return;
    // Not expected: an acknowledged row was already gone. Count the table again rather than guess.
    this.countersSuspect = true;
    if (!this.db.inTransaction) this.resync();
  }

  /** Removes a row that can never be delivered and keeps it aside in bridge_dead. */
  moveToDead(row: OutboxRow, reason: string, now = Date.now()): void {
    this.db.transaction(() => {
      this.deadInsertStmt.run(
        this.bridgeName,
        row.topic,
        row.payload,
        row.retain ? 1 : 0,
        row.properties === undefined ? null : encodeProperties(row.properties),
        reason,
        row.createdAt,
        now,
      );
      this.deadTrimStmt.run(this.bridgeName, this.bridgeName, DEAD_ROWS_KEPT);
      this.deadTrimBytesStmt.run(this.bridgeName, this.bridgeName, Math.min(DEAD_BYTES_KEPT, Math.floor(this.limits.maxBytes / 8)));
      const r = this.deleteStmt.get(row.id) as { size: number } | undefined;
      if (r !== undefined) {
        this.rows -= 1;
        this.bytes -= r.size;
      }
    })();
    this.deadTotal += 1;
    this.logger.error(
      { bridge: this.bridgeName, topic: row.topic, bytes: row.payload.length, reason, deadTotal: this.deadTotal },
      'bridge: message cannot be delivered to the remote; moved to bridge_dead',
    );
  }

  /** Drops rows older than maxAgeSeconds from the head of the queue. Returns how many were dropped. */
  expireOld(now = Date.now()): number {
    const cutoff = now - this.limits.maxAgeSeconds * 1000;
    let total = 0;
    for (let round = 0; round < 100; round++) {
      const head = this.headPageStmt.all(1000) as { id: number; created_at: number }[];
      let boundary = -1;
      for (const r of head) {
        if (r.created_at >= cutoff) break;
        boundary = r.id;
      }
      if (boundary < 0) break;
      const deleted = this.db.transaction(() => this.deleteUpToStmt.all(boundary) as { size: number }[])();
      if (boundary > this.headDeletedUpTo) this.headDeletedUpTo = boundary;
      for (const d of deleted) this.bytes -= d.size;
      this.rows -= deleted.length;
      total += deleted.length;
      if (deleted.length < 1000) break;
    }
    if (total > 0) this.countDrop('max-age', total);
    return total;
  }

  /** Counts messages of the companion store dropped for a reason (its limits, its age). */
  countDrops(reason: DropReason, n: number): void {
    if (n > 0) this.countDrop(reason, n);
  }

  /** Counts rows the sender found expired (MQTT 5 message expiry) and removed. */
  countExpired(n: number): void {
    this.countDrop('expired', n);
  }

  stats(): OutboxStats {
    const head = this.headStmt.get() as { id: number; created_at: number } | undefined;
    return { rows: this.rows, bytes: this.bytes, oldestCreatedAt: head?.created_at ?? null, dropped: this.droppedTotal, dead: this.deadTotal };
  }

  close(): void {
    if (this.dropLogTimer !== undefined) clearTimeout(this.dropLogTimer);
    this.dropLogTimer = undefined;
    this.flushDropLog();
  }

  // Drops are counted one by one and logged in summaries, so a flood of drops cannot flood the log.
  private countDrop(reason: DropReason, n: number): void {
    this.droppedTotal += n;
    this.dropsSinceLog.set(reason, (this.dropsSinceLog.get(reason) ?? 0) + n);
    const now = Date.now();
    if (now - this.lastDropLog >= DROP_LOG_INTERVAL_MS) this.flushDropLog();
    else if (this.dropLogTimer === undefined) {
      this.dropLogTimer = setTimeout(() => {
        this.dropLogTimer = undefined;
        this.flushDropLog();
      }, DROP_LOG_INTERVAL_MS - (now - this.lastDropLog));
      this.dropLogTimer.unref();
    }
  }

  private flushDropLog(): void {
    if (this.dropsSinceLog.size === 0) return;
    const byReason = Object.fromEntries(this.dropsSinceLog);
    this.dropsSinceLog.clear();
    this.lastDropLog = Date.now();
    this.logger.warn(
      { bridge: this.bridgeName, dropped: byReason, droppedTotal: this.droppedTotal, limits: this.limits },
      'bridge: outbox limit reached, messages dropped',
    );
  }
}

function toRow(r: RawRow): OutboxRow {
  return {
    id: r[0],
    topic: r[1],
    payload: r[2],
    retain: r[3] === 1,
    properties: r[4] === null ? undefined : decodeProperties(r[4]),
    expiresAt: r[5],
    createdAt: r[6],
    size: r[7],
  };
}

function encodeProperties(p: MessageProperties): string {
  const { correlationData, ...rest } = p;
  return JSON.stringify(correlationData === undefined ? rest : { ...rest, correlationData: correlationData.toString('base64') });
}

export function decodeProperties(json: string): MessageProperties | undefined {
  try {
    const { correlationData, ...rest } = JSON.parse(json) as MessageProperties & { correlationData?: string };
    return correlationData === undefined ? rest : { ...rest, correlationData: Buffer.from(correlationData, 'base64') };
  } catch {
    return undefined;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code !== undefined ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}

/** The companion's oldest record; a companion that fails (its files unreadable) must not fail the outbox's commit. */
function companionOldest(c: OutboxCompanion): { watermark: number; createdAt: number } | undefined {
  try {
    return c.oldestInfo();
  } catch {
    return undefined;
  }
}

function companionDrop(c: OutboxCompanion): { size: number } | undefined {
  try {
    return c.dropOldest();
  } catch {
    return undefined;
  }
}
