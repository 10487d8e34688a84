// `npm run bench -- console [--seconds 30]`: what the web console costs the gateway.
// `fieldgate run` (the embedded default: the demo meter polled every 2 s, $SYS every 10 s, state
// topics every 5 s) as a process; its CPU over the same window (a) with the console off, (b) on but
// no browser connected, (c) with one Chromium showing the overview, then (d) the device page (live
// values, 1 s age ticks, polled `device`). The browser's own CPU is printed too (all its processes).
// Wakeups (voluntary context switches of all the gateway's threads) per second in each window, as the
// footprint suite counts them. Also the assets' gzipped size, as the server holds them, what one
// history sample (src/management/history.ts, every 10 s, browser or not) costs in process with the
// demo's 8 points and with the 1,000-point limit, and the history's memory bound.
// `--rounds N` repeats the windows (off / on, no browser / overview / device page / no browser again)
// N times, interleaved.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from '../../test/console/browser.js';
import { cpuSeconds, loadAverage, machineInfo, voluntarySwitches } from '../lib/proc.js';
import { BUCKETS, History, MAX_POINTS } from '../../src/management/history.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function startGateway(cwd: string, args: string[], withConsole = true): Promise<{ child: ChildProcess; consoleUrl?: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/fieldgate.js'), 'run', '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    let consoleUrl: string | undefined;
    const timer = setTimeout(() => reject(new Error(`fieldgate did not start:\n${text}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /"msg":"web console on (http[^"]+)"/.exec(text);
      if (m) consoleUrl = m[1];
      // The console starts last: its line, or the watch hint when the console is off.
      if (consoleUrl || (!withConsole && text.includes('watch the readings'))) {
        clearTimeout(timer);
        resolve({ child, consoleUrl });
      }
    });
  });
}

/** CPU seconds of the chromium processes this bench started (the browser and its renderers: our descendants). */
function chromiumCpu(): number {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      comm.set(Number(entry), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const mine = (pid: number): boolean => {
    for (let p = parent.get(pid), n = 0; p !== undefined && p > 1 && n < 20; p = parent.get(p), n++) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, name] of comm) {
    if (!name.includes('chrom') || !mine(pid)) continue;
    try { total += cpuSeconds(pid); } catch { /* gone */ }
  }
  return total;
}

async function window(seconds: number, pid: number): Promise<{ gateway: number; browser: number; wakeups: number }> {
  const g0 = cpuSeconds(pid);
  const b0 = chromiumCpu();
  const w0 = voluntarySwitches(pid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return { gateway: (100 * (cpuSeconds(pid) - g0)) / seconds, browser: (100 * (chromiumCpu() - b0)) / seconds, wakeups: (voluntarySwitches(pid) - w0) / seconds };
}

/** CPU microseconds of one History.sample() with `points` numeric points read since the last one (best of 5 rounds of 2,000). */
function sampleCostMicroseconds(points: number): number {
  const readings = new Map<string, { value: number; readAt: number }>();
  const history = new History({
    messages: () => ({ in: 0, out: 0 }),
    bridges: () => [],
    readings: () => [{ deviceId: 'd', readings: readings as never }],
  });
  let best = Infinity;
  let now = Date.now();
  for (let round = 0; round < 5; round++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < 2000; i++) {
      now += 10_000;
      for (let p = 0; p < points; p++) readings.set(`p${p}`, { value: p + i, readAt: now - 1 });
      history.sample(now);
    }
    const used = process.cpuUsage(t0);
    best = Math.min(best, (used.user + used.system) / 2000);
  }
  // What the loop spent filling the readings is in it too: an upper bound.
  return best;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function run(args: string[]): Promise<void> {
  const at = args.indexOf('--seconds');
  const seconds = at >= 0 ? Number(args[at + 1]) : 30;
  const r = args.indexOf('--rounds');
  const rounds = r >= 0 ? Math.max(1, Number(args[r + 1])) : 1;
  const info = machineInfo();
  process.stdout.write(`console bench: ${seconds} s windows, ${rounds} round${rounds > 1 ? 's' : ''}; ${info.cpus} × ${info.cpuModel}; load ${loadAverage()}\n`);
  const names = ['console off', 'console on, no browser', 'one browser on the overview', 'one browser on the device page', 'console on, no browser, after one left'];
  const results = new Map<string, Array<{ gateway: number; browser: number | null; wakeups: number }>>(names.map((n) => [n, []]));

  for (let round = 0; round < rounds; round++) {
    // (a) console off: a config file with the same demo, console disabled.
    const offDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-console-bench-'));
    fs.writeFileSync(path.join(offDir, 'off.json'), JSON.stringify({ demo: true, homeAssistant: { discovery: true }, console: { enabled: false } }));
    const off = await startGateway(offDir, ['--config', 'off.json'], false);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    results.get(names[0])!.push({ ...(await window(seconds, off.child.pid!)), browser: null });
    off.child.kill('SIGTERM');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-console-bench-'));
    const gateway = await startGateway(dir, ['--console-port', '0']);
    const pid = gateway.child.pid!;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    results.get(names[1])!.push({ ...(await window(seconds, pid)), browser: null });

    const browser = await launchBrowser();
    try {
      const page = browser.context.pages()[0] ?? (await browser.context.newPage());
      await page.goto(gateway.consoleUrl!);
      await page.locator('[data-testid=devices-online]').waitFor();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      results.get(names[2])!.push(await window(seconds, pid));
      await page.goto(`${gateway.consoleUrl}#/device/demo-meter`);
      await page.locator('[data-testid=value-voltage]').waitFor();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      results.get(names[3])!.push(await window(seconds, pid));
    } finally {
      await browser.close();
    }
    // The same gateway again with no browser: the windows run in a fixed order, and the first "no browser"
    // one is the gateway's first half-minute (JIT, first writes); this one is as late as the browser's.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    results.get(names[4])!.push({ ...(await window(seconds, pid)), browser: null });
    gateway.child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(offDir, { recursive: true, force: true });
  }
  const assets = path.join(ROOT, 'dist', 'console-ui');
  const { gzippedTotal, loadAssets } = await import('../../src/console/assets.js');
  const bytes = gzippedTotal(loadAssets(assets));
  const demoSample = sampleCostMicroseconds(8);
  const fullSample = sampleCostMicroseconds(MAX_POINTS);
  const med = (name: string, key: 'gateway' | 'browser' | 'wakeups') => median(results.get(name)!.map((x) => x[key] ?? NaN));
  const all = (name: string) => results.get(name)!.map((x) => x.gateway.toFixed(2)).join(' / ');

  const lines = [
    `| | fieldgate CPU, % of one core (median${rounds > 1 ? '; each round' : ''}) | fieldgate wakeups / s | Chromium CPU (all processes), % of one core |`,
    `|---|---:|---:|---:|`,
    ...names.map((name) => `| ${name} | ${med(name, 'gateway').toFixed(2)}${rounds > 1 ? ` (${all(name)})` : ''} | ${med(name, 'wakeups').toFixed(1)} | ${results.get(name)![0]!.browser === null ? '—' : med(name, 'browser').toFixed(1)} |`),
    '',
    `The console's cost to the gateway: ${(med(names[2], 'gateway') - med(names[4], 'gateway')).toFixed(2)} (overview), ${(med(names[3], 'gateway') - med(names[4], 'gateway')).toFixed(2)} (device page) points of one core above "no browser, after one left"; budget 2.`,
    `Console on, no browser, minus console off: ${(med(names[1], 'gateway') - med(names[0], 'gateway')).toFixed(2)} points of a core, ${(med(names[1], 'wakeups') - med(names[0], 'wakeups')).toFixed(1)} wakeups / s.`,
    `One history sample (every 10 s): ${demoSample.toFixed(1)} µs CPU with the demo's 8 points (${(demoSample / 10_000_000 * 100).toExponential(1)} % of a core), ${fullSample.toFixed(0)} µs with ${MAX_POINTS} points; memory bound ${((3 + MAX_POINTS) * BUCKETS * 8 / 1e6).toFixed(2)} MB + ${(2 * BUCKETS * 8 / 1024).toFixed(1)} KiB per bridge (${BUCKETS} buckets of 10 s).`,
    `Assets: ${bytes} bytes gzipped; budget 150,000. Load after: ${loadAverage()}.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
