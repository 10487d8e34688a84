// The management API (request/response and state topics over the broker, src/management/): started
// after the broker core and the parts it reports on, before the listeners, so the first socket client
// can already ask.
import type { Broker } from '../broker/broker.js';
import { ManagementServer } from '../management/server.js';
import { StatePublisher } from '../management/state.js';
import { managementTopics, type ManagementTopics } from '../management/topics.js';
import type { ManagementSources } from '../management/actions.js';
import type { Logger } from '../log.js';
import type { Part } from './part.js';
import type { History } from '../management/history.js';

export class ManagementPart implements Part {
  readonly name = 'management';
  readonly topics: ManagementTopics;
  private readonly server: ManagementServer;
  private readonly state: StatePublisher;
  private readonly log: Logger;
  private readonly history: History | undefined;

  constructor(broker: Broker, sources: ManagementSources, logger: Logger, stateIntervalMs?: number) {
    this.history = sources.console?.history;
    const log = this.log = logger.child({ part: 'management' });
    this.topics = managementTopics(sources.gatewayId);
    this.server = new ManagementServer(broker, this.topics, sources, log);
    this.state = new StatePublisher(broker.createLocalClient(`fieldgate-state-${sources.gatewayId}`), this.topics, sources, log, stateIntervalMs);
  }

  async start(): Promise<void> {
    this.server.start();
    this.state.start();
    this.history?.start();
    this.log.info(`management API: requests on ${this.topics.requestPrefix}<action>, state on ${this.topics.base}/state/#`);
  }

  /** Once the listeners are open: state/info names them. */
  publishState(): void {
    this.state.tick();
  }

  async stop(): Promise<void> {
    this.history?.stop();
    this.state.stop();
    this.server.stop();
  }

  status() {
    return { state: 'running' as const, detail: `requests on ${this.topics.requests}, ${this.server.requestsHandled} answered; state on ${this.topics.base}/state/…` };
  }
}
