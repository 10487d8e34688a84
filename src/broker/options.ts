import type { Durability } from '../persistence/store.js';
import type { Logger } from '../log.js';
import type { AuthenticateHook, AuthorizeHook } from './types.js';

export type QueuePolicy = 'drop-oldest' | 'drop-newest' | 'refuse';

export interface BrokerOptions {
  /** Directory for the SQLite database; null keeps state in memory only. */
  dataDir: string | null;
  logger: Logger;
  durability: Durability;
  /** Group-commit window: how long a durable write may wait to share a transaction. */
  commitWindowMs: number;
  /** Sockets that send no CONNECT within this time are closed. */
  connectTimeoutMs: number;
  /** v5 Server Keep Alive: a cap on the client's keep alive (seconds); 0 = accept the client's. */
  maxKeepAlive: number;
  /** Our v5 Receive Maximum: QoS 1/2 PUBLISHes a client may have unacknowledged towards us. */
  receiveMaximum: number;
  /** Largest packet we accept (bytes, whole packet). */
  maximumPacketSize: number;
  topicAliasMaximum: number;
  /**
   * Bytes of topic names one client may keep set as inbound Topic Aliases (UTF-8, summed over its aliases).
   * Without it a v5 client could make the broker hold Topic Alias Maximum × 65,535 bytes (~4 MiB at 64)
   * that no other budget counts; past it the client is disconnected with 0x97 Quota exceeded.
   */
  maxTopicAliasBytes: number;
  /** QoS 1/2 messages in flight towards one client at most (also capped by its v5 Receive Maximum). */
  maxInflightMessages: number;
  /** Messages waiting per session beyond the client's in-flight window. */
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  queuePolicy: QueuePolicy;
  /** Also queue QoS 0 messages for offline persistent sessions. */
  queueQos0: boolean;
  /** Expiry (seconds) of 3.1.1 persistent sessions (cleanSession=0); 0xFFFFFFFF = never. */
  persistentSessionExpiry: number;
  /** Cap (seconds) on a v5 client's Session Expiry Interval; 0xFFFFFFFF = no cap. */
  maxSessionExpiry: number;
  /** Persistent sessions at most; a CONNECT that would create one more is refused (v5 0x97, 3.1.1 0x03). */
  maxPersistentSessions: number;
  /** Output buffer per connection above which QoS 0 deliveries to it are dropped (QoS 1/2 wait in its queue). */
  maxBufferedBytes: number;
  /** Output buffered by all connections together; past it each connection may hold only 64 KiB. */
  maxBufferedBytesTotal: number;
  /** A client whose socket has not drained for this long (it reads nothing) is disconnected. */
  stalledReaderTimeoutMs: number;
  /** Largest packet taken before CONNECT completes (unauthenticated sockets). */
  maxPreConnectBytes: number;
  /** Subscriptions per client at most (v5 SUBACK 0x97, 3.1.1 0x80 past it). */
  maxSubscriptionsPerClient: number;
  /** Retained messages at most, by count and by payload + topic bytes; new topics past either are refused. */
  maxRetainedMessages: number;
  maxRetainedBytes: number;
  /** How often $SYS topics are published; 0 disables them. */
  sysIntervalMs: number;
  /**
   * Retained messages nobody waits for (device readings, QoS 0: Message.holdable) are written to SQLite
   * at most once per this interval, the last value per topic; 0 writes each one at once.
   */
  retainedWriteIntervalMs: number;
  authorize?: AuthorizeHook;
  authenticate?: AuthenticateHook;
}

export const defaultBrokerOptions: Omit<BrokerOptions, 'logger'> = {
  dataDir: null,
  durability: 'full',
  commitWindowMs: 2,
  connectTimeoutMs: 10_000,
  maxKeepAlive: 0,
  receiveMaximum: 1024,
  maximumPacketSize: 1024 * 1024,
  topicAliasMaximum: 64,
  maxTopicAliasBytes: 16 * 1024,
  maxInflightMessages: 100,
  maxQueuedMessages: 100_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  queuePolicy: 'drop-oldest',
  queueQos0: false,
  persistentSessionExpiry: 7 * 24 * 3600,
  maxSessionExpiry: 7 * 24 * 3600,
  maxPersistentSessions: 1000,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxBufferedBytesTotal: 16 * 1024 * 1024,
  stalledReaderTimeoutMs: 60_000,
  maxPreConnectBytes: 64 * 1024,
  maxSubscriptionsPerClient: 1000,
  maxRetainedMessages: 10_000,
  maxRetainedBytes: 32 * 1024 * 1024,
  sysIntervalMs: 10_000,
  retainedWriteIntervalMs: 300_000,
};
