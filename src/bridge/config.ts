// Configuration of one upstream bridge. The gateway config holds `bridges: z.array(bridgeConfigSchema)`.
import { z } from 'zod';

const topicFilter = z
  .string()
  .min(1, 'must be a non-empty MQTT topic filter, e.g. "sensors/#"')
  .refine((f) => isValidFilter(f), {
    message: 'must be a valid MQTT topic filter: "#" only as the last level, "+" only as a whole level, e.g. "sensors/+/temp" or "sensors/#"',
  });

const topicPrefix = z
  .string()
  .refine((p) => !/[#+\u0000]/.test(p), { message: 'must not contain "#", "+" or NUL; use e.g. "fleet/gw-1/"' })
  .default('');

export const bridgeRuleSchema = z
  .object({
    direction: z.enum(['out', 'in', 'both']).describe('out = local → remote, in = remote → local'),
    /** Topic filter relative to the prefixes: local filter = localPrefix + filter, remote = remotePrefix + filter (as in Mosquitto). */
    filter: topicFilter,
    localPrefix: topicPrefix,
    remotePrefix: topicPrefix,
    /** QoS of the remote subscription and of local publishes for `in`; outbound rows are always sent at QoS 1. */
    qos: z.union([z.literal(0), z.literal(1)]).default(1),
    /** Queue local QoS 0 messages in the outbox too (false: send them only while connected, else drop). */
    queueQos0: z.boolean().default(true),
  })
  .strict();

export const outboxLimitsSchema = z
  .object({
    maxRows: z.number().int().positive().default(1_000_000),
    maxBytes: z.number().int().positive().default(512 * 1024 * 1024),
    maxAgeSeconds: z.number().int().positive().default(7 * 24 * 3600),
    policy: z.enum(['drop-oldest', 'drop-newest']).default('drop-oldest'),
  })
  .strict();

export const holdLimitsSchema = z
  .object({
    /**
     * How long a message nobody waits for (device readings, QoS 0) may wait in memory for the remote's PUBACK before
     * it is written (to the spill log in the data directory, one batch per hold time). 0 writes every message first
     * (to the outbox, as a QoS 1 publisher's). A power cut loses at most
     * the last `ms` of such messages (and, on a kill -9, those in flight on a connection that stopped answering, for at
     * most ackTimeoutSeconds); a SIGTERM loses none. Acknowledged QoS 1/2 messages are never held.
     */
    ms: z.number().int().min(0).max(60_000).default(1000),
    maxMessages: z.number().int().positive().default(10_000),
    maxBytes: z.number().int().positive().default(8 * 1024 * 1024),
  })
  .strict();

/** The reconnect cap: a remote that is back is reached again within this long (plus the connect itself). */
export const DEFAULT_RECONNECT_MAX_MS = 8_000;

const filePath = z.string().min(1, 'must be a file path');

export const bridgeConfigSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -, e.g. "cloud"'),
    url: z
      .string()
      .refine((u) => /^(mqtts?|wss?):\/\/[^/\s]+/.test(u), {
        message: 'must be a URL starting with mqtt://, mqtts://, ws:// or wss://, e.g. "mqtts://cloud.example.com:8883"',
      }),
    clientId: z.string().min(1, 'must be a non-empty client id, e.g. "gw-1"'),
    username: z.string().optional(),
    password: z.string().optional(),
    tls: z
      .object({
        ca: filePath.optional(),
        cert: filePath.optional(),
        key: filePath.optional(),
        rejectUnauthorized: z.boolean().default(true),
        servername: z.string().optional(),
      })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), {
        message: 'cert and key go together: give both for mutual TLS, or neither',
      })
      .optional(),
    keepaliveSeconds: z.number().int().min(0).max(65535).default(60),
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
    cleanSession: z.boolean().default(true),
    /** v5 only. Default: 0 with cleanSession, else 7 days. Always sent explicitly. */
    sessionExpirySeconds: z.number().int().min(0).max(0xffffffff).optional(),
    rules: z.array(bridgeRuleSchema).min(1, 'needs at least one rule, e.g. { "direction": "out", "filter": "sensors/#" }'),
    outbox: outboxLimitsSchema.default(() => outboxLimitsSchema.parse({})),
    hold: holdLimitsSchema.default(() => holdLimitsSchema.parse({})),
    /**
     * Maximum QoS 1 messages sent and not yet deleted from the outbox (so at most this many are sent twice after a
     * crash); the unacknowledged ones are also capped by the remote's v5 Receive Maximum. Deletions are committed
     * (fsync) per half window, so a small window costs drain speed; in-flight payloads are held in memory.
     */
    inflightWindow: z.number().int().min(1).max(65535).default(1024),
    /**
     * Delay between connection attempts: doubling from minMs, capped at maxMs, each one a random point in
     * [cap/2, cap] (a fleet does not reconnect in lockstep). The cap bounds how long the link stays down after
     * the remote is back: the default brings it back within ~8 s whatever the length of the outage.
     */
    reconnect: z
      .object({
        minMs: z.number().int().positive().default(1000),
        maxMs: z.number().int().positive().default(DEFAULT_RECONNECT_MAX_MS),
      })
      .strict()
      .refine((r) => r.minMs <= r.maxMs, { message: 'minMs must not exceed maxMs' })
      .default({ minMs: 1000, maxMs: DEFAULT_RECONNECT_MAX_MS }),
    connectTimeoutMs: z.number().int().positive().default(30_000),
    /** A PUBACK missing this long drops the connection and resends (a stuck remote must not block the queue forever). */
    ackTimeoutSeconds: z.number().positive().default(60),
    /** Optional cap on outbound messages per second. */
    rateLimit: z.object({ messagesPerSecond: z.number().positive() }).strict().optional(),
    /** e.g. "fleet/gw-1/status": retained "online" on connect, last will retained "offline". */
    statusTopic: z
      .string()
      .refine((t) => t.length > 0 && !/[#+\u0000]/.test(t), { message: 'must be a topic name without wildcards, e.g. "fleet/gw-1/status"' })
      .optional(),
    /** How often the richer $SYS counters are republished. */
    statsIntervalSeconds: z.number().positive().default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.tls?.ca !== undefined || c.tls?.cert !== undefined) {
      if (!/^(mqtts|wss):/.test(c.url)) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'TLS files are configured but the URL is not mqtts:// or wss://' });
      }
    }
    if (c.password !== undefined && c.username === undefined) {
      ctx.addIssue({ code: 'custom', path: ['username'], message: 'a password needs a username' });
    }
  });

/** The gateway config's `bridges` array: like z.array(bridgeConfigSchema), plus unique names (they name the outbox tables). */
export const bridgeListSchema = z.array(bridgeConfigSchema).superRefine((bridges, ctx) => {
  const seen = new Map<string, number>();
  bridges.forEach((b, i) => {
    const first = seen.get(b.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate bridge name "${b.name}" (also at [${first}]): each bridge needs its own name` });
    } else seen.set(b.name, i);
  });
});

export type BridgeConfigInput = z.input<typeof bridgeConfigSchema>;
export type BridgeConfig = z.output<typeof bridgeConfigSchema>;
export type BridgeRule = z.output<typeof bridgeRuleSchema>;
export type OutboxLimits = z.output<typeof outboxLimitsSchema>;

/** Parses one bridge config, throwing an Error whose message lists every problem with its JSON path. */
export function parseBridgeConfig(input: unknown, path: (string | number)[] = []): BridgeConfig {
  const result = bridgeConfigSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new Error(formatConfigIssues(result.error, path));
}

export function formatConfigIssues(error: z.ZodError, basePath: (string | number)[] = []): string {
  const lines = error.issues.map((issue) => {
    const path = formatPath([...basePath, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]);
    const secret = issue.path.some((p) => p === 'password' || p === 'key');
    const got = !secret && 'input' in issue && issue.input !== undefined && !/received/.test(issue.message) ? ` (got ${brief(issue.input)})` : '';
    return `  ${path}: ${issue.message}${got}`;
  });
  return `invalid bridge configuration:\n${lines.join('\n')}`;
}

function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function isValidFilter(filter: string): boolean {
  if (filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1;
    return !level.includes('#') && (level === '+' || !level.includes('+'));
  });
}
