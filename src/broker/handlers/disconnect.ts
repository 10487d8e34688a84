import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { protocolError } from './dispatch.js';

const DISCONNECT_WITH_WILL = 0x04;

/** DISCONNECT from the client (MQTT 5.0 §3.14): no will unless reason 0x04; may change session expiry. */
export function handleDisconnect(broker: Broker, connection: Connection, packet: mqttPacket.IDisconnectPacket): void {
  const session = connection.session!;
  const expiry = connection.protocolVersion === 5 ? packet.properties?.sessionExpiryInterval : undefined;
  if (expiry !== undefined) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      // [MQTT-3.14.2-2]: a session that was to end with the connection cannot be extended at DISCONNECT.
      return protocolError(broker, connection, 'session expiry set on DISCONNECT after connecting with 0');
    }
    if (session.persistent && expiry === 0) broker.store.dropSession(session.clientId);
    session.expiryInterval = Math.min(expiry, broker.options.maxSessionExpiry);
  }
  connection.cleanDisconnect = !(connection.protocolVersion === 5 && packet.reasonCode === DISCONNECT_WITH_WILL);
  if (connection.cleanDisconnect) connection.will = null;
  connection.closeNow();
}
