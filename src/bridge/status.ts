// Bridge state published into the local broker under $SYS/broker/connection/<name>/…, retained, as Mosquitto does.
import type { LocalClient } from '../broker/types.js';
import type { Logger } from '../log.js';
import { describeError } from './outbox.js';

export interface BridgeState {
  name: string;
  remote: string;
  connected: boolean;
  /** Messages waiting for the remote's PUBACK: outbox rows, spill log records (`spilled`) and messages held in memory (`held`). */
  outboxDepth: number;
  outboxBytes: number;
  /** Messages nobody waits for, held in memory for the remote's PUBACK and not written (see hold.ts). */
  held: number;
  /** Of outboxDepth: held messages written to the spill log (spill-log.ts), not yet acknowledged. */
  spilled: number;
  /** Since start: spill batches and messages written to the spill log, and their bytes on file. */
  /** lost: spilled records found unreadable (damage, I/O errors) and given up. */
  spillWrites: { batches: number; messages: number; fileBytes: number; lost: number };
  /** Age of the oldest queued message in seconds, null when the outbox is empty. */
  oldestAgeSeconds: number | null;
  inflight: number;
  /** PUBLISH packets sent to the remote (including resends). */
  sent: number;
  /** Messages the remote acknowledged. */
  acked: number;
  resent: number;
  /** Messages dropped by the outbox limits or expiry. */
  dropped: number;
  /** Messages moved to bridge_dead (too large, refused by the remote). */
  dead: number;
  /** Messages received from the remote and published locally. */
  received: number;
  /** Successful connections since start. */
  connects: number;
  /** Last connection problem (refused, TLS, unreachable), null while connected. */
  lastError: string | null;
  /** Last outbox problem (cannot open, cannot write), null once it works again. */
  outboxError: string | null;
}

export class StatusPublisher {
  private readonly base: string;
  private lastConnected: boolean | undefined;

  constructor(
    name: string,
    private readonly local: LocalClient,
    private readonly logger: Logger,
  ) {
    this.base = `$SYS/broker/connection/${name}`;
  }

  /** `state` is "1"/"0" like Mosquitto's bridge state topic. */
  publishConnected(connected: boolean): void {
    if (this.lastConnected === connected) return;
    this.lastConnected = connected;
    this.put('state', connected ? '1' : '0');
  }

  publishCounters(s: BridgeState): void {
    const values: Record<string, string> = {
      'outbox/depth': String(s.outboxDepth),
      'outbox/bytes': String(s.outboxBytes),
      'outbox/oldest_age_seconds': s.oldestAgeSeconds === null ? '0' : String(s.oldestAgeSeconds),
      'messages/sent': String(s.sent),
      'messages/acked': String(s.acked),
      'messages/dropped': String(s.dropped),
      'messages/dead': String(s.dead),
      'messages/received': String(s.received),
      stats: JSON.stringify(s),
    };
    for (const [suffix, value] of Object.entries(values)) this.put(suffix, value);
  }

  private put(suffix: string, value: string): void {
    this.local.publish(`${this.base}/${suffix}`, value, { qos: 0, retain: true }).catch((err: unknown) => {
      this.logger.debug({ topic: `${this.base}/${suffix}`, err: describeError(err) }, 'bridge: cannot publish state');
    });
  }
}
