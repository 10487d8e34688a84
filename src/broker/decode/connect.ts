// CONNECT (MQTT 3.1 / 3.1.1 §3.1, 5.0 §3.1): every field checked before the handler sees it,
// as Mosquitto's handle__connect does. Protocol name and level first: "MQIsdp" 3, "MQTT" 4 or 5;
// anything else (including the 0x80 "bridge" bit, which clients cannot use here) is answered with
// CONNACK 0x01 and closed [MQTT-3.1.2-2]. Once the level is known to be 5, other errors are
// answered with a v5 CONNACK carrying the reason code.

import type mqttPacket from 'mqtt-packet';
import { FrameError, MALFORMED_PACKET, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

const USERNAME_FLAG = 0x80;
const PASSWORD_FLAG = 0x40;
const WILL_RETAIN_FLAG = 0x20;
const WILL_QOS_MASK = 0x18;
const WILL_FLAG = 0x04;
const CLEAN_SESSION_FLAG = 0x02;
const RESERVED_FLAG = 0x01;
const UNACCEPTABLE_PROTOCOL_VERSION = 0x01;
const UNSUPPORTED_PROTOCOL_VERSION = 0x84;

/** The CONNECT in `frame`; throws FrameError (with the CONNACK to send, where one is due). */
export function decodeConnect(frame: Buffer, headerLength: number): mqttPacket.IConnectPacket {
  if ((frame[0] & 0x0f) !== 0) throw new FrameError('CONNECT with reserved fixed-header flags set [MQTT-2.2.2-2]', MALFORMED_PACKET);
  const reader = new PacketReader(frame, headerLength, 'CONNECT');
  const protocolId = reader.string('protocol name');
  const level = reader.byte('protocol level');
  const version = protocolVersionOf(protocolId, level);
  if (version === null) {
    throw new FrameError(`unsupported protocol "${protocolId}" level ${level}`, UNSUPPORTED_PROTOCOL_VERSION, { protocolVersion: 4, code: UNACCEPTABLE_PROTOCOL_VERSION });
  }
  try {
    return decodeBody(frame, headerLength, reader, protocolId as 'MQTT' | 'MQIsdp', version);
  } catch (error) {
    if (version === 5 && error instanceof FrameError) throw new FrameError(error.message, error.reasonCode, { protocolVersion: 5, code: error.reasonCode });
    throw error;
  }
}

function protocolVersionOf(name: string, level: number): 3 | 4 | 5 | null {
  if (name === 'MQTT' && (level === 4 || level === 5)) return level;
  if (name === 'MQIsdp' && level === 3) return 3;
  return null;
}

function decodeBody(frame: Buffer, headerLength: number, reader: PacketReader, protocolId: 'MQTT' | 'MQIsdp', version: 3 | 4 | 5): mqttPacket.IConnectPacket {
  const flags = reader.byte('connect flags');
  if ((flags & RESERVED_FLAG) !== 0) throw malformedConnect('the reserved connect flag is set [MQTT-3.1.2-3]');
  const hasWill = (flags & WILL_FLAG) !== 0;
  const willQos = (flags & WILL_QOS_MASK) >> 3;
  if (willQos === 3) throw malformedConnect('will QoS 3 [MQTT-3.1.2-12]');
  if (!hasWill && (flags & (WILL_RETAIN_FLAG | WILL_QOS_MASK)) !== 0) throw malformedConnect('will QoS or will retain set without the will flag [MQTT-3.1.2-11, MQTT-3.1.2-13]');
  const hasUsername = (flags & USERNAME_FLAG) !== 0;
  const hasPassword = (flags & PASSWORD_FLAG) !== 0;
  // [MQTT-3.1.2-22]: in 3.1 and 3.1.1 a password needs a user name (5.0 lifted this).
  if (version !== 5 && hasPassword && !hasUsername) throw malformedConnect('password flag set without the user name flag [MQTT-3.1.2-22]');
  const keepalive = reader.uint16('keep alive');
  const properties = version === 5 ? readProperties(reader, 'connect') : undefined;
  // MQTT 5.0 §3.1.2.11.10: Authentication Data without an Authentication Method is a protocol error.
  if (properties?.authenticationData !== undefined && properties.authenticationMethod === undefined) {
    throw protocolViolation('CONNECT: Authentication Data without an Authentication Method');
  }
  const clientId = reader.string('client identifier');
  const packet: mqttPacket.IConnectPacket = {
    cmd: 'connect', retain: false, qos: 0, dup: false, length: frame.length - headerLength, topic: null, payload: null,
    protocolId, protocolVersion: version, clean: (flags & CLEAN_SESSION_FLAG) !== 0, keepalive, clientId,
  } as mqttPacket.IConnectPacket;
  if (properties !== undefined) packet.properties = properties as mqttPacket.IConnectPacket['properties'];
  if (hasWill) {
    const willProperties = version === 5 ? readProperties(reader, 'will') : undefined;
    const topic = reader.string('will topic');
    const payload = reader.binary('will payload');
    packet.will = { topic, payload, qos: willQos as 0 | 1 | 2, retain: (flags & WILL_RETAIN_FLAG) !== 0 };
    if (willProperties !== undefined) packet.will.properties = willProperties as NonNullable<mqttPacket.IConnectPacket['will']>['properties'];
  }
  // MQTT 3.1 clients may set a flag and leave the field out: Mosquitto ignores the flag, and so do we.
  if (hasUsername && !(version === 3 && reader.atEnd())) packet.username = reader.string('user name');
  if (hasPassword && !(version === 3 && reader.atEnd())) packet.password = reader.binary('password');
  reader.expectEnd();
  return packet;
}

function malformedConnect(message: string): FrameError {
  return new FrameError(`CONNECT: ${message}`, MALFORMED_PACKET);
}
