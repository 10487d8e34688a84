// An idle gateway with metrics on must sleep: prom-client's default event-loop monitor (10 ms)
// woke it ~100 times a second (measured: 97/s with metrics, 2/s without). Counted the way the
// kernel does: voluntary context switches of all its threads (/proc/PID/task/*/status).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, freePort, GatewayProcess, tempDir, waitFor } from '../gateway/helpers.js';
import { MosquittoRemote } from '../bridge/helpers.js';
import { requireTool } from '../helpers/peers.js';

function voluntarySwitches(pid: number): number {
  let total = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return total;
}

describe.skipIf(!fs.existsSync('/proc/self/task'))('idle wakeups with metrics on', () => {
  let dir: string;
  let gateway: GatewayProcess | undefined;

  beforeAll(() => {
    ensureBuilt();
    dir = tempDir('fieldgate-idle-');
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stay near the gateway\'s own timers, and the lag gauges still report', async () => {
    const metricsPort = await freePort();
    fs.writeFileSync(path.join(dir, 'fieldgate.json'), JSON.stringify({
      broker: { host: '127.0.0.1', port: await freePort(), dataDir: 'data' },
      metrics: { host: '127.0.0.1', port: metricsPort },
    }));
    gateway = new GatewayProcess(['--config', path.join(dir, 'fieldgate.json')], dir);
    await gateway.waitForLog((l) => l.msg.startsWith('metrics on '), 'the metrics endpoint');
    await new Promise((r) => setTimeout(r, 1000)); // start-up work done
    const before = voluntarySwitches(gateway.pid);
    const windowMs = 4000;
    await new Promise((r) => setTimeout(r, windowMs));
    const perSecond = (voluntarySwitches(gateway.pid) - before) / (windowMs / 1000);
    // Measured here: ~6/s (~2/s without metrics); prom-client's default gave ~97/s.
    expect(perSecond).toBeLessThan(30);

    const text = await waitFor(async () => {
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return body.includes('nodejs_eventloop_lag_p99_seconds') ? body : undefined;
    }, 'a scrape');
    const p99 = Number(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1]);
    // The sampling interval (1 s) is not counted as lag: an idle loop is late by milliseconds, not a second.
    expect(p99).toBeGreaterThanOrEqual(0);
    expect(p99).toBeLessThan(0.2);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \S+$/m);
  }, 60_000);

  // Issue 11: ≤ 15 wakeups/s for the gateway users start first: the demo meter (polled every 2 s), one bridge to
  // a cloud and metrics on. Before the sweep stopped running without sockets and the lag was sampled once a
  // second (was 250 ms), main measured 14 voluntary switches/s here (17.5 with involuntary ones); now 9-11/s.
  // 12 keeps a margin under the goal and fails on the old timers.
  it.skipIf(!requireTool('mosquitto'))('with the demo meter and a bridge stay under the goal of 15 wakeups a second', async () => {
    const cloud = new MosquittoRemote();
    const cloudPort = await cloud.start();
    const demoDir = tempDir('fieldgate-idle-demo-');
    let demoGateway: GatewayProcess | undefined;
    try {
      const metricsPort = await freePort();
      fs.writeFileSync(path.join(demoDir, 'fieldgate.json'), JSON.stringify({
        demo: true,
        broker: { host: '127.0.0.1', port: await freePort(), dataDir: 'data' },
        metrics: { host: '127.0.0.1', port: metricsPort },
        bridges: [{ name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'idle-gw', rules: [{ direction: 'out', filter: 'fieldgate/#', remotePrefix: 'gw/' }] }],
      }));
      demoGateway = new GatewayProcess(['--config', path.join(demoDir, 'fieldgate.json')], demoDir);
      await demoGateway.waitForLog((l) => l.msg.startsWith('metrics on '), 'the metrics endpoint');
      // Start-up work done: discovery, first readings, and V8's background compilation of the code that runs them
      // (its worker threads' switches count too; at 3 s they doubled the figure).
      await new Promise((r) => setTimeout(r, 15_000));
      const before = voluntarySwitches(demoGateway.pid);
      const windowMs = 8000;
      await new Promise((r) => setTimeout(r, windowMs));
      const perSecond = (voluntarySwitches(demoGateway.pid) - before) / (windowMs / 1000);
      expect(perSecond, `voluntary context switches per second: ${perSecond}`).toBeLessThanOrEqual(12);
    } finally {
      await demoGateway?.stop();
      await cloud.dispose();
      fs.rmSync(demoDir, { recursive: true, force: true });
    }
  }, 60_000);
});
