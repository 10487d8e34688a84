// The state topics cost nothing while nothing changes: a tick whose content is unchanged publishes
// nothing, and only state/info (retained) becomes a SQLite row; parts/devices/bridges are not retained.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { Message } from '../../src/broker/types.js';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import type { DeviceStatus } from '../../src/devices/index.js';
import type { ManagementSources } from '../../src/management/actions.js';
import { StatePublisher } from '../../src/management/state.js';
import { managementTopics } from '../../src/management/topics.js';
import { silentLogger } from '../../src/log.js';
import { tempDir, waitFor } from '../gateway/helpers.js';

describe('management state topics', () => {
  let dir: string;
  let broker: Broker;
  beforeAll(async () => {
    dir = tempDir('fieldgate-mgmt-state-');
    broker = new Broker({ dataDir: dir, sysIntervalMs: 0 });
    await broker.start();
  });
  afterAll(async () => {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a state only when it changed, and writes a retained row only for state/info', async () => {
    const device: DeviceStatus = { id: 'm1', name: 'meter', bus: 'b', protocol: 'modbus', online: true, polls: 1, failedPolls: 0, pointErrors: {}, lastPollAt: '2026-01-01T00:00:00.000Z' };
    const sources: ManagementSources = {
      config: parseGatewayConfig({ gatewayId: 'st' }, 'test', dir), gatewayId: 'st', configFile: undefined, broker,
      parts: () => [{ name: 'core', state: 'running', detail: 'ok' }],
      devices: () => [device],
      bridges: () => [],
      listeners: () => [],
    };
    const topics = managementTopics('st');
    const received: Message[] = [];
    broker.createLocalClient('watcher').subscribe(`${topics.base}/state/#`, (m) => received.push(m));
    let retainedWrites = 0;
    const save = broker.store.saveRetained.bind(broker.store);
    broker.store.saveRetained = (topic, message) => { retainedWrites++; save(topic, message); };

    const publisher = new StatePublisher(broker.createLocalClient('state'), topics, sources, silentLogger, 60_000);
    publisher.tick();
    await waitFor(() => received.length === 4, 'the four states');
    expect(received.map((m) => [m.topic.split('/').at(-1), m.retain])).toEqual([['info', true], ['parts', false], ['devices', false], ['bridges', false]]);
    // state/info is retained in the broker; its SQLite row may wait for the coalesced retained write
    // (broker.retainedWriteIntervalSeconds), so at most one row so far, and never one per tick.
    expect(broker.retained.match(`${topics.base}/state/#`).map((m) => m.topic)).toEqual([`${topics.base}/state/info`]);
    expect(retainedWrites).toBeLessThanOrEqual(1);

    for (let i = 0; i < 20; i++) publisher.tick();
    device.online = false;
    device.lastError = 'timeout';
    publisher.tick();
    await waitFor(() => received.length === 5, 'the changed devices state');
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toHaveLength(5);
    expect(JSON.parse(received[4].payload.toString())).toEqual([expect.objectContaining({ id: 'm1', availability: 'offline', lastError: 'timeout' })]);
    expect(retainedWrites).toBeLessThanOrEqual(1);
    expect(publisher.published).toBe(5);
  });
});
