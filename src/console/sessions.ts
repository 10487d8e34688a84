// Console logins: session ids (random, in an HttpOnly SameSite=Strict cookie) and the failed-login
// limit per address. Both expire lazily, when looked at: no timer runs while nobody logs in.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface ConsoleSession {
  id: string;
  user: string;
  /** For the logout form (the session cookie alone must not be enough to act). */
  csrf: string;
  expiresAt: number;
}

export const SESSION_LIFETIME_MS = 12 * 3600_000;
/** Beyond this many live sessions the oldest goes: a flood of logins costs bounded memory. */
const MAX_SESSIONS = 256;

export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a.length === 0) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(private readonly now: () => number = Date.now, private readonly lifetimeMs = SESSION_LIFETIME_MS) {}

  create(user: string): ConsoleSession {
    const session = { id: randomToken(), user, csrf: randomToken(), expiresAt: this.now() + this.lifetimeMs };
    this.sessions.set(session.id, session);
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return session;
  }

  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

export interface LoginLimit {
  /** Failed attempts from one address within `windowMs` before it is refused without checking. */
  maxFailures: number;
  windowMs: number;
}

export const DEFAULT_LOGIN_LIMIT: LoginLimit = { maxFailures: 5, windowMs: 60_000 };
const MAX_TRACKED_ADDRESSES = 4096;

/** Failed logins per address in a sliding window (as fail2ban would count them). */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limit: LoginLimit = DEFAULT_LOGIN_LIMIT, private readonly now: () => number = Date.now) {}

  /** Milliseconds until `address` may try again, or 0 when it may now. */
  retryAfterMs(address: string): number {
    const recent = this.recent(address);
    if (recent.length < this.limit.maxFailures) return 0;
    return Math.max(1, recent[recent.length - this.limit.maxFailures]! + this.limit.windowMs - this.now());
  }

  failed(address: string): void {
    const recent = this.recent(address);
    recent.push(this.now());
    this.failures.delete(address);
    this.failures.set(address, recent.slice(-this.limit.maxFailures));
    while (this.failures.size > MAX_TRACKED_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }

  private recent(address: string): number[] {
    const since = this.now() - this.limit.windowMs;
    return (this.failures.get(address) ?? []).filter((t) => t > since);
  }
}
