// One fuzz case: the packets one socket sends (valid, mutated, in the wrong state), and how.
// A case is a pure function of (seed, index): any case can be regenerated and replayed.

import { encodePacket, type PacketModel } from './encoder.js';
import * as gen from './generator.js';
import { MUTATION_NAMES, mutateOne } from './mutator.js';
import { Rng } from './prng.js';

/** Classes of a whole case (not of one packet). */
export const SCENARIO_NAMES = ['before-connect', 'second-connect', 'wrong-version-packet', 'dribble', 'preconnect-flood', 'tiny-maximum-packet-size', 'mutated-second-connect', 'valid'] as const;
/** Classes that leave every packet valid. */
const VALID_CLASSES = new Set(['valid', 'second-connect', 'tiny-maximum-packet-size']);
export const CLASS_NAMES = [...MUTATION_NAMES, ...SCENARIO_NAMES];

export interface FuzzCase {
  seed: number;
  index: number;
  version: gen.Version;
  /** Each packet as sent (hex in reports). */
  frames: Buffer[];
  names: string[];
  /** Mutation and scenario classes applied. */
  classes: string[];
  /** 'burst': all bytes at once, split at random boundaries; 'dribble': after CONNECT, one byte per `dribbleMs`. */
  delivery: 'burst' | 'dribble';
  dribbleMs: number;
  /** Keep alive of the CONNECT (for the dribble bound). */
  keepAlive: number;
  /** End with a plain close (the will fires) instead of waiting for the broker. */
  abrupt: boolean;
  /** Seed of the split points. */
  splitSeed: number;
  /** True when nothing was mutated: the broker must accept every packet. */
  valid: boolean;
}

export interface CaseOptions {
  /** Class names not to generate (CI excludes the class of a defect still open, naming it). */
  exclude?: readonly string[];
}

export function generateCase(seed: number, index: number, options: CaseOptions = {}): FuzzCase {
  const rng = Rng.forCase(seed, index);
  const exclude = new Set(options.exclude ?? []);
  const enabled = MUTATION_NAMES.filter((n) => !exclude.has(n));
  const on = (name: string) => !exclude.has(name);
  const version = rng.pick([3, 4, 5, 5] as const);
  const clientId = rng.chance(0.05) ? (version === 3 ? 'fz-empty' : '') : `fz${rng.int(200)}`;
  const ctx: gen.GenContext = { rng, version, clientId, serverTopicAliasMaximum: 64, qos2Ids: [], tinyLimits: on('tiny-maximum-packet-size') };
  const classes: string[] = [];
  const models: PacketModel[] = [];
  let delivery: FuzzCase['delivery'] = 'burst';
  let keepAlive = 0;
  const roll = rng.int(1000);

  if (roll < 15 && on('dribble')) {
    // A packet dribbled one byte at a time under a 1 s keep alive: the broker must close within 1.5 × keep alive.
    keepAlive = 1;
    models.push(gen.connect(ctx, { keepAlive, will: false }));
    const big = gen.publish(ctx);
    big.body[big.body.length - 1] = { t: 'bytes', b: rng.bytes(80) };
    models.push(big);
    delivery = 'dribble';
    classes.push('dribble');
  } else if (roll < 25 && on('preconnect-flood')) {
    // A CONNECT that announces ~1 MiB and sends part of it: bytes held before authentication.
    models.push({ name: 'connect', header: 0x10, body: [{ t: 'bytes', b: rng.bytes(rng.range(8192, 200_000)) }], remaining: { lie: rng.range(300_000, 1_000_000) } });
    classes.push('preconnect-flood');
  } else {
    if (rng.chance(0.06) && on('before-connect')) {
      models.push(gen.anyAfterConnect({ ...ctx, rng }));
      classes.push('before-connect');
    }
    const connect = gen.connect(ctx);
    keepAlive = (connect.body[3] as { v: number }).v;
    models.push(connect);
    for (let n = rng.range(0, 6); n > 0; n--) {
      if (rng.chance(0.05) && on('second-connect')) {
        models.push(gen.connect(ctx));
        classes.push('second-connect');
      } else if (version !== 5 && rng.chance(0.03) && on('wrong-version-packet')) {
        models.push(gen.auth({ ...ctx, version: 5 }));
        classes.push('wrong-version-packet');
      } else models.push(gen.anyAfterConnect(ctx));
    }
    if (rng.chance(0.35)) models.push(gen.disconnect(ctx));
    if (enabled.length > 0 && rng.chance(0.75)) {
      for (let m = rng.chance(0.2) ? rng.range(2, 3) : 1; m > 0; m--) {
        // Mostly after CONNECT, where a broker has the most state to get wrong.
        const target = models.length > 1 && rng.chance(0.6) ? rng.range(1, models.length - 1) : 0;
        // A CONNECT after the first one (in the wrong state) that is also malformed: a class of its own.
        const secondConnect = target > 0 && models[target].name === 'connect' && models.slice(0, target).some((m) => m.name === 'connect');
        if (secondConnect && !on('mutated-second-connect')) continue;
        const name = mutateOne(ctx, models[target], enabled);
        if (name) classes.push(name);
        if (name && secondConnect && !classes.includes('mutated-second-connect')) classes.push('mutated-second-connect');
      }
    }
  }
  if (ctx.usedTinyLimit) classes.push('tiny-maximum-packet-size');
  if (!classes.some((c) => c !== 'tiny-maximum-packet-size')) classes.push('valid');
  const frames = models.map(encodePacket);
  return {
    seed, index, version, frames, names: models.map((m) => m.name), classes, delivery,
    dribbleMs: 200, keepAlive, abrupt: rng.chance(0.6), splitSeed: rng.u32(),
    valid: classes.every((c) => VALID_CLASSES.has(c)),
  };
}

/** A case from its printed form (frames as hex), for regression tests and replays. */
export function caseFromHex(hex: string[], extra: Partial<FuzzCase> = {}): FuzzCase {
  return {
    seed: 0, index: 0, version: 5, frames: hex.map((h) => Buffer.from(h, 'hex')), names: hex.map(() => '?'), classes: ['replay'],
    delivery: 'burst', dribbleMs: 200, keepAlive: 0, abrupt: true, splitSeed: 1, valid: false, ...extra,
  };
}

export function describeCase(c: FuzzCase): string {
  const hex = (f: Buffer) => (f.length > 1024 ? `${f.subarray(0, 1024).toString('hex')}…(${f.length} bytes)` : f.toString('hex'));
  return `seed ${c.seed} case ${c.index} v${c.version} [${c.classes.join(',')}] ${c.delivery}${c.abrupt ? ' abrupt' : ''}: ${c.frames.map(hex).join(' ')}`;
}
