import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';

/** The client acknowledged a QoS 1 PUBLISH: the message is done, the window has room again. */
export function handlePuback(broker: Broker, connection: Connection, packet: mqttPacket.IPubackPacket): void {
  const session = connection.session!;
  const id = packet.messageId ?? 0;
  const delivery = session.inflight.get(id);
  if (!delivery || delivery.qos !== 1) return;
  session.inflight.delete(id);
  if (delivery.seq !== 0) broker.store.completeDelivery(delivery.seq);
  broker.pumpSession(session);
}
