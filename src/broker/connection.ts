// One network connection: bytes in → packets, packets out → coalesced writes.
// Protocol decisions live in handlers/; this file only moves bytes and holds per-connection state.

import mqttPacket from 'mqtt-packet';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { decodeSimplePublish, FrameError, PacketFramer } from './framer.js';
import { decodePacket } from './packet-decoder.js';
import { encodeDisconnect } from './packet-writer.js';
import type { Session, Will } from './session.js';
import type { ClientIdentity } from './types.js';

// mqtt-packet otherwise builds a cache of 65,536 two-byte Buffers on its first write: 6 MiB of heap (a third of an
// idle gateway's) to save one 2-byte allocation per packet id. MQTT.js turns it off the same way (writeCache: false).
mqttPacket.writeToStream.cacheNumbers = false;

export type Packet = mqttPacket.Packet;

/**
 * Small packets are copied into one buffer per turn; when a turn carries many bytes in large packets
 * (often shared by many subscribers) they go out as they are, in one writev, without the copy.
 */
const COPY_COALESCE_LIMIT = 64 * 1024;
const LARGE_CHUNK_BYTES = 1024;

/**
 * One coalescing buffer shared by every plain TCP connection: a turn's small packets for one client
 * are copied into it and written; when the kernel took them all at once (the usual case) the next
 * connection reuses it, so flushing to a large fan-out allocates nothing. When a write is left
 * pending, that buffer now belongs to the socket and a new one is made.
 */
let slab = Buffer.allocUnsafeSlow(COPY_COALESCE_LIMIT);

// Stream listeners shared by all connections (an emitter calls them with `this` = the stream),
// so an idle connection holds no closures of its own. Each is guarded: an exception in the
// handling of one client closes that client and never reaches the event loop.
const owner = Symbol('fieldgate.connection');
type OwnedStream = Duplex & { [owner]: Connection };
function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this[owner].onData(chunk);
}
function onStreamDrain(this: OwnedStream): void {
  const connection = this[owner];
  try {
    connection.drained();
    connection.host.onDrain(connection);
  } catch (error) {
    connection.fail(error, 'drain');
  }
}
function onStreamGone(this: OwnedStream): void {
  const connection = this[owner];
  try {
    connection.destroy();
  } catch (error) {
    connection.fail(error, 'close');
  }
}

export interface ConnectionHost {
  readonly maximumPacketSize: number;
  /** Per-connection output buffer above which QoS 0 deliveries are dropped (slow or stalled reader). */
  readonly maxBufferedBytes: number;
  /** Whether the output buffered by all connections together is past its budget (then each keeps only a small share). */
  readonly outputBudgetExceeded: boolean;
  /** This connection's socket now holds `bytes` not yet taken by the kernel (was `previous`). */
  accountOutput(previous: number, bytes: number): void;
  /** Largest packet, and so about the most bytes, taken from a socket before its CONNECT is accepted. */
  readonly maxPreConnectBytes: number;
  onPacket(connection: Connection, packet: Packet): void;
  onProtocolError(connection: Connection, error: Error): void;
  /** The connection is closing: detach it from its session (once; the socket may linger to flush). */
  onClose(connection: Connection): void;
  /** The socket is gone. */
  onSocketGone(connection: Connection): void;
  /** The socket drained its buffer: a good time to send what congestion held back. */
  onDrain(connection: Connection): void;
  scheduleFlush(connection: Connection): void;
  /** An exception escaped the handling of this connection's event `where`: log it once, close it. */
  onInternalError(connection: Connection, error: unknown, where: string): void;
}

/**
 * Fairness: one connection's packets are handled for at most this many packets or this long per
 * event-loop turn; the rest waits (socket paused) for the next turn, after every other client.
 */
const PACKETS_PER_TURN = 256;
/** Output every client may buffer whatever the others hold. */
const GUARANTEED_OUTPUT_BYTES = 64 * 1024;
const MS_PER_TURN = 1;
/**
 * All connections together: once a turn has spent this long handling packets, each further connection
 * handles only PACKETS_AFTER_TURN_BUDGET before it yields, so that one turn (and with it every other
 * client's CONNACK or PINGRESP) is not as long as the sum of every busy connection's budget.
 */
const TURN_BUDGET_MS = 4;
const PACKETS_AFTER_TURN_BUDGET = 8;
/** When the current turn's packet handling began (performance.now()), 0 when no turn is open. */
let turnStartedAt = 0;
function endTurn(): void {
  turnStartedAt = 0;
}

/**
 * Framers of connections with no partial packet: an idle connection holds none. A connection takes one
 * when bytes arrive and gives it back once they are all handled (the usual case, one read at a time).
 */
const spareFramers: PacketFramer[] = [];
const SPARE_FRAMERS = 8;
/** No packets queued: shared by every connection until its first write of a turn. */
const NOTHING_PENDING: Buffer[] = Object.freeze([]) as unknown as Buffer[];

// Boolean state of a connection, one bit each in `flags` (a field per boolean cost 8 bytes per connection).
const CONNECTED = 1 << 0;
const CLOSING = 1 << 1;
const CLEAN_DISCONNECT = 1 << 2;
const FLUSH_SCHEDULED = 1 << 3;
const CLOSE_NOTIFIED = 1 << 4;
const GONE_NOTIFIED = 1 << 5;
const FAILED = 1 << 6;
const FIRST_BYTE_SEEN = 1 << 7;
const TURN_YIELDED = 1 << 8;
const STREAM_PAUSED = 1 << 9;
const PLAIN_TCP = 1 << 10;
const ALLOW_ANONYMOUS = 1 << 11;

export class Connection {
  session: Session | null = null;
  /** 3 (3.1), 4 (3.1.1) or 5; known once CONNECT is parsed. */
  protocolVersion = 4;
  /** The booleans below (CONNECTED, CLOSING, …), one bit each. */
  private flags = 0;
  /** Why the broker closed the connection, for the disconnect log line. */
  closeReason: string | null = null;
  keepAliveMs = 0;
  lastActivity: number;
  readonly openedAt: number;
  /** When close() began; the broker's sweep destroys a socket still open long after (a peer that never reads). */
  closingSince = 0;
  identity: ClientIdentity;
  /** The listener it came in on (its url), for log lines; '' for Broker.listen(). */
  listener = '';
  will: Will | null = null;
  /** QoS 1/2 messages we may have in flight to the client: its Receive Maximum, capped by ours. */
  inflightWindow = 65535;
  clientMaximumPacketSize = 0;
  clientTopicAliasMaximum = 0;
  inboundAliases: Map<number, string> | null = null;
  /** UTF-8 bytes of the topics in inboundAliases, against the broker's maxTopicAliasBytes. */
  inboundAliasBytes = 0;
  outboundAliases: Map<string, number> | null = null;
  /** QoS 1 and 2 PUBLISHes received whose PUBACK/PUBCOMP has not been sent (our receive maximum). */
  incomingUnacked = 0;
  /** Since when a write has been waiting for the socket to drain (0: not blocked): a client that reads nothing. */
  writeBlockedSince = 0;
  private pending: Buffer[] = NOTHING_PENDING;
  private pendingBytes = 0;
  /** Bytes received and not yet handled; null when there are none (then taken from spareFramers as bytes come). */
  private framer: PacketFramer | null = null;
  /** Reasons reading is held (flow control towards a publisher whose subscribers are backlogged). */
  private readHolds = 0;

  constructor(
    readonly host: ConnectionHost,
    readonly stream: Duplex,
    readonly address: string,
    readonly certificateUser?: string,
    /** False on listeners where clients must present a user name (or a client certificate). */
    allowAnonymous = true,
  ) {
    this.openedAt = this.lastActivity = Date.now();
    this.identity = { clientId: '', address, local: false };
    // A plain TCP socket: a write it completes at once has copied our bytes into the kernel.
    if (stream instanceof net.Socket && !(stream instanceof tls.TLSSocket)) this.flags |= PLAIN_TCP;
    if (allowAnonymous) this.flags |= ALLOW_ANONYMOUS;
    (stream as OwnedStream)[owner] = this;
    stream.on('data', onStreamData);
    stream.on('drain', onStreamDrain);
    stream.on('error', onStreamGone);
    stream.on('close', onStreamGone);
  }

  get connected(): boolean { return (this.flags & CONNECTED) !== 0; }
  set connected(value: boolean) { this.setFlag(CONNECTED, value); }
  get closing(): boolean { return (this.flags & CLOSING) !== 0; }
  /** A DISCONNECT was received: no will unless a v5 reason 0x04 asked for it. */
  get cleanDisconnect(): boolean { return (this.flags & CLEAN_DISCONNECT) !== 0; }
  set cleanDisconnect(value: boolean) { this.setFlag(CLEAN_DISCONNECT, value); }
  get flushScheduled(): boolean { return (this.flags & FLUSH_SCHEDULED) !== 0; }
  /** False on listeners where clients must present a user name (or a client certificate). */
  get allowAnonymous(): boolean { return (this.flags & ALLOW_ANONYMOUS) !== 0; }
  private get turnYielded(): boolean { return (this.flags & TURN_YIELDED) !== 0; }
  private set turnYielded(value: boolean) { this.setFlag(TURN_YIELDED, value); }
  private get plainTcp(): boolean { return (this.flags & PLAIN_TCP) !== 0; }

  private setFlag(flag: number, value: boolean): void {
    if (value) this.flags |= flag;
    else this.flags &= ~flag;
  }

  /**
   * The largest packet taken from this client now: until CONNECT is accepted, a client may make us hold
   * only a small one [defect: unauthenticated exposure].
   */
  private get packetLimit(): number {
    return this.connected ? this.host.maximumPacketSize : Math.min(this.host.maxPreConnectBytes, this.host.maximumPacketSize);
  }

  private takeFramer(): PacketFramer {
    const framer = spareFramers.pop();
    if (framer === undefined) return (this.framer = new PacketFramer(this.packetLimit));
    framer.maximumPacketSize = this.packetLimit;
    return (this.framer = framer);
  }

  /** All received bytes are handled: the framer goes back to the spares. */
  private giveBackFramer(framer: PacketFramer): void {
    this.framer = null;
    if (spareFramers.length < SPARE_FRAMERS && framer.bufferedBytes === 0) spareFramers.push(framer);
  }

  /** Drops what was received and not handled (the connection is closing). */
  private dropInput(): void {
    const framer = this.framer;
    if (framer === null) return;
    framer.clear();
    this.giveBackFramer(framer);
  }

  onData(chunk: Buffer): void {
    if (this.closing) return;
    try {
      if ((this.flags & FIRST_BYTE_SEEN) === 0 && chunk.length > 0) {
        this.flags |= FIRST_BYTE_SEEN;
        // The first packet must be CONNECT [MQTT-3.1.0-1]: refuse garbage before waiting for a body.
        if (chunk[0] !== 0x10) {
          this.host.onProtocolError(this, Object.assign(new Error('first packet is not CONNECT'), { reasonCode: 0x82 }));
          return;
        }
      }
      (this.framer ?? this.takeFramer()).push(chunk);
      if (this.readHolds === 0 && !this.turnYielded) this.readFrames();
    } catch (error) {
      this.readFailed(error);
    }
  }

  /** A malformed packet is the client's protocol error; anything else is ours, and closes only this client. */
  private readFailed(error: unknown): void {
    if (error instanceof FrameError) this.host.onProtocolError(this, error);
    else this.fail(error, 'data');
  }

  /**
   * Handles whole packets within this turn's budget. Keep alive counts Control Packets, not bytes
   * [MQTT-3.1.2-24]: a packet dribbled a byte at a time does not keep the connection alive.
   */
  private readFrames(): void {
    const framer = this.framer;
    if (framer === null) return;
    const started = Date.now();
    const now = performance.now();
    if (turnStartedAt === 0) {
      turnStartedAt = now;
      setImmediate(endTurn);
    }
    const limit = now - turnStartedAt >= TURN_BUDGET_MS ? PACKETS_AFTER_TURN_BUDGET : PACKETS_PER_TURN;
    let handled = 0;
    for (;;) {
      if (this.closing || this.readHolds > 0) return;
      if (handled >= limit || ((handled & 7) === 7 && Date.now() - started >= MS_PER_TURN)) {
        this.yieldTurn();
        return;
      }
      const frame = framer.next();
      if (frame === null) {
        if (framer.bufferedBytes === 0) this.giveBackFramer(framer);
        return;
      }
      handled++;
      this.lastActivity = started;
      this.onFrame(frame, framer.headerLength);
      if (this.connected && framer.maximumPacketSize !== this.host.maximumPacketSize) framer.maximumPacketSize = this.host.maximumPacketSize;
    }
  }

  private yieldTurn(): void {
    this.turnYielded = true;
    this.updateFlow();
    setImmediate(resumeAfterTurn, this);
  }

  /** Called on the next turn after the budget ran out. */
  continueReading(): void {
    this.turnYielded = false;
    if (this.closing) return;
    try {
      if (this.readHolds === 0) this.readFrames();
      this.updateFlow();
    } catch (error) {
      this.readFailed(error);
    }
  }

  /** Flow control: stop handling this client's packets until releaseReading(). */
  holdReading(): void {
    this.readHolds++;
    this.updateFlow();
  }

  releaseReading(): void {
    if (this.readHolds === 0) return;
    this.readHolds--;
    if (this.readHolds > 0 || this.closing) return;
    if (!this.turnYielded) {
      // Packets already received come first, on a turn of their own.
      this.turnYielded = true;
      setImmediate(resumeAfterTurn, this);
    }
  }

  get readingHeld(): boolean {
    return this.readHolds > 0;
  }

  private updateFlow(): void {
    const pause = !this.closing && (this.readHolds > 0 || this.turnYielded);
    if (pause === ((this.flags & STREAM_PAUSED) !== 0)) return;
    this.setFlag(STREAM_PAUSED, pause);
    if (pause) this.stream.pause();
    else this.stream.resume();
  }

  /** An exception escaped the handling of this client: it alone is closed, and it is logged once. */
  fail(error: unknown, where: string): void {
    if ((this.flags & FAILED) !== 0) return;
    this.flags |= FAILED;
    try {
      this.host.onInternalError(this, error, where);
    } catch {
      // The report itself failed: the socket still goes.
    }
    try {
      this.destroy();
    } catch {
      // Nothing more can be done for this client.
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
    if (this.pending === NOTHING_PENDING) this.pending = [bytes];
    else this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if ((this.flags & FLUSH_SCHEDULED) === 0) {
      this.flags |= FLUSH_SCHEDULED;
      this.host.scheduleFlush(this);
    }
  }

  /**
   * Encodes and queues a packet. A v5 packet larger than the client's Maximum Packet Size goes without
   * its Reason String, then without its User Properties (MQTT 5.0 §3.1.2.11.4, §3.14.2.2.2), and a
   * CONNACK without the "available" flags whose absence means the same; a packet still too large is
   * not sent [MQTT-3.1.2-24] and the connection is closed, as the exchange cannot go on without it.
   */
  send(packet: Packet): void {
    const reason = (packet as { properties?: { reasonString?: string } }).properties;
    if (reason?.reasonString !== undefined && reason.reasonString.length > MAX_REASON_STRING) reason.reasonString = shortened(reason.reasonString);
    let bytes = mqttPacket.generate(packet, { protocolVersion: this.protocolVersion });
    const limit = this.protocolVersion === 5 ? this.clientMaximumPacketSize : 0;
    if (limit > 0 && bytes.length > limit) {
      const properties = (packet as { properties?: Record<string, unknown> }).properties;
      // What a server may leave out; for CONNACK also the flags whose absence means "available" (§3.2.2.3.5, .11-.13).
      const OMISSIBLE = ['reasonString', 'userProperties'];
      const CONNACK_DEFAULT_TRUE = ['retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable'];
      for (const optional of packet.cmd === 'connack' ? [...OMISSIBLE, ...CONNACK_DEFAULT_TRUE] : OMISSIBLE) {
        if (properties?.[optional] === undefined) continue;
        if (CONNACK_DEFAULT_TRUE.includes(optional) && properties[optional] !== true) continue;
        delete properties[optional];
        bytes = mqttPacket.generate(packet, { protocolVersion: 5 });
        if (bytes.length <= limit) break;
      }
      if (bytes.length > limit) {
        this.closeReason ??= `a ${packet.cmd.toUpperCase()} of ${bytes.length} bytes exceeds the client's Maximum Packet Size of ${limit}`;
        this.close();
        return;
      }
    }
    this.write(bytes);
  }

  /** Bytes waiting in our queue and the socket's. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.stream.writableLength;
  }

  /**
   * Past this, QoS 0 deliveries are dropped and QoS 1/2 wait in the session queue. A client may use
   * up to maxBufferedBytes while all clients together stay within the broker's output budget; past
   * the budget each keeps GUARANTEED_OUTPUT_BYTES, so many clients that read nothing cost a bounded
   * total and a reading client still has room for bursts.
   */
  get congested(): boolean {
    const buffered = this.bufferedBytes;
    if (buffered <= GUARANTEED_OUTPUT_BYTES) return false;
    return buffered > this.host.maxBufferedBytes || this.host.outputBudgetExceeded;
  }

  /** Bytes the socket holds that this connection has reported to the host's budget. */
  private accountedOutput = 0;

  private reportOutput(): void {
    const bytes = this.stream.destroyed ? 0 : this.stream.writableLength;
    if (bytes === this.accountedOutput) return;
    this.host.accountOutput(this.accountedOutput, bytes);
    this.accountedOutput = bytes;
  }

  /** The socket drained: its share of the output budget is free. */
  drained(): void {
    this.writeBlockedSince = 0;
    this.reportOutput();
  }

  flush(): void {
    this.flags &= ~FLUSH_SCHEDULED;
    if (this.pending.length === 0) return;
    const pending = this.pending;
    const bytes = this.pendingBytes;
    this.pending = NOTHING_PENDING;
    this.pendingBytes = 0;
    if (!this.stream.writable) return;
    if (pending.length === 1) {
      this.stream.write(pending[0]);
    } else if (bytes <= COPY_COALESCE_LIMIT && this.plainTcp && this.stream.writableLength === 0) {
      let offset = 0;
      for (const chunk of pending) offset += chunk.copy(slab, offset);
      this.stream.write(slab.subarray(0, offset));
      if (this.stream.writableLength !== 0) slab = Buffer.allocUnsafeSlow(COPY_COALESCE_LIMIT);
    } else if (bytes <= COPY_COALESCE_LIMIT || bytes < pending.length * LARGE_CHUNK_BYTES) {
      this.stream.write(Buffer.concat(pending, bytes));
    } else {
      // Large payloads are often shared by many subscribers: hand them over without a copy (one writev).
      this.stream.cork();
      for (const chunk of pending) this.stream.write(chunk);
      this.stream.uncork();
    }
    if (this.writeBlockedSince === 0 && this.stream.writableNeedDrain) this.writeBlockedSince = Date.now();
    this.reportOutput();
  }

  /**
   * Sends what is queued (and a v5 DISCONNECT with the reason when given), then ends the socket
   * gracefully: the session is detached at once, the socket goes when the client closes its side
   * or the broker's sweep gives up on it. Destroying at once could lose the DISCONNECT (a reset
   * discards what the client has not read yet).
   */
  close(reasonCode?: number, reasonString?: string): void {
    if (this.closing) return;
    if (reasonCode !== undefined && this.protocolVersion === 5 && this.connected) {
      if (reasonString) this.send({ cmd: 'disconnect', reasonCode, properties: { reasonString } });
      else this.write(encodeDisconnect(reasonCode));
    }
    this.flush();
    this.flags |= CLOSING;
    this.closingSince = Date.now();
    this.dropInput();
    // Keep reading (and discarding) so unread input does not turn our close into a reset.
    this.updateFlow();
    this.stream.end();
    this.notifyClosed();
  }

  /**
   * The client said DISCONNECT: what is queued goes, then the socket is ended (it goes when the client
   * closes its side, or when the sweep gives up on it). Not destroyed: a destroy discards the output the
   * socket still holds, and closing a socket with unread input (bytes the client sent after DISCONNECT)
   * makes the kernel send a reset that discards what it had not sent yet; either cut the stream inside
   * a packet (fuzz seed 7, cases 26711 and 15584: a 39 KB retained PUBLISH).
   */
  closeNow(): void {
    this.close();
  }

  /**
   * Drops the socket now. Output it still holds is lost, and may end inside a packet: a plain TCP socket
   * is then reset, so the client sees an aborted connection (ECONNRESET), never a stream that ends
   * cleanly after half a packet. Graceful ends go through close().
   */
  destroy(): void {
    this.flags |= CLOSING;
    if (!this.stream.destroyed) {
      if (this.plainTcp && this.stream.writableLength > 0) (this.stream as net.Socket).resetAndDestroy();
      else this.stream.destroy();
    }
    this.dropInput();
    this.pending = NOTHING_PENDING;
    this.pendingBytes = 0;
    if (this.accountedOutput !== 0) {
      this.host.accountOutput(this.accountedOutput, 0);
      this.accountedOutput = 0;
    }
    try {
      this.notifyClosed();
    } finally {
      if ((this.flags & GONE_NOTIFIED) === 0) {
        this.flags |= GONE_NOTIFIED;
        this.host.onSocketGone(this);
      }
    }
  }

  private notifyClosed(): void {
    if ((this.flags & CLOSE_NOTIFIED) !== 0) return;
    this.flags |= CLOSE_NOTIFIED;
    this.host.onClose(this);
  }
}

/**
 * Reason strings quote what the client sent (a topic, an authentication method) and may not exceed a
 * UTF-8 string's 65,535 bytes: mqtt-packet encodes a longer one as a truncated packet whose header
 * announces bytes that never come. A few hundred characters say why; the log has the rest.
 */
const MAX_REASON_STRING = 256;

function shortened(text: string): string {
  let end = MAX_REASON_STRING - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // not half a surrogate pair
  return `${text.slice(0, end)}…`;
}

/**
 * "host:port" of a socket's peer, for log lines and hooks. Joined, not concatenated: a concatenation of 13
 * characters or more is a rope of three strings in V8 (~90 bytes every connection holds), a join one string.
 */
export function peerAddress(socket: net.Socket): string {
  return [socket.remoteAddress, socket.remotePort].join(':');
}

function resumeAfterTurn(connection: Connection): void {
  connection.continueReading();
}
