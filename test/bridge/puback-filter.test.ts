// The PUBACK fast path: PUBACKs for the sender's packet ids are taken out of the received bytes before MQTT.js parses
// them; every other byte reaches MQTT.js intact and in order, however the stream is split into chunks.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { PubackFramer } from '../../src/bridge/puback-filter.js';
import { startBridge } from '../../src/bridge/index.js';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger } from '../../src/log.js';
import { HOST, sleep, waitFor } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const v5 = { protocolVersion: 5 } as const;
const gen = (p: object, opts: { protocolVersion: 4 | 5 } = { protocolVersion: 4 }): Buffer => mqttPacket.generate(p as mqttPacket.Packet, opts);

/** Runs the bytes through a framer in the given chunk sizes; returns what was passed on and what was taken. */
function run(bytes: Buffer, chunkSizes: (i: number) => number, ours: (id: number) => boolean, isV5: boolean) {
  const taken: [number, number][] = [];
  const framer = new PubackFramer(isV5, (id, rc) => {
    if (!ours(id)) return false;
    taken.push([id, rc]);
    return true;
  });
  const passed: Buffer[] = [];
  for (let pos = 0, i = 0; pos < bytes.length; i++) {
    const n = Math.max(1, Math.min(chunkSizes(i), bytes.length - pos));
    const out = framer.feed(Buffer.from(bytes.subarray(pos, pos + n)));
    if (out !== undefined) passed.push(out);
    pos += n;
  }
  return { passed: Buffer.concat(passed), taken, framer };
}

function parseAll(bytes: Buffer, protocolVersion: 4 | 5): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const packets: mqttPacket.Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (e) => errors.push(e));
  parser.parse(bytes);
  expect(errors).toEqual([]);
  return packets;
}

describe('PubackFramer', () => {
  // A v5 stream as a remote sends it: CONNACK, our PUBACKs (with and without reason codes), one for MQTT.js's own id,
  // one with properties, a large inbound PUBLISH (3-byte remaining length), SUBACK, PINGRESP, DISCONNECT.
  const bigPayload = Buffer.alloc(70_000, 0x5a);
  const frames: { bytes: Buffer; taken?: [number, number] }[] = [
    { bytes: gen({ cmd: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 100 } }, v5) },
    { bytes: gen({ cmd: 'puback', messageId: 1 }, v5), taken: [1, 0] }, // rc and an empty property list: remaining length 4
    { bytes: Buffer.from([0x40, 0x02, 0x00, 0x06]), taken: [6, 0] },
    { bytes: Buffer.from([0x40, 0x03, 0x00, 0x02, 0x10]), taken: [2, 0x10] },
    { bytes: gen({ cmd: 'puback', messageId: 65000 }, v5) },
    { bytes: gen({ cmd: 'publish', topic: 'fleet/cmd/x', payload: bigPayload, qos: 1, messageId: 7, dup: false, retain: false }, v5) },
    { bytes: Buffer.from([0x40, 0x03, 0x01, 0x00, 0x87]), taken: [256, 0x87] },
    { bytes: gen({ cmd: 'puback', messageId: 3, reasonCode: 0x97, properties: { reasonString: 'quota' } }, v5) },
    { bytes: Buffer.from([0x40, 0x04, 0x00, 0x08, 0x00, 0x01]) }, // a property length with no properties: malformed
    { bytes: gen({ cmd: 'suback', messageId: 65001, granted: [1] }, v5) },
    { bytes: gen({ cmd: 'puback', messageId: 4 }, v5), taken: [4, 0] },
    { bytes: gen({ cmd: 'pingresp' }, v5) },
    { bytes: gen({ cmd: 'puback', messageId: 5 }, v5), taken: [5, 0] },
    { bytes: gen({ cmd: 'disconnect', reasonCode: 0x8b }, v5) },
  ];
  const stream = Buffer.concat(frames.map((f) => f.bytes));
  const expectedPassed = Buffer.concat(frames.filter((f) => f.taken === undefined).map((f) => f.bytes));
  const expectedTaken = frames.filter((f) => f.taken !== undefined).map((f) => f.taken!);
  const ours = (id: number) => id < 64512;

  const splits: [string, (i: number) => number][] = [
    ['one chunk', () => stream.length],
    ['byte by byte', () => 1],
    ['2-byte chunks', () => 2],
    ['3-byte chunks', () => 3],
    ['5-byte chunks', () => 5],
    ['irregular chunks', (i) => [1, 7, 2, 4093, 3, 1, 65536, 5][i % 8]!],
  ];
  it.each(splits)('takes exactly our plain PUBACKs and passes everything else intact (%s)', (_name, sizes) => {
    const { passed, taken } = run(stream, sizes, ours, true);
    expect(taken).toEqual(expectedTaken);
    expect(passed.equals(expectedPassed)).toBe(true);
    // Parsed as MQTT.js would (up to the malformed PUBACK, which its parser reports): intact and in order.
    const malformedAt = expectedPassed.indexOf(Buffer.from([0x40, 0x04, 0x00, 0x08]));
    const packets = parseAll(passed.subarray(0, malformedAt), 5);
    expect(packets.map((p) => p.cmd)).toEqual(['connack', 'puback', 'publish', 'puback']);
    expect((packets[2] as mqttPacket.IPublishPacket).payload).toEqual(bigPayload);
    expect(packets[3]).toMatchObject({ messageId: 3, reasonCode: 0x97, properties: { reasonString: 'quota' } });
    const rest = parseAll(passed.subarray(malformedAt + 6), 5);
    expect(rest.map((p) => p.cmd)).toEqual(['suback', 'pingresp', 'disconnect']);
  });

  it('with MQTT 3.1.1 takes only 2-byte PUBACKs: a 3-byte one is malformed there and goes to MQTT.js', () => {
    const plain = gen({ cmd: 'puback', messageId: 9 });
    const odd = Buffer.from([0x40, 0x03, 0x00, 0x0a, 0x00]);
    const { passed, taken } = run(Buffer.concat([plain, odd, plain]), () => 1, ours, false);
    expect(taken).toEqual([
      [9, 0],
      [9, 0],
    ]);
    expect(passed.equals(odd)).toBe(true);
  });

  it('passes everything on after a malformed remaining length, so that MQTT.js reports it', () => {
    const ack = gen({ cmd: 'puback', messageId: 1 });
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    const { passed, taken } = run(Buffer.concat([ack, bad, ack]), (i) => (i === 0 ? 4 : 1), ours, false);
    expect(taken).toEqual([[1, 0]]);
    expect(passed.equals(Buffer.concat([bad, ack]))).toBe(true);
  });

  it('does not take a PUBACK with flag bits set (malformed) or one the sender does not know', () => {
    const flagged = Buffer.from([0x42, 0x02, 0x00, 0x01]);
    const unknown = gen({ cmd: 'puback', messageId: 77 });
    const { passed, taken } = run(Buffer.concat([flagged, unknown]), () => 2, (id) => id !== 77, false);
    expect(taken).toEqual([]);
    expect(passed.equals(Buffer.concat([flagged, unknown]))).toBe(true);
  });
});

/**
 * A minimal MQTT remote on a real TCP socket that answers each QoS 1 PUBLISH with a PUBACK written one byte per
 * write(), a turn of the event loop apart, so the bridge receives PUBACKs split across TCP segments.
 */
class TricklingRemote {
  port = 0;
  readonly received: { topic: string; payload: string; dup: boolean }[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly reasonFor: (payload: string) => number) {}

  async start(): Promise<number> {
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, HOST, resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const queue: number[] = [];
    let trickling = false;
    const trickle = async (): Promise<void> => {
      trickling = true;
      while (queue.length > 0 && !socket.destroyed) {
        socket.write(Buffer.from([queue.shift()!]));
        await sleep(0);
      }
      trickling = false;
    };
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') socket.write(gen({ cmd: 'connack', sessionPresent: false, reasonCode: 0 }, v5));
      if (p.cmd === 'pingreq') socket.write(gen({ cmd: 'pingresp' }, v5));
      if (p.cmd === 'publish' && p.qos === 1) {
        const payload = p.payload.toString();
        this.received.push({ topic: p.topic, payload, dup: p.dup });
        const rc = this.reasonFor(payload);
        const ack = rc === 0 ? gen({ cmd: 'puback', messageId: p.messageId }, v5) : Buffer.from([0x40, 0x03, p.messageId! >> 8, p.messageId! & 0xff, rc]);
        queue.push(...ack);
        if (!trickling) void trickle();
      }
    });
    socket.on('data', (d) => parser.parse(d));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('bridge with PUBACKs split across TCP segments', () => {
  it('deletes every acknowledged row, sets the one refused with 0x87 aside, and keeps FIFO order', async () => {
    const remote = new TricklingRemote((payload) => (payload === '150' ? 0x87 : payload === '40' ? 0x10 : 0));
    const port = await remote.start();
    cleanups.push(() => remote.stop());
    const host = new Broker({ dataDir: null, logger: silentLogger, sysIntervalMs: 0 });
    await host.start();
    cleanups.push(() => host.close());
    const bridge = await startBridge(
      host,
      {
        name: 'cloud',
        url: `mqtt://${HOST}:${port}`,
        clientId: 'gw-trickle',
        protocolVersion: 5,
        rules: [{ direction: 'out', filter: 'sensors/#', remotePrefix: 'fleet/gw/' }],
        reconnect: { minMs: 50, maxMs: 300 },
        inflightWindow: 64,
      },
      silentLogger,
    );
    cleanups.push(() => bridge.stop());
    await waitFor(() => bridge.state().connected, 10_000, 'bridge connected');
    const local = host.createLocalClient('publisher');
    await Promise.all(Array.from({ length: 300 }, (_, i) => local.publish('sensors/t', String(i), { qos: 1 })));
    await waitFor(() => bridge.state().outboxDepth === 0, 30_000, 'outbox drained');
    expect(bridge.state()).toMatchObject({ acked: 299, dead: 1, resent: 0, connects: 1, connected: true, inflight: 0 });
    expect(remote.received.map((m) => m.payload)).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    expect(remote.received.every((m) => m.topic === 'fleet/gw/sensors/t' && !m.dup)).toBe(true);
    const dead = host.db.prepare('SELECT topic, payload, reason FROM bridge_dead').all() as { topic: string; payload: Buffer; reason: string }[];
    expect(dead.map((d) => [d.topic, d.payload.toString()])).toEqual([['fleet/gw/sensors/t', '150']]);
    expect(dead[0]!.reason).toMatch(/0x87/);
  });
});
