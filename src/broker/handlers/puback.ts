import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { completeOutgoing } from '../outbound.js';

/** The client acknowledged a QoS 1 PUBLISH: the message is done, the window has room again. */
export function handlePuback(broker: Broker, connection: Connection, packet: mqttPacket.IPubackPacket): void {
  const session = connection.session!;
  if (completeOutgoing(broker, session, packet.messageId ?? 0, 1)) broker.pumpSession(session);
}
