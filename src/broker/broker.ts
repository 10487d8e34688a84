// The broker: an embeddable object that owns sessions, subscriptions, retained messages and
// persistence, accepts connections from any number of listeners and routes messages.

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import { Store, type StoreState } from '../persistence/store.js';
import { Connection, peerAddress, type ConnectionHost, type Packet } from './connection.js';
import type { ConnackRefusal } from './decode/errors.js';
import type { Delivery } from './delivery.js';
import { dispatchPacket } from './handlers/dispatch.js';
import { IdleCollector } from './idle-collector.js';
import { LocalEndpoint } from './local-client.js';
import { messageProblem, subscriptionIdsProblem } from './message-check.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';
import { deliver, deliverQos0Live, pump, restoreDeliveries, SharedEncoding, type OutboundHost } from './outbound.js';
import { RetainedStore } from './retained-store.js';
import { NEVER_EXPIRES, NO_DELIVERIES, Session, SessionTable, type Will } from './session.js';
import { SubscriptionTree, type Subscriber, type Subscription } from './subscription-tree.js';
import { SysTopics } from './sys-topics.js';
import { parseSharedFilter } from './topics.js';
import { ReadableMatches, readableBy, recomputeReadChecks, requireReadChecks, subscriptionDecision, unreadableQueued } from './read-access.js';
import type { ClientIdentity, LocalClient, Message } from './types.js';

export type { BrokerOptions } from './options.js';

export interface BrokerStats {
  clientsConnected: number;
  clientsMaximum: number;
  sessions: number;
  subscriptions: number;
  retainedMessages: number;
  queuedMessages: number;
  messagesReceived: number;
  messagesSent: number;
  messagesDropped: number;
  connectionsTotal: number;
  /** CONNECTs refused for credentials or authorization (CONNACK 0x04/0x05, v5 0x86/0x87). */
  authFailures: number;
  startedAt: number;
}

export interface ListenOptions {
  port: number;
  host?: string;
}

const SWEEP_INTERVAL_MS = 500;
/** How long a closing connection may take to end gracefully before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
/** How long clients have at a shutdown to read what was sent to them (the DISCONNECT 0x8B last) before their sockets go. */
const SHUTDOWN_GRACE_MS = 500;
/**
 * Flow control towards publishers: when a connected subscriber's queue passes the high-water mark,
 * the publisher feeding it stops being read until the queue is back under the low-water mark
 * (or a short while has passed, so two clients feeding each other cannot stall for good).
 * QoS 1/2 messages are then never dropped for a subscriber that keeps reading.
 */
/** The reason codes a server's DISCONNECT may carry (MQTT 5.0 §3.14.2.1). */
const DISCONNECT_REASON_CODES = new Set([
  0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
  0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]);
const QUEUE_HIGH_WATER = 1000;
const QUEUE_LOW_WATER = 250;
const MAX_PUBLISHER_PAUSE_MS = 100;

export class Broker implements ConnectionHost, OutboundHost {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  store!: Store;
  retained!: RetainedStore;
  readonly sessions = new SessionTable();
  readonly tree = new SubscriptionTree<Session | LocalEndpoint>();
  readonly connections = new Set<Connection>();
  readonly stats: BrokerStats = {
    clientsConnected: 0, clientsMaximum: 0, sessions: 0, subscriptions: 0, retainedMessages: 0, queuedMessages: 0,
    messagesReceived: 0, messagesSent: 0, messagesDropped: 0, connectionsTotal: 0, authFailures: 0, startedAt: Date.now(),
  };
  shuttingDown = false;
  private closed = false;
  private readonly servers = new Set<net.Server>();
  private readonly flushQueue: Connection[] = [];
  private flushScheduled = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private routeEpoch = 0;
  private readonly routeTargets: (Session | null)[] = [];
  private readonly shared = new SharedEncoding();
  private readonly readable = new ReadableMatches();
  private readonly shareCursor = new Map<string, number>();
  private readonly localQueue: { handler: (m: Message) => void; message: Message }[] = [];
  private localFlushScheduled = false;
  private sys: SysTopics | null = null;
  /** The socket client whose PUBLISH is being routed, for flow control. */
  currentPublisher: Connection | null = null;
  private readonly backlogged = new Set<Session>();
  private readonly pausedPublishers = new Set<Connection>();
  private resumeTimer: NodeJS.Timeout | null = null;
  private droppedLogged = 0;
  /** 3.1.1 connections with a QoS 1/2 PUBLISH left unacknowledged because the store was failing. */
  private readonly withheld = new Set<Connection>();
  /** QoS 1/2 PUBLISHes refused or left unacknowledged because they could not be stored. */
  refusedUnstored = 0;
  /** One full GC once the broker is quiet after a burst of connections, so the memory of the burst returns. */
  private readonly idleCollector = new IdleCollector({
    activity: () => this.stats.messagesReceived + this.stats.messagesSent,
    collected: (pauseMs, events) => this.logger.debug({ pauseMs: Math.round(pauseMs * 10) / 10, connectionEvents: events }, 'heap collected after a burst of connections'),
  });

  constructor(options: Partial<BrokerOptions> = {}) {
    this.options = { ...defaultBrokerOptions, logger: silentLogger, ...options };
    this.logger = this.options.logger;
  }

  get maximumPacketSize(): number { return this.options.maximumPacketSize; }
  get maxBufferedBytes(): number { return this.options.maxBufferedBytes; }
  get maxPreConnectBytes(): number { return this.options.maxPreConnectBytes; }
  get outputBudgetExceeded(): boolean { return this.bufferedOutput > this.options.maxBufferedBytesTotal; }
  /** Bytes all sockets hold that the kernel has not taken (as of each one's last write or drain). */
  private bufferedOutput = 0;
  accountOutput(previous: number, bytes: number): void {
    this.bufferedOutput += bytes - previous;
  }
  get maxQueuedMessages(): number { return this.options.maxQueuedMessages; }
  get maxQueuedBytes(): number { return this.options.maxQueuedBytes; }
  get queuePolicy() { return this.options.queuePolicy; }
  /** The SQLite database: extensions (the bridge outbox) keep their tables here, in the same commits. */
  get db() { return this.store.db; }
  /** Where the database lives (null: in memory); the bridge keeps its spill log there. */
  get dataDir(): string | null { return this.options.dataDir; }
  get durability() { return this.options.durability; }

  async start(): Promise<void> {
    this.store = new Store({
      dataDir: this.options.dataDir,
      durability: this.options.durability,
      commitWindowMs: this.options.commitWindowMs,
      onError: (error) => this.logger.error({ err: error }, 'database write failed'),
      onStateChange: (state) => this.onStoreStateChange(state),
    });
    this.retained = new RetainedStore(
      this.store, this.logger, { maxMessages: this.options.maxRetainedMessages, maxBytes: this.options.maxRetainedBytes }, this.options.retainedWriteIntervalMs,
    );
    this.restoreSessions();
    if (this.options.sysIntervalMs > 0) {
      this.sys = new SysTopics(this, this.options.sysIntervalMs);
      this.sys.start();
    }
  }

  /** Opens a TCP listener; resolves with the bound port. */
  listen(options: ListenOptions): Promise<{ port: number; host: string; server: net.Server }> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.setNoDelay(true);
      this.handle(socket, { address: peerAddress(socket) });
    });
    this.servers.add(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', (error) => this.logger.error({ err: error }, 'listener error'));
        const address = server.address() as net.AddressInfo;
        resolve({ port: address.port, host: address.address, server });
      });
    });
  }

  /** Serves one MQTT connection over any byte stream (TCP, TLS, WebSocket). */
  handle(stream: Duplex, meta: { address: string; certificateUser?: string; allowAnonymous?: boolean; listener?: string }): Connection {
    const connection = new Connection(this, stream, meta.address, meta.certificateUser, meta.allowAnonymous ?? true);
    if (meta.listener !== undefined) connection.listener = meta.listener;
    this.connections.add(connection);
    this.stats.connectionsTotal++;
    this.idleCollector.noteConnection();
    this.startSweep();
    return connection;
  }

  createLocalClient(id: string): LocalClient {
    return new LocalEndpoint(this, id);
  }

  get storeState(): StoreState {
    return this.store.state;
  }

  /** False while the store fails, and for a 3.1.1 connection that already had a PUBLISH withheld (its later ones must not overtake it). */
  acceptsDurable(connection: Connection): boolean {
    return this.store.writable && !this.withheld.has(connection);
  }

  /**
   * A QoS 1/2 PUBLISH that cannot be stored is never acknowledged as if it were (issue 9). MQTT 5.0:
   * PUBACK/PUBREC 0x97 (quota exceeded) at once: the publisher knows it was not taken. MQTT 3.1.1
   * has no negative acknowledgement: the PUBACK is withheld and, once writes succeed again, the
   * connection is closed, so the client resends its unacknowledged messages when it reconnects.
   * The message is not routed either: a subscriber gets it with the resend, not twice.
   */
  refuseUnstored(connection: Connection, qos: number, packetId: number): void {
    this.refusedUnstored++;
    if (connection.protocolVersion === 5) {
      connection.send(qos === 1 ? { cmd: 'puback', messageId: packetId, reasonCode: 0x97 } : { cmd: 'pubrec', messageId: packetId, reasonCode: 0x97 });
      return;
    }
    this.withheld.add(connection);
  }

  private onStoreStateChange(state: StoreState): void {
    if (!state.writable) {
      this.logger.error(
        { error: state.error, retryEveryMs: 1000 },
        'database writes are failing (disk full?): QoS 1/2 PUBLISHes are refused (MQTT 5: PUBACK 0x97) or left unacknowledged (3.1.1) until a write succeeds; nothing already acknowledged is lost',
      );
    } else {
      const withheld = [...this.withheld];
      this.withheld.clear();
      this.logger.info({ failedCommits: state.failedCommits, withheldConnections: withheld.length, dropped: this.store.droppedWhileFailing }, 'database writes succeed again');
      for (const connection of withheld) {
        // 3.1.1 clients resend unacknowledged PUBLISHes only when they reconnect.
        connection.closeReason = 'unacknowledged PUBLISHes while the database was not writable: closed so the client resends them';
        connection.close(0x97);
      }
    }
    this.sys?.publishStoreState();
  }

  // ---- ConnectionHost

  onPacket(connection: Connection, packet: Packet): void {
    try {
      dispatchPacket(this, connection, packet);
    } catch (error) {
      this.logger.error({ err: error, clientId: connection.identity.clientId }, 'internal error handling a packet; closing that client');
      connection.close(0x83);
    }
  }

  onProtocolError(connection: Connection, error: Error & { reasonCode?: number; connack?: ConnackRefusal }): void {
    // A code the decoder chose for a refusing CONNACK (e.g. 0x84) may not close a connected client: a
    // second CONNECT, whatever its bytes, is a Protocol Error [MQTT-3.1.0-2] (§3.14.2.1 lists DISCONNECT's codes).
    let reasonCode = error.reasonCode ?? 0x82;
    if (connection.connected && !DISCONNECT_REASON_CODES.has(reasonCode)) reasonCode = 0x82;
    connection.closeReason ??= `protocol error: ${error.message}`;
    this.logger.warn({ clientId: connection.identity.clientId || undefined, address: connection.address, reasonCode }, `closing client: ${error.message}`);
    if (!connection.connected && error.connack !== undefined) {
      // A refused CONNECT: 0x01 for an unsupported protocol level [MQTT-3.1.2-2], or the v5 reason code.
      // Without a reason string: the client's Maximum Packet Size is not known from a CONNECT that did not decode.
      const { protocolVersion, code } = error.connack;
      connection.write(Buffer.from(protocolVersion === 5 ? [0x20, 0x03, 0x00, code, 0x00] : [0x20, 0x02, 0x00, code]));
    }
    connection.close(reasonCode, error.message);
  }

  onInternalError(connection: Connection, error: unknown, where: string): void {
    connection.closeReason ??= `internal error (${where})`;
    this.logger.error({ err: error, clientId: connection.identity.clientId || undefined, address: connection.address }, `internal error on a client's ${where} event; closing that client`);
  }

  onSocketGone(connection: Connection): void {
    this.connections.delete(connection);
    this.idleCollector.noteConnection();
    this.pausedPublishers.delete(connection);
    this.withheld.delete(connection);
  }

  onClose(connection: Connection): void {
    this.pausedPublishers.delete(connection);
    this.withheld.delete(connection);
    if (!connection.connected) return;
    try {
      this.detach(connection);
    } catch (error) {
      this.logger.error({ err: error, clientId: connection.identity.clientId }, 'internal error while closing a client');
    }
  }

  /** The connection's session goes offline (or ends): will, expiry, persistence. */
  private detach(connection: Connection): void {
    this.stats.clientsConnected--;
    const session = connection.session;
    if (session === null || session.connection !== connection) return;
    session.connection = null;
    this.relieve(session);
    if (this.logger.isLevelEnabled('info')) {
      const reason = connection.closeReason ?? (connection.cleanDisconnect ? 'DISCONNECT from the client' : 'network connection closed by the client');
      this.logger.info({ clientId: session.clientId, username: connection.identity.username, listener: connection.listener || undefined, address: connection.address, reason }, 'client disconnected');
    }
    const will = connection.cleanDisconnect || this.shuttingDown ? null : connection.will;
    if (session.expiryInterval === 0) {
      if (will) this.guarded('will', () => this.publishWill(will));
      this.endSession(session);
      return;
    }
    session.disconnectedAt = Date.now();
    this.store.saveSession(session.clientId, session.protocolVersion, session.expiryInterval, session.disconnectedAt);
    if (will) {
      if (will.delaySeconds === 0) this.guarded('will', () => this.publishWill(will));
      else {
        session.pendingWill = will;
        session.willTimer = setTimeout(() => this.guarded('will', () => this.firePendingWill(session)), Math.min(will.delaySeconds, session.expiryInterval) * 1000);
        session.willTimer.unref();
      }
    }
    if (session.expiryInterval !== NEVER_EXPIRES && !this.shuttingDown) this.scheduleExpiry(session, session.expiryInterval * 1000);
  }

  onDrain(connection: Connection): void {
    const session = connection.session;
    if (session !== null && session.connection === connection && session.queue.length > 0) this.pumpSession(session);
  }

  scheduleFlush(connection: Connection): void {
    this.flushQueue.push(connection);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushAll);
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const queue = this.flushQueue.splice(0);
    for (const connection of queue) {
      try {
        connection.flush();
      } catch (error) {
        connection.fail(error, 'write');
      }
    }
  };

  // ---- OutboundHost

  countSent(): void {
    this.stats.messagesSent++;
  }

  countDropped(session: Session | { clientId: string }, reason: string): void {
    this.stats.messagesDropped++;
    // Logged, never silent, but not a line per message when a queue overflows.
    const now = Date.now();
    if (now - this.droppedLogged > 5000) {
      this.droppedLogged = now;
      this.logger.warn({ clientId: session.clientId, droppedTotal: this.stats.messagesDropped }, `message dropped: ${reason}`);
    }
  }

  // ---- Routing

  /**
   * Delivers a message to every matching subscription (one copy per session, at the highest
   * granted QoS, with all subscription identifiers) and stores it when retained.
   * Returns false when a queue refused the message.
   */
  route(message: Message, wire: Buffer | null = null, wireV5 = false): boolean {
    this.stats.messagesReceived++;
    // Past the retained limits the message is not kept, but it is still delivered: a 3.1.1 publisher
    // gets a plain PUBACK, so refusing the delivery too would lose an acknowledged message. A v5
    // publisher hears 0x97 Quota exceeded (route returns false).
    let retainRefused = false;
    if (message.retain && !this.retained.set(message)) {
      retainRefused = true;
      this.countDropped({ clientId: message.origin ?? '' }, `retained store full (${this.retained.size} messages, ${this.retained.totalBytes} bytes; limits ${this.options.maxRetainedMessages} / ${this.options.maxRetainedBytes}): "${message.topic}" delivered but not retained`);
    }
    // Sessions with partly readable subscriptions see only what they may read (read-access.ts).
    const matches = this.readable.active ? this.readable.filter(this.tree.match(message.topic), message.topic) : this.tree.match(message.topic);
    if (matches.length === 0) return !retainRefused;
    const epoch = ++this.routeEpoch;
    // Reused across messages, with a count instead of `length = 0` (a runtime call, twice per message).
    const targets = this.routeTargets;
    let targetCount = 0;
    let shared: Map<string, Subscription<Session | LocalEndpoint>[]> | null = null;
    for (let i = 0; i < matches.length; i++) {
      const sub = matches[i];
      if (sub.share !== null) {
        shared ??= new Map();
        const key = `${sub.share}\u0000${sub.matchFilter}`;
        const group = shared.get(key);
        if (group) group.push(sub);
        else shared.set(key, [sub]);
        continue;
      }
      if (sub.noLocal && message.origin === sub.subscriber.clientId) continue;
      if (sub.handler !== undefined) {
        this.deliverLocal(sub, message);
        continue;
      }
      const session = sub.subscriber as Session;
      const qos = sub.qos < message.qos ? sub.qos : message.qos;
      const retain = sub.retainAsPublished && message.retain;
      if (session.routeMark !== epoch) {
        session.routeMark = epoch;
        session.routeQos = qos;
        session.routeRetain = retain;
        session.routeSubscriptionIds = sub.subscriptionId !== undefined ? [sub.subscriptionId] : undefined;
        targets[targetCount++] = session;
      } else {
        if (qos > session.routeQos) session.routeQos = qos;
        session.routeRetain ||= retain;
        if (sub.subscriptionId !== undefined) (session.routeSubscriptionIds ??= []).push(sub.subscriptionId);
      }
    }
    this.shared.reset(message, wire, wireV5);
    let accepted = !retainRefused;
    for (let i = 0; i < targetCount; i++) {
      const session = targets[i]!;
      targets[i] = null;
      try {
        if (!this.offer(session, message, session.routeQos, session.routeRetain, session.routeSubscriptionIds)) accepted = false;
      } catch (error) {
        this.deliveryFailed(session, error);
      }
    }
    if (shared !== null) {
      for (const [key, group] of shared) if (!this.deliverShared(key, group, message)) accepted = false;
    }
    return accepted;
  }

  private offer(session: Session, message: Message, qos: 0 | 1 | 2, retain: boolean, subscriptionIds: number[] | undefined, shareKey?: string): boolean {
    if (qos === 0) {
      const connection = session.connection;
      if (connection === null && !this.options.queueQos0) return true;
      if (connection !== null) {
        deliverQos0Live(this, session, connection, message, retain, subscriptionIds, this.shared);
        return true;
      }
    }
    const delivery: Delivery = { seq: 0, message, qos, retain, subscriptionIds, packetId: 0, released: false, shareKey };
    const accepted = deliver(this, session, delivery, this.shared);
    if (qos > 0 && session.queue.length >= QUEUE_HIGH_WATER && session.connection !== null) this.holdPublisher(session);
    return accepted;
  }

  private holdPublisher(session: Session): void {
    const publisher = this.currentPublisher;
    if (publisher === null || publisher === session.connection || publisher.closing) return;
    this.backlogged.add(session);
    if (!this.pausedPublishers.has(publisher)) {
      this.pausedPublishers.add(publisher);
      publisher.holdReading();
    }
    this.resumeTimer ??= setTimeout(this.resumePublishers, MAX_PUBLISHER_PAUSE_MS);
  }

  /** Called whenever a session's queue may have shrunk or its client went away. */
  private relieve(session: Session): void {
    if (!this.backlogged.has(session)) return;
    if (session.connection !== null && session.queue.length > QUEUE_LOW_WATER) return;
    this.backlogged.delete(session);
    if (this.backlogged.size === 0) this.resumePublishers();
  }

  private readonly resumePublishers = (): void => {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    this.backlogged.clear();
    for (const publisher of this.pausedPublishers) publisher.releaseReading();
    this.pausedPublishers.clear();
  };

  /** One subscriber per share group gets the message: round robin over connected sessions first [MQTT-4.8.2]. */
  private deliverShared(key: string, group: Subscription<Session | LocalEndpoint>[], message: Message): boolean {
    const start = (this.shareCursor.get(key) ?? 0) % group.length;
    let chosen: Subscription<Session | LocalEndpoint> | null = null;
    for (let i = 0; i < group.length; i++) {
      const candidate = group[(start + i) % group.length];
      const subscriber = candidate.subscriber;
      const online = candidate.handler !== undefined || (subscriber as Session).connection !== null;
      if (online) { chosen = candidate; this.shareCursor.set(key, start + i + 1); break; }
    }
    if (chosen === null) {
      chosen = group[start];
      this.shareCursor.set(key, start + 1);
    }
    if (chosen.handler !== undefined) {
      this.deliverLocal(chosen, message);
      return true;
    }
    const qos = chosen.qos < message.qos ? chosen.qos : message.qos;
    const ids = chosen.subscriptionId !== undefined ? [chosen.subscriptionId] : undefined;
    try {
      return this.offer(chosen.subscriber as Session, message, qos, chosen.retainAsPublished && message.retain, ids, key);
    } catch (error) {
      this.deliveryFailed(chosen.subscriber as Session, error);
      return true;
    }
  }

  /** A delivery to one subscriber threw (e.g. its encoding): that subscriber is closed, the others get theirs. */
  private deliveryFailed(session: Session, error: unknown): void {
    const connection = session.connection;
    if (connection !== null) connection.fail(error, 'delivery');
    else this.logger.error({ err: error, clientId: session.clientId }, 'internal error queueing a message for an offline session');
  }

  /** A shared-subscription message its member never acknowledged goes to another member (v5 §4.8.2 SHOULD). */
  private redeliverShared(key: string, message: Message): void {
    const group = this.tree.match(message.topic).filter((s) => s.share !== null && `${s.share}\u0000${s.matchFilter}` === key && readableBy(s, message.topic));
    if (group.length === 0) return;
    this.shared.reset(message);
    this.deliverShared(key, group, message);
  }

  private deliverLocal(sub: Subscription<Session | LocalEndpoint>, message: Message): void {
    if (sub.durable) {
      if (message.holdable === true && sub.onHoldable !== undefined) {
        // Nobody waits for this one to be stored: the subscriber keeps it in memory (see SubscribeOptions.onHoldable).
        try {
          sub.onHoldable(message);
        } catch (error) {
          this.logger.error({ err: error, topic: message.topic }, 'in-process subscriber failed');
        }
        return;
      }
      this.store.runDurable(sub.handler!, message);
      return;
    }
    this.localQueue.push({ handler: sub.handler!, message });
    if (!this.localFlushScheduled) {
      this.localFlushScheduled = true;
      queueMicrotask(this.flushLocal);
    }
  }

  /** In-process handlers run after routing, so a handler that publishes does not re-enter the router. */
  private readonly flushLocal = (): void => {
    this.localFlushScheduled = false;
    const queue = this.localQueue.splice(0);
    for (const { handler, message } of queue) {
      try {
        handler(message);
      } catch (error) {
        this.logger.error({ err: error, topic: message.topic }, 'in-process subscriber failed');
      }
    }
  };

  // ---- Subscriptions (shared by socket and in-process clients)

  addSubscription(subscriber: Session | LocalEndpoint, sub: Omit<Subscription<Session | LocalEndpoint>, 'subscriber' | 'matchFilter' | 'share'>): { existed: boolean; subscription: Subscription<Session | LocalEndpoint> } {
    const shared = parseSharedFilter(sub.filter);
    const subscription: Subscription<Session | LocalEndpoint> = {
      ...sub,
      subscriber,
      share: shared && shared !== 'invalid' ? shared.group : null,
      matchFilter: shared && shared !== 'invalid' ? shared.filter : sub.filter,
    };
    const replaced = this.tree.add(subscription);
    if (subscriber instanceof Session) {
      subscriber.addSubscription(subscription as Subscription<Session>);
      if (subscriber.persistent) this.store.saveSubscription(subscriber.clientId, sub);
    }
    return { existed: replaced !== undefined, subscription };
  }

  removeSubscription(subscriber: Session | LocalEndpoint, filter: string): boolean {
    const shared = parseSharedFilter(filter);
    const matchFilter = shared && shared !== 'invalid' ? shared.filter : filter;
    const removed = this.tree.remove(subscriber, filter, matchFilter);
    if (subscriber instanceof Session) {
      subscriber.subscriptions.delete(filter);
      if (removed && subscriber.persistent) this.store.dropSubscription(subscriber.clientId, filter);
    }
    return removed !== undefined;
  }

  /** Retained messages for a new subscription; none for a shared one (MQTT 5.0 §4.8.2). */
  retainedFor(filter: string): Message[] {
    if (parseSharedFilter(filter) !== null) return [];
    return this.retained.match(filter);
  }

  authorize(identity: ClientIdentity, action: 'publish' | 'subscribe', topic: string): boolean {
    const hook = this.options.authorize;
    if (!hook) return true;
    try {
      return hook(identity, action, topic) === true;
    } catch (error) {
      this.logger.error({ err: error }, 'authorization hook failed; denying');
      return false;
    }
  }

  // ---- Read access (delivery-time ACL checks, read-access.ts)

  /** How a subscription is granted: 'whole', 'filter' (per-message checks turn on for the session) or 'denied'. */
  authorizeSubscription(session: Session, identity: ClientIdentity, filter: string): 'whole' | 'filter' | 'denied' {
    const decision = subscriptionDecision(this, identity, filter);
    if (decision === 'filter') requireReadChecks(this, session, identity);
    return decision;
  }

  /** A client (re)connected to this session: re-decide its read checks and drop queued messages it may not read. */
  applyReadAccess(session: Session, identity: ClientIdentity): void {
    session.identity = identity;
    if (!recomputeReadChecks(this, session, identity)) return;
    for (const delivery of unreadableQueued(session)) if (delivery.seq !== 0) this.store.completeDelivery(delivery.seq);
  }

  /** The rules changed (ACL reload): every session whose client is known is decided again. */
  refreshReadAccess(): void {
    for (const session of this.sessions.values()) if (session.identity !== null) this.applyReadAccess(session, session.identity);
  }

  readAccessChanged(): void {
    this.readable.changed();
  }

  onAuthorizeError(error: unknown): void {
    this.logger.error({ err: error }, 'authorization hook failed; denying');
  }

  // ---- Sessions

  /** Whether a CONNECT from this client id may have a persistent session (its own counts as room). */
  hasRoomForPersistentSession(clientId: string): boolean {
    const existing = this.sessions.get(clientId);
    if (existing?.persistent) return true;
    return this.sessions.persistentCount < this.options.maxPersistentSessions;
  }

  /** Ends a session: its subscriptions go, its messages are discarded. */
  endSession(session: Session): void {
    session.clearTimers();
    if (session.subscriptions.size > 0) for (const [filter, sub] of session.subscriptions) this.tree.remove(session, filter, sub.matchFilter);
    const orphans = session.inflight.size + session.queue.length === 0
      ? []
      : [...session.inflight.values(), ...session.queue].filter((d) => d.shareKey !== undefined && !d.released);
    session.subscriptions.clear();
    session.inflight.clear();
    session.queue = NO_DELIVERIES;
    session.queuedBytes = 0;
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    if (session.persistent) this.store.dropSession(session.clientId);
    for (const delivery of orphans) this.redeliverShared(delivery.shareKey!, delivery.message);
  }

  publishWill(will: Will): void {
    const message: Message = will.expirySeconds === undefined ? will.message : { ...will.message, expiresAt: Date.now() + will.expirySeconds * 1000 };
    const origin = message.origin ?? '';
    const identity: ClientIdentity = { clientId: origin, address: 'will', local: false };
    if (!this.authorize(identity, 'publish', message.topic)) {
      this.logger.warn({ clientId: origin, topic: message.topic }, 'will message denied by authorization');
      return;
    }
    this.route(message);
  }

  private firePendingWill(session: Session): void {
    const will = session.pendingWill;
    session.pendingWill = null;
    session.willTimer = null;
    if (will) this.publishWill(will);
  }

  private scheduleExpiry(session: Session, afterMs: number): void {
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = setTimeout(() => this.guarded('session expiry', () => {
      this.logger.info({ clientId: session.clientId }, 'session expired');
      if (session.pendingWill) this.firePendingWill(session);
      this.endSession(session);
    }), Math.min(afterMs, 2_147_000_000));
    session.expiryTimer.unref();
  }

  private restoreSessions(): void {
    const now = Date.now();
    for (const stored of this.store.loadSessions()) {
      // Sessions stored before the expiry cap existed (or under a larger one) get the current cap.
      const cap = Math.max(this.options.maxSessionExpiry, this.options.persistentSessionExpiry);
      stored.expiryInterval = Math.min(stored.expiryInterval, cap);
      const session = new Session(stored.clientId, stored.protocolVersion, stored.expiryInterval);
      session.disconnectedAt = stored.disconnectedAt ?? now;
      const expiresAt = stored.expiryInterval === NEVER_EXPIRES ? Infinity : session.disconnectedAt + stored.expiryInterval * 1000;
      if (expiresAt <= now) {
        this.store.dropSession(stored.clientId);
        continue;
      }
      this.sessions.set(session.clientId, session);
      for (const sub of stored.subscriptions) this.addSubscription(session, sub);
      restoreDeliveries(session, this.validDeliveries(stored.clientId, stored.deliveries));
      for (const id of stored.incomingQos2) session.addIncomingQos2(id);
      if (expiresAt !== Infinity) this.scheduleExpiry(session, expiresAt - now);
    }
    this.store.flush();
    if (this.sessions.size > 0) this.logger.info({ sessions: this.sessions.size }, 'persistent sessions restored');
  }

  /** Queued messages from SQLite that can be delivered; others (an older version's, issue 8 defect 2) are dropped with a log line. */
  private validDeliveries(clientId: string, deliveries: Delivery[]): Delivery[] {
    return deliveries.filter((delivery) => {
      const problem = messageProblem(delivery.message) ?? subscriptionIdsProblem(delivery.subscriptionIds);
      if (problem === null) return true;
      this.logger.warn({ clientId, topic: delivery.message.topic, problem }, 'dropping a stored queued message that is not valid');
      this.store.completeDelivery(delivery.seq);
      return false;
    });
  }

  pumpSession(session: Session): void {
    pump(this, session);
    this.relieve(session);
  }

  // ---- Housekeeping

  /** The sweep runs only while there are sockets to look after: a gateway without clients is not woken twice a second. */
  private startSweep(): void {
    if (this.sweepTimer || this.shuttingDown) return;
    this.sweepTimer = setInterval(() => this.guarded('housekeeping', () => this.sweep()), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    if (this.connections.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
      return;
    }
    const now = Date.now();
    for (const connection of this.connections) {
      try {
        this.sweepOne(connection, now);
      } catch (error) {
        connection.fail(error, 'housekeeping');
      }
    }
  }

  private sweepOne(connection: Connection, now: number): void {
    if (connection.closing) {
      // A peer that never reads or never closes its side must not keep the socket (and its buffers) alive.
      if (now - connection.closingSince > CLOSE_GRACE_MS) connection.destroy();
    } else if (!connection.connected) {
      // The whole CONNECT must arrive within the timeout, however slowly its bytes come.
      if (now - connection.openedAt > this.options.connectTimeoutMs) {
        connection.closeReason = 'no CONNECT within the connect timeout';
        this.logger.info({ address: connection.address }, 'no CONNECT within the connect timeout; closing');
        connection.destroy();
      }
    } else if (connection.keepAliveMs > 0 && now - connection.lastActivity > connection.keepAliveMs * 1.5) {
      // [MQTT-3.1.2-24]: one and a half times the keep alive without a whole Control Packet.
      connection.closeReason = `no packet within 1.5 × keep alive (${connection.keepAliveMs / 1000} s)`;
      connection.close(0x8d, 'keep alive timeout');
    } else if (connection.writeBlockedSince > 0 && now - connection.writeBlockedSince > this.options.stalledReaderTimeoutMs) {
      // It reads nothing: its buffers go; a persistent session keeps its QoS 1/2 messages for the next connection.
      connection.closeReason = `read nothing for ${Math.round((now - connection.writeBlockedSince) / 1000)} s`;
      this.logger.warn({ clientId: connection.identity.clientId, address: connection.address, bufferedBytes: connection.bufferedBytes }, 'client reads nothing; disconnecting it');
      connection.destroy();
    }
  }

  /** Timer work: a bug there is logged, it does not take the gateway down. */
  guarded(what: string, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.logger.error({ err: error }, `internal error in ${what}`);
    }
  }

  snapshotStats(): BrokerStats {
    let queued = 0;
    for (const session of this.sessions.values()) queued += session.queue.length + session.inflight.size;
    this.stats.sessions = this.sessions.size;
    this.stats.subscriptions = this.tree.size;
    this.stats.retainedMessages = this.retained.size;
    this.stats.queuedMessages = queued;
    return { ...this.stats };
  }

  /**
   * The first step of a stop: tells v5 clients the server is shutting down (0x8B) and drops every socket
   * client, so no PUBACK leaves after this. In-process clients (devices, bridges) keep working and their
   * messages are still committed; wills are not published for a shutdown.
   */
  disconnectClients(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.sys?.stop();
    this.idleCollector.stop();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    for (const connection of [...this.connections]) {
      connection.closeReason = 'server shutting down';
      connection.close(0x8b, 'server shutting down');
    }
    // Ended, not destroyed: a destroy discards what the socket has not handed to the kernel yet, the
    // DISCONNECT included. The sessions are already detached; a client that has not read its output
    // and closed within the grace is dropped (the sweep that would do it is stopped).
    if (this.connections.size > 0) {
      setTimeout(() => {
        for (const connection of [...this.connections]) connection.destroy();
      }, SHUTDOWN_GRACE_MS).unref();
    }
  }

  /** Stops listening, disconnects the clients (disconnectClients, within its grace), commits and closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = [...this.servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    this.disconnectClients();
    await Promise.all(closing);
    for (const session of this.sessions.values()) session.clearTimers();
    this.retained.close();
    this.store.close();
  }
}
