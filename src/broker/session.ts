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
/** No deliveries queued or unsent: frozen, so a push that skipped Session.queueDelivery/keepUnsent throws instead of sharing. */
export const NO_DELIVERIES: Delivery[] = Object.freeze([]) as unknown as Delivery[];

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
  /**
   * In-flight PUBLISHes of an earlier connection not yet resent on this one: the new connection's
   * Receive Maximum may be smaller than what was in flight [MQTT-3.3.4-9]. They keep their packet ids
   * (a QoS 2 message must not come back under a new one) and go first as the window frees.
   */
  unsent: Delivery[] = NO_DELIVERIES;
  /** `delivery` was acknowledged before it was resent on this connection. */
  dropUnsent(delivery: Delivery): void {
    if (this.unsent.length === 0) return;
    const i = this.unsent.indexOf(delivery);
    if (i >= 0) this.unsent.splice(i, 1);
  }
  keepUnsent(delivery: Delivery): void {
    if (this.unsent === NO_DELIVERIES) this.unsent = [delivery];
    else this.unsent.push(delivery);
  }
  /** Waiting for the client's receive window (or for the client to come back). */
  queue: Delivery[] = NO_DELIVERIES;
  queueDelivery(delivery: Delivery): void {
    if (this.queue === NO_DELIVERIES) this.queue = [delivery];
    else this.queue.push(delivery);
  }
  queuedBytes = 0;
  /**
   * QoS 2 PUBLISHes sent whose PUBREC has not come yet, counted by publisher (Message.origin): nothing
   * newer from that publisher is sent until then. Clients hand a QoS 2 message to the application
   * only on PUBREL, so without this a later QoS 1 message would overtake it: with it, applications
   * see each publisher's messages in publish order across QoS levels [MQTT-4.6.0]. Other publishers'
   * messages are not held: one QoS 2 round trip per message would otherwise cap everything a
   * subscriber receives (the fuzzer's good subscriber fell 2,000 messages behind a QoS 2 stream).
   */
  qos2Unreleased: Map<string, number> | null = null;

  /**
   * Whether a delivery must wait for an earlier QoS 2 PUBREC of the same publisher. A message whose
   * publisher is not known ('': restored from SQLite, which keeps no origin) waits for every QoS 2
   * exchange and holds every later message: for those the order stays total.
   */
  heldByQos2(delivery: Delivery): boolean {
    const pending = this.qos2Unreleased;
    if (pending === null) return false;
    const origin = delivery.message.origin ?? '';
    return origin === '' || pending.has(origin) || pending.has('');
  }

  holdForQos2(delivery: Delivery): void {
    const origin = delivery.message.origin ?? '';
    this.qos2Unreleased ??= new Map();
    this.qos2Unreleased.set(origin, (this.qos2Unreleased.get(origin) ?? 0) + 1);
  }

  /** A QoS 2 delivery was released (PUBREC) or ended before it: its publisher's later messages may go. */
  releaseQos2(delivery: Delivery): void {
    const origin = delivery.message.origin ?? '';
    const count = this.qos2Unreleased?.get(origin);
    if (count === undefined) return;
    if (count > 1) this.qos2Unreleased!.set(origin, count - 1);
    else {
      this.qos2Unreleased!.delete(origin);
      if (this.qos2Unreleased!.size === 0) this.qos2Unreleased = null;
    }
  }
  incomingQos2: Set<number> = noIncomingQos2;
  expiryTimer: NodeJS.Timeout | null = null;
  willTimer: NodeJS.Timeout | null = null;
  pendingWill: Will | null = null;
  disconnectedAt: number | null = null;
  private lastPacketId = 0;
  /** The table that holds this session (and counts it when persistent), if any. */
  table: SessionTable | null = null;
  private expirySeconds: number;

  constructor(
    readonly clientId: string,
    public protocolVersion: number,
    /** Seconds; 0 = ends with the connection. */
    expiryInterval: number,
  ) {
    this.expirySeconds = expiryInterval;
  }

  /** Seconds; 0 = ends with the connection. A change between 0 and not 0 is counted by the session's table. */
  get expiryInterval(): number {
    return this.expirySeconds;
  }

  set expiryInterval(seconds: number) {
    const was = this.expirySeconds > 0;
    this.expirySeconds = seconds;
    if (this.table !== null && was !== seconds > 0) this.table.persistentCount += was ? -1 : 1;
  }

  /** Whether the session outlives its connection and so lives in SQLite. */
  get persistent(): boolean {
    return this.expirySeconds > 0;
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

/**
 * The broker's sessions by client id, with the number of persistent ones kept as they change (added,
 * removed, replaced, or their expiry set to or from 0), so the maxPersistentSessions check on every
 * CONNECT does not walk all sessions.
 */
export class SessionTable extends Map<string, Session> {
  persistentCount = 0;

  override set(clientId: string, session: Session): this {
    const previous = super.get(clientId);
    if (previous === session) return this;
    if (previous !== undefined) this.forget(previous);
    if (session.table !== null && session.table !== this) throw new Error(`internal error: session ${clientId} is in another table`);
    super.set(clientId, session);
    session.table = this;
    if (session.persistent) this.persistentCount++;
    return this;
  }

  override delete(clientId: string): boolean {
    const previous = super.get(clientId);
    if (previous === undefined) return false;
    this.forget(previous);
    return super.delete(clientId);
  }

  override clear(): void {
    for (const session of super.values()) session.table = null;
    this.persistentCount = 0;
    super.clear();
  }

  private forget(session: Session): void {
    session.table = null;
    if (session.persistent) this.persistentCount--;
  }
}
