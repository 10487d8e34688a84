// Clients that never read, and connect/disconnect churn, must leave the broker's memory bounded.
// The broker runs in its own process so its RSS is measured alone; each figure is compared with a
// control run so that ordinary heap growth does not count as a leak.
import { describe, expect, it } from 'vitest';
import { RawClient, connectV4, sleep, useHarness, waitFor, type Harness } from '../helpers/broker.js';
import { spawnBroker, type ChildBroker } from '../helpers/child-broker.js';

const MiB = 1024 * 1024;

async function child(h: Harness, options: Record<string, unknown> = {}): Promise<ChildBroker> {
  const dataDir = await h.tempDir();
  const broker = await spawnBroker(dataDir, options);
  h.defer(() => broker.kill9());
  return broker;
}

/** Floods 64 MiB through the broker to one reading subscriber; optionally a second subscriber never reads. */
async function flood(h: Harness, withStalledReader: boolean): Promise<number> {
  const broker = await child(h, { maxBufferedBytes: MiB });
  const topic = 'flood/t';
  if (withStalledReader) {
    const stalled = await RawClient.open(broker.port);
    h.defer(() => stalled.destroy());
    await stalled.connect({ clientId: 'stalled', keepalive: 0 });
    stalled.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await stalled.next('suback');
    stalled.socket.pause();
  }
  const reader = await connectV4(broker.port, { clientId: 'reader' });
  h.defer(() => reader.mqtt.end(true));
  await reader.subscribe(topic, { qos: 1 });
  let delivered = 0;
  reader.mqtt.on('message', () => {
    delivered++;
    reader.clearMessages();
  });
  const pub = await connectV4(broker.port, { clientId: 'flooder' });
  h.defer(() => pub.mqtt.end(true));
  const payload = Buffer.alloc(16 * 1024, 0x61);
  await pub.publish('warmup', payload, { qos: 1 });
  await sleep(300);
  const before = broker.rss();
  const count = 4_000;
  for (let batch = 0; batch < count / 100; batch++) {
    await Promise.all(Array.from({ length: 100 }, () => pub.publish(topic, payload, { qos: 1 })));
  }
  await waitFor(() => delivered >= count, 60_000, `${count} deliveries, have ${delivered}`);
  await sleep(500);
  return broker.rss() - before;
}

describe('resource bounds (broker in a child process)', () => {
  const h = useHarness();

  it('a subscriber that never reads costs at most a bounded buffer, not the whole flood (64 MiB)', { timeout: 180_000 }, async () => {
    const control = await flood(h, false);
    const stalled = await flood(h, true);
    // with maxBufferedBytes = 1 MiB the stalled client may cost a few MiB (kernel + broker buffers), never ~64
    expect(stalled - control, `RSS growth: control ${(control / MiB).toFixed(1)} MiB, with stalled reader ${(stalled / MiB).toFixed(1)} MiB`).toBeLessThan(24 * MiB);
  });

  it('thousands of connects and disconnects leave the broker heap and buffers flat', { timeout: 180_000 }, async () => {
    const broker = await child(h);
    const cycle = async (i: number) => {
      const raw = await RawClient.open(broker.port);
      try {
        await raw.connect({ clientId: `churn-${i}`, clean: true }); // persistent sessions would legitimately stay
        if (i % 2 === 0) raw.send({ cmd: 'disconnect' });
      } finally {
        raw.destroy();
      }
      await raw.waitClosed();
    };
    const rounds = async (from: number, to: number) => {
      for (let i = from; i < to; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => cycle(i + k)));
    };
    await rounds(0, 1_000); // warm up
    await sleep(500);
    const before = await broker.memory();
    await rounds(1_000, 4_000);
    await sleep(500);
    const after = await broker.memory();
    const heap = after.heapUsed - before.heapUsed;
    const buffers = after.arrayBuffers - before.arrayBuffers;
    // 3000 connections leaking even 1 KiB each would add ~3 MiB of heap
    expect(heap, `heap grew ${(heap / MiB).toFixed(2)} MiB over 3000 connections`).toBeLessThan(2 * MiB);
    expect(buffers, `buffers grew ${(buffers / MiB).toFixed(2)} MiB over 3000 connections`).toBeLessThan(2 * MiB);
    const check = await connectV4(broker.port, { clientId: 'after-churn' });
    h.defer(() => check.mqtt.end(true));
    await check.subscribe('x', { qos: 1 });
    await check.publish('x', 'alive', { qos: 1 });
    await check.waitMessages(1);
  });
});
