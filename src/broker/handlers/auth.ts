import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { protocolError } from './dispatch.js';

/**
 * Enhanced authentication (v5 §4.12) is not offered: CONNACK never names an authentication method,
 * so an AUTH packet is a protocol error [MQTT-4.12.0-6 analog: AUTH without a method].
 */
export function handleAuth(broker: Broker, connection: Connection, _packet: mqttPacket.IAuthPacket): void {
  protocolError(broker, connection, 'AUTH without an authentication method in CONNECT');
}
