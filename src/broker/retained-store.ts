// Retained messages (MQTT 5.0 §3.3.1.3): one per topic, replaced by the next retained PUBLISH,
// cleared by a retained PUBLISH with an empty payload. Kept in memory, written through to SQLite.

import { silentLogger, type Logger } from '../log.js';
import type { Store } from '../persistence/store.js';
import { messageProblem } from './message-check.js';
import { topicMatches } from './topics.js';
import type { Message } from './types.js';

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

  constructor(
    private readonly store: Store,
    logger: Logger = silentLogger,
    private readonly limits: RetainedLimits = { maxMessages: Infinity, maxBytes: Infinity },
  ) {
    for (const message of store.loadRetained()) {
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
  }

  get size(): number {
    return this.messages.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /**
   * Stores or clears (empty payload [MQTT-3.3.1-10]) the retained message for the topic. Returns
   * false (nothing stored) when storing it would pass the limits: a new topic past the count, or
   * more bytes than allowed. Clearing and replacing within the limits always work.
   */
  set(message: Message): boolean {
    const previous = this.messages.get(message.topic);
    if (message.payload.length === 0) {
      if (previous !== undefined) {
        this.messages.delete(message.topic);
        this.bytes -= sizeOf(previous);
        this.store.saveRetained(message.topic, null);
      }
      return true;
    }
    if (previous === undefined && this.messages.size >= this.limits.maxMessages) return false;
    const bytes = this.bytes - (previous !== undefined ? sizeOf(previous) : 0) + sizeOf(message);
    if (bytes > this.limits.maxBytes) return false;
    const retained: Message = message.retain ? message : { ...message, retain: true };
    this.messages.set(message.topic, retained);
    this.bytes = bytes;
    this.store.saveRetained(message.topic, retained);
    return true;
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
      this.store.saveRetained(message.topic, null);
      return;
    }
    out.push(message);
  }
}
