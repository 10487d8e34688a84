// Regression tests for issue 8, defects 1-6: the exact bytes a fuzzer sent, over a real socket.
// Every client packet is validated before the broker acts on it (src/broker/decode/); nothing
// malformed is stored, forwarded or kept in an object shared between connections; what the broker
// sends respects the client's Maximum Packet Size.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import mqttPacket, { type IConnackPacket, type IDisconnectPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../../src/broker/decode/errors.js';
import { decodePacket } from '../../src/broker/packet-decoder.js';
import { captureLogger, connectV5, sleep, startBroker, uniqueTopic, useHarness, waitFor, type Harness, type RawClient } from '../helpers/broker.js';
import { spawnBroker, type ChildBroker } from '../helpers/child-broker.js';
import { requireTool } from '../helpers/peers.js';
import { MosquittoRemote } from '../bridge/helpers.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Defect 1: will with a User Property whose value length (0xffff) runs past the packet. */
const CONNECT_BAD_WILL_PROPERTY = hex('101f00044d51545405060000000001780826000161ffff01000003772f31000121');
/** Defect 2: the same property on a retained PUBLISH to p/1. */
const PUBLISH_BAD_USER_PROPERTY = hex('310f0003702f310826000161ffff010078');
/** Defect 3: 3.1.1 CONNECT with protocol level 0x84 (the "bridge" bit). */
const CONNECT_BRIDGE_LEVEL = hex('100d00044d5154548402003c000141');
/** Defect 4: PUBLISH to q/1 with Session Expiry Interval and Server Reference, which PUBLISH may not carry. */
const PUBLISH_FORBIDDEN_PROPERTIES = hex('30100003712f310911000000051c00017379');

async function connectedRaw(h: Harness, port: number, version: 4 | 5, clientId: string): Promise<RawClient> {
  const raw = await h.raw(port, version);
  const connack = await raw.connect({ clientId });
  expect(connack.returnCode ?? connack.reasonCode ?? 0).toBe(0);
  return raw;
}

/** Sizes of the packets in a byte stream (fixed header + remaining length). */
function packetSizes(bytes: Buffer): number[] {
  const sizes: number[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let remaining = 0;
    let multiplier = 1;
    let i = pos + 1;
    for (;;) {
      const b = bytes[i++];
      remaining += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) break;
    }
    sizes.push(i - pos + remaining);
    pos = i + remaining;
  }
  return sizes;
}

describe('defect 1: a malformed will property is refused at CONNECT', () => {
  const h = useHarness();
  let child: ChildBroker | null = null;
  h.defer(() => child?.kill9());

  it('CONNACK 0x81, the connection closes, no will is published, and the process lives', async () => {
    const dataDir = await h.tempDir();
    child = await spawnBroker(dataDir);
    const watcher = await connectV5(child.port, { clientId: 'will-watcher' });
    h.defer(() => watcher.mqtt.end(true));
    await watcher.subscribe('w/#', { qos: 1 });
    const bad = await h.raw(child.port, 5);
    bad.sendBytes(CONNECT_BAD_WILL_PROPERTY);
    await waitFor(() => bad.isClosed || bad.received.length > 0, 10_000, 'CONNACK or close');
    // The socket closes without DISCONNECT: the path where the will used to be encoded and crash the process.
    bad.destroy();
    await bad.waitClosed();
    const connack = bad.received.find((p) => p.cmd === 'connack') as IConnackPacket | undefined;
    expect(connack?.reasonCode, `got ${bad.describe()}`).toBe(0x81);
    await watcher.publish('w/end', 'sentinel', { qos: 1 });
    await waitFor(() => watcher.texts().includes('sentinel'), 10_000, 'the sentinel');
    expect(watcher.messages.map((m) => m.topic)).toEqual(['w/end']);
    expect(watcher.closed).toBe(false);
    expect(child.process.exitCode).toBeNull();
  });
});

describe('defect 2: a malformed PUBLISH property is never stored', () => {
  const h = useHarness();
  let child: ChildBroker | null = null;
  h.defer(() => child?.kill9());

  it('the PUBLISH gets DISCONNECT 0x81; nothing is retained, before or after a restart; v5 subscribers stay connected', async () => {
    const dataDir = await h.tempDir();
    child = await spawnBroker(dataDir);
    const bad = await connectedRaw(h, child.port, 5, 'poisoner');
    bad.sendBytes(PUBLISH_BAD_USER_PROPERTY);
    const disconnect = (await bad.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x81);
    await bad.waitClosed();
    for (let run = 0; run < 2; run++) {
      const sub = await connectV5(child.port, { clientId: `retained-reader-${run}` });
      await sub.subscribe('p/#', { qos: 1 });
      await sub.publish('p/end', 'sentinel', { qos: 1 });
      await waitFor(() => sub.texts().includes('sentinel'), 10_000, 'the sentinel');
      await sleep(100);
      expect(sub.messages.map((m) => m.topic)).toEqual(['p/end']);
      expect(sub.closed).toBe(false);
      await sub.end();
      if (run === 0) {
        await child.stop();
        child = await spawnBroker(dataDir);
      }
    }
  });
});

describe('defect 2: invalid rows an older version stored are dropped on load', () => {
  const h = useHarness();

  it('a retained message and a queued message with a null user property value are dropped with a log line; the valid ones are delivered', async () => {
    const dataDir = await h.tempDir();
    // A database with a persistent v5 session subscribed to p/#, as this version writes it.
    const first = await startBroker({ dataDir });
    const setup = await connectV5(first.port, { clientId: 'queued-reader', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await setup.subscribe('p/#', { qos: 1 });
    await setup.end();
    const publisher = await connectV5(first.port, { clientId: 'setup-pub' });
    await publisher.publish('p/good-retained', 'good retained', { qos: 1, retain: true });
    await publisher.publish('p/good-queued', 'good queued', { qos: 1 });
    await publisher.end();
    await first.close();
    // What an older version stored for defect 2's PUBLISH: mqtt-packet had parsed the value as null.
    const db = new Database(join(dataDir, 'fieldgate.db'));
    const poisoned = JSON.stringify({ userProperties: { a: null } });
    db.prepare('INSERT INTO retained (topic, payload, qos, properties, expires_at) VALUES (?, ?, ?, ?, NULL)').run('p/1', Buffer.from('x'), 0, poisoned);
    db.prepare('INSERT INTO retained (topic, payload, qos, properties, expires_at) VALUES (?, ?, ?, ?, NULL)').run('p/2', Buffer.from('x'), 0, '{not json');
    const seq = (db.prepare('SELECT MAX(seq) AS m FROM queue').get() as { m: number }).m + 1;
    db.prepare('INSERT INTO queue (seq, client_id, topic, payload, qos, retain, properties, expires_at, subscription_ids, packet_id, released) VALUES (?, ?, ?, ?, 1, 0, ?, NULL, NULL, NULL, 0)')
      .run(seq, 'queued-reader', 'p/1', Buffer.from('x'), poisoned);
    db.close();

    const { logger, entries } = captureLogger();
    const second = await h.broker({ dataDir, logger });
    const drops = entries.filter((e) => String(e.msg).startsWith('dropping a stored'));
    expect(drops.map((e) => [e.msg, e.topic])).toEqual([
      ['dropping a stored retained message that is not valid', 'p/1'],
      ['dropping a stored retained message that is not valid', 'p/2'],
      ['dropping a stored queued message that is not valid', 'p/1'],
    ]);
    const back = await connectV5(second.port, { clientId: 'queued-reader', clean: false, properties: { sessionExpiryInterval: 3600 } });
    h.defer(() => back.mqtt.end(true));
    await back.waitMessages(2);
    const fresh = await h.v5(second.port, { clientId: 'fresh-reader' });
    await fresh.subscribe('p/#', { qos: 1 });
    await fresh.waitMessages(1);
    await sleep(200);
    expect(back.texts()).toEqual(['good retained', 'good queued']);
    expect(fresh.texts()).toEqual(['good retained']);
    expect(back.closed || fresh.closed).toBe(false);
  });
});

describe('defect 3: no state of one connection reaches another', () => {
  const h = useHarness();

  it('a CONNECT with level 0x84 gets CONNACK 0x01; other 3.1.1 clients still get $share subscriptions', async () => {
    const { port } = await h.broker();
    const bridge = await h.raw(port);
    bridge.sendBytes(CONNECT_BRIDGE_LEVEL);
    await bridge.waitClosed();
    expect(Buffer.concat(bridge.bytes).toString('hex')).toBe('20020001');
    const topic = uniqueTopic('share');
    const member = await h.v4(port, { clientId: 'share-member' });
    expect(await member.subscribe(`$share/g/${topic}`, { qos: 1 })).toEqual([1]);
    const pub = await h.v4(port, { clientId: 'share-pub' });
    await pub.publish(topic, 'shared', { qos: 1 });
    await member.waitMessages(1);
    expect(member.texts()).toEqual(['shared']);
  });

  it('decoding is a pure function of the frame: interleaved clients decode exactly as each does alone', () => {
    const frames: Array<[Buffer, number]> = [
      [CONNECT_BRIDGE_LEVEL, 4],
      [Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 5, clientId: 'a', username: 'u', password: Buffer.from('secret') })), 4],
      [Buffer.from(mqttPacket.generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$share/g/x', qos: 1 }] })), 4],
      [Buffer.from(mqttPacket.generate({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 'y', qos: 2, nl: true, rap: true, rh: 1 }] }, { protocolVersion: 5 })), 5],
      [PUBLISH_BAD_USER_PROPERTY, 5],
      [Buffer.from(mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 9, dup: false, retain: false, properties: { contentType: 'c', userProperties: { k: 'v' } } }, { protocolVersion: 5 })), 5],
      [CONNECT_BAD_WILL_PROPERTY, 4],
      [hex('6200'), 4],
    ];
    const outcome = ([frame, version]: [Buffer, number]) => {
      try {
        return JSON.stringify(decodePacket(frame, version));
      } catch (error) {
        return `error ${(error as FrameError).reasonCode}: ${(error as Error).message}`;
      }
    };
    const alone = frames.map(outcome);
    let seed = 7;
    for (let round = 0; round < 200; round++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const i = seed % frames.length;
      expect(outcome(frames[i])).toBe(alone[i]);
    }
    // The subscription from a 3.1.1 client never gains bridge-mode options.
    expect(JSON.parse(alone[2]).subscriptions).toEqual([{ topic: '$share/g/x', qos: 1 }]);
  });
});

describe.skipIf(!requireTool('mosquitto'))('defect 3: a Mosquitto bridge still connects', () => {
  const h = useHarness();

  it('with try_private (level 0x84 first) it is refused with 0x01, retries as plain 3.1.1 and forwards messages', async () => {
    const { logger, entries } = captureLogger();
    const { port, broker } = await h.broker({ logger });
    const watcher = await h.v4(port, { clientId: 'bridged-watcher' });
    await watcher.subscribe('bridge/#', { qos: 1 });
    const mosquitto = new MosquittoRemote([
      'connection fieldgate', `address 127.0.0.1:${port}`, 'topic bridge/# out 1', 'try_private true',
      'bridge_protocol_version mqttv311', 'restart_timeout 1', 'cleansession true',
    ]);
    h.defer(() => mosquitto.dispose());
    const mosquittoPort = await mosquitto.start();
    await waitFor(() => [...broker.sessions.keys()].some((id) => id.includes('fieldgate')), 20_000, "the bridge's session");
    const local = await h.v4(mosquittoPort, { clientId: 'mosquitto-side-pub' });
    await local.publish('bridge/x', 'over the bridge', { qos: 1 });
    await watcher.waitMessages(1, 20_000);
    expect(watcher.texts()).toEqual(['over the bridge']);
    // It did try the bridge bit first, and was refused.
    expect(entries.some((e) => String(e.msg).includes('unsupported protocol "MQTT" level 132'))).toBe(true);
  });
});

describe('defect 4: properties a PUBLISH may not carry', () => {
  const h = useHarness();

  it('are a protocol error (DISCONNECT 0x82) and are not forwarded', async () => {
    const { port } = await h.broker();
    const watcher = await h.v5(port, { clientId: 'q-watcher' });
    await watcher.subscribe('q/#', { qos: 1 });
    const bad = await connectedRaw(h, port, 5, 'forbidden-props');
    bad.sendBytes(PUBLISH_FORBIDDEN_PROPERTIES);
    const disconnect = (await bad.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x82);
    await bad.waitClosed();
    await watcher.publish('q/end', 'sentinel', { qos: 1 });
    await waitFor(() => watcher.texts().includes('sentinel'), 10_000, 'the sentinel');
    expect(watcher.messages.map((m) => m.topic)).toEqual(['q/end']);
  });
});

describe('defect 5: acknowledgements without a packet identifier', () => {
  const h = useHarness();

  for (const version of [4, 5] as const) {
    for (const bytes of ['4000', '5000', '6200', '7000']) {
      it(`MQTT ${version === 5 ? '5.0' : '3.1.1'}: ${bytes} is malformed and closes the connection; no acknowledgement comes back`, async () => {
        const { port } = await h.broker();
        const raw = await connectedRaw(h, port, version, `no-id-${bytes}`);
        const before = Buffer.concat(raw.bytes).length;
        raw.sendBytes(hex(bytes));
        raw.send({ cmd: 'pingreq' });
        await raw.waitClosed();
        const after = Buffer.concat(raw.bytes).subarray(before);
        if (version === 5) {
          expect(after.toString('hex').slice(0, 2)).toBe('e0');
          expect(raw.received.find((p) => p.cmd === 'disconnect')).toMatchObject({ reasonCode: 0x81 });
        } else {
          expect(after.toString('hex')).toBe('');
        }
      });
    }
  }
});

describe("defect 6: nothing larger than the client's Maximum Packet Size is sent", () => {
  const h = useHarness();

  it('a DISCONNECT for a protocol error leaves out its reason string to fit', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    const connack = await raw.connect({ clientId: 'small-packets', properties: { maximumPacketSize: 32 } });
    expect(connack.reasonCode).toBe(0);
    raw.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
    // A wildcard in the topic name: DISCONNECT 0x90 with a reason string that would not fit.
    raw.sendBytes(hex('3008 0005 612f2b2f62 00 78'));
    const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x90);
    await raw.waitClosed();
    const sizes = packetSizes(Buffer.concat(raw.bytes));
    expect(Math.max(...sizes), `packet sizes ${sizes.join(', ')}`).toBeLessThanOrEqual(32);
  });

  it('a CONNACK leaves out the flags whose absence means "available" to fit; one that cannot fit closes the connection', async () => {
    const { port } = await h.broker();
    const fits = await h.raw(port, 5);
    const connack = await fits.connect({ clientId: 'tiny-connack', properties: { maximumPacketSize: 20 } });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.retainAvailable).toBeUndefined();
    expect(Math.max(...packetSizes(Buffer.concat(fits.bytes)))).toBeLessThanOrEqual(20);
    const tooSmall = await h.raw(port, 5);
    tooSmall.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'no-connack', properties: { maximumPacketSize: 10 } });
    await tooSmall.waitClosed();
    expect(Buffer.concat(tooSmall.bytes).toString('hex')).toBe('');
  });

  it('a refusing CONNACK leaves out its reason string to fit', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    raw.send({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'small-connack',
      properties: { maximumPacketSize: 8, authenticationMethod: 'SCRAM-SHA-1' },
    });
    await raw.waitClosed();
    const bytes = Buffer.concat(raw.bytes);
    expect(bytes.toString('hex')).toBe('2003008c00');
  });
});
