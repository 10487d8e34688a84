// Prometheus metrics of the gateway. Most values are read on each scrape from collect callbacks
// (`registerCollector(() => ({ clientsConnected: broker.stats().clients, … }))`), so the broker,
// adapters and bridge need no metrics code; poll latency is a histogram and is observed as it happens.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { registerEventLoopLag } from './event-loop.js';

export interface DeviceStats {
  device: string;
  online: boolean;
  /** Failed polls/writes since start. */
  errorsTotal: number;
}

export interface BridgeStats {
  bridge: string;
  /** Messages waiting in the outbox. */
  outboxDepth: number;
  /** Age of the oldest waiting message; 0 when the outbox is empty. */
  outboxOldestAgeSeconds: number;
}

export interface ListenerStats {
  /** The listener's url (mqtt://127.0.0.1:1883, ws://0.0.0.0:9001/mqtt …). */
  listener: string;
  /** Network connections open now (TCP, before any handshake). */
  connections: number;
  /** Network connections accepted since start. */
  connectionsTotal: number;
  /** MQTT clients connected (CONNECT accepted) through it now. */
  clients: number;
}

/** What a collector reports; every field is optional. Numbers from several collectors are added up. */
export interface MetricsSnapshot {
  clientsConnected?: number;
  messagesReceivedTotal?: number;
  messagesSentTotal?: number;
  /** Sessions the broker holds: connected clients and offline persistent sessions. */
  sessions?: number;
  /** Messages waiting for or in flight to a client, over all sessions. */
  messagesQueued?: number;
  messagesDroppedTotal?: number;
  /** CONNECTs refused for a bad user name or password or a missing authorization. */
  authFailuresTotal?: number;
  listeners?: ListenerStats[];
  devices?: DeviceStats[];
  bridges?: BridgeStats[];
  sqliteSizeBytes?: number;
  /** 1 while database commits succeed, 0 while they fail (disk full). */
  storeWritable?: number;
  storeFailedCommitsTotal?: number;
}

export type MetricsCollector = () => MetricsSnapshot | Promise<MetricsSnapshot>;

export interface FieldgateMetrics {
  readonly registry: Registry;
  /** Adds a collector run on every scrape; returns a function that removes it. */
  registerCollector(collector: MetricsCollector): () => void;
  /** Records one device poll's duration. */
  observePollLatency(device: string, seconds: number): void;
  /** Drops a removed device's series (after a mapping reload). */
  forgetDevice(device: string): void;
  /** Runs the collectors and updates the metrics. Concurrent calls share one run. */
  refresh(): Promise<void>;
  /** refresh() and then the Prometheus text exposition. */
  metrics(): Promise<string>;
}

export interface MetricsOptions {
  /** Node.js process metrics (memory, CPU, event loop lag, file descriptors). Default true. */
  processMetrics?: boolean;
  /**
   * How often the event-loop lag is sampled, ms. prom-client's default (10 ms) wakes an idle gateway
   * ~100 times a second (idle CPU 0.3% → 1% on a Pi); once a second is one wakeup of the ~10 an idle
   * gateway with the demo and a bridge has (250 ms was four).
   */
  eventLoopSampleMs?: number;
  logger?: Logger;
}

/** Seconds; a Modbus TCP poll takes milliseconds, an RTU poll of a slow meter up to a second or more. */
const pollLatencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const DEFAULT_EVENT_LOOP_SAMPLE_MS = 1000;
const PARKED_MS = 2_147_483_647;

export function createMetrics(options: MetricsOptions = {}): FieldgateMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) {
    // prom-client's own event-loop monitor is parked (a timer that would first fire after ~24 days)
    // and its gauges replaced by ones sampled at a pace an idle gateway can afford (event-loop.ts).
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: PARKED_MS });
    registerEventLoopLag(registry, options.eventLoopSampleMs ?? DEFAULT_EVENT_LOOP_SAMPLE_MS);
  }

  const clientsConnected = new Gauge({ name: 'fieldgate_clients_connected', help: 'MQTT clients connected over the network', registers });
  const messagesReceived = new Counter({ name: 'fieldgate_messages_received_total', help: 'PUBLISH packets received by the broker', registers });
  const messagesSent = new Counter({ name: 'fieldgate_messages_sent_total', help: 'PUBLISH packets sent by the broker', registers });
  const pollLatency = new Histogram({
    name: 'fieldgate_device_poll_latency_seconds',
    help: 'Duration of one device poll',
    labelNames: ['device'],
    buckets: pollLatencyBuckets,
    registers,
  });
  const deviceErrors = new Counter({ name: 'fieldgate_device_errors_total', help: 'Failed device polls and writes', labelNames: ['device'], registers });
  const deviceOnline = new Gauge({ name: 'fieldgate_device_online', help: '1 when the device answers, 0 when it is offline', labelNames: ['device'], registers });
  const outboxDepth = new Gauge({ name: 'fieldgate_bridge_outbox_depth', help: 'Messages waiting in the bridge outbox', labelNames: ['bridge'], registers });
  const outboxAge = new Gauge({
    name: 'fieldgate_bridge_outbox_oldest_age_seconds',
    help: 'Age of the oldest message in the bridge outbox (0 when empty)',
    labelNames: ['bridge'],
    registers,
  });
  const sessions = new Gauge({ name: 'fieldgate_sessions', help: 'MQTT sessions held: connected clients and offline persistent sessions', registers });
  const messagesQueued = new Gauge({ name: 'fieldgate_messages_queued', help: 'Messages queued for or in flight to clients, over all sessions', registers });
  const messagesDropped = new Counter({ name: 'fieldgate_messages_dropped_total', help: 'Messages dropped: full session queues, QoS 0 to clients that do not read, too large for the client', registers });
  const authFailures = new Counter({ name: 'fieldgate_auth_failures_total', help: 'CONNECTs refused: bad user name or password, or not authorized on the listener', registers });
  const listenerConnections = new Gauge({ name: 'fieldgate_listener_connections', help: 'Network connections open on a listener', labelNames: ['listener'], registers });
  const listenerConnectionsTotal = new Counter({ name: 'fieldgate_listener_connections_total', help: 'Network connections accepted by a listener', labelNames: ['listener'], registers });
  const listenerClients = new Gauge({ name: 'fieldgate_listener_clients_connected', help: 'MQTT clients connected through a listener', labelNames: ['listener'], registers });
  const sqliteSize = new Gauge({ name: 'fieldgate_sqlite_size_bytes', help: 'Size of the SQLite database files (main + WAL)', registers });
  const storeWritable = new Gauge({ name: 'fieldgate_store_writable', help: '1 while database commits succeed, 0 while they fail (disk full, I/O error): QoS 1/2 PUBLISHes are then not acknowledged', registers });
  const storeFailedCommits = new Counter({ name: 'fieldgate_store_failed_commits_total', help: 'Database commits that failed (each retry counts)', registers });
  const collectorErrors = new Counter({ name: 'fieldgate_metrics_collector_errors_total', help: 'Collect callbacks that threw', registers });

  const collectors = new Set<MetricsCollector>();
  let running: Promise<void> | undefined;

  // Counters report totals kept elsewhere: replace the value rather than add to it.
  const setCounter = (counter: Counter, value: number | undefined) => {
    counter.reset();
    if (value !== undefined && Number.isFinite(value) && value >= 0) counter.inc(value);
  };

  async function runCollectors(): Promise<void> {
    const snapshots: MetricsSnapshot[] = [];
    for (const collector of collectors) {
      try {
        snapshots.push(await collector());
      } catch (err) {
        collectorErrors.inc();
        options.logger?.warn({ err }, 'a metrics collector failed; its values are missing from this scrape');
      }
    }
    const sum = (pick: (s: MetricsSnapshot) => number | undefined): number | undefined => {
      let total: number | undefined;
      for (const s of snapshots) {
        const v = pick(s);
        if (v !== undefined) total = (total ?? 0) + v;
      }
      return total;
    };
    clientsConnected.set(sum((s) => s.clientsConnected) ?? 0);
    setCounter(messagesReceived, sum((s) => s.messagesReceivedTotal));
    setCounter(messagesSent, sum((s) => s.messagesSentTotal));
    sqliteSize.set(sum((s) => s.sqliteSizeBytes) ?? 0);
    const writable = sum((s) => s.storeWritable);
    if (writable !== undefined) storeWritable.set(writable);
    setCounter(storeFailedCommits, sum((s) => s.storeFailedCommitsTotal));
    sessions.set(sum((s) => s.sessions) ?? 0);
    messagesQueued.set(sum((s) => s.messagesQueued) ?? 0);
    setCounter(messagesDropped, sum((s) => s.messagesDroppedTotal));
    setCounter(authFailures, sum((s) => s.authFailuresTotal));
    listenerConnections.reset();
    listenerConnectionsTotal.reset();
    listenerClients.reset();
    for (const s of snapshots) {
      for (const l of s.listeners ?? []) {
        listenerConnections.set({ listener: l.listener }, l.connections);
        listenerClients.set({ listener: l.listener }, l.clients);
        if (Number.isFinite(l.connectionsTotal) && l.connectionsTotal >= 0) listenerConnectionsTotal.inc({ listener: l.listener }, l.connectionsTotal);
      }
    }

    // Rebuilt on each scrape so devices and bridges removed by a reload disappear.
    deviceOnline.reset();
    deviceErrors.reset();
    outboxDepth.reset();
    outboxAge.reset();
    for (const s of snapshots) {
      for (const d of s.devices ?? []) {
        deviceOnline.set({ device: d.device }, d.online ? 1 : 0);
        if (Number.isFinite(d.errorsTotal) && d.errorsTotal >= 0) deviceErrors.inc({ device: d.device }, d.errorsTotal);
      }
      for (const b of s.bridges ?? []) {
        outboxDepth.set({ bridge: b.bridge }, b.outboxDepth);
        outboxAge.set({ bridge: b.bridge }, b.outboxOldestAgeSeconds);
      }
    }
  }

  const refresh = (): Promise<void> => {
    running ??= runCollectors().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    registry,
    registerCollector(collector) {
      collectors.add(collector);
      return () => {
        collectors.delete(collector);
      };
    },
    observePollLatency(device, seconds) {
      if (Number.isFinite(seconds) && seconds >= 0) pollLatency.observe({ device }, seconds);
    },
    forgetDevice(device) {
      pollLatency.remove({ device });
    },
    refresh,
    async metrics() {
      await refresh();
      return registry.metrics();
    },
  };
}
