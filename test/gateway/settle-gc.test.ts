// The one full collection after start-up (src/gateway/settle-gc.ts): it runs once the event loop is
// quiet, never while it is busy, and not at all without the collector V8 exposes under a flag.
import { afterEach, describe, expect, it } from 'vitest';
import { GC_GLOBAL, scheduleSettleGc } from '../../src/gateway/settle-gc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('settle gc', () => {
  const cancels: Array<() => void> = [];
  afterEach(() => {
    for (const cancel of cancels.splice(0)) cancel();
  });

  it('collects once when the event loop is quiet', async () => {
    let calls = 0;
    cancels.push(scheduleSettleGc({ intervalMs: 20, maxUtilization: 1, gc: () => calls++ }));
    const deadline = Date.now() + 5000;
    while (calls === 0 && Date.now() < deadline) await sleep(20);
    expect(calls).toBe(1);
    await sleep(200); // ten more intervals: no second collection
    expect(calls).toBe(1);
  });

  it('does not collect while the event loop stays busier than allowed, and gives up after its attempts', async () => {
    let calls = 0;
    // No share of busy time is below -1: every check counts as busy.
    cancels.push(scheduleSettleGc({ intervalMs: 10, maxUtilization: -1, attempts: 3, gc: () => calls++ }));
    await sleep(300);
    expect(calls).toBe(0);
  });

  it('waits out a busy stretch', async () => {
    let calls = 0;
    cancels.push(scheduleSettleGc({ intervalMs: 50, maxUtilization: 0.5, attempts: 100, gc: () => calls++ }));
    // Keep the loop busy for several intervals: the checks in between see it more than half busy.
    const busyUntil = Date.now() + 400;
    while (Date.now() < busyUntil) {
      const end = Date.now() + 45;
      while (Date.now() < end) { /* busy */ }
      await new Promise((r) => setImmediate(r));
      if (Date.now() < busyUntil) expect(calls).toBe(0);
    }
    const deadline = Date.now() + 5000;
    while (calls === 0 && Date.now() < deadline) await sleep(20);
    expect(calls).toBe(1);
  });

  it('uses the global that --expose-gc installs, and does nothing without it', async () => {
    const global = globalThis as Record<string, unknown>;
    const saved = global[GC_GLOBAL];
    let calls = 0;
    try {
      delete global[GC_GLOBAL];
      cancels.push(scheduleSettleGc({ intervalMs: 10, maxUtilization: 1 })); // no collector: nothing scheduled
      global[GC_GLOBAL] = () => calls++;
      cancels.push(scheduleSettleGc({ intervalMs: 10, maxUtilization: 1 }));
      const deadline = Date.now() + 5000;
      while (calls === 0 && Date.now() < deadline) await sleep(20);
      await sleep(100);
      expect(calls).toBe(1); // the second schedule's one collection; the first found no collector
    } finally {
      if (saved === undefined) delete global[GC_GLOBAL];
      else global[GC_GLOBAL] = saved;
    }
  });
});
