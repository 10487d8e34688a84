// Hand-built MQTT bytes for the cases mqtt-packet's generate() refuses to produce (malformed on purpose).

export function encodeRemainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let digit = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) digit |= 0x80;
    bytes.push(digit);
  } while (length > 0);
  return Buffer.from(bytes);
}

export function mqttString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

export function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), encodeRemainingLength(body.length), body]);
}

export interface RawConnect {
  protocolName?: string;
  level?: number;
  /** The connect flags byte as sent (default 0x02: clean session). */
  flags?: number;
  keepalive?: number;
  clientId?: string | Buffer;
  /** Bytes appended after the client id (will topic/payload, username, password). */
  tail?: Buffer;
}

/** A CONNECT with every field under the test's control. v5 gets an empty property block. */
export function connectBytes(options: RawConnect = {}): Buffer {
  const level = options.level ?? 4;
  const keepalive = options.keepalive ?? 60;
  const variable = Buffer.concat([
    mqttString(options.protocolName ?? (level === 3 ? 'MQIsdp' : 'MQTT')),
    Buffer.from([level, options.flags ?? 0x02, keepalive >> 8, keepalive & 0xff]),
    level === 5 ? Buffer.from([0x00]) : Buffer.alloc(0),
  ]);
  const payload = Buffer.concat([mqttString(options.clientId ?? 'raw-client'), options.tail ?? Buffer.alloc(0)]);
  return packet(0x10, Buffer.concat([variable, payload]));
}

/** A PUBLISH whose topic is given as raw bytes (for invalid UTF-8 and U+0000). */
export function publishBytes(options: { topic: string | Buffer; payload?: Buffer | string; qos?: 0 | 1 | 2 | 3; messageId?: number; flags?: number; v5?: boolean }): Buffer {
  const qos = options.qos ?? 0;
  const first = options.flags !== undefined ? 0x30 | options.flags : 0x30 | (qos << 1);
  const parts: Buffer[] = [mqttString(options.topic)];
  if (qos > 0) parts.push(Buffer.from([(options.messageId ?? 1) >> 8, (options.messageId ?? 1) & 0xff]));
  if (options.v5) parts.push(Buffer.from([0x00]));
  parts.push(typeof options.payload === 'string' ? Buffer.from(options.payload) : (options.payload ?? Buffer.alloc(0)));
  return packet(first, Buffer.concat(parts));
}

/** A SUBSCRIBE with a chosen fixed-header low nibble (must be 0b0010) and raw filter bytes. */
export function subscribeBytes(options: { filters: Array<{ filter: string | Buffer; options: number }>; messageId?: number; flags?: number; v5?: boolean }): Buffer {
  const id = options.messageId ?? 1;
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff])];
  if (options.v5) parts.push(Buffer.from([0x00]));
  for (const f of options.filters) parts.push(mqttString(f.filter), Buffer.from([f.options]));
  return packet(0x80 | (options.flags ?? 0x02), Buffer.concat(parts));
}
