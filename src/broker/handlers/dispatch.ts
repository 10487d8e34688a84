// Routes each packet to its handler: one file per packet type, as the specification is laid out.

import type { Broker } from '../broker.js';
import type { Connection, Packet } from '../connection.js';
import { handleAuth } from './auth.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handlePingreq } from './pingreq.js';
import { handlePuback } from './puback.js';
import { handlePubcomp } from './pubcomp.js';
import { handlePublish } from './publish.js';
import { handlePubrec } from './pubrec.js';
import { handlePubrel } from './pubrel.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';

export function dispatchPacket(broker: Broker, connection: Connection, packet: Packet): void {
  // Every packet here passed its decoder's checks (packet-decoder.ts): lengths, UTF-8, which properties
  // and how often, value ranges, packet identifiers. Handlers check what depends on the broker's state.
  if (!connection.connected) {
    // The first packet from the client MUST be CONNECT [MQTT-3.1.0-1].
    if (packet.cmd === 'connect') handleConnect(broker, connection, packet);
    else protocolError(broker, connection, `first packet must be CONNECT, got ${packet.cmd.toUpperCase()}`);
    return;
  }
  switch (packet.cmd) {
    case 'publish': return handlePublish(broker, connection, packet);
    case 'puback': return handlePuback(broker, connection, packet);
    case 'pubrec': return handlePubrec(broker, connection, packet);
    case 'pubrel': return handlePubrel(broker, connection, packet);
    case 'pubcomp': return handlePubcomp(broker, connection, packet);
    case 'subscribe': return handleSubscribe(broker, connection, packet);
    case 'unsubscribe': return handleUnsubscribe(broker, connection, packet);
    case 'pingreq': return handlePingreq(broker, connection);
    case 'disconnect': return handleDisconnect(broker, connection, packet);
    case 'auth': return handleAuth(broker, connection, packet);
    case 'connect':
      // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
      return protocolError(broker, connection, 'second CONNECT on one connection');
    default:
      return protocolError(broker, connection, `${packet.cmd.toUpperCase()} is not sent by clients`);
  }
}

/** Closes the connection for a protocol violation (v5: DISCONNECT with the reason code first). */
export function protocolError(broker: Broker, connection: Connection, message: string, reasonCode = 0x82): void {
  broker.onProtocolError(connection, Object.assign(new Error(message), { reasonCode }));
}
