// The denial hook (authorize) for subscribe/publish and the authenticate hook on CONNECT.
// 3.1.1: SUBACK 0x80 [MQTT-3.9.3-2]; a denied PUBLISH is acknowledged normally or the connection closed [MQTT-3.3.5-2].
// 5.0: SUBACK reason >= 0x80, PUBACK/PUBREC 0x87; CONNACK 0x86 for bad credentials.
import type { IPubackPacket, IPubrecPacket, ISubackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import type { ClientIdentity } from '../../src/broker/types.js';
import { sleep, useHarness, waitFor } from '../helpers/broker.js';

const denySecret = (_client: ClientIdentity, _action: 'publish' | 'subscribe', topic: string) => !topic.startsWith('secret');

describe('authorize: subscriptions', () => {
  const h = useHarness();

  it('3.1.1: a denied filter gets 0x80 in SUBACK, the other filters of the same SUBSCRIBE are granted', async () => {
    const { port } = await h.broker({ authorize: denySecret });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'mixed' });
    raw.send({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'open/a', qos: 1 }, { topic: 'secret/#', qos: 1 }, { topic: 'open/b', qos: 2 }] });
    const suback = (await raw.next('suback')) as ISubackPacket;
    expect(suback.granted).toEqual([1, 0x80, 2]);
  });

  it('5.0: a denied filter gets a reason code of 0x80 or above (0x87 not authorized expected)', async () => {
    const { port } = await h.broker({ authorize: denySecret });
    const c = await h.v5(port, { clientId: 'v5sub' });
    const codes = await c.subscribe({ 'open/a': { qos: 1 }, 'secret/x': { qos: 1 } } as never);
    expect(codes[0]).toBe(1);
    expect(codes[1]).toBeGreaterThanOrEqual(0x80);
    expect(codes[1]).toBe(0x87);
  });

  it('a denied subscription receives neither live nor retained messages', async () => {
    const { port } = await h.broker({ authorize: (_c, action, topic) => !(action === 'subscribe' && topic === 'guarded/#') });
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish('guarded/state', 'retained', { qos: 1, retain: true });
    const c = await h.v4(port, { clientId: 'denied' });
    expect(await c.subscribe('guarded/#', { qos: 1 })).toEqual([0x80]);
    await c.subscribe('guarded/end', { qos: 1 });
    await pub.publish('guarded/live', 'live', { qos: 1 });
    await pub.publish('guarded/end', 'end', { qos: 1 });
    await waitFor(() => c.texts().includes('end'));
    expect(c.texts()).toEqual(['end']);
  });
});

describe('authorize: publishes', () => {
  const h = useHarness();

  it('3.1.1: a denied PUBLISH reaches nobody; the publisher gets a normal PUBACK or is disconnected [MQTT-3.3.5-2]', async () => {
    const { port } = await h.broker({ authorize: denySecret });
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe('#', { qos: 1 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'sneaky' });
    raw.send({ cmd: 'publish', topic: 'secret/plans', payload: Buffer.from('leak'), qos: 1, messageId: 5, dup: false, retain: true });
    await waitFor(() => raw.isClosed || raw.peek('puback').length > 0, 10_000, 'PUBACK or close');
    if (!raw.isClosed) expect(((await raw.next('puback')) as IPubackPacket).messageId).toBe(5);
    await watcher.publish('open/end', 'end', { qos: 1 });
    await waitFor(() => watcher.texts().includes('end'));
    expect(watcher.texts()).toEqual(['end']);
  });

  it('a denied retained PUBLISH does not replace the retained message', async () => {
    const { port } = await h.broker({ authorize: (c, action, topic) => !(action === 'publish' && topic === 'state/x' && c.clientId === 'intruder') });
    const owner = await h.v4(port, { clientId: 'owner' });
    await owner.publish('state/x', 'genuine', { qos: 1, retain: true });
    const intruder = await h.raw(port);
    await intruder.connect({ clientId: 'intruder' });
    intruder.send({ cmd: 'publish', topic: 'state/x', payload: Buffer.from('forged'), qos: 1, messageId: 1, dup: false, retain: true });
    await waitFor(() => intruder.isClosed || intruder.peek('puback').length > 0);
    const reader = await h.v4(port, { clientId: 'reader' });
    await reader.subscribe('state/x', { qos: 1 });
    await reader.waitMessages(1);
    await sleep(200);
    expect(reader.texts()).toEqual(['genuine']);
  });

  it('5.0: QoS 1 gets PUBACK 0x87 and QoS 2 gets PUBREC 0x87; the client stays connected; nothing is delivered', async () => {
    const { port } = await h.broker({ authorize: denySecret });
    const watcher = await h.v5(port, { clientId: 'watcher' });
    await watcher.subscribe('#', { qos: 2 });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'v5-sneaky' });
    raw.send({ cmd: 'publish', topic: 'secret/a', payload: Buffer.from('x'), qos: 1, messageId: 1, dup: false, retain: false });
    raw.send({ cmd: 'publish', topic: 'secret/b', payload: Buffer.from('y'), qos: 2, messageId: 2, dup: false, retain: false });
    const puback = (await raw.next('puback')) as IPubackPacket;
    const pubrec = (await raw.next('pubrec')) as IPubrecPacket;
    expect([puback.messageId, puback.reasonCode]).toEqual([1, 0x87]);
    expect([pubrec.messageId, pubrec.reasonCode]).toEqual([2, 0x87]);
    expect(raw.isClosed).toBe(false);
    raw.send({ cmd: 'publish', topic: 'open/end', payload: Buffer.from('end'), qos: 1, messageId: 3, dup: false, retain: false });
    await waitFor(() => watcher.texts().includes('end'));
    expect(watcher.texts()).toEqual(['end']);
  });

  it('5.0 with MQTT.js: a denied QoS 1 publish rejects with reason code 0x87', async () => {
    const { port } = await h.broker({ authorize: denySecret });
    const c = await h.v5(port, { clientId: 'mqttjs' });
    await expect(c.publish('secret/z', 'x', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
  });

  it('a will message to a denied topic is not published', async () => {
    const { port } = await h.broker({ authorize: (_c, action, topic) => !(action === 'publish' && topic === 'forbidden/will') });
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe('forbidden/#', { qos: 1 });
    const raw = await h.raw(port);
    const connack = await raw.connect({ clientId: 'willful', will: { topic: 'forbidden/will', payload: Buffer.from('should not appear'), qos: 1, retain: false } });
    if ((connack.returnCode ?? 0) === 0) raw.destroy();
    await raw.waitClosed();
    await watcher.publish('forbidden/end', 'end', { qos: 1 }); // watcher's own publish is allowed
    await waitFor(() => watcher.texts().includes('end'));
    await sleep(200);
    expect(watcher.texts()).toEqual(['end']);
  });
});

describe('authorize: what the hook is told', () => {
  const h = useHarness();

  it('gets client id, user name, remote address and local=false for socket clients; address "local" for in-process clients', async () => {
    const calls: Array<{ client: ClientIdentity; action: string; topic: string }> = [];
    const { port, broker } = await h.broker({
      authorize: (client, action, topic) => {
        calls.push({ client: { ...client }, action, topic });
        return true;
      },
    });
    const c = await h.v4(port, { clientId: 'identified', username: 'alice', password: Buffer.from('pw') });
    await c.subscribe('who/+', { qos: 1 });
    await c.publish('who/me', 'x', { qos: 1 });
    const local = broker.createLocalClient('adapter-1');
    h.defer(() => local.close());
    await local.publish('who/local', 'y', { qos: 1 });
    await c.waitMessages(2);
    const sub = calls.find((x) => x.action === 'subscribe' && x.topic === 'who/+');
    const pub = calls.find((x) => x.action === 'publish' && x.topic === 'who/me');
    const localPub = calls.find((x) => x.action === 'publish' && x.topic === 'who/local');
    expect(sub?.client).toMatchObject({ clientId: 'identified', username: 'alice', local: false });
    expect(sub?.client.address).toMatch(/127\.0\.0\.1/);
    expect(pub?.client.clientId).toBe('identified');
    expect(localPub?.client).toMatchObject({ clientId: 'adapter-1', address: 'local', local: true });
  });

  it('a hook that throws counts as a denial and does not take the broker down', async () => {
    const { port } = await h.broker({
      authorize: (_c, _a, topic) => {
        if (topic.startsWith('boom')) throw new Error('hook bug');
        return true;
      },
    });
    const c = await h.v5(port, { clientId: 'boom' });
    const [code] = await c.subscribe('boom/x', { qos: 1 });
    expect(code).toBeGreaterThanOrEqual(0x80);
    await c.subscribe('fine/x', { qos: 1 });
    await c.publish('fine/x', 'ok', { qos: 1 });
    await c.waitMessages(1);
  });
});

describe('authenticate hook', () => {
  const h = useHarness();
  const authenticate = (info: { clientId: string; username?: string; password?: Buffer }) => info.username === 'alice' && info.password?.toString() === 'secret';

  it('3.1.1: bad credentials get CONNACK 0x04 and the connection is closed', async () => {
    const { port } = await h.broker({ authenticate });
    await expect(h.v4(port, { clientId: 'bad', username: 'alice', password: Buffer.from('wrong') })).rejects.toMatchObject({ code: 0x04 });
    const ok = await h.v4(port, { clientId: 'good', username: 'alice', password: Buffer.from('secret') });
    expect(ok.connack.returnCode).toBe(0);
  });

  it('5.0: bad credentials get CONNACK 0x86', async () => {
    const { port } = await h.broker({ authenticate });
    await expect(h.v5(port, { clientId: 'bad5', username: 'mallory', password: Buffer.from('secret') })).rejects.toMatchObject({ code: 0x86 });
    const ok = await h.v5(port, { clientId: 'good5', username: 'alice', password: Buffer.from('secret') });
    expect(ok.connack.reasonCode).toBe(0);
  });

  it('the hook sees client id, user name, password and address', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const { port } = await h.broker({
      authenticate: (info) => {
        seen.push({ ...info, password: info.password?.toString() });
        return true;
      },
    });
    await h.v4(port, { clientId: 'inspect', username: 'bob', password: Buffer.from('pw1') });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ clientId: 'inspect', username: 'bob', password: 'pw1' });
    expect(String(seen[0]!.address)).toMatch(/127\.0\.0\.1/);
  });
});
