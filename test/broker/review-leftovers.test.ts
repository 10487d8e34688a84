// Issue 8, what the review of the hardening left open: each test here failed on main's code before its fix.
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { brokerSectionSchema } from '../../src/config/gateway-config.js';
import { Session } from '../../src/broker/session.js';
import { silentLogger } from '../../src/log.js';
import { SocketOracle, type ReceiverLimits } from '../fuzz/lib/oracle.js';
import { HOST, RawClient, connectV4, connectV5, useHarness, waitFor } from '../helpers/broker.js';

/** The persistent sessions counted the slow way, to check the maintained count against. */
function countPersistent(broker: Broker): number {
  let n = 0;
  for (const session of broker.sessions.values()) if (session.persistent) n++;
  return n;
}

function bestOfMs(rounds: number, work: () => void): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const started = process.hrtime.bigint();
    work();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6);
  }
  return best;
}

describe('persistent session limit (maintained count)', () => {
  const h = useHarness();

  it('the check on CONNECT does not walk the sessions: as fast with 50,000 sessions as with 500', async () => {
    const { broker } = await h.broker({ maxPersistentSessions: 1_000_000 });
    const fill = (from: number, to: number) => {
      for (let i = from; i < to; i++) broker.sessions.set(`s${i}`, new Session(`s${i}`, 4, 60));
    };
    const calls = () => { for (let i = 0; i < 2000; i++) broker.hasRoomForPersistentSession(`new-${i & 7}`); };
    fill(0, 500);
    const small = bestOfMs(5, calls);
    fill(500, 50_000);
    const large = bestOfMs(5, calls);
    console.log(`2,000 checks: ${small.toFixed(3)} ms with 500 sessions, ${large.toFixed(3)} ms with 50,000`);
    // O(n) makes this ~100× (main before the fix: 19.5 ms → 7,653 ms); O(1) ~1× (generous for a loaded machine).
    expect(large).toBeLessThan(Math.max(small * 10, 2));
    expect(broker.sessions.persistentCount).toBe(50_000);
  });

  it('stays exact across takeover, expiry set to 0, DISCONNECT with expiry 0, expiry, clean start and restart', async () => {
    const dataDir = await h.tempDir();
    const options = { dataDir, logger: silentLogger, maxPersistentSessions: 2, persistentSessionExpiry: 600, sysIntervalMs: 0 };
    let broker = new Broker(options);
    await broker.start();
    let { port } = await broker.listen({ port: 0, host: HOST });
    h.defer(() => broker.close());
    const exact = (expected: number) => {
      expect(countPersistent(broker)).toBe(expected);
      expect(broker.sessions.persistentCount).toBe(expected);
    };
    const refusedV5 = async (clientId: string) => {
      const error = await connectV5(port, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }).then((c) => { c.mqtt.end(true); return null; }, (e: { code?: number }) => e);
      expect(error?.code, `${clientId} refused with 0x97`).toBe(0x97);
    };

    const p1 = await h.v5(port, { clientId: 'p1', clean: false, properties: { sessionExpiryInterval: 600 } });
    const p2 = await h.v4(port, { clientId: 'p2', clean: false });
    exact(2);
    await refusedV5('p3');
    exact(2);
    // Takeover by the same client id: its own session is room; still two.
    const p1b = await h.v5(port, { clientId: 'p1', clean: false, properties: { sessionExpiryInterval: 600 } });
    await p1.waitClosed();
    exact(2);
    // Taken over again with Session Expiry 0: p1 is no longer persistent, so p3 fits.
    const p1c = await h.v5(port, { clientId: 'p1', clean: false, properties: { sessionExpiryInterval: 0 } });
    await p1b.waitClosed();
    exact(1);
    const p3 = await h.v5(port, { clientId: 'p3', clean: false, properties: { sessionExpiryInterval: 600 } });
    exact(2);
    await refusedV5('p4');
    // DISCONNECT with Session Expiry 0 removes p3's persistence (v5 §3.14.2.2.2).
    p3.mqtt.end(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await waitFor(() => !broker.sessions.has('p3'), 5000, 'p3 to end');
    exact(1);
    // A session that expires frees its place.
    const p4 = await h.v5(port, { clientId: 'p4', clean: false, properties: { sessionExpiryInterval: 1 } });
    exact(2);
    await refusedV5('p5');
    await p4.kill();
    await waitFor(() => !broker.sessions.has('p4'), 5000, 'p4 to expire');
    exact(1);
    // A clean start over a persistent session ends it and starts a non-persistent one.
    p2.mqtt.end(true);
    const p2clean = await h.v4(port, { clientId: 'p2', clean: true });
    exact(0);
    p2clean.mqtt.end(true);
    p1c.mqtt.end(true);
    // Two persistent sessions left offline, then a restart: the restored ones are counted.
    (await connectV4(port, { clientId: 'r1', clean: false })).mqtt.end(true);
    (await connectV5(port, { clientId: 'r2', clean: false, properties: { sessionExpiryInterval: 600 } })).mqtt.end(true);
    await waitFor(() => broker.sessions.get('r1')?.connection === null && broker.sessions.get('r2')?.connection === null, 5000, 'r1 and r2 offline');
    exact(2);
    await broker.close();
    broker = new Broker(options);
    await broker.start();
    ({ port } = await broker.listen({ port: 0, host: HOST }));
    exact(2);
    await refusedV5('r3');
    const back = await h.v4(port, { clientId: 'r1', clean: false });
    expect(back.connack.sessionPresent).toBe(true);
    exact(2);
  });
});

describe('inbound topic aliases (bounded bytes)', () => {
  const h = useHarness();

  it('a v5 client that sets aliases past maxTopicAliasBytes is disconnected with 0x97; re-setting an alias does not count twice', async () => {
    const { broker, port } = await h.broker({ topicAliasMaximum: 64, sysIntervalMs: 0 });
    const sub = await h.v5(port, { clientId: 'alias-bytes-sub' });
    await sub.subscribe('ab/#', { qos: 0 });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'alias-bytes' });
    const topicOf = (i: number) => `ab/${String(i).padStart(4, '0')}/${'x'.repeat(992)}`; // 1,000 bytes
    // 16 topics of 1,000 bytes fit 16 KiB; setting alias 1 again (same size) a few times changes nothing.
    for (let i = 1; i <= 16; i++) raw.send({ cmd: 'publish', topic: topicOf(i), payload: Buffer.from(`set ${i}`), qos: 0, retain: false, dup: false, properties: { topicAlias: i } });
    for (let i = 0; i < 5; i++) raw.send({ cmd: 'publish', topic: topicOf(1), payload: Buffer.from('again'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
    raw.send({ cmd: 'publish', topic: '', payload: Buffer.from('by alias 16'), qos: 0, retain: false, dup: false, properties: { topicAlias: 16 } });
    await sub.waitMessages(22);
    expect(sub.messages.at(-1)?.topic).toBe(topicOf(16));
    expect(raw.isClosed).toBe(false);
    // The 17th 1,000-byte topic would hold 17,000 bytes.
    raw.send({ cmd: 'publish', topic: topicOf(17), payload: Buffer.from('one too many'), qos: 0, retain: false, dup: false, properties: { topicAlias: 17 } });
    const disconnect = (await raw.next('disconnect')) as { reasonCode?: number; properties?: { reasonString?: string } };
    console.log(`past maxTopicAliasBytes: DISCONNECT 0x${disconnect.reasonCode?.toString(16)} "${disconnect.properties?.reasonString}"`);
    expect(disconnect.reasonCode).toBe(0x97);
    expect(disconnect.properties?.reasonString).toMatch(/topic aliases would hold 17000 bytes.*16384/);
    await raw.waitClosed();
    expect(sub.messages.some((m) => m.text === 'one too many')).toBe(false);
    expect(broker.options.maxTopicAliasBytes).toBe(16 * 1024);
    expect(brokerSectionSchema.parse({}).maxTopicAliasBytes).toBe(16 * 1024);
  });

  it('the limit is settable, and at the default Topic Alias Maximum 64 of 65 KB topics no longer holds ~4 MiB', async () => {
    const { port } = await h.broker({ topicAliasMaximum: 64, maxTopicAliasBytes: 200_000, sysIntervalMs: 0 });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'alias-big' });
    const long = (i: number) => `ab/${i}/${'y'.repeat(65_000)}`;
    let sent = 0;
    for (let i = 1; i <= 64 && !raw.isClosed; i++) {
      raw.send({ cmd: 'publish', topic: long(i), payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: i } });
      sent++;
    }
    const disconnect = (await raw.next('disconnect')) as { reasonCode?: number };
    expect(disconnect.reasonCode).toBe(0x97);
    // Three 65 KB topics fit in 200,000 bytes, the fourth does not.
    expect(sent).toBeGreaterThanOrEqual(4);
  });
});

/** Publishes `count` QoS 1 messages of `bytes` each to `topic` from a fresh client, without waiting for the PUBACKs. */
async function flood(h: ReturnType<typeof useHarness>, port: number, topic: string, count: number, bytes: number): Promise<void> {
  const pub = await h.v4(port, { clientId: `flood-${topic.replace(/\W/g, '')}` });
  for (let i = 0; i < count; i++) void pub.publish(topic, Buffer.alloc(bytes, 0x61 + (i % 26)), { qos: 1 }).catch(() => {});
}

/** The broker's socket for a client holds output the kernel has not taken: the client is not reading. */
function backedUp(broker: Broker, clientId: string): boolean {
  const connection = broker.sessions.get(clientId)?.connection;
  return connection !== null && connection !== undefined && connection.stream.writableLength > 0;
}

describe('closing at a packet boundary', () => {
  const h = useHarness();

  it('shutdown: a v5 MQTT.js client whose output is backed up still sees DISCONNECT 0x8B (ended, then destroyed after a grace)', async () => {
    const { broker, port } = await h.broker({ sysIntervalMs: 0 });
    const sub = await connectV5(port, { clientId: 'shutdown-sub' });
    h.defer(() => sub.mqtt.end(true));
    await sub.subscribe('shutdown/t', { qos: 1 });
    sub.mqtt.stream.pause();
    await flood(h, port, 'shutdown/t', 40, 256 * 1024);
    await waitFor(() => backedUp(broker, 'shutdown-sub'), 10_000, 'the subscriber\'s output to back up');
    const held = broker.sessions.get('shutdown-sub')!.connection!.stream.writableLength;
    broker.disconnectClients();
    setTimeout(() => sub.mqtt.stream.resume(), 100);
    await sub.waitClosed(5000);
    console.log(`shutdown with ${held} bytes held in the socket: client got ${sub.messages.length} messages, then DISCONNECT 0x${sub.disconnect?.reasonCode?.toString(16)}`);
    expect(sub.disconnect?.reasonCode).toBe(0x8b);
    await waitFor(() => broker.connections.size === 0, 5000, 'every socket gone after the grace');
  });

  it('shutdown: a client that reads nothing is dropped after the grace, and Broker.close() completes', async () => {
    const { broker, port } = await h.broker({ sysIntervalMs: 0 });
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'shutdown-deaf' });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'deaf/t', qos: 1 }] });
    await raw.next('suback');
    raw.socket.pause();
    await flood(h, port, 'deaf/t', 40, 256 * 1024);
    await waitFor(() => backedUp(broker, 'shutdown-deaf'), 10_000, 'the output to back up');
    const started = Date.now();
    await broker.close();
    const took = Date.now() - started;
    console.log(`Broker.close() with a client that reads nothing: ${took} ms`);
    expect(took).toBeLessThan(3000);
    expect(broker.connections.size).toBe(0);
  });

  it('DISCONNECT from a client whose output is backed up: it still gets every packet whole, then a clean end', async () => {
    const { broker, port } = await h.broker({ sysIntervalMs: 0 });
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'leaving' });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'leaving/t', qos: 1 }] });
    await raw.next('suback');
    raw.socket.pause();
    await flood(h, port, 'leaving/t', 40, 256 * 1024);
    await waitFor(() => backedUp(broker, 'leaving'), 10_000, 'the output to back up');
    let ended = false;
    raw.socket.on('end', () => { ended = true; });
    raw.send({ cmd: 'disconnect' });
    await waitFor(() => broker.sessions.get('leaving') === undefined, 5000, 'the session to end');
    raw.socket.resume();
    await raw.waitClosed(5000);
    const bytes = Buffer.concat(raw.bytes);
    const publishes = raw.received.filter((p) => p.cmd === 'publish');
    console.log(`DISCONNECT with output backed up: ${bytes.length} bytes, ${publishes.length} whole PUBLISHes, clean end ${ended}`);
    expect(ended).toBe(true);
    expect(raw.parseErrors).toEqual([]);
    // Every byte belongs to a whole packet: the stream ends at a packet boundary.
    expect(bytes.length).toBe(raw.received.reduce((n, p) => n + mqttLength(p), 0));
  });

  it('the fuzzer excuses a cut only after the close grace (a deliberate drop), not one that comes sooner', async () => {
    // A 3.1.1 CONNACK, then the first 100 bytes of a PUBLISH announcing 2,000.
    const cut = Buffer.concat([Buffer.from([0x20, 0x02, 0x00, 0x00]), Buffer.from([0x30, 0xd0, 0x0f, 0x00, 0x01, 0x74]), Buffer.alloc(94)]);
    const soon = new SocketOracle({ version: 4 } as ReceiverLimits, 'soon');
    soon.onData(cut);
    soon.finish(300);
    expect(soon.violations.join('; ')).toMatch(/ends inside a packet/);
    const dropped = new SocketOracle({ version: 4 } as ReceiverLimits, 'dropped');
    dropped.onData(cut);
    await new Promise((r) => setTimeout(r, 350));
    dropped.finish(300);
    expect(dropped.violations).toEqual([]);
    expect(dropped.droppedMidPacket).toBe(true);
  });
});

/** Bytes of a packet as mqtt-packet encodes it (the broker's encoding is the same for these packets). */
function mqttLength(packet: Packet): number {
  return mqttPacket.generate(packet).length;
}

describe('flow control after a routing error', () => {
  const h = useHarness();

  it('routing that throws once closes that publisher (0x83) and leaves no current publisher behind; the next publisher is not held', async () => {
    const { broker, port } = await h.broker({ sysIntervalMs: 0 });
    const sub = await h.v5(port, { clientId: 'after-throw-sub' });
    await sub.subscribe('throw/#', { qos: 1 });
    const retained = broker.retained;
    const set = retained.set.bind(retained);
    let thrown = 0;
    retained.set = (message) => {
      if (message.topic === 'throw/bad' && thrown++ === 0) throw new Error('injected routing failure');
      return set(message);
    };
    const bad = await h.v5(port, { clientId: 'after-throw-bad' });
    void bad.publish('throw/bad', 'x', { qos: 1, retain: true }).catch(() => {});
    await bad.waitClosed(5000);
    expect(thrown).toBe(1);
    expect(bad.disconnect?.reasonCode).toBe(0x83);
    expect(broker.currentPublisher).toBeNull();
    // The next publishers, a socket client and an in-process one, get through.
    const good = await h.v5(port, { clientId: 'after-throw-good' });
    for (let i = 0; i < 20; i++) await good.publish('throw/good', `m${i}`, { qos: 1, retain: true });
    const local = broker.createLocalClient('after-throw-local');
    await local.publish('throw/local', 'local', { qos: 1 });
    await sub.waitMessages(21);
    expect(sub.messages.map((m) => m.text)).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i}`), 'local']);
    expect(broker.currentPublisher).toBeNull();
  });
});
