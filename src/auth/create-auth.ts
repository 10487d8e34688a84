// The broker's authentication and authorization hooks from a Mosquitto password file and ACL file,
// reloadable on SIGHUP without dropping the rules in force when a new file is bad.
import type { AuthenticateHook, AuthorizeHook } from '../broker/types.js';
import type { Logger } from '../log.js';
import { AclChecker, readAclFile, subscribeDecision, type AclRules } from './acl.js';
import { checkCredentials, readPasswordFile, type PasswordEntry } from './password-file.js';

export interface AuthOptions {
  /** Mosquitto-format password file. Without it, clients that send a username are treated as anonymous ones. */
  passwordFile?: string;
  /** Mosquitto-format ACL file. Without it, every authenticated client may publish and subscribe anywhere. */
  aclFile?: string;
  /** Accept clients without a username (and, without a password file, any username). */
  allowAnonymous: boolean;
  logger?: Logger;
}

export type ReloadResult = { ok: true } | { ok: false; errors: string[] };

export interface Auth {
  authenticate: AuthenticateHook;
  authorize: AuthorizeHook;
  /**
   * Re-reads both files. All or nothing: if either is bad, the rules in force stay and the
   * errors are logged and returned.
   */
  reload(): ReloadResult;
  /** Number of users and ACL rules in force, for the start-up log line. */
  summary(): { users: number; aclRules: number };
}

interface Loaded {
  users?: Map<string, PasswordEntry>;
  acl?: AclChecker;
}

function load(options: AuthOptions): { loaded: Loaded; errors: string[] } {
  const errors: string[] = [];
  const loaded: Loaded = {};
  if (options.passwordFile !== undefined) {
    try {
      loaded.users = readPasswordFile(options.passwordFile);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (options.aclFile !== undefined) {
    try {
      loaded.acl = new AclChecker(readAclFile(options.aclFile));
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { loaded, errors };
}

function countRules(rules: AclRules): number {
  let n = rules.anonymous.length + rules.patterns.length;
  for (const list of rules.users.values()) n += list.length;
  return n;
}

/** Builds the hooks; throws (with every problem) when a configured file is missing or bad at start. */
export function createAuth(options: AuthOptions): Auth {
  const first = load(options);
  if (first.errors.length > 0) throw new Error(first.errors.join('\n'));
  let current = first.loaded;

  const authenticate: AuthenticateHook = (info) => {
    if (info.certificateUser !== undefined) {
      // The TLS layer verified a client certificate; its name is the username.
      return info.username === undefined || info.username === info.certificateUser;
    }
    if (info.username === undefined) return options.allowAnonymous;
    const users = current.users;
    if (!users) return options.allowAnonymous;
    if (info.password === undefined) return false;
    return checkCredentials(users, info.username, info.password);
  };

  const authorize: AuthorizeHook = (client, action, topic) => {
    if (client.local) return true; // device adapters and the bridge are part of the gateway
    const acl = current.acl;
    if (!acl) return true;
    if (action === 'publish') return acl.canPublish(client, topic);
    if (action === 'read') return acl.canRead(client, topic);
    return subscribeDecision(acl, client, topic);
  };

  return {
    authenticate,
    authorize,
    reload() {
      const next = load(options);
      if (next.errors.length > 0) {
        options.logger?.error({ errors: next.errors }, 'auth reload rejected; the previous password file and ACL stay in force');
        return { ok: false, errors: next.errors };
      }
      current = next.loaded;
      options.logger?.info(summaryOf(current), 'auth files reloaded');
      return { ok: true };
    },
    summary: () => summaryOf(current),
  };
}

function summaryOf(loaded: Loaded): { users: number; aclRules: number } {
  return { users: loaded.users?.size ?? 0, aclRules: loaded.acl ? countRules(loaded.acl.rules) : 0 };
}
