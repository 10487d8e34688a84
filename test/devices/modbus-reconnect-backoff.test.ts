// A Modbus TCP peer that accepts connections and hangs up at once (a converter in a reboot loop, a flapping
// link): the bus keeps backing off instead of reconnecting at full speed, and its devices stay offline.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import type { LocalClient } from '../../src/broker/types.js';
import { startDevices, type DevicesHandle } from '../../src/devices/index.js';
import type { ModbusDevice } from '../../src/devices/modbus/model.js';
import type { ModbusTcpBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';

async function waitFor(predicate: () => unknown, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a Modbus TCP peer that hangs up right after accepting', () => {
  let server: net.Server;
  let broker: Broker;
  let devices: DevicesHandle;
  let watcher: LocalClient;
  const connects: number[] = [];
  const availability: string[] = [];

  beforeAll(async () => {
    server = net.createServer((socket) => {
      connects.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const bus: ModbusTcpBus = { id: 'flappy', type: 'modbus-tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, interRequestDelayMs: 0 };
    const dev: ModbusDevice = {
      id: 'behind', name: 'behind', bus, unitId: 1, pollIntervalMs: 100, timeoutMs: 300, retries: 0,
      maxRegistersPerRequest: 125, maxBitsPerRequest: 2000, maxGap: 8, interRequestDelayMs: 0, offlinePollIntervalMs: 1000,
      topicPrefix: 'fieldgate/behind', qos: 0, retain: true, publish: { onChange: true, maxSilenceMs: 0, state: false },
      points: [{ name: 'v', topic: 'fieldgate/behind/v', table: 'holding', address: 0, type: 'uint16', count: 1, byteOrder: 'ABCD', pollIntervalMs: 100, deadband: 0, writable: false }],
    };
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    watcher = broker.createLocalClient('watcher');
    watcher.subscribe('fieldgate/behind/availability', (m) => availability.push(m.payload.toString()));
    devices = await startDevices({ files: [], buses: [bus], lineDevices: [], modbusDevices: [dev] }, (id) => broker.createLocalClient(id), silentLogger);
  });

  afterAll(async () => {
    await devices?.stop();
    watcher?.close();
    await broker?.close();
    await new Promise((r) => server?.close(r));
  });

  it('backs off exponentially between reconnects and keeps the device offline', async () => {
    await waitFor(() => connects.length >= 1, 10_000, 'first connection');
    const first = connects[0];
    await new Promise((r) => setTimeout(r, 4000));
    const inWindow = connects.filter((t) => t - first <= 4000);
    // 250 + 500 + 1000 + 2000 ms of backoff: about 5 connections in 4 s; reconnecting at a fixed 250 ms would be about 16.
    expect(inWindow.length).toBeGreaterThanOrEqual(3);
    expect(inWindow.length).toBeLessThanOrEqual(7);
    const gaps = inWindow.slice(1).map((t, i) => t - inWindow[i]);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]);
    expect(devices.status()[0]).toMatchObject({ online: false, polls: 0 });
    expect(availability.at(-1)).toBe('offline');
    expect(availability).not.toContain('online');
  });
});
