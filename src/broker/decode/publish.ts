// PUBLISH from a client (MQTT 3.1.1 §3.3, 5.0 §3.3): nearly all the traffic, so the common case —
// no properties — is decoded in one pass with the topic checked byte by byte (U+0000, wildcards,
// and UTF-8 only when a byte ≥ 0x80 is seen).

import { isUtf8 } from 'node:buffer';
import type mqttPacket from 'mqtt-packet';
import type { QoS } from '../types.js';
import { malformed, protocolViolation } from './errors.js';
import { readProperties } from './properties.js';
import { PacketReader } from './reader.js';

const TOPIC_NAME_INVALID = 0x90;

export type DecodedPublish = mqttPacket.IPublishPacket & {
  payload: Buffer;
  messageId: number | undefined;
  /**
   * The packet itself (a copy) when it is exactly what a subscriber of the same protocol family gets for
   * a live QoS 0 delivery: QoS 0, no retain or DUP flag, no properties, shortest remaining length. The
   * router hands it on as it is instead of encoding it again (fan-in: one copy per message, no encoding).
   */
  wire: Buffer | undefined;
};

/** The PUBLISH in `frame` (a whole packet whose fixed header is `headerLength` bytes); throws FrameError. */
export function decodePublish(frame: Buffer, headerLength: number, v5: boolean): DecodedPublish {
  const flags = frame[0] & 0x0f;
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('PUBLISH with DUP set at QoS 0 [MQTT-3.3.1-2]');
  const end = frame.length;
  let pos = headerLength;
  if (pos + 2 > end) throw malformed('PUBLISH too short for its topic length');
  const topicLength = (frame[pos] << 8) | frame[pos + 1];
  pos += 2;
  const topicEnd = pos + topicLength;
  if (topicEnd > end) throw malformed('PUBLISH topic runs past the end of the packet');
  checkTopicName(frame, pos, topicEnd);
  const topic = frame.toString('utf8', pos, topicEnd);
  pos = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > end) throw malformed('PUBLISH too short for its packet identifier');
    messageId = (frame[pos] << 8) | frame[pos + 1];
    if (messageId === 0) throw protocolViolation('QoS > 0 PUBLISH with packet identifier 0 [MQTT-2.2.1-3]');
    pos += 2;
  }
  let properties: mqttPacket.IPublishPacket['properties'];
  if (v5) {
    if (pos >= end) throw malformed('PUBLISH too short for its property length');
    if (frame[pos] === 0) pos += 1;
    else {
      const reader = new PacketReader(frame, pos, 'PUBLISH');
      properties = readProperties(reader, 'publish') as mqttPacket.IPublishPacket['properties'];
      pos = reader.pos;
    }
  }
  // [MQTT-3.3.2-1] / 3.1.1 §3.3.2.1: an empty topic only with a Topic Alias (v5).
  if (topicLength === 0 && properties?.topicAlias === undefined) {
    throw protocolViolation('PUBLISH with an empty topic name and no Topic Alias');
  }
  // A copy: the payload may outlive this chunk (queues, retained store) and must not pin it. The whole
  // packet is copied (a few bytes more than the payload) when it can be forwarded as it is.
  let payload: Buffer;
  let wire: Buffer | undefined;
  if (frame[0] === 0x30 && properties === undefined && headerLength === 1 + remainingLengthBytes(end - headerLength)) {
    wire = Buffer.allocUnsafe(end);
    frame.copy(wire, 0, 0, end);
    payload = wire.subarray(pos);
  } else {
    payload = Buffer.allocUnsafe(end - pos);
    frame.copy(payload, 0, pos);
  }
  return {
    cmd: 'publish', topic, payload, qos: qos as QoS, retain: (flags & 0x01) !== 0, dup,
    messageId, properties, length: end - headerLength, wire,
  };
}

function remainingLengthBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/**
 * A topic name [MQTT-4.7.3-1..3, MQTT-3.3.2-2]: UTF-8 without U+0000 (else malformed) and without
 * wildcards (0x90 Topic Name invalid).
 */
function checkTopicName(frame: Buffer, start: number, end: number): void {
  let high = false;
  for (let i = start; i < end; i++) {
    const byte = frame[i];
    if (byte === 0x2b || byte === 0x23) throw protocolViolation(`PUBLISH topic name contains a wildcard: "${frame.toString('utf8', start, end)}"`, TOPIC_NAME_INVALID);
    if (byte === 0) throw malformed('PUBLISH topic name contains U+0000');
    if (byte >= 0x80) high = true;
  }
  if (high && !isUtf8(frame.subarray(start, end))) throw malformed('PUBLISH topic name is not well-formed UTF-8');
}
