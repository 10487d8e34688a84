import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { encodeAck } from '../packet-writer.js';
import type { Message, MessageProperties } from '../types.js';
import { protocolError } from './dispatch.js';

const NOT_AUTHORIZED = 0x87;
const QUOTA_EXCEEDED = 0x97;

/** PUBLISH from a client (MQTT 5.0 §3.3): validate, authorize, route, acknowledge after the commit. */
export function handlePublish(broker: Broker, connection: Connection, packet: mqttPacket.IPublishPacket): void {
  const session = connection.session!;
  const v5 = connection.protocolVersion === 5;
  let topic = packet.topic;
  const alias = v5 ? packet.properties?.topicAlias : undefined;
  if (alias !== undefined) {
    if (alias > broker.options.topicAliasMaximum) {
      return protocolError(broker, connection, `topic alias ${alias} above the Topic Alias Maximum of ${broker.options.topicAliasMaximum}`, 0x94);
    }
    if (topic === '') {
      const known = connection.inboundAliases?.get(alias);
      if (known === undefined) return protocolError(broker, connection, `topic alias ${alias} used before it was set`, 0x82);
      topic = known;
    } else {
      const aliases = (connection.inboundAliases ??= new Map());
      const previous = aliases.get(alias);
      const bytes = connection.inboundAliasBytes - (previous === undefined ? 0 : Buffer.byteLength(previous)) + Buffer.byteLength(topic);
      if (bytes > broker.options.maxTopicAliasBytes) {
        return protocolError(broker, connection, `topic aliases would hold ${bytes} bytes of topic names, above the limit of ${broker.options.maxTopicAliasBytes}`, QUOTA_EXCEEDED);
      }
      aliases.set(alias, topic);
      connection.inboundAliasBytes = bytes;
    }
  }
  // The decoder (decode/publish.ts) checked the topic name (UTF-8, no U+0000, no wildcards) and that a
  // QoS 1/2 PUBLISH has a non-zero packet identifier; an aliased topic was checked when it was set.
  const qos = packet.qos;
  const id = packet.messageId ?? 0;
  if (qos > 0) {
    if (v5 && connection.incomingUnacked >= broker.options.receiveMaximum) {
      // [MQTT-3.3.4-9]: more unacknowledged QoS>0 PUBLISHes than our Receive Maximum.
      return protocolError(broker, connection, `client exceeded the receive maximum of ${broker.options.receiveMaximum}`, 0x93);
    }
    if (qos === 2 && session.incomingQos2.has(id)) {
      // A resent QoS 2 PUBLISH we already own: acknowledge again, do not deliver twice [MQTT-4.3.3-10].
      connection.write(encodeAck('pubrec', id, 0, v5));
      return;
    }
  }
  if (!broker.authorize(connection.identity, 'publish', topic)) {
    broker.logger.info({ clientId: session.clientId, topic }, 'publish denied');
    if (qos === 1) connection.write(encodeAck('puback', id, NOT_AUTHORIZED, v5));
    else if (qos === 2) connection.write(encodeAck('pubrec', id, NOT_AUTHORIZED, v5));
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
    // No PUBACK waits for a QoS 0 message: it may be held in memory before it is stored.
    holdable: qos === 0,
  };
  broker.currentPublisher = connection;
  let accepted: boolean;
  try {
    accepted = broker.route(message);
  } finally {
    // Also when routing throws (that client is then closed): flow control must not go on pausing it, or keep it alive.
    broker.currentPublisher = null;
  }
  if (qos === 0) return;
  connection.incomingUnacked++;
  if (qos === 2) {
    session.addIncomingQos2(id);
    if (session.persistent) broker.store.saveIncomingQos2(session.clientId, id);
  }
  const reasonCode = accepted ? 0 : QUOTA_EXCEEDED;
  // Acknowledge only once every row this message caused is committed.
  broker.store.afterCommit(() => {
    if (connection.closing) return;
    if (qos === 1) {
      connection.incomingUnacked--;
      connection.write(encodeAck('puback', id, reasonCode, v5));
    } else {
      connection.write(encodeAck('pubrec', id, reasonCode, v5));
    }
  });
}

/** The properties that travel with the message; topic alias and subscription ids are per hop. */
function applicationProperties(properties: mqttPacket.IPublishPacket['properties']): MessageProperties | undefined {
  if (!properties) return undefined;
  const { topicAlias: _alias, subscriptionIdentifier: _ids, messageExpiryInterval: _expiry, ...rest } = properties;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
