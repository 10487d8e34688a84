// State topics: fieldgate/<id>/state/info (retained: it changes only at a start or when a listener
// opens) and state/parts, state/devices, state/bridges (not retained). Every retained publish is a
// row written to SQLite (the retained store), and a device's last poll changes every few seconds: the
// fast-changing three are published without retain, only when they changed, checked every
// `intervalMs`; a client that just subscribed asks for them with the parts/devices/bridges actions.
import type { LocalClient } from '../broker/types.js';
import type { Logger } from '../log.js';
import { bridgesOf, devicesOf, infoOf, type ManagementSources } from './actions.js';
import type { ManagementTopics } from './topics.js';

export const DEFAULT_STATE_INTERVAL_MS = 5000;

export class StatePublisher {
  private timer: NodeJS.Timeout | null = null;
  private readonly last = new Map<string, string>();
  /** State publishes made since the start. */
  published = 0;

  constructor(
    private readonly client: LocalClient,
    private readonly topics: ManagementTopics,
    private readonly sources: ManagementSources,
    private readonly logger: Logger,
    private readonly intervalMs = DEFAULT_STATE_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Publishes each state whose content changed since its last publish. */
  tick(): void {
    try {
      this.offer('info', infoOf(this.sources), true);
      this.offer('parts', this.sources.parts(), false);
      this.offer('devices', devicesOf(this.sources), false);
      this.offer('bridges', bridgesOf(this.sources), false);
    } catch (error) {
      this.logger.error({ err: error }, 'management state not published');
    }
  }

  private offer(name: 'info' | 'parts' | 'devices' | 'bridges', value: unknown, retain: boolean): void {
    const payload = JSON.stringify(value);
    if (this.last.get(name) === payload) return;
    this.last.set(name, payload);
    this.published++;
    this.client.publish(this.topics.state(name), payload, { qos: 0, retain, properties: { contentType: 'application/json' } }).catch((error: Error) => {
      this.logger.warn({ err: error, name }, 'management state not published');
    });
  }
}
