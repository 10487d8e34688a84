// `npm run bench -- console [--seconds 30]`: what the web console costs the gateway.
// `fieldgate run` (the embedded default: the demo meter polled every 2 s, $SYS every 10 s, state
// topics every 5 s) as a process; its CPU over the same window (a) with the console off, (b) on but
// no browser connected, (c) with one Chromium showing the overview, then (d) the device page (live
// values, 1 s age ticks, polled `device`). The browser's own CPU is printed too (all its processes).
// Also the assets' gzipped size, as the server holds them.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser } from '../../test/console/browser.js';
import { cpuSeconds, loadAverage, machineInfo } from '../lib/proc.js';

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

async function window(seconds: number, pid: number): Promise<{ gateway: number; browser: number }> {
  const g0 = cpuSeconds(pid);
  const b0 = chromiumCpu();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return { gateway: (100 * (cpuSeconds(pid) - g0)) / seconds, browser: (100 * (chromiumCpu() - b0)) / seconds };
}

export async function run(args: string[]): Promise<void> {
  const at = args.indexOf('--seconds');
  const seconds = at >= 0 ? Number(args[at + 1]) : 30;
  const info = machineInfo();
  process.stdout.write(`console bench: ${seconds} s windows; ${info.cpus} × ${info.cpuModel}; load ${loadAverage()}\n`);
  const rows: Array<[string, number, number | null]> = [];

  // (a) console off: a config file with the same demo, console disabled.
  const offDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-console-bench-'));
  fs.writeFileSync(path.join(offDir, 'off.json'), JSON.stringify({ demo: true, homeAssistant: { discovery: true }, console: { enabled: false } }));
  const off = await startGateway(offDir, ['--config', 'off.json'], false);
  await new Promise((r) => setTimeout(r, 3000));
  rows.push(['console off', (await window(seconds, off.child.pid!)).gateway, null]);
  off.child.kill('SIGTERM');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-console-bench-'));
  const gateway = await startGateway(dir, ['--console-port', '0']);
  const pid = gateway.child.pid!;
  await new Promise((r) => setTimeout(r, 3000));
  rows.push(['console on, no browser', (await window(seconds, pid)).gateway, null]);

  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    await page.goto(gateway.consoleUrl!);
    await page.locator('[data-testid=devices-online]').waitFor();
    await new Promise((r) => setTimeout(r, 3000));
    const overview = await window(seconds, pid);
    rows.push(['one browser on the overview', overview.gateway, overview.browser]);
    await page.goto(`${gateway.consoleUrl}#/device/demo-meter`);
    await page.locator('[data-testid=value-voltage]').waitFor();
    await new Promise((r) => setTimeout(r, 3000));
    const device = await window(seconds, pid);
    rows.push(['one browser on the device page', device.gateway, device.browser]);
  } finally {
    await browser.close();
    gateway.child.kill('SIGTERM');
  }
  const assets = path.join(ROOT, 'dist', 'console-ui');
  const { gzippedTotal, loadAssets } = await import('../../src/console/assets.js');
  const bytes = gzippedTotal(loadAssets(assets));

  const lines = [
    `| | fieldgate CPU, % of one core | Chromium CPU (all processes), % of one core |`,
    `|---|---:|---:|`,
    ...rows.map(([name, g, b]) => `| ${name} | ${g.toFixed(2)} | ${b === null ? '—' : b.toFixed(1)} |`),
    '',
    `The console's cost to the gateway: ${(rows[2]![1] - rows[1]![1]).toFixed(2)} (overview), ${(rows[3]![1] - rows[1]![1]).toFixed(2)} (device page) points of one core above "no browser"; budget 2.`,
    `Assets: ${bytes} bytes gzipped (${(bytes / 1024).toFixed(1)} KiB); budget 150 KiB. Load after: ${loadAverage()}.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(offDir, { recursive: true, force: true });
}
