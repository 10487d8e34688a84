// The MQTT listeners: opened last (everything that must see every message exists by then) and closed
// first (no client publishes, and no PUBACK leaves, once the stop has begun).
import type { Broker } from '../broker/broker.js';
import type { GatewayConfig, ListenerConfig } from '../config/gateway-config.js';
import { isLoopback, openListener, type OpenListener } from '../listeners.js';
import type { Logger } from '../log.js';
import type { Part, ReloadResult } from './part.js';
import type { DeviceMapping } from '../devices/index.js';
import { devicePrefixes, watchCommand } from './watch-command.js';

/** Every listener the config asks for: the broker section's plain MQTT listener first. */
export function listenerConfigs(config: GatewayConfig): ListenerConfig[] {
  const main: ListenerConfig = { type: 'mqtt', host: config.broker.host, port: config.broker.port, path: '/mqtt' };
  return [main, ...config.listeners];
}

/** Anonymous clients are allowed by default only on loopback listeners (as Mosquitto 2 does). */
export function anonymousAllowed(config: GatewayConfig, listener: ListenerConfig): boolean {
  return listener.allowAnonymous ?? config.auth.allowAnonymous ?? isLoopback(listener.host);
}

export class ListenersPart implements Part {
  readonly name = 'listeners';
  readonly open: OpenListener[] = [];

  constructor(
    private readonly config: GatewayConfig,
    private readonly broker: Broker,
    private readonly logger: Logger,
    /** The running device mappings, for the watch hint's topics. */
    private readonly mappings: () => DeviceMapping[] = () => [],
  ) {}

  async start(): Promise<void> {
    const { config, logger } = this;
    for (const listener of listenerConfigs(config)) {
      const open = await openListener(this.broker, listener, anonymousAllowed(config, listener), config.broker.maxConnections);
      this.open.push(open);
      logger.info({ url: open.url, anonymous: open.allowAnonymous }, `MQTT broker listening on ${open.url}`);
      if (!open.allowAnonymous) {
        if (config.auth.passwordFile === undefined) logger.warn(`${open.url}: not on loopback and no auth.passwordFile: every client is refused (add a password file, or "allowAnonymous": true on the listener)`);
        else logger.info(`${open.url}: anonymous clients refused (set "allowAnonymous": true on the listener to allow them)`);
      }
    }
    const prefixes = this.mappings().flatMap(devicePrefixes);
    logger.info(`watch the readings: ${watchCommand(this.open[0]!, config.auth.passwordFile !== undefined, prefixes)}`);
  }

  /** Stops accepting and drops every client at once (v5 clients are told why, 0x8B). */
  async stop(deadlineMs: number): Promise<void> {
    // A listener's close completes only once its connections are gone, which disconnectClients brings about.
    const closed = Promise.all(this.open.map((l) => l.close().catch(() => undefined)));
    this.broker.disconnectClients();
    await Promise.race([closed, new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  async reload(): Promise<ReloadResult> {
    const errors: string[] = [];
    for (const listener of this.open) {
      if (!listener.reloadTls) continue;
      try {
        listener.reloadTls();
        this.logger.info(`${listener.url}: certificate and key reloaded`);
      } catch (error) {
        const message = `${listener.url}: new certificate/key not usable, the old ones stay: ${(error as Error).message}`;
        errors.push(message);
        this.logger.error(message);
      }
    }
    return { errors, restartNeeded: [] };
  }

  status() {
    if (this.open.length === 0) return { state: 'stopped' as const, detail: 'not listening' };
    return { state: 'running' as const, detail: this.open.map((l) => `${l.url}${l.allowAnonymous ? '' : ' (authenticated)'}`).join(', ') };
  }
}
