// In-process clients (device adapters, the bridge): they publish and subscribe through the same
// routing, retained store and authorization as socket clients, without a socket.

import type { Broker } from './broker.js';
import { propertiesProblem } from './message-check.js';
import type { Subscriber } from './subscription-tree.js';
import { isValidTopicFilter, isValidTopicName, parseSharedFilter } from './topics.js';
import type { ClientIdentity, LocalClient, Message, MessageHandler, PublishOptions, SubscribeOptions } from './types.js';

export class LocalEndpoint implements LocalClient, Subscriber {
  routeMark = 0;
  private readonly filters = new Set<string>();
  private readonly identity: ClientIdentity;

  constructor(private readonly broker: Broker, readonly id: string) {
    this.identity = { clientId: id, address: 'local', local: true };
  }

  get clientId(): string {
    return this.id;
  }

  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    if (!isValidTopicName(topic)) return Promise.reject(new Error(`invalid topic name "${topic}": no wildcards, not empty`));
    if (!this.broker.authorize(this.identity, 'publish', topic)) return Promise.reject(new Error(`publish to "${topic}" denied`));
    // The bridge passes on what a cloud broker sent: nothing the broker could not encode may be routed.
    const problem = options.properties === undefined ? null : propertiesProblem(options.properties);
    if (problem !== null) return Promise.reject(new Error(`invalid message properties: ${problem}`));
    const expiry = options.properties?.messageExpiryInterval;
    const qos = options.qos ?? 0;
    const holdable = options.holdable ?? qos === 0;
    const message: Message = {
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: options.retain ?? false,
      properties: options.properties,
      expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : undefined,
      origin: this.id,
      holdable,
    };
    this.broker.route(message);
    if (message.qos === 0 || holdable) return Promise.resolve();
    return new Promise((resolve) => this.broker.store.afterCommit(resolve));
  }

  subscribe(filter: string, handler: MessageHandler, options: SubscribeOptions = {}): void {
    const shared = parseSharedFilter(filter);
    if (shared === 'invalid' || (shared === null && !isValidTopicFilter(filter))) throw new Error(`invalid topic filter "${filter}"`);
    if (!this.broker.authorize(this.identity, 'subscribe', filter)) throw new Error(`subscription to "${filter}" denied`);
    this.filters.add(filter);
    this.broker.addSubscription(this, {
      filter, qos: options.qos ?? 0, noLocal: options.noLocal ?? false, retainAsPublished: true, retainHandling: 0,
      handler, durable: options.durable ?? false, onHoldable: options.durable === true ? options.onHoldable : undefined,
    });
    const retained = this.broker.retainedFor(filter);
    if (retained.length > 0) {
      const onHoldable = options.durable === true ? options.onHoldable : undefined;
      queueMicrotask(() => {
        for (const message of retained) {
          try {
            // A retained message is already in the retained store (or coalesced there): nobody waits for it again.
            if (onHoldable !== undefined) onHoldable(message);
            else handler(message);
          } catch (error) {
            this.broker.logger.error({ err: error, topic: message.topic }, 'in-process subscriber failed');
          }
        }
      });
    }
  }

  unsubscribe(filter: string): void {
    if (this.filters.delete(filter)) this.broker.removeSubscription(this, filter);
  }

  close(): void {
    for (const filter of this.filters) this.broker.removeSubscription(this, filter);
    this.filters.clear();
  }
}
