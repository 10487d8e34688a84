// What `fieldgate check` prints about a valid config: who each listener lets in, every point with
// its wire address and decoding (--points), and the Home Assistant entities `run` will announce.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GatewayConfig, ListenerConfig } from '../config/gateway-config.js';
import { homeAssistantDiscoveryOptions } from '../config/gateway-config.js';
import { writeDemoMapping } from '../demo/demo-mapping.js';
import { buildDiscoveryConfigs, loadDeviceMappings, type DeviceMapping } from '../devices/index.js';
import { lineDeviceTopicPrefix } from '../devices/line/schema.js';
import { anonymousAllowed, listenerConfigs } from '../gateway.js';
import { consoleLoginRequired } from '../gateway/console.js';
import { describeMapping } from '../devices/index.js';

/** Who gets in on a listener, as the broker decides it (handlers/connect.ts and auth/create-auth.ts). */
export function listenerAccess(config: GatewayConfig, listener: ListenerConfig): string {
  const passwords = config.auth.passwordFile !== undefined;
  if (anonymousAllowed(config, listener)) return passwords ? 'anonymous allowed; user names checked against the password file' : 'anonymous allowed';
  const tls = listener.tls;
  if (tls?.useIdentityAsUsername) {
    if (tls.requireClientCertificate) return "client certificate required; its CN is the user name";
    return passwords
      ? "a client certificate (its CN is the user name) or a user name and password"
      : "a client certificate required (its CN is the user name): no auth.passwordFile, so clients without one are refused";
  }
  const certificate = tls?.requireClientCertificate ? 'client certificate and ' : '';
  if (passwords) return `${certificate}user name and password required`;
  return 'refuses every client: not on loopback and no auth.passwordFile (add one, or "allowAnonymous": true)';
}

/**
 * The entities `run` announces: the gateway's own "Devices online" sensor, every point of the
 * mappings and, with "demo": true, the demo meter's (the same mapping the run writes at start).
 */
export function discoveryEntities(config: GatewayConfig, mapping: DeviceMapping | null): { total: number; gateway: number; mappings: number; demo: number } {
  const options = homeAssistantDiscoveryOptions(config);
  const mappings = mapping ? buildDiscoveryConfigs(mapping, options).length : 0;
  const demoMapping = config.demo ? loadDemoMapping() : null;
  const demo = demoMapping ? buildDiscoveryConfigs(demoMapping, options).length : 0;
  return { total: 1 + mappings + demo, gateway: 1, mappings, demo };
}

/** The demo meter's mapping as `run` writes and loads it at start (its port a placeholder here). */
export function loadDemoMapping(): DeviceMapping | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-check-demo-'));
  try {
    const result = loadDeviceMappings([writeDemoMapping(dir, 1)]);
    return result.ok ? result.mapping : null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function describeDiscovery(config: GatewayConfig, mapping: DeviceMapping | null): string {
  const { gatewayId } = homeAssistantDiscoveryOptions(config);
  const n = discoveryEntities(config, mapping);
  const parts = ['1 for the gateway ("Devices online")'];
  if (n.mappings > 0) parts.push(`${n.mappings} from the device mappings`);
  if (n.demo > 0) parts.push(`${n.demo} of the demo meter`);
  return `Home Assistant discovery under ${config.homeAssistant.prefix}/ (gateway id ${gatewayId}): ${n.total} entities (${parts.join(', ')})`;
}

/** Devices the config runs: those of its mappings, and the demo meter with "demo": true. */
export function checkedDeviceCount(config: GatewayConfig, mapping: DeviceMapping | null): number {
  return (mapping ? mapping.modbusDevices.length + mapping.lineDevices.length : 0) + (config.demo ? 1 : 0);
}

/**
 * What `fieldgate check` prints under "<file>: OK" (and the console's Config page shows): listeners and
 * who they let in, data, auth files, the demo, the devices, bridges, metrics, console and discovery.
 */
export function describeCheckedConfig(config: GatewayConfig, mapping: DeviceMapping | null, options: { points?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const l of listenerConfigs(config)) {
    out.push(`  listener ${l.type}://${l.host}:${l.port}${l.type.startsWith('ws') ? l.path : ''} (${listenerAccess(config, l)})`);
  }
  out.push(`  data in ${config.broker.dataDir} (durability ${config.broker.durability})`);
  if (config.auth.passwordFile) out.push(`  password file ${config.auth.passwordFile}`);
  if (config.auth.aclFile) out.push(`  ACL file ${config.auth.aclFile}`);
  if (config.demo) out.push('  demo: simulated SDM120 energy meter under fieldgate/demo-meter/');
  if (mapping) for (const line of describeMapping(mapping)) out.push(`  ${line}`);
  if (mapping && options.points) out.push(...describePoints(mapping));
  if (config.demo && options.points) {
    const demo = loadDemoMapping();
    if (demo) out.push(...describePoints(demo));
  }
  for (const b of config.bridges) out.push(`  bridge ${b.name} → ${b.url}: ${b.rules.map((r) => `${r.direction} ${r.localPrefix}${r.filter}`).join(', ')}`);
  if (config.metrics) out.push(`  metrics on http://${config.metrics.host}:${config.metrics.port}/metrics, health on /healthz`);
  if (config.console.enabled) out.push(`  web console on http://${config.console.host}:${config.console.port}/ (${consoleLoginRequired(config) ? 'login: a user of the password file' : 'no login: loopback only'})`);
  if (config.homeAssistant.discovery) out.push(`  ${describeDiscovery(config, mapping)}`);
  return out;
}

/** Rows of cells as lines with every column as wide as its widest cell. */
export function alignColumns(rows: string[][], indent: string): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length))).join('  ').trimEnd());
}

function conversion(p: { scale?: number; offset?: number; decimals?: number; unit?: string }): string {
  const parts: string[] = [];
  if (p.scale !== undefined && p.scale !== 1) parts.push(`×${p.scale}`);
  if (p.offset !== undefined && p.offset !== 0) parts.push(`${p.offset > 0 ? '+' : ''}${p.offset}`);
  if (p.decimals !== undefined) parts.push(`${p.decimals} decimals`);
  if (p.unit) parts.push(p.unit);
  return parts.join(' ');
}

/** `check --points`: one line per point or field, in aligned columns. */
export function describePoints(mapping: DeviceMapping): string[] {
  const out: string[] = [];
  for (const d of mapping.modbusDevices) {
    out.push(`  points of ${d.id} (0-based wire addresses):`);
    out.push(...alignColumns(d.points.map((p) => [
      p.name,
      p.count > 1 && p.type !== 'string' ? `${p.type} ${p.byteOrder}` : p.type === 'string' ? `string(${p.count})` : p.type,
      `${p.table} ${p.address}${p.bit !== undefined ? ` bit ${p.bit}` : ''}`,
      conversion(p),
      `every ${p.pollIntervalMs} ms`,
      `→ ${p.topic}${p.writable ? ` (write: ${p.topic}/set)` : ''}`,
    ]), '    '));
  }
  for (const d of mapping.lineDevices) {
    out.push(`  fields of ${d.id}:`);
    const prefix = lineDeviceTopicPrefix(d);
    out.push(...alignColumns(Object.entries(d.fields).map(([name, field]) => [
      name,
      field.type,
      conversion(field),
      `→ ${prefix}/${field.topic ?? name}`,
    ]), '    '));
    for (const name of Object.keys(d.commands ?? {})) out.push(`    ${name}: command on ${prefix}/${name}/set`);
  }
  return out;
}
