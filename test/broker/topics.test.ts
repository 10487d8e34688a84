// Topic names and filters: wildcard matching, $-topics, validation of filters, overlapping and repeated
// subscriptions, UNSUBSCRIBE semantics (MQTT 3.1.1 sections 4.7, 3.8.4, 3.10.4; MQTT 5.0 sections 4.7, 3.8.4, 3.10.4).
import type { IDisconnectPacket, ISubackPacket, IUnsubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, useHarness, waitFor } from '../helpers/broker.js';

const published = [
  'sport',
  'sport/',
  'sport/tennis/player1',
  'sport/tennis/player1/ranking',
  'sport/tennis/player1/score/wimbledon',
  '/finance',
  'finance',
  'a//b',
  '$data/x',
  '$data/monitor/Clients',
  'Accounts payable',
  'ACCOUNTS',
  'température/salle-1/°C',
];

const expectations: Record<string, string[]> = {
  'sport/tennis/player1/#': ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon'],
  'sport/#': ['sport', 'sport/', 'sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon'],
  'sport/tennis/+': ['sport/tennis/player1'],
  'sport/+': ['sport/'],
  '+': ['sport', 'finance', 'Accounts payable', 'ACCOUNTS'],
  '+/+': ['sport/', '/finance'],
  '/+': ['/finance'],
  'a/+/b': ['a//b'],
  '#': published.filter((t) => !t.startsWith('$')),
  '+/monitor/Clients': [],
  '$data/#': ['$data/x', '$data/monitor/Clients'],
  '$data/+': ['$data/x'],
  'Accounts payable': ['Accounts payable'],
  accounts: [],
  'température/+/°C': ['température/salle-1/°C'],
};

describe('topic matching [MQTT-4.7.1-1..3, MQTT-4.7.2-1, MQTT-4.7.3-4]', () => {
  const h = useHarness();

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: wildcards, empty levels, case, $-topics and UTF-8 match as the specification says`, async () => {
      const { port } = await h.broker();
      const clients = new Map<string, Awaited<ReturnType<typeof h.v4>>>();
      let n = 0;
      for (const filter of Object.keys(expectations)) {
        const c = version === 4 ? await h.v4(port, { clientId: `f${n++}` }) : await h.v5(port, { clientId: `f${n++}` });
        expect(await c.subscribe(filter, { qos: 1 })).toEqual([1]);
        await c.subscribe('zz-sentinel', { qos: 1 });
        clients.set(filter, c);
      }
      const pub = version === 4 ? await h.v4(port, { clientId: 'publisher' }) : await h.v5(port, { clientId: 'publisher' });
      for (const topic of published) await pub.publish(topic, topic, { qos: 1 });
      await pub.publish('zz-sentinel', 'zz-sentinel', { qos: 1 });
      for (const [filter, c] of clients) {
        await waitFor(() => c.texts().includes('zz-sentinel'), 10_000, `sentinel for ${filter}`);
        const got = c.messages.filter((m) => m.topic !== 'zz-sentinel').map((m) => m.topic);
        expect(got, `filter ${filter}`).toEqual(expectations[filter]);
      }
    });
  }
});

describe('topic filter validation in SUBSCRIBE', () => {
  const h = useHarness();
  const invalid = ['sport/tennis#', 'sport/#/ranking', 'sport+', '#/a', 'a/b+/c', ''];

  for (const version of [4, 5] as const) {
    for (const filter of invalid) {
      it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: "${filter}" is refused (failure in SUBACK or connection closed), never granted`, async () => {
        const { port } = await h.broker();
        const raw = await h.raw(port, version);
        await raw.connect({ clientId: 'validator' });
        raw.send({ cmd: 'subscribe', messageId: 5, subscriptions: [{ topic: 'ok/one', qos: 1 }, { topic: filter, qos: 1 }, { topic: 'ok/two', qos: 2 }] });
        await waitFor(() => raw.isClosed || raw.peek('suback').length > 0, 10_000, 'SUBACK or close');
        if (!raw.isClosed || raw.peek('suback').length > 0) {
          const suback = (await raw.next('suback')) as ISubackPacket;
          expect(suback.messageId).toBe(5);
          expect(suback.granted).toHaveLength(3); // [MQTT-3.8.4-5] one code per filter, in order
          expect(suback.granted[0]).toBe(1);
          expect(suback.granted[1] as number).toBeGreaterThanOrEqual(0x80);
          if (version === 5) expect(suback.granted[1]).toBe(0x8f);
          expect(suback.granted[2]).toBe(2);
        } else if (version === 5) {
          const d = raw.received.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
          expect(d, 'v5 should say why it closes').toBeDefined();
          expect([0x81, 0x82, 0x8f]).toContain(d!.reasonCode);
        }
      });
    }
  }
});

describe('subscriptions: overlap, repeat, unsubscribe', () => {
  const h = useHarness();

  it('3.1.1: overlapping subscriptions give one copy at the highest QoS [MQTT-3.3.5-1]', async () => {
    const { port } = await h.broker();
    const c = await h.v4(port, { clientId: 'overlap' });
    await c.subscribe('o/#', { qos: 0 });
    await c.subscribe('o/+/x', { qos: 2 });
    await c.subscribe('o/a/x', { qos: 1 });
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('o/a/x', 'once', { qos: 2 });
    await pub.publish('o/end', 'end', { qos: 0 });
    await waitFor(() => c.texts().includes('end'));
    const copies = c.messages.filter((m) => m.text === 'once');
    expect(copies.map((m) => m.qos)).toEqual([2]);
  });

  it('a repeated SUBSCRIBE for the same filter replaces the subscription (new QoS, still one copy) [MQTT-3.8.4-3]', async () => {
    const { port } = await h.broker();
    const c = await h.v4(port, { clientId: 'repeat' });
    expect(await c.subscribe('r/t', { qos: 0 })).toEqual([0]);
    expect(await c.subscribe('r/t', { qos: 2 })).toEqual([2]);
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('r/t', 'x', { qos: 2 });
    await c.waitMessages(1);
    await sleep(200);
    expect(c.messages.map((m) => m.qos)).toEqual([2]);
  });

  it('UNSUBSCRIBE removes only the identical filter, character by character [MQTT-3.10.4-1]', async () => {
    const { port } = await h.broker();
    const c = await h.v4(port, { clientId: 'unsub' });
    await c.subscribe('u/+', { qos: 1 });
    await c.unsubscribe('u/a'); // not the same filter: u/+ stays
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('u/a', 'still subscribed', { qos: 1 });
    await c.waitMessages(1);
    await c.unsubscribe('u/+');
    await pub.publish('u/a', 'gone', { qos: 1 });
    await c.subscribe('u/end', { qos: 1 });
    await pub.publish('u/end', 'end', { qos: 1 });
    await waitFor(() => c.texts().includes('end'));
    expect(c.texts()).toEqual(['still subscribed', 'end']);
  });

  it('UNSUBACK is sent even when nothing was subscribed; v5 says 0x11 (no subscription existed) [MQTT-3.10.4-5]', async () => {
    const { port } = await h.broker();
    const raw4 = await h.raw(port, 4);
    await raw4.connect({ clientId: 'u4' });
    raw4.send({ cmd: 'unsubscribe', messageId: 77, unsubscriptions: ['never/subscribed'] });
    expect(((await raw4.next('unsuback')) as IUnsubackPacket).messageId).toBe(77);
    const raw5 = await h.raw(port, 5);
    await raw5.connect({ clientId: 'u5' });
    raw5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'was/here', qos: 1 }] });
    await raw5.next('suback');
    raw5.send({ cmd: 'unsubscribe', messageId: 78, unsubscriptions: ['was/here', 'never/subscribed'] });
    const unsuback = (await raw5.next('unsuback')) as IUnsubackPacket;
    expect(unsuback.messageId).toBe(78);
    expect(unsuback.granted).toEqual([0x00, 0x11]);
  });
});
