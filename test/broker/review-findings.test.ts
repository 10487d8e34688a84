// Findings of the adversarial review of the issue 8 hardening: each over a real socket, each failed
// on main before its fix.
import type { IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { startBroker, useHarness, waitFor } from '../helpers/broker.js';

describe('review findings', () => {
  const h = useHarness();

  it('a PUBLISH too large for the client is dropped without using up a topic alias the client never learned', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'alias-small', properties: { topicAliasMaximum: 5, maximumPacketSize: 100 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'alias/t', qos: 0 }] });
    await raw.next('suback');
    const pub = await h.v4(port, { clientId: 'alias-pub' });
    await pub.publish('alias/t', Buffer.alloc(500, 0x61), { qos: 1 });
    await pub.publish('alias/t', 'small', { qos: 1 });
    const publish = (await raw.next('publish')) as IPublishPacket;
    // The client has never seen alias/t: it must come with its topic name.
    expect(publish.topic).toBe('alias/t');
    expect(publish.payload.toString()).toBe('small');
  });

  it('a topic with U+FFFD (well-formed UTF-8) is a topic like any other: subscribable, and its retained and queued messages survive a restart', async () => {
    const dataDir = await h.tempDir();
    const topic = 'fffd/\uFFFD';
    const first = await startBroker({ dataDir, sysIntervalMs: 0 });
    h.defer(() => first.close());
    const offline = await h.raw(first.port, 5);
    await offline.connect({ clientId: 'fffd-reader', clean: false, properties: { sessionExpiryInterval: 3600 } });
    offline.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    const suback = (await offline.next('suback')) as { granted: number[] };
    expect(suback.granted).toEqual([1]);
    offline.destroy();
    await waitFor(() => first.broker.sessions.get('fffd-reader')?.connection === null, 5000, 'the session to go offline');
    const pub = await h.v4(first.port, { clientId: 'fffd-pub' });
    await pub.publish(topic, 'retained', { qos: 1, retain: true });
    await pub.publish(topic, 'queued', { qos: 1 });
    await pub.end();
    await first.close();
    const second = await h.broker({ dataDir, sysIntervalMs: 0 });
    expect(second.broker.retained.size).toBe(1);
    const back = await h.raw(second.port, 5);
    back.autoAck = true;
    await back.connect({ clientId: 'fffd-reader', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await waitFor(() => back.peek('publish').length >= 2, 5000, 'the two messages');
    expect(back.peek('publish').map((p) => (p as IPublishPacket).payload.toString()).sort()).toEqual(['queued', 'retained']);
  });

  it('a SUBSCRIBE refused for No Local on a shared filter adds none of its filters', async () => {
    const { broker, port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'nl-shared', clean: false, properties: { sessionExpiryInterval: 60 } });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'nl/a', qos: 1 }, { topic: '$share/g/nl/b', qos: 1, nl: true }] });
    const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x82);
    await raw.waitClosed();
    expect([...broker.sessions.get('nl-shared')!.subscriptions.keys()]).toEqual([]);
  });

  it('a reason string that echoes a 64 KiB topic or authentication method is cut to fit: the DISCONNECT and the refusing CONNACK still parse', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'long-wildcard' });
    // A topic name of 65,530 bytes with a wildcard: the reason string quoting it is longer than a UTF-8 string may be.
    raw.send({ cmd: 'publish', topic: `a/+/${'x'.repeat(65_526)}`, payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
    const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x90);
    await raw.waitClosed();
    expect(raw.parseErrors).toEqual([]);
    const refused = await h.raw(port, 5);
    refused.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'long-method', properties: { authenticationMethod: 'm'.repeat(65_500) } });
    const connack = (await refused.next('connack')) as IConnackPacket;
    expect(connack.reasonCode).toBe(0x8c);
    await refused.waitClosed();
    expect(refused.parseErrors).toEqual([]);
  });

  it('a v5 CONNECT with Authentication Data but no Authentication Method is refused with CONNACK 0x82', async () => {
    const { broker, port } = await h.broker();
    const raw = await h.raw(port, 5);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'auth-data-only', properties: { authenticationData: Buffer.from('secret') } });
    const connack = (await raw.next('connack')) as IConnackPacket;
    expect(connack.reasonCode).toBe(0x82);
    await raw.waitClosed();
    expect(broker.sessions.has('auth-data-only')).toBe(false);
  });
});
