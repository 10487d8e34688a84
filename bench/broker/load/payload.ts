// The 64-byte benchmark payload: publisher index (u32), sequence number (u32), send time in
// nanoseconds (u64, latency runs only), then filler.

export const PAYLOAD_BYTES = 64;
export const PUBLISHER_OFFSET = 0;
export const SEQUENCE_OFFSET = 4;
export const TIMESTAMP_OFFSET = 8;

export function benchPayload(publisherIndex: number): Buffer {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  payload.writeUInt32BE(publisherIndex, PUBLISHER_OFFSET);
  payload.writeUInt32BE(0, SEQUENCE_OFFSET);
  payload.writeBigUInt64BE(0n, TIMESTAMP_OFFSET);
  return payload;
}

/** Offset of the payload inside a PUBLISH packet received from a broker (3.1.1: no properties). */
export function payloadStart(buffer: Buffer, start: number, bodyStart: number): number {
  const topicLength = buffer.readUInt16BE(bodyStart);
  const qos = (buffer[start]! >> 1) & 3;
  return bodyStart + 2 + topicLength + (qos > 0 ? 2 : 0);
}
