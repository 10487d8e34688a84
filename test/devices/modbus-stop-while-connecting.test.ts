// A Modbus TCP bus whose device does not answer connects (still booting, a full backlog): stopping it
// must abort the connect in progress instead of waiting out its 5 s timeout (issue 9, the bounded stop).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBusRunner } from '../../src/devices/modbus/bus.js';
import type { ModbusBus } from '../../src/devices/modbus/schema.js';
import { silentLogger } from '../../src/log.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';

describe('stopping a Modbus TCP bus while its connect hangs', () => {
  let blackhole: Blackhole;
  beforeAll(async () => {
    blackhole = await startBlackhole();
  });
  afterAll(async () => {
    await blackhole?.stop();
  });

  it('returns at once, never having been online', async () => {
    const bus = new ModbusBusRunner({ id: 'booting', type: 'modbus-tcp', host: '127.0.0.1', port: blackhole.port, interRequestDelayMs: 0 } as ModbusBus, silentLogger);
    const states: boolean[] = [];
    bus.onStateChange((online) => states.push(online));
    bus.start();
    await new Promise((r) => setTimeout(r, 500));
    // Still connecting: neither open nor failed.
    expect(bus.attempted).toBe(false);
    const began = Date.now();
    await bus.stop();
    expect(Date.now() - began).toBeLessThan(200);
    expect(bus.online).toBe(false);
    // A stop is not a failure to report to the devices.
    expect(states).toEqual([]);
  });
});
