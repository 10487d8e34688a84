// After a burst of connections, one full garbage collection once the broker has gone quiet, so that
// the memory the burst used (its sockets, read buffers, decoded CONNECTs, the heap V8 grew for them)
// returns instead of staying until V8 happens to collect: with no allocation, an idle process
// may not collect at all, and V8's memory reducer does not always run after a burst of scavenges.
// The pause (a full compacting GC of the heap, ~25–55 ms for the gateway's ~20 MiB on a loaded machine) comes at a moment nobody waits for: no connection
// opened or closed for a whole quiet period and little traffic (a gateway's own devices publish a
// few readings a second all the time: waiting for no message at all would wait for ever).

import v8 from 'node:v8';
import { garbageCollector } from '../gc.js';

/** Connections opened and gone since the last collection that make a burst. */
const BURST_EVENTS = 256;
/**
 * How long the broker must be quiet (no connection opened or gone, at most QUIET_MESSAGES_PER_SECOND routed)
 * before the collection: V8 gives back the young generation the burst grew (up to 2 × --max-semi-space-size)
 * only when its allocation rate over the last 5 s is low, so an earlier collection would leave ~3 MiB of it.
 */
const QUIET_MS = 5000;
const QUIET_MESSAGES_PER_SECOND = 100;

export interface IdleCollectorHost {
  /** Messages received and sent so far (a count that only grows): a fan-out counts by its deliveries. */
  activity(): number;
  /** The collection ran: how long it paused the process. */
  collected(pauseMs: number, events: number): void;
}

export class IdleCollector {
  private events = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastActivity = 0;
  private lastEvents = 0;
  private stopped = false;

  constructor(private readonly host: IdleCollectorHost) {}

  /** A connection was accepted or its socket is gone. */
  noteConnection(): void {
    this.events++;
    if (this.events >= BURST_EVENTS && this.timer === null && !this.stopped) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    this.lastActivity = this.host.activity();
    this.lastEvents = this.events;
    this.timer = setTimeout(this.check, QUIET_MS);
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = null;
    if (this.stopped) return;
    if (this.events !== this.lastEvents || this.host.activity() - this.lastActivity > (QUIET_MESSAGES_PER_SECOND * QUIET_MS) / 1000) {
        // Still busy: look again after another quiet period (one timer at a time, only after a burst).
      this.arm();
      return;
    }
    const events = this.events;
    this.events = 0;
    const gc = garbageCollector();
    if (gc === null) return;
    const started = performance.now();
    // With compaction: a plain full GC frees the burst's objects but leaves the pages they were on
    // (fragmented, still in RSS); compacting moves the survivors together and gives the rest back.
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
    this.host.collected(performance.now() - started, events);
  };
}
