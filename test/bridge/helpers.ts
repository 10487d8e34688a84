import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { createServer as createHttpServer } from 'node:http';
import { WebSocketServer, createWebSocketStream } from 'ws';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export { HOST, sleep, captureLogger } from '../helpers/broker.js';
import { HOST, sleep } from '../helpers/broker.js';

export async function waitFor(predicate: () => unknown, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
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
      /** Refuse CONNECT (not authorized) from clients for which this returns false. */
      admit?: (clientId: string) => boolean;
      /** While this returns true, PUBLISHes are left unauthorized: no PUBACK ever comes (a stuck remote). */
      holdPublishes?: () => boolean;
      /** Serve MQTT over WebSocket (ws://host:port/) instead of plain TCP. */
      websocket?: boolean;
    } = {},
  ) {}

  /** Every PUBLISH packet as it arrived on the wire (with its DUP flag), accepted or not. */
  readonly arrivals: { topic: string; payload: string; dup: boolean }[] = [];

  /** Every PUBLISH a client sent to this remote, across restarts, in arrival order. */
  readonly received: { clientId: string; topic: string; payload: string; dup: boolean; retain: boolean }[] = [];

  payloads(topicPrefix = ''): string[] {
    return this.received.filter((m) => m.topic.startsWith(topicPrefix)).map((m) => m.payload);
  }

  async start(port = this.port): Promise<number> {
    const aedes = await Aedes.createBroker();
    const { authenticate: check, admit } = this.options;
    if (check !== undefined || admit !== undefined) {
      aedes.authenticate = (client, username, password, done) => {
        if (admit !== undefined && !admit(client.id)) done(Object.assign(new Error('not admitted'), { returnCode: 5 }) as never, false);
        else if (check !== undefined && !check(username, password)) done(Object.assign(new Error('bad credentials'), { returnCode: 4 }) as never, false);
        else done(null, true);
      };
    }
    const hold = this.options.holdPublishes;
    aedes.authorizePublish = (_client, packet, done) => {
      this.arrivals.push({ topic: packet.topic, payload: packet.payload.toString(), dup: packet.dup });
      if (hold === undefined || !hold()) done(null);
    };
    aedes.on('publish', (packet, client) => {
      if (client === null || packet.topic.startsWith('$SYS')) return;
      this.received.push({ clientId: client.id, topic: packet.topic, payload: packet.payload.toString(), dup: packet.dup, retain: packet.retain });
    });
    const handle = (socket: Socket): void => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    };
    let server: Server;
    if (this.options.websocket === true) {
      const http = createHttpServer();
      const wss = new WebSocketServer({ server: http });
      wss.on('connection', (ws, req) => {
        const socket = req.socket;
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        aedes.handle(createWebSocketStream(ws) as never);
      });
      server = http as unknown as Server;
    } else {
      server = this.options.tls !== undefined ? createTlsServer(this.options.tls, handle) : createNetServer(handle);
    }
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

  constructor(private readonly extraConfig: string[] = []) {
    // Mosquitto started as root drops to the mosquitto user: it must be able to write its persistence file here.
    chmodSync(this.dir.path, 0o777);
  }

  async start(port?: number): Promise<number> {
    this.port = port ?? (this.port || (await freePort()));
    const conf = join(this.dir.path, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${this.port} ${HOST}`, 'allow_anonymous true', 'persistence false', `persistence_location ${this.dir.path}/`, ...this.extraConfig, ''].join('\n'));
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

  /** SIGKILL by default (a crash); SIGTERM lets Mosquitto save its persistence file. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
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


/** Publishes `count` QoS 1 messages "0".."count-1" to a broker, in order, waiting for every PUBACK. */
export async function publishMany(url: string, topic: string, count: number, start = 0): Promise<void> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `pub-${Math.random().toString(16).slice(2)}` });
  try {
    for (let i = start; i < start + count; i += 500) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(start + count, i + 500); j++) batch.push(client.publishAsync(topic, String(j), { qos: 1 }));
      await Promise.all(batch);
    }
  } finally {
    await client.endAsync();
  }
}

/**
 * Checks an arrival sequence of "0".."n-1": every message present, first arrivals in increasing order,
 * and returns how many arrivals were duplicates.
 */
export function checkSequence(payloads: string[], n: number): { missing: number[]; outOfOrder: number; duplicates: number } {
  const seen = new Set<number>();
  let last = -1;
  let outOfOrder = 0;
  let duplicates = 0;
  for (const p of payloads) {
    const v = Number(p);
    if (seen.has(v)) {
      duplicates += 1;
      continue;
    }
    seen.add(v);
    if (v < last) outOfOrder += 1;
    last = v;
  }
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing.push(i);
  return { missing: missing.slice(0, 20), outOfOrder, duplicates };
}
