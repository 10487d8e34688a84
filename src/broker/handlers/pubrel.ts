import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { encodeAck } from '../packet-writer.js';

const PACKET_IDENTIFIER_NOT_FOUND = 0x92;

/**
 * QoS 2 from the client, step 3: the packet id is released and PUBCOMP sent [MQTT-4.3.3-9..11].
 * The message itself was routed on PUBLISH (method A), so a resent PUBLISH was not routed twice.
 */
export function handlePubrel(broker: Broker, connection: Connection, packet: mqttPacket.IPubrelPacket): void {
  const session = connection.session!;
  const id = packet.messageId ?? 0;
  const known = session.incomingQos2.delete(id);
  if (known) {
    if (session.persistent) broker.store.dropIncomingQos2(session.clientId, id);
    if (connection.incomingUnacked > 0) connection.incomingUnacked--;
  }
  connection.write(encodeAck('pubcomp', id, known ? 0 : PACKET_IDENTIFIER_NOT_FOUND, connection.protocolVersion === 5));
}
