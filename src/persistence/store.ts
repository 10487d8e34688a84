// Durable broker state in SQLite: persistent sessions, their subscriptions and queues,
// QoS 2 receipts and retained messages. Writes are grouped: every change is appended to a
// batch, and one transaction commits the batch a short window later (group commit).
// Callers that must not act before the commit (acknowledging a publisher) use afterCommit.

import Database from 'better-sqlite3';
import path from 'node:path';
import type { Delivery } from '../broker/delivery.js';
import type { Message, MessageHandler, MessageProperties, QoS } from '../broker/types.js';
import { makeDirectory } from '../make-directory.js';

export type Durability = 'full' | 'normal' | 'off';

export interface StoreOptions {
  /** Directory for fieldgate.db; null keeps everything in memory (tests, ephemeral use). */
  dataDir: string | null;
  /** full: survives power loss; normal: survives a process crash; off: the OS decides. */
  durability: Durability;
  /** How long changes may wait to be grouped into one transaction. 0 = next event-loop turn. */
  commitWindowMs: number;
  onError: (error: unknown) => void;
  /** Called when commits start failing (disk full, I/O error) and when one succeeds again: once per change, not per retry. */
  onStateChange?: (state: StoreState) => void;
}

/** Whether the store can commit: while `failing`, nothing new may be acknowledged as stored. */
export interface StoreState {
  writable: boolean;
  /** Epoch ms of the first failed commit of the current episode (null while writable). */
  failingSince: number | null;
  /** The last commit error, e.g. "database or disk is full (SQLITE_FULL)". */
  error: string | null;
  /** Commits that failed since the process started (each retry counts). */
  failedCommits: number;
}

export interface StoredSubscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

export interface StoredSession {
  clientId: string;
  protocolVersion: number;
  expiryInterval: number;
  disconnectedAt: number | null;
  subscriptions: StoredSubscription[];
  deliveries: Delivery[];
  incomingQos2: number[];
}

type Op =
  | { k: 'session'; clientId: string; protocolVersion: number; expiryInterval: number; disconnectedAt: number | null }
  | { k: 'dropSession'; clientId: string }
  | { k: 'subscribe'; clientId: string; sub: StoredSubscription }
  | { k: 'unsubscribe'; clientId: string; filter: string }
  | { k: 'enqueue'; clientId: string; delivery: Delivery }
  | { k: 'sent'; delivery: Delivery }
  | { k: 'done'; seq: number }
  | { k: 'qos2in'; clientId: string; packetId: number }
  | { k: 'qos2done'; clientId: string; packetId: number }
  | { k: 'retain'; topic: string; message: Message | null }
  | { k: 'durable'; handler: MessageHandler; message: Message };

const RETRY_AFTER_FAILED_COMMIT_MS = 1000;
/**
 * While commits fail, in-process publishers (device readings, $SYS) keep adding to the pending batch.
 * Past this many operations it is compacted (a queued row deleted before it was ever written is
 * dropped with its deletion; only the last retained value per topic is kept), and durable handler
 * calls (bridge outbox appends) beyond it are dropped oldest first: none of those was acknowledged
 * to anyone, because socket publishers are refused while the store is failing.
 */
const MAX_PENDING_OPS_WHILE_FAILING = 20_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  client_id TEXT PRIMARY KEY,
  protocol_version INTEGER NOT NULL,
  expiry_interval INTEGER NOT NULL,
  disconnected_at INTEGER
);
CREATE TABLE IF NOT EXISTS subscriptions (
  client_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  qos INTEGER NOT NULL,
  no_local INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling INTEGER NOT NULL,
  subscription_id INTEGER,
  PRIMARY KEY (client_id, filter)
);
CREATE TABLE IF NOT EXISTS queue (
  seq INTEGER PRIMARY KEY,
  client_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  properties TEXT,
  expires_at INTEGER,
  subscription_ids TEXT,
  packet_id INTEGER,
  released INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_by_client ON queue (client_id, seq);
CREATE TABLE IF NOT EXISTS incoming_qos2 (
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
);
CREATE TABLE IF NOT EXISTS retained (
  topic TEXT PRIMARY KEY,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  properties TEXT,
  expires_at INTEGER
);
`;

export class Store {
  readonly db: Database.Database;
  private batch: Op[] = [];
  private waiting: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private nextSeq: number;
  private closed = false;
  private failingSince: number | null = null;
  private lastError: string | null = null;
  private failedCommits = 0;
  /** Ops at the head of the batch that were pending when commits started failing: their acknowledgements wait, they are never dropped. */
  private protectedOps = 0;
  private compactAt = MAX_PENDING_OPS_WHILE_FAILING;
  /** Durable handler calls dropped while failing (counted as outbox drops in the log). */
  droppedWhileFailing = 0;
  private readonly statements: ReturnType<typeof prepare>;
  private readonly commitBatch: (ops: Op[]) => void;

  constructor(private readonly options: StoreOptions) {
    let file = ':memory:';
    if (options.dataDir !== null) {
      try {
        makeDirectory(options.dataDir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new Error(`cannot create the data directory ${path.resolve(options.dataDir)} (${code}): choose another (--data, or "dataDir" in the config)`);
      }
      file = path.join(options.dataDir, 'fieldgate.db');
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : options.durability === 'normal' ? 'NORMAL' : 'OFF'}`);
    this.db.exec(SCHEMA);
    this.statements = prepare(this.db);
    const max = this.db.prepare('SELECT MAX(seq) AS seq FROM queue').get() as { seq: number | null };
    this.nextSeq = (max.seq ?? 0) + 1;
    this.commitBatch = this.db.transaction((ops: Op[]) => {
      for (const op of ops) this.apply(op);
    });
  }

  /** Allocates the row id a queued delivery will have, so it can be used before the commit. */
  allocateSeq(): number {
    return this.nextSeq++;
  }

  get pending(): number {
    return this.batch.length;
  }

  /** False from a failed commit until a commit succeeds again. Nothing may be acknowledged as stored meanwhile. */
  get writable(): boolean {
    return this.failingSince === null;
  }

  get state(): StoreState {
    return { writable: this.failingSince === null, failingSince: this.failingSince, error: this.lastError, failedCommits: this.failedCommits };
  }

  saveSession(clientId: string, protocolVersion: number, expiryInterval: number, disconnectedAt: number | null): void {
    this.push({ k: 'session', clientId, protocolVersion, expiryInterval, disconnectedAt });
  }
  dropSession(clientId: string): void {
    this.push({ k: 'dropSession', clientId });
  }
  saveSubscription(clientId: string, sub: StoredSubscription): void {
    this.push({ k: 'subscribe', clientId, sub });
  }
  dropSubscription(clientId: string, filter: string): void {
    this.push({ k: 'unsubscribe', clientId, filter });
  }
  enqueue(clientId: string, delivery: Delivery): void {
    this.push({ k: 'enqueue', clientId, delivery });
  }
  /** Records the packet id and QoS 2 state of a delivery (read at commit time). */
  markSent(delivery: Delivery): void {
    // Not yet inserted: the pending insert reads the packet id and state at commit time.
    if (delivery.persisted) this.push({ k: 'sent', delivery });
  }
  completeDelivery(seq: number): void {
    this.push({ k: 'done', seq });
  }
  saveIncomingQos2(clientId: string, packetId: number): void {
    this.push({ k: 'qos2in', clientId, packetId });
  }
  dropIncomingQos2(clientId: string, packetId: number): void {
    this.push({ k: 'qos2done', clientId, packetId });
  }
  saveRetained(topic: string, message: Message | null): void {
    this.push({ k: 'retain', topic, message });
  }
  /** Runs the handler inside the next commit's transaction. */
  runDurable(handler: MessageHandler, message: Message): void {
    this.push({ k: 'durable', handler, message });
  }

  /** Calls back once everything queued so far is committed (at once when nothing is pending). */
  afterCommit(callback: () => void): void {
    if (this.batch.length === 0) callback();
    else this.waiting.push(callback);
  }

  private push(op: Op): void {
    if (this.closed) return;
    this.batch.push(op);
    if (this.failingSince !== null && this.batch.length > this.compactAt) this.compact();
    if (this.timer !== null || this.immediate !== null) return;
    if (this.options.commitWindowMs > 0) this.timer = setTimeout(this.flush, this.options.commitWindowMs);
    else this.immediate = setImmediate(this.flush);
  }

  readonly flush = (): void => {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    if (this.batch.length === 0) return;
    const ops = this.batch;
    const waiting = this.waiting;
    this.batch = [];
    this.waiting = [];
    try {
      this.commitBatch(ops);
    } catch (error) {
      // Nothing was committed (disk full, I/O error): keep the batch, its acknowledgements unsent,
      // and try again shortly, so the broker recovers once the cause is fixed.
      this.failedCommits++;
      this.lastError = describe(error);
      // Inserts of this batch were rolled back: they must be inserted again, not updated.
      for (const op of ops) if (op.k === 'enqueue') op.delivery.persisted = false;
      this.batch = ops.concat(this.batch);
      this.waiting = waiting.concat(this.waiting);
      if (this.failingSince === null) {
        this.failingSince = Date.now();
        this.protectedOps = this.batch.length;
        // One alarm per episode (the state change carries the error), not one per retry.
        if (this.options.onStateChange) this.options.onStateChange(this.state);
        else this.options.onError(error);
      }
      if (!this.closed && this.timer === null) {
        this.timer = setTimeout(this.flush, RETRY_AFTER_FAILED_COMMIT_MS);
        this.timer.unref();
      }
      return;
    }
    if (this.failingSince !== null) {
      this.failingSince = null;
      this.protectedOps = 0;
      this.compactAt = MAX_PENDING_OPS_WHILE_FAILING;
      this.options.onStateChange?.(this.state);
    }
    for (const callback of waiting) callback();
  };

  /** Bounds the batch while commits fail (see MAX_PENDING_OPS_WHILE_FAILING). Order is kept. */
  private compact(): void {
    const head = this.batch.slice(0, this.protectedOps);
    const tail = this.batch.slice(this.protectedOps);
    const deleted = new Set<number>();
    for (const op of tail) if (op.k === 'done') deleted.add(op.seq);
    const insertedHere = new Set<number>();
    for (const op of tail) if (op.k === 'enqueue' && deleted.has(op.delivery.seq)) insertedHere.add(op.delivery.seq);
    const lastRetain = new Map<string, Op>();
    for (const op of tail) if (op.k === 'retain') lastRetain.set(op.topic, op);
    let kept = tail.filter((op) => {
      if (op.k === 'enqueue' || op.k === 'sent') return !insertedHere.has(op.delivery.seq);
      if (op.k === 'done') return !insertedHere.has(op.seq);
      if (op.k === 'retain') return lastRetain.get(op.topic) === op;
      return true;
    });
    const room = MAX_PENDING_OPS_WHILE_FAILING / 2;
    if (kept.length > room) {
      let excess = kept.length - room;
      kept = kept.filter((op) => {
        if (excess > 0 && op.k === 'durable') {
          excess--;
          this.droppedWhileFailing++;
          return false;
        }
        return true;
      });
    }
    this.batch = head.concat(kept);
    // What cannot be compacted (queued rows still wanted) is bounded by the queue limits; compact again only after as much growth.
    this.compactAt = Math.max(MAX_PENDING_OPS_WHILE_FAILING, this.batch.length * 2);
  }

  private apply(op: Op): void {
    const s = this.statements;
    switch (op.k) {
      case 'session':
        s.upsertSession.run(op.clientId, op.protocolVersion, op.expiryInterval, op.disconnectedAt);
        break;
      case 'dropSession':
        s.deleteSession.run(op.clientId);
        s.deleteSubscriptions.run(op.clientId);
        s.deleteQueue.run(op.clientId);
        s.deleteIncomingAll.run(op.clientId);
        break;
      case 'subscribe': {
        const sub = op.sub;
        s.upsertSubscription.run(op.clientId, sub.filter, sub.qos, sub.noLocal ? 1 : 0, sub.retainAsPublished ? 1 : 0, sub.retainHandling, sub.subscriptionId ?? null);
        break;
      }
      case 'unsubscribe':
        s.deleteSubscription.run(op.clientId, op.filter);
        break;
      case 'enqueue': {
        const d = op.delivery;
        const m = d.message;
        s.insertQueue.run(
          d.seq, op.clientId, m.topic, m.payload, d.qos, d.retain ? 1 : 0,
          encodeProperties(m.properties), m.expiresAt ?? null,
          d.subscriptionIds ? JSON.stringify(d.subscriptionIds) : null,
          d.packetId === 0 ? null : d.packetId, d.released ? 1 : 0,
        );
        d.persisted = true;
        break;
      }
      case 'sent':
        s.updateSent.run(op.delivery.packetId === 0 ? null : op.delivery.packetId, op.delivery.released ? 1 : 0, op.delivery.seq);
        break;
      case 'done':
        s.deleteDelivery.run(op.seq);
        break;
      case 'qos2in':
        s.insertIncoming.run(op.clientId, op.packetId);
        break;
      case 'qos2done':
        s.deleteIncoming.run(op.clientId, op.packetId);
        break;
      case 'retain':
        if (op.message === null) s.deleteRetained.run(op.topic);
        else s.upsertRetained.run(op.topic, op.message.payload, op.message.qos, encodeProperties(op.message.properties), op.message.expiresAt ?? null);
        break;
      case 'durable':
        // A failing durable handler (the bridge outbox) fails the whole commit: the batch is retried
        // and its acknowledgements held, so nothing is acknowledged that was not stored.
        op.handler(op.message);
        break;
    }
  }

  /** Deletes every retained row whose topic starts with the prefix, at once (outside the batch). */
  deleteRetainedPrefix(prefix: string): void {
    this.db.prepare('DELETE FROM retained WHERE substr(topic, 1, ?) = ?').run(prefix.length, prefix);
  }

  loadRetained(): Message[] {
    const rows = this.db.prepare('SELECT topic, payload, qos, properties, expires_at FROM retained').all() as RetainedRow[];
    return rows.map((r) => ({
      topic: r.topic, payload: r.payload, qos: r.qos as QoS, retain: true,
      properties: decodeProperties(r.properties), expiresAt: r.expires_at ?? undefined,
    }));
  }

  loadSessions(): StoredSession[] {
    const sessions = new Map<string, StoredSession>();
    for (const row of this.db.prepare('SELECT * FROM sessions').all() as SessionRow[]) {
      sessions.set(row.client_id, {
        clientId: row.client_id, protocolVersion: row.protocol_version, expiryInterval: row.expiry_interval,
        disconnectedAt: row.disconnected_at, subscriptions: [], deliveries: [], incomingQos2: [],
      });
    }
    for (const row of this.db.prepare('SELECT * FROM subscriptions').all() as SubscriptionRow[]) {
      sessions.get(row.client_id)?.subscriptions.push({
        filter: row.filter, qos: row.qos as QoS, noLocal: row.no_local === 1, retainAsPublished: row.retain_as_published === 1,
        retainHandling: row.retain_handling as 0 | 1 | 2, subscriptionId: row.subscription_id ?? undefined,
      });
    }
    for (const row of this.db.prepare('SELECT * FROM queue ORDER BY seq').iterate() as IterableIterator<QueueRow>) {
      const session = sessions.get(row.client_id);
      if (!session) continue;
      session.deliveries.push({
        seq: row.seq,
        message: {
          topic: row.topic, payload: row.payload, qos: row.qos as QoS, retain: row.retain === 1,
          properties: decodeProperties(row.properties), expiresAt: row.expires_at ?? undefined,
        },
        qos: row.qos as QoS, retain: row.retain === 1,
        subscriptionIds: row.subscription_ids ? (parseJson(row.subscription_ids) as number[]) : undefined,
        packetId: row.packet_id ?? 0, released: row.released === 1, persisted: true,
      });
    }
    for (const row of this.db.prepare('SELECT * FROM incoming_qos2').all() as { client_id: string; packet_id: number }[]) {
      sessions.get(row.client_id)?.incomingQos2.push(row.packet_id);
    }
    return [...sessions.values()];
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    try {
      this.db.close();
    } catch (error) {
      // A full disk can fail the final checkpoint: what was committed is in the WAL, which the next open replays.
      this.options.onError(error);
    }
  }
}

function prepare(db: Database.Database) {
  return {
    upsertSession: db.prepare('INSERT INTO sessions (client_id, protocol_version, expiry_interval, disconnected_at) VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version, expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at'),
    deleteSession: db.prepare('DELETE FROM sessions WHERE client_id = ?'),
    deleteSubscriptions: db.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
    deleteQueue: db.prepare('DELETE FROM queue WHERE client_id = ?'),
    deleteIncomingAll: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ?'),
    upsertSubscription: db.prepare('INSERT OR REPLACE INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    deleteSubscription: db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    insertQueue: db.prepare('INSERT INTO queue (seq, client_id, topic, payload, qos, retain, properties, expires_at, subscription_ids, packet_id, released) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    updateSent: db.prepare('UPDATE queue SET packet_id = ?, released = ? WHERE seq = ?'),
    deleteDelivery: db.prepare('DELETE FROM queue WHERE seq = ?'),
    insertIncoming: db.prepare('INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)'),
    deleteIncoming: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?'),
    upsertRetained: db.prepare('INSERT OR REPLACE INTO retained (topic, payload, qos, properties, expires_at) VALUES (?, ?, ?, ?, ?)'),
    deleteRetained: db.prepare('DELETE FROM retained WHERE topic = ?'),
  };
}

interface RetainedRow { topic: string; payload: Buffer; qos: number; properties: string | null; expires_at: number | null }
interface SessionRow { client_id: string; protocol_version: number; expiry_interval: number; disconnected_at: number | null }
interface SubscriptionRow { client_id: string; filter: string; qos: number; no_local: number; retain_as_published: number; retain_handling: number; subscription_id: number | null }
interface QueueRow {
  seq: number; client_id: string; topic: string; payload: Buffer; qos: number; retain: number; properties: string | null;
  expires_at: number | null; subscription_ids: string | null; packet_id: number | null; released: number;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return code !== undefined ? `${error.message} (${String(code)})` : error.message;
  }
  return String(error);
}

function encodeProperties(properties: MessageProperties | undefined): string | null {
  if (!properties) return null;
  const { correlationData, ...rest } = properties;
  return JSON.stringify(correlationData ? { ...rest, correlationData: correlationData.toString('base64') } : rest);
}

/**
 * Properties as stored. A row this version cannot read (not JSON, not an object) is returned as it is,
 * for the broker's load-time check (message-check.ts) to drop with a log line instead of failing the start.
 */
function decodeProperties(text: string | null): MessageProperties | undefined {
  if (text === null) return undefined;
  const parsed = parseJson(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return parsed as MessageProperties;
  const { correlationData, ...rest } = parsed as Omit<MessageProperties, 'correlationData'> & { correlationData?: unknown };
  if (correlationData === undefined) return rest;
  return { ...rest, correlationData: typeof correlationData === 'string' ? Buffer.from(correlationData, 'base64') : correlationData as Buffer };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
