// Ready-made collect callbacks and the health check, written against the small surfaces the broker,
// the device runtime and the bridge expose, so the gateway wires metrics in a few lines.
import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { MetricsCollector } from './registry.js';

/** The part of better-sqlite3's Database used here. */
export interface SqliteLike {
  readonly name: string;
  readonly memory: boolean;
  readonly open: boolean;
  readonly readonly: boolean;
  readonly inTransaction: boolean;
  pragma(source: string, options: { simple: true }): unknown;
  exec(source: string): unknown;
}

export interface BrokerLike {
  readonly stats: { clientsConnected: number; messagesReceived: number; messagesSent: number; messagesDropped?: number; authFailures?: number };
  /** Sessions and queued messages are counted on demand (Broker.snapshotStats). */
  snapshotStats?(): { sessions: number; queuedMessages: number };
  readonly db: SqliteLike;
  readonly shuttingDown?: boolean;
  readonly storeState?: { writable: boolean; failingSince: number | null; error: string | null; failedCommits: number };
}

export interface DevicesLike {
  status(): Array<{ id: string; online: boolean; failedPolls: number }>;
}

export interface BridgeLike {
  state(): { name: string; outboxDepth: number; oldestAgeSeconds: number | null };
}

/** Bytes the database occupies: pages in use plus the write-ahead log. */
export function sqliteSizeBytes(db: SqliteLike): number {
  const pages = Number(db.pragma('page_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
  if (db.memory || db.name === '' || db.name === ':memory:') return pages;
  let wal = 0;
  try {
    wal = statSync(`${db.name}-wal`).size;
  } catch {
    // no WAL file (not in WAL mode, or checkpointed and removed)
  }
  return pages + wal;
}

export function brokerCollector(broker: BrokerLike): MetricsCollector {
  return () => {
    const snapshot = broker.snapshotStats?.();
    return {
      clientsConnected: broker.stats.clientsConnected,
      messagesReceivedTotal: broker.stats.messagesReceived,
      messagesSentTotal: broker.stats.messagesSent,
      messagesDroppedTotal: broker.stats.messagesDropped,
      authFailuresTotal: broker.stats.authFailures,
      sessions: snapshot?.sessions,
      messagesQueued: snapshot?.queuedMessages,
      sqliteSizeBytes: broker.db.open ? sqliteSizeBytes(broker.db) : 0,
      storeWritable: broker.storeState === undefined ? undefined : broker.storeState.writable ? 1 : 0,
      storeFailedCommitsTotal: broker.storeState?.failedCommits,
    };
  };
}

export interface ListenerLike {
  readonly url: string;
  connections(): { open: number; total: number };
}

/** Per listener: open and accepted network connections, and MQTT clients connected through it. */
export function listenersCollector(listeners: () => Iterable<ListenerLike>, connections: () => Iterable<{ connected: boolean; listener: string }>): MetricsCollector {
  return () => {
    const clients = new Map<string, number>();
    for (const c of connections()) if (c.connected) clients.set(c.listener, (clients.get(c.listener) ?? 0) + 1);
    return {
      listeners: [...listeners()].map((l) => {
        const { open, total } = l.connections();
        return { listener: l.url, connections: open, connectionsTotal: total, clients: clients.get(l.url) ?? 0 };
      }),
    };
  };
}

/** `devices` is a getter so a SIGHUP reload that replaces the device runtime is followed. */
export function devicesCollector(devices: () => DevicesLike | undefined): MetricsCollector {
  return () => ({
    devices: (devices()?.status() ?? []).map((d) => ({ device: d.id, online: d.online, errorsTotal: d.failedPolls })),
  });
}

export function bridgesCollector(bridges: () => Iterable<BridgeLike>): MetricsCollector {
  return () => ({
    bridges: [...bridges()].map((b) => {
      const s = b.state();
      return { bridge: s.name, outboxDepth: s.outboxDepth, outboxOldestAgeSeconds: s.oldestAgeSeconds ?? 0 };
    }),
  });
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Where to reach a listener bound to a wildcard address. */
function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

export interface HealthOptions {
  broker: BrokerLike;
  /** TCP listeners that must accept connections (host as bound: 0.0.0.0 is probed on 127.0.0.1). */
  listeners: () => Array<{ host: string; port: number }>;
  connectTimeoutMs?: number;
}

/**
 * Healthy when the broker is not shutting down, every listener accepts a TCP connection and the
 * database takes a write lock. Throws with the reason when unhealthy (the /healthz body shows it).
 */
export function gatewayHealth(options: HealthOptions): () => Promise<boolean> {
  const timeoutMs = options.connectTimeoutMs ?? 2_000;
  return async () => {
    const { broker } = options;
    if (broker.shuttingDown) throw new Error('shutting down');
    const db = broker.db;
    if (!db.open) throw new Error('database is closed');
    if (db.readonly) throw new Error('database is read-only');
    const store = broker.storeState;
    if (store !== undefined && !store.writable) {
      throw new Error(`database writes failing since ${new Date(store.failingSince ?? Date.now()).toISOString()}: ${store.error ?? 'unknown error'}`);
    }
    // In a transaction the broker is writing right now; otherwise prove the write lock can be taken.
    if (!db.inTransaction) {
      try {
        db.exec('BEGIN IMMEDIATE');
        db.exec('ROLLBACK');
      } catch (err) {
        throw new Error(`database is not writable: ${(err as Error).message}`);
      }
    }
    for (const { host, port } of options.listeners()) {
      if (!(await canConnect(probeHost(host), port, timeoutMs))) throw new Error(`listener ${host}:${port} does not accept connections`);
    }
    return true;
  };
}
