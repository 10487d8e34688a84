// Retained messages (MQTT 5.0 §3.3.1.3): one per topic, replaced by the next retained PUBLISH,
// cleared by a retained PUBLISH with an empty payload. Kept in memory and written to SQLite:
// at once (inside the publisher's commit) when someone waits for it to be stored; coalesced when
// nobody does (Message.holdable: device readings, QoS 0), so a reading every second costs one row
// write per topic per interval, not one per reading. $SYS topics are not stored: the broker and the
// bridges publish them again at start.

import { silentLogger, type Logger } from '../log.js';
import type { Store } from '../persistence/store.js';
import { messageProblem } from './message-check.js';
import { topicMatches } from './topics.js';
import type { Message } from './types.js';

const SYS_PREFIX = '$SYS/';

export interface RetainedLimits {
  maxMessages: number;
  /** Payload + topic bytes over all retained messages. */
  maxBytes: number;
}

function sizeOf(message: Message): number {
  return message.payload.length + message.topic.length;
}

export class RetainedStore {
  private readonly messages = new Map<string, Message>();
  private bytes = 0;
  /** Holdable changes not yet written: topic → the last value (null: cleared). */
  private readonly dirty = new Map<string, Message | null>();
  private timer: NodeJS.Timeout | null = null;

  /** @param writeIntervalMs how long a holdable retained change may wait to be written; 0 writes at once. */
  constructor(
    private readonly store: Store,
    logger: Logger = silentLogger,
    private readonly limits: RetainedLimits = { maxMessages: Infinity, maxBytes: Infinity },
    private readonly writeIntervalMs = 0,
  ) {
    let staleSys = false;
    for (const message of store.loadRetained()) {
      if (message.topic.startsWith(SYS_PREFIX)) {
        staleSys = true;
        continue;
      }
      // Rows written by an older version were not all validated (issue 8, defect 2): one that cannot
      // be encoded would disconnect every subscriber it matches.
      const problem = messageProblem(message);
      if (problem !== null) {
        logger.warn({ topic: message.topic, problem }, 'dropping a stored retained message that is not valid');
        store.saveRetained(message.topic, null);
        continue;
      }
      this.messages.set(message.topic, message);
      this.bytes += sizeOf(message);
    }
    // Written by versions that stored $SYS: cleared once, never loaded again.
    if (staleSys) store.deleteRetainedPrefix(SYS_PREFIX);
  }

  get size(): number {
    return this.messages.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** Holdable retained changes waiting to be written. */
  get pendingWrites(): number {
    return this.dirty.size;
  }

  /**
   * Stores or clears (empty payload [MQTT-3.3.1-10]) the retained message for the topic. Returns
   * false (nothing stored) when storing it would pass the limits: a new topic past the count, or
   * more bytes than allowed. Clearing and replacing within the limits always work.
   */
  set(message: Message): boolean {
    const previous = this.messages.get(message.topic);
    const holdable = message.holdable === true;
    if (message.payload.length === 0) {
      if (previous !== undefined) {
        this.messages.delete(message.topic);
        this.bytes -= sizeOf(previous);
        this.persist(message.topic, null, holdable);
      }
      return true;
    }
    if (previous === undefined && this.messages.size >= this.limits.maxMessages) return false;
    const bytes = this.bytes - (previous !== undefined ? sizeOf(previous) : 0) + sizeOf(message);
    if (bytes > this.limits.maxBytes) return false;
    const retained: Message = message.retain ? message : { ...message, retain: true };
    this.messages.set(message.topic, retained);
    this.bytes = bytes;
    this.persist(message.topic, retained, holdable);
    return true;
  }

  /** Writes the coalesced changes now (into the store's next commit). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const [topic, message] of this.dirty) this.store.saveRetained(topic, message);
    this.dirty.clear();
  }

  /** Stops the timer and writes what is pending (before the store closes). */
  close(): void {
    this.flush();
  }

  private persist(topic: string, message: Message | null, holdable: boolean): void {
    if (topic.startsWith(SYS_PREFIX)) return;
    if (!holdable || this.writeIntervalMs <= 0) {
      // A write that someone waits for supersedes a coalesced one for the same topic.
      this.dirty.delete(topic);
      this.store.saveRetained(topic, message);
      return;
    }
    this.dirty.set(topic, message);
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.writeIntervalMs);
      this.timer.unref();
    }
  }

  /** Unexpired retained messages matching a (non-shared) filter. */
  match(filter: string, now = Date.now()): Message[] {
    const out: Message[] = [];
    const exact = !filter.includes('+') && !filter.includes('#');
    if (exact) {
      const message = this.messages.get(filter);
      if (message) this.keepIfAlive(message, now, out);
      return out;
    }
    for (const message of this.messages.values()) {
      if (topicMatches(filter, message.topic)) this.keepIfAlive(message, now, out);
    }
    return out;
  }

  private keepIfAlive(message: Message, now: number, out: Message[]): void {
    if (message.expiresAt !== undefined && message.expiresAt <= now) {
      this.messages.delete(message.topic);
      this.bytes -= sizeOf(message);
      this.persist(message.topic, null, false);
      return;
    }
    out.push(message);
  }
}
