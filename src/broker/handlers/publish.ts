import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { isValidTopicName } from '../topics.js';
import type { Message, MessageProperties } from '../types.js';
import { protocolError } from './dispatch.js';

const NOT_AUTHORIZED = 0x87;
const QUOTA_EXCEEDED = 0x97;

/** PUBLISH from a client (MQTT 5.0 §3.3): validate, authorize, route, acknowledge after the commit. */
export function handlePublish(broker: Broker, connection: Connection, packet: mqttPacket.IPublishPacket): void {
  const session = connection.session!;
  const v5 = connection.protocolVersion === 5;
  if (v5 && packet.properties?.subscriptionIdentifier !== undefined) {
    // [MQTT-3.3.4-6]: a client's PUBLISH must not carry a Subscription Identifier.
    return protocolError(broker, connection, 'PUBLISH from a client carries a Subscription Identifier', 0x82);
  }
  let topic = packet.topic;
  const alias = v5 ? packet.properties?.topicAlias : undefined;
  if (alias !== undefined) {
    if (alias === 0 || alias > broker.options.topicAliasMaximum) {
      return protocolError(broker, connection, `topic alias ${alias} outside 1..${broker.options.topicAliasMaximum}`, 0x94);
    }
    if (topic === '') {
      const known = connection.inboundAliases?.get(alias);
      if (known === undefined) return protocolError(broker, connection, `topic alias ${alias} used before it was set`, 0x82);
      topic = known;
    } else {
      (connection.inboundAliases ??= new Map()).set(alias, topic);
    }
  }
  if (!isValidTopicName(topic)) {
    return protocolError(broker, connection, `invalid topic name in PUBLISH: "${topic}"`, 0x90);
  }
  const qos = packet.qos;
  const id = packet.messageId ?? 0;
  if (qos > 0) {
    if (id === 0) return protocolError(broker, connection, 'QoS > 0 PUBLISH with packet identifier 0', 0x82);
    if (v5 && connection.incomingUnacked >= broker.options.receiveMaximum) {
      // [MQTT-3.3.4-9]: more unacknowledged QoS>0 PUBLISHes than our Receive Maximum.
      return protocolError(broker, connection, `client exceeded the receive maximum of ${broker.options.receiveMaximum}`, 0x93);
    }
    if (qos === 2 && session.incomingQos2.has(id)) {
      // A resent QoS 2 PUBLISH we already own: acknowledge again, do not deliver twice [MQTT-4.3.3-10].
      connection.send({ cmd: 'pubrec', messageId: id });
      return;
    }
  }
  if (!broker.authorize(connection.identity, 'publish', topic)) {
    broker.logger.info({ clientId: session.clientId, topic }, 'publish denied');
    if (qos === 1) connection.send({ cmd: 'puback', messageId: id, reasonCode: v5 ? NOT_AUTHORIZED : undefined });
    else if (qos === 2) connection.send({ cmd: 'pubrec', messageId: id, reasonCode: v5 ? NOT_AUTHORIZED : undefined });
    return;
  }
  // Not durably storable (full or failing disk): never acknowledged as stored (Broker.refuseUnstored).
  if (qos > 0 && !broker.acceptsDurable(connection)) return broker.refuseUnstored(connection, qos, id);
  const message: Message = {
    topic,
    payload: packet.payload as Buffer,
    qos,
    retain: packet.retain,
    properties: v5 ? applicationProperties(packet.properties) : undefined,
    expiresAt: v5 && packet.properties?.messageExpiryInterval !== undefined ? Date.now() + packet.properties.messageExpiryInterval * 1000 : undefined,
    origin: session.clientId,
  };
  broker.currentPublisher = connection;
  const accepted = broker.route(message);
  broker.currentPublisher = null;
  if (qos === 0) return;
  connection.incomingUnacked++;
  if (qos === 2) {
    session.addIncomingQos2(id);
    if (session.persistent) broker.store.saveIncomingQos2(session.clientId, id);
  }
  const reasonCode = v5 && !accepted ? QUOTA_EXCEEDED : undefined;
  // Acknowledge only once every row this message caused is committed.
  broker.store.afterCommit(() => {
    if (connection.closing) return;
    if (qos === 1) {
      connection.incomingUnacked--;
      connection.send({ cmd: 'puback', messageId: id, reasonCode });
    } else {
      connection.send({ cmd: 'pubrec', messageId: id, reasonCode });
    }
  });
}

/** The properties that travel with the message; topic alias and subscription ids are per hop. */
function applicationProperties(properties: mqttPacket.IPublishPacket['properties']): MessageProperties | undefined {
  if (!properties) return undefined;
  const { topicAlias: _alias, subscriptionIdentifier: _ids, messageExpiryInterval: _expiry, ...rest } = properties;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
