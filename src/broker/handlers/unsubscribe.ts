import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { protocolError } from './dispatch.js';

const SUCCESS = 0x00;
const NO_SUBSCRIPTION_EXISTED = 0x11;

/** UNSUBSCRIBE (MQTT 5.0 §3.10): UNSUBACK with one reason code per filter (v5). */
export function handleUnsubscribe(broker: Broker, connection: Connection, packet: mqttPacket.IUnsubscribePacket): void {
  if (packet.unsubscriptions.length === 0) {
    // [MQTT-3.10.3-2]: an UNSUBSCRIBE must carry at least one filter.
    return protocolError(broker, connection, 'UNSUBSCRIBE without a topic filter');
  }
  const session = connection.session!;
  const codes = packet.unsubscriptions.map((filter) => (broker.removeSubscription(session, filter) ? SUCCESS : NO_SUBSCRIPTION_EXISTED));
  connection.send({ cmd: 'unsuback', messageId: packet.messageId, granted: connection.protocolVersion === 5 ? codes : [] });
}
