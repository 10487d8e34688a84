// Minimal MQTT 3.1.1 encoders for load generators: every packet a generator sends is built once
// (or patched in place) so that encoding never limits the rate being measured.

export const PacketType = {
  CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBSCRIBE: 8, SUBACK: 9, PINGREQ: 12, PINGRESP: 13, DISCONNECT: 14,
} as const;

function remainingLengthBytes(length: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return bytes;
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...remainingLengthBytes(body.length)]), body]);
}

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const field = Buffer.allocUnsafe(2 + bytes.length);
  field.writeUInt16BE(bytes.length, 0);
  bytes.copy(field, 2);
  return field;
}

function u16(value: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(value, 0);
  return b;
}

export function encodeConnect(clientId: string, options: { cleanSession?: boolean; keepAliveSeconds?: number } = {}): Buffer {
  const flags = options.cleanSession === false ? 0 : 0x02;
  const variableHeader = Buffer.concat([utf8Field('MQTT'), Buffer.from([4, flags]), u16(options.keepAliveSeconds ?? 60)]);
  return packet(0x10, Buffer.concat([variableHeader, utf8Field(clientId)]));
}

export function encodeSubscribe(packetId: number, filter: string, qos: 0 | 1 | 2): Buffer {
  return packet(0x82, Buffer.concat([u16(packetId), utf8Field(filter), Buffer.from([qos])]));
}

export interface EncodedPublish {
  bytes: Buffer;
  /** Offset of the packet id inside `bytes` (-1 for QoS 0). */
  packetIdOffset: number;
  /** Offset of the first payload byte inside `bytes`. */
  payloadOffset: number;
}

export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1, packetId = 1): EncodedPublish {
  const topicField = utf8Field(topic);
  const body = qos > 0 ? Buffer.concat([topicField, u16(packetId), payload]) : Buffer.concat([topicField, payload]);
  const bytes = packet(0x30 | (qos << 1), body);
  const headerLength = bytes.length - body.length;
  return {
    bytes,
    packetIdOffset: qos > 0 ? headerLength + topicField.length : -1,
    payloadOffset: headerLength + topicField.length + (qos > 0 ? 2 : 0),
  };
}

export function writePuback(target: Buffer, offset: number, packetId: number): void {
  target[offset] = 0x40;
  target[offset + 1] = 2;
  target.writeUInt16BE(packetId, offset + 2);
}

export const PUBACK_LENGTH = 4;
export const DISCONNECT = Buffer.from([0xe0, 0]);
export const PINGREQ = Buffer.from([0xc0, 0]);
