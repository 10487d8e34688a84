// The scenarios of the Eclipse Paho MQTT interoperability suite (interoperability/client_test.py for
// 3.1.1 and client_test5.py for 5.0), re-expressed with MQTT.js and raw mqtt-packet sockets against an
// in-process broker. Each test starts its own broker, so no cleanup of retained state is needed.
// Fixed waits of the original are replaced by waiting for conditions; a "nothing more arrives" check
// waits for a later sentinel message or a short quiet period.
import type { IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, useHarness, waitFor } from '../helpers/broker.js';
import { connectBytes } from '../helpers/packets.js';

const topics = ['TopicA', 'TopicA/B', 'Topic/C', 'TopicA/C', '/TopicA'] as const;
const wildtopics = ['TopicA/+', '+/C', '#', '/#', '/+', '+/+', 'TopicA/#'] as const;
const nosubscribe = 'test/nosubscribe';

const denyNosubscribe = {
  authorize: (_client: unknown, action: 'publish' | 'subscribe', topic: string) => !(action === 'subscribe' && topic === nosubscribe),
};

function ids(value: number | number[] | undefined): number[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

describe('Paho interoperability suite, MQTT 3.1.1 (client_test.py)', () => {
  const h = useHarness();

  it('basic: connect, disconnect, reconnect, QoS 0/1/2 round trip; second CONNECT and a wrong protocol name fail', async () => {
    const { port } = await h.broker(denyNosubscribe);
    const first = await h.v4(port, { clientId: 'myclientid' });
    await first.end();
    const a = await h.v4(port, { clientId: 'myclientid' });
    expect(a.connack.returnCode).toBe(0);
    expect(await a.subscribe(topics[0], { qos: 2 })).toEqual([2]);
    await a.publish(topics[0], 'qos 0', { qos: 0 });
    await a.publish(topics[0], 'qos 1', { qos: 1 });
    await a.publish(topics[0], 'qos 2', { qos: 2 });
    await a.waitMessages(3);
    await a.end();
    expect(a.texts()).toEqual(['qos 0', 'qos 1', 'qos 2']);

    // [MQTT-3.1.0-2] a second CONNECT on the same connection is a protocol violation
    const raw = await h.raw(port);
    expect((await raw.connect({ clientId: 'myclientid' })).returnCode).toBe(0);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'myclientid', keepalive: 60 });
    await raw.waitClosed();
    expect(raw.received.filter((p) => p.cmd === 'connack')).toHaveLength(1);

    // [MQTT-3.1.2-1] protocol name "hj": the connection must not be accepted
    const wrong = await h.raw(port);
    wrong.sendBytes(connectBytes({ protocolName: 'hj', level: 4, clientId: 'myclientid' }));
    await wrong.waitClosed();
    const connacks = wrong.received.filter((p) => p.cmd === 'connack') as IConnackPacket[];
    expect(connacks.every((c) => c.returnCode !== 0)).toBe(true);
  });

  it('retained messages: set at QoS 0/1/2, delivered on subscribe, cleared by empty payloads', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, { clientId: 'myclientid', clean: true });
    await a.publish(topics[1], 'qos 0', { qos: 0, retain: true });
    await a.publish(topics[2], 'qos 1', { qos: 1, retain: true });
    await a.publish(topics[3], 'qos 2', { qos: 2, retain: true });
    await sleep(100); // let the QoS 0 publish be routed before subscribing
    await a.subscribe(wildtopics[5], { qos: 2 });
    const messages = await a.waitMessages(3);
    expect(messages.every((m) => m.retain)).toBe(true);
    expect(new Map(messages.map((m) => [m.topic, m.qos]))).toEqual(
      new Map([
        [topics[1], 0],
        [topics[2], 1],
        [topics[3], 2],
      ]),
    );
    await a.end();

    const b = await h.v4(port, { clientId: 'myclientid', clean: true });
    await b.publish(topics[1], '', { qos: 0, retain: true });
    await b.publish(topics[2], '', { qos: 1, retain: true });
    await b.publish(topics[3], '', { qos: 2, retain: true });
    await sleep(100);
    await b.subscribe(wildtopics[5], { qos: 2 });
    await b.publish('TopicA/sentinel', 'sentinel', { qos: 1 });
    await b.waitMessages(1);
    await sleep(200);
    expect(b.texts()).toEqual(['sentinel']);
  });

  it('offline message queueing: a persistent session gets the QoS 1 and 2 messages published while it was away', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, { clientId: 'myclientid', clean: false });
    await a.subscribe(wildtopics[5], { qos: 2 });
    await a.end();

    const b = await h.v4(port, { clientId: 'myclientid2', clean: true });
    await b.publish(topics[1], 'qos 0', { qos: 0 });
    await b.publish(topics[2], 'qos 1', { qos: 1 });
    await b.publish(topics[3], 'qos 2', { qos: 2 });
    await b.end();

    const back = await h.v4(port, { clientId: 'myclientid', clean: false });
    expect(back.connack.sessionPresent).toBe(true);
    await back.waitMessages(2);
    await sleep(300);
    const texts = back.texts();
    expect([2, 3]).toContain(texts.length);
    expect(texts.filter((t) => t !== 'qos 0')).toEqual(['qos 1', 'qos 2']);
  });

  it('will message: published when the client goes away without DISCONNECT', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, {
      clientId: 'myclientid',
      clean: true,
      keepalive: 2,
      will: { topic: topics[2], payload: Buffer.from('client not disconnected'), qos: 0, retain: false },
    });
    const b = await h.v4(port, { clientId: 'myclientid2', clean: false });
    await b.subscribe(topics[2], { qos: 2 });
    await a.kill();
    const [will] = await b.waitMessages(1);
    expect(will.topic).toBe(topics[2]);
    expect(will.text).toBe('client not disconnected');
    await sleep(300);
    expect(b.messages).toHaveLength(1);
  });

  it('zero length clientid: rejected with cleanSession=0 (0x02), accepted with cleanSession=1', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    raw.sendBytes(connectBytes({ clientId: '', flags: 0x00 })); // mqtt-packet refuses to build this one
    const refused = (await raw.next('connack')) as IConnackPacket;
    expect(refused.returnCode).toBe(0x02); // [MQTT-3.1.3-8]
    await raw.waitClosed(); // [MQTT-3.2.2-5]
    const ok = await h.v4(port, { clientId: '', clean: true }); // [MQTT-3.1.3-6]
    expect(ok.connack.returnCode).toBe(0);
    expect(ok.connack.sessionPresent).toBe(false);
  });

  it('overlapping subscriptions: one message at the highest granted QoS', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, { clientId: 'myclientid' });
    expect(await a.subscribe({ [wildtopics[6]]: { qos: 2 }, [wildtopics[0]]: { qos: 1 } } as never)).toEqual([2, 1]);
    await a.publish(topics[3], 'overlapping topic filters', { qos: 2 });
    await a.publish('TopicA/sentinel', 'sentinel', { qos: 2 });
    await waitFor(() => a.texts().includes('sentinel'));
    const copies = a.messages.filter((m) => m.text === 'overlapping topic filters');
    // The issue requires one copy (the Paho suite also accepts one per subscription)
    expect(copies).toHaveLength(1);
    expect(copies[0]!.qos).toBe(2); // [MQTT-3.3.5-1]
  });

  it('keepalive: a silent client is disconnected after 1.5 x keepalive and its will is published', async () => {
    const { port } = await h.broker();
    const silent = await h.raw(port);
    await silent.connect({ clientId: 'myclientid', keepalive: 2, will: { topic: topics[4], payload: Buffer.from('keepalive expiry'), qos: 0, retain: false } });
    const b = await h.v4(port, { clientId: 'myclientid2', keepalive: 0 });
    await b.subscribe(topics[4], { qos: 2 });
    const started = Date.now();
    await b.waitMessages(1, 15_000);
    expect(b.texts()).toEqual(['keepalive expiry']);
    await silent.waitClosed(5_000);
    // [MQTT-3.1.2-24] closed within 1.5 x keepalive, not long before it
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(Date.now() - started).toBeLessThan(9_000);
  });

  it('redelivery on reconnect: unacknowledged QoS 1 and 2 messages are resent when the session resumes', async () => {
    const { port } = await h.broker();
    const b = await h.raw(port);
    await b.connect({ clientId: 'myclientid2', clean: false });
    b.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: wildtopics[6], qos: 2 }] });
    await b.next('suback');
    const pub = await h.v4(port, { clientId: 'publisher' });
    await pub.publish(topics[1], '', { qos: 1 });
    await pub.publish(topics[3], '', { qos: 2 });
    const first = (await b.next('publish')) as IPublishPacket;
    const second = (await b.next('publish')) as IPublishPacket;
    expect([first.topic, second.topic]).toEqual([topics[1], topics[3]]);
    b.send({ cmd: 'disconnect' }); // "paused" client: nothing acknowledged
    await b.waitClosed();

    const again = await h.raw(port);
    again.autoAck = true;
    const connack = await again.connect({ clientId: 'myclientid2', clean: false });
    expect(connack.sessionPresent).toBe(true);
    const r1 = (await again.next('publish')) as IPublishPacket;
    const r2 = (await again.next('publish')) as IPublishPacket;
    expect([r1.topic, r2.topic]).toEqual([topics[1], topics[3]]);
    expect([r1.dup, r2.dup]).toEqual([true, true]); // [MQTT-3.3.1-1]
    expect([r1.messageId, r2.messageId]).toEqual([first.messageId, second.messageId]);
  });

  it('subscribe failure: a filter the server does not allow gets 0x80 in SUBACK', async () => {
    const { port } = await h.broker(denyNosubscribe);
    const a = await h.v4(port, { clientId: 'myclientid' });
    expect(await a.subscribe(nosubscribe, { qos: 2 })).toEqual([0x80]);
  });

  it('$ topics: a filter starting with a wildcard does not match topics starting with $', async () => {
    const { port } = await h.broker();
    const b = await h.v4(port, { clientId: 'myclientid2', keepalive: 0 });
    await b.subscribe(wildtopics[5], { qos: 2 });
    await b.publish('$' + topics[1], '', { qos: 1 }); // [MQTT-4.7.2-1]
    await b.publish(topics[1], 'sentinel', { qos: 1 });
    await b.waitMessages(1);
    await sleep(200);
    expect(b.messages.map((m) => m.topic)).toEqual([topics[1]]);
  });

  it('unsubscribe: no more messages for the filter that was removed', async () => {
    const { port } = await h.broker();
    const b = await h.v4(port, { clientId: 'myclientid2' });
    await b.subscribe(topics[0], { qos: 2 });
    await b.subscribe(topics[1], { qos: 2 });
    await b.subscribe(topics[2], { qos: 2 });
    await b.unsubscribe(topics[0]);
    const a = await h.v4(port, { clientId: 'myclientid' });
    await a.publish(topics[0], 'topic 0 - unsubscribed', { qos: 1 });
    await a.publish(topics[1], 'topic 1', { qos: 1 });
    await a.publish(topics[2], 'topic 2', { qos: 1 });
    await b.waitMessages(2);
    await sleep(200);
    expect(b.texts()).toEqual(['topic 1', 'topic 2']);
  });
});

describe('Paho interoperability suite, MQTT 5.0 (client_test5.py)', () => {
  const h = useHarness();

  it('basic: QoS 0/1/2 round trip, CONNACK Success; second CONNECT and wrong protocol name fail', async () => {
    const { port } = await h.broker();
    const a0 = await h.v5(port, { clientId: 'myclientid' });
    await a0.end();
    const a = await h.v5(port, { clientId: 'myclientid' });
    expect(a.connack.reasonCode).toBe(0);
    await a.subscribe(topics[0], { qos: 2 });
    await a.publish(topics[0], 'qos 0', { qos: 0 });
    await a.publish(topics[0], 'qos 1', { qos: 1 });
    await a.publish(topics[0], 'qos 2', { qos: 2 });
    await a.waitMessages(3);
    expect(a.texts()).toEqual(['qos 0', 'qos 1', 'qos 2']);

    const raw = await h.raw(port, 5);
    expect((await raw.connect({ clientId: 'myclientid3' })).reasonCode).toBe(0);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'myclientid3', keepalive: 60 });
    await raw.waitClosed();
    const disconnect = raw.received.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
    if (disconnect) expect(disconnect.reasonCode).toBe(0x82); // [MQTT-3.1.0-2] protocol error

    const wrong = await h.raw(port, 5);
    wrong.sendBytes(connectBytes({ protocolName: 'hj', level: 5, clientId: 'myclientid4' }));
    await wrong.waitClosed();
    const connacks = wrong.received.filter((p) => p.cmd === 'connack') as IConnackPacket[];
    expect(connacks.every((c) => (c.reasonCode ?? c.returnCode ?? 0) !== 0)).toBe(true);
  });

  it('retained message: user properties are kept with the retained message', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    const properties = { userProperties: { a: '2', c: '3' } };
    await a.publish(topics[1], 'qos 0', { qos: 0, retain: true, properties });
    await a.publish(topics[2], 'qos 1', { qos: 1, retain: true, properties });
    await a.publish(topics[3], 'qos 2', { qos: 2, retain: true, properties });
    await sleep(100);
    await a.subscribe(wildtopics[5], { qos: 2 });
    const messages = await a.waitMessages(3);
    for (const m of messages) {
      expect(m.retain).toBe(true);
      expect(m.properties?.userProperties).toEqual({ a: '2', c: '3' });
    }
    expect(messages.map((m) => m.qos).sort()).toEqual([0, 1, 2]);
  });

  it('will message: published on abnormal disconnect', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, {
      clientId: 'myclientid',
      keepalive: 2,
      will: { topic: topics[2], payload: Buffer.from('client not disconnected'), qos: 0, retain: false },
    });
    const b = await h.v5(port, { clientId: 'myclientid2', clean: false });
    await b.subscribe(topics[2], { qos: 2 });
    await a.kill();
    await b.waitMessages(1);
    expect(b.texts()).toEqual(['client not disconnected']);
  });

  it('zero length clientid and assigned clientid: accepted with clean start, assigned id returned', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: '', clean: true });
    expect(c.connack.reasonCode).toBe(0);
    const assigned = c.connack.properties?.assignedClientIdentifier;
    expect(typeof assigned).toBe('string'); // [MQTT-3.2.2-16]
    expect(assigned).not.toBe('');
  });

  it('offline message queueing', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await a.subscribe(wildtopics[5], { qos: 2 });
    await a.end();
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await b.publish(topics[1], 'qos 0', { qos: 0 });
    await b.publish(topics[2], 'qos 1', { qos: 1 });
    await b.publish(topics[3], 'qos 2', { qos: 2 });
    await b.end();
    const back = await h.v5(port, { clientId: 'myclientid', clean: false, properties: { sessionExpiryInterval: 3600 } });
    expect(back.connack.sessionPresent).toBe(true);
    await back.waitMessages(2);
    await sleep(300);
    expect([2, 3]).toContain(back.messages.length);
    expect(back.texts().filter((t) => t !== 'qos 0')).toEqual(['qos 1', 'qos 2']);
  });

  it('overlapping subscriptions: one message at QoS 2, or one per subscription', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.subscribe({ [wildtopics[6]]: { qos: 2 }, [wildtopics[0]]: { qos: 1 } } as never);
    await a.publish(topics[3], 'overlapping topic filters', { qos: 2 });
    await a.publish('TopicA/sentinel', 'sentinel', { qos: 2 });
    await waitFor(() => a.texts().filter((t) => t === 'sentinel').length >= 1);
    await sleep(100);
    const qos = a.messages.filter((m) => m.text === 'overlapping topic filters').map((m) => m.qos).sort();
    expect([[2], [1, 2]]).toContainEqual(qos);
  });

  it('keepalive: will published after the keepalive expires', async () => {
    const { port } = await h.broker();
    const silent = await h.raw(port, 5);
    await silent.connect({ clientId: 'myclientid', keepalive: 2, will: { topic: topics[4], payload: Buffer.from('keepalive expiry'), qos: 0, retain: false } });
    const b = await h.v5(port, { clientId: 'myclientid2', keepalive: 0 });
    await b.subscribe(topics[4], { qos: 2 });
    await b.waitMessages(1, 15_000);
    expect(b.texts()).toEqual(['keepalive expiry']);
    await silent.waitClosed(5_000);
    const disconnect = silent.received.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
    if (disconnect) expect(disconnect.reasonCode).toBe(0x8d); // Keep Alive timeout
  });

  it('redelivery on reconnect', async () => {
    const { port } = await h.broker();
    const b = await h.raw(port, 5);
    await b.connect({ clientId: 'myclientid2', clean: false, properties: { sessionExpiryInterval: 3600 } });
    b.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: wildtopics[6], qos: 2 }] });
    await b.next('suback');
    const pub = await h.v5(port, { clientId: 'publisher' });
    await pub.publish(topics[1], '', { qos: 1 });
    await pub.publish(topics[3], '', { qos: 2 });
    await b.next('publish');
    await b.next('publish');
    b.send({ cmd: 'disconnect', reasonCode: 0 });
    await b.waitClosed();
    const again = await h.raw(port, 5);
    again.autoAck = true;
    expect((await again.connect({ clientId: 'myclientid2', clean: false, properties: { sessionExpiryInterval: 3600 } })).sessionPresent).toBe(true);
    const r1 = (await again.next('publish')) as IPublishPacket;
    const r2 = (await again.next('publish')) as IPublishPacket;
    expect([r1.topic, r2.topic]).toEqual([topics[1], topics[3]]);
    expect([r1.dup, r2.dup]).toEqual([true, true]);
  });

  it('subscribe failure: reason code 0x80 or above', async () => {
    const { port } = await h.broker(denyNosubscribe);
    const a = await h.v5(port, { clientId: 'myclientid' });
    const [code] = await a.subscribe(nosubscribe, { qos: 2 });
    expect(code).toBeGreaterThanOrEqual(0x80);
  });

  it('$ topics are not matched by a leading wildcard', async () => {
    const { port } = await h.broker();
    const b = await h.v5(port, { clientId: 'myclientid2', keepalive: 0 });
    await b.subscribe(wildtopics[5], { qos: 2 });
    await b.publish('$' + topics[1], '', { qos: 1 });
    await b.publish(topics[1], 'sentinel', { qos: 1 });
    await b.waitMessages(1);
    await sleep(200);
    expect(b.messages.map((m) => m.topic)).toEqual([topics[1]]);
  });

  it('unsubscribe', async () => {
    const { port } = await h.broker();
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await b.subscribe(topics[0], { qos: 2 });
    await b.subscribe(topics[1], { qos: 2 });
    await b.subscribe(topics[2], { qos: 2 });
    await b.unsubscribe(topics[0]);
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.publish(topics[0], 'topic 0 - unsubscribed', { qos: 1 });
    await a.publish(topics[1], 'topic 1', { qos: 1 });
    await a.publish(topics[2], 'topic 2', { qos: 1 });
    await b.waitMessages(2);
    await sleep(200);
    expect(b.texts()).toEqual(['topic 1', 'topic 2']);
  });

  it('session expiry: 0 ends the session at disconnect, N keeps it N seconds, DISCONNECT can change it', async () => {
    const { port } = await h.broker();
    const connect = async (clean: boolean, sessionExpiryInterval: number) =>
      h.v5(port, { clientId: 'myclientid', clean, properties: { sessionExpiryInterval } });

    let c = await connect(true, 0);
    expect(c.connack.sessionPresent).toBe(false);
    await c.subscribe(topics[0], { qos: 2 });
    await c.end();
    c = await connect(false, 0);
    expect(c.connack.sessionPresent).toBe(false); // [MQTT-3.1.2-23] expired at disconnect
    await c.end();

    c = await connect(true, 2);
    await c.subscribe(topics[0], { qos: 2 });
    await c.end();
    await sleep(500);
    c = await connect(false, 2);
    expect(c.connack.sessionPresent).toBe(true);
    await c.end();
    await sleep(3_500);
    c = await connect(false, 2);
    expect(c.connack.sessionPresent).toBe(false);
    await c.end();

    c = await connect(true, 1);
    await c.subscribe(topics[0], { qos: 2 });
    await c.mqtt.endAsync(false, { properties: { sessionExpiryInterval: 5 } });
    await sleep(2_000);
    c = await connect(false, 1);
    expect(c.connack.sessionPresent).toBe(true); // DISCONNECT raised it to 5 s
    await c.mqtt.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    c = await connect(false, 1);
    expect(c.connack.sessionPresent).toBe(false);
  });

  it('user properties are forwarded at QoS 0, 1 and 2', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.subscribe(topics[0], { qos: 2 });
    const properties = { userProperties: { a: '2', c: '3' } };
    for (const qos of [0, 1, 2] as const) await a.publish(topics[0], '', { qos, properties });
    const messages = await a.waitMessages(3);
    for (const m of messages) expect(m.properties?.userProperties).toEqual({ a: '2', c: '3' });
    expect(messages.map((m) => m.qos).sort()).toEqual([0, 1, 2]);
  });

  it('payload format indicator and content type are forwarded', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.subscribe(topics[0], { qos: 2 });
    const properties = { payloadFormatIndicator: true, contentType: 'My name' };
    for (const qos of [0, 1, 2] as const) await a.publish(topics[0], '', { qos, properties });
    const messages = await a.waitMessages(3);
    for (const m of messages) {
      expect(m.properties?.contentType).toBe('My name');
      expect(m.properties?.payloadFormatIndicator).toBe(true);
    }
  });

  it('publication expiry: expired queued messages are dropped, the rest carry the remaining lifetime', async () => {
    const { port } = await h.broker();
    const b = await h.v5(port, { clientId: 'myclientid2', properties: { sessionExpiryInterval: 99999 } });
    await b.subscribe(topics[0], { qos: 2 });
    await b.end();
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.publish(topics[0], 'qos 1 - expire', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await a.publish(topics[0], 'qos 2 - expire', { qos: 2, properties: { messageExpiryInterval: 1 } });
    await a.publish(topics[0], "qos 1 - don't expire", { qos: 1, properties: { messageExpiryInterval: 6 } });
    await a.publish(topics[0], "qos 2 - don't expire", { qos: 2, properties: { messageExpiryInterval: 6 } });
    await sleep(2_500);
    const back = await h.v5(port, { clientId: 'myclientid2', clean: false, properties: { sessionExpiryInterval: 99999 } });
    await back.waitMessages(2);
    await sleep(300);
    expect(back.texts()).toEqual(["qos 1 - don't expire", "qos 2 - don't expire"]);
    for (const m of back.messages) {
      // [MQTT-3.3.2-6] the forwarded interval is the received one minus the time spent waiting
      expect(m.properties?.messageExpiryInterval).toBeLessThan(6);
      expect(m.properties?.messageExpiryInterval).toBeGreaterThan(0);
    }
  });

  it('subscribe options: no local, retain as published, retain handling 0/1/2', async () => {
    const { port } = await h.broker();
    // no local [MQTT-3.8.3-3]
    const a = await h.v5(port, { clientId: 'myclientid' });
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await a.subscribe(topics[0], { qos: 2, nl: true });
    await b.subscribe(topics[0], { qos: 2, nl: true });
    await a.publish(topics[0], 'noLocal test', { qos: 1 });
    await b.waitMessages(1);
    await a.publish('sentinel', 'x', { qos: 1 }); // flush: a would have got its own message before this ack
    await sleep(200);
    expect(a.messages).toEqual([]);
    await a.end();
    await b.end();

    // retain as published
    const c = await h.v5(port, { clientId: 'myclientid' });
    await c.subscribe(topics[0], { qos: 2, rap: true });
    await c.publish(topics[0], 'retain as published false', { qos: 1, retain: false });
    await c.publish(topics[0], 'retain as published true', { qos: 1, retain: true });
    await c.waitMessages(2);
    expect(c.messages.map((m) => m.retain)).toEqual([false, true]);
    await c.end();

    // retain handling
    const d = await h.v5(port, { clientId: 'myclientid' });
    await d.publish(topics[0], '', { qos: 1, retain: true }); // clear the one from the previous step
    await d.publish(topics[1], 'qos 0', { qos: 0, retain: true });
    await d.publish(topics[2], 'qos 1', { qos: 1, retain: true });
    await d.publish(topics[3], 'qos 2', { qos: 2, retain: true });
    await sleep(100);
    await d.subscribe(wildtopics[5], { qos: 2, rh: 1 });
    await d.waitMessages(3);
    expect(d.messages.map((m) => m.qos).sort()).toEqual([0, 1, 2]);
    d.clearMessages();
    await d.subscribe(wildtopics[5], { qos: 2, rh: 1 }); // [MQTT-3.3.1-10] subscription exists: nothing sent
    await sleep(400);
    expect(d.messages).toEqual([]);
    await d.end();

    const e = await h.v5(port, { clientId: 'myclientid' });
    await e.subscribe(wildtopics[5], { qos: 2, rh: 2 }); // [MQTT-3.3.1-11]
    await sleep(400);
    expect(e.messages).toEqual([]);
    await e.subscribe(wildtopics[5], { qos: 2, rh: 2 });
    await sleep(400);
    expect(e.messages).toEqual([]);
    await e.end();

    const f = await h.v5(port, { clientId: 'myclientid' });
    await f.subscribe(wildtopics[5], { qos: 2, rh: 0 }); // [MQTT-3.3.1-9]
    await f.waitMessages(3);
    f.clearMessages();
    await f.subscribe(wildtopics[5], { qos: 2, rh: 0 });
    await f.waitMessages(3);
    expect(f.messages.map((m) => m.qos).sort()).toEqual([0, 1, 2]);
  });

  it('subscription identifiers: each delivery carries the identifiers of all matching subscriptions', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    await a.subscribe(topics[0], { qos: 2, properties: { subscriptionIdentifier: 456789 } });
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await b.subscribe(topics[0], { qos: 2, properties: { subscriptionIdentifier: 2 } });
    await b.subscribe(topics[0] + '/#', { qos: 2, properties: { subscriptionIdentifier: 3 } });
    await b.publish(topics[0], 'sub identifier test', { qos: 1 });
    await a.waitMessages(1);
    expect(ids(a.messages[0]!.properties?.subscriptionIdentifier)).toEqual([456789]);
    await b.waitMessages(1);
    await sleep(200);
    expect(b.messages).toHaveLength(1);
    expect(ids(b.messages[0]!.properties?.subscriptionIdentifier).sort()).toEqual([2, 3]); // [MQTT-3.3.4-4]
  });

  it('request / response: response topic and correlation data reach the responder', async () => {
    const { port } = await h.broker();
    const a = await h.v5(port, { clientId: 'myclientid' });
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await a.subscribe(topics[0], { qos: 2, nl: true });
    await b.subscribe(topics[0], { qos: 2, nl: true });
    await a.publish(topics[0], 'request', { qos: 1, properties: { responseTopic: topics[0], correlationData: Buffer.from('334') } });
    const [request] = await b.waitMessages(1);
    expect(request!.properties?.responseTopic).toBe(topics[0]);
    expect(Buffer.from(request!.properties!.correlationData!).toString()).toBe('334');
    await b.publish(request!.properties!.responseTopic!, 'response', { qos: 1, properties: { correlationData: request!.properties!.correlationData } });
    const [response] = await a.waitMessages(1);
    expect(response!.text).toBe('response');
    expect(Buffer.from(response!.properties!.correlationData!).toString()).toBe('334');
  });

  it('client topic alias: alias 0 is invalid; an alias is usable after it is set; aliases do not survive a reconnect', async () => {
    const { port } = await h.broker();
    const first = await h.raw(port, 5);
    await first.connect({ clientId: 'myclientid' });
    first.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from('topic alias 0'), qos: 1, messageId: 1, dup: false, retain: false, properties: { topicAlias: 0 } });
    const d0 = (await first.next('disconnect')) as IDisconnectPacket;
    expect(d0.reasonCode).toBe(0x94); // [MQTT-3.3.2-8] Topic Alias invalid
    await first.waitClosed();

    const a = await h.raw(port, 5);
    a.autoAck = true;
    const connack = await a.connect({ clientId: 'myclientid', clean: true, properties: { topicAliasMaximum: 0, sessionExpiryInterval: 99999 } });
    const max = connack.properties?.topicAliasMaximum ?? 0;
    expect(max).toBeGreaterThan(0); // the issue asks for topic aliases in both directions
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0], qos: 2 }] });
    await a.next('suback');
    a.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from('topic alias 1'), qos: 1, messageId: 2, dup: false, retain: false, properties: { topicAlias: 1 } });
    a.send({ cmd: 'publish', topic: '', payload: Buffer.from('topic alias 2'), qos: 1, messageId: 3, dup: false, retain: false, properties: { topicAlias: 1 } });
    const m1 = (await a.next('publish')) as IPublishPacket;
    const m2 = (await a.next('publish')) as IPublishPacket;
    expect([m1.topic, m2.topic]).toEqual([topics[0], topics[0]]); // client asked for no server aliases
    expect([m1.payload.toString(), m2.payload.toString()]).toEqual(['topic alias 1', 'topic alias 2']);
    a.send({ cmd: 'disconnect', reasonCode: 0 });
    await a.waitClosed();

    const back = await h.raw(port, 5);
    back.autoAck = true;
    await back.connect({ clientId: 'myclientid', clean: false, properties: { sessionExpiryInterval: 99999 } });
    back.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from('topic alias 3'), qos: 1, messageId: 1, dup: false, retain: false });
    expect(((await back.next('publish')) as IPublishPacket).payload.toString()).toBe('topic alias 3');
    back.send({ cmd: 'publish', topic: '', payload: Buffer.from('topic alias 4'), qos: 1, messageId: 2, dup: false, retain: false, properties: { topicAlias: 1 } });
    const d = (await back.next('disconnect')) as IDisconnectPacket;
    expect(d.reasonCode).toBeGreaterThanOrEqual(0x80); // alias 1 is unknown on this connection
    await back.waitClosed();
  });

  it('server topic alias: used when the client allows it, never when it does not', async () => {
    const { port } = await h.broker();
    const a = await h.raw(port, 5);
    a.autoAck = true;
    await a.connect({ clientId: 'myclientid', properties: { topicAliasMaximum: 1 } });
    a.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0], qos: 2 }] });
    await a.next('suback');
    for (const qos of [0, 1, 2] as const) {
      a.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from('topic alias 1'), qos, messageId: qos === 0 ? undefined : 10 + qos, dup: false, retain: false });
    }
    const got = [(await a.next('publish')) as IPublishPacket, (await a.next('publish')) as IPublishPacket, (await a.next('publish')) as IPublishPacket];
    const alias = got[0]!.properties?.topicAlias;
    expect(alias).toBeGreaterThan(0);
    expect(alias).toBeLessThanOrEqual(1); // [MQTT-3.3.2-9]
    expect(got[0]!.topic).toBe(topics[0]);
    expect(got.slice(1).map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      ['', alias],
      ['', alias],
    ]);
    a.send({ cmd: 'disconnect', reasonCode: 0 });

    for (const properties of [undefined, { topicAliasMaximum: 0 }]) {
      const c = await h.raw(port, 5);
      c.autoAck = true;
      await c.connect({ clientId: 'myclientid', ...(properties ? { properties } : {}) });
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0], qos: 2 }] });
      await c.next('suback');
      for (const qos of [0, 1, 2] as const) {
        c.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from('no alias'), qos, messageId: qos === 0 ? undefined : 10 + qos, dup: false, retain: false });
      }
      for (let i = 0; i < 3; i++) {
        const p = (await c.next('publish')) as IPublishPacket;
        expect(p.topic).toBe(topics[0]);
        expect(p.properties?.topicAlias).toBeUndefined(); // [MQTT-3.3.2-9]
      }
      c.send({ cmd: 'disconnect', reasonCode: 0 });
    }
  });

  it('maximum packet size: server limit enforced with 0x95; nothing bigger than the client limit is sent to it', async () => {
    const { port } = await h.broker({ maximumPacketSize: 1024 });
    const a = await h.v5(port, { clientId: 'myclientid' });
    expect(a.connack.properties?.maximumPacketSize).toBe(1024);
    a.mqtt.publish(topics[0], Buffer.alloc(1024, '.'), { qos: 0 });
    await a.waitClosed();
    expect(a.disconnect?.reasonCode).toBe(0x95); // Packet too large

    const b = await h.v5(port, { clientId: 'myclientid', properties: { maximumPacketSize: 64 } });
    await b.subscribe(topics[0], { qos: 2 });
    await b.publish(topics[0], Buffer.alloc(32, '.'), { qos: 0 });
    await b.waitMessages(1);
    await b.publish(topics[0], Buffer.alloc(64, '.'), { qos: 1 }); // [MQTT-3.1.2-25] discarded for this client
    await b.publish(topics[0], 'ok', { qos: 1 });
    await waitFor(() => b.texts().includes('ok'));
    expect(b.messages.map((m) => m.payload.length)).toEqual([32, 2]);
    expect(b.closed).toBe(false);
  });

  it('server keep alive: a keepalive above the configured maximum is answered with Server Keep Alive', async () => {
    const { port } = await h.broker({ maxKeepAlive: 60 });
    const a = await h.v5(port, { clientId: 'myclientid', keepalive: 120 });
    expect(a.connack.properties?.serverKeepAlive).toBe(60); // [MQTT-3.2.2-21]
  });

  it('flow control 1: the server sends no more unacknowledged QoS 1 messages than the client Receive Maximum', async () => {
    const { port } = await h.broker();
    const c = await h.raw(port, 5);
    await c.connect({ clientId: 'myclientid', properties: { receiveMaximum: 2, sessionExpiryInterval: 0 } });
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics[0], qos: 2 }] });
    await c.next('suback');
    for (let i = 1; i <= 3; i++) {
      c.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from(`message ${i}`), qos: 1, messageId: 100 + i, dup: false, retain: false });
    }
    for (let i = 0; i < 3; i++) await c.next('puback');
    const r1 = (await c.next('publish')) as IPublishPacket;
    const r2 = (await c.next('publish')) as IPublishPacket;
    expect([r1.qos, r2.qos]).toEqual([1, 1]);
    await sleep(700);
    expect(c.peek('publish')).toEqual([]); // [MQTT-3.3.4-9]
    c.send({ cmd: 'puback', messageId: r1.messageId });
    const r3 = (await c.next('publish')) as IPublishPacket;
    expect(r3.payload.toString()).toBe('message 3');
    c.send({ cmd: 'puback', messageId: r2.messageId });
    c.send({ cmd: 'puback', messageId: r3.messageId });
  });

  it('flow control 2: a client exceeding the server Receive Maximum is disconnected with 0x93', async () => {
    const { port } = await h.broker({ receiveMaximum: 3 });
    const c = await h.raw(port, 5);
    const connack = await c.connect({ clientId: 'myclientid' });
    const serverReceiveMaximum = connack.properties?.receiveMaximum ?? 65535;
    expect(serverReceiveMaximum).toBe(3);
    for (let i = 1; i <= serverReceiveMaximum + 1; i++) {
      // QoS 2 without PUBREL: every one stays unacknowledged
      c.send({ cmd: 'publish', topic: topics[0], payload: Buffer.from(`message ${i}`), qos: 2, messageId: i, dup: false, retain: false });
    }
    const d = (await c.next('disconnect')) as IDisconnectPacket;
    expect(d.reasonCode).toBe(0x93); // Receive Maximum exceeded
    await c.waitClosed();
  });

  it('will delay: the will is sent at the earlier of the will delay and the session end', async () => {
    const { port } = await h.broker();
    const b = await h.v5(port, { clientId: 'myclientid2' });
    await b.subscribe(topics[0], { qos: 2 });

    const measure = async (willDelayInterval: number, sessionExpiryInterval: number) => {
      b.clearMessages();
      const a = await h.v5(port, {
        clientId: 'myclientid',
        clean: true,
        properties: { sessionExpiryInterval },
        will: { topic: topics[0], payload: Buffer.from('test_will_delay will message'), qos: 0, retain: false, properties: { willDelayInterval } },
      });
      await a.kill();
      const started = Date.now();
      await b.waitMessages(1, 15_000);
      expect(b.messages[0]!.text).toBe('test_will_delay will message');
      return (Date.now() - started) / 1000;
    };

    const both = await measure(2, 4); // will delay 2 s < session expiry 4 s: after ~2 s
    expect(both).toBeGreaterThanOrEqual(1.5);
    expect(both).toBeLessThan(4.5);
    const noSession = await measure(5, 0); // session ends at once: will at once [MQTT-3.1.3-9]
    expect(noSession).toBeLessThan(1.5);
    const shortSession = await measure(5, 2); // session expiry 2 s < will delay 5 s: after ~2 s
    expect(shortSession).toBeGreaterThanOrEqual(1.5);
    expect(shortSession).toBeLessThan(4.5);
  });

  it('shared subscriptions: each message to one member of the group; ordinary subscriptions unaffected', async () => {
    const { port } = await h.broker();
    const sharedSub = '$share/sharename/client_test5/x';
    const a = await h.v5(port, { clientId: 'myclientid' });
    expect(await a.subscribe({ [sharedSub]: { qos: 2 }, [topics[0]]: { qos: 2 } } as never)).toEqual([2, 2]);
    const b = await h.v5(port, { clientId: 'myclientid2' });
    expect(await b.subscribe({ [sharedSub]: { qos: 2 }, [topics[0]]: { qos: 2 } } as never)).toEqual([2, 2]);
    await b.publish(topics[0], 'message 0', { qos: 0 });
    await a.waitMessages(1);
    await b.waitMessages(1);
    a.clearMessages();
    b.clearMessages();
    await b.publish('client_test5/x', 'shared 0', { qos: 1 });
    await waitFor(() => a.messages.length + b.messages.length >= 1);
    await sleep(300);
    expect(a.messages.length + b.messages.length).toBe(1);
  });
});

