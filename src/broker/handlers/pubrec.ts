import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { completeOutgoing } from '../outbound.js';
import { encodeAck } from '../packet-writer.js';

const PACKET_IDENTIFIER_NOT_FOUND = 0x92;

/** QoS 2 towards the client, step 2: PUBREC received → PUBREL sent, the message is released [MQTT-4.3.3]. */
export function handlePubrec(broker: Broker, connection: Connection, packet: mqttPacket.IPubrecPacket): void {
  const session = connection.session!;
  const id = packet.messageId ?? 0;
  const delivery = session.inflight.get(id);
  if (!delivery || delivery.qos !== 2) {
    // v5: PUBREL with 0x92 Packet Identifier not found.
    connection.write(encodeAck('pubrel', id, PACKET_IDENTIFIER_NOT_FOUND, connection.protocolVersion === 5));
    return;
  }
  if (connection.protocolVersion === 5 && (packet.reasonCode ?? 0) >= 0x80) {
    // The client refused the message: the exchange ends here [MQTT-4.3.3 v5, §4.9 Flow Control].
    completeOutgoing(broker, session, id, 2);
    broker.pumpSession(session);
    return;
  }
  const first = !delivery.released;
  if (first) {
    delivery.released = true;
    if (delivery.seq !== 0) broker.store.markSent(delivery);
    session.releaseQos2(delivery);
    session.dropUnsent(delivery);
  }
  connection.write(encodeAck('pubrel', id, 0, connection.protocolVersion === 5));
  if (first) broker.pumpSession(session);
}
