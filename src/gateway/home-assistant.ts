// Home Assistant MQTT discovery: announces the running devices, or clears what an earlier run
// announced when discovery is off. Re-announces after a device reload (the devices part reloads first).
import type { Broker } from '../broker/broker.js';
import { homeAssistantDiscoveryOptions, type GatewayConfig } from '../config/gateway-config.js';
import { clearHomeAssistantDiscovery, startHomeAssistantDiscovery, type DeviceMapping, type HomeAssistantDiscovery } from '../devices/index.js';
import type { Logger } from '../log.js';
import type { Part, ReloadResult } from './part.js';

export class HomeAssistantPart implements Part {
  readonly name = 'home-assistant';
  private discovery: HomeAssistantDiscovery | null = null;
  private readonly logger: Logger;

  constructor(
    private readonly config: GatewayConfig,
    private readonly broker: Broker,
    logger: Logger,
    private readonly mappings: () => DeviceMapping[],
  ) {
    this.logger = logger.child({ part: 'home-assistant' });
  }

  async start(): Promise<void> {
    const options = homeAssistantDiscoveryOptions(this.config);
    const client = this.broker.createLocalClient('fieldgate-home-assistant');
    if (this.config.homeAssistant.discovery) {
      this.discovery = await startHomeAssistantDiscovery(client, options, this.logger);
      await this.announce();
    } else {
      await clearHomeAssistantDiscovery(client, options, this.logger);
      client.close();
    }
  }

  async stop(): Promise<void> {
    this.discovery?.stop();
    this.discovery = null;
  }

  async reload(): Promise<ReloadResult> {
    await this.announce();
    return { errors: [], restartNeeded: [] };
  }

  /** The discovery configs announced now (none while discovery is off). */
  announced(): { prefix: string; configs: Array<{ topic: string; payload: string }> } {
    return { prefix: this.config.homeAssistant.prefix, configs: this.discovery?.configs() ?? [] };
  }

  status() {
    if (!this.config.homeAssistant.discovery) return { state: 'stopped' as const, detail: 'discovery off in the config' };
    return { state: 'running' as const, detail: `${this.discovery?.topics().length ?? 0} discovery configs announced under ${this.config.homeAssistant.prefix}/` };
  }

  private async announce(): Promise<void> {
    if (!this.discovery) return;
    const running = this.mappings();
    await this.discovery
      .update({ modbusDevices: running.flatMap((m) => m.modbusDevices), lineDevices: running.flatMap((m) => m.lineDevices) })
      .catch((err: unknown) => this.logger.error({ err }, 'Home Assistant discovery configs could not be published'));
  }
}
