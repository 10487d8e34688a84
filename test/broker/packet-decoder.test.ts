// The client-packet decoders (src/broker/decode/) against mqtt-packet, the independent decoder, and
// against the rules of MQTT 5.0 §2.2.2.2 written out here from the spec (not from the decoder's table).
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../../src/broker/decode/errors.js';
import { decodePacket } from '../../src/broker/packet-decoder.js';

type Outcome = { error: string; reasonCode?: number } | Record<string, unknown>;

function ours(frame: Buffer, version: number): Outcome {
  try {
    return decodePacket(frame, version) as unknown as Record<string, unknown>;
  } catch (error) {
    if (error instanceof FrameError) return { error: error.message, reasonCode: error.reasonCode };
    throw error;
  }
}

function theirs(frame: Buffer, version: number): Outcome {
  const parser = mqttPacket.parser({ protocolVersion: version });
  let packet: Outcome | null = null;
  let error: string | null = null;
  parser.on('packet', (p: mqttPacket.Packet) => { packet ??= p as unknown as Record<string, unknown>; });
  parser.on('error', (e: Error) => { error ??= e.message; });
  parser.parse(frame);
  if (error !== null) return { error };
  return packet ?? { error: 'incomplete' };
}

/** What handlers read, comparable: Buffers as hex, no prototypes, mqtt-packet's defaults made explicit. */
function view(outcome: Outcome): string {
  const p = { ...(outcome as Record<string, unknown>) };
  // mqtt-packet gives every packet PUBLISH's header fields; only PUBLISH has them.
  if (p.cmd !== 'publish') for (const field of ['dup', 'qos', 'retain', 'topic', 'payload']) delete p[field];
  delete p.length;
  // Not a decoded field: the packet itself, for forwarding as it is (checked against the input below).
  delete p.wire;
  return JSON.stringify(p, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `hex:${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v as object).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b)));
    return v;
  });
}

function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

/** Valid client packets of every type, with and without properties. */
function generatePacket(random: () => number, version: 4 | 5, i: number): mqttPacket.Packet {
  const pick = Math.floor(random() * 8);
  const id = 1 + Math.floor(random() * 65535);
  const user = random() < 0.5 ? { userProperties: { k: `v${i}`, r: ['1', '2'] } } : {};
  switch (pick) {
    case 0: {
      const qos = Math.floor(random() * 3) as 0 | 1 | 2;
      const properties = version === 5 && random() < 0.6
        ? { payloadFormatIndicator: random() < 0.5, messageExpiryInterval: i, contentType: 'text/plain', responseTopic: `resp/${i}`, correlationData: Buffer.from([i & 255]), topicAlias: 1 + (i % 10), ...user }
        : undefined;
      return { cmd: 'publish', topic: `t/${i}/é`, payload: Buffer.from(`p${i}`), qos, dup: qos > 0 && random() < 0.3, retain: random() < 0.5, messageId: qos > 0 ? id : undefined, properties };
    }
    case 1: case 2: case 3: case 4: {
      const cmd = (['puback', 'pubrec', 'pubrel', 'pubcomp'] as const)[pick - 1];
      if (version === 4) return { cmd, messageId: id } as mqttPacket.Packet;
      const reasonCode = cmd === 'pubrel' || cmd === 'pubcomp' ? (random() < 0.5 ? 0 : 0x92) : [0, 0x10, 0x80, 0x97][Math.floor(random() * 4)];
      return { cmd, messageId: id, reasonCode, properties: random() < 0.5 ? { reasonString: `why ${i}`, ...user } : undefined } as mqttPacket.Packet;
    }
    case 5: {
      const subscriptions = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, n) => {
        const s: mqttPacket.ISubscription = { topic: n === 0 ? `a/+/${i}` : `$share/g/b/${n}/#`, qos: Math.floor(random() * 3) as 0 | 1 | 2 };
        // No Local on a shared filter is a protocol error [MQTT-3.8.3-4]: only on the plain one.
        if (version === 5) Object.assign(s, { nl: random() < 0.5 && n === 0, rap: random() < 0.5, rh: Math.floor(random() * 3) });
        return s;
      });
      return { cmd: 'subscribe', messageId: id, subscriptions, properties: version === 5 && random() < 0.5 ? { subscriptionIdentifier: 1 + i, ...user } : undefined };
    }
    case 6:
      return { cmd: 'unsubscribe', messageId: id, unsubscriptions: [`u/${i}`, '#'], properties: version === 5 && random() < 0.5 ? { ...user } : undefined } as mqttPacket.Packet;
    default:
      if (version === 4) return { cmd: 'pingreq' };
      return { cmd: 'disconnect', reasonCode: random() < 0.5 ? 0 : 0x04, properties: random() < 0.5 ? { sessionExpiryInterval: i, reasonString: 'bye', ...user } : undefined };
  }
}

describe('client packet decoder', () => {
  it('decodes 20,000 generated packets of every client type as mqtt-packet does; with corrupted bytes, whatever it accepts mqtt-packet accepts alike', () => {
    const random = lcg(42);
    const problems: string[] = [];
    let accepted = 0;
    let corruptedAccepted = 0;
    let forwardedAsIs = 0;
    for (let i = 0; i < 20_000; i++) {
      const version = random() < 0.5 ? 4 : 5;
      const packet = generatePacket(random, version, i);
      const frame = Buffer.from(mqttPacket.generate(packet, { protocolVersion: version }));
      const corrupt = random() < 0.5 && frame.length > 2;
      if (corrupt) {
        const headerLength = frame[1] < 0x80 ? 2 : 3;
        for (let n = 1 + Math.floor(random() * 2); n > 0; n--) {
          const at = headerLength + Math.floor(random() * (frame.length - headerLength));
          if (at < frame.length) frame[at] = random() < 0.5 ? frame[at] ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
        }
      }
      const mine = ours(frame, version);
      if ('error' in mine) {
        if (!corrupt && problems.length < 5) problems.push(`refused a valid ${packet.cmd}: ${frame.toString('hex')}: ${String(mine.error)}`);
        continue;
      }
      accepted++;
      if (corrupt) corruptedAccepted++;
      const other = theirs(frame, version);
      if (view(mine) !== view(other) && problems.length < 5) problems.push(`${frame.toString('hex')} v${version}: ${view(mine)} vs ${view(other)}`);
      // A PUBLISH forwarded as it was received must be exactly a live QoS 0 PUBLISH without properties.
      const wire = (mine as { wire?: Buffer }).wire;
      if (wire !== undefined) {
        forwardedAsIs++;
        const p = mine as unknown as mqttPacket.IPublishPacket;
        const expected = mqttPacket.generate({ cmd: 'publish', topic: p.topic, payload: p.payload, qos: 0, retain: false, dup: false }, { protocolVersion: version });
        if (!wire.equals(frame) || !wire.equals(expected)) problems.push(`forwarded as is but not a plain QoS 0 PUBLISH: ${frame.toString('hex')} v${version}`);
      }
    }
    expect(forwardedAsIs).toBeGreaterThan(100);
    expect(problems).toEqual([]);
    expect(accepted).toBeGreaterThan(10_000);
    expect(corruptedAccepted).toBeGreaterThan(0);
  });

  it('throws nothing but FrameError on 50,000 random and mutated frames (anything else would escape the socket handler)', () => {
    const random = lcg(8);
    const seeds = [
      '101f00044d51545405060000000001780826000161ffff01000003772f31000121', '310f0003702f310826000161ffff010078',
      '100d00044d5154548402003c000141', '30100003712f310911000000051c00017379', '6200',
      '82090001020b01000161010', '3225000174202600095f5f70726f746f5f5f000176', 'e00400041100', 'f0021800',
    ].map((h) => Buffer.from(h.length % 2 ? `${h}0` : h, 'hex'));
    const unexpected: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      let body: Buffer;
      if (random() < 0.3) body = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      else {
        const seed = seeds[Math.floor(random() * seeds.length)];
        body = Buffer.from(seed.subarray(2));
        for (let n = Math.floor(random() * 4); n >= 0 && body.length > 0; n--) body[Math.floor(random() * body.length)] = Math.floor(random() * 256);
        if (random() < 0.2) body = body.subarray(0, Math.floor(random() * body.length));
      }
      const first = random() < 0.5 ? seeds[Math.floor(random() * seeds.length)][0] : Math.floor(random() * 256);
      const length = body.length < 128 ? [body.length] : [0x80 | (body.length & 0x7f), body.length >> 7];
      const frame = Buffer.concat([Buffer.from([first, ...length]), body]);
      for (const version of [4, 5]) {
        try {
          decodePacket(frame, version);
        } catch (error) {
          if (!(error instanceof FrameError) && unexpected.length < 5) unexpected.push(`${frame.toString('hex')} v${version}: ${String(error)}`);
        }
      }
    }
    expect(unexpected).toEqual([]);
  });

  // MQTT 5.0 §2.2.2.2 Table 2-4, for the packets a client sends: which properties each may carry.
  const allowed: Record<string, string[]> = {
    publish: ['0x01', '0x02', '0x03', '0x08', '0x09', '0x23', '0x26'], // 0x0B is server to client only [MQTT-3.3.4-6]
    puback: ['0x1f', '0x26'],
    subscribe: ['0x0b', '0x26'],
    unsubscribe: ['0x26'],
    disconnect: ['0x11', '0x1c', '0x1f', '0x26'],
  };
  /** A valid value for each property identifier, encoded. */
  const values: Record<string, Buffer> = {
    '0x01': Buffer.from([1]), '0x02': Buffer.from([0, 0, 0, 5]), '0x03': Buffer.from([0, 1, 0x61]), '0x08': Buffer.from([0, 1, 0x61]),
    '0x09': Buffer.from([0, 1, 0x61]), '0x0b': Buffer.from([5]), '0x11': Buffer.from([0, 0, 0, 5]), '0x12': Buffer.from([0, 1, 0x61]),
    '0x13': Buffer.from([0, 5]), '0x15': Buffer.from([0, 1, 0x61]), '0x16': Buffer.from([0, 1, 0x61]), '0x17': Buffer.from([1]),
    '0x18': Buffer.from([0, 0, 0, 5]), '0x19': Buffer.from([1]), '0x1a': Buffer.from([0, 1, 0x61]), '0x1c': Buffer.from([0, 1, 0x61]),
    '0x1f': Buffer.from([0, 1, 0x61]), '0x21': Buffer.from([0, 5]), '0x22': Buffer.from([0, 5]), '0x23': Buffer.from([0, 5]),
    '0x24': Buffer.from([1]), '0x25': Buffer.from([1]), '0x26': Buffer.from([0, 1, 0x61, 0, 1, 0x62]), '0x27': Buffer.from([0, 0, 0, 5]),
    '0x28': Buffer.from([1]), '0x29': Buffer.from([1]), '0x2a': Buffer.from([1]),
  };
  const withProperties = (cmd: string, props: Buffer): Buffer => {
    const block = Buffer.concat([Buffer.from([props.length]), props]);
    const body = {
      publish: () => Buffer.concat([Buffer.from([0, 1, 0x74]), block, Buffer.from('x')]),
      puback: () => Buffer.concat([Buffer.from([0, 1, 0]), block]),
      subscribe: () => Buffer.concat([Buffer.from([0, 1]), block, Buffer.from([0, 1, 0x74, 1])]),
      unsubscribe: () => Buffer.concat([Buffer.from([0, 1]), block, Buffer.from([0, 1, 0x74])]),
      disconnect: () => Buffer.concat([Buffer.from([0]), block]),
    }[cmd]!();
    const first = { publish: 0x30, puback: 0x40, subscribe: 0x82, unsubscribe: 0xa2, disconnect: 0xe0 }[cmd]!;
    return Buffer.concat([Buffer.from([first, body.length]), body]);
  };

  for (const cmd of Object.keys(allowed)) {
    it(`${cmd.toUpperCase()}: every property of Table 2-4 is accepted where allowed, a protocol error (0x82) elsewhere; a repeated one is a protocol error`, () => {
      for (const [id, value] of Object.entries(values)) {
        const frame = withProperties(cmd, Buffer.concat([Buffer.from([Number(id)]), value]));
        const outcome = ours(frame, 5);
        if (allowed[cmd].includes(id)) expect('error' in outcome ? outcome.error : 'ok', `${cmd} ${id}`).toBe('ok');
        else expect((outcome as { reasonCode?: number }).reasonCode, `${cmd} ${id}`).toBe(0x82);
      }
      for (const id of allowed[cmd]) {
        const once = Buffer.concat([Buffer.from([Number(id)]), values[id]]);
        const outcome = ours(withProperties(cmd, Buffer.concat([once, once])), 5);
        if (id === '0x26') expect('error' in outcome ? outcome.error : 'ok').toBe('ok'); // User Property may repeat
        else expect((outcome as { reasonCode?: number }).reasonCode, `${cmd} ${id} twice`).toBe(0x82);
      }
    });
  }

  it('property values out of range, unknown identifiers and lying lengths', () => {
    const cases: Array<[string, string, Buffer, number]> = [
      ['Payload Format Indicator 2', 'publish', Buffer.from([0x01, 2]), 0x82],
      ['Topic Alias 0', 'publish', Buffer.from([0x23, 0, 0]), 0x94],
      ['Response Topic with a wildcard', 'publish', Buffer.from([0x08, 0, 1, 0x23]), 0x82],
      ['Subscription Identifier 0', 'subscribe', Buffer.from([0x0b, 0]), 0x82],
      ['a Subscription Identifier in five bytes', 'subscribe', Buffer.from([0x0b, 0x81, 0x81, 0x81, 0x81, 0x01]), 0x81],
      ['a non-minimal Subscription Identifier', 'subscribe', Buffer.from([0x0b, 0x85, 0x00]), 0x81],
      ['unknown property 0x7f', 'publish', Buffer.from([0x7f, 0]), 0x81],
      ['a user property value running past the block', 'publish', Buffer.from([0x26, 0, 1, 0x61, 0xff, 0xff]), 0x81],
      ['a string with U+0000', 'puback', Buffer.from([0x1f, 0, 1, 0x00]), 0x81],
      ['a string with ill-formed UTF-8', 'puback', Buffer.from([0x1f, 0, 2, 0xc3, 0x28]), 0x81],
      ['an encoded surrogate', 'puback', Buffer.from([0x1f, 0, 3, 0xed, 0xa0, 0x80]), 0x81],
    ];
    for (const [name, cmd, props, reason] of cases) {
      expect((ours(withProperties(cmd, props), 5) as { reasonCode?: number }).reasonCode, name).toBe(reason);
    }
    // CONNECT: Receive Maximum 0, Maximum Packet Size 0, Request Problem Information 2.
    for (const [name, props] of [['Receive Maximum 0', [0x21, 0, 0]], ['Maximum Packet Size 0', [0x27, 0, 0, 0, 0]], ['Request Problem Information 2', [0x17, 2]]] as const) {
      const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([5, 2, 0, 10, props.length, ...props, 0, 1, 0x63])]);
      const outcome = ours(Buffer.concat([Buffer.from([0x10, body.length]), body]), 4);
      expect((outcome as { reasonCode?: number }).reasonCode, name).toBe(0x82);
    }
  });

  it('fixed headers, packet identifiers and bodies', () => {
    const cases: Array<[string, string, number, number]> = [
      ['PUBACK with flags 0x2', '42020001', 4, 0x81],
      ['PUBREL with flags 0x0', '60020001', 4, 0x81],
      ['PUBACK without a packet identifier', '4000', 4, 0x81],
      ['PUBACK with packet identifier 0', '40020000', 5, 0x82],
      ['3.1.1 PUBACK with a reason code', '4003000100', 4, 0x81],
      ['PUBACK with a reason code not defined for it', '4003000192', 5, 0x82],
      ['PUBCOMP with bytes after its properties', '700500010000ff', 5, 0x81],
      ['PUBLISH QoS 1 with packet identifier 0', '3205000161' + '0000', 4, 0x82],
      ['PUBLISH with DUP at QoS 0', '3803000161', 4, 0x81],
      ['3.1.1 PUBLISH with an empty topic', '30020000', 4, 0x82],
      ['v5 PUBLISH with an empty topic and no alias', '3003000000', 5, 0x82],
      ['SUBSCRIBE with packet identifier 0', '8206000000016100', 4, 0x82],
      ['3.1.1 SUBSCRIBE with option bits 7-2', '820600010001610c', 4, 0x81],
      ['v5 SUBSCRIBE with No Local on a shared filter', '821400010000016100000a2473686172652f672f7804', 5, 0x82],
      ['PINGREQ with a body', 'c00100', 4, 0x81],
      ['3.1.1 DISCONNECT with a body', 'e00100', 4, 0x81],
      ['v5 DISCONNECT with a server-only reason code', 'e0018b', 5, 0x82],
      ['AUTH in 3.1.1', 'f000', 4, 0x81],
      ['CONNACK from a client', '20020000', 4, 0x82],
      ['packet type 0', '0000', 4, 0x81],
      ['a remaining length that does not match the frame', '30050001', 4, 0x81],
      ['a remaining length in five bytes', '30ffffffff01', 4, 0x81],
      ['a lone first byte', '30', 4, 0x81],
    ];
    for (const [name, hex, version, reason] of cases) {
      expect((ours(Buffer.from(hex, 'hex'), version) as { reasonCode?: number }).reasonCode, name).toBe(reason);
    }
  });
});
