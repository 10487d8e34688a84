// The in-process client API (broker.createLocalClient) used by device adapters and the bridge,
// against real socket clients, per the contract in src/broker/types.ts.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/broker/types.js';
import { connectV4, sleep, startBroker, useHarness, waitFor } from '../helpers/broker.js';

describe('local client', () => {
  const h = useHarness();

  it('publishes to socket subscribers (3.1.1 and 5.0), with QoS, retain and v5 properties', async () => {
    const { port, broker } = await h.broker();
    const v4 = await h.v4(port, { clientId: 'v4' });
    const v5 = await h.v5(port, { clientId: 'v5' });
    await v4.subscribe('meter/#', { qos: 2 });
    await v5.subscribe('meter/#', { qos: 2 });
    const local = broker.createLocalClient('adapter-meter1');
    h.defer(() => local.close());
    await local.publish('meter/1/power', '42.5', {
      qos: 1,
      properties: { contentType: 'text/plain', userProperties: { unit: 'kW' }, messageExpiryInterval: 60, payloadFormatIndicator: true },
    });
    const [a] = await v4.waitMessages(1);
    const [b] = await v5.waitMessages(1);
    expect([a!.topic, a!.text, a!.qos]).toEqual(['meter/1/power', '42.5', 1]);
    expect([b!.topic, b!.text, b!.qos]).toEqual(['meter/1/power', '42.5', 1]);
    expect(b!.properties?.contentType).toBe('text/plain');
    expect(b!.properties?.userProperties).toEqual({ unit: 'kW' });
    expect(b!.properties?.payloadFormatIndicator).toBe(true);
    expect(b!.properties?.messageExpiryInterval).toBeLessThanOrEqual(60);
  });

  it('receives socket publishes through its handler as a Message with topic, payload, qos, retain, properties and origin', async () => {
    const { port, broker } = await h.broker();
    const local = broker.createLocalClient('bridge');
    h.defer(() => local.close());
    const got: Message[] = [];
    local.subscribe('cmd/+/set', (m) => got.push(m), { qos: 1 });
    const c = await h.v5(port, { clientId: 'operator' });
    await c.publish('cmd/valve1/set', 'open', { qos: 1, properties: { correlationData: Buffer.from('42'), responseTopic: 'cmd/valve1/ack' } });
    await waitFor(() => got.length === 1);
    const m = got[0]!;
    expect(m.topic).toBe('cmd/valve1/set');
    expect(Buffer.isBuffer(m.payload)).toBe(true);
    expect(m.payload.toString()).toBe('open');
    expect(m.qos).toBeLessThanOrEqual(1);
    expect(m.retain).toBe(false);
    expect(m.origin).toBe('operator');
    expect(m.properties?.responseTopic).toBe('cmd/valve1/ack');
    expect(Buffer.from(m.properties!.correlationData!).toString()).toBe('42');
  });

  it('gets retained messages on subscribe, asynchronously', async () => {
    const { port, broker } = await h.broker();
    const c = await h.v4(port, { clientId: 'pub' });
    await c.publish('state/a', 'A', { qos: 1, retain: true });
    await c.publish('state/b', 'B', { qos: 1, retain: true });
    const local = broker.createLocalClient('reader');
    h.defer(() => local.close());
    const got: Message[] = [];
    local.subscribe('state/#', (m) => got.push(m));
    expect(got).toEqual([]); // not synchronously inside subscribe()
    await waitFor(() => got.length === 2);
    expect(got.map((m) => [m.topic, m.payload.toString(), m.retain]).sort()).toEqual([
      ['state/a', 'A', true],
      ['state/b', 'B', true],
    ]);
  });

  it('a retained local publish is delivered to later socket subscribers', async () => {
    const { port, broker } = await h.broker();
    const local = broker.createLocalClient('adapter');
    h.defer(() => local.close());
    await local.publish('device/1/online', 'true', { qos: 1, retain: true });
    const c = await h.v4(port, { clientId: 'late' });
    await c.subscribe('device/+/online', { qos: 1 });
    const [m] = await c.waitMessages(1);
    expect([m!.text, m!.retain]).toEqual(['true', true]);
  });

  it('unsubscribe stops one filter; close stops all of them', async () => {
    const { port, broker } = await h.broker();
    const local = broker.createLocalClient('listener');
    const got: string[] = [];
    local.subscribe('a/#', (m) => got.push(m.topic));
    local.subscribe('b/#', (m) => got.push(m.topic));
    const c = await h.v4(port, { clientId: 'pub' });
    await c.publish('a/1', 'x', { qos: 1 });
    await c.publish('b/1', 'x', { qos: 1 });
    await waitFor(() => got.length === 2);
    local.unsubscribe('a/#');
    await c.publish('a/2', 'x', { qos: 1 });
    await c.publish('b/2', 'x', { qos: 1 });
    await waitFor(() => got.length === 3);
    local.close();
    await c.publish('b/3', 'x', { qos: 1 });
    await sleep(300);
    expect(got).toEqual(['a/1', 'b/1', 'b/2']);
  });

  it('noLocal: its own publishes are not delivered back to it', async () => {
    const { port, broker } = await h.broker();
    const local = broker.createLocalClient('echo');
    h.defer(() => local.close());
    const got: string[] = [];
    local.subscribe('loop/#', (m) => got.push(m.payload.toString()), { noLocal: true });
    await local.publish('loop/1', 'mine', { qos: 1 });
    const c = await h.v4(port, { clientId: 'other' });
    await c.publish('loop/1', 'theirs', { qos: 1 });
    await waitFor(() => got.length >= 1);
    await sleep(200);
    expect(got).toEqual(['theirs']);
  });

  it('rejects a publish to a topic with wildcards and throws for an invalid filter', async () => {
    const { broker } = await h.broker();
    const local = broker.createLocalClient('careless');
    h.defer(() => local.close());
    await expect(local.publish('a/+/b', 'x')).rejects.toThrow();
    await expect(local.publish('', 'x')).rejects.toThrow();
    expect(() => local.subscribe('a/#/b', () => {})).toThrow();
  });

  it('is subject to the denial hook', async () => {
    const { port, broker } = await h.broker({ authorize: (c, action, topic) => !(c.local && topic.startsWith('private')) });
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe('private/#', { qos: 1 });
    const local = broker.createLocalClient('restricted');
    h.defer(() => local.close());
    await local.publish('private/x', 'nope', { qos: 1 }).catch(() => undefined);
    const got: Message[] = [];
    try {
      local.subscribe('private/#', (m) => got.push(m));
    } catch {
      // refusing by throwing is fine
    }
    await watcher.publish('private/y', 'watcher to itself', { qos: 1 });
    await waitFor(() => watcher.texts().includes('watcher to itself'));
    await sleep(200);
    expect(watcher.texts()).toEqual(['watcher to itself']);
    expect(got).toEqual([]);
  });
});

describe('durable local subscriptions and durability of local publishes', () => {
  const h = useHarness();

  it('a durable handler writes in the broker transaction: its row is committed before the publisher gets PUBACK', async () => {
    const dataDir = await h.tempDir();
    const { port, broker } = await h.broker({ dataDir });
    broker.db.exec('CREATE TABLE test_outbox (topic TEXT NOT NULL, payload BLOB NOT NULL)');
    const insert = broker.db.prepare('INSERT INTO test_outbox (topic, payload) VALUES (?, ?)');
    const local = broker.createLocalClient('bridge');
    h.defer(() => local.close());
    local.subscribe('up/#', (m) => insert.run(m.topic, m.payload), { durable: true, qos: 1 });
    // a second, independent connection sees only committed rows
    const reader = new Database(broker.db.name, { readonly: true, fileMustExist: true });
    h.defer(() => reader.close());
    const count = () => (reader.prepare('SELECT COUNT(*) AS n FROM test_outbox').get() as { n: number }).n;

    const c = await h.v4(port, { clientId: 'field' });
    for (let i = 0; i < 20; i++) {
      await c.publish(`up/${i}`, `r${i}`, { qos: 1 });
      expect(count()).toBe(i + 1); // PUBACK came after the commit that holds this row
    }
    const rows = reader.prepare('SELECT topic, payload FROM test_outbox').all() as Array<{ topic: string; payload: Buffer }>;
    expect(rows.map((r) => r.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
  });

  it('QoS 2: the durable row is committed before PUBREC', async () => {
    const dataDir = await h.tempDir();
    const { port, broker } = await h.broker({ dataDir, commitWindowMs: 20 });
    broker.db.exec('CREATE TABLE test_outbox2 (topic TEXT NOT NULL)');
    const insert = broker.db.prepare('INSERT INTO test_outbox2 (topic) VALUES (?)');
    const local = broker.createLocalClient('bridge2');
    h.defer(() => local.close());
    local.subscribe('up2/#', (m) => insert.run(m.topic), { durable: true, qos: 2 });
    const reader = new Database(broker.db.name, { readonly: true, fileMustExist: true });
    h.defer(() => reader.close());
    const count = () => (reader.prepare('SELECT COUNT(*) AS n FROM test_outbox2').get() as { n: number }).n;
    const raw = await h.raw(port);
    await raw.connect({ clientId: 'q2-field' });
    for (let id = 1; id <= 10; id++) {
      raw.send({ cmd: 'publish', topic: `up2/${id}`, payload: Buffer.from('x'), qos: 2, messageId: id, dup: false, retain: false });
      await raw.next('pubrec');
      expect(count()).toBe(id);
      raw.send({ cmd: 'pubrel', messageId: id });
      await raw.next('pubcomp');
    }
  });

  it('a QoS 1 local publish resolves once it is stored for an offline persistent session, which gets it after a restart', async () => {
    const dataDir = await h.tempDir();
    let started = await startBroker({ dataDir });
    h.defer(() => started.close());
    const sub = await connectV4(started.port, { clientId: 'offline-sub', clean: false });
    await sub.subscribe('reading/#', { qos: 1 });
    await sub.end();
    const local = started.broker.createLocalClient('adapter');
    await local.publish('reading/1', 'first', { qos: 1 });
    await local.publish('reading/2', 'second', { qos: 1 });
    local.close();
    await started.close();
    started = await startBroker({ dataDir });
    const back = await connectV4(started.port, { clientId: 'offline-sub', clean: false });
    h.defer(() => back.mqtt.end(true));
    await back.waitMessages(2);
    expect(back.texts()).toEqual(['first', 'second']);
  });
});
