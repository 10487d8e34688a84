// UNSUBSCRIBE (MQTT 3.1.1 §3.10, 5.0 §3.10): a non-zero packet identifier, (5.0) properties,
// then one or more topic filters.

import type mqttPacket from 'mqtt-packet';
import { protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

export function decodeUnsubscribe(frame: Buffer, headerLength: number, v5: boolean): mqttPacket.IUnsubscribePacket {
  const reader = new PacketReader(frame, headerLength, 'UNSUBSCRIBE');
  const messageId = reader.uint16('packet identifier');
  if (messageId === 0) throw protocolViolation('UNSUBSCRIBE with packet identifier 0 [MQTT-2.2.1-3]');
  const properties = v5 ? readProperties(reader, 'unsubscribe') : undefined;
  const unsubscriptions: string[] = [];
  while (!reader.atEnd()) unsubscriptions.push(reader.string('topic filter'));
  // [MQTT-3.10.3-2]: at least one filter.
  if (unsubscriptions.length === 0) throw protocolViolation('UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]');
  const packet: mqttPacket.IUnsubscribePacket = { cmd: 'unsubscribe', messageId, unsubscriptions, length: frame.length - headerLength };
  if (properties !== undefined) packet.properties = properties as mqttPacket.IUnsubscribePacket['properties'];
  return packet;
}
