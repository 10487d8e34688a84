// One network connection: bytes in → packets, packets out → coalesced writes.
// Protocol decisions live in handlers/; this file only moves bytes and holds per-connection state.

import mqttPacket from 'mqtt-packet';
import type { Duplex } from 'node:stream';
import type { Session, Will } from './session.js';
import type { ClientIdentity } from './types.js';

export type Packet = mqttPacket.Packet;

export interface ConnectionHost {
  readonly maximumPacketSize: number;
  /** Per-connection output buffer above which QoS 0 deliveries are dropped (slow or stalled reader). */
  readonly maxBufferedBytes: number;
  onPacket(connection: Connection, packet: Packet): void;
  onProtocolError(connection: Connection, error: Error): void;
  onClose(connection: Connection): void;
  scheduleFlush(connection: Connection): void;
}

export class Connection {
  session: Session | null = null;
  /** 3 (3.1), 4 (3.1.1) or 5; known once CONNECT is parsed. */
  protocolVersion = 4;
  connected = false;
  closing = false;
  /** A DISCONNECT was received: no will unless a v5 reason 0x04 asked for it. */
  cleanDisconnect = false;
  keepAliveMs = 0;
  lastActivity = Date.now();
  readonly openedAt = Date.now();
  identity: ClientIdentity;
  will: Will | null = null;
  clientReceiveMaximum = 65535;
  clientMaximumPacketSize = 0;
  clientTopicAliasMaximum = 0;
  readonly inboundAliases = new Map<number, string>();
  outboundAliases: Map<string, number> | null = null;
  /** QoS 1 and 2 PUBLISHes received whose PUBACK/PUBCOMP has not been sent (our receive maximum). */
  incomingUnacked = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  flushScheduled = false;
  private closeNotified = false;
  private readonly parser: mqttPacket.Parser;

  constructor(
    private readonly host: ConnectionHost,
    readonly stream: Duplex,
    readonly address: string,
    readonly certificateUser?: string,
    /** False on listeners where clients must present a user name (or a client certificate). */
    readonly allowAnonymous = true,
  ) {
    this.identity = { clientId: '', address, local: false };
    this.parser = mqttPacket.parser({ protocolVersion: 4 });
    this.parser.on('packet', this.onPacket);
    this.parser.on('error', this.onParseError);
    stream.on('data', this.onData);
    stream.on('error', () => this.destroy());
    stream.on('close', () => this.destroy());
    stream.on('end', () => this.destroy());
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.lastActivity = Date.now();
    this.parser.parse(chunk);
    // The parser buffers a packet until it is complete: refuse one that announces too many bytes.
    const announced = (this.parser as unknown as { packet: { length: number } }).packet.length;
    if (announced > this.host.maximumPacketSize && !this.closing) {
      this.host.onProtocolError(this, Object.assign(new Error(`packet of ${announced} bytes exceeds the maximum packet size`), { reasonCode: 0x95 }));
    }
  };

  private readonly onPacket = (packet: Packet): void => {
    if (this.closing) return;
    if ((packet as { length?: number }).length! > this.host.maximumPacketSize) {
      this.host.onProtocolError(this, Object.assign(new Error('packet exceeds the maximum packet size'), { reasonCode: 0x95 }));
      return;
    }
    this.host.onPacket(this, packet);
  };

  private readonly onParseError = (error: Error): void => {
    if (this.closing) return;
    this.host.onProtocolError(this, Object.assign(error, { reasonCode: 0x81 }));
  };

  /** Queues encoded bytes; they leave in one write per event-loop turn. */
  write(bytes: Buffer): void {
    if (this.closing && !this.stream.writable) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.host.scheduleFlush(this);
    }
  }

  send(packet: Packet): void {
    this.write(mqttPacket.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  /** Bytes waiting in our queue and the socket's. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.stream.writableLength;
  }

  get congested(): boolean {
    return this.bufferedBytes > this.host.maxBufferedBytes;
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.stream.writable) this.stream.write(data);
  }

  /** Sends what is queued (and a v5 DISCONNECT with the reason when given), then closes. */
  close(reasonCode?: number, reasonString?: string): void {
    if (this.closing) return;
    if (reasonCode !== undefined && this.protocolVersion === 5 && this.connected) {
      this.send({ cmd: 'disconnect', reasonCode, properties: reasonString ? { reasonString } : undefined });
    }
    this.flush();
    this.closing = true;
    this.stream.end();
    // A peer that never reads must not keep the socket (and its buffers) alive.
    setTimeout(() => this.stream.destroy(), 2000).unref();
  }

  destroy(): void {
    this.closing = true;
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.closeNotified) return;
    this.closeNotified = true;
    this.host.onClose(this);
  }
}
