// The CONNECT decoder (src/broker/decode/connect.ts) against mqtt-packet, the independent decoder:
// on every CONNECT it accepts it must yield what mqtt-packet yields (the handler's view), every
// well-formed CONNECT must be accepted, and whatever mqtt-packet rejects must be rejected too.
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../../src/broker/decode/errors.js';
import { decodePacket } from '../../src/broker/packet-decoder.js';

type Outcome = { error: string } | Record<string, unknown>;

function parseWithMqttPacket(frame: Buffer, protocolVersion: number): Outcome {
  const parser = mqttPacket.parser({ protocolVersion });
  let packet: Outcome | null = null;
  let error: string | null = null;
  parser.on('packet', (p: mqttPacket.Packet) => { packet = p as unknown as Record<string, unknown>; });
  parser.on('error', (e: Error) => { error = e.message; });
  parser.parse(frame);
  if (error !== null) return { error };
  if (packet === null) return { error: 'incomplete' };
  return packet;
}

function decodeOurs(frame: Buffer): Outcome {
  try {
    return decodePacket(frame, 4) as unknown as Record<string, unknown>;
  } catch (error) {
    if (error instanceof FrameError) return { error: error.message };
    throw error;
  }
}

/** The fields the CONNECT handler reads, in a comparable form. */
function handlerView(packet: Outcome): string {
  const p = packet as Record<string, unknown>;
  const will = p.will as Record<string, unknown> | undefined;
  const plain = (o: unknown) => (o === undefined ? undefined : JSON.parse(JSON.stringify(o, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))));
  return JSON.stringify({
    cmd: p.cmd, protocolVersion: p.protocolVersion, clean: p.clean, keepalive: p.keepalive, clientId: p.clientId,
    will: will && { topic: will.topic, payload: (will.payload as Buffer).toString('hex'), qos: will.qos, retain: will.retain, properties: plain(will.properties) },
    username: p.username, password: p.password === undefined ? undefined : (p.password as Buffer).toString('hex'), properties: plain(p.properties),
  });
}

function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

describe('CONNECT decoder', () => {
  it('decodes a 3.1.1 CONNECT with will, user name and password as mqtt-packet does', () => {
    const frame = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'meter-ä1',
      will: { topic: 'status/meter', payload: Buffer.from('gone'), qos: 1, retain: true }, username: 'u', password: Buffer.from('p'),
    });
    const packet = decodePacket(frame, 4) as mqttPacket.IConnectPacket;
    expect(packet).toMatchObject({ cmd: 'connect', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'meter-ä1', username: 'u' });
    expect(packet.will).toMatchObject({ topic: 'status/meter', qos: 1, retain: true });
    expect(packet.will!.payload.toString()).toBe('gone');
    expect(packet.password!.toString()).toBe('p');
    expect(handlerView(packet as unknown as Outcome)).toBe(handlerView(parseWithMqttPacket(frame, 4)));
  });

  it('decodes a 5.0 CONNECT with properties and will properties as mqtt-packet does', () => {
    const frame = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'v5',
      properties: { sessionExpiryInterval: 300, receiveMaximum: 20, maximumPacketSize: 4096, topicAliasMaximum: 5, requestProblemInformation: false, userProperties: { a: '1', b: ['2', '3'] } },
      will: { topic: 'w/1', payload: Buffer.from('bye'), qos: 2, retain: false, properties: { willDelayInterval: 5, payloadFormatIndicator: true, contentType: 'text/plain', responseTopic: 'r/1', correlationData: Buffer.from('c'), messageExpiryInterval: 9, userProperties: { k: 'v' } } },
      username: 'user', password: Buffer.from('pw'),
    }, { protocolVersion: 5 });
    expect(handlerView(decodeOurs(frame))).toBe(handlerView(parseWithMqttPacket(frame, 5)));
  });

  it('refuses a level with the bridge bit (0x84) with CONNACK 0x01, and a wrong protocol name', () => {
    const bridge = Buffer.from('100d00044d5154548402003c000141', 'hex');
    let error: unknown;
    try { decodePacket(bridge, 4); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(FrameError);
    expect((error as FrameError).connack).toEqual({ protocolVersion: 4, code: 0x01 });
    const wrongName = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 10, clientId: 'a' }));
    wrongName.write('MQTX', 4, 'latin1');
    expect(decodeOurs(wrongName)).toHaveProperty('error');
  });

  it('agrees with mqtt-packet on 20,000 generated CONNECTs (3.1, 3.1.1, 5.0), half of them with corrupted bytes', () => {
    const random = lcg(20261126);
    let decoded = 0;
    let cleanAccepted = 0;
    let cleanTotal = 0;
    const disagreements: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const r = random();
      const version = r < 0.33 ? 3 : r < 0.66 ? 4 : 5;
      const clientId = random() < 0.2 && version !== 3 ? '' : `c${Math.floor(random() * 1e6)}${random() < 0.1 ? 'é' : ''}`;
      const packet: mqttPacket.IConnectPacket = {
        cmd: 'connect', protocolId: version === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: version,
        clean: clientId === '' || random() < 0.5, keepalive: Math.floor(random() * 65536), clientId,
      };
      if (version === 5 && random() < 0.5) packet.properties = { sessionExpiryInterval: Math.floor(random() * 1000), receiveMaximum: 1 + Math.floor(random() * 100), userProperties: { n: `${i}` } };
      if (random() < 0.3) {
        packet.will = { topic: `t/${i}`, payload: Buffer.from(`w${i}`), qos: Math.floor(random() * 3) as 0 | 1 | 2, retain: random() < 0.5 };
        if (version === 5 && random() < 0.5) packet.will.properties = { willDelayInterval: i, contentType: 'x', userProperties: { u: 'v' } };
      }
      if (random() < 0.3) packet.username = `u${i}`;
      if (random() < 0.3) {
        packet.password = Buffer.from(`p${i}`);
        packet.username ??= 'x';
      }
      const frame = Buffer.from(mqttPacket.generate(packet, { protocolVersion: version }));
      const corrupt = random() < 0.5;
      if (corrupt) {
        // Corrupt bytes after the fixed header (the framer only hands over whole packets).
        const headerLength = frame[1] < 0x80 ? 2 : 3;
        for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
          const at = headerLength + Math.floor(random() * (frame.length - headerLength));
          frame[at] = random() < 0.5 ? frame[at] ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
        }
      } else cleanTotal++;
      const ours = decodeOurs(frame);
      if ('error' in ours) continue;
      decoded++;
      if (!corrupt) cleanAccepted++;
      const theirs = parseWithMqttPacket(frame, version);
      const mine = handlerView(ours);
      // mqtt-packet reads the level from the packet; a corrupted one we accepted must agree field by field.
      if ('error' in theirs || mine !== handlerView(theirs)) {
        if (disagreements.length < 3) disagreements.push(`${frame.toString('hex')}: ${mine} vs ${JSON.stringify(theirs).slice(0, 300)}`);
      }
    }
    expect(disagreements).toEqual([]);
    expect(cleanAccepted).toBe(cleanTotal);
    expect(decoded).toBeGreaterThan(10_000);
  });
});
