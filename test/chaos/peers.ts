// The peers of the chaos run, each one controllable from the harness: a Mosquitto "cloud" that can be
// stopped and started, and a Modbus TCP device that answers, is mute, refuses or black-holes connects.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';

/** A Mosquitto on a fixed port with persistence, so an outage (SIGTERM, restart) keeps its queued messages. */
export class CloudMosquitto {
  private child: ChildProcess | null = null;
  private readonly configFile: string;

  constructor(readonly port: number, readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.configFile = path.join(dir, 'mosquitto.conf');
    fs.writeFileSync(this.configFile, [
      // As root Mosquitto would switch to the "mosquitto" user, which cannot write this directory:
      // its persistence file (and log) would silently not be written, and an outage would lose
      // every message queued in the cloud, which this test would then blame on the gateway.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 1',
      // Unbounded queues: the cloud must not be the one losing messages in this test.
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'max_inflight_messages 20',
      `log_dest file ${dir}/mosquitto.log`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      '',
    ].join('\n'));
  }

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn('mosquitto', ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`cloud mosquitto exited at start (${child.exitCode}): ${stderr}`);
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) throw new Error(`cloud mosquitto did not listen on ${this.port} within 10 s: ${stderr}`);
      await sleep(50);
    }
  }

  /** SIGTERM: Mosquitto writes its persistence file on the way out. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

export type DeviceMode = 'ok' | 'mute' | 'refuse' | 'blackhole';

/**
 * One Modbus TCP device on a fixed port, in one of four moods:
 * ok (a simulated SDM120 answers), mute (connects are accepted, requests never answered),
 * refuse (nothing listens: ECONNREFUSED), blackhole (a listener whose accept queue is full, so a
 * connect hangs as with a meter still booting or a cable pulled).
 */
export class ControllableDevice {
  mode: DeviceMode = 'refuse';
  private meter: SimulatedMeter | null = null;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private hole: ChildProcess | null = null;
  private fillers: net.Socket[] = [];
  private switching: Promise<void> = Promise.resolve();

  constructor(readonly port: number, private readonly seed: number) {}

  async setMode(mode: DeviceMode): Promise<void> {
    const next = this.switching.then(() => this.apply(mode));
    this.switching = next.catch(() => undefined);
    return next;
  }

  private async apply(mode: DeviceMode): Promise<void> {
    if (mode === this.mode) return;
    await this.teardown();
    this.mode = mode;
    if (mode === 'ok' || mode === 'mute') {
      if (mode === 'ok' && !this.meter) this.meter = await startSimulatedMeter({ port: 0, seed: this.seed });
      const meterPort = this.meter?.port;
      const server = net.createServer((socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
        if (mode === 'mute') return;
        const upstream = net.connect(meterPort!, '127.0.0.1');
        upstream.on('error', () => socket.destroy());
        socket.on('close', () => upstream.destroy());
        upstream.on('close', () => socket.destroy());
        socket.pipe(upstream).pipe(socket);
      });
      await listenRetrying(server, this.port);
      this.server = server;
    } else if (mode === 'blackhole') {
      await this.openBlackhole();
    }
  }

  private async openBlackhole(): Promise<void> {
    // Node accepts every connection itself; a Python socket that listens with a backlog of 0 and
    // never accepts makes the kernel drop further SYNs once its queue holds a connection or two.
    const script = [
      'import socket, sys',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${this.port}))`,
      's.listen(0)',
      'print("listening", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const hole = spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.hole = hole;
    let stderr = '';
    hole.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`blackhole listener did not start: ${stderr}`)), 10_000);
      hole.stdout!.once('data', () => { clearTimeout(timer); resolve(); });
      hole.once('exit', (code) => { clearTimeout(timer); reject(new Error(`blackhole listener exited (${code}): ${stderr}`)); });
    }).catch(async (error: Error) => {
      // The port may still be held by the previous mode's sockets for a moment: try once more.
      if (!/Address already in use/.test(error.message)) throw error;
      await sleep(200);
      this.hole = null;
      return this.openBlackhole();
    });
    // Fill the accept queue so the gateway's own connect finds it full.
    for (let i = 0; i < 3; i++) {
      const filler = net.connect(this.port, '127.0.0.1');
      filler.on('error', () => undefined);
      this.fillers.push(filler);
    }
    await sleep(100);
  }

  private async teardown(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (this.server) {
      const server = this.server;
      this.server = null;
      await new Promise<void>((r) => server.close(() => r()));
    }
    for (const filler of this.fillers) filler.destroy();
    this.fillers = [];
    if (this.hole) {
      const hole = this.hole;
      this.hole = null;
      const exited = new Promise((r) => hole.once('exit', r));
      hole.stdin!.end();
      hole.kill('SIGKILL');
      await exited;
    }
  }

  async close(): Promise<void> {
    await this.switching;
    await this.teardown();
    await this.meter?.stop();
    this.meter = null;
  }
}

async function listenRetrying(server: net.Server, port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
      });
      return;
    } catch (error) {
      if (attempt > 50) throw error;
      await sleep(100);
    }
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { socket.destroy(); resolve(false); }, 1000);
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve(true); });
    socket.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
