// Retained messages nobody waits for (device readings, QoS 0: Message.holdable) are written to SQLite coalesced:
// the last value per topic, at most once per broker.retainedWriteIntervalMs. Writes are counted by a trigger on the
// retained table (INSERT OR REPLACE fires the insert trigger once per row written).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { spawnBroker } from '../helpers/child-broker.js';
import { silentLogger } from '../../src/log.js';
import { HOST, sleep, waitFor } from '../helpers/broker.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning up
    }
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fieldgate-retained-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startBroker(dataDir: string, retainedWriteIntervalMs: number): Promise<{ broker: Broker; url: string; writes(topic: string): number }> {
  const broker = new Broker({ dataDir, logger: silentLogger, sysIntervalMs: 0, durability: 'normal', retainedWriteIntervalMs });
  await broker.start();
  const { port } = await broker.listen({ port: 0, host: HOST });
  cleanups.push(() => broker.close());
  broker.db.exec(`
    CREATE TEMP TABLE retained_writes (topic TEXT);
    CREATE TEMP TRIGGER count_retained_writes AFTER INSERT ON main.retained BEGIN INSERT INTO retained_writes VALUES (new.topic); END;
  `);
  const count = broker.db.prepare('SELECT count(*) AS n FROM retained_writes WHERE topic = ?');
  return { broker, url: `mqtt://${HOST}:${port}`, writes: (topic) => (count.get(topic) as { n: number }).n };
}

function storedPayload(broker: Broker, topic: string): string | undefined {
  const row = broker.db.prepare('SELECT payload FROM retained WHERE topic = ?').get(topic) as { payload: Buffer } | undefined;
  return row?.payload.toString();
}

describe('retained coalescing', () => {
  it('50 device readings on one topic: subscribers see each at once, SQLite gets the last one once per interval', async () => {
    const gw = await startBroker(tempDir(), 400);
    const device = gw.broker.createLocalClient('meter');
    const sub = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    const seen: string[] = [];
    sub.on('message', (_t, p) => seen.push(p.toString()));
    await sub.subscribeAsync('fieldgate/meter/power', { qos: 1 });
    for (let i = 0; i < 50; i++) await device.publish('fieldgate/meter/power', String(i), { qos: 0, retain: true });
    await waitFor(() => seen.length === 50);
    // A new subscriber gets the newest value from memory at once.
    const late = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => late.endAsync(true));
    const lateSeen: string[] = [];
    late.on('message', (_t, p) => lateSeen.push(p.toString()));
    await late.subscribeAsync('fieldgate/meter/power', { qos: 1 });
    await waitFor(() => lateSeen.length === 1);
    expect(lateSeen).toEqual(['49']);
    expect(gw.writes('fieldgate/meter/power')).toBe(0);
    await waitFor(() => gw.writes('fieldgate/meter/power') > 0, 3000, 'the coalesced write');
    await sleep(100);
    expect(gw.writes('fieldgate/meter/power')).toBe(1);
    expect(storedPayload(gw.broker, 'fieldgate/meter/power')).toBe('49');
    // Another burst: again one write, not one per reading.
    for (let i = 50; i < 80; i++) await device.publish('fieldgate/meter/power', String(i), { qos: 0, retain: true });
    await waitFor(() => gw.writes('fieldgate/meter/power') === 2, 3000, 'the second coalesced write');
    expect(storedPayload(gw.broker, 'fieldgate/meter/power')).toBe('79');
  });

  it('a QoS 1 retained PUBLISH from a socket client is written before its PUBACK, and supersedes a pending coalesced value', async () => {
    const gw = await startBroker(tempDir(), 60_000);
    const device = gw.broker.createLocalClient('meter');
    await device.publish('fieldgate/meter/relay', 'device-value', { qos: 0, retain: true });
    const pub = await mqtt.connectAsync(gw.url, { reconnectPeriod: 0 });
    cleanups.push(() => pub.endAsync(true));
    await pub.publishAsync('fieldgate/meter/relay', 'acknowledged', { qos: 1, retain: true });
    expect(gw.writes('fieldgate/meter/relay')).toBe(1);
    expect(storedPayload(gw.broker, 'fieldgate/meter/relay')).toBe('acknowledged');
    // The device's older pending value must not overwrite it later (at close).
    await gw.broker.close();
  });

  it('$SYS topics are never stored; a graceful close writes what is pending', async () => {
    const dir = tempDir();
    const gw = await startBroker(dir, 60_000);
    const local = gw.broker.createLocalClient('x');
    await local.publish('$SYS/broker/test', '1', { retain: true });
    await local.publish('fieldgate/meter/voltage', '230.1', { qos: 0, retain: true });
    await sleep(50);
    expect(gw.writes('$SYS/broker/test')).toBe(0);
    expect(gw.writes('fieldgate/meter/voltage')).toBe(0);
    await gw.broker.close();
    const again = await startBroker(dir, 60_000);
    expect(storedPayload(again.broker, 'fieldgate/meter/voltage')).toBe('230.1');
    expect(storedPayload(again.broker, '$SYS/broker/test')).toBeUndefined();
  });

  it('kill -9 keeps the value written at the last interval: at most one interval of retained readings is lost', async () => {
    const dir = tempDir();
    const child = await spawnBroker(dir, { retainedWriteIntervalMs: 300, sysIntervalMs: 0 });
    cleanups.push(() => child.kill9());
    const pub = await mqtt.connectAsync(`mqtt://${HOST}:${child.port}`, { reconnectPeriod: 0 });
    // QoS 0 retained: nobody waits for it to be stored, so it is coalesced like a device reading.
    await pub.publishAsync('fieldgate/meter/energy', 'old', { qos: 0, retain: true });
    await sleep(800);
    await pub.publishAsync('fieldgate/meter/energy', 'new', { qos: 0, retain: true });
    await pub.publishAsync('fieldgate/meter/acked', 'kept', { qos: 1, retain: true });
    await child.kill9();
    pub.end(true);
    const again = await startBroker(dir, 300);
    expect(storedPayload(again.broker, 'fieldgate/meter/energy')).toBe('old');
    expect(storedPayload(again.broker, 'fieldgate/meter/acked')).toBe('kept');
  });
});
