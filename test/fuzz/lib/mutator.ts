// Corrupts generated packets. Each mutation class has a name, so a run can report what it found by
// class and CI can exclude a class whose defect is still open (with a comment naming the defect).

import { allFields, varint, type Field, type PacketModel, type Property } from './encoder.js';
import { propertyValue, type GenContext } from './generator.js';
import type { Rng } from './prng.js';
import { ALL_PROPERTY_IDS, CLIENT_ALLOWED, REPEATABLE } from './spec.js';

type Mutation = (ctx: GenContext, packet: PacketModel) => boolean;

const INVALID_UTF8 = [
  [0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xc0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80, 0xaf], [0xc2],
].map((b) => Buffer.from(b));

function strings(packet: PacketModel, utf8Only: boolean): Array<Extract<Field, { t: 'str' }>> {
  return allFields(packet).filter((f): f is Extract<Field, { t: 'str' }> => f.t === 'str' && (!utf8Only || f.utf8));
}

function propBlocks(packet: PacketModel): Array<Extract<Field, { t: 'props' }>> {
  return allFields(packet).filter((f): f is Extract<Field, { t: 'props' }> => f.t === 'props');
}

function lie(rng: Rng, actual: number, max: number): number {
  return rng.pick([actual + 1, Math.max(0, actual - 1), 0, max, actual + rng.range(2, 40), rng.range(0, max)]) ;
}

/** Names of the packet's allowed property list (connect/will/publish/…); the will block is the connect's second. */
function blockKind(packet: PacketModel, block: Field): string {
  const blocks = propBlocks(packet);
  return packet.name === 'connect' && blocks.indexOf(block as Extract<Field, { t: 'props' }>) === 1 ? 'will' : packet.name;
}

export const MUTATIONS: Record<string, Mutation> = {
  bitflip(ctx, packet) {
    const flips = ctx.rng.range(1, 3);
    packet.post ??= [];
    for (let i = 0; i < flips; i++) packet.post.push({ flip: ctx.rng.u32() });
    return true;
  },
  'string-length-lie'(ctx, packet) {
    const candidates = strings(packet, false);
    if (candidates.length === 0) return false;
    const f = ctx.rng.pick(candidates);
    f.lie = lie(ctx.rng, f.b.length, 0xffff);
    return f.lie !== f.b.length;
  },
  'property-length-lie'(ctx, packet) {
    const blocks = propBlocks(packet);
    if (blocks.length === 0) return false;
    const block = ctx.rng.pick(blocks);
    let actual = 0;
    const parts: Buffer[] = [];
    for (const p of block.items) parts.push(varint(p.id));
    actual = parts.reduce((n, b) => n + b.length, 0) + 1; // a guess; any lie will do
    block.lie = lie(ctx.rng, actual, 268435455);
    return true;
  },
  'remaining-length-lie'(ctx, packet) {
    packet.remaining = { lie: ctx.rng.pick([0, 1, 2, ctx.rng.range(0, 200), 268435455, ctx.rng.range(1000, 2_000_000)]) };
    return true;
  },
  truncate(ctx, packet) {
    packet.post ??= [];
    packet.post.push({ cut: ctx.rng.range(1, 40) });
    return true;
  },
  'varint-oversized'(ctx, packet) {
    // More than four bytes, or a value past 268,435,455 [MQTT-1.5.5].
    const raw = ctx.rng.pick([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    const vints = allFields(packet).filter((f) => f.t === 'vint');
    if (vints.length > 0 && ctx.rng.chance(0.4)) {
      (ctx.rng.pick(vints) as Extract<Field, { t: 'vint' }>).raw = raw;
      return true;
    }
    const blocks = propBlocks(packet);
    if (blocks.length > 0 && ctx.rng.chance(0.5)) {
      ctx.rng.pick(blocks).lie = 0x7fffffff;
      return true;
    }
    packet.remaining = { raw };
    return true;
  },
  'varint-overlong'(ctx, packet) {
    const pad = ctx.rng.range(1, 3);
    const vints = allFields(packet).filter((f) => f.t === 'vint');
    const blocks = propBlocks(packet);
    const roll = ctx.rng.int(3);
    if (roll === 0 && vints.length > 0) (ctx.rng.pick(vints) as Extract<Field, { t: 'vint' }>).pad = pad;
    else if (roll === 1 && blocks.length > 0) ctx.rng.pick(blocks).pad = pad;
    else packet.remaining = { pad };
    return true;
  },
  'invalid-utf8'(ctx, packet) {
    const candidates = strings(packet, true);
    if (candidates.length === 0) return false;
    const f = ctx.rng.pick(candidates);
    const at = ctx.rng.int(f.b.length + 1);
    f.b = Buffer.concat([f.b.subarray(0, at), ctx.rng.pick(INVALID_UTF8), f.b.subarray(at)]);
    return true;
  },
  'nul-char'(ctx, packet) {
    const candidates = strings(packet, true);
    if (candidates.length === 0) return false;
    const f = ctx.rng.pick(candidates);
    const at = ctx.rng.int(f.b.length + 1);
    f.b = Buffer.concat([f.b.subarray(0, at), Buffer.from([0]), f.b.subarray(at)]);
    return true;
  },
  'reserved-flags'(ctx, packet) {
    const { rng } = ctx;
    if (packet.name === 'connect' && packet.body[1]?.t === 'byte' && packet.body[2]?.t === 'byte') {
      const flags = packet.body[2];
      const level = packet.body[1];
      switch (rng.int(5)) {
        case 0: flags.v |= 0x01; break; // reserved bit [MQTT-3.1.2-3]
        case 1: level.v |= 0x80; break; // Mosquitto's bridge bit
        case 2: flags.v = (flags.v & ~0x04) | 0x18; break; // will QoS without will flag
        case 3: flags.v |= 0x18; break; // will QoS 3
        default: level.v = rng.pick([0, 1, 2, 6, 0x83, 0x84, 0x85, 255]);
      }
      return true;
    }
    if (packet.name === 'publish') {
      packet.header |= rng.chance(0.5) ? 0x06 : 0x08; // QoS 3, or DUP on QoS 0
      return true;
    }
    if (packet.name === 'subscribe' && rng.chance(0.5)) {
      const options = packet.body.filter((f) => f.t === 'byte') as Array<Extract<Field, { t: 'byte' }>>;
      if (options.length > 0) {
        rng.pick(options).v |= rng.pick([0xc0, 0x03, 0x30, 0x40]);
        return true;
      }
    }
    packet.header = (packet.header & 0xf0) | (rng.int(15) + 1);
    return true;
  },
  'duplicate-property'(ctx, packet) {
    const blocks = propBlocks(packet);
    if (blocks.length === 0) return false;
    const block = ctx.rng.pick(blocks);
    const single = block.items.filter((p) => !REPEATABLE.has(p.id));
    let copy: Property;
    if (single.length > 0) {
      const p = ctx.rng.pick(single);
      copy = { id: p.id, value: propertyValue(ctx.rng, p.id, ctx) };
    } else {
      const allowed = CLIENT_ALLOWED[blockKind(packet, block)].filter((id) => !REPEATABLE.has(id));
      if (allowed.length === 0) return false;
      const id = ctx.rng.pick(allowed);
      block.items.push({ id, value: propertyValue(ctx.rng, id, ctx) });
      copy = { id, value: propertyValue(ctx.rng, id, ctx) };
    }
    block.items.splice(ctx.rng.int(block.items.length + 1), 0, copy);
    return true;
  },
  'forbidden-property'(ctx, packet) {
    const blocks = propBlocks(packet);
    if (blocks.length === 0) return false;
    const block = ctx.rng.pick(blocks);
    const allowed = new Set(CLIENT_ALLOWED[blockKind(packet, block)]);
    if (ctx.rng.chance(0.15)) {
      // An identifier no version defines.
      block.items.push({ id: ctx.rng.pick([0x00, 0x04, 0x10, 0x2b, 0x7f]), value: [{ t: 'bytes', b: ctx.rng.bytes(ctx.rng.range(0, 4)) }] });
      return true;
    }
    const forbidden = ALL_PROPERTY_IDS.filter((id) => !allowed.has(id));
    const id = ctx.rng.pick(forbidden);
    block.items.splice(ctx.rng.int(block.items.length + 1), 0, { id, value: propertyValue(ctx.rng, id, ctx) });
    return true;
  },
  'property-value'(ctx, packet) {
    const blocks = propBlocks(packet).filter((b) => b.items.length > 0);
    const bad: Record<number, Field[]> = {
      0x01: [{ t: 'byte', v: ctx.rng.range(2, 255) }], 0x17: [{ t: 'byte', v: 2 }], 0x19: [{ t: 'byte', v: 7 }],
      0x21: [{ t: 'u16', v: 0 }], 0x27: [{ t: 'u32', v: 0 }], 0x23: [{ t: 'u16', v: ctx.rng.pick([0, 65535]) }],
      0x0b: [{ t: 'vint', v: 0 }], 0x26: [{ t: 'str', b: Buffer.from('k'), utf8: true }],
    };
    for (const block of ctx.rng.chance(0.5) ? blocks : [...blocks].reverse()) {
      const target = block.items.find((p) => bad[p.id] !== undefined);
      if (target) {
        target.value = bad[target.id];
        return true;
      }
    }
    return false;
  },
  'packet-id'(ctx, packet) {
    const ids = packet.body.filter((f) => f.t === 'packetId') as Array<Extract<Field, { t: 'packetId' }>>;
    if (ids.length === 0) return false;
    const id = ids[0];
    if (ctx.rng.chance(0.5)) id.v = 0;
    else {
      // Absent: the packet ends where the identifier would start (e.g. `62 00`).
      id.v = null;
      if (ctx.rng.chance(0.7)) packet.body = packet.body.slice(0, packet.body.indexOf(id));
    }
    return true;
  },
  topic(ctx, packet) {
    const { rng } = ctx;
    const bad = rng.pick(['fz/#', 'fz/+', '#', 'fz/a/#/b', '', '$SYS/x', 'fz/a+', '$share/g', '$share//fz/a', '$share/g+/fz', '$share/g/', 'fz/' + 'l'.repeat(rng.range(300, 65000)), '/', 'fz//a']);
    const first = packet.body.find((f) => f.t === 'str' && f.utf8) as Extract<Field, { t: 'str' }> | undefined;
    if (!first || !['publish', 'subscribe', 'unsubscribe', 'connect'].includes(packet.name)) return false;
    if (packet.name === 'connect') {
      // The will topic (if any) or the client id.
      const all = strings(packet, true);
      const target = all.length > 2 ? all[2] : all[1] ?? first;
      target.b = Buffer.from(bad);
      return true;
    }
    if (packet.name === 'publish') first.b = Buffer.from(bad);
    else {
      const filters = packet.body.filter((f) => f.t === 'str') as Array<Extract<Field, { t: 'str' }>>;
      rng.pick(filters).b = Buffer.from(bad);
    }
    return true;
  },
  'empty-body'(ctx, packet) {
    // SUBSCRIBE/UNSUBSCRIBE without any filter [MQTT-3.8.3-3], CONNECT without client id, …
    const cut = packet.body.findIndex((f) => f.t === 'str' || f.t === 'props');
    if (cut < 0) return false;
    const keep = packet.name === 'subscribe' || packet.name === 'unsubscribe'
      ? packet.body.filter((f) => f.t === 'packetId' || f.t === 'props')
      : packet.body.slice(0, ctx.rng.range(0, packet.body.length - 1));
    packet.body = keep;
    return true;
  },
  'byte-storm'(ctx, packet) {
    packet.post ??= [];
    packet.post.push({ append: ctx.rng.bytes(ctx.rng.chance(0.1) ? ctx.rng.range(4096, 65536) : ctx.rng.range(1, 256)) });
    return true;
  },
};

export const MUTATION_NAMES = Object.keys(MUTATIONS);

/** Applies one mutation of an enabled class to `packet`; returns its name, or null if none applied. */
export function mutateOne(ctx: GenContext, packet: PacketModel, enabled: readonly string[]): string | null {
  for (let attempt = 0; attempt < 6; attempt++) {
    const name = ctx.rng.pick(enabled);
    if (MUTATIONS[name](ctx, packet)) return name;
  }
  return null;
}
