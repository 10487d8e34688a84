// SUBSCRIBE (MQTT 3.1.1 §3.8, 5.0 §3.8): a non-zero packet identifier, (5.0) properties, then one
// or more topic filters, each followed by its options byte with the reserved bits clear.
// Filter syntax (wildcards, $share) is the handler's: an invalid filter is refused in SUBACK, not here;
// No Local on a $share filter is a protocol error of the whole packet, so it is refused here.

import type mqttPacket from 'mqtt-packet';
import type { QoS } from '../types.js';
import { malformed, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

export function decodeSubscribe(frame: Buffer, headerLength: number, v5: boolean): mqttPacket.ISubscribePacket {
  const reader = new PacketReader(frame, headerLength, 'SUBSCRIBE');
  const messageId = reader.uint16('packet identifier');
  if (messageId === 0) throw protocolViolation('SUBSCRIBE with packet identifier 0 [MQTT-2.2.1-3]');
  const properties = v5 ? readProperties(reader, 'subscribe') : undefined;
  const subscriptions: mqttPacket.ISubscription[] = [];
  while (!reader.atEnd()) {
    const topic = reader.string('topic filter');
    const options = reader.byte('subscription options');
    // 3.1.1: bits 7–2 reserved [MQTT-3.8.3-4]; 5.0: bits 7–6 [MQTT-3.8.3-5].
    if ((options & (v5 ? 0xc0 : 0xfc)) !== 0) throw malformed(`SUBSCRIBE options 0x${options.toString(16)} set reserved bits`);
    const qos = options & 0x03;
    if (qos === 3) throw malformed('SUBSCRIBE with maximum QoS 3');
    const subscription: mqttPacket.ISubscription = { topic, qos: qos as QoS };
    if (v5) {
      const rh = (options >> 4) & 0x03;
      if (rh === 3) throw protocolViolation('SUBSCRIBE with Retain Handling 3 [MQTT-3.8.3-5]');
      subscription.nl = (options & 0x04) !== 0;
      // [MQTT-3.8.3-4]: checked here, before any filter of the packet is added (the handler acts filter by filter).
      if (subscription.nl && topic.startsWith('$share/')) throw protocolViolation('SUBSCRIBE with No Local on a shared subscription [MQTT-3.8.3-4]');
      subscription.rap = (options & 0x08) !== 0;
      subscription.rh = rh as 0 | 1 | 2;
    }
    subscriptions.push(subscription);
  }
  // [MQTT-3.8.3-3]: at least one filter.
  if (subscriptions.length === 0) throw protocolViolation('SUBSCRIBE without a topic filter [MQTT-3.8.3-3]');
  const packet: mqttPacket.ISubscribePacket = { cmd: 'subscribe', messageId, subscriptions, length: frame.length - headerLength };
  if (properties !== undefined) packet.properties = properties as mqttPacket.ISubscribePacket['properties'];
  return packet;
}
