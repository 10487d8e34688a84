// Independent Modbus peers for the device tests: a pymodbus slave in another process and socat pty pairs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { requireTool } from '../../helpers/peers.js';

export const python = '/usr/bin/python3';
const slaveScript = path.resolve(import.meta.dirname, '../fixtures/modbus_slave.py');

let pymodbusChecked: boolean | undefined;
/** pymodbus 3 importable by /usr/bin/python3; same CI=true rule as requireTool. */
export function requirePymodbus(): boolean {
  if (pymodbusChecked !== undefined) return pymodbusChecked;
  const r = existsSync(python) ? spawnSync(python, ['-c', 'import pymodbus.server.async_io'], { encoding: 'utf8' }) : undefined;
  pymodbusChecked = r?.status === 0;
  if (!pymodbusChecked) {
    const reason = 'python3-pymodbus is not importable by /usr/bin/python3 (apt-get install -y python3-pymodbus)';
    if (process.env.CI === 'true') throw new Error(`required under CI=true: ${reason}`);
    console.warn(`skipping Modbus simulator tests: ${reason}`);
  }
  return pymodbusChecked;
}

export function requireSocat(): boolean {
  return requireTool('socat');
}

export interface TableSpec {
  size?: number;
  values?: Record<number, number | boolean>;
}

export interface UnitSpec {
  hr?: TableSpec;
  ir?: TableSpec;
  co?: TableSpec;
  di?: TableSpec;
  holes?: Partial<Record<'hr' | 'ir' | 'co' | 'di', number[]>>;
  delayMs?: number;
}

export interface SlaveRequest {
  unit: number;
  fc: number;
  address: number;
  count: number;
  ok: boolean;
  /** When the test process read the event (Date.now()). */
  at: number;
  /** When the slave validated the request, on its own monotonic clock (ms): no pipe jitter. */
  t: number;
}

export interface Slave {
  port: number;
  requests: SlaveRequest[];
  set(unit: number, table: 'hr' | 'ir' | 'co' | 'di', address: number, values: Array<number | boolean>): Promise<void>;
  stop(): Promise<void>;
}

export async function startSlave(config: { transport: 'tcp' | 'rtu'; device?: string; port?: number; units: Record<number, UnitSpec> }): Promise<Slave> {
  const child: ChildProcess = spawn(python, [slaveScript, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const requests: SlaveRequest[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const setWaiters: Array<() => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pymodbus slave did not start: ${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`pymodbus slave exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (event.event === 'listening') {
        clearTimeout(timer);
        resolve(Number(event.port));
      } else if (event.event === 'request') requests.push({ ...(event as unknown as SlaveRequest), at: Date.now() });
      else if (event.event === 'set') setWaiters.shift()?.();
    });
  });
  return {
    port,
    requests,
    set(unit, table, address, values) {
      return new Promise<void>((resolve) => {
        setWaiters.push(resolve);
        child.stdin?.write(JSON.stringify({ unit, table, address, values }) + '\n');
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface PtyPair {
  /** The gateway's end. */
  gateway: string;
  /** The slave's end. */
  slave: string;
  stop(): Promise<void>;
  /** Kills socat: both ptys disappear, as when a USB adapter is unplugged. */
  kill(): Promise<void>;
  /** Starts socat again with the same link names (after kill). */
  restart(): Promise<void>;
}

export async function startPtyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-pty-'));
  const gateway = path.join(dir, 'gateway');
  const slave = path.join(dir, 'slave');
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('socat', [`pty,raw,echo=0,link=${gateway}`, `pty,raw,echo=0,link=${slave}`], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(existsSync(gateway) && existsSync(slave))) {
      if (Date.now() > deadline) throw new Error('socat did not create the pty pair');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
    const deadline = Date.now() + 5000;
    while ((existsSync(gateway) || existsSync(slave)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };
  await start();
  return {
    gateway,
    slave,
    restart: start,
    kill: stop,
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
