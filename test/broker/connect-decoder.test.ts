// The CONNECT fast path (src/broker/connect-decoder.ts) against mqtt-packet, the parser it stands in for:
// on every CONNECT it accepts it must yield what mqtt-packet yields, and it must hand back (null)
// everything mqtt-packet rejects, so error handling stays in one place.
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { decodeSimpleConnect } from '../../src/broker/connect-decoder.js';

type Outcome = { error: string } | Record<string, unknown>;

function parseWithMqttPacket(frame: Buffer): Outcome {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let packet: Outcome | null = null;
  let error: string | null = null;
  parser.on('packet', (p: mqttPacket.Packet) => { packet = p as unknown as Record<string, unknown>; });
  parser.on('error', (e: Error) => { error = e.message; });
  parser.parse(frame);
  if (error !== null) return { error };
  if (packet === null) throw new Error(`mqtt-packet returned nothing for ${frame.toString('hex')}`);
  return packet;
}

/** The fields the CONNECT handler reads, in a comparable form. */
function handlerView(packet: Outcome): string {
  const p = packet as Record<string, unknown>;
  const will = p.will as Record<string, unknown> | undefined;
  return JSON.stringify({
    error: p.error, cmd: p.cmd, protocolVersion: p.protocolVersion, clean: p.clean, keepalive: p.keepalive, clientId: p.clientId,
    will: will && { topic: will.topic, payload: (will.payload as Buffer).toString('hex'), qos: will.qos, retain: will.retain, properties: will.properties },
    username: p.username, password: p.password === undefined ? undefined : (p.password as Buffer).toString('hex'), properties: p.properties,
  });
}

function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

describe('CONNECT fast path', () => {
  it('decodes a 3.1.1 CONNECT with will, user name and password as mqtt-packet does', () => {
    const frame = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'meter-ä1',
      will: { topic: 'status/meter', payload: Buffer.from('gone'), qos: 1, retain: true }, username: 'u', password: Buffer.from('p'),
    });
    const packet = decodeSimpleConnect(frame);
    expect(packet).not.toBeNull();
    expect(packet).toMatchObject({ cmd: 'connect', protocolVersion: 4, clean: false, keepalive: 60, clientId: 'meter-ä1', username: 'u' });
    expect(packet!.will).toMatchObject({ topic: 'status/meter', qos: 1, retain: true });
    expect(packet!.will!.payload.toString()).toBe('gone');
    expect(packet!.password!.toString()).toBe('p');
    expect(handlerView(packet as unknown as Outcome)).toBe(handlerView(parseWithMqttPacket(frame)));
  });

  it('leaves MQTT 5.0 and malformed CONNECTs to mqtt-packet', () => {
    const v5 = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'a' });
    expect(decodeSimpleConnect(v5)).toBeNull();
    const reservedBit = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 10, clientId: 'a' }));
    reservedBit[9] |= 0x01;
    expect(decodeSimpleConnect(reservedBit)).toBeNull();
    expect(parseWithMqttPacket(reservedBit)).toEqual({ error: 'Connect flag bit 0 must be 0, but got 1' });
  });

  it('agrees with mqtt-packet on 20,000 generated CONNECTs, half of them with corrupted bytes', () => {
    const random = lcg(20261126);
    let decoded = 0;
    let disagreements = 0;
    const examples: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const version = random() < 0.5 ? 4 : 3;
      const clientId = random() < 0.2 && version === 4 ? '' : `c${Math.floor(random() * 1e6)}${random() < 0.1 ? 'é' : ''}`;
      const packet: mqttPacket.IConnectPacket = {
        cmd: 'connect', protocolId: version === 4 ? 'MQTT' : 'MQIsdp', protocolVersion: version,
        clean: clientId === '' || random() < 0.5, keepalive: Math.floor(random() * 65536), clientId,
      };
      if (random() < 0.3) packet.will = { topic: `t/${i}`, payload: Buffer.from(`w${i}`), qos: Math.floor(random() * 3) as 0 | 1 | 2, retain: random() < 0.5 };
      if (random() < 0.3) packet.username = `u${i}`;
      if (random() < 0.3) {
        packet.password = Buffer.from(`p${i}`);
        packet.username ??= 'x';
      }
      const frame = Buffer.from(mqttPacket.generate(packet));
      if (random() < 0.5) {
        // Corrupt bytes after the fixed header (the framer only hands over whole packets).
        const headerLength = frame[1] < 0x80 ? 2 : 3;
        for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
          const at = headerLength + Math.floor(random() * (frame.length - headerLength));
          frame[at] = random() < 0.5 ? frame[at] ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
        }
      }
      const fast = decodeSimpleConnect(frame);
      if (fast === null) continue;
      decoded++;
      const mine = handlerView(fast as unknown as Outcome);
      const theirs = handlerView(parseWithMqttPacket(frame));
      if (mine !== theirs) {
        disagreements++;
        if (examples.length < 3) examples.push(`${frame.toString('hex')}: ${mine} vs ${theirs}`);
      }
    }
    expect(examples).toEqual([]);
    expect(disagreements).toBe(0);
    // Every uncorrupted CONNECT (about half) and some corrupted ones take the fast path.
    expect(decoded).toBeGreaterThan(10_000);
  });
});
