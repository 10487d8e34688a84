// The hold stage (src/bridge/hold.ts): messages nobody waits for wait in memory for the cloud's PUBACK and are written
// only when the hold time passes, memory fills or the bridge stops: to the spill log in the data directory
// (src/bridge/spill-log.ts; counted by the bridge's spillWrites and by its files), or, without a data directory, to
// the outbox table. What reaches SQLite is counted from the outbox table's AUTOINCREMENT counter (sqlite_sequence),
// which every insert raises and nothing lowers.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { startBridge, type BridgeConfigInput, type BridgeHandle } from '../../src/bridge/index.js';
import { requireTool } from '../helpers/peers.js';
import { AedesRemote, HOST, MosquittoRemote, captureLogger, checkSequence, publishMany, tempDir, waitFor } from './helpers.js';

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

interface Gateway { broker: Broker; url: string; bridge: BridgeHandle; dataDir: string | null }

async function startGateway(bridgeConfig: Partial<BridgeConfigInput> & { url: string }, dataDir?: string | null): Promise<Gateway> {
  const dir = dataDir === undefined ? tempDir().path : dataDir;
  const { logger } = captureLogger();
  const broker = new Broker({ dataDir: dir, logger, sysIntervalMs: 0, durability: 'normal' });
  await broker.start();
  const { port } = await broker.listen({ port: 0, host: HOST });
  cleanups.push(() => broker.close());
  const bridge = await startBridge(broker, {
    name: 'cloud', clientId: 'gw-hold',
    rules: [{ direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw/' }],
    reconnect: { minMs: 50, maxMs: 300 },
    ...bridgeConfig,
  }, logger);
  cleanups.push(() => bridge.stop());
  return { broker, url: `mqtt://${HOST}:${port}`, bridge, dataDir: dir };
}

/** Rows ever inserted into the outbox (AUTOINCREMENT's counter), read through the broker's own connection. */
function rowsEverWritten(broker: Broker): number {
  const r = broker.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'bridge_outbox_cloud'`).get() as { seq: number } | undefined;
  return r?.seq ?? 0;
}

/** Messages the hold stage wrote to the spill log since the bridge started. */
function spilledEver(gw: { bridge: BridgeHandle }): number {
  return gw.bridge.state().spillWrites.messages;
}

/** Segment files of the spill log on disk. */
function segmentFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'spill-cloud');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.spill')) : [];
}

function rowsNow(broker: Broker): number {
  return (broker.db.prepare('SELECT count(*) AS n FROM bridge_outbox_cloud').get() as { n: number }).n;
}

async function cloudSubscriber(port: number): Promise<string[]> {
  const got: string[] = [];
  const sub = mqtt.connect(`mqtt://${HOST}:${port}`, { clientId: `cloud-sub-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 100 });
  cleanups.push(() => sub.endAsync(true));
  sub.on('message', (_t, p) => got.push(p.toString()));
  await new Promise<void>((resolve) => sub.once('connect', () => resolve()));
  await sub.subscribeAsync('fleet/gw/#', { qos: 1 });
  return got;
}

const haveMosquitto = requireTool('mosquitto');

describe.skipIf(!haveMosquitto)('hold stage against Mosquitto', () => {
  it('readings the cloud acknowledges within the hold time never reach SQLite; all arrive in order', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    const got = await cloudSubscriber(port);
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 2000 } });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'bridge connected');
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 500; i++) {
      void device.publish('sensors/meter/power', String(i), { qos: 0 });
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => got.length >= 500, 15_000, '500 readings at the cloud');
    expect(checkSequence(got, 500)).toMatchObject({ missing: [], outOfOrder: 0, duplicates: 0 });
    await waitFor(() => gw.bridge.state().held === 0, 5000, 'nothing held');
    expect(gw.bridge.state()).toMatchObject({ acked: 500, outboxDepth: 0, held: 0 });
    expect(rowsEverWritten(gw.broker)).toBe(0);
    expect(spilledEver(gw)).toBe(0);
    expect(segmentFiles(gw.dataDir!)).toEqual([]);
  }, 30_000);

  it('readings that outlive the hold time (cloud down) are written once, in few batches, then all arrive', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 300 } });
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 40; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    expect(spilledEver(gw)).toBe(0);
    expect(gw.bridge.state()).toMatchObject({ held: 40, outboxDepth: 40 });
    await waitFor(() => gw.bridge.state().spilled === 40, 5000, 'the 40 readings in the spill log');
    expect(spilledEver(gw)).toBe(40);
    // one batch per hold time (the connection attempts may add one): few writes, not one per reading
    expect(gw.bridge.state().spillWrites.batches).toBeLessThanOrEqual(3);
    expect(segmentFiles(gw.dataDir!)).toHaveLength(1);
    expect(rowsEverWritten(gw.broker)).toBe(0);
    expect(gw.bridge.state()).toMatchObject({ held: 0, outboxDepth: 40 });
    await cloud.start(port);
    const got = await cloudSubscriber(port);
    // Published before the subscriber was there: look at the bridge's count, then at a second batch end to end.
    await waitFor(() => gw.bridge.state().acked === 40, 15_000, 'the backlog acknowledged');
    for (let i = 40; i < 60; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    await waitFor(() => got.includes('59'), 10_000, 'new readings at the cloud');
    // (the subscriber may have been in time for some of the backlog too)
    expect(got.slice(-20)).toEqual(Array.from({ length: 20 }, (_, i) => String(40 + i)));
    expect(checkSequence(got, 60)).toMatchObject({ outOfOrder: 0, duplicates: 0 });
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 5000, 'backlog empty');
    // written once each: the 40 of the outage, none of the 20 sent while connected; the acknowledged segment is gone
    expect(spilledEver(gw)).toBe(40);
    expect(rowsEverWritten(gw.broker)).toBe(0);
    await waitFor(() => segmentFiles(gw.dataDir!).length === 0, 5000, 'segment deleted');
  }, 30_000);

  it('a QoS 1 PUBLISH from a socket client is still written before its PUBACK (never held)', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 60_000 } });
    await publishMany(gw.url, 'sensors/q1', 25);
    // every PUBACK came after its row was committed
    expect(rowsEverWritten(gw.broker)).toBe(25);
    expect(gw.bridge.state()).toMatchObject({ held: 0, spilled: 0 });
    expect(spilledEver(gw)).toBe(0);
  }, 20_000);

  it('memory full: the oldest held messages are written at once', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 60_000, maxMessages: 10 } });
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 25; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    const state = gw.bridge.state();
    expect(state.held).toBeLessThanOrEqual(10);
    expect(spilledEver(gw)).toBe(25 - state.held);
    expect(state.spilled).toBe(25 - state.held);
    expect(state.outboxDepth).toBe(25);
    expect(rowsEverWritten(gw.broker)).toBe(0);
  }, 20_000);

  it('a graceful stop writes what is held; the next start sends it', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 60_000 } }, dir.path);
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 7; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    expect(spilledEver(gw)).toBe(0);
    await gw.bridge.stop();
    expect(spilledEver(gw)).toBe(7);
    expect(segmentFiles(dir.path)).toHaveLength(1);
    await gw.broker.close();
    await cloud.start(port);
    const got = await cloudSubscriber(port);
    const again = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 60_000 } }, dir.path);
    expect(again.bridge.state()).toMatchObject({ spilled: 7 });
    await waitFor(() => got.length >= 7, 10_000, 'the 7 at the cloud');
    expect(got).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    await waitFor(() => again.bridge.state().outboxDepth === 0, 5000, 'backlog empty');
    await waitFor(() => segmentFiles(dir.path).length === 0, 5000, 'segment deleted');
    expect(rowsEverWritten(again.broker)).toBe(0);
  }, 30_000);
});

describe.skipIf(!haveMosquitto)('spill log left by a run with the hold on', () => {
  it('is still sent after a restart with hold.ms 0 (everything else written first), then deleted', async () => {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 60_000 } }, dir.path);
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 5; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    await gw.bridge.stop();
    await gw.broker.close();
    expect(segmentFiles(dir.path)).toHaveLength(1);
    await cloud.start(port);
    const got = await cloudSubscriber(port);
    const again = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 0 } }, dir.path);
    const device2 = again.broker.createLocalClient('meter');
    await waitFor(() => again.bridge.state().connected, 10_000, 'connected');
    for (let i = 5; i < 8; i++) await device2.publish('sensors/meter/power', String(i), { qos: 0 });
    await waitFor(() => got.length >= 8, 10_000, 'the 8 at the cloud');
    expect(got).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    // hold.ms 0: the new ones went to the outbox table first; the old log is gone once acknowledged
    expect(rowsEverWritten(again.broker)).toBe(3);
    await waitFor(() => segmentFiles(dir.path).length === 0, 5000, 'segment deleted');
  }, 30_000);
});

describe('outbox limits over the spill log and the outbox table together', () => {
  it('maxRows with drop-oldest drops the oldest of both stores; what is kept arrives in order', async () => {
    const remote = new AedesRemote();
    const port = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 100 }, outbox: { maxRows: 10, policy: 'drop-oldest' } });
    const device = gw.broker.createLocalClient('meter');
    // 8 readings spilled, then 4 QoS 1 rows (12 > 10: the two oldest readings go), then 6 more readings spilled
    for (let i = 0; i < 8; i++) void device.publish('sensors/meter/power', `r${i}`, { qos: 0 });
    await waitFor(() => gw.bridge.state().spilled === 8, 5000, '8 spilled');
    for (let i = 0; i < 4; i++) await device.publish('sensors/q1', `q${i}`, { qos: 1 });
    expect(gw.bridge.state()).toMatchObject({ outboxDepth: 10, spilled: 6, dropped: 2 });
    for (let i = 8; i < 14; i++) void device.publish('sensors/meter/power', `r${i}`, { qos: 0 });
    await waitFor(() => gw.bridge.state().held === 0, 5000, 'all spilled');
    // 6 more: the 6 oldest of both go (r2..r7 were spilled before the QoS 1 rows)
    expect(gw.bridge.state()).toMatchObject({ outboxDepth: 10, dropped: 8 });
    await remote.start(port);
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 15_000, 'backlog sent');
    // Everything the bridge sent, in order: the kept ten, the QoS 1 rows before the readings spilled after them.
    expect([...new Set(remote.payloads('fleet/gw/'))]).toEqual(['q0', 'q1', 'q2', 'q3', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13']);
    await waitFor(() => segmentFiles(gw.dataDir!).length === 0, 5000, 'segments deleted');
  }, 30_000);
});

describe('hold stage on a full disk, without a data directory (held messages go to the outbox table)', () => {
  it('keeps what it cannot write in memory, retries about once a second (no busy loop), writes it when space returns', async () => {
    const remote = new AedesRemote();
    const port = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const { logger, entries } = captureLogger();
    const broker = new Broker({ dataDir: null, logger, sysIntervalMs: 0, durability: 'normal' });
    await broker.start();
    cleanups.push(() => broker.close());
    const bridge = await startBridge(broker, {
      name: 'cloud', clientId: 'gw-full', url: `mqtt://${HOST}:${port}`,
      rules: [{ direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw/' }],
      reconnect: { minMs: 50, maxMs: 300 }, hold: { ms: 100 },
    }, logger);
    cleanups.push(() => bridge.stop());
    // SQLite's own limit makes every write that needs a new page fail with SQLITE_FULL.
    const pages = (broker.db.pragma('page_count', { simple: true }) as number);
    broker.db.pragma(`max_page_count = ${pages}`);
    // Every write attempt is a transaction on the broker's connection: count them.
    let transactions = 0;
    const db = broker.db;
    const transaction = db.transaction.bind(db);
    db.transaction = ((fn: (...a: unknown[]) => unknown) => {
      transactions += 1;
      return transaction(fn);
    }) as typeof db.transaction;
    const device = broker.createLocalClient('meter');
    const payload = 'x'.repeat(2000);
    for (let i = 0; i < 30; i++) void device.publish('sensors/meter/blob', `${i}:${payload}`, { qos: 0 });
    await new Promise((r) => setTimeout(r, 2500));
    expect(entries.some((e) => String(e.msg).includes('cannot write held messages'))).toBe(true);
    // ~2.5 s at one retry per second, not a busy loop.
    expect(transactions).toBeGreaterThanOrEqual(2);
    expect(transactions).toBeLessThanOrEqual(6);
    expect(bridge.state()).toMatchObject({ held: 30, outboxDepth: 30 });
    expect(rowsEverWritten(broker)).toBe(0);
    broker.db.pragma('max_page_count = 1073741823');
    await waitFor(() => rowsNow(broker) === 30, 5000, 'the 30 written once space is back');
    expect(bridge.state().held).toBe(0);
    await remote.start(port);
    await waitFor(() => remote.payloads('fleet/gw/sensors/meter/blob').length >= 30, 15_000, 'the 30 at the remote');
    expect(remote.payloads('fleet/gw/sensors/meter/blob').map((p) => Number(p.split(':')[0]))).toEqual(Array.from({ length: 30 }, (_, i) => i));
  }, 30_000);
});

describe('hold stage with a remote that does not acknowledge', () => {
  it('a message in flight waits for its PUBACK on a live connection; when the connection drops it is written, resent with DUP, deleted after the PUBACK', async () => {
    let stuck = true;
    const remote = new AedesRemote({ holdPublishes: () => stuck });
    cleanups.push(() => remote.stop());
    const port = await remote.start();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 200 }, ackTimeoutSeconds: 2 });
    await waitFor(() => gw.bridge.state().connected, 10_000, 'bridge connected');
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 5; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    await waitFor(() => remote.arrivals.length >= 5, 5000, 'the 5 sent');
    // Past the hold time, still in flight on the same connection: neither written nor sent a second time.
    await new Promise((r) => setTimeout(r, 600));
    expect(spilledEver(gw)).toBe(0);
    expect(remote.arrivals.length).toBe(5);
    expect(gw.bridge.state()).toMatchObject({ held: 5, inflight: 5 });
    // The ack timeout drops the connection: the 5 are written (once), then resent from the spill log with DUP.
    await waitFor(() => spilledEver(gw) === 5, 10_000, 'written when the connection dropped');
    stuck = false;
    await waitFor(() => gw.bridge.state().outboxDepth === 0, 15_000, 'acknowledged after the PUBACKs');
    await waitFor(() => segmentFiles(gw.dataDir!).length === 0, 5000, 'segment deleted');
    expect(remote.arrivals.slice(5).every((a) => a.dup)).toBe(true);
    expect(new Set(remote.payloads('fleet/gw/')).size).toBe(5);
    expect(spilledEver(gw)).toBe(5);
    expect(rowsEverWritten(gw.broker)).toBe(0);
    expect(gw.bridge.state().held).toBe(0);
  }, 30_000);
});

describe('hold stage across kill -9', () => {
  it('loses at most the readings of the last hold time and no acknowledged QoS 1 message', async () => {
    const remote = new AedesRemote();
    const remotePort = await remote.start();
    await remote.stop();
    cleanups.push(() => remote.stop());
    const data = tempDir();
    cleanups.push(() => data.remove());
    const holdMs = 500;
    const rate = 200;
    const first = await spawnGateway({ dataDir: data.path, remoteUrl: `mqtt://${HOST}:${remotePort}`, holdMs, readingsPerSecond: rate });
    await publishMany(`mqtt://${HOST}:${first.port}`, 'sensors/acked', 300);
    await new Promise((r) => setTimeout(r, 1500));
    first.proc.kill('SIGKILL');
    await new Promise((resolve) => first.proc.once('exit', resolve));
    const lastPublished = first.lastReading();
    await remote.start(remotePort);
    const second = await spawnGateway({ dataDir: data.path, remoteUrl: `mqtt://${HOST}:${remotePort}`, holdMs });
    void second;
    await waitFor(() => new Set(remote.payloads('fleet/gw/sensors/acked')).size === 300, 30_000, 'all 300 acknowledged QoS 1 at the remote');
    expect(checkSequence(remote.payloads('fleet/gw/sensors/acked'), 300)).toMatchObject({ missing: [], outOfOrder: 0 });
    // Readings: everything published more than the hold time (plus one 50 ms publish tick and a commit) before the kill arrives.
    const window = Math.ceil(((holdMs + 150) * rate) / 1000);
    const mustHave = lastPublished - window;
    expect(mustHave).toBeGreaterThan(100);
    await waitFor(() => remote.payloads('fleet/gw/sensors/readings').length > mustHave, 20_000, 'the readings older than the hold time');
    const readings = remote.payloads('fleet/gw/sensors/readings').map(Number);
    const seen = new Set(readings);
    const missing = Array.from({ length: mustHave + 1 }, (_, i) => i).filter((i) => !seen.has(i));
    expect(missing).toEqual([]);
    // …and what was lost is only the tail.
    expect(Math.max(...readings)).toBeLessThanOrEqual(lastPublished);
  }, 60_000);
});

async function spawnGateway(args: Record<string, unknown>): Promise<{ proc: ChildProcess; port: number; lastReading(): number }> {
  const script = join(import.meta.dirname, 'fixtures', 'gateway.ts');
  const proc = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let stderr = '';
  let last = -1;
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const ready = /^READY (\d+)/.exec(line);
        if (ready) {
          clearTimeout(timer);
          resolve(Number(ready[1]));
        }
        const r = /^R (\d+)/.exec(line);
        if (r) last = Number(r[1]);
      }
    });
    proc.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
  });
  return { proc, port, lastReading: () => last };
}


const isRoot = process.getuid?.() === 0;

describe.skipIf(!haveMosquitto)('hold stage with a spill directory that cannot be used', () => {
  async function outageThenDrain(dataDir: string): Promise<void> {
    const cloud = new MosquittoRemote();
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, hold: { ms: 300 } }, dataDir);
    const device = gw.broker.createLocalClient('meter');
    for (let i = 0; i < 40; i++) void device.publish('sensors/meter/power', String(i), { qos: 0 });
    // Written to the outbox table (as without a data directory), not kept in memory or dropped.
    await waitFor(() => rowsEverWritten(gw.broker) === 40, 10_000, 'the 40 readings in the outbox table');
    expect(gw.bridge.state()).toMatchObject({ held: 0, outboxDepth: 40, spilled: 0 });
    expect(spilledEver(gw)).toBe(0);
    await cloud.start(port);
    await waitFor(() => gw.bridge.state().acked === 40, 15_000, 'the backlog acknowledged');
    await waitFor(() => rowsNow(gw.broker) === 0, 5000, 'the outbox table empty');
  }

  it('a file where the spill directory should be: held messages go to the outbox table and arrive', async () => {
    const dataDir = tempDir().path;
    writeFileSync(join(dataDir, 'spill-cloud'), 'not a directory');
    await outageThenDrain(dataDir);
  }, 30_000);

  it.skipIf(!isRoot)('a read-only spill directory (a read-only tmpfs): held messages go to the outbox table and arrive', async () => {
    const dataDir = tempDir().path;
    const spillDir = join(dataDir, 'spill-cloud');
    mkdirSync(spillDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', spillDir]);
    cleanups.unshift(() => execFileSync('umount', [spillDir]));
    await outageThenDrain(dataDir);
  }, 30_000);
});

describe.skipIf(!haveMosquitto)('a spilled message that cannot be moved to bridge_dead (SQLITE_FULL)', () => {
  it('does not pin the spill log: the backlog behind it drains and its segments go; it is kept and moved once the database has room', async () => {
    const cloud = new MosquittoRemote(['max_packet_size 2000']);
    cleanups.push(() => cloud.dispose());
    const port = await cloud.start();
    await cloud.stop();
    const gw = await startGateway({ url: `mqtt://${HOST}:${port}`, protocolVersion: 5, hold: { ms: 300 } });
    const device = gw.broker.createLocalClient('meter');
    // First a reading larger than the cloud's maximum packet size (for bridge_dead), then ~2.5 MB behind it (10 batches, 2 segments).
    void device.publish('sensors/meter/blob', Buffer.alloc(6000, 7), { qos: 0 });
    const n = 2500;
    for (let i = 0; i < n; i++) {
      void device.publish('sensors/meter/power', `${i}:${'x'.repeat(1000)}`, { qos: 0 });
      // bursts one hold time apart: one batch each, several segments
      if (i % 250 === 249) await waitFor(() => gw.bridge.state().spilled === i + 2, 10_000, 'a batch written');
    }
    await waitFor(() => gw.bridge.state().spilled === n + 1, 15_000, 'everything in the spill log');
    const segmentsBefore = segmentFiles(gw.dataDir!).length;
    expect(segmentsBefore).toBeGreaterThanOrEqual(2);
    // The database cannot grow: the move to bridge_dead fails with SQLITE_FULL.
    const pages = (gw.broker.db.pragma('page_count', { simple: true }) as number);
    gw.broker.db.pragma(`max_page_count = ${pages}`);
    const got = await (async () => {
      await cloud.start(port);
      return cloudSubscriber(port);
    })();
    void got;
    await waitFor(() => gw.bridge.state().acked === n, 30_000, 'the readings behind it acknowledged');
    // The log advanced past it: the drained segments are deleted (before, all stayed until a reconnect).
    await waitFor(() => segmentFiles(gw.dataDir!).length < segmentsBefore, 10_000, 'drained segments deleted');
    expect(gw.bridge.state()).toMatchObject({ spilled: 1, dead: 0 });
    // Room again: the kept copy is moved to bridge_dead; nothing is left.
    gw.broker.db.pragma('max_page_count = 1073741823');
    await waitFor(() => gw.bridge.state().dead === 1 && gw.bridge.state().spilled === 0, 15_000, 'moved to bridge_dead');
    const dead = gw.broker.db.prepare('SELECT topic, length(payload) AS n, reason FROM bridge_dead').all() as { topic: string; n: number; reason: string }[];
    expect(dead).toEqual([{ topic: 'fleet/gw/sensors/meter/blob', n: 6000, reason: expect.stringMatching(/maximum packet size 2000/) }]);
    await waitFor(() => segmentFiles(gw.dataDir!).length === 0, 10_000, 'spill log empty on disk');
  }, 90_000);
});
