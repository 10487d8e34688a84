// The fuzzer's own MQTT encoder. A packet is a tree of fields whose lengths are computed at
// encoding time unless a mutation made them lie; nothing here checks that a packet is valid.

export type Field =
  | { t: 'bytes'; b: Buffer }
  /** A 2-byte length then the bytes (UTF-8 string or binary data); `lie` replaces the length written. */
  | { t: 'str'; b: Buffer; utf8: boolean; lie?: number }
  /** A variable byte integer; `pad` extra continuation bytes make it overlong, `raw` replaces it. */
  | { t: 'vint'; v: number; pad?: number; raw?: Buffer }
  | { t: 'u16'; v: number }
  | { t: 'u32'; v: number }
  | { t: 'byte'; v: number }
  /** A v5 property block: a variable-byte length then the properties. */
  | { t: 'props'; items: Property[]; lie?: number; pad?: number }
  | { t: 'packetId'; v: number | null };

export interface Property {
  id: number;
  value: Field[];
}

export interface PacketModel {
  /** e.g. "connect", "publish"; for messages and mutation choices. */
  name: string;
  /** The first byte: type << 4 | flags. */
  header: number;
  body: Field[];
  /** Remaining length as written: `lie` replaces the value, `pad` makes it overlong, `raw` replaces the bytes. */
  remaining?: { lie?: number; pad?: number; raw?: Buffer };
  /** Applied to the encoded bytes, in order. */
  post?: Array<{ cut: number } | { flip: number } | { append: Buffer }>;
}

export function varint(value: number, pad = 0): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0 || pad > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
  for (let i = 0; i < pad; i++) out.push(i === pad - 1 ? 0x00 : 0x80);
  return Buffer.from(out);
}

function u16(v: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export function encodeFields(fields: Field[], out: Buffer[]): void {
  for (const f of fields) {
    switch (f.t) {
      case 'bytes':
        out.push(f.b);
        break;
      case 'str':
        out.push(u16(f.lie ?? f.b.length), f.b);
        break;
      case 'vint':
        out.push(f.raw ?? varint(f.v, f.pad));
        break;
      case 'u16':
        out.push(u16(f.v));
        break;
      case 'u32':
        out.push(u32(f.v));
        break;
      case 'byte':
        out.push(Buffer.from([f.v & 0xff]));
        break;
      case 'packetId':
        if (f.v !== null) out.push(u16(f.v));
        break;
      case 'props': {
        const inner: Buffer[] = [];
        for (const p of f.items) {
          inner.push(varint(p.id));
          encodeFields(p.value, inner);
        }
        const body = Buffer.concat(inner);
        out.push(varint(f.lie ?? body.length, f.pad), body);
        break;
      }
    }
  }
}

export function encodePacket(packet: PacketModel): Buffer {
  const parts: Buffer[] = [];
  encodeFields(packet.body, parts);
  const body = Buffer.concat(parts);
  const rl = packet.remaining;
  const length = rl?.raw ?? varint(rl?.lie ?? body.length, rl?.pad);
  let bytes = Buffer.concat([Buffer.from([packet.header & 0xff]), length, body]);
  for (const step of packet.post ?? []) {
    if ('cut' in step) bytes = bytes.subarray(0, Math.max(0, Math.min(step.cut, bytes.length)));
    else if ('flip' in step) {
      if (bytes.length > 0) {
        const bit = step.flip % (bytes.length * 8);
        bytes = Buffer.from(bytes);
        bytes[bit >> 3] ^= 1 << (bit & 7);
      }
    } else bytes = Buffer.concat([bytes, step.append]);
  }
  return bytes;
}

/** Every field of a packet, depth first, with property values: what mutations choose from. */
export function allFields(packet: PacketModel): Field[] {
  const out: Field[] = [];
  const walk = (fields: Field[]) => {
    for (const f of fields) {
      out.push(f);
      if (f.t === 'props') for (const p of f.items) walk(p.value);
    }
  };
  walk(packet.body);
  return out;
}
