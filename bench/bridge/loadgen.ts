// Raw MQTT load generator and counting subscriber on mqtt-packet, so the measuring side is not the bottleneck.
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

async function handshake(port: number, clientId: string, onPacket: (p: mqttPacket.Packet) => void): Promise<Socket> {
  const socket = await openSocket(port);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let connected: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  parser.on('packet', (p: mqttPacket.Packet) => {
    if (p.cmd === 'connack') connected!();
    else onPacket(p);
  });
  socket.on('data', (d) => parser.parse(d));
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }));
  await ready;
  return socket;
}

/** Publishes `count` QoS 1 messages with at most `window` unacknowledged; resolves when all are acknowledged. */
export async function publishFlood(port: number, opts: { count: number; topic: string; payloadBytes: number; window: number; clientId: string }): Promise<number> {
  let acked = 0;
  let sent = 0;
  let done: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const payload = Buffer.alloc(opts.payloadBytes, 0x61);
  let socket!: Socket;
  const pump = (): void => {
    const chunks: Buffer[] = [];
    while (sent < opts.count && sent - acked < opts.window) {
      const id = (sent % 65535) + 1;
      chunks.push(mqttPacket.generate({ cmd: 'publish', topic: opts.topic, payload, qos: 1, messageId: id, dup: false, retain: false }));
      sent += 1;
    }
    if (chunks.length > 0) socket.write(Buffer.concat(chunks));
  };
  socket = await handshake(port, opts.clientId, (p) => {
    if (p.cmd !== 'puback') return;
    acked += 1;
    if (acked === opts.count) done!();
    else if (opts.count - sent > 0 && sent - acked <= opts.window / 2) pump();
  });
  const started = performance.now();
  pump();
  await finished;
  const ms = performance.now() - started;
  socket.destroy();
  return ms;
}

/** Counts QoS 0 messages on a filter, remembering when the first and the last arrived. */
export class CountingSubscriber {
  count = 0;
  firstAt = 0;
  lastAt = 0;
  private socket: Socket | undefined;

  async start(port: number, filter: string): Promise<void> {
    let subscribed: (() => void) | undefined;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    this.socket = await handshake(port, `counter-${process.pid}-${Date.now()}`, (p) => {
      if (p.cmd === 'suback') subscribed!();
      if (p.cmd !== 'publish') return;
      const now = performance.now();
      if (this.count === 0) this.firstAt = now;
      this.lastAt = now;
      this.count += 1;
    });
    this.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 0 }] }));
    await ready;
  }

  stop(): void {
    this.socket?.destroy();
  }
}
