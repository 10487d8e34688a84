// One network connection: bytes in → packets, packets out → coalesced writes.
// Protocol decisions live in handlers/; this file only moves bytes and holds per-connection state.

import mqttPacket from 'mqtt-packet';
import type { Duplex } from 'node:stream';
import { decodeSimplePublish, FrameError, PacketFramer } from './framer.js';
import { decodePacket } from './packet-decoder.js';
import { encodeDisconnect } from './packet-writer.js';
import type { Session, Will } from './session.js';
import type { ClientIdentity } from './types.js';

export type Packet = mqttPacket.Packet;

/**
 * Small packets are copied into one buffer per turn; when a turn carries many bytes in large packets
 * (often shared by many subscribers) they go out as they are, in one writev, without the copy.
 */
const COPY_COALESCE_LIMIT = 64 * 1024;
const LARGE_CHUNK_BYTES = 1024;

// Stream listeners shared by all connections (an emitter calls them with `this` = the stream),
// so an idle connection holds no closures of its own.
const owner = Symbol('fieldgate.connection');
type OwnedStream = Duplex & { [owner]: Connection };
function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this[owner].onData(chunk);
}
function onStreamDrain(this: OwnedStream): void {
  const connection = this[owner];
  connection.host.onDrain(connection);
}
function onStreamGone(this: OwnedStream): void {
  this[owner].destroy();
}

export interface ConnectionHost {
  readonly maximumPacketSize: number;
  /** Per-connection output buffer above which QoS 0 deliveries are dropped (slow or stalled reader). */
  readonly maxBufferedBytes: number;
  onPacket(connection: Connection, packet: Packet): void;
  onProtocolError(connection: Connection, error: Error): void;
  onClose(connection: Connection): void;
  /** The socket drained its buffer: a good time to send what congestion held back. */
  onDrain(connection: Connection): void;
  scheduleFlush(connection: Connection): void;
}

export class Connection {
  session: Session | null = null;
  /** 3 (3.1), 4 (3.1.1) or 5; known once CONNECT is parsed. */
  protocolVersion = 4;
  connected = false;
  closing = false;
  /** Why the broker closed the connection, for the disconnect log line. */
  closeReason: string | null = null;
  /** A DISCONNECT was received: no will unless a v5 reason 0x04 asked for it. */
  cleanDisconnect = false;
  keepAliveMs = 0;
  lastActivity: number;
  readonly openedAt: number;
  /** When close() began; the broker's sweep destroys a socket still open long after (a peer that never reads). */
  closingSince = 0;
  identity: ClientIdentity;
  will: Will | null = null;
  /** QoS 1/2 messages we may have in flight to the client: its Receive Maximum, capped by ours. */
  inflightWindow = 65535;
  clientMaximumPacketSize = 0;
  clientTopicAliasMaximum = 0;
  inboundAliases: Map<number, string> | null = null;
  outboundAliases: Map<string, number> | null = null;
  /** QoS 1 and 2 PUBLISHes received whose PUBACK/PUBCOMP has not been sent (our receive maximum). */
  incomingUnacked = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  flushScheduled = false;
  private closeNotified = false;
  private firstByteSeen = false;
  private readonly framer: PacketFramer;

  constructor(
    readonly host: ConnectionHost,
    readonly stream: Duplex,
    readonly address: string,
    readonly certificateUser?: string,
    /** False on listeners where clients must present a user name (or a client certificate). */
    readonly allowAnonymous = true,
  ) {
    this.openedAt = this.lastActivity = Date.now();
    this.identity = { clientId: '', address, local: false };
    this.framer = new PacketFramer(host.maximumPacketSize);
    (stream as OwnedStream)[owner] = this;
    stream.on('data', onStreamData);
    stream.on('drain', onStreamDrain);
    stream.on('error', onStreamGone);
    stream.on('close', onStreamGone);
  }

  onData(chunk: Buffer): void {
    if (this.closing) return;
    this.lastActivity = Date.now();
    if (!this.firstByteSeen && chunk.length > 0) {
      this.firstByteSeen = true;
      // The first packet must be CONNECT [MQTT-3.1.0-1]: refuse garbage before waiting for a body.
      if (chunk[0] !== 0x10) {
        this.host.onProtocolError(this, Object.assign(new Error('first packet is not CONNECT'), { reasonCode: 0x82 }));
        return;
      }
    }
    try {
      this.framer.push(chunk, this);
    } catch (error) {
      if (error instanceof FrameError) this.host.onProtocolError(this, error);
      else throw error;
    }
  }

  /** One whole packet: PUBLISH without properties is decoded here, everything else by mqtt-packet. */
  onFrame(frame: Buffer, headerLength: number): void {
    if (this.closing) return;
    if (this.connected && frame[0] >> 4 === 3) {
      const publish = decodeSimplePublish(frame, headerLength, this.protocolVersion === 5);
      if (publish !== null) {
        this.host.onPacket(this, publish as unknown as Packet);
        return;
      }
    }
    this.host.onPacket(this, decodePacket(frame, this.connected ? this.protocolVersion : 4));
  }

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

  /**
   * Encodes and queues a packet. A v5 packet larger than the client's Maximum Packet Size goes without
   * its Reason String, then without its User Properties (MQTT 5.0 §3.1.2.11.4, §3.14.2.2.2); if it is
   * still too large it is not sent at all [MQTT-3.1.2-24].
   */
  send(packet: Packet): void {
    let bytes = mqttPacket.generate(packet, { protocolVersion: this.protocolVersion });
    const limit = this.protocolVersion === 5 ? this.clientMaximumPacketSize : 0;
    if (limit > 0 && bytes.length > limit) {
      const properties = (packet as { properties?: Record<string, unknown> }).properties;
      for (const optional of ['reasonString', 'userProperties']) {
        if (properties?.[optional] === undefined) continue;
        delete properties[optional];
        bytes = mqttPacket.generate(packet, { protocolVersion: 5 });
        if (bytes.length <= limit) break;
      }
      if (bytes.length > limit) return;
    }
    this.write(bytes);
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
    const pending = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.writable) return;
    if (pending.length === 1) {
      this.stream.write(pending[0]);
    } else if (bytes <= COPY_COALESCE_LIMIT || bytes < pending.length * LARGE_CHUNK_BYTES) {
      this.stream.write(Buffer.concat(pending, bytes));
    } else {
      // Large payloads are often shared by many subscribers: hand them over without a copy (one writev).
      this.stream.cork();
      for (const chunk of pending) this.stream.write(chunk);
      this.stream.uncork();
    }
  }

  /** Sends what is queued (and a v5 DISCONNECT with the reason when given), then closes. */
  close(reasonCode?: number, reasonString?: string): void {
    if (this.closing) return;
    if (reasonCode !== undefined && this.protocolVersion === 5 && this.connected) {
      if (reasonString) this.send({ cmd: 'disconnect', reasonCode, properties: { reasonString } });
      else this.write(encodeDisconnect(reasonCode));
    }
    this.flush();
    this.closing = true;
    this.closingSince = Date.now();
    this.stream.end();
  }

  /** Sends what is queued and closes at once (the client said DISCONNECT: no graceful end to wait for). */
  closeNow(): void {
    if (!this.closing) this.flush();
    this.destroy();
  }

  destroy(): void {
    this.closing = true;
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.closeNotified) return;
    this.closeNotified = true;
    this.host.onClose(this);
  }
}
