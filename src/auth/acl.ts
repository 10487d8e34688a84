// Mosquitto ACL files:
//   # comment
//   topic [read|write|readwrite|deny] <topic>     before any "user" line: for anonymous clients
//   user <name>                                    following "topic" lines are that user's
//   pattern [read|write|readwrite|deny] <topic>   every client, anywhere in the file; %c = client id, %u = username
// Access defaults to readwrite. A "deny" entry wins over any grant.
import { readFileSync } from 'node:fs';
import type { AuthorizeHook, ClientIdentity } from '../broker/types.js';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

export interface AclRule {
  access: AclAccess;
  /** Topic filter as written (patterns still contain %c / %u). */
  topic: string;
  /** 1-based line in the file. */
  line: number;
}

export interface AclRules {
  anonymous: AclRule[];
  users: Map<string, AclRule[]>;
  patterns: AclRule[];
}

export class AclFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(line === undefined ? `${file}: ${problem}` : `${file}:${line}: ${problem}`);
    this.name = 'AclFileError';
  }
}

const accessWords = new Set<AclAccess>(['read', 'write', 'readwrite', 'deny']);

/** Why a topic filter is invalid under MQTT rules, or undefined when it is fine. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'the topic is empty';
  if (filter.includes('\u0000')) return 'the topic contains a NUL character';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return `"#" must be a whole level and the last one (in "${filter}")`;
    }
    if (level.includes('+') && level !== '+') return `"+" must be a whole level (in "${filter}")`;
  }
  return undefined;
}

/** Parses ACL text; throws AclFileError naming the first bad line. */
export function parseAcl(text: string, file = 'ACL file'): AclRules {
  const rules: AclRules = { anonymous: [], users: new Map(), patterns: [] };
  let currentUser: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    const trimmed = lines[index]!.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const keyword = trimmed.split(/\s+/, 1)[0]!;
    const rest = trimmed.slice(keyword.length).trim();
    if (keyword === 'user') {
      if (rest === '') throw new AclFileError(file, line, '"user" needs a name: user <name>');
      currentUser = rest;
      if (!rules.users.has(rest)) rules.users.set(rest, []);
      continue;
    }
    if (keyword !== 'topic' && keyword !== 'pattern') {
      throw new AclFileError(file, line, `unknown keyword "${keyword}" (expected "user", "topic" or "pattern"; comments start with "#")`);
    }
    if (rest === '') throw new AclFileError(file, line, `"${keyword}" needs a topic: ${keyword} [read|write|readwrite|deny] <topic>`);
    const first = rest.split(/\s+/, 1)[0]!;
    let access: AclAccess = 'readwrite';
    let topic = rest;
    if (accessWords.has(first as AclAccess)) {
      access = first as AclAccess;
      topic = rest.slice(first.length).trim();
      if (topic === '') throw new AclFileError(file, line, `"${keyword} ${first}" needs a topic after the access type`);
    } else if (/\s/.test(rest)) {
      // Two words and the first is no access type: Mosquitto refuses this too ("topic reed a/b").
      throw new AclFileError(file, line, `unknown access type "${first}" (expected read, write, readwrite or deny)`);
    }
    const problem = topicFilterProblem(topic);
    if (problem) throw new AclFileError(file, line, problem);
    const rule: AclRule = { access, topic, line };
    if (keyword === 'pattern') rules.patterns.push(rule);
    else if (currentUser === undefined) rules.anonymous.push(rule);
    else rules.users.get(currentUser)!.push(rule);
  }
  return rules;
}

export function readAclFile(file: string): AclRules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AclFileError(file, undefined, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseAcl(text, file);
}

// ---- topic matching (MQTT 3.1.1 §4.7 / 5.0 §4.7) ----

function isWildcard(level: string): boolean {
  return level === '+' || level === '#';
}

/** Does `filter` match the concrete `topic`? Wildcards in the first level do not match "$…" topics. */
export function filterMatchesTopic(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && isWildcard(f[0]!)) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // also matches the parent level ("a/#" matches "a")
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Does `outer` match every topic that `inner` matches? (Is a subscription to `inner` within `outer`?) */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  if (n[0]!.startsWith('$') && isWildcard(o[0]!)) return false;
  for (let i = 0; i < o.length; i++) {
    if (o[i] === '#') return true;
    if (i >= n.length) return false;
    if (n[i] === '#') return false; // only "#" covers "#"
    if (n[i] === '+' && o[i] !== '+') return false;
    if (o[i] !== '+' && o[i] !== n[i]) return false;
  }
  return o.length === n.length;
}

/** Is there at least one topic that both filters match? */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  // A "$…" first level is only matched literally.
  if ((x[0]!.startsWith('$') && isWildcard(y[0]!)) || (y[0]!.startsWith('$') && isWildcard(x[0]!))) return false;
  const length = Math.max(x.length, y.length);
  for (let i = 0; i < length; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return false;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
  return true;
}

/** Strips "$share/<group>/" so the ACL sees the filter that selects the messages. */
function effectiveFilter(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const afterGroup = filter.indexOf('/', '$share/'.length);
  return afterGroup < 0 ? filter : filter.slice(afterGroup + 1);
}

// A client id or username with these could reach outside its own part of the tree through %c / %u.
const unsafeInPattern = /[+#/]/;

type Resolved = { filter: string } | { unsafe: true };

function resolvePattern(rule: AclRule, client: ClientIdentity): Resolved | undefined {
  const usesClientId = rule.topic.includes('%c');
  const usesUsername = rule.topic.includes('%u');
  if (usesUsername && client.username === undefined) return undefined; // does not apply to anonymous clients
  if ((usesClientId && unsafeInPattern.test(client.clientId)) || (usesUsername && unsafeInPattern.test(client.username!))) {
    return { unsafe: true };
  }
  let filter = rule.topic;
  if (usesClientId) filter = filter.split('%c').join(client.clientId);
  if (usesUsername) filter = filter.split('%u').join(client.username!);
  return { filter };
}

function grants(access: AclAccess, wanted: 'read' | 'write'): boolean {
  return access === 'readwrite' || access === wanted;
}

/**
 * How much of a subscription the rules let through:
 * - 'whole': every message it can match may be read (no per-message check needed);
 * - 'partial': some may, some may not: grant it and check each message at delivery (as Mosquitto does);
 * - 'none': no message it matches could ever be read (no read rule reaches it, or it lies inside a deny).
 */
export type SubscriptionAccess = 'whole' | 'partial' | 'none';

/** The filter matching exactly the topics both filters match, or undefined when they share none. */
export function filterIntersection(a: string, b: string): string | undefined {
  if (!filtersOverlap(a, b)) return undefined;
  const x = a.split('/');
  const y = b.split('/');
  const out: string[] = [];
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#') return [...out, ...y.slice(i)].join('/') || '#';
    if (q === '#') return [...out, ...x.slice(i)].join('/') || '#';
    if (p === undefined || q === undefined) return out.join('/');
    out.push(p === '+' ? q : p);
  }
}

interface ApplicableRules {
  grants: string[];
  denies: string[];
  /** A deny pattern would be resolved with a client id or user name that could escape its subtree. */
  unsafe: boolean;
}

/** Evaluates ACL rules for one client, action and topic. A deny that matches always wins over any grant. */
export class AclChecker {
  constructor(readonly rules: AclRules) {}

  /** May this client publish to `topic`? */
  canPublish(client: ClientIdentity, topic: string): boolean {
    return this.check(client, 'write', (filter) => filterMatchesTopic(filter, topic), (filter) => filterMatchesTopic(filter, topic));
  }

  /** May this client receive a message published on `topic`? (The delivery-time check.) */
  canRead(client: ClientIdentity, topic: string): boolean {
    return this.check(client, 'read', (filter) => filterMatchesTopic(filter, topic), (filter) => filterMatchesTopic(filter, topic));
  }

  /** Is a subscription to `filter` granted? (Its messages may still be checked one by one: see subscriptionAccess.) */
  canSubscribe(client: ClientIdentity, filter: string): boolean {
    return this.subscriptionAccess(client, filter) !== 'none';
  }

  subscriptionAccess(client: ClientIdentity, filter: string): SubscriptionAccess {
    const wanted = effectiveFilter(filter);
    const { grants: readGrants, denies, unsafe } = this.applicable(client, 'read');
    if (unsafe || denies.some((deny) => filterCovers(deny, wanted))) return 'none';
    const overlapsDeny = denies.some((deny) => filtersOverlap(deny, wanted));
    if (!overlapsDeny && readGrants.some((grant) => filterCovers(grant, wanted))) return 'whole';
    // Some grant must reach a part of the filter that no single deny swallows whole.
    for (const grant of readGrants) {
      const reach = filterIntersection(grant, wanted);
      if (reach !== undefined && !denies.some((deny) => filterCovers(deny, reach))) return 'partial';
    }
    return 'none';
  }

  /** The rules that concern this client and action, with %c / %u resolved. */
  private applicable(client: ClientIdentity, wanted: 'read' | 'write'): ApplicableRules {
    const result: ApplicableRules = { grants: [], denies: [], unsafe: false };
    const own = client.username === undefined ? this.rules.anonymous : (this.rules.users.get(client.username) ?? []);
    for (const rule of own) {
      if (rule.access === 'deny') result.denies.push(rule.topic);
      else if (grants(rule.access, wanted)) result.grants.push(rule.topic);
    }
    for (const rule of this.rules.patterns) {
      const resolved = resolvePattern(rule, client);
      if (!resolved) continue;
      if ('unsafe' in resolved) {
        if (rule.access === 'deny') result.unsafe = true;
      } else if (rule.access === 'deny') result.denies.push(resolved.filter);
      else if (grants(rule.access, wanted)) result.grants.push(resolved.filter);
    }
    return result;
  }

  private check(client: ClientIdentity, wanted: 'read' | 'write', grantMatches: (filter: string) => boolean, denyMatches: (filter: string) => boolean): boolean {
    const own = client.username === undefined ? this.rules.anonymous : (this.rules.users.get(client.username) ?? []);
    let granted = false;
    for (const rule of own) {
      if (rule.access === 'deny') {
        if (denyMatches(rule.topic)) return false;
      } else if (!granted && grants(rule.access, wanted) && grantMatches(rule.topic)) {
        granted = true;
      }
    }
    for (const rule of this.rules.patterns) {
      const resolved = resolvePattern(rule, client);
      if (!resolved) continue;
      if (rule.access === 'deny') {
        if ('unsafe' in resolved || denyMatches(resolved.filter)) return false;
      } else if (!granted && 'filter' in resolved && grants(rule.access, wanted) && grantMatches(resolved.filter)) {
        granted = true;
      }
    }
    return granted;
  }
}

/** The broker's answer for a subscription: true (no per-message check), 'filter' (check each message at delivery) or false. */
export function subscribeDecision(checker: AclChecker, client: ClientIdentity, filter: string): boolean | 'filter' {
  const access = checker.subscriptionAccess(client, filter);
  return access === 'whole' ? true : access === 'partial' ? 'filter' : false;
}

/**
 * An AuthorizeHook enforcing the rules: 'publish' needs write access, 'subscribe' is granted when
 * some message could be read through it, 'read' (at delivery) needs read access to the topic.
 */
export function createAclAuthorizer(rules: AclRules): AuthorizeHook {
  const checker = new AclChecker(rules);
  return (client, action, topic) => {
    if (action === 'publish') return checker.canPublish(client, topic);
    if (action === 'read') return checker.canRead(client, topic);
    return subscribeDecision(checker, client, topic);
  };
}
