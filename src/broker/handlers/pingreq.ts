import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';

const PINGRESP = Buffer.from([0xd0, 0x00]);

/** [MQTT-3.12.4-1]: the server MUST answer PINGREQ with PINGRESP. */
export function handlePingreq(_broker: Broker, connection: Connection): void {
  connection.write(PINGRESP);
}
