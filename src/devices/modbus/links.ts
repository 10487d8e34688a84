// Modbus transports: RTU framing (over a serial port or a raw TCP socket to a serial converter)
// and Modbus TCP (MBAP). A link carries bytes and matches replies to requests; scheduling,
// pacing and reconnecting belong to the bus.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SerialPort } from 'serialport';
import { loadSerialPort } from '../serialport-module.js';
import { describeSerialOpenError } from '../serial-open-error.js';
import { LinkDown, ModbusTimeout, crc16, expectedReplyLength } from './pdu.js';
import type { ModbusBus } from './schema.js';

export interface LinkStats {
  requests: number;
  timeouts: number;
  /** Bytes that arrived when no request was waiting, or that did not belong to the reply. */
  strayBytes: number;
  crcErrors: number;
}

export interface ModbusLink {
  /** Sends one request PDU to a unit and resolves with its reply PDU (which may be an exception PDU). */
  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer>;
  /** RTU only: forget buffered bytes and wait until the line has been quiet for quietMs (at most maxMs). */
  drain(quietMs: number, maxMs: number): Promise<void>;
  /** True when only one request may be in flight (RTU). */
  readonly serial: boolean;
  readonly closed: boolean;
  readonly stats: LinkStats;
  onClose(listener: (reason: string) => void): void;
  close(): Promise<void>;
}

interface Pending {
  unitId: number;
  request: Buffer;
  resolve(reply: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

abstract class StreamLink implements ModbusLink {
  abstract readonly serial: boolean;
  closed = false;
  readonly stats: LinkStats = { requests: 0, timeouts: 0, strayBytes: 0, crcErrors: 0 };
  protected lastByteAt = 0;
  private closeListeners: Array<(reason: string) => void> = [];

  constructor(protected readonly stream: Duplex, private readonly closeStream: () => Promise<void>) {
    stream.on('data', (chunk: Buffer) => {
      this.lastByteAt = Date.now();
      this.onData(chunk);
    });
    stream.on('error', (err: Error) => this.markClosed(err.message));
    stream.on('close', () => this.markClosed('closed'));
  }

  protected abstract onData(chunk: Buffer): void;
  protected abstract failAll(error: Error): void;
  abstract request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer>;

  async drain(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (!this.closed && Date.now() < deadline && Date.now() - this.lastByteAt < quietMs) {
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(quietMs, deadline - Date.now()))));
    }
    this.discardBuffered();
  }

  protected discardBuffered(): void {}

  onClose(listener: (reason: string) => void): void {
    if (this.closed) listener('closed');
    else this.closeListeners.push(listener);
  }

  protected markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new LinkDown(reason));
    for (const l of this.closeListeners.splice(0)) l(reason);
  }

  async close(): Promise<void> {
    this.markClosed('closed by fieldgate');
    await this.closeStream().catch(() => undefined);
  }
}

/** RTU framing: unit id + PDU + CRC, replies recognised by unit, function, length and CRC. */
export class RtuLink extends StreamLink {
  readonly serial = true;
  private pending: Pending | undefined;
  private buffer: Buffer = Buffer.alloc(0);

  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new LinkDown('link is closed'));
    if (this.pending) return Promise.reject(new Error('RTU link: a request is already in flight'));
    this.buffer = Buffer.alloc(0);
    const adu = Buffer.alloc(pdu.length + 3);
    adu[0] = unitId;
    pdu.copy(adu, 1);
    adu.writeUInt16LE(crc16(adu.subarray(0, adu.length - 2)), adu.length - 2);
    this.stats.requests++;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.stats.timeouts++;
        reject(new ModbusTimeout(unitId, timeoutMs));
      }, timeoutMs);
      this.pending = { unitId, request: pdu, resolve, reject, timer };
      this.stream.write(adu);
    });
  }

  protected override discardBuffered(): void {
    this.stats.strayBytes += this.buffer.length;
    this.buffer = Buffer.alloc(0);
  }

  protected onData(chunk: Buffer): void {
    if (!this.pending) {
      this.stats.strayBytes += chunk.length;
      return;
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.parse();
  }

  private parse(): void {
    const pending = this.pending;
    if (!pending) return;
    const fc = pending.request[0];
    while (this.buffer.length >= 2) {
      const b = this.buffer;
      if (b[0] !== pending.unitId || (b[1] & 0x7f) !== fc) {
        this.skip(1);
        continue;
      }
      const pduLength = b[1] & 0x80 ? 2 : (expectedReplyLength(pending.request) ?? 2);
      const frameLength = 1 + pduLength + 2;
      if (b.length < frameLength) return;
      if (b.readUInt16LE(frameLength - 2) !== crc16(b.subarray(0, frameLength - 2))) {
        this.stats.crcErrors++;
        this.skip(1);
        continue;
      }
      const reply = Buffer.from(b.subarray(1, frameLength - 2));
      this.stats.strayBytes += b.length - frameLength;
      this.buffer = Buffer.alloc(0);
      clearTimeout(pending.timer);
      this.pending = undefined;
      pending.resolve(reply);
      return;
    }
  }

  private skip(n: number): void {
    this.stats.strayBytes += n;
    this.buffer = this.buffer.subarray(n);
  }

  protected failAll(error: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }
}

/** Modbus TCP: MBAP header, replies matched by transaction id, so late replies are simply dropped. */
export class TcpLink extends StreamLink {
  readonly serial = false;
  private readonly pending = new Map<number, Pending>();
  private nextTransaction = 1;
  private buffer: Buffer = Buffer.alloc(0);

  request(unitId: number, pdu: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new LinkDown('link is closed'));
    const id = this.nextTransaction;
    this.nextTransaction = (this.nextTransaction % 0xffff) + 1;
    const adu = Buffer.alloc(7 + pdu.length);
    adu.writeUInt16BE(id, 0);
    adu.writeUInt16BE(0, 2);
    adu.writeUInt16BE(pdu.length + 1, 4);
    adu[6] = unitId;
    pdu.copy(adu, 7);
    this.stats.requests++;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.stats.timeouts++;
        reject(new ModbusTimeout(unitId, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { unitId, request: pdu, resolve, reject, timer });
      this.stream.write(adu);
    });
  }

  protected onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 7) {
      const length = this.buffer.readUInt16BE(4);
      if (this.buffer.readUInt16BE(2) !== 0 || length < 2 || length > 254) {
        // Not MBAP: the byte stream cannot be resynchronised, start a fresh connection.
        this.stats.strayBytes += this.buffer.length;
        this.buffer = Buffer.alloc(0);
        this.stream.destroy();
        return;
      }
      if (this.buffer.length < 6 + length) return;
      const id = this.buffer.readUInt16BE(0);
      const unitId = this.buffer[6];
      const reply = Buffer.from(this.buffer.subarray(7, 6 + length));
      this.buffer = this.buffer.subarray(6 + length);
      const pending = this.pending.get(id);
      if (!pending || pending.unitId !== unitId) {
        this.stats.strayBytes += 6 + length;
        continue;
      }
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.resolve(reply);
    }
  }

  protected failAll(error: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
  }
}

function connectSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new LinkDown(`connect to ${host}:${port} aborted`));
      return;
    }
    const socket = net.connect({ host, port });
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    };
    // A device that does not answer SYNs (still booting, a full backlog) holds a connect for the whole
    // timeout: stopping the gateway must not wait for it.
    const abort = () => {
      settle();
      socket.destroy();
      reject(new LinkDown(`connect to ${host}:${port} aborted`));
    };
    signal?.addEventListener('abort', abort, { once: true });
    const timer = setTimeout(() => {
      settle();
      socket.destroy();
      reject(new LinkDown(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      settle();
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
      resolve(socket);
    });
    socket.once('error', (err) => {
      settle();
      reject(new LinkDown(`connect to ${host}:${port}: ${err.message}`));
    });
  });
}

async function openSerial(bus: Extract<ModbusBus, { type: 'modbus-rtu' }>): Promise<SerialPort> {
  const SerialPort = await loadSerialPort();
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: bus.path, baudRate: bus.baudRate, dataBits: bus.dataBits, stopBits: bus.stopBits, parity: bus.parity, autoOpen: false });
    port.open((err) => {
      if (err) reject(new LinkDown(describeSerialOpenError(bus.path, err.message)));
      else resolve(port);
    });
  });
}

/**
 * Opens the transport a bus describes. Rejects with LinkDown when the port or host is not there, or at
 * once when `signal` aborts a TCP connect (a serial open is quick and runs to its end).
 */
export async function openLink(bus: ModbusBus, connectTimeoutMs = 5000, signal?: AbortSignal): Promise<ModbusLink> {
  switch (bus.type) {
    case 'modbus-rtu': {
      const port = await openSerial(bus);
      return new RtuLink(port, () => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())));
    }
    case 'modbus-rtu-over-tcp': {
      const socket = await connectSocket(bus.host, bus.port, connectTimeoutMs, signal);
      return new RtuLink(socket, async () => void socket.destroy());
    }
    case 'modbus-tcp': {
      const socket = await connectSocket(bus.host, bus.port, connectTimeoutMs, signal);
      return new TcpLink(socket, async () => void socket.destroy());
    }
  }
}
