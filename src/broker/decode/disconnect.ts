// DISCONNECT from a client (MQTT 3.1.1 §3.14: no body; 5.0 §3.14: optional reason code and properties).

import type mqttPacket from 'mqtt-packet';
import { malformed, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

/** Reason codes a client may send in DISCONNECT (MQTT 5.0 §3.14.2.1, "sent by Client" or both). */
export const CLIENT_DISCONNECT_REASON_CODES: ReadonlySet<number> = new Set([
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
]);

export function decodeDisconnect(frame: Buffer, headerLength: number, v5: boolean): mqttPacket.IDisconnectPacket {
  const length = frame.length - headerLength;
  if (!v5) {
    if (length !== 0) throw malformed(`DISCONNECT with a ${length}-byte body (3.1.1: none)`);
    return { cmd: 'disconnect', length };
  }
  const reader = new PacketReader(frame, headerLength, 'DISCONNECT');
  const reasonCode = reader.atEnd() ? 0 : reader.byte('reason code');
  if (!CLIENT_DISCONNECT_REASON_CODES.has(reasonCode)) throw protocolViolation(`DISCONNECT with reason code 0x${reasonCode.toString(16)}, not one a client may send`);
  const packet: mqttPacket.IDisconnectPacket = { cmd: 'disconnect', reasonCode, length };
  if (!reader.atEnd()) {
    const properties = readProperties(reader, 'disconnect');
    if (properties !== undefined) packet.properties = properties as mqttPacket.IDisconnectPacket['properties'];
  }
  reader.expectEnd();
  return packet;
}
