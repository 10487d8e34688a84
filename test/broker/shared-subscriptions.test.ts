// MQTT 5.0 shared subscriptions, $share/{ShareName}/{filter} (MQTT 5.0 section 4.8.2).
import type { IDisconnectPacket, ISubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor } from '../helpers/broker.js';

describe('shared subscriptions', () => {
  const h = useHarness();

  it('each message goes to exactly one member of a group; every group gets every message', async () => {
    const { port } = await h.broker();
    const base = uniqueTopic('shared');
    const members = [];
    for (const [group, name] of [
      ['g1', 'a'],
      ['g1', 'b'],
      ['g1', 'c'],
      ['g2', 'd'],
      ['g2', 'e'],
    ]) {
      const c = await h.v5(port, { clientId: `${group}-${name}` });
      expect(await c.subscribe(`$share/${group}/${base}/+/temp`, { qos: 1 })).toEqual([1]);
      members.push({ group, c });
    }
    const pub = await h.v5(port, { clientId: 'pub' });
    const sent = Array.from({ length: 40 }, (_, i) => `m${i}`);
    for (const [i, text] of sent.entries()) await pub.publish(`${base}/s${i % 5}/temp`, text, { qos: 1 });
    for (const group of ['g1', 'g2']) {
      const inGroup = members.filter((m) => m.group === group).map((m) => m.c);
      await waitFor(() => inGroup.reduce((n, c) => n + c.messages.length, 0) >= 40, 10_000, `40 messages in ${group}`);
      await sleep(200);
      const all = inGroup.flatMap((c) => c.texts());
      expect(all.sort()).toEqual([...sent].sort());
    }
  });

  it('when a member disconnects the rest of the group gets the messages', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('leave');
    const a = await h.v5(port, { clientId: 'a' });
    const b = await h.v5(port, { clientId: 'b' });
    await a.subscribe(`$share/grp/${topic}`, { qos: 1 });
    await b.subscribe(`$share/grp/${topic}`, { qos: 1 });
    await a.end();
    const pub = await h.v5(port, { clientId: 'pub' });
    for (let i = 0; i < 10; i++) await pub.publish(topic, `m${i}`, { qos: 1 });
    await b.waitMessages(10);
    expect(b.texts()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });

  it('a QoS 1 message unacknowledged by a member whose session ends goes to another member (SHOULD, MQTT 5.0 section 4.8.2)', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('handoff');
    const a = await h.raw(port, 5);
    await a.connect({ clientId: 'member-a', properties: { sessionExpiryInterval: 0 } });
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/grp/${topic}`, qos: 1 }] });
    await a.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    // with only member a in the group, the first message must go to a
    await pub.publish(topic, 'in flight', { qos: 1 });
    await a.next('publish');
    const b = await h.v5(port, { clientId: 'member-b' });
    await b.subscribe(`$share/grp/${topic}`, { qos: 1 });
    a.destroy(); // never acknowledged; session expiry 0 ends the session
    await b.waitMessages(1, 10_000);
    expect(b.texts()).toEqual(['in flight']);
  });

  it('UNSUBSCRIBE of the shared filter stops deliveries to that member', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('unshare');
    const a = await h.v5(port, { clientId: 'a' });
    const b = await h.v5(port, { clientId: 'b' });
    await a.subscribe(`$share/grp/${topic}`, { qos: 1 });
    await b.subscribe(`$share/grp/${topic}`, { qos: 1 });
    const unsuback = (await a.unsubscribe(`$share/grp/${topic}`)) as { granted?: number[] } | undefined;
    if (unsuback?.granted) expect(unsuback.granted).toEqual([0]);
    const pub = await h.v5(port, { clientId: 'pub' });
    for (let i = 0; i < 6; i++) await pub.publish(topic, `m${i}`, { qos: 1 });
    await b.waitMessages(6);
    expect(a.messages).toEqual([]);
  });

  it('retained messages are not sent when subscribing to a shared subscription', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('sharedret');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish(topic, 'retained', { qos: 1, retain: true });
    const c = await h.v5(port, { clientId: 'c' });
    await c.subscribe(`$share/grp/${topic}`, { qos: 1 });
    await pub.publish(topic, 'live', { qos: 1 });
    await c.waitMessages(1);
    await sleep(200);
    expect(c.texts()).toEqual(['live']);
  });

  for (const filter of ['$share/gr+up/x', '$share/gro#up/x', '$share/group', '$share//x']) {
    it(`"${filter}" is refused (SUBACK 0x8F or DISCONNECT) [MQTT-4.8.2-1, MQTT-4.8.2-2]`, async () => {
      const { port } = await h.broker();
      const raw = await h.raw(port, 5);
      await raw.connect({ clientId: 'bad-share' });
      raw.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: filter, qos: 1 }] });
      await waitFor(() => raw.isClosed || raw.peek('suback').length > 0, 10_000, 'SUBACK or close');
      const suback = raw.peek('suback')[0] as ISubackPacket | undefined;
      if (suback) {
        expect(suback.granted[0]).toBe(0x8f);
      } else {
        const d = raw.received.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
        expect(d).toBeDefined();
        expect([0x82, 0x8f]).toContain(d!.reasonCode);
      }
    });
  }

  it('No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'nl-share' });
    raw.send({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: '$share/grp/x', qos: 1, nl: true }] });
    const d = (await raw.next('disconnect')) as IDisconnectPacket;
    expect(d.reasonCode).toBe(0x82);
    await raw.waitClosed();
  });
});
