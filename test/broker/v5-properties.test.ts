// MQTT 5.0 properties and features beyond the Paho scenarios: CONNACK capabilities, subscription
// identifiers, topic alias limits, receive maximum towards the client, user properties, expiry on
// live delivery, problem information, authentication method (MQTT 5.0 sections 3.1.2.11, 3.2.2.3, 3.3.2.3, 3.8.2.1).
import type { IConnackPacket, IDisconnectPacket, IPubackPacket, IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor } from '../helpers/broker.js';

function ids(value: number | number[] | undefined): number[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

describe('MQTT 5.0 CONNACK', () => {
  const h = useHarness();

  it('announces the configured limits and does not deny features the broker has', async () => {
    const { port } = await h.broker({ receiveMaximum: 50, maximumPacketSize: 65_536, topicAliasMaximum: 7 });
    const c = await h.v5(port, { clientId: 'caps' });
    const p = c.connack.properties ?? {};
    expect(p.receiveMaximum).toBe(50);
    expect(p.maximumPacketSize).toBe(65_536);
    expect(p.topicAliasMaximum).toBe(7);
    expect(p.maximumQoS === undefined || p.maximumQoS === 2).toBe(true);
    expect(p.retainAvailable).not.toBe(false);
    expect(p.wildcardSubscriptionAvailable).not.toBe(false);
    expect(p.subscriptionIdentifiersAvailable).not.toBe(false);
    expect(p.sharedSubscriptionAvailable).not.toBe(false);
  });

  it('an unsupported authentication method is refused with 0x8C or 0x87 [MQTT-4.12.0-1]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'auth-method', keepalive: 60, properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    const connack = (await raw.next('connack')) as IConnackPacket;
    expect([0x8c, 0x87]).toContain(connack.reasonCode);
    await raw.waitClosed();
  });
});

describe('subscription identifiers', () => {
  const h = useHarness();

  it('overlapping subscriptions of one client give one message carrying every matching identifier', async () => {
    const { port } = await h.broker();
    const base = uniqueTopic('sid');
    const c = await h.v5(port, { clientId: 'sid' });
    await c.subscribe(`${base}/#`, { qos: 1, properties: { subscriptionIdentifier: 10 } });
    await c.subscribe(`${base}/+/x`, { qos: 2, properties: { subscriptionIdentifier: 20 } });
    await c.subscribe(`${base}/a/x`, { qos: 0 }); // no identifier
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish(`${base}/a/x`, 'hit', { qos: 2 });
    await pub.publish(`${base}/end`, 'end', { qos: 1 });
    await waitFor(() => c.texts().includes('end'));
    const hits = c.messages.filter((m) => m.text === 'hit');
    expect(hits).toHaveLength(1);
    expect(hits[0]!.qos).toBe(2);
    expect(ids(hits[0]!.properties?.subscriptionIdentifier).sort((a, b) => a - b)).toEqual([10, 20]);
    const end = c.messages.find((m) => m.text === 'end')!;
    expect(ids(end.properties?.subscriptionIdentifier)).toEqual([10]);
  });

  it('no identifier is sent for a subscription without one; re-subscribing replaces the identifier; retained deliveries carry it [MQTT-3.8.4-3]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('sid2');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish(topic, 'retained', { qos: 1, retain: true });
    const c = await h.v5(port, { clientId: 'sid2' });
    await c.subscribe(topic, { qos: 1 });
    const [first] = await c.waitMessages(1);
    expect(first!.properties?.subscriptionIdentifier).toBeUndefined();
    await c.subscribe(topic, { qos: 1, properties: { subscriptionIdentifier: 99 } });
    await c.waitMessages(2);
    expect(ids(c.messages[1]!.properties?.subscriptionIdentifier)).toEqual([99]);
    await pub.publish(topic, 'live', { qos: 1 });
    await c.waitMessages(3);
    expect(ids(c.messages[2]!.properties?.subscriptionIdentifier)).toEqual([99]);
  });
});

describe('topic aliases', () => {
  const h = useHarness();

  it('a client alias above the announced Topic Alias Maximum is a protocol error: DISCONNECT 0x94 [MQTT-3.3.2-10]', async () => {
    const { port } = await h.broker({ topicAliasMaximum: 2 });
    const raw = await h.raw(port, 5);
    expect((await raw.connect({ clientId: 'alias-high' })).properties?.topicAliasMaximum).toBe(2);
    raw.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, dup: false, retain: false, properties: { topicAlias: 3 } });
    const d = (await raw.next('disconnect')) as IDisconnectPacket;
    expect(d.reasonCode).toBe(0x94);
  });

  it('a client may re-map an alias to another topic [MQTT-3.3.2-12]', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'watch' });
    await c.subscribe('alias/#', { qos: 1 });
    const raw = await h.raw(port, 5);
    raw.autoAck = true;
    await raw.connect({ clientId: 'remapper' });
    const send = (topic: string, text: string, id: number) => raw.send({ cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, messageId: id, dup: false, retain: false, properties: { topicAlias: 1 } });
    send('alias/one', 'm1', 1);
    send('', 'm2', 2);
    send('alias/two', 'm3', 3);
    send('', 'm4', 4);
    await c.waitMessages(4);
    expect(c.messages.map((m) => [m.topic, m.text])).toEqual([
      ['alias/one', 'm1'],
      ['alias/one', 'm2'],
      ['alias/two', 'm3'],
      ['alias/two', 'm4'],
    ]);
  });

  it('server-to-client aliases never exceed the client Topic Alias Maximum, and every message resolves to its topic', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    raw.autoAck = true;
    await raw.connect({ clientId: 'alias-rx', properties: { topicAliasMaximum: 2 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'many/#', qos: 1 }] });
    await raw.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    const topics = ['many/a', 'many/b', 'many/c', 'many/a', 'many/c', 'many/b', 'many/a'];
    for (const t of topics) await pub.publish(t, t, { qos: 1 });
    const map = new Map<number, string>();
    const resolved: string[] = [];
    for (let i = 0; i < topics.length; i++) {
      const p = (await raw.next('publish')) as IPublishPacket;
      const alias = p.properties?.topicAlias;
      if (alias !== undefined) {
        expect(alias).toBeGreaterThanOrEqual(1);
        expect(alias).toBeLessThanOrEqual(2);
        if (p.topic !== '') map.set(alias, p.topic);
        resolved.push(p.topic !== '' ? p.topic : map.get(alias)!);
      } else {
        resolved.push(p.topic);
      }
      expect(resolved.at(-1)).toBe(p.payload.toString());
    }
    expect(resolved).toEqual(topics);
  });
});

describe('flow control towards the client', () => {
  const h = useHarness();

  it('receive maximum 1: 20 QoS 1 messages arrive one at a time, in order, each after the previous PUBACK', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'one-at-a-time', properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fc/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    for (let i = 0; i < 20; i++) await pub.publish('fc/t', `m${i}`, { qos: 1 });
    const got: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = (await raw.next('publish')) as IPublishPacket;
      expect(raw.peek('publish')).toEqual([]); // nothing else in flight
      got.push(p.payload.toString());
      raw.send({ cmd: 'puback', messageId: p.messageId });
    }
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });
});

describe('properties passed through', () => {
  const h = useHarness();

  it('user properties keep repeated keys and their order [MQTT-3.3.2-17, MQTT-3.3.2-18]', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'up' });
    await c.subscribe('up/t', { qos: 1 });
    await c.publish('up/t', 'x', { qos: 1, properties: { userProperties: { k: ['1', '2', '3'], other: 'v' } } });
    const [m] = await c.waitMessages(1);
    expect(m!.properties?.userProperties).toEqual({ k: ['1', '2', '3'], other: 'v' });
  });

  it('message expiry on live delivery is forwarded and never larger than sent [MQTT-3.3.2-6]', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'exp' });
    await c.subscribe('exp/t', { qos: 1 });
    await c.publish('exp/t', 'x', { qos: 1, properties: { messageExpiryInterval: 30 } });
    const [m] = await c.waitMessages(1);
    expect(m!.properties?.messageExpiryInterval).toBeGreaterThanOrEqual(29);
    expect(m!.properties?.messageExpiryInterval).toBeLessThanOrEqual(30);
  });

  it('3.1.1 subscribers get the payload of a v5 message without properties; v5 subscribers get properties from a 3.1.1 publisher as absent', async () => {
    const { port } = await h.broker();
    const v4 = await h.v4(port, { clientId: 'old' });
    const v5 = await h.v5(port, { clientId: 'new' });
    await v4.subscribe('mix/t', { qos: 1 });
    await v5.subscribe('mix/t', { qos: 1 });
    await v5.publish('mix/t', 'from v5', { qos: 1, properties: { contentType: 'text/plain', userProperties: { a: 'b' } } });
    await v4.publish('mix/t', 'from v4', { qos: 1 });
    await v4.waitMessages(2);
    await v5.waitMessages(2);
    expect(v4.texts()).toEqual(['from v5', 'from v4']);
    expect(v5.messages[1]!.properties?.contentType).toBeUndefined();
    expect(v5.messages[1]!.properties?.userProperties).toBeUndefined();
  });

  it('request problem information 0: no reason string on a PUBACK [MQTT-3.1.2-29]', async () => {
    const { port } = await h.broker({ authorize: (_c, action, topic) => !(action === 'publish' && topic.startsWith('deny/')) });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'quiet', properties: { requestProblemInformation: false } });
    raw.send({ cmd: 'publish', topic: 'deny/x', payload: Buffer.from('x'), qos: 1, messageId: 1, dup: false, retain: false });
    const ack = (await raw.next('puback')) as IPubackPacket;
    expect(ack.reasonCode).toBe(0x87);
    expect(ack.properties?.reasonString).toBeUndefined();
  });
});

describe('connection-scoped state and limits on a resumed session', () => {
  const h = useHarness();

  it('server topic aliases start afresh on a new connection of the same session [MQTT-3.3.2-7]', async () => {
    const { port } = await h.broker();
    const first = await h.raw(port, 5);
    first.autoAck = true;
    await first.connect({ clientId: 'alias-session', properties: { topicAliasMaximum: 5, sessionExpiryInterval: 600 } });
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'as/#', qos: 1 }] });
    await first.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish('as/t', 'one', { qos: 1 });
    await pub.publish('as/t', 'two', { qos: 1 });
    await first.next('publish');
    await first.next('publish');
    first.send({ cmd: 'disconnect', reasonCode: 0 });
    await first.waitClosed();
    await pub.publish('as/t', 'queued', { qos: 1 });

    const second = await h.raw(port, 5);
    second.autoAck = true;
    await second.connect({ clientId: 'alias-session', clean: false, properties: { topicAliasMaximum: 5, sessionExpiryInterval: 600 } });
    const queued = (await second.next('publish')) as IPublishPacket;
    expect(queued.topic).toBe('as/t'); // an alias from the old connection would leave it empty
    await pub.publish('as/t', 'live', { qos: 1 });
    const live = (await second.next('publish')) as IPublishPacket;
    const alias = queued.properties?.topicAlias;
    if (live.topic === '') expect(live.properties?.topicAlias).toBe(alias);
    else expect(live.topic).toBe('as/t');
  });

  it('queued messages respect the receive maximum and maximum packet size of the new connection', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'limits', properties: { sessionExpiryInterval: 600 } });
    await c.subscribe('lim5/t', { qos: 1 });
    await c.end();
    const pub = await h.v5(port, { clientId: 'pub' });
    for (let i = 0; i < 5; i++) await pub.publish('lim5/t', `m${i}`, { qos: 1 });
    await pub.publish('lim5/t', Buffer.alloc(500, 0x62), { qos: 1 }); // bigger than the new limit
    await pub.publish('lim5/t', 'last', { qos: 1 });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'limits', clean: false, properties: { sessionExpiryInterval: 600, receiveMaximum: 2, maximumPacketSize: 200 } });
    const got: string[] = [];
    while (got.length < 6) {
      await waitFor(() => raw.peek('publish').length > 0, 10_000, `publish #${got.length + 1}`);
      await sleep(100);
      expect(raw.peek('publish').length).toBeLessThanOrEqual(2); // [MQTT-3.3.4-9]
      const p = (await raw.next('publish')) as IPublishPacket;
      expect(p.length ?? 0).toBeLessThanOrEqual(200);
      got.push(p.payload.toString());
      raw.send({ cmd: 'puback', messageId: p.messageId });
    }
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'last']); // [MQTT-3.1.2-25] the big one is discarded
  });

  it('QoS 0 messages still flow while the QoS 1 window of the client is full [MQTT-3.3.4-9 counts QoS 1 and 2 only]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'window', properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'win/#', qos: 1 }] });
    await raw.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish('win/q1', 'held', { qos: 1 });
    await pub.publish('win/q1', 'waiting', { qos: 1 });
    await pub.publish('win/q0', 'zero', { qos: 0 });
    await waitFor(() => (raw.peek('publish') as IPublishPacket[]).some((p) => p.payload.toString() === 'zero'), 10_000, 'the QoS 0 message');
    const texts = (raw.peek('publish') as IPublishPacket[]).map((p) => p.payload.toString());
    expect(texts).toContain('held');
    expect(texts).not.toContain('waiting');
  });

  it('a message whose expiry passes while it waits for the client receive window is not delivered [MQTT-3.3.2-5]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'expiring-window', properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ew/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish('ew/t', 'first', { qos: 1 });
    await pub.publish('ew/t', 'expires', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publish('ew/t', 'stays', { qos: 1, properties: { messageExpiryInterval: 60 } });
    const first = (await raw.next('publish')) as IPublishPacket;
    await sleep(2_000);
    raw.send({ cmd: 'puback', messageId: first.messageId });
    const next = (await raw.next('publish')) as IPublishPacket;
    expect(next.payload.toString()).toBe('stays');
    expect(next.properties?.messageExpiryInterval).toBeLessThanOrEqual(59);
  });
});
