// Session state (MQTT 5.0 §4.1): subscriptions, messages queued or in flight towards the client,
// and QoS 2 packet ids received but not yet released. No I/O here.

import type { Connection } from './connection.js';
import type { Delivery } from './delivery.js';
import type { Subscriber, Subscription } from './subscription-tree.js';
import type { Message, QoS } from './types.js';

/** Session expiry interval meaning "never expires" (v5 0xFFFFFFFF; also used for 3.1.1 persistent sessions). */
export const NEVER_EXPIRES = 0xffffffff;

export interface Will {
  message: Message;
  delaySeconds: number;
  /** Message expiry interval of the will; its clock starts when the will is published. */
  expirySeconds?: number;
}

export class Session implements Subscriber {
  routeMark = 0;
  /** Scratch fields the router fills while folding overlapping subscriptions. */
  routeQos: QoS = 0;
  routeRetain = false;
  routeSubscriptionIds: number[] | undefined = undefined;
  connection: Connection | null = null;
  readonly subscriptions = new Map<string, Subscription<Session>>();
  /** Sent and not yet acknowledged, by packet id, in send order. */
  readonly inflight = new Map<number, Delivery>();
  /** Waiting for the client's receive window (or for the client to come back). */
  queue: Delivery[] = [];
  queuedBytes = 0;
  readonly incomingQos2 = new Set<number>();
  expiryTimer: NodeJS.Timeout | null = null;
  willTimer: NodeJS.Timeout | null = null;
  pendingWill: Will | null = null;
  disconnectedAt: number | null = null;
  private lastPacketId = 0;

  constructor(
    readonly clientId: string,
    public protocolVersion: number,
    /** Seconds; 0 = ends with the connection. */
    public expiryInterval: number,
  ) {}

  /** Whether the session outlives its connection and so lives in SQLite. */
  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Next packet id not in use by a message in flight [MQTT-2.3.1-2]. */
  allocatePacketId(): number {
    for (let i = 0; i < 65535; i++) {
      this.lastPacketId = this.lastPacketId >= 65535 ? 1 : this.lastPacketId + 1;
      if (!this.inflight.has(this.lastPacketId)) return this.lastPacketId;
    }
    return 0;
  }

  clearTimers(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.willTimer) clearTimeout(this.willTimer);
    this.expiryTimer = null;
    this.willTimer = null;
  }
}
