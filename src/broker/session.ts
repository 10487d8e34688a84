// Session state (MQTT 5.0 §4.1): subscriptions, messages queued or in flight towards the client,
// and QoS 2 packet ids received but not yet released. No I/O here.

import type { Connection } from './connection.js';
import type { Delivery } from './delivery.js';
import type { ReadFilter } from './read-access.js';
import type { Subscriber, Subscription } from './subscription-tree.js';
import type { ClientIdentity, Message, QoS } from './types.js';

/** Session expiry interval meaning "never expires" (v5 0xFFFFFFFF; also used for 3.1.1 persistent sessions). */
export const NEVER_EXPIRES = 0xffffffff;

/**
 * Most sessions never subscribe to much or have messages in flight: they share these empty
 * collections until their first write (an idle connection then costs far less memory).
 */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('internal error: write to a shared empty map');
  }
}
class SharedEmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error('internal error: write to a shared empty set');
  }
}
const noSubscriptions = new SharedEmptyMap<string, Subscription<Session>>();
const nothingInflight = new SharedEmptyMap<number, Delivery>();
const noIncomingQos2 = new SharedEmptySet<number>();

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
  /** Set when some subscription is only partly readable: every message is then checked (read-access.ts). */
  readFilter: ReadFilter | null = null;
  /** Who connected last (null for a session restored from SQLite until its client is back). */
  identity: ClientIdentity | null = null;
  subscriptions: Map<string, Subscription<Session>> = noSubscriptions;
  /** Sent and not yet acknowledged, by packet id, in send order. */
  inflight: Map<number, Delivery> = nothingInflight;
  /** Waiting for the client's receive window (or for the client to come back). */
  queue: Delivery[] = [];
  queuedBytes = 0;
  /**
   * Packet id of a QoS 2 PUBLISH whose PUBREC has not come yet; nothing newer is sent until then.
   * Clients hand a QoS 2 message to the application only on PUBREL, so without this a later QoS 1
   * message would overtake it: with it, applications see messages in publish order across QoS levels.
   */
  qos2Barrier = 0;
  incomingQos2: Set<number> = noIncomingQos2;
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

  addSubscription(subscription: Subscription<Session>): void {
    if (this.subscriptions === noSubscriptions) this.subscriptions = new Map();
    this.subscriptions.set(subscription.filter, subscription);
  }

  addInflight(delivery: Delivery): void {
    if (this.inflight === nothingInflight) this.inflight = new Map();
    this.inflight.set(delivery.packetId, delivery);
  }

  addIncomingQos2(packetId: number): void {
    if (this.incomingQos2 === noIncomingQos2) this.incomingQos2 = new Set();
    this.incomingQos2.add(packetId);
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
