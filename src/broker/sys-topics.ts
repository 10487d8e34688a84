// $SYS/broker/... status topics, retained and refreshed periodically (as Mosquitto publishes them).

import type { Broker } from './broker.js';
import { VERSION } from '../version.js';

export class SysTopics {
  private timer: NodeJS.Timeout | null = null;
  private readonly client;

  constructor(private readonly broker: Broker, private readonly intervalMs: number) {
    this.client = broker.createLocalClient('$SYS');
  }

  start(): void {
    void this.client.publish('$SYS/broker/version', `fieldgate ${VERSION}`, { retain: true });
    this.publish();
    this.publishStoreState();
    this.timer = setInterval(() => this.broker.guarded('$SYS', () => this.publish()), this.intervalMs);
    this.timer.unref();
  }

  /** "ok", or "failing" while database writes fail (disk full): published at once on each change. */
  publishStoreState(): void {
    const state = this.broker.storeState;
    void this.client.publish('$SYS/broker/store/state', state.writable ? 'ok' : 'failing', { retain: true });
    void this.client.publish('$SYS/broker/store/error', state.error ?? '', { retain: true });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private publish(): void {
    const s = this.broker.snapshotStats();
    const values: Record<string, number> = {
      'uptime': Math.floor((Date.now() - s.startedAt) / 1000),
      'clients/connected': s.clientsConnected,
      'clients/maximum': s.clientsMaximum,
      'clients/total': s.sessions,
      'messages/received': s.messagesReceived,
      'messages/sent': s.messagesSent,
      'messages/dropped': s.messagesDropped,
      'subscriptions/count': s.subscriptions,
      'retained messages/count': s.retainedMessages,
      'store/messages/count': s.queuedMessages,
    };
    for (const [name, value] of Object.entries(values)) {
      const payload = name === 'uptime' ? `${value} seconds` : String(value);
      void this.client.publish(`$SYS/broker/${name}`, payload, { retain: true });
    }
  }
}
