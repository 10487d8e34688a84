// PUBACK, PUBREC, PUBREL, PUBCOMP from a client (MQTT 3.1.1 §3.4–3.7, 5.0 §3.4–3.7): a non-zero
// packet identifier, then (5.0 only) an optional reason code and an optional property block.

import type mqttPacket from 'mqtt-packet';
import { malformed, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

export type AckCommand = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';
export type AckPacket = mqttPacket.IPubackPacket | mqttPacket.IPubrecPacket | mqttPacket.IPubrelPacket | mqttPacket.IPubcompPacket;

/** Reason codes each acknowledgement may carry (MQTT 5.0 §3.4.2.1, §3.5.2.1, §3.6.2.1, §3.7.2.1). */
export const ACK_REASON_CODES: Record<AckCommand, ReadonlySet<number>> = {
  puback: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  pubrec: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  pubrel: new Set([0x00, 0x92]),
  pubcomp: new Set([0x00, 0x92]),
};

export function decodeAck(cmd: AckCommand, frame: Buffer, headerLength: number, v5: boolean): AckPacket {
  const what = cmd.toUpperCase();
  const length = frame.length - headerLength;
  if (length < 2) throw malformed(`${what} without a packet identifier`);
  // 3.1.1: exactly the packet identifier.
  if (!v5 && length !== 2) throw malformed(`${what} of ${length} bytes (3.1.1: exactly 2)`);
  const reader = new PacketReader(frame, headerLength, what);
  const messageId = reader.uint16('packet identifier');
  if (messageId === 0) throw protocolViolation(`${what} with packet identifier 0 [MQTT-2.2.1-3]`);
  const packet = { cmd, messageId, length } as AckPacket;
  if (v5) {
    // §3.4.2.1: no reason code means 0x00; no property length means no properties.
    const reasonCode = reader.atEnd() ? 0 : reader.byte('reason code');
    if (!ACK_REASON_CODES[cmd].has(reasonCode)) throw protocolViolation(`${what} with reason code 0x${reasonCode.toString(16)}, not one defined for it`);
    packet.reasonCode = reasonCode;
    if (!reader.atEnd()) {
      const properties = readProperties(reader, cmd);
      if (properties !== undefined) packet.properties = properties as AckPacket['properties'];
    }
  }
  reader.expectEnd();
  return packet;
}
