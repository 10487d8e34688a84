// `fieldgate check` and the start of `fieldgate run`: the config, every device mapping it names and
// every file it points at (TLS, password, ACL), with all problems reported at once.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { aclFileProblems, passwordFileProblems } from '../auth/file-problems.js';
import { writeDemoMapping } from '../demo/demo-mapping.js';
import { loadDeviceMappings, type DeviceMapping } from '../devices/index.js';
import { ConfigError, embeddedDefaultConfig, loadGatewayConfigPartly, type GatewayConfig } from './gateway-config.js';
import { parseJsonText } from './json-text.js';

export interface ConfigCheck {
  config: GatewayConfig;
  /** The device mappings the config names (not the demo's, which is written at start). */
  mapping: DeviceMapping | null;
  /** What will not stop the gateway but may be a mistake (a serial adapter that is not plugged in). */
  warnings: string[];
}

/**
 * Loads `file` (or the embedded default) and checks everything it refers to. Throws one ConfigError
 * listing every problem: when the config itself is invalid, its valid parts are still checked (the
 * files they name, ports, device mappings), so the user sees all errors in one go.
 */
export function checkGatewayConfig(file: string | undefined): ConfigCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  let config: GatewayConfig;
  if (file === undefined) {
    config = embeddedDefaultConfig();
  } else {
    const loaded = loadGatewayConfigPartly(file);
    errors.push(...loaded.errors);
    if (!loaded.salvaged) throw new ConfigError([...errors, ...mappingErrorsOf(rawDeviceFiles(file))]);
    config = loaded.salvaged;
    // A broken "devices" list was left out of the salvaged config: check the files it names anyway.
    if (errors.length > 0 && config.devices.length === 0) config = { ...config, devices: rawDeviceFiles(file) };
  }

  let mapping: DeviceMapping | null = null;
  if (config.devices.length > 0) {
    const result = loadDeviceMappings(config.devices);
    if (result.ok) mapping = result.mapping;
    else errors.push(...result.errors);
    if (config.demo) errors.push(...demoConflicts(config.devices));
    if (mapping) warnings.push(...missingSerialPorts(mapping));
  }
  const source = file ?? '(embedded default)';
  if (config.auth.passwordFile !== undefined) {
    for (const problem of passwordFileProblems(config.auth.passwordFile)) errors.push(`${source}: auth.passwordFile: ${problem}`);
  }
  if (config.auth.aclFile !== undefined) {
    for (const problem of aclFileProblems(config.auth.aclFile)) errors.push(`${source}: auth.aclFile: ${problem}`);
  }
  config.listeners.forEach((listener, i) => {
    if (!listener.tls) return;
    const at = `${source}: listeners[${i}].tls`;
    const read = (key: 'cert' | 'key' | 'ca'): Buffer | undefined => {
      const name = listener.tls![key];
      if (name === undefined) return undefined;
      try {
        return fs.readFileSync(name);
      } catch (error) {
        errors.push(`${at}.${key}: cannot read ${name} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
        return undefined;
      }
    };
    const cert = read('cert');
    const key = read('key');
    const ca = read('ca');
    if (cert && key) {
      try {
        tls.createSecureContext({ cert, key, ca });
      } catch (error) {
        errors.push(`${at}: the certificate, key or CA is not usable: ${(error as Error).message} (expected PEM files; the key must match the certificate)`);
      }
    }
    if ((listener.tls.requireClientCertificate || listener.tls.useIdentityAsUsername) && listener.tls.ca === undefined) {
      errors.push(`${at}.ca: client certificates need "ca": the PEM file of the CA that signs them`);
    }
  });
  errors.push(...portClashes(config, source));
  config.bridges.forEach((bridge, i) => {
    for (const key of ['ca', 'cert', 'key'] as const) {
      const name = bridge.tls?.[key];
      if (name === undefined) continue;
      try {
        fs.accessSync(name, fs.constants.R_OK);
      } catch (error) {
        errors.push(`${source}: bridges[${i}].tls.${key}: cannot read ${name} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
    }
  });
  if (errors.length > 0) throw new ConfigError(errors, warnings);
  return { config, mapping, warnings };
}

/** A serial path that does not exist now: run starts and keeps trying to open it (the adapter may come later). */
function missingSerialPorts(mapping: DeviceMapping): string[] {
  const warnings: string[] = [];
  for (const bus of mapping.buses) {
    if (!('path' in bus) || typeof bus.path !== 'string') continue;
    if (fs.existsSync(bus.path)) continue;
    warnings.push(`bus "${bus.id}": ${bus.path} does not exist now; the gateway will start and keep trying to open it (is the adapter plugged in? ls /dev/serial/by-id/)`);
  }
  return warnings;
}

/** Two listeners (or a listener and the metrics endpoint) on one port and overlapping addresses cannot both start. */
function portClashes(config: GatewayConfig, source: string): string[] {
  const sockets = [
    { where: 'broker.port', host: config.broker.host, port: config.broker.port },
    ...config.listeners.map((l, i) => ({ where: `listeners[${i}].port`, host: l.host, port: l.port })),
    ...(config.metrics ? [{ where: 'metrics.port', host: config.metrics.host, port: config.metrics.port }] : []),
  ].filter((s) => s.port !== 0);
  const wildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  const errors: string[] = [];
  sockets.forEach((socket, i) => {
    const earlier = sockets.slice(0, i).find((o) => o.port === socket.port && (o.host === socket.host || wildcard(o.host) || wildcard(socket.host)));
    if (earlier) errors.push(`${source}: ${socket.where}: port ${socket.port} on ${socket.host} is already taken by ${earlier.where} (on ${earlier.host}): choose another port`);
  });
  return errors;
}

/** The demo mapping runs next to the user's: ids, buses and topics must not collide with it. */
function demoConflicts(files: string[]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-check-'));
  try {
    const demoFile = writeDemoMapping(dir, 1);
    const result = loadDeviceMappings([demoFile, ...files]);
    // Only the clashes with the demo: the mappings' own errors are reported by the check without it.
    const demo = 'the demo mapping ("demo": true)';
    return result.ok ? [] : result.errors.filter((e) => e.includes(demoFile)).map((e) => e.split(demoFile).join(demo));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The config's "devices" entries when they are usable despite other errors, resolved like the loader does. */
function rawDeviceFiles(file: string): string[] {
  try {
    const parsed = parseJsonText(fs.readFileSync(file, 'utf8'));
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) return [];
    const raw = parsed.value as { devices?: unknown };
    if (!Array.isArray(raw.devices)) return [];
    const dir = path.dirname(path.resolve(file));
    return raw.devices.filter((d): d is string => typeof d === 'string').map((d) => path.resolve(dir, d));
  } catch {
    return [];
  }
}

function mappingErrorsOf(files: string[]): string[] {
  if (files.length === 0) return [];
  const result = loadDeviceMappings(files);
  return result.ok ? [] : result.errors;
}

