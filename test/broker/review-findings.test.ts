// Findings of the adversarial review of the issue 8 hardening: each over a real socket, each failed
// on main before its fix.
import mqttPacket, { type IDisconnectPacket, type IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { useHarness } from '../helpers/broker.js';

describe('review findings', () => {
  const h = useHarness();

  it('a PUBLISH too large for the client is dropped without using up a topic alias the client never learned', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'alias-small', properties: { topicAliasMaximum: 5, maximumPacketSize: 100 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'alias/t', qos: 0 }] });
    await raw.next('suback');
    const pub = await h.v4(port, { clientId: 'alias-pub' });
    await pub.publish('alias/t', Buffer.alloc(500, 0x61), { qos: 1 });
    await pub.publish('alias/t', 'small', { qos: 1 });
    const publish = (await raw.next('publish')) as IPublishPacket;
    // The client has never seen alias/t: it must come with its topic name.
    expect(publish.topic).toBe('alias/t');
    expect(publish.payload.toString()).toBe('small');
  });
});
