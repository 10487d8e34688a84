// PUBLISH at QoS 0, 1 and 2 in both directions: acknowledgement flows, packet ids, DUP, ordering,
// redelivery on reconnect (MQTT 3.1.1 sections 2.3.1, 3.3-3.7, 4.3, 4.4, 4.6; MQTT 5.0 the same sections).
import type { IPublishPacket, IPubrecPacket, IPubackPacket, IPubcompPacket, IPubrelPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor, type Harness, type RawClient } from '../helpers/broker.js';

async function rawSubscriber(h: Harness, port: number, filter: string, qos: 0 | 1 | 2, clientId: string, options: { clean?: boolean; version?: 4 | 5; willTopic?: string } = {}): Promise<RawClient> {
  const raw = await h.raw(port, options.version ?? 4);
  await raw.connect({
    clientId,
    clean: options.clean ?? true,
    ...(options.version === 5 && options.clean === false ? { properties: { sessionExpiryInterval: 3600 } } : {}),
    ...(options.willTopic ? { will: { topic: options.willTopic, payload: Buffer.from('gone'), qos: 0, retain: false } } : {}),
  });
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] });
  await raw.next('suback');
  return raw;
}

for (const version of [4, 5] as const) {
  describe(`QoS delivery, MQTT ${version === 4 ? '3.1.1' : '5.0'}`, () => {
    const h = useHarness();
    const connect = (port: number, clientId: string) => (version === 4 ? h.v4(port, { clientId }) : h.v5(port, { clientId }));

    it('delivers at the minimum of the published QoS and the granted QoS [MQTT-3.8.4-6]', async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic('qos');
      const subs = [await connect(port, 'sub0'), await connect(port, 'sub1'), await connect(port, 'sub2')];
      for (const [qos, sub] of subs.entries()) expect(await sub.subscribe(topic, { qos: qos as 0 | 1 | 2 })).toEqual([qos]);
      const pub = await connect(port, 'pub');
      for (const qos of [0, 1, 2] as const) await pub.publish(topic, `q${qos}`, { qos });
      for (const [granted, sub] of subs.entries()) {
        const messages = await sub.waitMessages(3);
        expect(messages.map((m) => [m.text, m.qos])).toEqual([0, 1, 2].map((q) => [`q${q}`, Math.min(q, granted)]));
      }
    });

    it('keeps the order of 200 QoS 1 messages from one publisher, for QoS 0, 1 and 2 subscribers [MQTT-4.6.0-6]', async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic('order');
      const subs = [await connect(port, 'o0'), await connect(port, 'o1'), await connect(port, 'o2')];
      for (const [qos, sub] of subs.entries()) await sub.subscribe(topic, { qos: qos as 0 | 1 | 2 });
      const pub = await connect(port, 'opub');
      const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((text) => pub.publish(topic, text, { qos: 1 })));
      for (const sub of subs) {
        await sub.waitMessages(200, 20_000);
        expect(sub.texts()).toEqual(sent);
      }
    });

    it('carries a 256 KiB payload unchanged at QoS 2', async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic('big');
      const sub = await connect(port, 'bigsub');
      await sub.subscribe(topic, { qos: 2 });
      const payload = Buffer.alloc(256 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
      const pub = await connect(port, 'bigpub');
      await pub.publish(topic, payload, { qos: 2 });
      const [m] = await sub.waitMessages(1);
      expect(m!.payload.equals(payload)).toBe(true);
    });
  });
}

describe('acknowledgement flows seen on the wire', () => {
  const h = useHarness();

  it('QoS 1 from a client: PUBACK with the same packet id; QoS 0: no acknowledgement [MQTT-2.3.1-6]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'q1pub' });
    raw.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('zero'), qos: 0, dup: false, retain: false });
    raw.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('one'), qos: 1, messageId: 4242, dup: false, retain: false });
    const ack = (await raw.next('puback')) as IPubackPacket;
    expect(ack.messageId).toBe(4242);
    expect(raw.received.map((p) => p.cmd)).toEqual(['connack', 'puback']);
  });

  it('QoS 2 from a client: PUBREC, then PUBCOMP after PUBREL; a resent PUBLISH before PUBREL is not delivered twice [MQTT-4.3.3-2]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('q2in');
    const sub = await h.v4(port, { clientId: 'q2sub' });
    await sub.subscribe(topic, { qos: 2 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'q2pub' });
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('exactly once'), qos: 2, messageId: 7, dup: false, retain: false });
    expect(((await raw.next('pubrec')) as IPubrecPacket).messageId).toBe(7);
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('exactly once'), qos: 2, messageId: 7, dup: true, retain: false });
    expect(((await raw.next('pubrec')) as IPubrecPacket).messageId).toBe(7);
    raw.send({ cmd: 'pubrel', messageId: 7 });
    expect(((await raw.next('pubcomp')) as IPubcompPacket).messageId).toBe(7);
    // the id is free again: a new message with it is a new message
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('second'), qos: 2, messageId: 7, dup: false, retain: false });
    await raw.next('pubrec');
    raw.send({ cmd: 'pubrel', messageId: 7 });
    await raw.next('pubcomp');
    await sub.waitMessages(2);
    await sleep(200);
    expect(sub.texts()).toEqual(['exactly once', 'second']);
  });

  it('QoS 2 to a client: PUBLISH, then PUBREL with flags 0b0010 after PUBREC, finished by PUBCOMP [MQTT-3.6.1-1]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('q2out');
    const raw = await rawSubscriber(h, port, topic, 2, 'q2out-sub');
    const pub = await h.v4(port, { clientId: 'q2out-pub' });
    await pub.publish(topic, 'to raw', { qos: 2 });
    const p = (await raw.next('publish')) as IPublishPacket;
    expect(p.qos).toBe(2);
    expect(p.dup).toBe(false);
    expect(p.messageId).toBeGreaterThan(0);
    const before = Buffer.concat(raw.bytes).length;
    raw.send({ cmd: 'pubrec', messageId: p.messageId });
    const rel = (await raw.next('pubrel')) as IPubrelPacket;
    expect(rel.messageId).toBe(p.messageId);
    const after = Buffer.concat(raw.bytes).subarray(before);
    expect(after[0]).toBe(0x62);
    raw.send({ cmd: 'pubcomp', messageId: p.messageId });
    await sleep(200);
    expect(raw.isClosed).toBe(false);
  });

  it('a PUBREL for an unknown packet id is answered with PUBCOMP (v5: reason 0x92 packet identifier not found)', async () => {
    const { port } = await h.broker();
    const raw4 = await h.raw(port, 4);
    await raw4.connect({ clientId: 'rel4' });
    raw4.send({ cmd: 'pubrel', messageId: 321 });
    expect(((await raw4.next('pubcomp')) as IPubcompPacket).messageId).toBe(321);
    const raw5 = await h.raw(port, 5);
    await raw5.connect({ clientId: 'rel5' });
    raw5.send({ cmd: 'pubrel', messageId: 322, reasonCode: 0 });
    const comp = (await raw5.next('pubcomp')) as IPubcompPacket;
    expect([comp.messageId, comp.reasonCode]).toEqual([322, 0x92]);
  });

  it('in-flight messages to a client have distinct non-zero packet ids [MQTT-2.3.1-1, MQTT-2.3.1-2]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('ids');
    const raw = await rawSubscriber(h, port, topic, 1, 'ids-sub');
    const pub = await h.v4(port, { clientId: 'ids-pub' });
    for (let i = 0; i < 10; i++) await pub.publish(topic, `m${i}`, { qos: 1 });
    await waitFor(() => raw.peek('publish').length >= 10);
    const ids = (raw.peek('publish') as IPublishPacket[]).map((p) => p.messageId!);
    expect(ids.every((id) => id > 0 && id <= 0xffff)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the DUP flag of a forwarded message is set independently of the incoming one [MQTT-3.3.1-3]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('dup');
    const raw = await rawSubscriber(h, port, topic, 1, 'dup-sub');
    raw.autoAck = true;
    const pub = await h.raw(port);
    await pub.connect({ clientId: 'dup-pub' });
    pub.send({ cmd: 'publish', topic, payload: Buffer.from('resent by publisher'), qos: 1, messageId: 3, dup: true, retain: false });
    await pub.next('puback');
    const p = (await raw.next('publish')) as IPublishPacket;
    expect(p.dup).toBe(false);
  });
});

describe('redelivery on reconnect, in order', () => {
  const h = useHarness();

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: unacknowledged QoS 1 messages come back with DUP=1, the same ids, in the original order, before new ones [MQTT-4.4.0-1, MQTT-4.6.0-1]`, async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic('redeliver');
      const pub = version === 4 ? await h.v4(port, { clientId: 'rpub' }) : await h.v5(port, { clientId: 'rpub' });
      await pub.subscribe('gone/#', { qos: 0 });
      const sub = await rawSubscriber(h, port, topic, 1, `redeliver-${version}`, { clean: false, version, willTopic: `gone/${version}` });
      for (let i = 0; i < 5; i++) await pub.publish(topic, `m${i}`, { qos: 1 });
      await waitFor(() => sub.peek('publish').length >= 5);
      const first = sub.peek('publish') as IPublishPacket[];
      sub.destroy(); // no acknowledgements, no DISCONNECT
      await sub.waitClosed();
      // the will tells us the broker has seen the connection go: m5 is then never sent before the reconnect
      await waitFor(() => pub.messages.some((m) => m.topic === `gone/${version}`), 10_000, 'the broker to notice the lost connection');
      await pub.publish(topic, 'm5', { qos: 1 }); // published while away: first sent after the reconnect, so DUP=0 [MQTT-3.3.1-1]

      const again = await h.raw(port, version);
      const connack = await again.connect({ clientId: `redeliver-${version}`, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}) });
      expect(connack.sessionPresent).toBe(true);
      await waitFor(() => again.peek('publish').length >= 6);
      const resent = again.peek('publish') as IPublishPacket[];
      expect(resent.map((p) => p.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      expect(resent.slice(0, 5).map((p) => p.dup)).toEqual([true, true, true, true, true]);
      expect(resent.slice(0, 5).map((p) => p.messageId)).toEqual(first.map((p) => p.messageId));
      expect(resent[5]!.dup).toBe(false);
    });
  }

  it('QoS 2 to a client: after PUBREC and a lost connection, the broker resends PUBREL, not the PUBLISH [MQTT-4.4.0-1]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('pubrel');
    const sub = await rawSubscriber(h, port, topic, 2, 'pubrel-sub', { clean: false });
    const pub = await h.v4(port, { clientId: 'pubrel-pub' });
    await pub.publish(topic, 'once', { qos: 2 });
    const p = (await sub.next('publish')) as IPublishPacket;
    sub.send({ cmd: 'pubrec', messageId: p.messageId });
    await sub.next('pubrel');
    sub.destroy();
    await sub.waitClosed();

    const again = await h.raw(port);
    await again.connect({ clientId: 'pubrel-sub', clean: false });
    const rel = (await again.next('pubrel')) as IPubrelPacket;
    expect(rel.messageId).toBe(p.messageId);
    again.send({ cmd: 'pubcomp', messageId: rel.messageId });
    await sleep(300);
    expect(again.peek('publish')).toEqual([]);
  });

  it('QoS 2 from a client: a PUBLISH resent with DUP on a new connection before PUBREL is delivered once [MQTT-4.3.3-2, MQTT-4.4.0-1]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('q2dup');
    const sub = await h.v4(port, { clientId: 'q2dup-sub' });
    await sub.subscribe(topic, { qos: 2 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'q2dup-pub', clean: false });
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('only once'), qos: 2, messageId: 5, dup: false, retain: false });
    await raw.next('pubrec');
    raw.destroy(); // the client never saw the PUBREC, as far as it knows
    await raw.waitClosed();
    const again = await h.raw(port);
    await again.connect({ clientId: 'q2dup-pub', clean: false });
    again.send({ cmd: 'publish', topic, payload: Buffer.from('only once'), qos: 2, messageId: 5, dup: true, retain: false });
    expect(((await again.next('pubrec')) as IPubrecPacket).messageId).toBe(5);
    again.send({ cmd: 'pubrel', messageId: 5 });
    await again.next('pubcomp');
    await sub.publish(`${topic}`, 'after', { qos: 2 });
    await waitFor(() => sub.texts().includes('after'));
    expect(sub.texts()).toEqual(['only once', 'after']);
  });

  it('QoS 2 from a client: the PUBREL may come on a new connection of the same session', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('q2resume');
    const sub = await h.v4(port, { clientId: 'q2resume-sub' });
    await sub.subscribe(topic, { qos: 2 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'q2resume-pub', clean: false });
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('across connections'), qos: 2, messageId: 9, dup: false, retain: false });
    await raw.next('pubrec');
    raw.destroy();
    await raw.waitClosed();
    const again = await h.raw(port);
    await again.connect({ clientId: 'q2resume-pub', clean: false });
    again.send({ cmd: 'pubrel', messageId: 9 });
    expect(((await again.next('pubcomp')) as IPubcompPacket).messageId).toBe(9);
    await sub.waitMessages(1);
    await sleep(200);
    expect(sub.texts()).toEqual(['across connections']);
  });
});
