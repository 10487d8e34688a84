// AUTH (MQTT 5.0 §3.15): optional reason code and properties. It does not exist before 5.0.

import type mqttPacket from 'mqtt-packet';
import { malformed, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

/** Reason codes of AUTH (MQTT 5.0 §3.15.2.1). */
export const AUTH_REASON_CODES: ReadonlySet<number> = new Set([0x00, 0x18, 0x19]);

export function decodeAuth(frame: Buffer, headerLength: number, v5: boolean): mqttPacket.IAuthPacket {
  if (!v5) throw malformed('AUTH (packet type 15) is reserved before MQTT 5.0');
  const reader = new PacketReader(frame, headerLength, 'AUTH');
  const reasonCode = reader.atEnd() ? 0 : reader.byte('reason code');
  if (!AUTH_REASON_CODES.has(reasonCode)) throw protocolViolation(`AUTH with reason code 0x${reasonCode.toString(16)}`);
  const packet = { cmd: 'auth', reasonCode, length: frame.length - headerLength } as mqttPacket.IAuthPacket;
  if (!reader.atEnd()) {
    const properties = readProperties(reader, 'auth');
    if (properties !== undefined) packet.properties = properties as mqttPacket.IAuthPacket['properties'];
  }
  reader.expectEnd();
  return packet;
}
