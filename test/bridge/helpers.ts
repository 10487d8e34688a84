import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';

export const HOST = '127.0.0.1';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export function captureLogger(): { logger: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'trace', base: undefined },
    {
      write(line: string) {
        try {
          entries.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          entries.push({ msg: line });
        }
      },
    },
  );
  return { logger, entries };
}

export function tempDir(prefix = 'fieldgate-bridge-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An Aedes broker playing the cloud, on a TCP (or TLS) listener. Can be stopped and restarted on the same port. */
export class AedesRemote {
  port = 0;
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly options: {
      tls?: TlsOptions;
      authenticate?: (username: string | undefined, password: Buffer | undefined) => boolean;
      /** Delay each PUBACK by holding the publish hook (ms). */
      publishDelayMs?: number;
    } = {},
  ) {}

  async start(port = this.port): Promise<number> {
    const aedes = await Aedes.createBroker();
    if (this.options.authenticate !== undefined) {
      const check = this.options.authenticate;
      aedes.authenticate = (_client, username, password, done) => {
        if (check(username, password)) done(null, true);
        else done(Object.assign(new Error('bad credentials'), { returnCode: 4 }) as never, false);
      };
    }
    const handle = (socket: Socket): void => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    };
    const server = this.options.tls !== undefined ? createTlsServer(this.options.tls, handle) : createNetServer(handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOST, () => resolve());
    });
    this.aedes = aedes;
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  /** Stops listening and cuts every connection (a crash as the bridge sees it). */
  async stop(): Promise<void> {
    const { aedes, server } = this;
    this.aedes = undefined;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (aedes !== undefined) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}

/** A subscriber on the remote that records every message in arrival order. */
export class RemoteSubscriber {
  readonly messages: { topic: string; payload: string; retain: boolean; dup: boolean }[] = [];
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, filter: string, options: IClientOptions = {}): Promise<RemoteSubscriber> {
    const client = mqtt.connect(url, { reconnectPeriod: 200, connectTimeout: 5000, clientId: `sub-${Math.random().toString(16).slice(2)}`, clean: false, ...options });
    const sub = new RemoteSubscriber(client);
    client.on('message', (topic, payload, packet) => sub.messages.push({ topic, payload: payload.toString(), retain: packet.retain, dup: packet.dup }));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => client.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      client.once('error', reject);
    });
    return sub;
  }

  payloads(topicPrefix = ''): string[] {
    return this.messages.filter((m) => m.topic.startsWith(topicPrefix)).map((m) => m.payload);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
  }
}

/** A Mosquitto process on a free port, from a generated config. */
export class MosquittoRemote {
  port = 0;
  private proc: ChildProcess | undefined;
  readonly dir = tempDir('fieldgate-mosq-');

  constructor(private readonly extraConfig: string[] = []) {}

  async start(port?: number): Promise<number> {
    this.port = port ?? (this.port || (await freePort()));
    const conf = join(this.dir.path, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${this.port} ${HOST}`, 'allow_anonymous true', 'persistence false', ...this.extraConfig, ''].join('\n'));
    const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited (${proc.exitCode}): ${stderr}`);
      if (await canConnect(this.port)) return this.port;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${this.port}: ${stderr}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.dir.remove();
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

