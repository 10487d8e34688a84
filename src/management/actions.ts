// What each management action does and answers. Reads come from the running parts; the two actions
// that change something (client/disconnect, session/remove) act on the broker's own objects.
import fs from 'node:fs';
import path from 'node:path';
import type { Broker } from '../broker/broker.js';
import type { BridgeState } from '../bridge/index.js';
import { checkGatewayConfig } from '../config/check.js';
import { checkHosts } from '../config/check-hosts.js';
import { checkedDeviceCount, describeCheckedConfig } from '../cli/check-output.js';
import { ConfigError, type GatewayConfig } from '../config/gateway-config.js';
import type { DeviceStatus } from '../devices/index.js';
import type { PartStatus } from '../gateway/part.js';
import type { OpenListener } from '../listeners.js';
import { VERSION } from '../version.js';
import { requestError, type Action, type RequestBody, type RequestError } from './requests.js';
import { NEVER_EXPIRES } from '../broker/session.js';
import { commissioningHandlers, type CommissioningSources } from './commissioning.js';
import { configHandlers, type ConfigSources } from './config-actions.js';
import { deadLetterHandlers, type DeadLetterSources } from './dead-letter-actions.js';
import { observeHandlers, type ObserveSources } from './observe-actions.js';

export interface ManagementSources {
  config: GatewayConfig;
  gatewayId: string;
  /** The config file the gateway runs (undefined: the embedded default), for `check`. */
  configFile: string | undefined;
  broker: Broker;
  parts(): PartStatus[];
  devices(): DeviceStatus[];
  bridges(): BridgeState[];
  listeners(): OpenListener[];
  /** What the console's actions read and act on (absent in a gateway without them: those actions answer an error). */
  console?: ObserveSources & DeadLetterSources & CommissioningSources & ConfigSources;
}

export type ActionResult = { ok: true; data: unknown } | { ok: false; errors: RequestError[] };

export type Handlers = { [A in Action]: (body: RequestBody<A>, source: string) => ActionResult | Promise<ActionResult> };

const CONSOLE_ACTIONS = [
  'device', 'history', 'logs', 'homeassistant/entities', 'bridge/dead/list', 'bridge/dead/retry', 'bridge/dead/delete',
  'bus/scan', 'bus/read', 'bus/point', 'mapping/get', 'mapping/save',
] as const;

function consoleHandlers(s: ManagementSources): Pick<Handlers, (typeof CONSOLE_ACTIONS)[number]> {
  if (s.console) {
    return { ...observeHandlers(s.console), ...deadLetterHandlers(s.console), ...commissioningHandlers(s.console), ...configHandlers(s.console) };
  }
  const unavailable = (_body: unknown, source: string): ActionResult => ({ ok: false, errors: [requestError(source, '', 'not available in this gateway')] });
  return Object.fromEntries(CONSOLE_ACTIONS.map((a) => [a, unavailable])) as Pick<Handlers, (typeof CONSOLE_ACTIONS)[number]>;
}

const PROTOCOLS: Record<number, string> = { 3: '3.1', 4: '3.1.1', 5: '5.0' };

export function infoOf(s: ManagementSources) {
  return {
    gatewayId: s.gatewayId,
    version: VERSION,
    startedAt: new Date(s.broker.stats.startedAt).toISOString(),
    durability: s.config.broker.durability,
    listeners: s.listeners().map((l) => ({ type: l.type, url: l.url, host: l.host, port: l.port, allowAnonymous: l.allowAnonymous })),
  };
}

export function devicesOf(s: ManagementSources) {
  return s.devices().map((d) => ({
    id: d.id, name: d.name, bus: d.bus, protocol: d.protocol,
    availability: d.online ? 'online' : 'offline',
    lastPollAt: d.lastPollAt ?? null, polls: d.polls, errorCount: d.failedPolls,
    lastError: d.lastError ?? null, pointErrors: d.pointErrors,
  }));
}

export function bridgesOf(s: ManagementSources) {
  return s.bridges().map((b) => ({
    name: b.name, remote: b.remote, state: b.connected ? 'connected' : 'disconnected',
    outboxDepth: b.outboxDepth, outboxBytes: b.outboxBytes, oldestAgeSeconds: b.oldestAgeSeconds,
    sent: b.sent, acked: b.acked, dropped: b.dropped, dead: b.dead, received: b.received,
    lastError: b.lastError, outboxError: b.outboxError,
  }));
}

function clientsOf(broker: Broker) {
  const out = [];
  for (const c of broker.connections) {
    if (!c.connected || c.closing) continue;
    out.push({
      clientId: c.identity.clientId, username: c.identity.username ?? null, listener: c.listener || null, address: c.address,
      protocol: PROTOCOLS[c.protocolVersion] ?? String(c.protocolVersion),
      connectedSince: new Date(c.openedAt).toISOString(),
      subscriptions: c.session?.subscriptions.size ?? 0,
      queued: c.session ? c.session.queue.length + c.session.inflight.size : 0,
    });
  }
  return out;
}

function sessionsOf(broker: Broker) {
  return [...broker.sessions.values()].map((s) => ({
    clientId: s.clientId, connected: s.connection !== null, persistent: s.persistent,
    protocol: PROTOCOLS[s.protocolVersion] ?? String(s.protocolVersion),
    expiryIntervalSeconds: s.expiryInterval === NEVER_EXPIRES ? null : s.expiryInterval,
    disconnectedAt: s.disconnectedAt === null ? null : new Date(s.disconnectedAt).toISOString(),
    subscriptions: s.subscriptions.size, queued: s.queue.length + s.inflight.size,
  }));
}

/**
 * `check` as `fieldgate check` makes it on the running config's file (the embedded default when there is
 * none): its errors and warnings, host names that do not resolve, and the lines it prints — about the
 * running config, so a port given on the command line shows as the gateway uses it — with the devices
 * counted as the gateway runs them (the demo meter included).
 */
async function checkRunningConfig(file: string | undefined, running: GatewayConfig) {
  const source = file ?? '(embedded default)';
  try {
    const { config, mapping, warnings } = checkGatewayConfig(file);
    const hosts = await checkHosts(config, mapping, source);
    const allWarnings = [...warnings, ...hosts.warnings];
    if (hosts.errors.length > 0) return { file: source, valid: false, errors: hosts.errors, warnings: allWarnings };
    return { file: source, valid: true, errors: [] as string[], warnings: allWarnings, devices: checkedDeviceCount(config, mapping), lines: describeCheckedConfig(running, mapping).map((l) => l.trim()) };
  } catch (error) {
    const errors = error instanceof ConfigError ? error.errors : [(error as Error).message];
    return { file: source, valid: false, errors, warnings: error instanceof ConfigError ? error.warnings : [] };
  }
}

/** fieldgate.db with its WAL, for the console's overview (only in the `info` answer: state/info is retained, a changing size would be a row written every few seconds). */
function databaseBytes(dataDir: string): number | null {
  let total = 0;
  let found = false;
  for (const name of ['fieldgate.db', 'fieldgate.db-wal']) {
    try {
      total += fs.statSync(path.join(dataDir, name)).size;
      found = true;
    } catch { /* not there (in memory, or no WAL now) */ }
  }
  return found ? total : null;
}

export function createHandlers(s: ManagementSources): Handlers {
  const { broker } = s;
  return {
    ...consoleHandlers(s),
    info: () => ({ ok: true, data: { ...infoOf(s), uptimeSeconds: Math.round((Date.now() - broker.stats.startedAt) / 1000), databaseBytes: databaseBytes(s.config.broker.dataDir) } }),
    parts: () => ({ ok: true, data: s.parts() }),
    devices: () => ({ ok: true, data: devicesOf(s) }),
    bridges: () => ({ ok: true, data: bridgesOf(s) }),
    clients: () => ({ ok: true, data: clientsOf(broker) }),
    sessions: () => ({ ok: true, data: sessionsOf(broker) }),
    check: async () => ({ ok: true, data: await checkRunningConfig(s.configFile, s.config) }),
    'client/disconnect': (body, source) => {
      const connection = [...broker.connections].find((c) => c.connected && !c.closing && c.identity.clientId === body.clientId);
      if (!connection) return { ok: false, errors: [requestError(source, 'clientId', `no connected client has this id (got ${JSON.stringify(body.clientId)})`)] };
      connection.closeReason = 'disconnected by the management API';
      broker.logger.info({ clientId: body.clientId }, 'client disconnected by a management request');
      // 0x98 Administrative action (MQTT 5.0 §3.14.2.1); a 3.1.1 client just sees its connection close.
      connection.close(0x98, 'disconnected by an administrator');
      return { ok: true, data: { clientId: body.clientId, disconnected: true } };
    },
    'session/remove': (body, source) => {
      const session = broker.sessions.get(body.clientId);
      if (!session) return { ok: false, errors: [requestError(source, 'clientId', `no session has this id (got ${JSON.stringify(body.clientId)})`)] };
      if (session.connection !== null) return { ok: false, errors: [requestError(source, 'clientId', 'the client is connected: its session is in use (disconnect it first, with client/disconnect)')] };
      broker.endSession(session);
      broker.logger.info({ clientId: body.clientId }, 'offline session removed by a management request');
      return { ok: true, data: { clientId: body.clientId, removed: true } };
    },
  };
}
