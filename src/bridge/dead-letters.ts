// A bridge's dead letters: the messages its remote can never take (too large, refused with a reason
// code ≥ 0x80), kept aside in bridge_dead by the outbox. Listed, sent again (back to the end of the
// outbox, as new rows, in one transaction with their removal), or deleted, for the management API.
import type { Database, Statement } from 'better-sqlite3';
import type { MessageProperties } from '../broker/types.js';
import { decodeProperties, type Outbox } from './outbox.js';

export interface DeadLetter {
  id: number;
  topic: string;
  payload: Buffer;
  retain: boolean;
  properties: MessageProperties | undefined;
  reason: string;
  createdAt: number;
  deadAt: number;
}

/** Which rows: these ids, or all of this bridge's. */
export type DeadChoice = { ids: number[] } | { all: true };

export class DeadLetters {
  private readonly listStmt: Statement;
  private readonly countStmt: Statement;
  private readonly byIdStmt: Statement;
  private readonly allStmt: Statement;
  private readonly deleteStmt: Statement;

  constructor(
    private readonly db: Database,
    private readonly bridge: string,
    private readonly outbox: Outbox,
    private readonly onRequeued: () => void,
  ) {
    // The table and its index exist once the outbox opened (Outbox.open creates them).
    const columns = 'id, topic, payload, retain, props, reason, created_at, dead_at';
    this.listStmt = db.prepare(`SELECT ${columns} FROM bridge_dead WHERE bridge = ? AND id > ? ORDER BY id LIMIT ?`);
    this.countStmt = db.prepare('SELECT count(*) AS n FROM bridge_dead WHERE bridge = ?').pluck();
    this.byIdStmt = db.prepare(`SELECT ${columns} FROM bridge_dead WHERE bridge = ? AND id = ?`);
    this.allStmt = db.prepare(`SELECT ${columns} FROM bridge_dead WHERE bridge = ? ORDER BY id`);
    this.deleteStmt = db.prepare('DELETE FROM bridge_dead WHERE bridge = ? AND id = ?');
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  count(): number {
    return this.countStmt.get(this.bridge) as number;
  }

  list(after: number, limit: number): DeadLetter[] {
    return (this.listStmt.all(this.bridge, after, limit) as RawDead[]).map(toDeadLetter);
  }

  /**
   * Puts the rows back at the end of the outbox as new rows (created now: the outbox's maxAgeSeconds counts from the
   * retry, or an old dead letter would expire before it is sent); returns how many went back (a full outbox with
   * drop-newest keeps the rest dead).
   */
  retry(choice: DeadChoice, now = Date.now()): number {
    let retried = 0;
    this.db.transaction(() => {
      for (const row of this.rowsOf(choice)) {
        if (!this.outbox.enqueue(row.topic, row.payload, row.retain, row.properties, undefined, now)) continue;
        this.deleteStmt.run(this.bridge, row.id);
        retried++;
      }
    })();
    if (retried > 0) this.onRequeued();
    return retried;
  }

  delete(choice: DeadChoice): number {
    let deleted = 0;
    this.db.transaction(() => {
      if ('all' in choice) deleted = this.db.prepare('DELETE FROM bridge_dead WHERE bridge = ?').run(this.bridge).changes;
      else for (const id of new Set(choice.ids)) deleted += this.deleteStmt.run(this.bridge, id).changes;
    })();
    return deleted;
  }

  private rowsOf(choice: DeadChoice): DeadLetter[] {
    if ('all' in choice) return (this.allStmt.all(this.bridge) as RawDead[]).map(toDeadLetter);
    const rows: DeadLetter[] = [];
    for (const id of new Set(choice.ids)) {
      const raw = this.byIdStmt.get(this.bridge, id) as RawDead | undefined;
      if (raw) rows.push(toDeadLetter(raw));
    }
    return rows;
  }
}

interface RawDead {
  id: number;
  topic: string;
  payload: Buffer;
  retain: number;
  props: string | null;
  reason: string;
  created_at: number;
  dead_at: number;
}

function toDeadLetter(r: RawDead): DeadLetter {
  return {
    id: r.id, topic: r.topic, payload: r.payload, retain: r.retain === 1,
    properties: r.props === null ? undefined : decodeProperties(r.props),
    reason: r.reason, createdAt: r.created_at, deadAt: r.dead_at,
  };
}
