// Will messages: when they are and are not published, their QoS/retain/properties, and the v5 will
// delay interval with session expiry (MQTT 3.1.1 section 3.1.2.5-3.1.2.7; MQTT 5.0 sections 3.1.2.5, 3.1.3.2, 3.14.2.1).
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor, type TestClient } from '../helpers/broker.js';
import { publishBytes } from '../helpers/packets.js';

/** Publishes a sentinel under the will topic (the watcher subscribes `topic/#`) and waits for it. */
async function flush(watcher: TestClient, topic: string): Promise<void> {
  await watcher.publish(`${topic}/sentinel`, 'sentinel', { qos: 1 });
  await waitFor(() => watcher.texts().includes('sentinel'));
  await sleep(300);
}

describe('will messages', () => {
  const h = useHarness();

  it('3.1.1: published with its QoS and retain flag when the connection drops [MQTT-3.1.2-8, MQTT-3.1.2-17]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('will');
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 2 });
    const dying = await h.v4(port, { clientId: 'dying', will: { topic, payload: Buffer.from('gone'), qos: 1, retain: true } });
    await dying.kill();
    const [will] = await watcher.waitMessages(1);
    expect([will!.text, will!.qos]).toEqual(['gone', 1]);
    const late = await h.v4(port, { clientId: 'late' });
    await late.subscribe(topic, { qos: 1 });
    const [kept] = await late.waitMessages(1);
    expect([kept!.text, kept!.retain]).toEqual(['gone', true]);
  });

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5.0'}: not published after a normal DISCONNECT [MQTT-3.1.2-10, MQTT-3.14.4-3]`, async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic('nowill');
      const watcher = await h.v4(port, { clientId: 'watcher' });
      await watcher.subscribe(`${topic}/#`, { qos: 1 });
      await watcher.subscribe(topic, { qos: 1 });
      const options = { clientId: 'polite', will: { topic, payload: Buffer.from('should not appear'), qos: 1 as const, retain: false } };
      const polite = version === 4 ? await h.v4(port, options) : await h.v5(port, options);
      await polite.end();
      await flush(watcher, topic);
      expect(watcher.texts()).toEqual(['sentinel']);
    });
  }

  it('published when the server closes the connection for a protocol error [MQTT-3.1.2-8]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('badwill');
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 1 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'violator', will: { topic, payload: Buffer.from('violated'), qos: 1, retain: false } });
    raw.sendBytes(publishBytes({ topic: 'a/#', qos: 0 }));
    await raw.waitClosed();
    await watcher.waitMessages(1);
    expect(watcher.texts()).toEqual(['violated']);
  });

  it('3.1.1: published when a takeover by the same client id closes the old connection [MQTT-3.1.2-8]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('takeover-will');
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 1 });
    const old = await h.v4(port, { clientId: 'twin', will: { topic, payload: Buffer.from('old connection gone'), qos: 1, retain: false } });
    await h.v4(port, { clientId: 'twin' });
    await old.waitClosed();
    await watcher.waitMessages(1);
    expect(watcher.texts()).toEqual(['old connection gone']);
  });

  it('v5: DISCONNECT with reason 0x04 (disconnect with will message) publishes the will', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('will04');
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 1 });
    const c = await h.v5(port, { clientId: 'leaver', will: { topic, payload: Buffer.from('asked for it'), qos: 1, retain: false } });
    await c.mqtt.endAsync(false, { reasonCode: 0x04 });
    await watcher.waitMessages(1);
    expect(watcher.texts()).toEqual(['asked for it']);
  });

  it('v5: will properties travel with the will message', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('willprops');
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 1 });
    const c = await h.v5(port, {
      clientId: 'propful',
      will: {
        topic,
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: false,
        properties: {
          contentType: 'application/json',
          payloadFormatIndicator: true,
          responseTopic: 'reply/here',
          correlationData: Buffer.from('c0ffee'),
          userProperties: { site: 'north' },
          messageExpiryInterval: 3600,
        },
      },
    });
    await c.kill();
    const [m] = await watcher.waitMessages(1);
    expect(m!.properties?.contentType).toBe('application/json');
    expect(m!.properties?.payloadFormatIndicator).toBe(true);
    expect(m!.properties?.responseTopic).toBe('reply/here');
    expect(Buffer.from(m!.properties!.correlationData!).toString()).toBe('c0ffee');
    expect(m!.properties?.userProperties).toEqual({ site: 'north' });
    expect(m!.properties?.messageExpiryInterval).toBeGreaterThan(3590);
    expect(m!.properties?.messageExpiryInterval).toBeLessThanOrEqual(3600);
  });

  it('v5: reconnecting within the will delay cancels the will [MQTT-3.1.3-9]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('willdelay');
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe(`${topic}/#`, { qos: 1 });
    await watcher.subscribe(topic, { qos: 1 });
    const options = {
      clientId: 'flaky',
      properties: { sessionExpiryInterval: 60 },
      will: { topic, payload: Buffer.from('too early'), qos: 1 as const, retain: false, properties: { willDelayInterval: 2 } },
    };
    const c = await h.v5(port, { ...options, clean: true });
    await c.kill();
    await sleep(500);
    const back = await h.v5(port, { clientId: 'flaky', clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(back.connack.sessionPresent).toBe(true);
    await sleep(2_500);
    await flush(watcher, topic);
    expect(watcher.texts()).toEqual(['sentinel']);
  });

  it('v5: a takeover within the will delay does not publish the old connection\u2019s will [MQTT-3.1.3-9]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('willtakeover');
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe(`${topic}/#`, { qos: 1 });
    await watcher.subscribe(topic, { qos: 1 });
    const old = await h.v5(port, {
      clientId: 'twin5',
      properties: { sessionExpiryInterval: 60 },
      will: { topic, payload: Buffer.from('not while the session lives on'), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
    });
    await h.v5(port, { clientId: 'twin5', clean: false, properties: { sessionExpiryInterval: 60 } });
    await old.waitClosed();
    await sleep(2_500);
    await flush(watcher, topic);
    expect(watcher.texts()).toEqual(['sentinel']);
  });

  it('v5: the will is published when the session ends before the will delay (DISCONNECT 0x04 not needed)', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('willexpiry');
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe(topic, { qos: 1 });
    const c = await h.v5(port, {
      clientId: 'short-session',
      properties: { sessionExpiryInterval: 1 },
      will: { topic, payload: Buffer.from('session over'), qos: 1, retain: false, properties: { willDelayInterval: 30 } },
    });
    const started = Date.now();
    await c.kill();
    await watcher.waitMessages(1, 20_000);
    // At the session's end (1 s), not at the will delay (30 s); the slack is for a loaded machine.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(watcher.texts()).toEqual(['session over']);
  });
});
