// Issue 8, defect 11: settable limits on what one (possibly anonymous) client can make the broker
// keep: subscriptions, retained messages, persistent sessions and how long they live.
import { describe, expect, it } from 'vitest';
import { brokerSectionSchema } from '../../src/config/gateway-config.js';
import { RawClient, captureLogger, connectV4, connectV5, uniqueTopic, useHarness, waitFor } from '../helpers/broker.js';

describe('broker limits', () => {
  const h = useHarness();

  it('subscriptions per client: past maxSubscriptionsPerClient v5 gets 0x97 and 3.1.1 0x80; re-subscribing an existing filter still works', async () => {
    const { port } = await h.broker({ maxSubscriptionsPerClient: 3 });
    const v5 = await h.raw(port, 5);
    await v5.connect({ clientId: 'subs-v5' });
    v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['a/1', 'a/2', 'a/3', 'a/4'].map((topic) => ({ topic, qos: 1 as const })) });
    const granted5 = ((await v5.next('suback')) as { granted: number[] }).granted;
    expect(granted5).toEqual([1, 1, 1, 0x97]);
    v5.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'a/2', qos: 0 }] });
    expect(((await v5.next('suback')) as { granted: number[] }).granted).toEqual([0]);
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'subs-v4' });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: ['b/1', 'b/2', 'b/3', 'b/4', 'b/5'].map((topic) => ({ topic, qos: 0 as const })) });
    const suback = (await raw.next('suback')) as { granted: number[] };
    console.log(`maxSubscriptionsPerClient 3: v5 ${JSON.stringify(granted5)}, 3.1.1 ${JSON.stringify(suback.granted)}`);
    expect(suback.granted).toEqual([0, 0, 0, 0x80, 0x80]);
  });

  it('retained messages: a new topic past maxRetainedMessages is not retained (v5 PUBACK 0x97, logged) but still delivered; replacing and clearing still work', async () => {
    const { logger, entries } = captureLogger();
    const { broker, port } = await h.broker({ logger, maxRetainedMessages: 2, sysIntervalMs: 0 });
    const pub = await h.v5(port, { clientId: 'retainer' });
    const topic = uniqueTopic('retained');
    // A live subscriber gets the refused one too: a 3.1.1 publisher would have had a plain PUBACK for it.
    const live = await h.v4(port, { clientId: 'retained-live' });
    await live.subscribe(`${topic}/3`, { qos: 1 });
    await pub.publish(`${topic}/1`, 'one', { qos: 1, retain: true });
    await pub.publish(`${topic}/2`, 'two', { qos: 1, retain: true });
    const refused = await pub.publish(`${topic}/3`, 'three', { qos: 1, retain: true }).then(() => null, (error: { code?: number }) => error);
    expect(refused?.code).toBe(0x97);
    expect(broker.retained.size).toBe(2);
    expect(entries.some((e) => /retained store full/.test(String(e.msg)))).toBe(true);
    await live.waitMessages(1);
    expect(live.messages.map((m) => m.text)).toEqual(['three']);
    await pub.publish(`${topic}/1`, 'one again', { qos: 1, retain: true });
    await pub.publish(`${topic}/2`, '', { qos: 1, retain: true });
    await pub.publish(`${topic}/3`, 'three', { qos: 1, retain: true });
    const sub = await h.v4(port, { clientId: 'retained-reader' });
    await sub.subscribe(`${topic}/#`, { qos: 1 });
    await sub.waitMessages(2);
    expect(sub.messages.map((m) => m.text).sort()).toEqual(['one again', 'three']);
  });

  it('retained bytes: a retained message that would pass maxRetainedBytes is refused', async () => {
    const { broker, port } = await h.broker({ maxRetainedBytes: 1000, sysIntervalMs: 0 });
    const pub = await h.v5(port, { clientId: 'retainer-bytes' });
    const topic = uniqueTopic('rbytes');
    await pub.publish(`${topic}/a`, Buffer.alloc(600), { qos: 1, retain: true });
    const refused = await pub.publish(`${topic}/b`, Buffer.alloc(600), { qos: 1, retain: true }).then(() => null, (error: { code?: number }) => error);
    expect(refused?.code).toBe(0x97);
    expect(broker.retained.size).toBe(1);
  });

  it('persistent sessions: a CONNECT that would create one past maxPersistentSessions is refused (v5 0x97, 3.1.1 0x03); the existing ones reconnect', async () => {
    const { port } = await h.broker({ maxPersistentSessions: 2 });
    for (const id of ['p1', 'p2']) (await connectV4(port, { clientId: id, clean: false })).mqtt.end(true);
    const v4 = await connectV4(port, { clientId: 'p3', clean: false }).catch((error: { code?: number }) => error);
    expect((v4 as { code?: number }).code).toBe(3);
    const v5 = await connectV5(port, { clientId: 'p4', clean: false, properties: { sessionExpiryInterval: 60 } }).catch((error: { code?: number }) => error);
    expect((v5 as { code?: number }).code).toBe(0x97);
    const back = await h.v4(port, { clientId: 'p1', clean: false });
    expect(back.connack.sessionPresent).toBe(true);
    const clean = await h.v4(port, { clientId: 'p5', clean: true });
    expect(clean.connack.returnCode).toBe(0);
  });

  it('session expiry: a v5 Session Expiry Interval above maxSessionExpiry is capped and the CONNACK says so; 3.1.1 gets persistentSessionExpiry', async () => {
    const { broker, port } = await h.broker({ maxSessionExpiry: 3600, persistentSessionExpiry: 120 });
    const v5 = await h.v5(port, { clientId: 'long-lived', clean: false, properties: { sessionExpiryInterval: 0xffffffff } });
    expect(v5.connack.properties?.sessionExpiryInterval).toBe(3600);
    expect(broker.sessions.get('long-lived')!.expiryInterval).toBe(3600);
    const within = await h.v5(port, { clientId: 'short-lived', clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(within.connack.properties?.sessionExpiryInterval).toBeUndefined();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'v4-persistent', clean: false });
    expect(broker.sessions.get('v4-persistent')!.expiryInterval).toBe(120);
    raw.destroy();
    await waitFor(() => broker.sessions.get('v4-persistent')?.connection === null, 5000, 'the 3.1.1 session to go offline');
  });

  it('defaults: 3.1.1 persistent sessions expire after 7 days, not never; the limits are config keys', () => {
    const defaults = brokerSectionSchema.parse({});
    expect(defaults.persistentSessionExpiry).toBe(7 * 24 * 3600);
    expect(defaults.maxSessionExpiry).toBe(7 * 24 * 3600);
    expect(defaults.maxPreConnectBytes).toBe(64 * 1024);
    expect(brokerSectionSchema.safeParse({ maxRetainedMessages: 0 }).success).toBe(false);
    expect(brokerSectionSchema.parse({ maxBufferedBytes: 65536, stalledReaderTimeoutMs: 5000 }).maxBufferedBytes).toBe(65536);
  });

  it('a client that reads nothing for stalledReaderTimeoutMs is disconnected; its persistent session keeps the QoS 1 messages', async () => {
    const { broker, port } = await h.broker({ stalledReaderTimeoutMs: 1500 });
    const raw = await RawClient.open(port);
    h.defer(() => raw.destroy());
    await raw.connect({ clientId: 'sleeper', clean: false, keepalive: 0 });
    const topic = uniqueTopic('stall');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await raw.next('suback');
    raw.socket.pause();
    const pub = await h.v4(port, { clientId: 'stall-pub' });
    const payload = Buffer.alloc(64 * 1024, 0x62);
    // Enough to fill the kernel's buffers and the broker's: the socket stops draining.
    for (let i = 0; i < 200; i++) void pub.publish(topic, payload, { qos: 1 });
    const since = Date.now();
    await waitFor(() => broker.sessions.get('sleeper')?.connection === null, 20_000, 'the non-reading client to be disconnected');
    const session = broker.sessions.get('sleeper')!;
    console.log(`non-reading client disconnected ${Date.now() - since} ms after the flood began (stalledReaderTimeoutMs 1500); its session keeps ${session.inflight.size + session.queue.length} QoS 1 messages`);
    expect(session.inflight.size + session.queue.length).toBeGreaterThan(0);
  });
});
