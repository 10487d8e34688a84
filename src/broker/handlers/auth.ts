import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { protocolError } from './dispatch.js';

/**
 * AUTH belongs to enhanced authentication (MQTT 5.0 §4.12), which needs an authentication method
 * agreed at CONNECT; none is offered (CONNECT with one is refused), so AUTH is a protocol error.
 */
export function handleAuth(broker: Broker, connection: Connection, _packet: mqttPacket.IAuthPacket): void {
  protocolError(broker, connection, 'AUTH without an authentication method in CONNECT');
}
