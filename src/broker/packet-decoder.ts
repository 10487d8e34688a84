// Decodes one complete packet from a client (as cut by the framer) with the decoders in decode/,
// one per packet type, each checking every rule of the spec for that type before the broker acts
// on it. Pure functions of the frame and the connection's protocol version: nothing is kept
// between calls, so no state of one connection can reach another.

import type mqttPacket from 'mqtt-packet';
import { decodeAck } from './decode/acks.js';
import { decodeAuth } from './decode/auth.js';
import { decodeConnect } from './decode/connect.js';
import { decodeDisconnect } from './decode/disconnect.js';
import { malformed, protocolViolation } from './decode/errors.js';
import { decodePublish } from './decode/publish.js';
import { decodeSubscribe } from './decode/subscribe.js';
import { decodeUnsubscribe } from './decode/unsubscribe.js';

export type Packet = mqttPacket.Packet;

/**
 * The low nibble of the first byte each packet type must carry (MQTT 5.0 §2.1.3, Table 2-2);
 * PUBLISH's flags are its own (null), and the types only servers send are absent.
 */
export const CLIENT_PACKET_FLAGS: Readonly<Record<number, { name: string; flags: number | null }>> = {
  1: { name: 'CONNECT', flags: 0 },
  3: { name: 'PUBLISH', flags: null },
  4: { name: 'PUBACK', flags: 0 },
  5: { name: 'PUBREC', flags: 0 },
  6: { name: 'PUBREL', flags: 2 },
  7: { name: 'PUBCOMP', flags: 0 },
  8: { name: 'SUBSCRIBE', flags: 2 },
  10: { name: 'UNSUBSCRIBE', flags: 2 },
  12: { name: 'PINGREQ', flags: 0 },
  14: { name: 'DISCONNECT', flags: 0 },
  15: { name: 'AUTH', flags: 0 },
};

const SERVER_ONLY: Readonly<Record<number, string>> = { 2: 'CONNACK', 9: 'SUBACK', 11: 'UNSUBACK', 13: 'PINGRESP' };

/** The packet in `frame`; throws FrameError (0x81 malformed, 0x82 protocol error, …) when a rule is broken. */
export function decodePacket(frame: Buffer, protocolVersion: number): Packet {
  const type = frame[0] >> 4;
  const flags = frame[0] & 0x0f;
  const v5 = protocolVersion === 5;
  // The framer hands over whole packets; checked again so the decoder stands on its own (fuzzers call it directly).
  let headerLength = 1;
  let remaining = 0;
  for (let multiplier = 1; ; multiplier *= 128) {
    if (headerLength > 4 || headerLength >= frame.length) throw malformed('remaining length missing or longer than four bytes');
    const byte = frame[headerLength++];
    remaining += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) break;
  }
  if (headerLength + remaining !== frame.length) throw malformed(`remaining length ${remaining} does not match the ${frame.length - headerLength} bytes of the packet`);
  const rule = CLIENT_PACKET_FLAGS[type];
  if (rule === undefined) {
    if (type === 0) throw malformed('packet type 0 is reserved');
    throw protocolViolation(`${SERVER_ONLY[type]} is not sent by clients`);
  }
  if (rule.flags !== null && flags !== rule.flags) {
    throw malformed(`${rule.name} with fixed-header flags 0x${flags.toString(16)} (must be 0x${rule.flags.toString(16)}) [MQTT-2.1.3-1]`);
  }
  switch (type) {
    case 1: return decodeConnect(frame, headerLength);
    case 3: return decodePublish(frame, headerLength, v5);
    case 4: return decodeAck('puback', frame, headerLength, v5);
    case 5: return decodeAck('pubrec', frame, headerLength, v5);
    case 6: return decodeAck('pubrel', frame, headerLength, v5);
    case 7: return decodeAck('pubcomp', frame, headerLength, v5);
    case 8: return decodeSubscribe(frame, headerLength, v5);
    case 10: return decodeUnsubscribe(frame, headerLength, v5);
    case 12:
      if (frame.length !== headerLength) throw malformed('PINGREQ with a body');
      return { cmd: 'pingreq', length: 0 };
    case 14: return decodeDisconnect(frame, headerLength, v5);
    default: return decodeAuth(frame, headerLength, v5);
  }
}
