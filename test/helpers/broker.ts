import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IClientSubscribeOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger, type Logger } from '../../src/log.js';

export type BrokerOptions = ConstructorParameters<typeof Broker>[0];
export type QoS = 0 | 1 | 2;

export const HOST = '127.0.0.1';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every 20 ms until it is truthy; fails after `timeoutMs` naming what it waited for. */
export async function waitFor(predicate: () => unknown, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves with the value once `fn` returns something other than undefined. */
export async function waitForValue<T>(fn: () => T | undefined, timeoutMs = 10_000, what = 'value'): Promise<T> {
  let value: T | undefined;
  await waitFor(() => (value = fn()) !== undefined, timeoutMs, what);
  return value as T;
}

export async function makeTempDir(prefix = 'fieldgate-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface StartedBroker {
  broker: Broker;
  port: number;
  close(): Promise<void>;
}

/** Starts a broker on 127.0.0.1, ephemeral port; in-memory SQLite unless `dataDir` is given. */
export async function startBroker(options: Partial<BrokerOptions> = {}): Promise<StartedBroker> {
  const broker = new Broker({ dataDir: null, logger: silentLogger, ...options } as BrokerOptions);
  await broker.start();
  const { port } = await broker.listen({ port: 0, host: HOST });
  let closed = false;
  return {
    broker,
    port,
    async close() {
      if (closed) return;
      closed = true;
      await broker.close();
    },
  };
}

/** A pino logger that keeps every log entry as a parsed object, for asserting what was logged. */
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

export interface Received {
  topic: string;
  payload: Buffer;
  text: string;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  messageId?: number;
  properties?: IPublishPacket['properties'];
}

/** An MQTT.js client that records what it receives. */
export class TestClient {
  readonly messages: Received[] = [];
  readonly packets: Packet[] = [];
  connack!: IConnackPacket;
  disconnect?: IDisconnectPacket;
  closed = false;

  constructor(readonly mqtt: MqttClient) {
    mqtt.on('message', (topic, payload, packet) => {
      this.messages.push({
        topic,
        payload,
        text: payload.toString('utf8'),
        qos: packet.qos,
        retain: packet.retain,
        dup: packet.dup,
        messageId: packet.messageId,
        properties: packet.properties,
      });
    });
    mqtt.on('packetreceive', (packet) => {
      this.packets.push(packet);
      if (packet.cmd === 'disconnect') this.disconnect = packet;
    });
    mqtt.on('close', () => {
      this.closed = true;
    });
    mqtt.on('error', () => {
      // recorded through packets/closed; tests assert on those
    });
  }

  texts(): string[] {
    return this.messages.map((m) => m.text);
  }

  /** A short description of what arrived, for failure messages. */
  summary(): string {
    const texts = this.texts().map((t) => (t.length > 40 ? `${t.slice(0, 40)}…(${t.length})` : t));
    const shown = texts.length > 12 ? [...texts.slice(0, 6), '…', ...texts.slice(-5)] : texts;
    return `have ${texts.length}: ${JSON.stringify(shown)}`;
  }

  clearMessages(): void {
    this.messages.length = 0;
  }

  /** Subscribes and returns the SUBACK codes (granted QoS or failure reason codes), never throwing on failures. */
  subscribe(filter: string | string[], options: Partial<IClientSubscribeOptions> = { qos: 0 }): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.mqtt.subscribe(filter, options as IClientSubscribeOptions, (err, _granted, packet) => {
        const suback = packet as { granted?: number[] } | undefined;
        if (suback?.granted) resolve(suback.granted as number[]);
        else reject(err ?? new Error('no SUBACK'));
      });
    });
  }

  async unsubscribe(filter: string | string[], properties?: Record<string, unknown>): Promise<Packet | undefined> {
    return (await this.mqtt.unsubscribeAsync(filter, properties ? { properties } : undefined)) as Packet | undefined;
  }

  /** Publishes and waits for the acknowledgement flow to finish (QoS 1/2); rejects on a v5 failure reason code. */
  async publish(topic: string, payload: string | Buffer, options: IClientPublishOptions = {}): Promise<Packet | undefined> {
    return (await this.mqtt.publishAsync(topic, payload, options)) as Packet | undefined;
  }

  async waitMessages(count: number, timeoutMs = 10_000): Promise<Received[]> {
    await waitFor(() => this.messages.length >= count, timeoutMs, `${count} message(s); ${this.summary()}`);
    return this.messages;
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'client connection to close');
  }

  /** Clean DISCONNECT. */
  async end(): Promise<void> {
    if (this.closed && !this.mqtt.connected) {
      this.mqtt.end(true);
      return;
    }
    await this.mqtt.endAsync();
  }

  /** Drops the TCP connection without DISCONNECT (abnormal close: the will is published). */
  async kill(): Promise<void> {
    this.mqtt.options.reconnectPeriod = 0;
    this.mqtt.stream.destroy();
    await this.waitClosed();
    this.mqtt.end(true);
  }
}

/** Connects MQTT.js; resolves on CONNACK success, rejects with the client's error (err.code = return/reason code). */
export function connectClient(port: number, options: IClientOptions = {}): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      host: HOST,
      port,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 15_000,
      keepalive: 60,
      ...options,
    });
    const test = new TestClient(client);
    const onError = (err: Error) => {
      cleanup();
      client.end(true);
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('connection closed before CONNACK'));
    };
    const cleanup = () => {
      client.off('error', onError);
      client.off('close', onClose);
    };
    client.once('connect', (connack) => {
      cleanup();
      test.connack = connack;
      resolve(test);
    });
    client.on('error', onError);
    client.on('close', onClose);
  });
}

export function connectV4(port: number, options: IClientOptions = {}): Promise<TestClient> {
  return connectClient(port, { protocolVersion: 4, ...options });
}

export function connectV5(port: number, options: IClientOptions = {}): Promise<TestClient> {
  return connectClient(port, { protocolVersion: 5, ...options });
}

/** A bare TCP MQTT peer built on mqtt-packet: sends exactly what a test says, records every packet it gets. */
export class RawClient {
  readonly received: Packet[] = [];
  /** Every byte received, for checks below the parser. */
  readonly bytes: Buffer[] = [];
  private readonly unread: Packet[] = [];
  readonly parseErrors: Error[] = [];
  isClosed = false;
  /** When true, incoming QoS 1/2 PUBLISH and PUBREL get PUBACK / PUBREC / PUBCOMP automatically. */
  autoAck = false;
  private readonly parser;

  private constructor(
    readonly socket: Socket,
    readonly protocolVersion: 3 | 4 | 5,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion });
    this.parser.on('packet', (packet: Packet) => {
      this.received.push(packet);
      this.unread.push(packet);
      if (this.autoAck) this.acknowledge(packet);
    });
    this.parser.on('error', (err: Error) => this.parseErrors.push(err));
    socket.on('data', (chunk: Buffer) => {
      this.bytes.push(chunk);
      this.parser.parse(chunk);
    });
    socket.on('close', () => {
      this.isClosed = true;
    });
    socket.on('error', () => {
      // a reset by the broker is an expected outcome in these tests
    });
  }

  static open(port: number, protocolVersion: 3 | 4 | 5 = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: HOST, port });
      socket.setNoDelay(true);
      socket.once('connect', () => resolve(new RawClient(socket, protocolVersion)));
      socket.once('error', reject);
    });
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  /** Answers a received PUBLISH (QoS 1/2) or PUBREL the way a well-behaved client does. */
  acknowledge(packet: Packet): void {
    if (packet.cmd === 'publish' && packet.qos === 1) this.send({ cmd: 'puback', messageId: packet.messageId });
    else if (packet.cmd === 'publish' && packet.qos === 2) this.send({ cmd: 'pubrec', messageId: packet.messageId });
    else if (packet.cmd === 'pubrel') this.send({ cmd: 'pubcomp', messageId: packet.messageId });
  }

  sendBytes(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Sends CONNECT and waits for CONNACK. */
  async connect(fields: Partial<mqttPacket.IConnectPacket> = {}, timeoutMs = 10_000): Promise<IConnackPacket> {
    this.send({
      cmd: 'connect',
      protocolId: this.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.protocolVersion,
      clean: true,
      clientId: `raw-${Math.random().toString(16).slice(2, 10)}`,
      keepalive: 60,
      ...fields,
    } as mqttPacket.IConnectPacket);
    return (await this.next('connack', timeoutMs)) as IConnackPacket;
  }

  /** Takes the oldest unread packet of the given kind (or any kind), waiting for it. */
  async next(cmd?: Packet['cmd'], timeoutMs = 10_000): Promise<Packet> {
    let found: Packet | undefined;
    await waitFor(
      () => {
        const index = this.unread.findIndex((p) => cmd === undefined || p.cmd === cmd);
        if (index >= 0) {
          found = this.unread.splice(index, 1)[0];
          return true;
        }
        if (this.isClosed) throw new Error(`connection closed while waiting for ${cmd ?? 'a packet'}; got ${this.describe()}`);
        return false;
      },
      timeoutMs,
      `${cmd ?? 'a packet'} (got ${this.describe()})`,
    );
    return found as Packet;
  }

  /** Unread packets of a kind, without waiting. */
  peek(cmd?: Packet['cmd']): Packet[] {
    return this.unread.filter((p) => cmd === undefined || p.cmd === cmd);
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for the broker to close the connection; got ${this.describe()}`)), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  describe(): string {
    return `[${this.received.map((p) => p.cmd).join(', ')}]${this.isClosed ? ' then closed' : ''}`;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Per-test resources that are always released: brokers, clients, raw sockets, temp dirs.
 * Call once at the top of a describe block (registers an afterEach hook).
 */
export function useHarness() {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanups.length > 0) {
      const cleanup = cleanups.pop()!;
      try {
        await cleanup();
      } catch {
        // best effort: one failed cleanup must not leak the rest
      }
    }
  });
  return {
    defer(cleanup: () => unknown): void {
      cleanups.push(cleanup);
    },
    async broker(options: Partial<BrokerOptions> = {}): Promise<StartedBroker> {
      const started = await startBroker(options);
      cleanups.push(() => started.close());
      return started;
    },
    async tempDir(): Promise<string> {
      const dir = await makeTempDir();
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return dir;
    },
    async v4(port: number, options: IClientOptions = {}): Promise<TestClient> {
      const client = await connectV4(port, options);
      cleanups.push(() => client.mqtt.end(true));
      return client;
    },
    async v5(port: number, options: IClientOptions = {}): Promise<TestClient> {
      const client = await connectV5(port, options);
      cleanups.push(() => client.mqtt.end(true));
      return client;
    },
    async raw(port: number, protocolVersion: 3 | 4 | 5 = 4): Promise<RawClient> {
      const client = await RawClient.open(port, protocolVersion);
      cleanups.push(() => client.destroy());
      return client;
    },
  };
}

export type Harness = ReturnType<typeof useHarness>;

/** A topic prefix unique to one test, so tests never see each other's messages. */
export function uniqueTopic(name = 't'): string {
  return `${name}/${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
