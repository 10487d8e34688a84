// Memory per idle connection: broker VmRSS before and after N clients connect and stay idle.

import { cpuSeconds, statusKiB } from '../../lib/proc.js';
import { formatCount } from '../../lib/table.js';
import { LoadWorker } from '../load-worker.js';
import { sleep } from '../measure.js';
import type { Body } from '../scenario.js';

export const idleRss: Body = async (broker, workers, timing) => {
  const clients = timing.idleClients;
  // A first round of connections warms the broker's code paths and allocators, so that the
  // measured growth is what the connections themselves hold.
  const warmup = await LoadWorker.start('idle-warmup', { kind: 'idle', port: broker.port, count: 50, concurrency: 25, clientPrefix: 'bench-warm-' });
  await warmup.close();
  await sleep(500);
  const before = statusKiB(broker.pid, 'VmRSS');
  const cpuBefore = cpuSeconds(broker.pid);
  const started = performance.now();
  const idle = await LoadWorker.start('idle', { kind: 'idle', port: broker.port, count: clients, concurrency: 50, clientPrefix: 'bench-idle-' });
  workers.push(idle);
  const connectedAt = performance.now();
  const connectSeconds = (connectedAt - started) / 1000;
  const generatorCpu = idle.cpuSeconds();
  const brokerCpu = cpuSeconds(broker.pid) - cpuBefore;
  await sleep(1000);
  const after = statusKiB(broker.pid, 'VmRSS');
  const connected = (await idle.request({ cmd: 'mark' }, 'mark')).counters['connected']!;
  const notes = [`RSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MiB; ${formatCount(clients)} connects took ${((connectedAt - started) / 1000).toFixed(2)} s`];
  if (connected !== clients) notes.push(`only ${connected} of ${clients} stayed connected`);
  return {
    figures: [{ label: 'KiB/conn', value: (after - before) / clients, unit: 'KiB', higherIsBetter: false }],
    lost: null,
    brokerCpuSeconds: brokerCpu,
    generatorCpuSeconds: generatorCpu,
    generatorCpuPercent: (100 * generatorCpu) / connectSeconds,
    busiestGeneratorPercent: (100 * generatorCpu) / connectSeconds,
    brokerCpuPercent: (100 * brokerCpu) / connectSeconds,
    notes,
  };
};
