// Decodes a well-formed MQTT 3.1 / 3.1.1 CONNECT (§3.1) without the general-purpose parser: one per
// connection, so its cost counts in the connection rate. Anything unusual (MQTT 5.0, reserved bits,
// fields running past the packet) is left to mqtt-packet, so errors keep one wording and one behaviour.

import type mqttPacket from 'mqtt-packet';

const USERNAME_FLAG = 0x80;
const PASSWORD_FLAG = 0x40;
const WILL_RETAIN_FLAG = 0x20;
const WILL_QOS_MASK = 0x18;
const WILL_FLAG = 0x04;
const CLEAN_SESSION_FLAG = 0x02;
const RESERVED_FLAG = 0x01;

/** The CONNECT in `frame` (a whole packet), or null when mqtt-packet should decode it. */
export function decodeSimpleConnect(frame: Buffer): mqttPacket.IConnectPacket | null {
  if (frame[0] !== 0x10) return null;
  let pos = 1;
  let remaining = 0;
  let multiplier = 1;
  for (;;) {
    if (pos >= frame.length || pos > 4) return null;
    const byte = frame[pos++];
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  const end = frame.length;
  if (end - pos !== remaining) return null;

  // Protocol name and level: "MQTT" 4 (3.1.1) or "MQIsdp" 3 (3.1).
  let protocolId: 'MQTT' | 'MQIsdp';
  let protocolVersion: 3 | 4;
  if (end - pos >= 10 && frame[pos] === 0 && frame[pos + 1] === 4 && frame[pos + 2] === 0x4d && frame[pos + 3] === 0x51
    && frame[pos + 4] === 0x54 && frame[pos + 5] === 0x54 && frame[pos + 6] === 4) {
    protocolId = 'MQTT';
    protocolVersion = 4;
    pos += 7;
  } else if (end - pos >= 12 && frame[pos] === 0 && frame[pos + 1] === 6 && frame.toString('latin1', pos + 2, pos + 8) === 'MQIsdp'
    && frame[pos + 8] === 3) {
    protocolId = 'MQIsdp';
    protocolVersion = 3;
    pos += 9;
  } else {
    return null;
  }

  const flags = frame[pos++];
  if ((flags & RESERVED_FLAG) !== 0) return null;
  const hasWill = (flags & WILL_FLAG) !== 0;
  const willQos = (flags & WILL_QOS_MASK) >> 3;
  if (!hasWill && (flags & (WILL_RETAIN_FLAG | WILL_QOS_MASK)) !== 0) return null;
  if (willQos === 3) return null;
  const keepalive = frame.readUInt16BE(pos);
  pos += 2;

  const reader = { frame, pos };
  const clientId = readString(reader);
  if (clientId === null) return null;
  const packet: mqttPacket.IConnectPacket = {
    cmd: 'connect', retain: false, qos: 0, dup: false, length: remaining, topic: null, payload: null,
    protocolId, protocolVersion, clean: (flags & CLEAN_SESSION_FLAG) !== 0, keepalive, clientId,
  } as mqttPacket.IConnectPacket;
  if (hasWill) {
    const topic = readString(reader);
    const payload = topic === null ? null : readBytes(reader);
    if (payload === null) return null;
    packet.will = { topic: topic!, payload, qos: willQos as 0 | 1 | 2, retain: (flags & WILL_RETAIN_FLAG) !== 0 };
  }
  if ((flags & USERNAME_FLAG) !== 0) {
    const username = readString(reader);
    if (username === null) return null;
    packet.username = username;
  }
  if ((flags & PASSWORD_FLAG) !== 0) {
    const password = readBytes(reader);
    if (password === null) return null;
    packet.password = password;
  }
  return packet;
}

interface Reader { frame: Buffer; pos: number }

function fieldEnd(reader: Reader): number {
  const { frame, pos } = reader;
  if (pos + 2 > frame.length) return -1;
  const end = pos + 2 + frame.readUInt16BE(pos);
  return end > frame.length ? -1 : end;
}

function readString(reader: Reader): string | null {
  const end = fieldEnd(reader);
  if (end < 0) return null;
  const text = reader.frame.toString('utf8', reader.pos + 2, end);
  reader.pos = end;
  return text;
}

/** A copy: the will payload may outlive the connection and must not pin the socket's read buffer. */
function readBytes(reader: Reader): Buffer | null {
  const end = fieldEnd(reader);
  if (end < 0) return null;
  const bytes = Buffer.from(reader.frame.subarray(reader.pos + 2, end));
  reader.pos = end;
  return bytes;
}
