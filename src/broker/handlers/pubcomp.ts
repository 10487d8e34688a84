import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';

/** QoS 2 towards the client, last step: the exchange is complete. */
export function handlePubcomp(broker: Broker, connection: Connection, packet: mqttPacket.IPubcompPacket): void {
  const session = connection.session!;
  const id = packet.messageId ?? 0;
  const delivery = session.inflight.get(id);
  if (!delivery || delivery.qos !== 2) return;
  session.inflight.delete(id);
  if (delivery.seq !== 0) broker.store.completeDelivery(delivery.seq);
  broker.pumpSession(session);
}
