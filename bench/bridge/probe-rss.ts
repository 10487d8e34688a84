// Diagnostic: RSS of the gateway process as the backlog grows (not part of the benchmark).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { publishFlood } from './loadgen.js';

const dir = mkdtempSync(join(tmpdir(), 'fg-probe-'));
const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'gateway.ts'), JSON.stringify({ dataDir: dir, remoteUrl: 'mqtt://127.0.0.1:1' })], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: proc.stdout! });
const waiting: ((l: string) => void)[] = [];
let ready!: (p: number) => void;
const portP = new Promise<number>((r) => (ready = r));
lines.on('line', (l) => { const m = /^READY (\d+)/.exec(l); if (m) ready(Number(m[1])); else waiting.shift()?.(l); });
const port = await portP;
await new Promise((r) => setTimeout(r, 1000));
const state = () => new Promise<Record<string, number>>((r) => { waiting.push((l) => r(JSON.parse(l))); proc.stdin!.write('state\n'); });
const steps = Number(process.env.STEPS ?? 5);
for (let i = 0; i <= steps; i++) {
  const s = await state();
  console.log(`rows ${s.outboxDepth} rss ${(s.rss / 1048576).toFixed(1)} heap ${(s.heap / 1048576).toFixed(1)} ext ${(s.ext / 1048576).toFixed(1)}`);
  if (i < steps) await Promise.all([0, 1, 2, 3].map((j) => publishFlood(port, { count: 25_000, topic: `sensors/d${j}`, payloadBytes: 64, window: 500, clientId: `p${j}-${i}` })));
}
proc.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
