// A socat pty pair standing in for a serial cable: the gateway opens one end, a simulated device the other.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';

export async function waitFor(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PtyPair {
  readonly devicePath: string;
  readonly gatewayPath: string;
  private socat: ChildProcess | undefined;

  constructor(dir: string) {
    this.devicePath = join(dir, 'device');
    this.gatewayPath = join(dir, 'gateway');
  }

  async start(): Promise<void> {
    const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.devicePath}`, `pty,raw,echo=0,link=${this.gatewayPath}`], { stdio: 'ignore' });
    this.socat = socat;
    await waitFor(() => existsSync(this.devicePath) && existsSync(this.gatewayPath), 10_000, 'socat pty links');
  }

  /** Kills socat: both ptys disappear, as when a USB adapter is unplugged. */
  async stop(): Promise<void> {
    const socat = this.socat;
    this.socat = undefined;
    if (!socat || socat.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => socat.once('exit', () => resolve()));
    socat.kill('SIGTERM');
    await exited;
    await waitFor(() => !existsSync(this.devicePath) && !existsSync(this.gatewayPath), 5000, 'socat links removed');
  }
}

/** The device end: records what the gateway wrote, writes lines in deliberate fragments. */
export class SimulatedDevice {
  readonly received: string[] = [];
  private port: SerialPort | undefined;
  private buffered = '';
  onLine: ((line: string) => void) | undefined;

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    const port = new SerialPort({ path: this.path, baudRate: 9600, autoOpen: false, lock: false });
    port.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('latin1');
      let at: number;
      while ((at = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, at + 1);
        this.buffered = this.buffered.slice(at + 1);
        this.received.push(line);
        this.onLine?.(line);
      }
    });
    this.port = port;
  }

  async write(text: string | Buffer): Promise<void> {
    const port = this.port;
    if (!port) throw new Error('simulated device not open');
    await new Promise<void>((resolve, reject) => port.write(text, (err) => (err ? reject(err) : port.drain((e) => (e ? reject(e) : resolve())))));
  }

  /**
   * Writes the pieces one by one with a pause between, so they reach the gateway as separate reads.
   * Like a real device's UART, one message is finished before the next one starts.
   */
  writeFragments(pieces: string[], gapMs = 25): Promise<void> {
    const run = this.sending.then(async () => {
      for (const piece of pieces) {
        await this.write(piece);
        await sleep(gapMs);
      }
    });
    this.sending = run.catch(() => undefined);
    return run;
  }

  private sending: Promise<void> = Promise.resolve();

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }
}
