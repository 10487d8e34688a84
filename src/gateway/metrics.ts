// Prometheus /metrics and /healthz over HTTP. The registry is created before the devices (their
// polls feed the latency histogram from the first one); the HTTP server opens after them.
import type { BridgeHandle } from '../bridge/index.js';
import type { Broker } from '../broker/broker.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { DeviceStatus } from '../devices/index.js';
import type { OpenListener } from '../listeners.js';
import type { Logger } from '../log.js';
import type { FieldgateMetrics, MetricsServer } from '../metrics/index.js';
import type { Part } from './part.js';

export type MetricsModule = typeof import('../metrics/index.js');

/** prom-client costs ~3 MiB of RSS: loaded only for a gateway that serves /metrics. */
export async function loadMetricsModule(config: GatewayConfig): Promise<MetricsModule | undefined> {
  return config.metrics ? await import('../metrics/index.js') : undefined;
}

export interface MetricsSources {
  broker: Broker;
  bridges: () => BridgeHandle[];
  devices: () => DeviceStatus[];
  listeners: () => OpenListener[];
  /** Why the gateway is not serving yet (starting, stopping), or undefined when it is: /healthz says so. */
  notReady: () => string | undefined;
}

export class MetricsPart implements Part {
  readonly name = 'metrics';
  /** Undefined without a `metrics` section. */
  readonly metrics: FieldgateMetrics | undefined;
  server: MetricsServer | null = null;

  /** @param module the metrics module, loaded (with prom-client) only when the config has a `metrics` section. */
  constructor(private readonly config: GatewayConfig, private readonly logger: Logger, private readonly module?: MetricsModule) {
    this.metrics = config.metrics && module ? module.createMetrics({ logger }) : undefined;
  }

  /** The sources are parts started before this one. */
  sources: MetricsSources | undefined;

  async start(): Promise<void> {
    const { metrics, sources } = this;
    if (!this.config.metrics || !metrics || !sources || !this.module) return;
    const { brokerCollector, bridgesCollector, listenersCollector, gatewayHealth, startMetricsServer } = this.module;
    metrics.registerCollector(brokerCollector(sources.broker));
    metrics.registerCollector(() => ({
      devices: sources.devices().map((d) => ({ device: d.id, online: d.online, errorsTotal: d.failedPolls })),
    }));
    metrics.registerCollector(bridgesCollector(sources.bridges));
    metrics.registerCollector(listenersCollector(sources.listeners, () => sources.broker.connections));
    // Every listener accepts a TCP connection and the database takes a write lock (nothing is written).
    const healthy = gatewayHealth({ broker: sources.broker, listeners: sources.listeners });
    this.server = await startMetricsServer({
      host: this.config.metrics.host, port: this.config.metrics.port, metrics, logger: this.logger,
      health: async () => {
        const notReady = sources.notReady();
        if (notReady !== undefined) throw new Error(notReady);
        return healthy();
      },
    });
    this.logger.info(`metrics on http://${this.config.metrics.host}:${this.server.port}/metrics, health on /healthz`);
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  status() {
    if (!this.config.metrics) return { state: 'stopped' as const, detail: 'metrics off in the config' };
    if (!this.server) return { state: 'stopped' as const, detail: 'not serving' };
    return { state: 'running' as const, detail: `http://${this.config.metrics.host}:${this.server.port}/metrics, /healthz` };
  }
}
