// Delivery-time read checks (as Mosquitto does with ACL files): a subscription the authorize hook
// answered 'filter' is granted, and every message routed to its session is checked against the
// subscriber's read access. Answers are cached per session and topic, so the router pays one map
// lookup per delivery for such sessions, and nothing at all for sessions whose subscriptions
// the rules cover entirely.

import type { Delivery } from './delivery.js';
import type { Session } from './session.js';
import type { Subscriber, Subscription } from './subscription-tree.js';
import type { AuthorizeHook, ClientIdentity } from './types.js';

/** Topics remembered per session; past this the cache starts over (a client reading unbounded topic names). */
const READ_CACHE_LIMIT = 4096;

export class ReadFilter {
  private readonly cache = new Map<string, boolean>();

  constructor(
    readonly identity: ClientIdentity,
    private readonly hook: AuthorizeHook,
    private readonly onError: (error: unknown) => void,
  ) {}

  allows(topic: string): boolean {
    const known = this.cache.get(topic);
    if (known !== undefined) return known;
    let allowed = false;
    try {
      allowed = this.hook(this.identity, 'read', topic) === true;
    } catch (error) {
      this.onError(error);
    }
    if (this.cache.size >= READ_CACHE_LIMIT) this.cache.clear();
    this.cache.set(topic, allowed);
    return allowed;
  }
}

export interface ReadAccessHost {
  readonly options: { authorize?: AuthorizeHook };
  onAuthorizeError(error: unknown): void;
  /** Some session's read checks were turned on, off or re-decided. */
  readAccessChanged(): void;
}

/**
 * The router's view: per topic, the matching subscriptions whose session may read it. The tree
 * hands out one array per topic name (until a subscribe or unsubscribe), so the filtered list is
 * remembered per array and thrown away when any session's read checks change: a fan-out to many
 * partly-readable sessions costs one WeakMap lookup per message, not a check per delivery.
 */
export class ReadableMatches {
  /** False until some session needs read checks: until then route() does not look here at all. */
  active = false;
  private epoch = 0;
  private cache = new WeakMap<readonly Subscription<Subscriber>[], { epoch: number; readable: readonly Subscription<Subscriber>[] }>();

  changed(): void {
    this.active = true;
    this.epoch++;
  }

  filter<S extends Subscriber>(matches: readonly Subscription<S>[], topic: string): readonly Subscription<S>[] {
    const hit = this.cache.get(matches);
    if (hit !== undefined && hit.epoch === this.epoch) return hit.readable as readonly Subscription<S>[];
    let readable: readonly Subscription<S>[] = matches;
    for (let i = 0; i < matches.length; i++) {
      if (!readableBy(matches[i]!, topic)) {
        readable = matches.filter((sub) => readableBy(sub, topic));
        break;
      }
    }
    this.cache.set(matches, { epoch: this.epoch, readable });
    return readable;
  }
}

/** In-process subscribers (device adapters, the bridge) are part of the gateway: no read checks. */
export function readableBy(sub: Subscription<Subscriber>, topic: string): boolean {
  return sub.handler !== undefined || (sub.subscriber as unknown as Session).readFilter?.allows(topic) !== false;
}

/** The hook's answer for one subscription of a connected client: 'whole', 'filter' or 'denied'. */
export function subscriptionDecision(host: ReadAccessHost, identity: ClientIdentity, filter: string): 'whole' | 'filter' | 'denied' {
  const hook = host.options.authorize;
  if (!hook) return 'whole';
  try {
    const answer = hook(identity, 'subscribe', filter);
    return answer === true ? 'whole' : answer === 'filter' ? 'filter' : 'denied';
  } catch (error) {
    host.onAuthorizeError(error);
    return 'denied';
  }
}

/** After a granted 'filter' subscription: from now on this session's messages are checked one by one. */
export function requireReadChecks(host: ReadAccessHost, session: Session, identity: ClientIdentity): void {
  if (session.readFilter !== null) return;
  session.readFilter = new ReadFilter(identity, host.options.authorize!, (e) => host.onAuthorizeError(e));
  host.readAccessChanged();
}

/**
 * Re-decides a session's read checks for the identity now behind it (a connect, possibly under
 * another user name, or new rules): each subscription is asked again; anything not wholly
 * readable turns the per-message check on. Returns whether it is on.
 */
export function recomputeReadChecks(host: ReadAccessHost, session: Session, identity: ClientIdentity): boolean {
  if (session.readFilter !== null) {
    session.readFilter = null;
    host.readAccessChanged();
  }
  if (!host.options.authorize) return false;
  for (const sub of session.subscriptions.values()) {
    if (subscriptionDecision(host, identity, sub.filter) !== 'whole') {
      requireReadChecks(host, session, identity);
      return true;
    }
  }
  return false;
}

/**
 * Removes queued (not yet sent) messages the session may no longer read, as Mosquitto does on
 * connect: they may have been queued for another user name, before a restart, or under old rules.
 * Returns the removed deliveries so the caller can release their storage.
 */
export function unreadableQueued(session: Session): Delivery[] {
  const filter = session.readFilter;
  if (filter === null || session.queue.length === 0) return [];
  const removed: Delivery[] = [];
  const kept: Delivery[] = [];
  for (const delivery of session.queue) (filter.allows(delivery.message.topic) ? kept : removed).push(delivery);
  if (removed.length === 0) return removed;
  session.queue = kept;
  for (const delivery of removed) session.queuedBytes -= delivery.message.payload.length + delivery.message.topic.length;
  return removed;
}
