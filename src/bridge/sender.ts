// Drains the outbox to the remote: QoS 1, FIFO, bounded in-flight window, rows deleted only after PUBACK.
// MQTT.js keeps the connection (TLS, WebSocket, CONNACK, keepalive, subscriptions); the outbox's PUBLISH packets are
// encoded here and written to its stream, one write per batch. Their PUBACKs are taken from the received bytes before
// MQTT.js parses them (puback-filter.ts); any that reach MQTT.js (with properties) come through 'packetreceive'.
// Packet ids are split: SENDER_PACKET_IDS are ours, the rest MQTT.js's (see connection.ts), so no PUBACK is mistaken.
import mqttPacket from 'mqtt-packet';
import type { IClientPublishOptions, MqttClient, Packet } from 'mqtt';
import type { Logger } from '../log.js';
import type { Outbox, OutboxRow } from './outbox.js';
import { describeError } from './outbox.js';
import { permanentPubackCodes, SENDER_PACKET_IDS } from './connection.js';
import { PublishBatch } from './publish-batch.js';
import type { HoldStage, SpilledMessage } from './hold.js';
import { SPILL_ID_BASE, type SpillLog, type SpillRow } from './spill-log.js';

/** How long spill records are not taken after a failed move to bridge_dead. */
const DEAD_RETRY_MS = 1000;
import { publishPacketSize } from '../broker/packet-writer.js';

export interface SenderOptions {
  /** Configured maximum of unacknowledged messages. */
  window: number;
  /** Rows read from SQLite at a time. */
  pageSize?: number;
  /** A PUBACK missing this long means a stuck remote: the connection is dropped and the window resent. */
  ackTimeoutMs?: number;
  messagesPerSecond?: number;
  protocolVersion: 4 | 5;
  /** Payload bytes held for unacknowledged messages; past it no more are sent (at least one always is). */
  maxInflightBytes?: number;
}

/** What the sender learned about the remote from its CONNACK. */
export interface RemoteLimits {
  receiveMaximum?: number;
  maximumPacketSize?: number;
}

interface InFlight {
  row: OutboxRow;
  packetId: number;
  sentAt: number;
}

export interface SenderCounters {
  sent: number;
  acked: number;
  resent: number;
}

/** A batch of acknowledged rows smaller than half the window is deleted this long after its first PUBACK. */
const ACK_FLUSH_DELAY_MS = 20;

/**
 * One Sender per bridge; it is attached to a fresh MQTT.js client after each CONNACK and detached on close.
 * Two limits: unacknowledged messages ≤ the remote window (configured window, lowered to the remote's Receive Maximum),
 * and unacknowledged + acknowledged-but-not-yet-deleted rows ≤ the configured window, so after a crash at most
 * `window` messages are sent twice. Deletions are committed in batches of half the window: each commit is an fsync.
 */
export class Sender {
  private client: MqttClient | undefined;
  private packetListener: ((packet: Packet) => void) | undefined;
  private generation = 0;
  private remoteWindow = 1;
  private readonly flushBatch: number;
  private maxPacket: number | undefined;
  /** Unacknowledged rows by row id (insertion order = send order). */
  private readonly inflight = new Map<number, InFlight>();
  private inflightBytes = 0;
  private readonly maxInflightBytes: number;
  /** The same entries by packet id. */
  private byPacketId: (InFlight | undefined)[] = [];
  private nextPacketId = 1;
  /** UTF-8 encoded remote topics; a handful of distinct topics repeat over millions of rows. */
  private topicBytes = new Map<string, Buffer>();
  private ackTimer: NodeJS.Timeout | undefined;
  private acked: number[] = [];
  /**
   * Spill log records acknowledged since the last flush: nothing to delete, but they count against the window like
   * `acked` until then, so the window refills in bursts (one socket write per half window), as with outbox rows.
   */
  private settledAcks = 0;
  /** Sum of the acknowledged rows' sizes (as the outbox counts them). */
  private ackedBytes = 0;
  private page: OutboxRow[] = [];
  private pageIndex = 0;
  private cursor = 0;
  private exhausted = false;
  /** Ids that were in flight when the last connection dropped: resent with DUP. */
  private sentBefore = new Set<number>();
  /** The same for records of the spill log. */
  private spillSentBefore = new Set<number>();
  private spill: SpillLog | undefined;
  /** After a failed move of a spill record to bridge_dead: no spill record is taken before this time. */
  private spillPausedUntil = 0;
  private spillRetryTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private ackFlushTimer: NodeJS.Timeout | undefined;
  private ackFlushRetrying = false;
  private rateTimer: NodeJS.Timeout | undefined;
  private tokens = 0;
  private lastRefill = Date.now();
  private reserved = 0;
  private readonly pageSize: number;
  private hold: HoldStage | undefined;
  readonly counters: SenderCounters = { sent: 0, acked: 0, resent: 0 };

  constructor(
    private readonly outbox: Outbox,
    private readonly options: SenderOptions,
    private readonly logger: Logger,
    /** Called when the remote's answers say the connection should be dropped and retried. */
    private readonly onFatal: (reason: string) => void,
  ) {
    this.pageSize = options.pageSize ?? 512;
    this.flushBatch = Math.max(1, options.window >> 1);
    this.maxInflightBytes = options.maxInflightBytes ?? 8 * 1024 * 1024;
  }

  /** Messages held in memory (negative ids) are sent after the outbox's rows, acknowledged without a write. */
  useHoldStage(hold: HoldStage): void {
    this.hold = hold;
  }

  /**
   * Held messages written to the spill log (ids from SPILL_ID_BASE) are sent merged with the outbox's rows: each
   * spilled batch after the rows up to its watermark, where the outbox would have put its rows.
   */
  useSpillLog(spill: SpillLog): void {
    this.spill = spill;
  }

  attach(client: MqttClient, limits: RemoteLimits): void {
    this.generation += 1;
    this.client = client;
    const generation = this.generation;
    this.packetListener = (packet) => {
      if (packet.cmd === 'puback' && generation === this.generation) this.onPuback(packet.messageId, packet.reasonCode);
    };
    client.on('packetreceive', this.packetListener);
    this.remoteWindow = Math.max(1, Math.min(this.options.window, limits.receiveMaximum ?? 65535, SENDER_PACKET_IDS));
    this.maxPacket = limits.maximumPacketSize;
    this.rewind();
    this.schedulePump();
    const timeout = this.options.ackTimeoutMs ?? 60_000;
    clearInterval(this.ackTimer);
    this.ackTimer = setInterval(() => this.checkAckTimeout(timeout), Math.min(5000, timeout));
    this.ackTimer.unref();
  }

  private checkAckTimeout(timeoutMs: number): void {
    const oldest = this.inflight.values().next();
    if (oldest.done === true || Date.now() - oldest.value.sentAt < timeoutMs) return;
    this.onFatal(`no PUBACK from the remote for ${Math.round(timeoutMs / 1000)} s with ${this.inflight.size} messages in flight`);
  }

  detach(): void {
    this.generation += 1;
    if (this.packetListener !== undefined) this.client?.removeListener('packetreceive', this.packetListener);
    this.packetListener = undefined;
    this.client = undefined;
    clearInterval(this.ackTimer);
    this.ackTimer = undefined;
    for (const id of this.inflight.keys()) {
      if (id >= SPILL_ID_BASE) this.spillSentBefore.add(id);
      else if (id > 0) this.sentBefore.add(id);
    }
    this.inflight.clear();
    this.hold?.disconnected();
    this.inflightBytes = 0;
    this.byPacketId = [];
    this.flushAcks();
    this.reserved = 0;
    if (this.rateTimer !== undefined) clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
  }

  /** Takes a window slot for a message sent outside the outbox (the birth message); give it back with `release`. */
  reserve(): void {
    this.reserved += 1;
  }

  release(): void {
    if (this.reserved > 0) this.reserved -= 1;
    this.schedulePump();
  }

  /** Messages sent and not yet acknowledged by the remote. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  get window(): number {
    return this.remoteWindow;
  }

  /** New rows were appended: send them when the current turn (and the broker's transaction) is over. */
  notify(): void {
    this.exhausted = false;
    this.schedulePump();
  }

  /** Deletes acknowledged rows now (on stop). */
  flush(): void {
    this.flushAcks();
  }

  private rewind(): void {
    this.flushAcks();
    this.page = [];
    this.pageIndex = 0;
    this.cursor = 0;
    this.exhausted = false;
    this.spill?.rewind();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.client === undefined) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const client = this.client;
    if (client === undefined || !client.connected) return;
    const stream = client.stream;
    if (stream === undefined || stream.destroyed || !stream.writable) return;
    // Rows appended inside a transaction still open are not read: a rollback could reuse their ids.
    if (this.outbox.db.inTransaction) {
      this.schedulePump();
      return;
    }
    const packets = new PublishBatch(this.options.protocolVersion === 5);
    try {
      while (
        this.inflight.size + this.reserved < this.remoteWindow &&
        this.inflight.size + this.acked.length + this.settledAcks + this.reserved < this.options.window &&
        (this.inflight.size === 0 || this.inflightBytes < this.maxInflightBytes)
      ) {
        if (!this.takeToken()) return;
        // The outbox's rows are older than anything held in memory: they go first.
        const row = this.nextRow() ?? this.hold?.nextUnsent();
        if (row === undefined) return;
        if (row.expiresAt !== null && row.expiresAt <= Date.now()) {
          if (row.id < 0) this.hold!.acknowledge(row.id);
          else if (row.id >= SPILL_ID_BASE) this.spill!.acknowledge(row.id, row.size);
          else this.outbox.remove([row.id]);
          this.outbox.countExpired(1);
          continue;
        }
        if (this.maxPacket !== undefined && this.packetSize(row) > this.maxPacket) {
          const reason = `larger than the remote's maximum packet size ${this.maxPacket}`;
          if (row.id >= SPILL_ID_BASE) {
            this.deadSpilled(row as SpillRow, reason);
            continue;
          }
          this.outbox.moveToDead(row, reason);
          this.settleElsewhere(row);
          continue;
        }
        this.encode(row, packets);
      }
    } catch (err) {
      this.outbox.markSuspect();
      this.logger.error({ bridge: this.outbox.bridgeName, err: describeError(err) }, 'bridge: cannot read the outbox; retrying in 1 s');
      setTimeout(() => this.schedulePump(), 1000).unref();
    } finally {
      // Everything registered as in flight goes out, in order, in one write.
      if (packets.length > 0) stream.write(packets.toBuffer());
    }
  }

  /** The next outbox row or spill log record, in the order the outbox alone would have had them. */
  private nextRow(): OutboxRow | undefined {
    const row = this.peekOutbox();
    const spilled = this.spillPausedUntil > Date.now() ? undefined : this.spill?.peek();
    if (spilled === undefined) this.scheduleSpillRetry();
    if (spilled !== undefined && (row === undefined || row.id > spilled.watermark)) return this.spill!.take();
    if (row === undefined) return undefined;
    this.pageIndex++;
    this.cursor = row.id;
    return row;
  }

  /** The spill log waits to read a segment again (an I/O error): pump again then, as nothing else may. */
  private scheduleSpillRetry(): void {
    const at = this.spill?.readRetryAt();
    if (at === undefined || this.spillRetryTimer !== undefined) return;
    this.spillRetryTimer = setTimeout(() => {
      this.spillRetryTimer = undefined;
      this.schedulePump();
    }, Math.max(0, at - Date.now()) + 10);
    this.spillRetryTimer.unref();
  }

  private peekOutbox(): OutboxRow | undefined {
    if (this.pageIndex >= this.page.length) {
      if (this.exhausted) return undefined;
      this.page = this.outbox.readAfter(this.cursor, this.pageSize);
      this.pageIndex = 0;
      if (this.page.length === 0) {
        this.exhausted = true;
        return undefined;
      }
    }
    return this.page[this.pageIndex];
  }

  /**
   * A spill log record for bridge_dead. When the move fails (SQLITE_FULL, I/O error) the record is not left taken and
   * unsettled (that pinned the log's oldest end: nothing behind it was trimmed or deleted until a reconnect, memory and
   * disk grew with the whole drained backlog): it is written again at the log's end and the original acknowledged, so
   * it stays on disk, the log keeps advancing, and the move is tried again when the copy comes up. Spill records are
   * not taken for DEAD_RETRY_MS after a failure (no busy loop while the cause lasts). If even the copy cannot be
   * written, the record stays taken and is sent again after the next reconnect, as before.
   */
  private deadSpilled(row: SpillRow, reason: string): void {
    try {
      this.outbox.moveToDead(row, reason);
      this.spill!.acknowledge(row.id, row.size);
      return;
    } catch (deadErr) {
      this.outbox.markSuspect();
      this.spillPausedUntil = Date.now() + DEAD_RETRY_MS;
      setTimeout(() => this.schedulePump(), DEAD_RETRY_MS).unref();
      let requeued: number | undefined;
      let requeueErr: unknown;
      try {
        requeued = this.spill!.requeue(row);
      } catch (err) {
        requeueErr = err;
      }
      this.logger.error(
        {
          bridge: this.outbox.bridgeName, err: describeError(deadErr), reason,
          ...(requeued === undefined ? { requeueErr: describeError(requeueErr) } : {}),
        },
        requeued === undefined
          ? 'bridge: cannot move a spilled message to bridge_dead nor write it again; it is sent again after the next reconnect'
          : 'bridge: cannot move a spilled message to bridge_dead; written again at the end of the spill log, tried again then',
      );
    }
  }

  /** A held or spilled message that went to bridge_dead (or cannot be sent) is done where it was kept. */
  private settleElsewhere(row: OutboxRow): void {
    if (row.id < 0) this.hold!.acknowledge(row.id);
    else if (row.id >= SPILL_ID_BASE) this.spill!.acknowledge(row.id, row.size);
  }

  /**
   * Held messages were written to the spill log or the outbox (not sent within the hold time, memory full,
   * disconnected, stopping): they are read from there like any row. None is in flight (the hold stage writes only unsent messages while
   * connected); one sent on an earlier connection carries DUP.
   */
  onSpilled(spilled: readonly SpilledMessage[]): void {
    for (const { message, rowId } of spilled) if (message.sent) (rowId >= SPILL_ID_BASE ? this.spillSentBefore : this.sentBefore).add(rowId);
    this.notify();
  }

  /** Registers the row as in flight under a free packet id and adds its PUBLISH packet to the batch. */
  private encode(row: OutboxRow, batch: PublishBatch): void {
    let dup: boolean;
    if (row.id < 0) {
      const held = row as OutboxRow & { sent: boolean };
      dup = held.sent;
      held.sent = true;
    } else {
      const remembered = row.id >= SPILL_ID_BASE ? this.spillSentBefore : this.sentBefore;
      dup = remembered.delete(row.id);
      // Each store is sent in id order: smaller remembered ids of the same store were dropped meanwhile.
      if (remembered.size > 0) for (const id of remembered) if (id < row.id) remembered.delete(id);
    }
    if (dup) this.counters.resent += 1;
    const packetId = this.allocatePacketId();
    const entry: InFlight = { row, packetId, sentAt: Date.now() };
    this.inflight.set(row.id, entry);
    this.inflightBytes += row.payload.length;
    this.byPacketId[packetId] = entry;
    this.counters.sent += 1;
    const props = this.publishProperties(row);
    if (props === undefined) {
      batch.addPublish(this.encodedTopic(row.topic), row.payload, row.retain, dup, packetId);
      return;
    }
    batch.addEncoded(
      mqttPacket.generate(
        { cmd: 'publish', topic: row.topic, payload: row.payload, qos: 1, messageId: packetId, dup, retain: row.retain, properties: props },
        { protocolVersion: 5 },
      ),
    );
  }

  private encodedTopic(topic: string): Buffer {
    let bytes = this.topicBytes.get(topic);
    if (bytes === undefined) {
      if (this.topicBytes.size >= 4096) this.topicBytes = new Map();
      bytes = Buffer.from(topic);
      this.topicBytes.set(topic, bytes);
    }
    return bytes;
  }

  /** The window is at most SENDER_PACKET_IDS, so a free id exists whenever a row may be sent. */
  private allocatePacketId(): number {
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id >= SENDER_PACKET_IDS ? 1 : id + 1;
      if (this.byPacketId[id] === undefined) return id;
    }
  }

  /**
   * A PUBACK taken from the received bytes before MQTT.js saw them (see puback-filter.ts). Returns false when the
   * packet id is not one of ours in flight on the attached connection: then the frame goes on to MQTT.js.
   */
  takePuback(client: MqttClient, packetId: number, reasonCode: number): boolean {
    if (client !== this.client || this.byPacketId[packetId] === undefined) return false;
    this.onPuback(packetId, reasonCode);
    return true;
  }

  private onPuback(packetId: number | undefined, reasonCode: number | undefined): void {
    if (packetId === undefined) return;
    const entry = this.byPacketId[packetId];
    // Not ours: an acknowledgement of MQTT.js's own publish (birth, QoS 0 has none), or a stray one.
    if (entry === undefined) return;
    const row = entry.row;
    this.byPacketId[packetId] = undefined;
    this.inflight.delete(row.id);
    this.inflightBytes -= row.payload.length;
    if (reasonCode === undefined || reasonCode < 0x80) {
      this.counters.acked += 1;
      if (row.id < 0) {
        // Held in memory and never written: nothing to delete.
        this.hold!.acknowledge(row.id);
        this.schedulePump();
        return;
      }
      if (row.id >= SPILL_ID_BASE) {
        // In the spill log: its segment goes when all of its records are acknowledged.
        this.spill!.acknowledge(row.id, row.size);
        this.settledAcks += 1;
        this.scheduleAckFlush();
        this.schedulePump();
        return;
      }
      this.acked.push(row.id);
      this.ackedBytes += row.size;
      this.scheduleAckFlush();
      this.schedulePump();
      return;
    }
    const text = `PUBACK reason code 0x${reasonCode.toString(16)}`;
    if (permanentPubackCodes.has(reasonCode)) {
      if (row.id >= SPILL_ID_BASE) {
        this.deadSpilled(row as SpillRow, `remote refused it (${text})`);
        this.schedulePump();
        return;
      }
      try {
        this.outbox.moveToDead(row, `remote refused it (${text})`);
        this.settleElsewhere(row);
      } catch (deadErr) {
        // Left in the outbox: tried again after the next reconnect.
        this.outbox.markSuspect();
        this.logger.error({ bridge: this.outbox.bridgeName, err: describeError(deadErr) }, 'bridge: cannot move a refused message to bridge_dead');
      }
      this.schedulePump();
      return;
    }
    // A transient refusal (quota exceeded, unspecified error): put back in flight, resent with DUP after reconnecting.
    this.inflight.set(row.id, entry);
    this.inflightBytes += row.payload.length;
    this.byPacketId[packetId] = entry;
    this.onFatal(`remote did not accept a message (${text})`);
  }

  private publishProperties(row: OutboxRow): IClientPublishOptions['properties'] {
    if (this.options.protocolVersion !== 5) return undefined;
    const p = row.properties;
    const remaining = row.expiresAt === null ? undefined : Math.max(1, Math.ceil((row.expiresAt - Date.now()) / 1000));
    if (p === undefined && remaining === undefined) return undefined;
    const out: NonNullable<IClientPublishOptions['properties']> = {};
    if (p?.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
    if (p?.contentType !== undefined) out.contentType = p.contentType;
    if (p?.responseTopic !== undefined) out.responseTopic = p.responseTopic;
    if (p?.correlationData !== undefined) out.correlationData = p.correlationData;
    if (p?.userProperties !== undefined) out.userProperties = p.userProperties;
    if (remaining !== undefined) out.messageExpiryInterval = remaining;
    return out;
  }

  private packetSize(row: OutboxRow): number {
    const estimate = publishPacketSize(Buffer.byteLength(row.topic), row.payload.length, 1, this.options.protocolVersion === 5);
    const props = this.publishProperties(row);
    if (props === undefined) return estimate;
    return mqttPacket.generate(
      { cmd: 'publish', topic: row.topic, payload: row.payload, qos: 1, messageId: 1, dup: false, retain: row.retain, properties: props },
      { protocolVersion: 5 },
    ).length;
  }

  private takeToken(): boolean {
    const rate = this.options.messagesPerSecond;
    if (rate === undefined) return true;
    const now = Date.now();
    this.tokens = Math.min(Math.max(1, rate), this.tokens + ((now - this.lastRefill) * rate) / 1000);
    this.lastRefill = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (this.rateTimer === undefined) {
      this.rateTimer = setTimeout(() => {
        this.rateTimer = undefined;
        this.schedulePump();
      }, Math.ceil(((1 - this.tokens) * 1000) / rate));
    }
    return false;
  }

  private scheduleAckFlush(): void {
    if (this.ackFlushRetrying) return;
    if (this.acked.length + this.settledAcks >= this.flushBatch) {
      this.flushAcks();
      return;
    }
    if (this.ackFlushTimer !== undefined) return;
    this.ackFlushTimer = setTimeout(() => {
      this.ackFlushTimer = undefined;
      this.flushAcks();
      this.schedulePump();
    }, ACK_FLUSH_DELAY_MS);
    this.ackFlushTimer.unref();
  }

  private flushAcks(): void {
    if (this.ackFlushTimer !== undefined) clearTimeout(this.ackFlushTimer);
    this.ackFlushTimer = undefined;
    this.settledAcks = 0;
    if (this.acked.length === 0) return;
    const ids = this.acked;
    try {
      this.outbox.removeAcknowledged(ids, this.ackedBytes);
      this.acked = [];
      this.ackedBytes = 0;
    } catch (err) {
      if (!this.outbox.db.open) {
        // The broker closed the database under us (shutdown): these rows are resent after the restart.
        this.acked = [];
        this.ackedBytes = 0;
        return;
      }
      // Keep them: they will be deleted on the next flush, or resent (a duplicate) after a restart.
      this.outbox.markSuspect();
      this.logger.error({ bridge: this.outbox.bridgeName, err: describeError(err), rows: ids.length }, 'bridge: cannot delete acknowledged rows from the outbox');
      if (!this.ackFlushRetrying) {
        this.ackFlushRetrying = true;
        setTimeout(() => {
          this.ackFlushRetrying = false;
          this.flushAcks();
          this.schedulePump();
        }, 1000).unref();
      }
    }
  }
}
