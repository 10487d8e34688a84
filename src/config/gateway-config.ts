// The gateway config file (JSON): broker, listeners, auth, device mappings, bridges, metrics.
// Every error names the file, the JSON path, what was expected and what was found.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { bridgeListSchema } from '../bridge/config.js';
import { closestKey } from '../devices/mapping-errors.js';
import { describeJsonError, parseJsonText } from './json-text.js';

const port = z.number().int().min(0).max(65535);

export const brokerSectionSchema = z.strictObject({
  host: z.string().default('127.0.0.1').describe('Address of the plain MQTT listener; 127.0.0.1 keeps it on this machine.'),
  port: port.default(1883),
  dataDir: z.string().default('./data').describe('Where fieldgate.db lives (sessions, queues, retained messages, bridge outbox).'),
  durability: z.enum(['full', 'normal', 'off']).default('full')
    .describe('full: a PUBACK means the message survives a power cut; normal: survives a crash of the process; off: left to the OS.'),
  commitWindowMs: z.number().int().min(0).max(1000).default(2),
  connectTimeoutMs: z.number().int().positive().default(10_000),
  maxKeepAlive: z.number().int().min(0).max(65535).default(0),
  receiveMaximum: z.number().int().min(1).max(65535).default(1024),
  maximumPacketSize: z.number().int().min(64).max(268_435_455).default(1024 * 1024),
  topicAliasMaximum: z.number().int().min(0).max(65535).default(64),
  maxTopicAliasBytes: z.number().int().min(0).default(16 * 1024)
    .describe("Bytes of topic names one v5 client may keep set as Topic Aliases; past it the client is disconnected (0x97 Quota exceeded)"),
  maxInflightMessages: z.number().int().min(1).max(65535).default(100).describe('QoS 1/2 messages in flight towards one client (also capped by its Receive Maximum)'),
  maxQueuedMessages: z.number().int().positive().default(100_000),
  maxQueuedBytes: z.number().int().positive().default(64 * 1024 * 1024),
  queuePolicy: z.enum(['drop-oldest', 'drop-newest', 'refuse']).default('drop-oldest'),
  queueQos0: z.boolean().default(false),
  maxConnections: z.number().int().positive().default(10_000),
  maxBufferedBytes: z.number().int().min(64 * 1024).default(4 * 1024 * 1024)
    .describe('Output bytes buffered per client; past it QoS 0 messages to that client are dropped (counted) and QoS 1/2 wait in its session queue'),
  maxBufferedBytesTotal: z.number().int().min(64 * 1024).default(16 * 1024 * 1024)
    .describe('Output bytes buffered by all clients together; past it each client may hold only 64 KiB (many clients that read nothing cost a bounded total)'),
  stalledReaderTimeoutMs: z.number().int().positive().default(60_000)
    .describe('A client that reads nothing (its socket does not drain) for this long is disconnected; a persistent session keeps its QoS 1/2 messages'),
  maxPreConnectBytes: z.number().int().min(64).max(268_435_455).default(64 * 1024)
    .describe('Largest packet accepted from a socket before its CONNECT is accepted (the CONNECT itself included)'),
  maxSubscriptionsPerClient: z.number().int().positive().default(1000),
  maxRetainedMessages: z.number().int().positive().default(10_000).describe('Retained topics at most; a retained PUBLISH to a new topic past it is refused (v5: 0x97)'),
  maxRetainedBytes: z.number().int().positive().default(32 * 1024 * 1024).describe('Payload + topic bytes over all retained messages'),
  maxPersistentSessions: z.number().int().positive().default(1000).describe('A CONNECT that would create one more persistent session is refused (v5 0x97, 3.1.1 0x03)'),
  persistentSessionExpiry: z.number().int().min(1).max(0xffffffff).default(7 * 24 * 3600)
    .describe('Seconds a 3.1.1 persistent session (cleanSession=0) lives after its client goes; 4294967295 = never'),
  maxSessionExpiry: z.number().int().min(0).max(0xffffffff).default(7 * 24 * 3600)
    .describe("Cap in seconds on a v5 client's Session Expiry Interval (told in CONNACK); 4294967295 = no cap"),
  sysIntervalSeconds: z.number().min(0).default(10),
  retainedWriteIntervalSeconds: z.number().min(0).max(86_400).default(300)
    .describe('Retained device readings (and other QoS 0 retained messages) are written to SQLite at most once per this interval, the last value per topic; 0 writes each at once. A power cut may bring back a value up to this old until the device publishes again.'),
});

const tlsFilesSchema = z.strictObject({
  cert: z.string().describe('PEM certificate file'),
  key: z.string().describe('PEM private key file'),
  ca: z.string().optional().describe('PEM CA file for client certificates'),
  requireClientCertificate: z.boolean().default(false),
  /** Use the client certificate's subject CN as the user name (as Mosquitto's use_identity_as_username). */
  useIdentityAsUsername: z.boolean().default(false),
});

export const listenerSchema = z.strictObject({
  type: z.enum(['mqtt', 'mqtts', 'ws', 'wss']),
  host: z.string().default('127.0.0.1'),
  port,
  path: z.string().default('/mqtt').describe('WebSocket path'),
  tls: tlsFilesSchema.optional(),
  allowAnonymous: z.boolean().optional().describe('Default: true on loopback addresses, false elsewhere.'),
}).superRefine((l, ctx) => {
  if ((l.type === 'mqtts' || l.type === 'wss') && !l.tls) {
    ctx.addIssue({ code: 'custom', path: ['tls'], input: undefined, message: `a ${l.type} listener needs "tls": { "cert": "...", "key": "..." } (got none)` });
  }
});

const homeAssistantSchema = z.strictObject({
  _comment: z.string().optional(),
  discovery: z.boolean().default(false).describe('Announce every device point to Home Assistant (MQTT discovery): retained configs under <prefix>/…/config, published again when Home Assistant sends "online" on <prefix>/status'),
  prefix: z
    .string()
    .regex(/^[^#+\u0000]+$/, 'no "+", "#" or NUL')
    .refine((s) => !s.startsWith('/') && !s.endsWith('/') && !s.includes('//'), 'no leading, trailing or double "/"')
    .default('homeassistant')
    .describe("Home Assistant's discovery prefix (its MQTT integration's default: homeassistant)"),
}).describe('Home Assistant MQTT discovery');

export const gatewayConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  description: z.string().optional(),
  _comment: z.string().optional().describe('JSON has no comments: put notes here'),
  // No default in the schema: a generated JSON Schema must not carry the host name of the machine that wrote it.
  gatewayId: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "-" or "."').optional().describe("Default: this machine's host name"),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    format: z.enum(['auto', 'json', 'text']).default('auto')
      .describe('auto: readable lines on a terminal, text with syslog priorities under journald, JSON elsewhere; json: always JSON lines (log shippers); text: always text'),
  }).default({ level: 'info', format: 'auto' }),
  broker: brokerSectionSchema.default(() => brokerSectionSchema.parse({})),
  listeners: z.array(listenerSchema).default([]),
  auth: z.strictObject({
    passwordFile: z.string().optional().describe('Mosquitto password file (mosquitto_passwd or fieldgate passwd)'),
    aclFile: z.string().optional().describe('Mosquitto ACL file'),
    allowAnonymous: z.boolean().optional().describe('For listeners without their own allowAnonymous. Default: true on loopback addresses, false elsewhere.'),
  }).default({}),
  devices: z.array(z.string()).default([]).describe('Device-mapping files, relative to this config file'),
  demo: z.boolean().default(false).describe('Start the built-in simulated energy meter and its mapping'),
  bridges: bridgeListSchema.default([]),
  metrics: z.strictObject({ host: z.string().default('127.0.0.1'), port: port.default(9883) }).optional(),
  homeAssistant: homeAssistantSchema.default(() => homeAssistantSchema.parse({})),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;

export class ConfigError extends Error {
  constructor(readonly errors: string[], readonly warnings: string[] = []) {
    super(errors.join('\n'));
  }
}

function defaultGatewayId(): string {
  return os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-') || 'fieldgate';
}

/** The built-in configuration `fieldgate run` uses without --config: loopback broker, ./data, the demo meter, Home Assistant discovery. */
export function embeddedDefaultConfig(): GatewayConfig {
  // Discovery on: harmless without Home Assistant, and with it the demo meter appears there by itself.
  const config = gatewayConfigSchema.parse({ demo: true, gatewayId: defaultGatewayId(), homeAssistant: { discovery: true } });
  config.broker.dataDir = path.resolve(config.broker.dataDir);
  return config;
}

/** Where and under which gateway id Home Assistant discovery announces the devices (the run and `check` agree). */
export function homeAssistantDiscoveryOptions(config: GatewayConfig): { prefix: string; gatewayId: string } {
  return { prefix: config.homeAssistant.prefix, gatewayId: config.gatewayId ?? defaultGatewayId() };
}

/** Parses a config object; paths in it are resolved against `baseDir`. Throws ConfigError listing every problem. */
export function parseGatewayConfig(input: unknown, source: string, baseDir: string): GatewayConfig {
  const result = gatewayConfigSchema.safeParse(input, { reportInput: true });
  if (!result.success) throw new ConfigError(result.error.issues.flatMap((issue) => formatIssue(source, issue).split('\n')));
  return resolvePaths(result.data, baseDir);
}

/**
 * For `check` on an invalid config: the errors, and a config made of the parts that are valid (the
 * broken values left out, so their defaults apply), on which the checks of the files it names, the
 * ports and the device mappings still run. Never used to run the gateway. `salvaged` is undefined
 * when nothing usable is left (the top level itself is wrong).
 */
export function parseGatewayConfigPartly(input: unknown, source: string, baseDir: string): { errors: string[]; salvaged?: GatewayConfig } {
  const first = gatewayConfigSchema.safeParse(input, { reportInput: true });
  if (first.success) return { errors: [], salvaged: resolvePaths(first.data, baseDir) };
  const errors = first.error.issues.flatMap((issue) => formatIssue(source, issue).split('\n'));
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { errors };
  const copy = structuredClone(input) as Record<string, unknown>;
  const tried = new Set<string>();
  let issues = first.error.issues;
  for (let round = 0; round < 50; round++) {
    for (const issue of issues) {
      const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [[...issue.path]];
      for (let at of paths) {
        // An array element is not left out on its own (the indexes in later messages would move): the whole list is.
        const arrayAt = at.findIndex((segment) => typeof segment === 'number');
        if (arrayAt >= 0) at = at.slice(0, arrayAt);
        while (at.length > 0 && tried.has(JSON.stringify(at))) at = at.slice(0, -1);
        if (at.length === 0) return { errors };
        tried.add(JSON.stringify(at));
        removeAt(copy, at);
      }
    }
    const next = gatewayConfigSchema.safeParse(copy);
    if (next.success) return { errors, salvaged: resolvePaths(next.data, baseDir) };
    issues = next.error.issues;
  }
  return { errors };
}

function removeAt(root: Record<string, unknown>, at: PropertyKey[]): void {
  let node: unknown = root;
  for (const segment of at.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  if (typeof node === 'object' && node !== null) delete (node as Record<PropertyKey, unknown>)[at.at(-1)!];
}

function resolvePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  config.gatewayId ??= defaultGatewayId();
  const resolve = (p: string) => path.resolve(baseDir, p);
  config.broker.dataDir = resolve(config.broker.dataDir);
  config.devices = config.devices.map(resolve);
  if (config.auth.passwordFile) config.auth.passwordFile = resolve(config.auth.passwordFile);
  if (config.auth.aclFile) config.auth.aclFile = resolve(config.auth.aclFile);
  for (const listener of config.listeners) {
    if (listener.tls) {
      listener.tls.cert = resolve(listener.tls.cert);
      listener.tls.key = resolve(listener.tls.key);
      if (listener.tls.ca) listener.tls.ca = resolve(listener.tls.ca);
    }
  }
  for (const bridge of config.bridges) {
    if (bridge.tls) {
      if (bridge.tls.ca) bridge.tls.ca = resolve(bridge.tls.ca);
      if (bridge.tls.cert) bridge.tls.cert = resolve(bridge.tls.cert);
      if (bridge.tls.key) bridge.tls.key = resolve(bridge.tls.key);
    }
  }
  return config;
}

export function loadGatewayConfig(file: string): GatewayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  return parseGatewayConfig(parseConfigJson(file, text), file, path.dirname(path.resolve(file)));
}

/** The config file's JSON; a syntax error names the line and column. */
export function parseConfigJson(file: string, text: string): unknown {
  const parsed = parseJsonText(text);
  if (!parsed.ok) throw new ConfigError([`${file}: ${describeJsonError(parsed)}`]);
  return parsed.value;
}

/** Like loadGatewayConfig, for `check`: every schema error plus the valid rest (see parseGatewayConfigPartly). */
export function loadGatewayConfigPartly(file: string): { errors: string[]; salvaged?: GatewayConfig } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return { errors: [`${file}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`] };
  }
  try {
    return parseGatewayConfigPartly(parseConfigJson(file, text), file, path.dirname(path.resolve(file)));
  } catch (error) {
    if (error instanceof ConfigError) return { errors: error.errors };
    throw error;
  }
}

function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out || '(top level)';
}

function formatIssue(source: string, issue: z.core.$ZodIssue): string {
  const where = `${source}: ${formatPath(issue.path)}`;
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)})` : '';
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((k) => {
      const hint = closestKey(k, known);
      return `${where}: unknown key "${k}": ${hint ? `did you mean "${hint}"?` : 'remove or correct the spelling'}`;
    }).join('\n');
  }
  if (issue.code === 'invalid_value') return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
  if (issue.code === 'invalid_type') return `${where}: expected ${issue.expected}${got}`;
  return `${where}: ${issue.message}${got}`;
}

let jsonSchemaCache: Record<string, unknown> | undefined;

/** The keys the config allows at a JSON path (for "did you mean"), from its JSON Schema. */
function knownKeysAt(at: readonly PropertyKey[]): string[] {
  jsonSchemaCache ??= z.toJSONSchema(gatewayConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  let nodes: Array<Record<string, unknown>> = [jsonSchemaCache];
  const expand = (list: Array<Record<string, unknown>>) => list.flatMap((n) => [n, ...(['anyOf', 'oneOf', 'allOf'] as const).flatMap((k) => (Array.isArray(n[k]) ? (n[k] as Array<Record<string, unknown>>) : []))]);
  for (const segment of at) {
    nodes = expand(nodes).flatMap((n) => {
      if (typeof segment === 'number') return n.items && typeof n.items === 'object' ? [n.items as Record<string, unknown>] : [];
      const child = (n.properties as Record<string, Record<string, unknown>> | undefined)?.[String(segment)];
      return child ? [child] : [];
    });
  }
  return [...new Set(expand(nodes).flatMap((n) => Object.keys((n.properties as object | undefined) ?? {})))];
}
