import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { completeOutgoing } from '../outbound.js';

/** QoS 2 towards the client, last step: the exchange is complete. */
export function handlePubcomp(broker: Broker, connection: Connection, packet: mqttPacket.IPubcompPacket): void {
  const session = connection.session!;
  if (completeOutgoing(broker, session, packet.messageId ?? 0, 2)) broker.pumpSession(session);
}
