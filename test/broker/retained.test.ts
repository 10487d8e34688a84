// Retained messages: set, replace, clear, delivery on subscribe, retain flag on forwarding, v5 retain
// handling / retain as published / expiry (MQTT 3.1.1 section 3.3.1.3; MQTT 5.0 sections 3.3.1.3, 3.8.3.1).
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor } from '../helpers/broker.js';

describe('retained messages', () => {
  const h = useHarness();

  it('a new subscriber gets the retained message with RETAIN=1; existing subscribers get it with RETAIN=0 [MQTT-3.3.1-8, MQTT-3.3.1-9]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('ret');
    const early = await h.v4(port, { clientId: 'early' });
    await early.subscribe(topic, { qos: 1 });
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(topic, 'state', { qos: 1, retain: true });
    const [live] = await early.waitMessages(1);
    expect(live!.retain).toBe(false);
    const late = await h.v4(port, { clientId: 'late' });
    await late.subscribe(topic, { qos: 1 });
    const [stored] = await late.waitMessages(1);
    expect([stored!.text, stored!.retain, stored!.qos]).toEqual(['state', true, 1]);
  });

  it('a new retained message replaces the old one; an empty payload clears it [MQTT-3.3.1-5, MQTT-3.3.1-10, MQTT-3.3.1-11]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('replace');
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(topic, 'v1', { qos: 1, retain: true });
    await pub.publish(topic, 'v2', { qos: 1, retain: true });
    const a = await h.v4(port, { clientId: 'a' });
    await a.subscribe(topic, { qos: 1 });
    await a.waitMessages(1);
    await sleep(200);
    expect(a.texts()).toEqual(['v2']);

    await pub.publish(topic, '', { qos: 1, retain: true });
    // the empty retained message is still forwarded to current subscribers as a normal message
    await waitFor(() => a.messages.length === 2);
    expect(a.messages[1]!.payload.length).toBe(0);

    const b = await h.v4(port, { clientId: 'b' });
    await b.subscribe(topic, { qos: 1 });
    await b.subscribe(`${topic}/sentinel`, { qos: 1 });
    await pub.publish(`${topic}/sentinel`, 'sentinel', { qos: 1 });
    await b.waitMessages(1);
    await sleep(200);
    expect(b.texts()).toEqual(['sentinel']);
  });

  it('a QoS 0 retained message replaces a previous retained message [MQTT-3.3.1-7]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('q0ret');
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(topic, 'old at qos 1', { qos: 1, retain: true });
    pub.mqtt.publish(topic, 'new at qos 0', { qos: 0, retain: true });
    await pub.publish(`${topic}/flush`, 'x', { qos: 1 }); // ordered after the QoS 0 one
    const c = await h.v4(port, { clientId: 'c' });
    await c.subscribe(topic, { qos: 1 });
    await c.subscribe(`${topic}/end`, { qos: 1 });
    await pub.publish(`${topic}/end`, 'end', { qos: 1 });
    await waitFor(() => c.texts().includes('end'));
    expect(c.texts()).not.toContain('old at qos 1');
  });

  it('a wildcard subscription gets every matching retained message, each at min(stored QoS, granted QoS)', async () => {
    const { port } = await h.broker();
    const base = uniqueTopic('many');
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(`${base}/a`, 'a', { qos: 0, retain: true });
    await pub.publish(`${base}/b`, 'b', { qos: 1, retain: true });
    await pub.publish(`${base}/c/d`, 'cd', { qos: 2, retain: true });
    await sleep(100);
    const c = await h.v4(port, { clientId: 'c' });
    await c.subscribe(`${base}/#`, { qos: 1 });
    await c.waitMessages(3);
    const byText = Object.fromEntries(c.messages.map((m) => [m.text, m.qos]));
    expect(byText).toEqual({ a: 0, b: 1, cd: 1 });
    expect(c.messages.every((m) => m.retain)).toBe(true);
  });

  it('3.1.1: repeating a SUBSCRIBE re-sends the matching retained messages [MQTT-3.8.4-3]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('resend');
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(topic, 'kept', { qos: 1, retain: true });
    const c = await h.v4(port, { clientId: 'c' });
    await c.subscribe(topic, { qos: 1 });
    await c.waitMessages(1);
    await c.subscribe(topic, { qos: 1 });
    await c.waitMessages(2);
    expect(c.texts()).toEqual(['kept', 'kept']);
  });

  it('a leading wildcard does not deliver retained $-topic messages [MQTT-4.7.2-1]', async () => {
    const { port } = await h.broker();
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('$app/state', 'hidden', { qos: 1, retain: true });
    await pub.publish('app/state', 'visible', { qos: 1, retain: true });
    await sleep(100);
    const c = await h.v4(port, { clientId: 'c' });
    await c.subscribe('#', { qos: 1 });
    await c.waitMessages(1);
    await sleep(300);
    expect(c.messages.filter((m) => m.topic.startsWith('$app'))).toEqual([]);
    const d = await h.v4(port, { clientId: 'd' });
    await d.subscribe('$app/#', { qos: 1 });
    const [m] = await d.waitMessages(1);
    expect(m!.text).toBe('hidden');
  });

  it('v5: retain as published keeps RETAIN=1 on live forwarding; without it RETAIN is 0 [MQTT-3.3.1-12, MQTT-3.3.1-13]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('rap');
    const rap = await h.v5(port, { clientId: 'rap' });
    await rap.subscribe(topic, { qos: 1, rap: true });
    const plain = await h.v5(port, { clientId: 'plain' });
    await plain.subscribe(topic, { qos: 1, rap: false });
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish(topic, 'r', { qos: 1, retain: true });
    await pub.publish(topic, 'n', { qos: 1, retain: false });
    await rap.waitMessages(2);
    await plain.waitMessages(2);
    expect(rap.messages.map((m) => [m.text, m.retain])).toEqual([
      ['r', true],
      ['n', false],
    ]);
    expect(plain.messages.map((m) => [m.text, m.retain])).toEqual([
      ['r', false],
      ['n', false],
    ]);
  });

  it('v5: a retained message past its message expiry is no longer delivered [MQTT-3.3.2-5]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('retexp');
    const pub = await h.v5(port, { clientId: 'pub' });
    // Connected before the publish, so only the SUBSCRIBE has to fit in the 1 s lifetime on a slow machine.
    const soon = await h.v5(port, { clientId: 'soon' });
    await pub.publish(topic, 'short-lived', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await soon.subscribe(topic, { qos: 1 });
    const [fresh] = await soon.waitMessages(1);
    expect(fresh!.properties?.messageExpiryInterval).toBeLessThanOrEqual(1);
    await sleep(2_200);
    const late = await h.v5(port, { clientId: 'late' });
    await late.subscribe(topic, { qos: 1 });
    await late.subscribe(`${topic}/end`, { qos: 1 });
    await pub.publish(`${topic}/end`, 'end', { qos: 1 });
    await waitFor(() => late.texts().includes('end'));
    expect(late.texts()).toEqual(['end']);
  });

  it('v5 retain handling 1 sends retained messages only for a new subscription; 2 never [MQTT-3.3.1-10, MQTT-3.3.1-11]', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic('rh');
    const pub = await h.v5(port, { clientId: 'pub' });
    await pub.publish(topic, 'kept', { qos: 1, retain: true });
    const c = await h.v5(port, { clientId: 'c' });
    await c.subscribe(topic, { qos: 1, rh: 1 });
    await c.waitMessages(1);
    await c.subscribe(topic, { qos: 1, rh: 1 });
    await c.subscribe(`${topic}/x`, { qos: 1, rh: 2 });
    await pub.publish(`${topic}/x`, 'retained-x', { qos: 1, retain: true });
    await waitFor(() => c.texts().includes('retained-x'));
    const d = await h.v5(port, { clientId: 'd' });
    await d.subscribe(`${topic}/x`, { qos: 1, rh: 2 });
    await d.subscribe(`${topic}/end`, { qos: 1 });
    await pub.publish(`${topic}/end`, 'end', { qos: 1 });
    await waitFor(() => d.texts().includes('end'));
    expect(c.texts()).toEqual(['kept', 'retained-x']);
    expect(d.texts()).toEqual(['end']);
  });
});
