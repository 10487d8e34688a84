// The database and the broker core: persistent sessions, retained messages and queues are restored
// here, before anything else runs, and the database is committed and closed here, after everything else.
import { createAuth, type Auth } from '../auth/create-auth.js';
import { Broker } from '../broker/broker.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { Logger } from '../log.js';
import type { Part, ReloadResult } from './part.js';

export class CorePart implements Part {
  readonly name = 'core';
  readonly broker: Broker;
  private readonly auth: Auth | undefined;

  constructor(private readonly config: GatewayConfig, logger: Logger) {
    if (config.auth.passwordFile !== undefined || config.auth.aclFile !== undefined) {
      this.auth = createAuth({
        passwordFile: config.auth.passwordFile, aclFile: config.auth.aclFile,
        // Each listener decides whether clients without a user name get in (anonymousAllowed, checked by
        // the broker before this hook): the hook itself must not refuse them on a loopback listener.
        allowAnonymous: true, logger,
      });
    }
    const b = config.broker;
    this.broker = new Broker({
      dataDir: b.dataDir, logger: logger.child({ part: 'broker' }), durability: b.durability, commitWindowMs: b.commitWindowMs,
      connectTimeoutMs: b.connectTimeoutMs, maxKeepAlive: b.maxKeepAlive, receiveMaximum: b.receiveMaximum,
      maximumPacketSize: b.maximumPacketSize, topicAliasMaximum: b.topicAliasMaximum, maxTopicAliasBytes: b.maxTopicAliasBytes, maxInflightMessages: b.maxInflightMessages, maxQueuedMessages: b.maxQueuedMessages,
      maxQueuedBytes: b.maxQueuedBytes, queuePolicy: b.queuePolicy, queueQos0: b.queueQos0, sysIntervalMs: b.sysIntervalSeconds * 1000,
      retainedWriteIntervalMs: b.retainedWriteIntervalSeconds * 1000,
      maxBufferedBytes: b.maxBufferedBytes, maxBufferedBytesTotal: b.maxBufferedBytesTotal, stalledReaderTimeoutMs: b.stalledReaderTimeoutMs, maxPreConnectBytes: b.maxPreConnectBytes,
      maxSubscriptionsPerClient: b.maxSubscriptionsPerClient, maxRetainedMessages: b.maxRetainedMessages, maxRetainedBytes: b.maxRetainedBytes,
      maxPersistentSessions: b.maxPersistentSessions, persistentSessionExpiry: b.persistentSessionExpiry, maxSessionExpiry: b.maxSessionExpiry,
      // Without a password file there is nothing to check a user name against: leave authentication to
      // the listeners (a listener that takes no anonymous clients then refuses every user name too).
      authenticate: config.auth.passwordFile !== undefined ? this.auth?.authenticate : undefined, authorize: this.auth?.authorize,
    });
  }

  private started = false;

  async start(): Promise<void> {
    await this.broker.start();
    this.started = true;
  }

  /** Last: commits what the other parts left (device goodbyes, outbox deletions) and closes the database. */
  async stop(): Promise<void> {
    // A database that could not be opened has nothing to close.
    if (this.started) await this.broker.close();
  }

  async reload(): Promise<ReloadResult> {
    const errors: string[] = [];
    if (this.auth) {
      const result = this.auth.reload();
      if (!result.ok) errors.push(...result.errors);
      // Subscriptions granted under the old rules are decided again (delivery-time ACL checks).
      else this.broker.refreshReadAccess();
    }
    return { errors, restartNeeded: [] };
  }

  status() {
    const { dataDir, durability } = this.config.broker;
    const stats = this.broker.snapshotStats();
    return {
      state: 'running' as const,
      detail: `database in ${dataDir} (durability ${durability}); ${stats.sessions} sessions, ${stats.clientsConnected} clients connected`,
    };
  }
}
