// One upstream bridge: local `out` messages → SQLite outbox → remote (QoS 1), remote `in` messages → local broker.
import type { MqttClient, IConnackPacket } from 'mqtt';
import { connectRemote } from './remote-client.js';
import type { Database } from 'better-sqlite3';
import type { LocalClient, Message } from '../broker/types.js';
import type { Logger } from '../log.js';
import { bridgeConfigSchema, formatConfigIssues, type BridgeConfig, type BridgeConfigInput, type BridgeRule } from './config.js';
import { Outbox, describeError } from './outbox.js';
import { DeadLetters, type DeadChoice, type DeadLetter } from './dead-letters.js';
import { Sender } from './sender.js';
import { HoldStage, type HeldMessage } from './hold.js';
import { SpillLog } from './spill-log.js';
import type { SpillMessage } from './spill-codec.js';
import path from 'node:path';
import { PubackFramer, filterPubacks } from './puback-filter.js';
import { Inbound } from './inbound.js';
import { StatusPublisher, type BridgeState } from './status.js';
import { Backoff } from './backoff.js';
import { connectOptions, describeConnectError, transportOf } from './connection.js';
import { localFilter, toRemoteTopic, topicMatches } from './topics.js';

export { bridgeConfigSchema, bridgeListSchema, parseBridgeConfig, formatConfigIssues } from './config.js';
export type { BridgeConfig, BridgeConfigInput, BridgeRule } from './config.js';
export type { BridgeState } from './status.js';
export type { DeadChoice, DeadLetter } from './dead-letters.js';

/** What the bridge needs from the broker (the Broker class provides it). */
export interface BridgeHost {
  readonly db: Database;
  createLocalClient(id: string): LocalClient;
  /**
   * The broker's data directory: held messages the remote did not acknowledge in time go to a spill log there
   * (spill-log.ts). Without one (an in-memory database) they go to the outbox table.
   */
  readonly dataDir?: string | null;
  /** fdatasync each spill batch unless 'off'. */
  readonly durability?: 'full' | 'normal' | 'off';
}

export interface BridgeHandle {
  /**
   * Says goodbye to the remote (retained "offline" on the status topic, DISCONNECT) for at most `timeoutMs`,
   * then deletes the acknowledged rows and closes the outbox. Unsent rows stay for the next start.
   */
  stop(timeoutMs?: number): Promise<void>;
  state(): BridgeState;
  /** The dead letters (bridge_dead); undefined while the outbox cannot be opened. */
  deadLetters(): DeadLetters | undefined;
}

/** A connection that lasted this long resets the reconnect backoff; shorter ones keep growing it (no storms). */
const STABLE_CONNECTION_MS = 10_000;
const OUTBOX_RETRY_MS = 5_000;
const ERROR_LOG_INTERVAL_MS = 5_000;
const REPEAT_WARN_INTERVAL_MS = 5 * 60_000;

/**
 * Starts a bridge. Throws only for an invalid configuration; a refusing remote or an unusable outbox
 * is logged and retried while the broker keeps running.
 */
export async function startBridge(broker: BridgeHost, config: BridgeConfig | BridgeConfigInput, logger: Logger): Promise<BridgeHandle> {
  const parsed = bridgeConfigSchema.safeParse(config, { reportInput: true });
  if (!parsed.success) throw new Error(formatConfigIssues(parsed.error));
  const bridge = new Bridge(broker, parsed.data, logger.child({ bridge: parsed.data.name }));
  bridge.start();
  return { stop: (timeoutMs) => bridge.stop(timeoutMs), state: () => bridge.state(), deadLetters: () => bridge.deadLetters() };
}

class Bridge {
  private readonly outbox: Outbox;
  private readonly sender: Sender;
  private readonly hold: HoldStage | undefined;
  private spillLog: SpillLog | undefined;
  private spillErrors = 0;
  private lastSpillErrorLog = 0;
  private spillFallbacks = 0;
  private lastSpillFallbackLog = 0;
  private readonly inbound: Inbound;
  private readonly status: StatusPublisher;
  private readonly local: LocalClient;
  private readonly backoff: Backoff;
  private readonly outRules: BridgeRule[];
  private client: MqttClient | undefined;
  private connected = false;
  private connectedAt = 0;
  private connects = 0;
  private stopped = false;
  private outboxOpen = false;
  private dead: DeadLetters | undefined;
  private lastError: string | null = null;
  private outboxError: string | null = null;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private outboxRetryTimer: NodeJS.Timeout | undefined;
  private enqueueErrors = 0;
  private lastEnqueueErrorLog = 0;
  private qos0Skipped = 0;
  private lastFailureWarnAt = 0;

  constructor(
    private readonly host: BridgeHost,
    private readonly config: BridgeConfig,
    private readonly logger: Logger,
  ) {
    this.outbox = new Outbox(host.db, config.name, config.outbox, logger);
    this.local = host.createLocalClient(`$bridge/${config.name}`);
    this.sender = new Sender(
      this.outbox,
      {
        window: config.inflightWindow,
        messagesPerSecond: config.rateLimit?.messagesPerSecond,
        protocolVersion: config.protocolVersion,
        ackTimeoutMs: config.ackTimeoutSeconds * 1000,
      },
      logger,
      (reason) => this.dropConnection(reason),
    );
    if (typeof host.dataDir === 'string') {
      // Also with hold.ms 0: what an earlier run with the hold on left there is still sent.
      this.spillLog = new SpillLog({ dir: path.join(host.dataDir, `spill-${config.name}`), sync: host.durability !== 'off', logger });
    }
    if (config.hold.ms > 0) {
      this.hold = new HoldStage(config.hold, {
        connected: () => this.connected,
        spill: (messages) => this.spill(messages),
        spilled: (messages) => this.sender.onSpilled(messages),
        dropped: (n) => this.outbox.countDropped(n),
        onSpillError: (err) => this.onSpillError(err),
      });
      this.sender.useHoldStage(this.hold);
    }
    this.inbound = new Inbound(config, this.local, logger);
    this.status = new StatusPublisher(config.name, this.local, logger);
    this.backoff = new Backoff(config.reconnect.minMs, config.reconnect.maxMs);
    this.outRules = config.rules.filter((r) => r.direction === 'out' || r.direction === 'both');
  }

  start(): void {
    this.status.publishConnected(false);
    this.openOutbox();
    this.connect();
    this.statsTimer = setInterval(() => this.tick(), this.config.statsIntervalSeconds * 1000);
    this.statsTimer.unref();
  }

  async stop(timeoutMs = 4000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const deadline = Date.now() + timeoutMs;
    const left = (share = 1) => Math.max(0, Math.floor((deadline - Date.now()) * share));
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.outboxRetryTimer);
    clearInterval(this.statsTimer);
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      if (this.connected && this.config.statusTopic !== undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(2000, left(0.5)));
          client.publish(this.config.statusTopic!, 'offline', { qos: 1, retain: true }, () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      const wasConnected = this.connected;
      this.sender.detach();
      // What the remote did not acknowledge is written now, so a graceful stop loses nothing held.
      this.hold?.close();
      // A clean DISCONNECT (no last will) when we can; never wait long for a remote that does not answer.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => client.end(true, {}, () => resolve()), Math.min(2000, left()));
        client.end(!wasConnected, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      client.removeAllListeners();
      client.on('error', () => undefined);
    }
    this.hold?.close();
    this.spillLog?.close();
    try {
      this.sender.flush();
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'bridge: acknowledged rows not deleted at stop; they will be sent again (stop bridges before closing the broker)');
    }
    this.connected = false;
    this.status.publishConnected(false);
    this.local.close();
    this.outbox.close();
    this.logger.info('bridge stopped');
  }

  state(): BridgeState {
    let depth = this.spillLog?.records ?? 0;
    let bytes = this.spillLog?.bytes ?? 0;
    let oldest: number | null = null;
    let dropped = 0;
    let dead = 0;
    if (this.outboxOpen) {
      try {
        const s = this.outbox.stats();
        depth += s.rows;
        bytes += s.bytes;
        oldest = s.oldestCreatedAt;
        const spilled = this.spillLog?.oldestInfo()?.createdAt;
        if (spilled !== undefined && (oldest === null || spilled < oldest)) oldest = spilled;
        dropped = s.dropped;
        dead = s.dead;
      } catch (err) {
        this.outboxError = `outbox unreadable: ${describeError(err)}`;
      }
    }
    return {
      name: this.config.name,
      remote: this.config.url,
      connected: this.connected,
      outboxDepth: depth + (this.hold?.size ?? 0),
      outboxBytes: bytes + (this.hold?.bytes ?? 0),
      held: this.hold?.size ?? 0,
      spilled: this.spillLog?.records ?? 0,
      spillWrites: spillWrites(this.spillLog),
      oldestAgeSeconds: oldest === null ? null : Math.max(0, Math.round((Date.now() - oldest) / 1000)),
      inflight: this.sender.inflightCount,
      sent: this.sender.counters.sent,
      acked: this.sender.counters.acked,
      resent: this.sender.counters.resent,
      dropped: dropped + this.qos0Skipped,
      dead,
      received: this.inbound.received,
      connects: this.connects,
      lastError: this.lastError,
      outboxError: this.outboxError,
    };
  }

  deadLetters(): DeadLetters | undefined {
    if (!this.outboxOpen || this.stopped) return undefined;
    this.dead ??= new DeadLetters(this.host.db, this.config.name, this.outbox, () => this.sender.notify());
    return this.dead;
  }

  // --- outbox and local subscriptions ---

  private openOutbox(): void {
    try {
      this.outbox.open();
    } catch (err) {
      this.outboxError = describeError(err);
      this.logger.error({ err: this.outboxError, retryInMs: OUTBOX_RETRY_MS }, 'bridge: outbox unusable; outbound messages are not taken until it opens');
      this.outboxRetryTimer = setTimeout(() => this.openOutbox(), OUTBOX_RETRY_MS);
      this.outboxRetryTimer.unref();
      return;
    }
    if (this.spillLog !== undefined) {
      try {
        this.spillLog.open();
        this.outbox.attachCompanion(this.spillLog);
        this.sender.useSpillLog(this.spillLog);
      } catch (err) {
        this.logger.error({ err: describeError(err) }, 'bridge: spill log unreadable; held messages are written to the outbox table instead');
        this.spillLog = undefined;
      }
    }
    this.outboxOpen = true;
    this.outboxError = null;
    const s = this.outbox.stats();
    if (s.rows > 0) this.logger.info({ rows: s.rows, bytes: s.bytes }, 'bridge: outbox backlog found, will drain it');
    const spilled = this.spillLog?.stats();
    if (spilled !== undefined && spilled.records > 0) {
      this.logger.info({ records: spilled.records, bytes: spilled.bytes, segments: spilled.segments }, 'bridge: spill log backlog found, will drain it');
    }
    for (const rule of this.outRules) {
      this.local.subscribe(localFilter(rule), (m) => this.onLocalMessage(rule, m), {
        durable: true, noLocal: true, qos: 1,
        onHoldable: this.hold === undefined ? undefined : (m) => this.onHoldableMessage(rule, m),
      });
    }
    this.sender.notify();
  }

  /**
   * The remote topic of a message this rule must store, or undefined when there is nothing to store:
   * another rule owns it, it maps to no remote topic, or it is QoS 0 passed straight through (or skipped).
   */
  private remoteTopicToStore(rule: BridgeRule, message: Message): string | undefined {
    // Overlapping out rules would queue a message twice: the first matching rule owns it.
    const owner = this.outRules.find((r) => topicMatches(localFilter(r), message.topic));
    if (owner !== rule) return undefined;
    const remoteTopic = toRemoteTopic(rule, message.topic);
    if (remoteTopic === undefined) return undefined;
    if (message.qos === 0 && !rule.queueQos0) {
      if (this.connected && this.client !== undefined) this.client.publish(remoteTopic, message.payload, { qos: 0, retain: message.retain });
      else this.qos0Skipped += 1;
      return undefined;
    }
    return remoteTopic;
  }

  /** Runs inside the broker's durable transaction: must stay synchronous. */
  private onLocalMessage(rule: BridgeRule, message: Message): void {
    const remoteTopic = this.remoteTopicToStore(rule, message);
    if (remoteTopic === undefined) return;
    try {
      this.outbox.enqueue(remoteTopic, message.payload, message.retain, message.properties, message.expiresAt);
    } catch (err) {
      // Disk full, I/O error, read-only or corrupt database. Rethrown so that the broker's group commit fails
      // and is retried with the publisher's acknowledgement withheld: nothing is lost while the cause lasts.
      this.outbox.markSuspect();
      this.enqueueErrors += 1;
      this.outboxError = `outbox write failed: ${describeError(err)}`;
      const now = Date.now();
      if (now - this.lastEnqueueErrorLog >= ERROR_LOG_INTERVAL_MS) {
        this.lastEnqueueErrorLog = now;
        this.logger.error(
          { err: describeError(err), failures: this.enqueueErrors, topic: message.topic },
          'bridge: cannot append to the outbox (disk full or database unwritable?)',
        );
      }
      throw err;
    }
    if (this.outboxError !== null) this.outboxError = null;
    this.sender.notify();
  }

  /** A message nobody waits for: held in memory until the remote acknowledges it (see hold.ts). */
  private onHoldableMessage(rule: BridgeRule, message: Message): void {
    const remoteTopic = this.remoteTopicToStore(rule, message);
    if (remoteTopic === undefined) return;
    const properties = message.properties !== undefined && Object.keys(message.properties).length > 0 ? message.properties : undefined;
    const size = message.payload.length + Buffer.byteLength(remoteTopic) + (properties === undefined ? 0 : JSON.stringify(properties).length);
    this.hold!.add({
      topic: remoteTopic, payload: message.payload, retain: message.retain, properties,
      expiresAt: message.expiresAt ?? null, createdAt: Date.now(), size,
    });
    this.sender.notify();
  }

  /**
   * Writes held messages to the spill log in one frame (one write, one fdatasync), or without a data directory to the
   * outbox in one transaction; returns their ids (0 where a limit dropped one).
   */
  private spill(messages: HeldMessage[]): number[] {
    // Inside someone else's transaction a rollback could take these rows back after their ids were handed out
    // (and reuse the ids for other rows; the spill log's watermark is such an id): write only outside.
    if (this.host.db.inTransaction) {
      this.logger.warn({ held: messages.length }, 'bridge: hold stage asked to write inside an open transaction; deferred');
      throw new Error('the database is inside another transaction');
    }
    if (this.spillLog !== undefined) {
      try {
        return this.spillToLog(messages);
      } catch (err) {
        // The spill directory cannot be created or written (read-only, not a directory, a full disk): the messages
        // go to the outbox table as without a data directory, not dropped and not only kept in memory.
        this.spillFallbacks += 1;
        const now = Date.now();
        if (now - this.lastSpillFallbackLog >= ERROR_LOG_INTERVAL_MS) {
          this.lastSpillFallbackLog = now;
          this.logger.warn(
            { err: describeError(err), held: messages.length, fallbacks: this.spillFallbacks },
            'bridge: cannot write the spill log; held messages are written to the outbox table instead',
          );
        }
      }
    }
    const ids: number[] = [];
    try {
      this.host.db.transaction(() => {
        for (const m of messages) {
          const kept = this.outbox.enqueue(m.topic, m.payload, m.retain, m.properties, m.expiresAt ?? undefined, m.createdAt);
          ids.push(kept ? this.outbox.lastAppendedId : 0);
        }
      })();
    } catch (err) {
      // Rolled back: the counters the inserts moved are recounted (a read works on a full disk).
      this.outbox.markSuspect();
      try {
        this.outbox.resync();
      } catch {
        // counted again at the next stats tick
      }
      throw err;
    }
    if (this.outboxError !== null) this.outboxError = null;
    return ids;
  }

  private spillToLog(messages: HeldMessage[]): number[] {
    const log = this.spillLog!;
    // The outbox's limits cover both stores (drop-oldest drops the older head, drop-newest these).
    const kept: SpillMessage[] = [];
    const keptAt: number[] = [];
    let pendingBytes = 0;
    messages.forEach((m, i) => {
      if (!this.outbox.admit(m.size, kept.length, pendingBytes)) return;
      kept.push(m);
      keptAt.push(i);
      pendingBytes += m.size;
    });
    const ids = new Array<number>(messages.length).fill(0);
    const written = log.append(kept, this.outbox.lastAppendedId);
    written.forEach((id, j) => (ids[keptAt[j]!] = id));
    if (this.outboxError !== null) this.outboxError = null;
    return ids;
  }

  private onSpillError(err: unknown): void {
    this.spillErrors += 1;
    this.outboxError = `outbox write failed: ${describeError(err)}`;
    const now = Date.now();
    if (now - this.lastSpillErrorLog >= ERROR_LOG_INTERVAL_MS) {
      this.lastSpillErrorLog = now;
      this.logger.error(
        { err: describeError(err), failures: this.spillErrors, held: this.hold?.size },
        'bridge: cannot write held messages (disk full, or the spill log or database unwritable?); they stay in memory and it is tried again',
      );
    }
  }

  private tick(): void {
    if (this.outboxOpen) {
      try {
        this.outbox.expireOld();
        this.expireSpilled();
        if (this.outbox.suspect) this.outbox.resync();
      } catch (err) {
        this.logger.error({ err: describeError(err) }, 'bridge: outbox maintenance failed');
      }
    }
    this.status.publishCounters(this.state());
  }

  /** maxAgeSeconds for the spill log: its oldest records go, a bounded number per tick. */
  private expireSpilled(now = Date.now()): void {
    const log = this.spillLog;
    if (log === undefined) return;
    const cutoff = now - this.config.outbox.maxAgeSeconds * 1000;
    let n = 0;
    for (; n < 100_000; n++) {
      const oldest = log.oldestInfo();
      if (oldest === undefined || oldest.createdAt >= cutoff) break;
      log.dropOldest();
    }
    this.outbox.countDrops('max-age', n);
  }

  // --- remote connection ---

  private connect(): void {
    if (this.stopped) return;
    let options;
    try {
      options = connectOptions(this.config);
    } catch (err) {
      this.noteFailure(describeError(err));
      this.scheduleReconnect();
      return;
    }
    let client: MqttClient;
    try {
      client = connectRemote(this.config.url, options);
    } catch (err) {
      this.noteFailure(describeConnectError(err, this.config.protocolVersion, transportOf(this.config)));
      this.scheduleReconnect();
      return;
    }
    this.client = client;
    // The stream exists now and no byte has arrived yet (that takes an event-loop turn): the framer starts at the first frame.
    if (client.stream !== undefined) {
      const framer = new PubackFramer(this.config.protocolVersion === 5, (id, rc) => this.client === client && this.sender.takePuback(client, id, rc));
      filterPubacks(client.stream, framer, (err) => {
        this.noteFailure(`bridge: cannot handle a PUBACK: ${describeError(err)}`);
        client.stream.destroy();
      });
    }
    this.inbound.install(client);
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('error', (err) => {
      if (this.client !== client) return;
      this.noteFailure(describeConnectError(err, this.config.protocolVersion, transportOf(this.config)));
    });
    client.on('close', () => this.onClose(client));
  }

  private onConnect(client: MqttClient, connack: IConnackPacket): void {
    if (this.client !== client || this.stopped) return;
    this.connected = true;
    this.connectedAt = Date.now();
    this.connects += 1;
    this.lastError = null;
    const props = connack.properties;
    this.logger.info(
      { remote: this.config.url, receiveMaximum: props?.receiveMaximum, maximumPacketSize: props?.maximumPacketSize, sessionPresent: connack.sessionPresent },
      'bridge connected',
    );
    this.status.publishConnected(true);
    if (this.config.statusTopic !== undefined) {
      this.sender.reserve();
      client.publish(this.config.statusTopic, 'online', { qos: 1, retain: true }, () => {
        if (this.client === client) this.sender.release();
      });
    }
    this.sender.attach(client, { receiveMaximum: props?.receiveMaximum, maximumPacketSize: props?.maximumPacketSize });
    void this.inbound.subscribe(client);
  }

  private onClose(client: MqttClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('connect');
    client.end(true);
    const wasConnected = this.connected;
    if (wasConnected) {
      this.connected = false;
      this.sender.detach();
      this.status.publishConnected(false);
      this.logger.warn({ remote: this.config.url, cause: this.lastError ?? 'connection closed' }, 'bridge disconnected');
      if (Date.now() - this.connectedAt >= STABLE_CONNECTION_MS) this.backoff.reset();
    }
    this.scheduleReconnect();
  }

  private dropConnection(reason: string): void {
    this.noteFailure(reason);
    this.client?.stream?.destroy();
  }

  private noteFailure(cause: string): void {
    const repeated = cause === this.lastError;
    this.lastError = cause;
    const fields = { remote: this.config.url, cause, attempt: this.backoff.attempts + 1 };
    // The first failure of a kind is a warning; identical repeats go to debug (with a reminder every few minutes)
    // so a long outage does not flood the log.
    const now = Date.now();
    if (repeated && now - this.lastFailureWarnAt < REPEAT_WARN_INTERVAL_MS) {
      this.logger.debug(fields, 'bridge: cannot connect to the remote');
      return;
    }
    this.lastFailureWarnAt = now;
    if (repeated) this.logger.warn(fields, 'bridge: still cannot connect to the remote');
    else this.logger.warn(fields, this.connected ? 'bridge: connection error' : 'bridge: cannot connect to the remote');
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.logger.debug({ delayMs: delay }, 'bridge: reconnecting later');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}

function spillWrites(log: SpillLog | undefined): BridgeState['spillWrites'] {
  const s = log?.stats();
  return { batches: s?.batchesWritten ?? 0, messages: s?.recordsWritten ?? 0, fileBytes: s?.fileBytesWritten ?? 0, lost: s?.lost ?? 0 };
}
