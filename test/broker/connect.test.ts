// CONNECT / CONNACK, client ids, session takeover, keep alive and connect timeout
// (MQTT 3.1.1 section 3.1-3.2, 3.12; MQTT 5.0 section 3.1-3.2).
import type { IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor, type RawClient } from '../helpers/broker.js';
import { connectBytes, mqttString } from '../helpers/packets.js';

function successfulConnacks(packets: Array<{ cmd: string }>): IConnackPacket[] {
  return (packets.filter((p) => p.cmd === 'connack') as IConnackPacket[]).filter((c) => (c.reasonCode ?? c.returnCode ?? 0) === 0);
}

/** The broker must answer with a failure CONNACK or no CONNACK at all, and close the connection. */
async function expectRefused(raw: RawClient): Promise<void> {
  await waitFor(() => raw.isClosed || raw.received.some((p) => p.cmd === 'connack'), 10_000, 'CONNACK or close');
  expect(successfulConnacks(raw.received), 'a successful CONNACK was sent').toEqual([]);
  await raw.waitClosed();
}

describe('CONNECT: protocol versions on one listener', () => {
  const h = useHarness();

  it('accepts MQTT 3.1 (MQIsdp, level 3), 3.1.1 (level 4) and 5.0 (level 5) clients that talk to each other', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic();
    const v3 = await h.v4(port, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'v31' });
    const v4 = await h.v4(port, { clientId: 'v311' });
    const v5 = await h.v5(port, { clientId: 'v5' });
    expect([v3.connack.returnCode, v4.connack.returnCode, v5.connack.reasonCode]).toEqual([0, 0, 0]);
    for (const c of [v3, v4, v5]) await c.subscribe(topic, { qos: 1 });
    await v3.publish(topic, 'from 3.1', { qos: 1 });
    await v4.publish(topic, 'from 3.1.1', { qos: 1 });
    await v5.publish(topic, 'from 5', { qos: 1 });
    for (const c of [v3, v4, v5]) {
      await c.waitMessages(3);
      expect(c.texts()).toEqual(['from 3.1', 'from 3.1.1', 'from 5']);
    }
  });

  it('answers an unsupported protocol level with CONNACK 0x01 (or v5 0x84) and closes [MQTT-3.1.2-2]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    raw.sendBytes(connectBytes({ level: 6, clientId: 'level6' }));
    await raw.waitClosed();
    const bytes = Buffer.concat(raw.bytes);
    if (bytes.length > 0) {
      expect(bytes[0]).toBe(0x20); // CONNACK
      expect([0x01, 0x84]).toContain(bytes[3]);
    }
  });

  it('closes the connection when the CONNECT reserved flag is set [MQTT-3.1.2-3]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    raw.sendBytes(connectBytes({ flags: 0x03, clientId: 'reserved-flag' }));
    await expectRefused(raw);
  });

  it('closes the connection for will QoS 3 [MQTT-3.1.2-14]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    const will = Buffer.concat([mqttString('will/topic'), mqttString('bye')]);
    raw.sendBytes(connectBytes({ flags: 0x02 | 0x04 | 0x18, clientId: 'will-qos3', tail: will }));
    await expectRefused(raw);
  });

  it('closes the connection for will QoS or will retain set without the will flag [MQTT-3.1.2-13, MQTT-3.1.2-15]', async () => {
    const { port } = await h.broker();
    for (const flags of [0x02 | 0x08, 0x02 | 0x20]) {
      const raw = await h.raw(port);
      raw.sendBytes(connectBytes({ flags, clientId: `no-will-${flags}` }));
      await expectRefused(raw);
    }
  });

  it('3.1.1: closes the connection for a password flag without the user name flag [MQTT-3.1.2-22]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    raw.sendBytes(connectBytes({ flags: 0x02 | 0x40, clientId: 'pw-only', tail: mqttString('secret') }));
    await expectRefused(raw);
  });

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    raw.send({ cmd: 'pingreq' });
    await raw.waitClosed();
    expect(raw.received.filter((p) => p.cmd === 'pingresp')).toEqual([]);
  });

  it('accepts a 23-character alphanumeric client id [MQTT-3.1.3-5] and longer ones', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, { clientId: 'abcdefghijABCDEFGHIJ012' });
    expect(a.connack.returnCode).toBe(0);
    const b = await h.v5(port, { clientId: 'gateway-' + 'x'.repeat(100) });
    expect(b.connack.reasonCode).toBe(0);
  });

  it('3.1.1: the server sends CONNACK with session present 0 for a clean session [MQTT-3.2.2-1]', async () => {
    const { port } = await h.broker();
    const a = await h.v4(port, { clientId: 'cs', clean: false });
    await a.subscribe('x', { qos: 1 });
    await a.end();
    const b = await h.v4(port, { clientId: 'cs', clean: true });
    expect(b.connack.sessionPresent).toBe(false);
  });

  it('answers PINGREQ with PINGRESP [MQTT-3.12.4-1]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'pinger' });
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
  });
});

describe('session takeover of a duplicate client id [MQTT-3.1.4-2]', () => {
  const h = useHarness();

  it('3.1.1: the existing connection is closed, the new one gets the messages', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic();
    const first = await h.v4(port, { clientId: 'dup', clean: false });
    await first.subscribe(topic, { qos: 1 });
    const second = await h.v4(port, { clientId: 'dup', clean: false });
    await first.waitClosed();
    expect(second.connack.sessionPresent).toBe(true);
    const pub = await h.v4(port, { clientId: 'pub' });
    await pub.publish(topic, 'after takeover', { qos: 1 });
    await second.waitMessages(1);
    expect(second.texts()).toEqual(['after takeover']);
    expect(first.messages).toEqual([]);
  });

  it('5.0: the existing connection gets DISCONNECT 0x8E (session taken over) [MQTT-3.1.4-3]', async () => {
    const { port } = await h.broker();
    const first = await h.v5(port, { clientId: 'dup5' });
    const second = await h.v5(port, { clientId: 'dup5' });
    await first.waitClosed();
    expect(first.disconnect?.reasonCode).toBe(0x8e);
    expect(second.closed).toBe(false);
  });

  it('a takeover by a raw client that then disappears leaves the broker serving others', async () => {
    const { port } = await h.broker();
    const topic = uniqueTopic();
    const first = await h.raw(port);
    await first.connect({ clientId: 'dup-raw' });
    const second = await h.raw(port);
    await second.connect({ clientId: 'dup-raw' });
    await first.waitClosed();
    second.destroy();
    const c = await h.v4(port, { clientId: 'other' });
    await c.subscribe(topic, { qos: 0 });
    await c.publish(topic, 'still fine');
    await c.waitMessages(1);
  });
});

describe('keep alive', () => {
  const h = useHarness();

  it('closes a client that is silent for 1.5 x its keep alive [MQTT-3.1.2-24]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'silent', keepalive: 1 });
    const started = Date.now();
    await raw.waitClosed(10_000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(6_000);
  });

  it('keeps a client that sends PINGREQ within its keep alive', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'pinging', keepalive: 1 });
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      raw.send({ cmd: 'pingreq' });
    }
    await waitFor(() => raw.received.filter((p) => p.cmd === 'pingresp').length >= 6);
    expect(raw.isClosed).toBe(false);
  });

  it('any control packet counts as activity: a client that only publishes is not disconnected [MQTT-3.1.2-23]', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'busy', keepalive: 1 });
    for (let i = 0; i < 8; i++) {
      await sleep(400);
      raw.send({ cmd: 'publish', topic: 'busy/t', payload: Buffer.from(`m${i}`), qos: 0, dup: false, retain: false });
    }
    expect(raw.isClosed).toBe(false);
  });

  it('keep alive 0 turns the mechanism off', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'no-keepalive', keepalive: 0 });
    await sleep(2_500);
    expect(raw.isClosed).toBe(false);
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
  });

  it('v5: a keep alive above maxKeepAlive is answered with Server Keep Alive and enforced with it [MQTT-3.2.2-21]', async () => {
    const { port } = await h.broker({ maxKeepAlive: 1 });
    const raw = await h.raw(port, 5);
    const connack = await raw.connect({ clientId: 'capped', keepalive: 120 });
    expect(connack.properties?.serverKeepAlive).toBe(1);
    const started = Date.now();
    await raw.waitClosed(10_000);
    expect(Date.now() - started).toBeLessThan(6_000);
    const disconnect = raw.received.find((p) => p.cmd === 'disconnect') as IDisconnectPacket | undefined;
    if (disconnect) expect(disconnect.reasonCode).toBe(0x8d);
  });

  it('v5: a keep alive below maxKeepAlive is left alone', async () => {
    const { port } = await h.broker({ maxKeepAlive: 60 });
    const c = await h.v5(port, { clientId: 'under-cap', keepalive: 30 });
    const ska = c.connack.properties?.serverKeepAlive;
    expect(ska === undefined || ska === 30).toBe(true);
  });
});

describe('listeners and embedding', () => {
  const h = useHarness();

  it('listen() may be called several times; clients on different listeners talk to each other', async () => {
    const started = await h.broker();
    const second = await started.broker.listen({ port: 0, host: '127.0.0.1' });
    expect(second.port).not.toBe(started.port);
    const a = await h.v4(started.port, { clientId: 'on-first' });
    const b = await h.v5(second.port, { clientId: 'on-second' });
    await b.subscribe('cross/t', { qos: 1 });
    await a.publish('cross/t', 'across listeners', { qos: 1 });
    await b.waitMessages(1);
  });

  it('handle(stream) serves any Duplex; certificateUser and address reach the authenticate hook', async () => {
    const seen: Array<{ address: string; certificateUser?: string; clientId: string }> = [];
    const started = await h.broker({
      authenticate: (info) => {
        seen.push({ address: info.address, certificateUser: info.certificateUser, clientId: info.clientId });
        return true;
      },
    });
    const server = createServer((socket) => started.broker.handle(socket, { address: 'tls:10.0.0.9', certificateUser: 'CN=gateway-7' }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    h.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const c = await h.v4(port, { clientId: 'via-handle' });
    await c.subscribe('h/t', { qos: 1 });
    await c.publish('h/t', 'through handle()', { qos: 1 });
    await c.waitMessages(1);
    expect(seen).toEqual([{ address: 'tls:10.0.0.9', certificateUser: 'CN=gateway-7', clientId: 'via-handle' }]);
  });
});

describe('connect timeout', () => {
  const h = useHarness();

  it('closes a socket that never sends CONNECT after connectTimeoutMs', async () => {
    const { port } = await h.broker({ connectTimeoutMs: 500 });
    const raw = await h.raw(port);
    const started = Date.now();
    await raw.waitClosed(10_000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('closes a socket that sends only part of a CONNECT', async () => {
    const { port } = await h.broker({ connectTimeoutMs: 500 });
    const raw = await h.raw(port);
    raw.sendBytes(connectBytes({ clientId: 'partial' }).subarray(0, 6));
    await raw.waitClosed(10_000);
  });

  it('does not close a client that connected in time', async () => {
    const { port } = await h.broker({ connectTimeoutMs: 500 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'in-time', keepalive: 0 });
    await sleep(1_200);
    expect(raw.isClosed).toBe(false);
  });
});

describe('DISCONNECT', () => {
  const h = useHarness();

  it('broker.close() tells v5 clients DISCONNECT 0x8B (server shutting down) and closes 3.1.1 clients', async () => {
    const started = await h.broker();
    const v5 = await h.v5(started.port, { clientId: 'told' });
    const v4 = await h.v4(started.port, { clientId: 'closed' });
    await started.close();
    await v5.waitClosed();
    await v4.waitClosed();
    expect(v5.disconnect?.reasonCode).toBe(0x8b);
  });

  it('the server closes the network connection after a client DISCONNECT; a v5 reason code 0x00 is accepted', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'bye' });
    raw.send({ cmd: 'disconnect', reasonCode: 0 });
    await raw.waitClosed();
    // and the broker still serves
    const c = await h.v5(port, { clientId: 'bye' });
    const topic = uniqueTopic();
    await c.subscribe(topic, { qos: 1 });
    await c.publish(topic, 'x', { qos: 1 });
    const [m] = await c.waitMessages(1);
    expect((m as unknown as IPublishPacket).topic).toBe(topic);
  });
});
