// The upstream bridges and their outboxes. Started before any listener opens: a bridge's durable
// subscription must exist before the first message a client could publish, or that message is
// acknowledged and never forwarded.
import type { BridgeHandle } from '../bridge/index.js';
import type { Broker } from '../broker/broker.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { Logger } from '../log.js';
import type { Part } from './part.js';

export class BridgesPart implements Part {
  readonly name = 'bridges';
  readonly handles: BridgeHandle[] = [];

  constructor(private readonly config: GatewayConfig, private readonly broker: Broker, private readonly logger: Logger) {}

  async start(): Promise<void> {
    if (this.config.bridges.length === 0) return;
    // MQTT.js costs ~10 MiB of RSS: loaded only for a gateway with a bridge.
    const { startBridge } = await import('../bridge/index.js');
    for (const bridgeConfig of this.config.bridges) this.handles.push(await startBridge(this.broker, bridgeConfig, this.logger));
  }

  async stop(deadlineMs: number): Promise<void> {
    // Clients and devices are gone by now: commit what they sent (it is in the outbox) before saying
    // goodbye to a remote that may not answer.
    this.broker.store.flush();
    await Promise.all(this.handles.map((bridge) => bridge.stop(deadlineMs)));
  }

  status() {
    if (this.handles.length === 0) return { state: 'running' as const, detail: 'no bridges configured' };
    const states = this.handles.map((h) => h.state());
    const detail = states
      .map((s) => `${s.name}: ${s.connected ? 'connected' : `not connected${s.lastError ? ` (${s.lastError})` : ''}`}, outbox ${s.outboxDepth}${s.outboxError ? ` (${s.outboxError})` : ''}`)
      .join('; ');
    const degraded = states.some((s) => !s.connected || s.outboxError !== null);
    return { state: degraded ? ('degraded' as const) : ('running' as const), detail };
  }
}
