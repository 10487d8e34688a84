// $SYS/broker/... topics: published periodically and retained, with the usual counters (the names
// Mosquitto users know: clients/connected, messages/received, messages/sent, uptime, version).
import { describe, expect, it } from 'vitest';
import { sleep, useHarness, waitFor, type TestClient } from '../helpers/broker.js';

const required = ['$SYS/broker/version', '$SYS/broker/uptime', '$SYS/broker/clients/connected', '$SYS/broker/messages/received', '$SYS/broker/messages/sent'];

function latest(c: TestClient, topic: string): string | undefined {
  return c.messages.filter((m) => m.topic === topic).at(-1)?.text;
}

function numberOf(text: string | undefined): number {
  return text === undefined ? NaN : Number.parseInt(text, 10);
}

describe('$SYS topics', () => {
  const h = useHarness();

  it('publishes version, uptime, clients connected, messages received and sent', async () => {
    const { port } = await h.broker({ sysIntervalMs: 200 });
    const c = await h.v4(port, { clientId: 'sys' });
    await c.subscribe('$SYS/#', { qos: 0 });
    await waitFor(() => required.every((t) => latest(c, t) !== undefined), 10_000, `all of ${required.join(', ')}`);
    expect(latest(c, '$SYS/broker/version')!.length).toBeGreaterThan(0);
    expect(numberOf(latest(c, '$SYS/broker/uptime'))).toBeGreaterThanOrEqual(0);
    // the retained value may predate this client; the next period counts it
    await waitFor(() => numberOf(latest(c, '$SYS/broker/clients/connected')) >= 1, 10_000, 'clients/connected >= 1');
    expect(numberOf(latest(c, '$SYS/broker/messages/received'))).toBeGreaterThanOrEqual(0);
    expect(numberOf(latest(c, '$SYS/broker/messages/sent'))).toBeGreaterThanOrEqual(0);
  });

  it('the values are retained: a late subscriber gets them at once with RETAIN=1', async () => {
    const { port } = await h.broker({ sysIntervalMs: 200 });
    const first = await h.v4(port, { clientId: 'first' });
    await first.subscribe('$SYS/#', { qos: 0 });
    await waitFor(() => required.every((t) => latest(first, t) !== undefined));
    const late = await h.v4(port, { clientId: 'late' });
    await late.subscribe('$SYS/broker/version', { qos: 0 });
    const [m] = await late.waitMessages(1, 5_000);
    expect(m!.retain).toBe(true);
  });

  it('counters follow what happens: connected clients, received and sent messages, uptime', async () => {
    const { port } = await h.broker({ sysIntervalMs: 200 });
    const watcher = await h.v4(port, { clientId: 'watcher' });
    await watcher.subscribe('$SYS/broker/#', { qos: 0 });
    await waitFor(() => required.every((t) => latest(watcher, t) !== undefined));
    const others = [await h.v4(port, { clientId: 'o1' }), await h.v5(port, { clientId: 'o2' })];
    await waitFor(() => numberOf(latest(watcher, '$SYS/broker/clients/connected')) === 3, 10_000, 'clients/connected = 3');
    await others[0]!.end();
    await waitFor(() => numberOf(latest(watcher, '$SYS/broker/clients/connected')) === 2, 10_000, 'clients/connected = 2');

    const receivedBefore = numberOf(latest(watcher, '$SYS/broker/messages/received'));
    const sentBefore = numberOf(latest(watcher, '$SYS/broker/messages/sent'));
    const uptimeBefore = numberOf(latest(watcher, '$SYS/broker/uptime'));
    const sink = others[1]!;
    await sink.subscribe('count/t', { qos: 1 });
    for (let i = 0; i < 25; i++) await sink.publish('count/t', `m${i}`, { qos: 1 });
    await sink.waitMessages(25);
    await waitFor(() => numberOf(latest(watcher, '$SYS/broker/messages/received')) >= receivedBefore + 25, 10_000, 'messages/received +25');
    await waitFor(() => numberOf(latest(watcher, '$SYS/broker/messages/sent')) >= sentBefore + 25, 10_000, 'messages/sent +25');
    await sleep(1_100);
    await waitFor(() => numberOf(latest(watcher, '$SYS/broker/uptime')) > uptimeBefore, 10_000, 'uptime to grow');
  });

  it('a "#" subscription does not receive $SYS messages [MQTT-4.7.2-1]', async () => {
    const { port } = await h.broker({ sysIntervalMs: 100 });
    const c = await h.v4(port, { clientId: 'hash' });
    await c.subscribe('#', { qos: 0 });
    await sleep(600);
    expect(c.messages.filter((m) => m.topic.startsWith('$SYS'))).toEqual([]);
  });

  it('sysIntervalMs 0 turns $SYS publication off', async () => {
    const { port } = await h.broker({ sysIntervalMs: 0 });
    const c = await h.v4(port, { clientId: 'nosys' });
    await c.subscribe('$SYS/#', { qos: 0 });
    await sleep(800);
    expect(c.messages).toEqual([]);
  });
});
