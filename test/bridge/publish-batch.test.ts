// The sender's PUBLISH batch encoder, checked against an independent parser (mqtt-packet).
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { PublishBatch } from '../../src/bridge/publish-batch.js';

function parseAll(bytes: Buffer, protocolVersion: 4 | 5): mqttPacket.IPublishPacket[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: mqttPacket.IPublishPacket[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => packets.push(p as mqttPacket.IPublishPacket));
  parser.on('error', (e) => errors.push(e));
  parser.parse(bytes);
  expect(errors).toEqual([]);
  return packets;
}

describe.each([4, 5] as const)('PublishBatch (MQTT protocol level %i)', (level) => {
  it('writes QoS 1 PUBLISH packets of every remaining-length size, with DUP and RETAIN, and pre-encoded packets, in order', () => {
    const batch = new PublishBatch(level === 5);
    const sizes = [0, 1, 60, 127, 200, 16_380, 20_000, 2_100_000];
    sizes.forEach((n, i) => batch.addPublish(Buffer.from(`fleet/gw/t${i}/é`), Buffer.alloc(n, i + 1), i % 2 === 0, i % 3 === 0, 64_511 - i));
    const encoded = mqttPacket.generate({ cmd: 'publish', topic: 'x/y', payload: Buffer.from('pre'), qos: 1, messageId: 9, dup: false, retain: false }, { protocolVersion: level });
    batch.addEncoded(encoded);
    expect(batch.length).toBe(sizes.length + 1);
    const packets = parseAll(batch.toBuffer(), level);
    expect(packets).toHaveLength(sizes.length + 1);
    sizes.forEach((n, i) => {
      const p = packets[i]!;
      expect({ cmd: p.cmd, topic: p.topic, qos: p.qos, retain: p.retain, dup: p.dup, messageId: p.messageId, length: p.payload.length }).toEqual({
        cmd: 'publish',
        topic: `fleet/gw/t${i}/é`,
        qos: 1,
        retain: i % 2 === 0,
        dup: i % 3 === 0,
        messageId: 64_511 - i,
        length: n,
      });
      expect((p.payload as Buffer).equals(Buffer.alloc(n, i + 1))).toBe(true);
    });
    expect(packets[sizes.length]).toMatchObject({ topic: 'x/y', messageId: 9, payload: Buffer.from('pre') });
  });
});
