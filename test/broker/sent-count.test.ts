// messagesSent ($SYS/broker/messages/sent, fieldgate_messages_sent_total, the console's "out" rate)
// counts every PUBLISH the broker writes to a client: live QoS 0 and 1, retained ones on SUBSCRIBE, and
// the DUP resends of a persistent session that reconnects without having acknowledged them. The count
// is checked against what real peers (bare mqtt-packet clients on TCP) received.
import type { IPublishPacket } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { connectV5, RawClient, startBroker, waitFor, type StartedBroker } from '../helpers/broker.js';

describe('broker: messages sent are counted as written', () => {
  let started: StartedBroker | undefined;
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const r of raws) r.socket.destroy();
    raws.length = 0;
    await started?.close();
  });

  const publishes = (r: RawClient) => r.received.filter((p): p is IPublishPacket => p.cmd === 'publish');

  it('live, retained and resent PUBLISHes each count once', async () => {
    // No $SYS timer: nothing but this test's messages goes in or out.
    started = await startBroker({ sysIntervalMs: 0 });
    const { broker, port } = started;
    const publisher = await connectV5(port, { clientId: 'pub' });
    await publisher.publish('rate/retained', 'kept', { qos: 1, retain: true });

    const before = { ...broker.stats };
    const qos0 = await RawClient.open(port, 4);
    raws.push(qos0);
    qos0.autoAck = true;
    await qos0.connect({ clientId: 'sub-qos0' });
    qos0.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rate/#', qos: 0 }] });
    await qos0.next('suback');

    // A persistent QoS 1 subscriber that never acknowledges: what it got is resent when it comes back.
    const qos1 = await RawClient.open(port, 5);
    raws.push(qos1);
    await qos1.connect({ clientId: 'sub-qos1', clean: false, properties: { sessionExpiryInterval: 300 } } as never);
    qos1.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'rate/#', qos: 1 }] });
    await qos1.next('suback');

    for (let i = 0; i < 5; i++) await publisher.publish('rate/live', `m${i}`, { qos: 1 });
    await waitFor(() => publishes(qos0).length === 6 && publishes(qos1).length === 6, 10_000, 'the retained message and 5 live ones at both subscribers');

    qos1.socket.destroy();
    await waitFor(() => broker.stats.clientsConnected === 2, 10_000, 'the QoS 1 subscriber gone');
    const again = await RawClient.open(port, 5);
    raws.push(again);
    const connack = await again.connect({ clientId: 'sub-qos1', clean: false, properties: { sessionExpiryInterval: 300 } } as never);
    expect(connack.sessionPresent).toBe(true);
    await waitFor(() => publishes(again).length === 6, 10_000, 'the 6 unacknowledged messages resent');
    expect(publishes(again).every((p) => p.dup)).toBe(true);

    const received = publishes(qos0).length + publishes(qos1).length + publishes(again).length;
    expect(received).toBe(18);
    expect(broker.stats.messagesSent - before.messagesSent).toBe(received);
    // In: the 5 live PUBLISHes (the retained one was published before `before`).
    expect(broker.stats.messagesReceived - before.messagesReceived).toBe(5);
    await publisher.end();
  });
});
