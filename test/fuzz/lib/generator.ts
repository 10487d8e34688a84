// Builds valid MQTT 3.1, 3.1.1 and 5.0 client → server packets, with every property the spec
// allows for the packet (each present at random), as PacketModels the mutator may then corrupt.

import type { Field, PacketModel, Property } from './encoder.js';
import type { Rng } from './prng.js';
import { CLIENT_ALLOWED, CLIENT_REASONS, PROPERTY_TYPES } from './spec.js';

export type Version = 3 | 4 | 5;

/** Topics fuzz clients publish and subscribe under; the good clients subscribe to them too. */
export const FUZZ_ROOT = 'fz';
/** A small vocabulary, so retained messages and topics stay bounded over millions of cases. */
const WORDS = ['a', 'b', 'c', 'temp', 'x/y', 'w', 'set', 'long-topic-level-name', 'u', 'v', 'q', '0', 'z', 'dev/1', 'dev/2', 'r'];

export interface GenContext {
  rng: Rng;
  version: Version;
  clientId: string;
  /** The server's topic alias maximum (what our CONNACK promises). */
  serverTopicAliasMaximum: number;
  /** Packet ids of QoS 2 PUBLISHes sent, for PUBREL. */
  qos2Ids: number[];
  /** May a CONNECT announce a Maximum Packet Size under 64 bytes (smaller than many answers)? */
  tinyLimits: boolean;
  /** Set when a CONNECT did. */
  usedTinyLimit?: boolean;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const str = (s: string): Field => ({ t: 'str', b: utf8(s), utf8: true });
const bin = (b: Buffer): Field => ({ t: 'str', b, utf8: false });

export function fuzzTopic(rng: Rng): string {
  return `${FUZZ_ROOT}/${rng.pick(WORDS)}`;
}

function fuzzFilter(rng: Rng): string {
  const base = rng.pick([`${FUZZ_ROOT}/#`, `${FUZZ_ROOT}/+`, `${FUZZ_ROOT}/${rng.pick(WORDS)}`, `+/${rng.pick(WORDS)}`, '#', `${FUZZ_ROOT}/+/1`]);
  return rng.chance(0.2) ? `$share/fz${rng.int(3)}/${base}` : base;
}

function packetId(rng: Rng): number {
  return rng.chance(0.5) ? rng.range(1, 10) : rng.range(1, 65535);
}

/** A valid value for property `id`, as fields. */
export function propertyValue(rng: Rng, id: number, ctx: GenContext): Field[] {
  switch (id) {
    case 0x01: return [{ t: 'byte', v: rng.int(2) }];
    case 0x17: case 0x19: return [{ t: 'byte', v: rng.int(2) }];
    case 0x02: return [{ t: 'u32', v: rng.pick([0, 1, 60, 0xffffffff]) }];
    case 0x11: return [{ t: 'u32', v: rng.pick([0, 0, 1, 2]) }];
    case 0x18: return [{ t: 'u32', v: rng.pick([0, 0, 1]) }];
    case 0x27: {
      const v = rng.pick([ctx.tinyLimits ? rng.range(16, 63) : rng.range(64, 200), rng.range(64, 2048), 1 << 20, 268435460]);
      if (v < 64) ctx.usedTinyLimit = true;
      return [{ t: 'u32', v }];
    }
    case 0x21: return [{ t: 'u16', v: rng.pick([1, 2, 5, 65535]) }];
    case 0x22: return [{ t: 'u16', v: rng.pick([0, 1, 3, 64]) }];
    case 0x23: return [{ t: 'u16', v: rng.range(1, Math.max(1, ctx.serverTopicAliasMaximum)) }];
    case 0x0b: return [{ t: 'vint', v: rng.pick([1, 127, 128, 16384, 268435455]) }];
    case 0x08: return [str(fuzzTopic(rng))];
    case 0x15: return [str(rng.pick(['SCRAM-SHA-1', 'x']))];
    case 0x09: case 0x16: return [bin(rng.bytes(rng.range(0, 12)))];
    case 0x26: return [str(rng.word(0, 6)), str(rng.word(0, 10))];
    default: {
      const type = PROPERTY_TYPES[id];
      if (type === 'string') return [str(rng.word(0, 12))];
      if (type === 'byte') return [{ t: 'byte', v: rng.int(2) }];
      if (type === 'u16') return [{ t: 'u16', v: rng.range(0, 65535) }];
      if (type === 'u32') return [{ t: 'u32', v: rng.u32() }];
      if (type === 'vint') return [{ t: 'vint', v: rng.range(1, 1000) }];
      if (type === 'binary') return [bin(rng.bytes(rng.range(0, 8)))];
      return [str(rng.word()), str(rng.word())];
    }
  }
}

/** Every property `packet` may carry, each present with probability `p`; user properties 0–3 times. */
export function properties(ctx: GenContext, packet: string, p = 0.4): Field {
  const { rng } = ctx;
  const items: Property[] = [];
  for (const id of CLIENT_ALLOWED[packet]) {
    if (id === 0x26) {
      for (let n = rng.chance(p) ? rng.range(1, 3) : 0; n > 0; n--) items.push({ id, value: propertyValue(rng, id, ctx) });
    } else if (id === 0x15 && packet === 'connect') {
      // Enhanced authentication is refused by a broker without it; keep it rare so CONNECTs mostly succeed.
      if (rng.chance(0.03)) items.push({ id, value: propertyValue(rng, id, ctx) });
    } else if (id === 0x16 && packet === 'connect') {
      if (items.some((i) => i.id === 0x15) && rng.chance(0.5)) items.push({ id, value: propertyValue(rng, id, ctx) });
    } else if (rng.chance(p)) items.push({ id, value: propertyValue(rng, id, ctx) });
  }
  // The spec does not fix an order: shuffle.
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return { t: 'props', items };
}

export function connect(ctx: GenContext, opts: { will?: boolean; keepAlive?: number; clean?: boolean } = {}): PacketModel {
  const { rng, version } = ctx;
  const will = opts.will ?? rng.chance(0.5);
  const willQos = rng.int(3);
  const willRetain = rng.chance(0.3);
  const username = rng.chance(0.2);
  const password = (username || version === 5) && rng.chance(0.2);
  const clean = opts.clean ?? (version === 5 ? rng.chance(0.5) : rng.chance(0.9));
  let flags = clean ? 0x02 : 0;
  if (will) flags |= 0x04 | (willQos << 3) | (willRetain ? 0x20 : 0);
  if (username) flags |= 0x80;
  if (password) flags |= 0x40;
  const body: Field[] = [
    str(version === 3 ? 'MQIsdp' : 'MQTT'),
    { t: 'byte', v: version },
    { t: 'byte', v: flags },
    { t: 'u16', v: opts.keepAlive ?? rng.pick([0, 5, 30, 60]) },
  ];
  if (version === 5) body.push(properties(ctx, 'connect'));
  body.push(str(ctx.clientId));
  if (will) {
    if (version === 5) body.push(properties(ctx, 'will', 0.5));
    body.push(str(`${FUZZ_ROOT}/w/${rng.pick(WORDS)}`), bin(rng.bytes(rng.range(0, 16))));
  }
  if (username) body.push(str(rng.word()));
  if (password) body.push(bin(rng.bytes(rng.range(0, 8))));
  return { name: 'connect', header: 0x10, body };
}

export function publish(ctx: GenContext): PacketModel {
  const { rng, version } = ctx;
  const qos = rng.int(3);
  const retain = rng.chance(0.25);
  const dup = qos > 0 && rng.chance(0.1);
  const id = packetId(rng);
  const body: Field[] = [];
  let props: Field | null = null;
  if (version === 5) props = properties(ctx, 'publish');
  const aliased = props !== null && props.t === 'props' && props.items.some((p) => p.id === 0x23);
  // With a topic alias the topic may be empty (use of an alias set earlier: a protocol error if none was).
  body.push(str(aliased && rng.chance(0.5) ? '' : fuzzTopic(rng)));
  if (qos > 0) {
    body.push({ t: 'packetId', v: id });
    if (qos === 2) ctx.qos2Ids.push(id);
  }
  if (props) body.push(props);
  body.push({ t: 'bytes', b: rng.chance(0.05) ? rng.bytes(rng.range(200, 3000)) : rng.bytes(rng.range(0, 24)) });
  return { name: 'publish', header: 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0), body };
}

export function ack(ctx: GenContext, name: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'): PacketModel {
  const { rng, version } = ctx;
  const header = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }[name];
  const id = name === 'pubrel' && ctx.qos2Ids.length > 0 && rng.chance(0.8) ? rng.pick(ctx.qos2Ids) : packetId(rng);
  const body: Field[] = [{ t: 'packetId', v: id }];
  if (version === 5) {
    const form = rng.int(3); // id only; id + reason; id + reason + properties
    if (form >= 1) body.push({ t: 'byte', v: rng.pick(CLIENT_REASONS[name]) });
    if (form === 2) body.push(properties(ctx, name, 0.5));
  }
  return { name, header, body };
}

export function subscribe(ctx: GenContext): PacketModel {
  const { rng, version } = ctx;
  const body: Field[] = [{ t: 'packetId', v: packetId(rng) }];
  if (version === 5) body.push(properties(ctx, 'subscribe', 0.5));
  for (let n = rng.range(1, 3); n > 0; n--) {
    const filter = fuzzFilter(rng);
    let options = rng.int(3);
    if (version === 5) {
      // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]: keep valid packets valid.
      if (rng.chance(0.3) && !filter.startsWith('$share/')) options |= 0x04;
      if (rng.chance(0.3)) options |= 0x08;
      options |= rng.int(3) << 4;
    }
    body.push(str(filter), { t: 'byte', v: options });
  }
  return { name: 'subscribe', header: 0x82, body };
}

export function unsubscribe(ctx: GenContext): PacketModel {
  const { rng, version } = ctx;
  const body: Field[] = [{ t: 'packetId', v: packetId(rng) }];
  if (version === 5) body.push(properties(ctx, 'unsubscribe', 0.5));
  for (let n = rng.range(1, 3); n > 0; n--) body.push(str(fuzzFilter(rng)));
  return { name: 'unsubscribe', header: 0xa2, body };
}

export function pingreq(): PacketModel {
  return { name: 'pingreq', header: 0xc0, body: [] };
}

export function disconnect(ctx: GenContext): PacketModel {
  const { rng, version } = ctx;
  const body: Field[] = [];
  if (version === 5 && rng.chance(0.7)) {
    body.push({ t: 'byte', v: rng.pick(CLIENT_REASONS.disconnect) });
    if (rng.chance(0.6)) {
      const props = properties(ctx, 'disconnect', 0.4);
      // A DISCONNECT may not set a session expiry when the CONNECT had none [MQTT-3.14.2-2]: leave it to the mutator.
      if (props.t === 'props') props.items = props.items.filter((p) => p.id !== 0x11);
      body.push(props);
    }
  }
  return { name: 'disconnect', header: 0xe0, body };
}

export function auth(ctx: GenContext): PacketModel {
  const { rng } = ctx;
  const body: Field[] = [];
  if (rng.chance(0.8)) {
    body.push({ t: 'byte', v: rng.pick(CLIENT_REASONS.auth) });
    body.push(properties(ctx, 'auth', 0.6));
  }
  return { name: 'auth', header: 0xf0, body };
}

/** One packet of any client → server type that may follow CONNECT. */
export function anyAfterConnect(ctx: GenContext): PacketModel {
  const { rng } = ctx;
  const roll = rng.int(100);
  if (roll < 35) return publish(ctx);
  if (roll < 50) return subscribe(ctx);
  if (roll < 57) return unsubscribe(ctx);
  if (roll < 80) return ack(ctx, rng.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const));
  if (roll < 88) return pingreq();
  if (roll < 93 && ctx.version === 5) return auth(ctx);
  if (roll < 96) return connect(ctx);
  return disconnect(ctx);
}
