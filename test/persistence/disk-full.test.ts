// A full or failing disk (issue 9): no PUBACK for a message that was not durably stored, an alarm,
// writing resumes by itself, nothing acknowledged is lost, nothing crashes.
// In process with SQLite's max_page_count (a database that cannot grow); the whole gateway on a
// real, size-limited tmpfs is in disk-full-tmpfs.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { gatewayHealth } from '../../src/metrics/collectors.js';
import { pino } from 'pino';

const clients: MqttClient[] = [];
let broker: Broker | null = null;
let dir: string | null = null;

afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await broker?.close();
  broker = null;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function logCollector() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number; msg: string }); } });
  return { logger, lines };
}

async function connect(port: number, clientId: string, protocolVersion: 4 | 5, clean = true): Promise<MqttClient> {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port, clientId, protocolVersion, clean, reconnectPeriod: 100, ...(protocolVersion === 5 && !clean ? { properties: { sessionExpiryInterval: 3600 } } : {}) });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

describe('a database that cannot grow (SQLite max_page_count)', () => {
  it('refuses (v5: 0x97) or withholds (3.1.1) PUBACKs while commits fail, alarms once, and recovers without losing an acknowledged message', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-diskfull-'));
    const { logger, lines } = logCollector();
    broker = new Broker({ dataDir: dir, logger, sysIntervalMs: 60_000, commitWindowMs: 2 });
    await broker.start();
    const { port } = await broker.listen({ port: 0 });
    const b = broker;

    const watcher = await connect(port, 'watcher', 4);
    const states: string[] = [];
    watcher.on('message', (topic, payload) => { if (topic === '$SYS/broker/store/state') states.push(payload.toString()); });
    await watcher.subscribeAsync('$SYS/broker/store/state', { qos: 0 });
    // A persistent subscriber that is away: everything it is sent goes into its queue on disk.
    const away = await connect(port, 'away', 4, false);
    await away.subscribeAsync('d/#', { qos: 1 });
    await away.endAsync();
    const v5 = await connect(port, 'pub-v5', 5);
    const v4 = await connect(port, 'pub-v4', 4);
    const payload = Buffer.alloc(8 * 1024, 7);
    await v5.publishAsync('d/v5', Buffer.concat([Buffer.from('v5:0:'), payload]), { qos: 1 });

    // From here on the database may not grow by a page.
    const pages = Number(b.db.pragma('page_count', { simple: true }));
    b.db.pragma(`max_page_count = ${pages}`);
    const acked: string[] = [];
    const refused: string[] = [];
    const publish = (client: MqttClient, name: string) =>
      client.publish(`d/${name.split(':')[0]}`, Buffer.concat([Buffer.from(`${name}:`), payload]), { qos: 1 }, (err, packet) => {
        const rc = (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
        if (!err && rc < 0x80) acked.push(name);
        else refused.push(`${name}:${(err as { code?: number } | undefined)?.code ?? rc}`);
      });
    // The first one fails the commit; its PUBACK is held, not sent.
    publish(v5, 'v5:1');
    await waitFor(() => !b.storeState.writable, 'the store to report failing commits');
    expect(b.storeState.error).toMatch(/full/i);
    // Later ones are answered at once with 0x97 (v5) or not at all (3.1.1).
    publish(v5, 'v5:2');
    publish(v4, 'v4:1');
    publish(v4, 'v4:2');
    await waitFor(() => refused.length >= 1, 'PUBACK 0x97 for v5:2');
    await new Promise((r) => setTimeout(r, 2500)); // two retries of the failing commit
    expect(acked).toEqual([]);
    expect(refused).toEqual(['v5:2:151']);
    expect(states.at(-1)).toBe('failing');
    await expect(gatewayHealth({ broker: b, listeners: () => [] })()).rejects.toThrow(/database writes failing since .*full/);
    // The alarm is logged once, not per retry or message.
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([expect.stringMatching(/^database writes are failing/)]);
    // Nothing crashed: the broker still answers.
    await watcher.publishAsync('ping', 'x', { qos: 0 });

    // Space is back: writing resumes by itself, the held PUBACK goes out, the 3.1.1 publisher is
    // disconnected and resends what it was not acknowledged for.
    b.db.pragma('max_page_count = 1073741823');
    await waitFor(() => b.storeState.writable, 'the store to write again', 5000);
    await waitFor(() => acked.includes('v5:1') && acked.includes('v4:1') && acked.includes('v4:2'), 'v5:1, v4:1, v4:2 acknowledged', 10_000);
    expect(acked).toEqual(['v5:1', 'v4:1', 'v4:2']);
    await waitFor(() => states.at(-1) === 'ok', '$SYS store state ok');
    expect(await gatewayHealth({ broker: b, listeners: () => [] })()).toBe(true);
    expect(lines.some((l) => /database writes succeed again/.test(l.msg))).toBe(true);

    // The subscriber gets every acknowledged message, in order per publisher, and not the refused one.
    const got: string[] = [];
    // The handler is attached before the CONNACK: the queued messages follow it at once.
    const back = mqtt.connect({ host: '127.0.0.1', port, clientId: 'away', clean: false, reconnectPeriod: 0 });
    clients.push(back);
    back.on('message', (_t, p) => got.push(p.subarray(0, p.indexOf(':', 3)).toString()));
    await waitFor(() => got.length >= 4, 'the queued messages', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: got ${JSON.stringify(got)}, queue ${b.sessions.get('away')?.queue.length}, rows ${JSON.stringify(b.db.prepare('SELECT seq, topic FROM queue').all())}`);
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(got.filter((g) => g.startsWith('v5'))).toEqual(['v5:0', 'v5:1']);
    expect(got.filter((g) => g.startsWith('v4'))).toEqual(['v4:1', 'v4:2']);

    // And it is all on disk: a restart delivers nothing twice that was acknowledged, and loses nothing.
    await b.close();
    broker = new Broker({ dataDir: dir, logger, sysIntervalMs: 0 });
    await broker.start();
    expect(broker.sessions.get('away')?.queue.length ?? 0).toBe(0);
  });

  it('keeps the pending batch bounded while in-process publishers go on during a long failure', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-diskfull-'));
    broker = new Broker({ dataDir: dir, sysIntervalMs: 0, commitWindowMs: 2, maxQueuedMessages: 1000 });
    await broker.start();
    const b = broker;
    const { port } = await b.listen({ port: 0 });
    const away = await connect(port, 'away', 4, false);
    await away.subscribeAsync('dev/#', { qos: 1 });
    await away.endAsync();
    b.db.pragma(`max_page_count = ${Number(b.db.pragma('page_count', { simple: true }))}`);
    const device = b.createLocalClient('device');
    const big = Buffer.alloc(4096, 1);
    void device.publish('dev/x', big, { qos: 1 });
    await waitFor(() => !b.storeState.writable, 'the store to fail');
    for (let i = 0; i < 60_000; i++) void device.publish(`dev/${i % 50}`, `r${i}`, { qos: 1, retain: true });
    expect(b.store.pending).toBeLessThanOrEqual(20_000 + 10);
    b.db.pragma('max_page_count = 1073741823');
    await waitFor(() => b.storeState.writable, 'the store to write again', 5000);
    // The session queue (drop-oldest at maxQueuedMessages) and the retained values survive intact.
    const queued = Number((b.db.prepare('SELECT count(*) AS n FROM queue').get() as { n: number }).n);
    expect(queued).toBe(b.sessions.get('away')!.queue.length);
    expect(b.retained.match('dev/#').length).toBe(50);
  });
});
