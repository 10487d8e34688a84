// Persistent sessions: subscriptions, offline queues and in-flight state survive a disconnect, a graceful
// broker restart and a kill -9 of the broker process; queue limits and their policies.
// MQTT 3.1.1 sections 3.1.2.4, 3.2.2.2, 4.1; MQTT 5.0 sections 3.1.2.11.2, 4.1.
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { captureLogger, connectV4, connectV5, sleep, startBroker, useHarness, waitFor, type TestClient } from '../helpers/broker.js';
import { spawnBroker, type ChildBroker } from '../helpers/child-broker.js';

describe('persistent sessions within one broker run', () => {
  const h = useHarness();

  it('3.1.1 cleanSession=0: subscriptions and QoS 1/2 messages wait for the client, in publish order even across QoS levels (issue 2: "in order"); session present is 1 [MQTT-3.1.2-4, MQTT-3.2.2-2]', async () => {
    const { port } = await h.broker();
    const sub = await h.v4(port, { clientId: 'keeper', clean: false });
    expect(sub.connack.sessionPresent).toBe(false);
    await sub.subscribe('keep/#', { qos: 2 });
    await sub.end();
    const pub = await h.v4(port, { clientId: 'pub' });
    for (let i = 0; i < 20; i++) await pub.publish(`keep/${i % 3}`, `m${i}`, { qos: (1 + (i % 2)) as 1 | 2 });
    const back = await h.v4(port, { clientId: 'keeper', clean: false });
    expect(back.connack.sessionPresent).toBe(true);
    await back.waitMessages(20);
    expect(back.texts()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it('queued messages of the same topic and QoS keep their order [MQTT-4.6.0-6]', async () => {
    const { port } = await h.broker();
    const sub = await h.v4(port, { clientId: 'ordered', clean: false });
    await sub.subscribe('ord/t', { qos: 2 });
    await sub.end();
    const pub = await h.v4(port, { clientId: 'pub' });
    for (let i = 0; i < 30; i++) await pub.publish('ord/t', `${i % 2 === 0 ? 'a' : 'b'}${i}`, { qos: (1 + (i % 2)) as 1 | 2 });
    const back = await h.v4(port, { clientId: 'ordered', clean: false });
    await back.waitMessages(30);
    const q1 = back.messages.filter((m) => m.qos === 1).map((m) => m.text);
    const q2 = back.messages.filter((m) => m.qos === 2).map((m) => m.text);
    expect(q1).toEqual(Array.from({ length: 15 }, (_, k) => `a${2 * k}`));
    expect(q2).toEqual(Array.from({ length: 15 }, (_, k) => `b${2 * k + 1}`));
  });

  it('3.1.1 persistent sessions end after persistentSessionExpiry', async () => {
    const { port } = await h.broker({ persistentSessionExpiry: 1 });
    const c = await h.v4(port, { clientId: 'old-style', clean: false });
    await c.subscribe('os/t', { qos: 1 });
    await c.end();
    const soon = await h.v4(port, { clientId: 'old-style', clean: false });
    expect(soon.connack.sessionPresent).toBe(true);
    await soon.end();
    await sleep(2_500);
    const late = await h.v4(port, { clientId: 'old-style', clean: false });
    expect(late.connack.sessionPresent).toBe(false);
  });

  it('cleanSession=1 discards the stored session, and it stays discarded [MQTT-3.1.2-6]', async () => {
    const { port } = await h.broker();
    const sub = await h.v4(port, { clientId: 'discard', clean: false });
    await sub.subscribe('gone/#', { qos: 1 });
    await sub.end();
    const clean = await h.v4(port, { clientId: 'discard', clean: true });
    expect(clean.connack.sessionPresent).toBe(false);
    await clean.end();
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('gone/1', 'should not be kept', { qos: 1 });
    const again = await h.v4(port, { clientId: 'discard', clean: false });
    expect(again.connack.sessionPresent).toBe(false);
    await pub.publish('gone/1', 'not subscribed either', { qos: 1 });
    await sleep(300);
    expect(again.messages).toEqual([]);
  });

  it('QoS 0 messages are queued for offline sessions only when queueQos0 is set', async () => {
    for (const queueQos0 of [false, true]) {
      const { port } = await h.broker({ queueQos0 });
      const sub = await h.v4(port, { clientId: 'q0', clean: false });
      await sub.subscribe('q0/t', { qos: 1 });
      await sub.end();
      const pub = await h.v4(port, { clientId: 'q0pub' });
      await pub.publish('q0/t', 'qos0', { qos: 0 });
      await pub.publish('q0/t', 'qos1', { qos: 1 });
      const back = await h.v4(port, { clientId: 'q0', clean: false });
      await waitFor(() => back.texts().includes('qos1'));
      await sleep(200);
      expect(back.texts()).toEqual(queueQos0 ? ['qos0', 'qos1'] : ['qos1']);
    }
  });

  it('v5: session expiry set at connect is honoured without a DISCONNECT (network drop)', async () => {
    const { port } = await h.broker();
    const sub = await h.v5(port, { clientId: 'drop5', clean: true, properties: { sessionExpiryInterval: 1 } });
    await sub.subscribe('drop5/t', { qos: 1 });
    await sub.kill();
    const early = await h.v5(port, { clientId: 'drop5', clean: false, properties: { sessionExpiryInterval: 1 } });
    expect(early.connack.sessionPresent).toBe(true);
    await early.kill();
    await sleep(2_500);
    const late = await h.v5(port, { clientId: 'drop5', clean: false, properties: { sessionExpiryInterval: 1 } });
    expect(late.connack.sessionPresent).toBe(false);
  });

  it('v5: without a Session Expiry Interval the session ends at disconnect (absent means 0) [MQTT-3.1.2-23]', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'no-se', clean: false });
    await c.subscribe('nose/t', { qos: 1 });
    await c.end();
    const back = await h.v5(port, { clientId: 'no-se', clean: false });
    expect(back.connack.sessionPresent).toBe(false);
  });

  it('v5: clean start discards queued messages of the old session [MQTT-3.1.2-4]', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'restart-clean', properties: { sessionExpiryInterval: 600 } });
    await c.subscribe('rc/t', { qos: 1 });
    await c.end();
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish('rc/t', 'stale', { qos: 1 });
    const fresh = await h.v5(port, { clientId: 'restart-clean', clean: true, properties: { sessionExpiryInterval: 600 } });
    expect(fresh.connack.sessionPresent).toBe(false);
    await fresh.subscribe('rc/t', { qos: 1 });
    await pub.publish('rc/t', 'fresh', { qos: 1 });
    await fresh.waitMessages(1);
    await sleep(200);
    expect(fresh.texts()).toEqual(['fresh']);
  });

  it('a takeover of a persistent session hands the unacknowledged deliveries to the new connection', async () => {
    const { port } = await h.broker();
    const first = await h.raw(port);
    await first.connect({ clientId: 'handover', clean: false });
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ho/t', qos: 1 }] });
    await first.next('suback');
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('ho/t', 'pending', { qos: 1 });
    await first.next('publish');
    const second = await h.raw(port);
    second.autoAck = true;
    const connack = await second.connect({ clientId: 'handover', clean: false });
    expect(connack.sessionPresent).toBe(true);
    await first.waitClosed();
    const p = (await second.next('publish')) as IPublishPacket;
    expect([p.payload.toString(), p.dup]).toEqual(['pending', true]);
  });

  it('v5: DISCONNECT may not raise a session expiry of 0 set at CONNECT: protocol error 0x82 [MQTT-3.14.2-2]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'zero-se', properties: { sessionExpiryInterval: 0 } });
    raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    await raw.waitClosed();
    const d = raw.received.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    if (d) expect(d.reasonCode).toBe(0x82);
    const c = await h.v5(port, { clientId: 'zero-se', clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(c.connack.sessionPresent).toBe(false);
  });
});

describe('queue limits per session', () => {
  const h = useHarness();

  async function fillQueue(options: Parameters<typeof h.broker>[0], count: number, payload = (i: number) => `m${i}`) {
    const started = await h.broker(options);
    const sub = await h.v4(started.port, { clientId: 'limited', clean: false });
    await sub.subscribe('lim/t', { qos: 1 });
    await sub.end();
    const pub = await h.v5(started.port, { clientId: 'limpub' });
    const outcomes: Array<'ok' | number> = [];
    for (let i = 0; i < count; i++) {
      try {
        await pub.publish('lim/t', payload(i), { qos: 1 });
        outcomes.push('ok');
      } catch (err) {
        outcomes.push((err as { code?: number }).code ?? -1);
      }
    }
    const back = await h.v4(started.port, { clientId: 'limited', clean: false });
    return { back, outcomes, port: started.port };
  }

  async function settle(client: TestClient, atLeast: number): Promise<string[]> {
    await client.waitMessages(atLeast);
    await sleep(300);
    return client.texts();
  }

  it('drop-oldest keeps the newest maxQueuedMessages, and the drop is logged with the client id', async () => {
    const { logger, entries } = captureLogger();
    const { back } = await fillQueue({ maxQueuedMessages: 3, queuePolicy: 'drop-oldest', logger }, 6);
    expect(await settle(back, 3)).toEqual(['m3', 'm4', 'm5']);
    expect(entries.some((e) => Number(e.level) >= 40 && JSON.stringify(e).includes('limited'))).toBe(true);
  });

  it('drop-newest keeps the first maxQueuedMessages', async () => {
    const { back } = await fillQueue({ maxQueuedMessages: 3, queuePolicy: 'drop-newest' }, 6);
    expect(await settle(back, 3)).toEqual(['m0', 'm1', 'm2']);
  });

  it('refuse keeps the first messages and tells a v5 publisher with PUBACK 0x97 (quota exceeded)', async () => {
    const { back, outcomes } = await fillQueue({ maxQueuedMessages: 3, queuePolicy: 'refuse' }, 6);
    expect(await settle(back, 3)).toEqual(['m0', 'm1', 'm2']);
    expect(outcomes.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
    expect(outcomes.slice(3)).toEqual([0x97, 0x97, 0x97]);
  });

  it('the limit also holds for an online client whose receive window is full (drop-oldest)', async () => {
    const { port } = await h.broker({ maxQueuedMessages: 3, queuePolicy: 'drop-oldest' });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'slow-online', properties: { receiveMaximum: 1 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'so/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await h.v5(port, { clientId: 'pub' });
    for (let i = 0; i < 10; i++) await pub.publish('so/t', `m${i}`, { qos: 1 });
    const got: string[] = [];
    while (got.length < 4) {
      const p = (await raw.next('publish')) as IPublishPacket;
      got.push(p.payload.toString());
      raw.send({ cmd: 'puback', messageId: p.messageId });
    }
    await sleep(400);
    expect(raw.peek('publish')).toEqual([]);
    expect(got).toEqual(['m0', 'm7', 'm8', 'm9']); // m0 was in flight; the queue kept the newest 3
  });

  it('maxQueuedBytes bounds the queue by size (drop-oldest)', async () => {
    const payload = (i: number) => `m${i}` + '.'.repeat(98);
    const { back } = await fillQueue({ maxQueuedBytes: 250, queuePolicy: 'drop-oldest' }, 6, payload);
    const texts = await settle(back, 1);
    expect(texts.length).toBeGreaterThanOrEqual(1);
    expect(texts.length).toBeLessThanOrEqual(2);
    expect(texts.at(-1)!.startsWith('m5')).toBe(true);
  });
});

describe('persistence across a graceful broker restart (dataDir)', () => {
  const h = useHarness();

  it('sessions, queued messages (in publish order across QoS 1 and 2, as issue 2 asks) and retained messages survive close() and start()', async () => {
    const dataDir = await h.tempDir();
    let broker = await startBroker({ dataDir });
    h.defer(() => broker.close());
    const v4 = await connectV4(broker.port, { clientId: 'durable4', clean: false });
    await v4.subscribe('persist/#', { qos: 2 });
    await v4.end();
    const v5 = await connectV5(broker.port, { clientId: 'durable5', clean: true, properties: { sessionExpiryInterval: 3600 } });
    await v5.subscribe('persist/#', { qos: 1 });
    await v5.end();
    const pub = await connectV4(broker.port, { clientId: 'pub' });
    await pub.publish('persist/a', 'before-1', { qos: 1 });
    await pub.publish('persist/b', 'before-2', { qos: 2 });
    await pub.publish('retained/x', 'kept', { qos: 1, retain: true });
    await pub.end();
    await broker.close();

    broker = await startBroker({ dataDir });
    const pubWhileAway = await connectV5(broker.port, { clientId: 'pub2' });
    await pubWhileAway.publish('persist/c', 'after-restart', { qos: 1 });
    await pubWhileAway.end();

    const back4 = await connectV4(broker.port, { clientId: 'durable4', clean: false });
    h.defer(() => back4.mqtt.end(true));
    expect(back4.connack.sessionPresent).toBe(true);
    await back4.waitMessages(3);
    expect(back4.texts()).toEqual(['before-1', 'before-2', 'after-restart']);

    const back5 = await connectV5(broker.port, { clientId: 'durable5', clean: false, properties: { sessionExpiryInterval: 3600 } });
    h.defer(() => back5.mqtt.end(true));
    expect(back5.connack.sessionPresent).toBe(true);
    await back5.waitMessages(3);
    expect(back5.texts()).toEqual(['before-1', 'before-2', 'after-restart']);

    const fresh = await connectV4(broker.port, { clientId: 'fresh' });
    h.defer(() => fresh.mqtt.end(true));
    await fresh.subscribe('retained/#', { qos: 1 });
    const [retained] = await fresh.waitMessages(1);
    expect([retained!.text, retained!.retain]).toEqual(['kept', true]);
  });

  it('an unacknowledged QoS 1 delivery is redelivered with DUP after a restart', async () => {
    const dataDir = await h.tempDir();
    let broker = await startBroker({ dataDir });
    h.defer(() => broker.close());
    const raw = await h.raw(broker.port);
    await raw.connect({ clientId: 'inflight', clean: false });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'inf/t', qos: 1 }] });
    await raw.next('suback');
    const pub = await connectV4(broker.port, { clientId: 'pub' });
    await pub.publish('inf/t', 'unacked', { qos: 1 });
    const first = (await raw.next('publish')) as IPublishPacket;
    await pub.end();
    await broker.close();
    await raw.waitClosed();

    broker = await startBroker({ dataDir });
    const again = await h.raw(broker.port);
    expect((await again.connect({ clientId: 'inflight', clean: false })).sessionPresent).toBe(true);
    const resent = (await again.next('publish')) as IPublishPacket;
    expect(resent.payload.toString()).toBe('unacked');
    expect(resent.dup).toBe(true);
    expect(resent.messageId).toBe(first.messageId);
  });

  it('v5 subscription options and identifiers, retained properties and queued message expiry survive a restart', async () => {
    const dataDir = await h.tempDir();
    let broker = await startBroker({ dataDir });
    h.defer(() => broker.close());
    const c = await connectV5(broker.port, { clientId: 'opts', properties: { sessionExpiryInterval: 3600 } });
    await c.subscribe('opt/t', { qos: 1, nl: true, rap: true, properties: { subscriptionIdentifier: 77 } });
    await c.end();
    const pub = await connectV5(broker.port, { clientId: 'pub' });
    await pub.publish('opt/t', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publish('opt/t', 'long', { qos: 1, retain: true, properties: { messageExpiryInterval: 600, contentType: 'text/plain', userProperties: { k: 'v' } } });
    await pub.end();
    await broker.close();
    await sleep(1_500);

    broker = await startBroker({ dataDir });
    const back = await connectV5(broker.port, { clientId: 'opts', clean: false, properties: { sessionExpiryInterval: 3600 } });
    h.defer(() => back.mqtt.end(true));
    expect(back.connack.sessionPresent).toBe(true);
    await back.waitMessages(1);
    await sleep(300);
    expect(back.texts()).toEqual(['long']); // 'short' expired while the broker was down
    const m = back.messages[0]!;
    expect(m.properties?.subscriptionIdentifier === 77 || (Array.isArray(m.properties?.subscriptionIdentifier) && m.properties?.subscriptionIdentifier.includes(77))).toBe(true);
    expect(m.retain).toBe(true); // retain as published survived
    expect(m.properties?.messageExpiryInterval).toBeLessThan(600);
    // no local survived: its own publish does not come back
    await back.publish('opt/t', 'own', { qos: 1 });
    const other = await connectV5(broker.port, { clientId: 'other' });
    h.defer(() => other.mqtt.end(true));
    await other.subscribe('opt/#', { qos: 1 });
    await other.waitMessages(1); // the retained one
    const [retained] = other.messages;
    expect(retained!.properties?.contentType).toBe('text/plain');
    expect(retained!.properties?.userProperties).toEqual({ k: 'v' });
    await sleep(200);
    expect(back.texts()).toEqual(['long']);
  });

  it('v5 session expiry still counts across a restart', async () => {
    const dataDir = await h.tempDir();
    let broker = await startBroker({ dataDir });
    h.defer(() => broker.close());
    const c = await connectV5(broker.port, { clientId: 'expiring', properties: { sessionExpiryInterval: 1 } });
    await c.subscribe('exp/t', { qos: 1 });
    await c.end();
    await broker.close();
    await sleep(2_000);
    broker = await startBroker({ dataDir });
    const back = await connectV5(broker.port, { clientId: 'expiring', clean: false, properties: { sessionExpiryInterval: 1 } });
    h.defer(() => back.mqtt.end(true));
    expect(back.connack.sessionPresent).toBe(false);
  });
});

describe('persistence across kill -9 of the broker process', () => {
  const h = useHarness();

  async function spawn(dataDir: string, options: Record<string, unknown> = {}): Promise<ChildBroker> {
    const child = await spawnBroker(dataDir, options);
    h.defer(() => child.kill9());
    return child;
  }

  for (const options of [{}, { commitWindowMs: 50 }]) {
    it(`every QoS 1 message acknowledged before kill -9 reaches the persistent subscriber after restart, in order (${JSON.stringify(options)})`, { timeout: 90_000 }, async () => {
      const dataDir = await h.tempDir();
      const first = await spawn(dataDir, options);
      const sub = await h.v4(first.port, { clientId: 'k9-sub', clean: false });
      await sub.subscribe('k9/#', { qos: 1 });
      await sub.end();
      const sub5 = await h.v5(first.port, { clientId: 'k9-sub5', clean: true, properties: { sessionExpiryInterval: 3600 } });
      await sub5.subscribe('k9/#', { qos: 2 });
      await sub5.end();

      const pub = await h.v4(first.port, { clientId: 'k9-pub' });
      const acked: string[] = [];
      // concurrent publishes exercise group commit; order on the wire is the publish order
      const sent = Array.from({ length: 300 }, (_, i) => `m${String(i).padStart(3, '0')}`);
      await Promise.all(
        sent.map((text, i) =>
          pub.publish(`k9/${i % 4}`, text, { qos: 1 }).then(() => {
            acked.push(text);
          }),
        ),
      );
      expect(acked).toHaveLength(300);
      await first.kill9(); // no goodbye: whatever was acknowledged must already be on disk

      const second = await spawn(dataDir, options);
      const back = await h.v4(second.port, { clientId: 'k9-sub', clean: false });
      expect(back.connack.sessionPresent).toBe(true);
      await back.waitMessages(300, 30_000);
      expect(back.texts()).toEqual(sent);
      const back5 = await h.v5(second.port, { clientId: 'k9-sub5', clean: false, properties: { sessionExpiryInterval: 3600 } });
      expect(back5.connack.sessionPresent).toBe(true);
      await back5.waitMessages(300, 30_000);
      expect(back5.texts()).toEqual(sent);
    });
  }

  it('QoS 2 messages whose flow completed before kill -9 all reach the persistent subscriber, once each, in order', { timeout: 90_000 }, async () => {
    const dataDir = await h.tempDir();
    const first = await spawn(dataDir);
    const sub = await h.v5(first.port, { clientId: 'k9-q2sub', properties: { sessionExpiryInterval: 3600 } });
    await sub.subscribe('k9q2s/#', { qos: 2 });
    await sub.end();
    const pub = await h.v5(first.port, { clientId: 'k9-q2pub' });
    const sent = Array.from({ length: 100 }, (_, i) => `q2-${i}`);
    await Promise.all(sent.map((text) => pub.publish('k9q2s/t', text, { qos: 2 })));
    await first.kill9();
    const second = await spawn(dataDir);
    const back = await h.v5(second.port, { clientId: 'k9-q2sub', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await back.waitMessages(100, 30_000);
    await sleep(300);
    expect(back.texts()).toEqual(sent);
  });

  it('a retained message acknowledged before kill -9 is still retained after restart', { timeout: 60_000 }, async () => {
    const dataDir = await h.tempDir();
    const first = await spawn(dataDir);
    const pub = await h.v4(first.port, { clientId: 'k9-ret' });
    await pub.publish('k9r/state', 'on', { qos: 1, retain: true });
    await first.kill9();
    const second = await spawn(dataDir);
    const sub = await h.v4(second.port, { clientId: 'k9-ret-sub' });
    await sub.subscribe('k9r/#', { qos: 1 });
    const [m] = await sub.waitMessages(1);
    expect([m!.text, m!.retain]).toEqual(['on', true]);
  });

  it('a QoS 2 message whose PUBREC the subscriber sent before kill -9 is completed with PUBREL after restart', { timeout: 60_000 }, async () => {
    const dataDir = await h.tempDir();
    const first = await spawn(dataDir);
    const raw = await h.raw(first.port);
    await raw.connect({ clientId: 'k9-q2', clean: false });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'k9q2/t', qos: 2 }] });
    await raw.next('suback');
    const pub = await h.v4(first.port, { clientId: 'k9-q2-pub' });
    await pub.publish('k9q2/t', 'exactly once', { qos: 2 });
    const p = (await raw.next('publish')) as IPublishPacket;
    raw.send({ cmd: 'pubrec', messageId: p.messageId });
    await raw.next('pubrel');
    await sleep(200); // let the broker record the PUBREC
    await first.kill9();
    await raw.waitClosed();

    const second = await spawn(dataDir);
    const again = await h.raw(second.port);
    await again.connect({ clientId: 'k9-q2', clean: false });
    const rel = await again.next('pubrel');
    expect((rel as { messageId?: number }).messageId).toBe(p.messageId);
    again.send({ cmd: 'pubcomp', messageId: p.messageId });
    await sleep(300);
    expect(again.peek('publish')).toEqual([]);
  });
});
