import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import type { Delivery } from '../delivery.js';
import { isValidTopicFilter, parseSharedFilter } from '../topics.js';
import type { QoS } from '../types.js';
import { deliver } from '../outbound.js';
import { protocolError } from './dispatch.js';

const FAILURE_V3 = 0x80;
const TOPIC_FILTER_INVALID = 0x8f;
const NOT_AUTHORIZED = 0x87;
const QUOTA_EXCEEDED = 0x97;

/** SUBSCRIBE (MQTT 5.0 §3.8): one reason code per filter, then retained messages per Retain Handling. */
export function handleSubscribe(broker: Broker, connection: Connection, packet: mqttPacket.ISubscribePacket): void {
  const session = connection.session!;
  const v5 = connection.protocolVersion === 5;
  const subscriptionId = v5 ? packet.properties?.subscriptionIdentifier : undefined;
  if (subscriptionId === 0) return protocolError(broker, connection, 'Subscription Identifier 0 (allowed: 1 to 268,435,455)');
  if (packet.subscriptions.length === 0) {
    // [MQTT-3.8.3-3]: a SUBSCRIBE must carry at least one filter.
    return protocolError(broker, connection, 'SUBSCRIBE without a topic filter');
  }
  const granted: number[] = [];
  const retainedToSend: { filter: string; qos: QoS; subscriptionId?: number }[] = [];
  for (const request of packet.subscriptions) {
    const filter = request.topic;
    const shared = parseSharedFilter(filter);
    if (shared === 'invalid' || (shared === null && !isValidTopicFilter(filter))) {
      broker.logger.info({ clientId: session.clientId, filter }, 'invalid topic filter');
      granted.push(v5 ? TOPIC_FILTER_INVALID : FAILURE_V3);
      continue;
    }
    // No Local on a shared subscription [MQTT-3.8.3-4] was refused by the decoder, before any filter was added.
    if (broker.authorizeSubscription(session, connection.identity, filter) === 'denied') {
      broker.logger.info({ clientId: session.clientId, filter }, 'subscription denied');
      granted.push(v5 ? NOT_AUTHORIZED : FAILURE_V3);
      continue;
    }
    if (!session.subscriptions.has(filter) && session.subscriptions.size >= broker.options.maxSubscriptionsPerClient) {
      broker.logger.warn({ clientId: session.clientId, filter, limit: broker.options.maxSubscriptionsPerClient }, 'subscription refused: client at its subscription limit');
      granted.push(v5 ? QUOTA_EXCEEDED : FAILURE_V3);
      continue;
    }
    const qos = Math.min(request.qos, 2) as QoS;
    const retainHandling = (v5 ? request.rh ?? 0 : 0) as 0 | 1 | 2;
    const { existed } = broker.addSubscription(session, {
      filter, qos, noLocal: v5 ? request.nl === true : false, retainAsPublished: v5 ? request.rap === true : false,
      retainHandling, subscriptionId,
    });
    granted.push(qos);
    if (retainHandling === 0 || (retainHandling === 1 && !existed)) retainedToSend.push({ filter, qos, subscriptionId });
  }
  connection.send({ cmd: 'suback', messageId: packet.messageId, granted });
  for (const { filter, qos, subscriptionId: id } of retainedToSend) {
    for (const message of broker.retainedFor(filter)) {
      if (session.readFilter?.allows(message.topic) === false) continue;
      // Retained messages sent on subscribe carry RETAIN=1 [MQTT-3.3.1-8].
      const delivery: Delivery = {
        seq: 0, message, qos: Math.min(qos, message.qos) as QoS, retain: true,
        subscriptionIds: id !== undefined ? [id] : undefined, packetId: 0, released: false,
      };
      deliver(broker, session, delivery, null);
    }
  }
}
