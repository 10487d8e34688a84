// A topic trie of subscriptions with a bounded cache of match results per topic name.
// Gateways publish to a stable set of topics, so most PUBLISHes are answered from the cache
// without walking the trie; any subscribe/unsubscribe clears it.

import type { MessageHandler, QoS } from './types.js';

export interface Subscriber {
  readonly clientId: string;
  /** Scratch mark used by the router to fold overlapping subscriptions into one delivery. */
  routeMark: number;
}

export interface Subscription<S extends Subscriber = Subscriber> {
  /** The filter as the client gave it, including any `$share/group/` prefix. */
  readonly filter: string;
  /** The filter used for matching (without the share prefix). */
  readonly matchFilter: string;
  readonly share: string | null;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId?: number;
  readonly subscriber: S;
  /** Set for in-process subscriptions: called instead of sending a packet. */
  readonly handler?: MessageHandler;
  readonly durable?: boolean;
  /** Durable subscriptions: where holdable messages go instead of the transaction (see SubscribeOptions). */
  readonly onHoldable?: MessageHandler;
}

class TrieNode<S extends Subscriber> {
  readonly children = new Map<string, TrieNode<S>>();
  readonly subscriptions: Subscription<S>[] = [];
}

const MATCH_CACHE_LIMIT = 10_000;

export class SubscriptionTree<S extends Subscriber = Subscriber> {
  private readonly root = new TrieNode<S>();
  private readonly cache = new Map<string, Subscription<S>[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds or replaces the subscriber's subscription with the same filter; returns the replaced one. */
  add(subscription: Subscription<S>): Subscription<S> | undefined {
    const node = this.nodeFor(subscription.matchFilter, true)!;
    const list = node.subscriptions;
    this.cache.clear();
    for (let i = 0; i < list.length; i++) {
      const existing = list[i];
      if (existing.subscriber === subscription.subscriber && existing.filter === subscription.filter) {
        list[i] = subscription;
        return existing;
      }
    }
    list.push(subscription);
    this.count++;
    return undefined;
  }

  remove(subscriber: S, filter: string, matchFilter: string): Subscription<S> | undefined {
    const path = matchFilter.split('/');
    const trail: TrieNode<S>[] = [this.root];
    let node: TrieNode<S> | undefined = this.root;
    for (const level of path) {
      node = node.children.get(level);
      if (!node) return undefined;
      trail.push(node);
    }
    const list = node.subscriptions;
    const index = list.findIndex((s) => s.subscriber === subscriber && s.filter === filter);
    if (index < 0) return undefined;
    const [removed] = list.splice(index, 1);
    this.count--;
    this.cache.clear();
    for (let i = path.length; i > 0; i--) {
      const child = trail[i];
      if (child.subscriptions.length > 0 || child.children.size > 0) break;
      trail[i - 1].children.delete(path[i - 1]);
    }
    return removed;
  }

  /** Every subscription matching a topic name. The returned array is shared: do not modify it. */
  match(topic: string): readonly Subscription<S>[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const result: Subscription<S>[] = [];
    const levels = topic.split('/');
    const dollar = topic.charCodeAt(0) === 0x24;
    this.collect(this.root, levels, 0, dollar, result);
    if (this.cache.size >= MATCH_CACHE_LIMIT) this.cache.clear();
    this.cache.set(topic, result);
    return result;
  }

  private collect(node: TrieNode<S>, levels: string[], depth: number, dollar: boolean, out: Subscription<S>[]): void {
    // '$' topics are not matched by a wildcard in the first level [MQTT-4.7.2-1].
    const wildcardsAllowed = depth > 0 || !dollar;
    if (wildcardsAllowed) {
      const hash = node.children.get('#');
      if (hash) pushAll(out, hash.subscriptions);
    }
    if (depth === levels.length) {
      pushAll(out, node.subscriptions);
      return;
    }
    const exact = node.children.get(levels[depth]);
    if (exact) this.collect(exact, levels, depth + 1, dollar, out);
    if (wildcardsAllowed) {
      const plus = node.children.get('+');
      if (plus) this.collect(plus, levels, depth + 1, dollar, out);
    }
  }

  private nodeFor(matchFilter: string, create: boolean): TrieNode<S> | undefined {
    let node = this.root;
    for (const level of matchFilter.split('/')) {
      let child = node.children.get(level);
      if (!child) {
        if (!create) return undefined;
        child = new TrieNode<S>();
        node.children.set(level, child);
      }
      node = child;
    }
    return node;
  }
}

function pushAll<T>(out: T[], items: T[]): void {
  for (let i = 0; i < items.length; i++) out.push(items[i]);
}
