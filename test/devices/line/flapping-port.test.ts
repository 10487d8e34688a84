// A serial port that keeps vanishing right after it opens (a loose USB connector): the line bus keeps backing
// off instead of reopening it at full speed. socat in a shell loop plays the port: each socat lives 200 ms.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../../src/broker/broker.js';
import type { LocalClient } from '../../../src/broker/types.js';
import { startLineBus, type LineBusHandle } from '../../../src/devices/line/runtime.js';
import { lineBusSchema, lineDeviceSchema } from '../../../src/devices/line/schema.js';
import { silentLogger } from '../../../src/log.js';
import { requireTool } from '../../helpers/peers.js';
import { waitFor } from './pty-pair.js';

const initialDelayMs = 100;

describe.skipIf(!requireTool('socat'))('a serial port that disappears right after opening', () => {
  let dir: string;
  let loop: ChildProcess;
  let broker: Broker;
  let client: LocalClient;
  let handle: LineBusHandle | undefined;
  const availability: Array<{ payload: string; at: number }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-flap-'));
    const path = join(dir, 'gateway');
    // A bounded loop (at most 200 rounds) in its own process group, so it can be stopped as one.
    loop = spawn('sh', ['-c', `i=0; while [ $i -lt 200 ]; do socat pty,raw,echo=0,link=${path} SYSTEM:'sleep 0.2'; i=$((i+1)); done`], { stdio: 'ignore', detached: true });
    broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    client = broker.createLocalClient('line');
    client.subscribe('fieldgate/th/availability', (m) => availability.push({ payload: m.payload.toString(), at: Date.now() }));
    const bus = lineBusSchema.parse({ id: 'loose', type: 'serial-line', path, reconnectInitialDelayMs: initialDelayMs, reconnectMaxDelayMs: 5000 });
    const device = lineDeviceSchema.parse({ id: 'th', protocol: 'line', bus: 'loose', parser: { type: 'json' }, fields: { t: {} } });
    handle = await startLineBus(bus, [device], client, silentLogger);
  });

  afterAll(async () => {
    await handle?.stop();
    client?.close();
    await broker?.close();
    if (loop?.pid !== undefined && loop.exitCode === null) {
      const exited = new Promise((r) => loop.once('exit', r));
      process.kill(-loop.pid, 'SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reopens less and less often', { timeout: 90_000 }, async () => {
    // A listening device without staleAfterMs is online exactly while its port is open, so the time from
    // each "offline" to the next "online" is the reopen delay.
    const downtimes = () => {
      const gaps: number[] = [];
      availability.forEach((m, i) => {
        const next = availability[i + 1];
        if (m.payload === 'offline' && next?.payload === 'online' && i > 0) gaps.push(next.at - m.at);
      });
      return gaps;
    };
    // Generous: on a loaded machine a reopen can miss socat's short windows and back off further.
    await waitFor(() => downtimes().length >= 4, 75_000, 'four losses and reopens');
    const gaps = downtimes();
    // Every attempt doubles the delay and a port that never stays open 10 s never resets it, so the k-th
    // reopen waits at least initialDelayMs × 2^k; a slow machine or a missed socat window only lengthens a
    // downtime. Reopening at a fixed 100 ms would keep them near 100 ms (the fourth would need seven misses).
    gaps.slice(0, 4).forEach((gap, k) => expect(gap, `downtime ${k} of ${JSON.stringify(gaps)}`).toBeGreaterThanOrEqual(0.95 * initialDelayMs * 2 ** k));
  });
});
