// Encoding of outgoing PUBLISH packets and acknowledgements without going through a packet object:
// the hot path of every delivery. Packets with properties go through mqtt-packet's generator instead.

import type { QoS } from './types.js';

function remainingLengthBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeRemainingLength(buf: Buffer, offset: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[offset++] = byte;
  } while (n > 0);
  return offset;
}

/** Bytes of a PUBLISH with no properties (3.1.1, or 5.0 with an empty property block). */
export function publishPacketSize(topicBytes: number, payloadBytes: number, qos: QoS, v5: boolean): number {
  const remaining = publishRemainingLength(topicBytes, payloadBytes, qos, v5);
  return 1 + remainingLengthBytes(remaining) + remaining;
}

function publishRemainingLength(topicBytes: number, payloadBytes: number, qos: QoS, v5: boolean): number {
  return 2 + topicBytes + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payloadBytes;
}

/**
 * Writes a PUBLISH with no properties into `buf` at `offset` (which must have publishPacketSize bytes
 * free) and returns the offset after it. `topic` is the UTF-8 encoded topic name.
 */
export function writePublish(buf: Buffer, offset: number, topic: Buffer, payload: Buffer, qos: QoS, retain: boolean, dup: boolean, packetId: number, v5: boolean): number {
  buf[offset++] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  offset = writeRemainingLength(buf, offset, publishRemainingLength(topic.length, payload.length, qos, v5));
  buf.writeUInt16BE(topic.length, offset);
  offset += 2;
  offset += topic.copy(buf, offset);
  if (qos > 0) {
    buf.writeUInt16BE(packetId, offset);
    offset += 2;
  }
  if (v5) buf[offset++] = 0;
  return offset + payload.copy(buf, offset);
}

/** A PUBLISH with no properties in a buffer of its own. */
export function encodePublish(topic: Buffer, payload: Buffer, qos: QoS, retain: boolean, dup: boolean, packetId: number, v5: boolean): Buffer {
  const buf = Buffer.allocUnsafe(publishPacketSize(topic.length, payload.length, qos, v5));
  writePublish(buf, 0, topic, payload, qos, retain, dup, packetId, v5);
  return buf;
}

/** Sets the DUP flag on an already encoded PUBLISH (a copy: the original may be shared). */
export function withDup(packet: Buffer): Buffer {
  const copy = Buffer.from(packet);
  copy[0] |= 0x08;
  return copy;
}

export type AckType = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';

const ACK_FIRST_BYTE: Record<AckType, number> = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 };

/**
 * PUBACK, PUBREC, PUBREL or PUBCOMP without properties, in the shortest form the spec allows
 * (MQTT 5.0 §3.4.2.1): reason 0x00 → just the packet identifier (`40 02 00 07`), as 3.1.1 and
 * Mosquitto send it; another reason → identifier and reason code, no property length. Clients such
 * as paho-mqtt 1.6.1 fail on the 4-byte form with an empty property block.
 */
export function encodeAck(type: AckType, packetId: number, reasonCode: number, v5: boolean): Buffer {
  const first = ACK_FIRST_BYTE[type];
  if (!v5 || reasonCode === 0) return Buffer.from([first, 0x02, packetId >> 8, packetId & 0xff]);
  return Buffer.from([first, 0x03, packetId >> 8, packetId & 0xff, reasonCode]);
}

/** A v5 DISCONNECT without properties, short (MQTT 5.0 §3.14.2.1): `e0 00` for reason 0, else `e0 01 <reason>`. */
export function encodeDisconnect(reasonCode: number): Buffer {
  return reasonCode === 0 ? Buffer.from([0xe0, 0x00]) : Buffer.from([0xe0, 0x01, reasonCode]);
}
