// Messages towards one session: queueing within limits, the client's receive window,
// encoding and redelivery (MQTT 5.0 §4.3, §4.4, §4.9).

import mqttPacket from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { Delivery } from './delivery.js';
import type { QueuePolicy } from './options.js';
import { encodeAck, encodePublish, withDup } from './packet-writer.js';
import { NO_DELIVERIES, type Session } from './session.js';
import type { Message } from './types.js';
import type { Store } from '../persistence/store.js';

export interface OutboundHost {
  readonly store: Store;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly queuePolicy: QueuePolicy;
  countSent(): void;
  countDropped(session: Session, reason: string): void;
}

/** Per-route cache of encodings shared by every subscriber that can take identical bytes. */
export class SharedEncoding {
  private message: Message | null = null;
  private topic: Buffer | null = null;
  private v3: Buffer | null = null;
  private v3Retain: Buffer | null = null;
  private v5: Buffer | null = null;
  private v5Retain: Buffer | null = null;
  /** The PUBLISH as its publisher sent it, when that is a live QoS 0 delivery's exact bytes (DecodedPublish.wire). */
  private wire: Buffer | null = null;

  /** `wire`: the received packet when it can be forwarded as it is, in the publisher's family (`wireV5`). */
  reset(message: Message, wire: Buffer | null = null, wireV5 = false): void {
    this.message = message;
    this.topic = this.v3 = this.v3Retain = this.v5 = this.v5Retain = null;
    this.wire = wire;
    if (wire !== null) {
      if (wireV5) this.v5 = wire;
      else this.v3 = wire;
    }
  }

  topicBytes(): Buffer {
    if (this.topic === null) this.topic = this.wire !== null ? wireTopic(this.wire) : Buffer.from(this.message!.topic);
    return this.topic;
  }

  /** QoS 0 PUBLISH without properties, per (protocol family, retain flag). */
  qos0Packet(v5: boolean, retain: boolean): Buffer {
    if (v5) {
      if (retain) return (this.v5Retain ??= this.encode(true, true));
      return (this.v5 ??= this.encode(true, false));
    }
    if (retain) return (this.v3Retain ??= this.encode(false, true));
    return (this.v3 ??= this.encode(false, false));
  }

  private encode(v5: boolean, retain: boolean): Buffer {
    return encodePublish(this.topicBytes(), this.message!.payload, 0, retain, false, 0, v5);
  }
}

/** The topic name's bytes inside a PUBLISH (fixed header, then a two-byte length and the name). */
function wireTopic(wire: Buffer): Buffer {
  let start = 2;
  while ((wire[start - 1] & 0x80) !== 0) start++;
  const length = (wire[start] << 8) | wire[start + 1];
  return wire.subarray(start + 2, start + 2 + length);
}

function needsProperties(connection: Connection, message: Message, subscriptionIds: number[] | undefined): boolean {
  if (connection.protocolVersion !== 5) return false;
  return message.properties !== undefined || message.expiresAt !== undefined || subscriptionIds !== undefined || connection.clientTopicAliasMaximum > 0;
}

/** Encodes one PUBLISH for this connection; null when the client's Maximum Packet Size forbids it [MQTT-3.1.2-25]. */
export function encodeFor(connection: Connection, delivery: Delivery, dup: boolean, shared: SharedEncoding | null, now: number): Buffer | null {
  return encodeMessage(connection, delivery.message, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, dup, shared, now);
}

function encodeMessage(
  connection: Connection, message: Message, qos: 0 | 1 | 2, retain: boolean, subscriptionIds: number[] | undefined,
  packetId: number, dup: boolean, shared: SharedEncoding | null, now: number,
): Buffer | null {
  let bytes: Buffer;
  if (!needsProperties(connection, message, subscriptionIds)) {
    if (qos === 0 && shared !== null) bytes = shared.qos0Packet(connection.protocolVersion === 5, retain);
    else {
      const topic = shared !== null ? shared.topicBytes() : Buffer.from(message.topic);
      bytes = encodePublish(topic, message.payload, qos, retain, dup, packetId, connection.protocolVersion === 5);
    }
  } else {
    const properties: mqttPacket.IPublishPacket['properties'] = { ...message.properties };
    if (message.expiresAt !== undefined) properties.messageExpiryInterval = Math.max(0, Math.ceil((message.expiresAt - now) / 1000));
    if (subscriptionIds !== undefined) properties.subscriptionIdentifier = subscriptionIds.length === 1 ? subscriptionIds[0] : subscriptionIds;
    let topic = message.topic;
    /** A new alias, remembered only once this PUBLISH, which teaches it to the client, is really sent. */
    let newAlias = 0;
    if (connection.clientTopicAliasMaximum > 0) {
      const aliases = (connection.outboundAliases ??= new Map());
      const alias = aliases.get(topic);
      if (alias !== undefined) {
        properties.topicAlias = alias;
        topic = '';
      } else if (aliases.size < connection.clientTopicAliasMaximum) {
        newAlias = aliases.size + 1;
        properties.topicAlias = newAlias;
      }
    }
    bytes = mqttPacket.generate(
      { cmd: 'publish', topic, payload: message.payload, qos, retain, dup, messageId: qos > 0 ? packetId : undefined, properties },
      { protocolVersion: 5 },
    );
    if (connection.clientMaximumPacketSize > 0 && bytes.length > connection.clientMaximumPacketSize) return null;
    if (newAlias !== 0) connection.outboundAliases!.set(topic, newAlias);
  }
  if (connection.clientMaximumPacketSize > 0 && bytes.length > connection.clientMaximumPacketSize) return null;
  return dup && bytes[0] !== undefined && (bytes[0] & 0x08) === 0 ? withDup(bytes) : bytes;
}

function isExpired(message: Message, now: number): boolean {
  return message.expiresAt !== undefined && message.expiresAt <= now;
}

/**
 * A QoS 0 message to a session whose client is connected: written now, or dropped (and counted) when
 * the client is not reading. The same as deliver() for that case, without a Delivery object per message.
 */
export function deliverQos0Live(host: OutboundHost, session: Session, connection: Connection, message: Message, retain: boolean, subscriptionIds: number[] | undefined, shared: SharedEncoding | null): void {
  if (connection.congested) {
    host.countDropped(session, 'QoS 0 message to a client that is not reading');
    return;
  }
  const bytes = encodeMessage(connection, message, 0, retain, subscriptionIds, 0, false, shared, message.expiresAt === undefined ? 0 : Date.now());
  if (bytes !== null) {
    connection.write(bytes);
    host.countSent();
  }
}

/**
 * Hands a message to a session: sent now when online with room in the client's receive window,
 * queued otherwise. Returns false when the queue refused it (policy 'refuse').
 */
export function deliver(host: OutboundHost, session: Session, delivery: Delivery, shared: SharedEncoding | null): boolean {
  const connection = session.connection;
  if (delivery.qos === 0) {
    if (connection === null) {
      // Only reached for persistent sessions when QoS 0 queueing is enabled.
      delivery.seq = host.store.allocateSeq();
      host.store.enqueue(session.clientId, delivery);
      return enqueue(host, session, delivery);
    }
    if (connection.congested) {
      host.countDropped(session, 'QoS 0 message to a client that is not reading');
      return true;
    }
    const bytes = encodeFor(connection, delivery, false, shared, delivery.message.expiresAt === undefined ? 0 : Date.now());
    if (bytes !== null) {
      connection.write(bytes);
      host.countSent();
    }
    return true;
  }
  if (session.persistent) {
    delivery.seq = host.store.allocateSeq();
    host.store.enqueue(session.clientId, delivery);
  }
  if (connection !== null && session.queue.length === 0 && !session.heldByQos2(delivery) && session.inflight.size < connection.inflightWindow && !connection.congested) {
    sendNew(host, session, connection, delivery, shared);
    return true;
  }
  const accepted = enqueue(host, session, delivery);
  // The queue may hold only messages of publishers waiting for a PUBREC: this one need not wait with them.
  if (connection !== null && session.qos2Unreleased !== null && !session.heldByQos2(delivery)) pump(host, session);
  return accepted;
}

function enqueue(host: OutboundHost, session: Session, delivery: Delivery): boolean {
  const size = delivery.message.payload.length + delivery.message.topic.length;
  while (session.queue.length >= host.maxQueuedMessages || session.queuedBytes + size > host.maxQueuedBytes) {
    if (host.queuePolicy !== 'drop-oldest' || session.queue.length === 0) {
      if (delivery.seq !== 0) host.store.completeDelivery(delivery.seq);
      host.countDropped(session, `queue full (${session.queue.length} messages, ${session.queuedBytes} bytes), policy ${host.queuePolicy}`);
      return host.queuePolicy !== 'refuse';
    }
    const oldest = session.queue.shift()!;
    session.queuedBytes -= oldest.message.payload.length + oldest.message.topic.length;
    if (oldest.seq !== 0) host.store.completeDelivery(oldest.seq);
    host.countDropped(session, 'queue full, dropped the oldest message');
  }
  session.queueDelivery(delivery);
  session.queuedBytes += size;
  return true;
}

function sendNew(host: OutboundHost, session: Session, connection: Connection, delivery: Delivery, shared: SharedEncoding | null): void {
  const now = Date.now();
  if (isExpired(delivery.message, now)) {
    if (delivery.seq !== 0) host.store.completeDelivery(delivery.seq);
    return;
  }
  if (delivery.qos === 0) {
    const bytes = encodeFor(connection, delivery, false, shared, now);
    if (bytes !== null) {
      connection.write(bytes);
      host.countSent();
    }
    if (delivery.seq !== 0) host.store.completeDelivery(delivery.seq);
    return;
  }
  delivery.packetId = session.allocatePacketId();
  const bytes = encodeFor(connection, delivery, false, shared, now);
  if (bytes === null) {
    // Too large for this client: discarded as if delivered [MQTT-3.1.2-25].
    if (delivery.seq !== 0) host.store.completeDelivery(delivery.seq);
    host.countDropped(session, "message larger than the client's Maximum Packet Size");
    return;
  }
  session.addInflight(delivery);
  if (delivery.qos === 2) session.holdForQos2(delivery);
  if (delivery.seq !== 0) host.store.markSent(delivery);
  connection.write(bytes);
  host.countSent();
}

/**
 * The client finished a QoS 1 (PUBACK) or QoS 2 (PUBCOMP, or a refusing PUBREC) exchange: the
 * message is done and its slot in the window is free. Unknown ids are ignored.
 */
export function completeOutgoing(host: OutboundHost, session: Session, packetId: number, qos: 1 | 2): Delivery | null {
  const delivery = session.inflight.get(packetId);
  if (!delivery || delivery.qos !== qos) return null;
  session.inflight.delete(packetId);
  session.dropUnsent(delivery);
  if (delivery.qos === 2 && !delivery.released) session.releaseQos2(delivery);
  if (delivery.seq !== 0) host.store.completeDelivery(delivery.seq);
  return delivery;
}

/** Queued messages of publishers held by a QoS 2 exchange that one pump looks past, at most. */
const PUMP_SCAN_LIMIT = 1024;

/**
 * Moves queued messages into the client's receive window, in queue order; a message whose
 * publisher has a QoS 2 PUBLISH waiting for PUBREC stays (with every later one of that publisher),
 * and the others go past it.
 */
export function pump(host: OutboundHost, session: Session): void {
  const connection = session.connection;
  if (connection === null) return;
  while (session.unsent.length > 0 && session.inflight.size - session.unsent.length < connection.inflightWindow && !connection.congested) {
    resend(host, session, connection, session.unsent.shift()!, Date.now());
  }
  const queue = session.queue;
  let kept: Delivery[] | null = null;
  let i = 0;
  while (i < queue.length && session.inflight.size < connection.inflightWindow && !connection.congested) {
    const delivery = queue[i];
    if (session.heldByQos2(delivery)) {
      // A message of unknown publisher (restored from SQLite) holds everything after it.
      if ((delivery.message.origin ?? '') === '') break;
      kept ??= [];
      if (kept.length >= PUMP_SCAN_LIMIT) break;
      kept.push(delivery);
      i++;
      continue;
    }
    i++;
    session.queuedBytes -= delivery.message.payload.length + delivery.message.topic.length;
    sendNew(host, session, connection, delivery, null);
  }
  if (i === 0) return;
  const rest = i === queue.length ? NO_DELIVERIES : queue.slice(i);
  session.queue = kept === null ? rest : kept.concat(rest);
}

/**
 * On reconnect: resend unacknowledged PUBLISHes with DUP and PUBRELs, in order, with their packet ids
 * [MQTT-4.4.0-1], the PUBLISHes only as far as the new connection's Receive Maximum allows
 * [MQTT-3.3.4-9]; the rest wait in session.unsent for acknowledgements.
 */
export function resume(host: OutboundHost, session: Session): void {
  const connection = session.connection;
  if (connection === null) return;
  const now = Date.now();
  session.qos2Unreleased = null;
  session.unsent = NO_DELIVERIES;
  let inWindow = 0;
  for (const delivery of session.inflight.values()) {
    inWindow++;
    if (delivery.released) {
      connection.write(encodeAck('pubrel', delivery.packetId, 0, connection.protocolVersion === 5));
      continue;
    }
    if (inWindow > connection.inflightWindow) session.keepUnsent(delivery);
    else resend(host, session, connection, delivery, now);
  }
  pump(host, session);
}

/** A PUBLISH sent again with DUP: counted as sent, as it is written to the client again. */
function resend(host: OutboundHost, session: Session, connection: Connection, delivery: Delivery, now: number): void {
  if (delivery.qos === 2) session.holdForQos2(delivery);
  const bytes = encodeFor(connection, delivery, true, null, now);
  if (bytes !== null) {
    connection.write(bytes);
    host.countSent();
  }
}

/** A session's queue and in-flight messages, from SQLite after a restart, split by state. */
export function restoreDeliveries(session: Session, deliveries: Delivery[]): void {
  for (const delivery of deliveries) {
    if (delivery.packetId !== 0 && !session.inflight.has(delivery.packetId)) session.addInflight(delivery);
    else {
      delivery.packetId = 0;
      session.queueDelivery(delivery);
      session.queuedBytes += delivery.message.payload.length + delivery.message.topic.length;
    }
  }
}
