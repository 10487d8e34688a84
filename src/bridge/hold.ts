// The ack-first stage in front of the outbox: messages nobody waits for (device readings, QoS 0; Message.holdable)
// wait here in memory for the remote's PUBACK and are written (HoldHost.spill: the spill log, or without a data
// directory the outbox table) only when that takes longer than the hold time, when memory fills, or when the bridge stops. With the cloud connected and keeping up they are never written.
// A power cut (or kill -9) loses at most what is held: the last `ms` of such messages, bounded by maxMessages/maxBytes.
import type { OutboxRow } from './outbox.js';

export interface HoldLimits {
  /** How long a message may wait in memory for the remote's PUBACK; 0 = the stage is off (everything written first). */
  ms: number;
  maxMessages: number;
  maxBytes: number;
}

/** A held message: an OutboxRow with a negative id (the sender's key; outbox rows have positive ids). */
export interface HeldMessage extends OutboxRow {
  heldAt: number;
  /** Sent at least once: a resend carries DUP. */
  sent: boolean;
  acked: boolean;
}

export interface SpilledMessage {
  message: HeldMessage;
  rowId: number;
}

export interface HoldHost {
  connected(): boolean;
  /**
   * Writes the messages in one batch (one spill log frame, or one outbox transaction), in order; returns their ids
   * (0 for one the outbox's limits dropped). Throws when nothing could be written (disk full): they stay held and it
   * is tried again.
   */
  spill(messages: HeldMessage[]): number[];
  /** After a spill: the sender re-keys the ones in flight and reads the others from the outbox. */
  spilled(messages: SpilledMessage[]): void;
  /** Messages dropped because memory was full and the outbox could not take them. */
  dropped(n: number): void;
  onSpillError(err: unknown): void;
}

const RETRY_MS = 1000;
/** Messages due within this much of the first are written in the same transaction. */
const BATCH_SLACK_MS = 50;

export class HoldStage {
  private queue: HeldMessage[] = [];
  /** Index of the oldest message not yet acknowledged or spilled. */
  private head = 0;
  /** Index of the next message to send. */
  private nextToSend = 0;
  private live = 0;
  private liveBytes = 0;
  private nextId = -1;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private closed = false;
  /** The last write failed (disk full): until the retry, memory limits shed the oldest instead of writing again. */
  private failing = false;
  spilledTotal = 0;

  constructor(private readonly limits: HoldLimits, private readonly host: HoldHost) {}

  /** Messages held (not yet acknowledged, not yet written). */
  get size(): number {
    return this.live;
  }

  get bytes(): number {
    return this.liveBytes;
  }

  add(row: Omit<OutboxRow, 'id'>, now = Date.now()): void {
    const message: HeldMessage = { ...row, id: this.nextId--, heldAt: now, sent: false, acked: false };
    this.queue.push(message);
    this.live += 1;
    this.liveBytes += row.size;
    if (this.closed) {
      this.spillAll();
      return;
    }
    if (this.live > this.limits.maxMessages || this.liveBytes > this.limits.maxBytes) {
      // Memory is full: the older half goes to SQLite in one transaction (unless writing fails: then the oldest go).
      if (this.failing) this.shedOverflow();
      else this.spillOldest(Math.max(1, this.live >> 1), this.host.connected());
      return;
    }
    this.arm(now);
  }

  /** The next message to send, in FIFO order, or undefined. */
  nextUnsent(): HeldMessage | undefined {
    while (this.nextToSend < this.queue.length) {
      const message = this.queue[this.nextToSend++]!;
      if (!message.acked) return message;
    }
    return undefined;
  }

  /** The remote acknowledged a held message: it is done and is never written. */
  acknowledge(id: number): boolean {
    // Acknowledgements come in send order: the message is near the head.
    for (let i = this.head; i < this.queue.length; i++) {
      const message = this.queue[i]!;
      if (message.id !== id) continue;
      if (message.acked) return false;
      message.acked = true;
      this.live -= 1;
      this.liveBytes -= message.size;
      this.advanceHead();
      return true;
    }
    return false;
  }

  /**
   * The connection dropped: nothing held will be acknowledged before the next one, so all of it is written now
   * (in order; read from the outbox and sent with DUP after the reconnect). If that fails it is sent from memory.
   */
  disconnected(): void {
    this.nextToSend = this.head;
    this.spillAll();
  }

  /** Writes everything held to the outbox now (the bridge stops). */
  spillAll(): void {
    this.spillOldest(this.live);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.spillAll();
  }

  private advanceHead(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.acked) this.head++;
    if (this.nextToSend < this.head) this.nextToSend = this.head;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.nextToSend = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.nextToSend -= this.head;
      this.head = 0;
    }
    if (this.live === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private arm(now: number): void {
    if (this.live === 0) return;
    // While connected, what is in flight waits for its PUBACK (or for the connection to drop): the deadline that
    // matters is the oldest message not yet sent.
    const from = this.host.connected() ? this.nextToSend : this.head;
    let oldest: HeldMessage | undefined;
    for (let i = from; i < this.queue.length; i++) {
      if (!this.queue[i]!.acked) {
        oldest = this.queue[i];
        break;
      }
    }
    if (oldest === undefined) return;
    const at = oldest.heldAt + this.limits.ms;
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - now));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.failing = false;
    const now = Date.now();
    let written: boolean;
    if (!this.host.connected()) {
      // Nothing is acknowledged before the link is back: write all of it, one transaction per hold time.
      written = this.spillOldest(this.live);
    } else {
      let n = 0;
      for (let i = this.nextToSend; i < this.queue.length; i++) {
        const message = this.queue[i]!;
        if (message.acked) continue;
        if (message.heldAt + this.limits.ms > now + BATCH_SLACK_MS) break;
        n++;
      }
      written = this.spillOldest(n, true);
    }
    // After a failed write the retry timer is set: arming for the (overdue) head would retry at once, in a loop.
    if (written) this.arm(now);
  };

  /**
   * Writes the `n` oldest held messages to the outbox in one transaction; with `unsentOnly` the oldest not yet sent
   * (those in flight on a live connection are left to their PUBACK). False when the write failed.
   */
  private spillOldest(n: number, unsentOnly = false): boolean {
    if (n <= 0) return true;
    const batch: HeldMessage[] = [];
    let end = unsentOnly ? this.nextToSend : this.head;
    for (; end < this.queue.length && batch.length < n; end++) {
      const message = this.queue[end]!;
      if (!message.acked) batch.push(message);
    }
    if (batch.length === 0) return true;
    let ids: number[];
    try {
      ids = this.host.spill(batch);
    } catch (err) {
      this.host.onSpillError(err);
      this.failing = true;
      this.shedOverflow();
      if (!this.closed) {
        clearTimeout(this.timer);
        this.timerAt = Date.now() + RETRY_MS;
        this.timer = setTimeout(this.onTimer, RETRY_MS);
      }
      return false;
    }
    const spilled: SpilledMessage[] = [];
    batch.forEach((message, i) => {
      message.acked = true;
      this.live -= 1;
      this.liveBytes -= message.size;
      if (ids[i]! > 0) spilled.push({ message, rowId: ids[i]! });
    });
    this.spilledTotal += batch.length;
    // The spilled ones are the oldest (of those not sent): none before `end` is to be sent from memory any more.
    if (this.nextToSend < end) this.nextToSend = end;
    this.advanceHead();
    this.host.spilled(spilled);
    return true;
  }

  /** The outbox cannot take messages and memory is over its limits: the oldest go, counted. */
  private shedOverflow(): void {
    let dropped = 0;
    for (let i = this.head; i < this.queue.length && (this.live > this.limits.maxMessages || this.liveBytes > this.limits.maxBytes); i++) {
      const message = this.queue[i]!;
      if (message.acked) continue;
      message.acked = true;
      this.live -= 1;
      this.liveBytes -= message.size;
      dropped++;
    }
    if (dropped > 0) {
      this.advanceHead();
      this.host.dropped(dropped);
    }
  }
}
