// One MQTT 3.1.1 connection over a raw socket: handshake helpers, then the role installs its own
// frame handler so that the hot path is the role's code only.

import net from 'node:net';
import { FrameScanner, type FrameHandler } from '../../lib/frame-scanner.js';
import { DISCONNECT, encodeConnect, encodeSubscribe, PacketType } from '../../lib/mqtt-wire.js';

const HANDSHAKE_TIMEOUT_MS = 15_000;

// Every socket of this process reads into one buffer (net's `onread`): no Buffer and no stream
// event per read, which matters when a broker sends one small packet per syscall. It is safe to
// share because each read is scanned synchronously and the scanner copies any partial packet.
const readBuffer = Buffer.allocUnsafe(256 * 1024);

export class RawClient {
  readonly socket: net.Socket;
  /** Runs for every complete packet from the broker. */
  onFrame: FrameHandler = () => {};
  /** Runs after each chunk has been scanned (roles batch their replies here). */
  afterChunk: () => void = () => {};
  closed = false;
  private readonly scanner = new FrameScanner((buffer, start, bodyStart, end) => this.onFrame(buffer, start, bodyStart, end));

  private constructor(port: number) {
    const socket = net.connect({
      port,
      host: '127.0.0.1',
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (bytesRead: number, buffer: Uint8Array) => {
          this.scanner.push(Buffer.from(buffer.buffer, buffer.byteOffset, bytesRead));
          this.afterChunk();
          return true;
        },
      },
    });
    this.socket = socket;
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => { this.closed = true; });
  }

  /** Opens a TCP connection, sends CONNECT and resolves on a successful CONNACK. */
  static async connect(port: number, clientId: string, keepAliveSeconds = 60): Promise<RawClient> {
    const client = new RawClient(port);
    await client.request(encodeConnect(clientId, { keepAliveSeconds }), PacketType.CONNACK, (buffer, _start, bodyStart) => {
      const code = buffer[bodyStart + 1];
      if (code !== 0) throw new Error(`CONNACK return code ${code} for ${clientId}`);
    });
    return client;
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    await this.request(encodeSubscribe(1, filter, qos), PacketType.SUBACK, (buffer, _start, _bodyStart, end) => {
      const granted = buffer[end - 1]!;
      if (granted >= 0x80) throw new Error(`subscription to ${filter} refused`);
    });
  }

  /** Sends DISCONNECT and closes; resolves when the socket is gone. */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.socket.destroy(); resolve(); }, 2_000);
      this.socket.once('close', () => { clearTimeout(timer); resolve(); });
      this.socket.end(DISCONNECT);
    });
  }

  private request(bytes: Buffer, replyType: number, check: FrameHandler): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no reply of type ${replyType} within ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
      const fail = (error: Error) => {
        clearTimeout(timer);
        this.onFrame = () => {};
        this.socket.destroy();
        reject(error);
      };
      const onClose = () => fail(new Error('connection closed during handshake'));
      this.socket.once('close', onClose);
      this.onFrame = (buffer, start, bodyStart, end) => {
        if (buffer[start]! >> 4 !== replyType) return;
        clearTimeout(timer);
        this.socket.off('close', onClose);
        this.onFrame = () => {};
        try {
          check(buffer, start, bodyStart, end);
          resolve();
        } catch (error) {
          fail(error as Error);
        }
      };
      this.socket.write(bytes);
    });
  }
}

/** Connects `count` clients with at most `concurrency` handshakes in flight. */
export async function connectMany(port: number, count: number, concurrency: number, clientId: (index: number) => string): Promise<RawClient[]> {
  const clients: RawClient[] = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      clients[index] = await RawClient.connect(port, clientId(index));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return clients;
}
