// The whole gateway in one process: the broker is the hub; listeners feed it sockets, device adapters
// and bridges are its in-process clients. Data flows device → adapter → broker → (subscribers, bridge).
//
// The gateway is a list of parts started in this order and stopped in reverse:
//   core (database, sessions)  →  bridges (outbox subscriptions)  →  devices  →  Home Assistant
//   →  metrics/HTTP  →  management API  →  listeners.
// Whatever must see every message exists before the first listener opens; a stop first drops the clients
// (no PUBACK after that), then the devices (hanging connects aborted), commits, stops the bridges and
// closes the database.
import type { Broker } from '../broker/broker.js';
import { homeAssistantDiscoveryOptions, type GatewayConfig } from '../config/gateway-config.js';
import type { OpenListener } from '../listeners.js';
import type { Logger } from '../log.js';
import type { MetricsServer } from '../metrics/index.js';
import { BridgesPart } from './bridges.js';
import { changedPaths } from './config-diff.js';
import { Controller } from './controller.js';
import { CorePart } from './core.js';
import { DevicesPart } from './devices.js';
import { HomeAssistantPart } from './home-assistant.js';
import { ListenersPart } from './listeners.js';
import { ManagementPart } from './management.js';
import { loadMetricsModule, MetricsPart } from './metrics.js';
import type { PartStatus } from './part.js';
import { History } from '../management/history.js';
import { MappingFiles } from '../management/mapping-files.js';
import type { LogRing } from '../log-ring.js';

export { anonymousAllowed, listenerConfigs } from './listeners.js';
export { loadMappingsOrThrow } from './devices.js';
export { watchCommand } from './watch-command.js';
export type { PartState, PartStatus } from './part.js';

export interface GatewayReloadResult {
  ok: boolean;
  errors: string[];
  /** Settings of the new gateway config that changed and take effect only after a restart. */
  restartNeeded: string[];
}

export interface Gateway {
  readonly broker: Broker;
  readonly listeners: OpenListener[];
  readonly metricsServer: MetricsServer | null;
  /**
   * SIGHUP: re-reads the password/ACL files, TLS certificates and device mappings; a bad new file keeps the
   * running one. With `next` (the gateway config read again), a changed `devices` list is applied and every
   * other changed setting is reported in `restartNeeded`.
   */
  reload(next?: GatewayConfig): Promise<GatewayReloadResult>;
  /** Bounded: about a second, plus the database commit, whatever the devices and the remotes do. */
  stop(): Promise<void>;
  /** Each part in start order, with its state and a line of detail. */
  status(): PartStatus[];
}

/** The stop's deadline for everything but the final commit (SIGTERM to exit within ~1 s). */
export const STOP_DEADLINE_MS = 900;
const STOP_CAPS_MS = { listeners: 250, metrics: 150, 'home-assistant': 100, devices: 300 };
/** Settings a SIGHUP applies without a restart (the files they name are always re-read). */
const RELOADABLE = [/^devices(\[|$)/];

export interface GatewayOptions {
  /** The config file the gateway runs (undefined: the embedded default): the management API's `check` checks it. */
  configFile?: string;
  /** How often the management API's state topics are compared and, when changed, published. */
  stateIntervalMs?: number;
  /** The ring the logger tees its lines into (createLogger's `ring`): the management API's `logs` reads it. */
  logRing?: LogRing;
  /** The history's bucket length (default 10 s; shorter in tests). */
  historyBucketMs?: number;
}

export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const core = new CorePart(config, logger);
  const { broker } = core;
  const bridges = new BridgesPart(config, broker, logger);
  const metrics = new MetricsPart(config, logger, await loadMetricsModule(config));
  const devices = new DevicesPart(config, broker, logger, {
    onPoll: metrics.metrics ? (deviceId, seconds) => metrics.metrics!.observePollLatency(deviceId, seconds) : undefined,
    onRemoved: (deviceId) => metrics.metrics?.forgetDevice(deviceId),
  });
  const homeAssistant = new HomeAssistantPart(config, broker, logger, () => devices.mappings());
  const listeners = new ListenersPart(config, broker, logger, () => devices.mappings());
  const management = new ManagementPart(broker, {
    config, gatewayId: homeAssistantDiscoveryOptions(config).gatewayId, configFile: options.configFile, broker,
    parts: (): PartStatus[] => controller.status(),
    devices: () => devices.deviceStatus(),
    bridges: () => bridges.handles.map((h) => h.state()),
    listeners: () => listeners.open,
    console: {
      deviceDetail: (id) => devices.deviceDetail(id),
      deviceIds: () => devices.deviceStatus().map((d) => d.id),
      history: new History({
        messages: () => ({ in: broker.stats.messagesReceived, out: broker.stats.messagesSent }),
        bridges: () => bridges.handles.map((h) => h.state()),
        readings: () => devices.readings(),
      }, options.historyBucketMs),
      logRing: options.logRing,
      homeAssistant: () => homeAssistant.announced(),
      bridgeNames: () => bridges.handles.map((h) => h.state().name),
      deadLetters: (name) => {
        const handle = bridges.handles.find((h) => h.state().name === name);
        return handle === undefined ? undefined : handle.deadLetters() ?? null;
      },
      modbusBus: (id) => devices.modbusBus(id),
      busIds: () => devices.busIds(),
      fileOfDevice: (id) => devices.fileOfDevice(id),
      mappingFiles: new MappingFiles(() => devices.runningFiles()),
      reload: () => reload(),
    },
  }, logger, options.stateIntervalMs);
  const controller: Controller = new Controller([core, bridges, devices, homeAssistant, metrics, management, listeners], logger, {
    stopDeadlineMs: STOP_DEADLINE_MS,
    stopCapsMs: STOP_CAPS_MS,
  });
  metrics.sources = {
    broker,
    bridges: () => bridges.handles,
    devices: () => devices.deviceStatus(),
    listeners: () => listeners.open,
    notReady: () => (controller.stopped ? 'shutting down' : controller.ready ? undefined : 'starting'),
  };

  await controller.start();
  management.publishState();

  // What the running gateway was started with, as far as a reload changed it.
  let applied: GatewayConfig = config;
  const reload = async (next?: GatewayConfig): Promise<GatewayReloadResult> => {
    const result = await controller.reload(next);
    let restartNeeded: string[] = [];
    if (next) {
      const changed = changedPaths(applied, next);
      restartNeeded = changed.filter((p) => !RELOADABLE.some((r) => r.test(p)));
      if (restartNeeded.length > 0) logger.warn({ settings: restartNeeded }, `restart needed for: ${restartNeeded.join(', ')}`);
      if (result.errors.length === 0) applied = { ...applied, devices: next.devices };
    }
    restartNeeded.push(...result.restartNeeded);
    return { ok: result.errors.length === 0, errors: result.errors, restartNeeded };
  };

  return {
    broker,
    listeners: listeners.open,
    get metricsServer() { return metrics.server; },
    reload,
    stop: () => controller.stop(),
    status: () => controller.status(),
  };
}
