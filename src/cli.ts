// fieldgate's command line: run, check, probe, passwd, schema.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
import { z } from 'zod';
import { runPasswdCommand } from './auth/passwd-command.js';
import { addOrUpdateUser } from './auth/password-file.js';
import { ConfigError, embeddedDefaultConfig, gatewayConfigSchema, homeAssistantDiscoveryOptions, loadGatewayConfig, type GatewayConfig } from './config/gateway-config.js';
import { checkGatewayConfig } from './config/check.js';
import { describeMapping, deviceMappingJsonSchema, type DeviceMapping } from './devices/index.js';
import { buildDiscoveryConfigs } from './devices/home-assistant/index.js';
import { lineDeviceTopicPrefix } from './devices/line/schema.js';
import { formatProbe, probeRegisters } from './devices/modbus/probe.js';
import type { ModbusBus } from './devices/modbus/schema.js';
import { anonymousAllowed, listenerConfigs, startGateway, type Gateway } from './gateway.js';
import { createLogger, type LogLevel } from './log.js';
import { VERSION } from './version.js';

const HELP = `fieldgate ${VERSION} — MQTT edge gateway: local broker, Modbus/serial device adapters, cloud bridge

Usage:
  fieldgate run [--config FILE] [--host H] [--port N] [--data DIR] [--log-level L]
      Run the gateway. Without --config: broker on 127.0.0.1:1883, data in ./data,
      and a built-in simulated energy meter so readings flow at once. SIGTERM/SIGINT stop
      gracefully; SIGHUP reloads the password file, ACL, TLS certificates and device mappings.
  fieldgate check [--config FILE] [--points]
      Validate the config, every device mapping and every file it names; print what would run
      (with --points: every point and its topic).
  fieldgate probe (--host H [--port 502] | --serial PATH [--baud 9600] [--parity none])
                  [--unit 1] [--table holding|input] --address A [--count 4] [--timeout 1000]
      Read registers once and show them decoded as every type and byte order (addresses are
      0-based wire addresses: data-sheet register 30001 is --table input --address 0).
  fieldgate passwd [-b] FILE USER [PASSWORD]
      Add or update a user in a Mosquitto-format password file ($7$ PBKDF2-SHA512). Asks twice
      without echo; -b takes the password from the command line (visible in the process list).
  fieldgate schema [--out DIR]
      Write JSON Schemas of the gateway config and of device mappings (for editors).
  fieldgate --help | --version

Exit codes: 0 fine, 1 bad configuration or runtime error, 2 usage error.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'run': return run(rest);
    case 'check': return check(rest);
    case 'probe': return probe(rest);
    case 'passwd': return passwd(rest);
    case 'schema': return schema(rest);
    default:
      process.stderr.write(`fieldgate: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

function parse(args: string[], options: ParseArgsOptionsConfig, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

class UsageError extends Error {}

function reportConfigErrors(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`fieldgate: the configuration has ${error.errors.length} error${error.errors.length > 1 ? 's' : ''}:\n`);
    for (const line of error.errors) process.stderr.write(`  ${line}\n`);
    return 1;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`fieldgate: ${error.message}\n(see fieldgate --help)\n`);
    return 2;
  }
  throw error;
}

type RunValues = ReturnType<typeof parse>['values'];

/**
 * The config `run` uses: the file (or the embedded default) with the command line's overrides. At the
 * start every file it names is checked too; on SIGHUP only the gateway config is read again (each part
 * checks its own files and reports their errors itself).
 */
function runConfig(values: RunValues, checkFiles = true): GatewayConfig {
  const file = values.config as string | undefined;
  const config = checkFiles ? checkGatewayConfig(file).config : file === undefined ? embeddedDefaultConfig() : loadGatewayConfig(file);
  if (values.host !== undefined) config.broker.host = values.host as string;
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected a port number 0-65535 (got "${values.port}")`);
    config.broker.port = port;
  }
  if (values.data !== undefined) config.broker.dataDir = path.resolve(values.data as string);
  if (values['log-level'] !== undefined) {
    const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
    if (!levels.includes(values['log-level'] as string)) throw new UsageError(`--log-level: expected one of ${levels.join(', ')} (got "${values['log-level']}")`);
    config.log.level = values['log-level'] as GatewayConfig['log']['level'];
  }
  return config;
}

/**
 * After a stop, the process exits even if something still holds the event loop (a library's timer, a
 * socket that ignored its destroy): systemd's TimeoutStopSec must never be what ends fieldgate.
 */
const EXIT_GRACE_MS = 200;
/** A stop that has not finished by then (a disk that does not answer the commit) gives up. */
const STOP_WATCHDOG_MS = 10_000;

async function run(args: string[]): Promise<number> {
  let config: GatewayConfig;
  let values: RunValues;
  try {
    ({ values } = parse(args, {
      config: { type: 'string', short: 'c' }, host: { type: 'string' }, port: { type: 'string', short: 'p' },
      data: { type: 'string' }, 'log-level': { type: 'string' },
    }));
    config = runConfig(values);
  } catch (error) {
    return reportConfigErrors(error);
  }

  const logger = createLogger(config.log.level as LogLevel);
  logger.info({ version: VERSION, pid: process.pid, gatewayId: config.gatewayId, dataDir: config.broker.dataDir }, `fieldgate ${VERSION} starting`);
  // Signals are handled from the first moment: a stop asked for while starting waits for the start,
  // which never waits for a device or the cloud.
  let gateway: Gateway | undefined;
  let pendingStop: string | undefined;
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const exitSoon = (code: number) => {
    finish(code);
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  };
  const shutdown = (signal: string) => {
    if (stopping) return;
    if (!gateway) {
      pendingStop = signal;
      logger.info(`${signal}: stopping as soon as the start completes`);
      return;
    }
    stopping = true;
    const began = Date.now();
    logger.info(`${signal}: stopping (disconnecting clients, stopping devices, committing the database)`);
    const watchdog = setTimeout(() => {
      logger.error(`the stop did not finish within ${STOP_WATCHDOG_MS / 1000} s; exiting`);
      process.exit(1);
    }, STOP_WATCHDOG_MS);
    watchdog.unref();
    gateway.stop().then(
      () => { clearTimeout(watchdog); logger.info({ ms: Date.now() - began }, 'stopped'); exitSoon(0); },
      (error: unknown) => { clearTimeout(watchdog); logger.error({ err: error }, 'error while stopping'); exitSoon(1); },
    );
  };
  const reload = () => {
    if (!gateway || stopping) {
      logger.info(`SIGHUP while ${stopping ? 'stopping' : 'starting'}: ignored (the files are being read right now)`);
      return;
    }
    logger.info('SIGHUP: reloading the gateway config, password file, ACL, TLS certificates and device mappings');
    let next: GatewayConfig | undefined;
    try {
      next = runConfig(values, false);
    } catch (error) {
      const errors = error instanceof ConfigError ? error.errors : [(error as Error).message];
      logger.error({ errors }, 'the gateway config has errors: its changes are ignored (the other files are reloaded)');
    }
    gateway.reload(next).then(
      (result) => { if (!result.ok) logger.error({ errors: result.errors }, 'reload kept the running configuration'); },
      (error: unknown) => logger.error({ err: error }, 'reload failed'),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', reload);

  try {
    gateway = await startGateway(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) for (const line of error.errors) logger.error(line);
    else logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    return 1;
  }
  if (pendingStop) shutdown(pendingStop);
  return finished;
}

async function check(args: string[]): Promise<number> {
  try {
    const { values } = parse(args, { config: { type: 'string', short: 'c' }, points: { type: 'boolean' } });
    const file = values.config as string | undefined;
    const { config, mapping } = checkGatewayConfig(file);
    const out: string[] = [`${file ?? '(embedded default)'}: OK`];
    for (const l of listenerConfigs(config)) {
      const anonymous = anonymousAllowed(config, l) ? 'anonymous allowed' : 'user name and password required';
      out.push(`  listener ${l.type}://${l.host}:${l.port}${l.type.startsWith('ws') ? l.path : ''} (${anonymous})`);
    }
    out.push(`  data in ${config.broker.dataDir} (durability ${config.broker.durability})`);
    if (config.auth.passwordFile) out.push(`  password file ${config.auth.passwordFile}`);
    if (config.auth.aclFile) out.push(`  ACL file ${config.auth.aclFile}`);
    if (config.demo) out.push('  demo: simulated SDM120 energy meter under fieldgate/demo-meter/');
    if (mapping) for (const line of describeMapping(mapping)) out.push(`  ${line}`);
    if (mapping && values.points) out.push(...describePoints(mapping));
    for (const b of config.bridges) out.push(`  bridge ${b.name} → ${b.url}: ${b.rules.map((r) => `${r.direction} ${r.localPrefix}${r.filter}`).join(', ')}`);
    if (config.metrics) out.push(`  metrics on http://${config.metrics.host}:${config.metrics.port}/metrics, health on /healthz`);
    if (config.homeAssistant.discovery) {
      const discovery = homeAssistantDiscoveryOptions(config);
      const entities = mapping ? buildDiscoveryConfigs(mapping, discovery).length : 0;
      const what = [...(entities > 0 ? [`${entities} ${entities === 1 ? 'entity' : 'entities'} from the device mappings`] : []), ...(config.demo ? ['the demo meter'] : [])];
      out.push(`  Home Assistant discovery under ${config.homeAssistant.prefix}/ (gateway id ${discovery.gatewayId}): ${what.join(' and ') || 'no devices'}`);
    }
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  } catch (error) {
    return reportConfigErrors(error);
  }
}

/** `check --points`: one line per point or field with the topic it is published on. */
function describePoints(mapping: DeviceMapping): string[] {
  const out: string[] = [];
  for (const d of mapping.modbusDevices) {
    out.push(`  points of ${d.id} (0-based wire addresses):`);
    for (const p of d.points) {
      const order = p.count > 1 ? ` ${p.byteOrder}` : '';
      const write = p.writable ? ` (write: ${p.topic}/set)` : '';
      out.push(`    ${p.name.padEnd(20)} ${(p.type + order).padEnd(13)} ${p.table} ${String(p.address).padEnd(6)} every ${p.pollIntervalMs} ms → ${p.topic}${write}`);
    }
  }
  for (const d of mapping.lineDevices) {
    out.push(`  fields of ${d.id}:`);
    for (const name of Object.keys(d.fields)) out.push(`    ${name.padEnd(20)} → ${lineDeviceTopicPrefix(d)}/${name}`);
  }
  return out;
}

function parityOf(text: string | undefined): 'none' | 'even' | 'odd' {
  const parity = text ?? 'none';
  if (parity !== 'none' && parity !== 'even' && parity !== 'odd') throw new UsageError(`--parity: expected none, even or odd (got "${parity}")`);
  return parity;
}

async function probe(args: string[]): Promise<number> {
  try {
    const { values } = parse(args, {
      host: { type: 'string' }, port: { type: 'string' }, serial: { type: 'string' }, baud: { type: 'string' },
      parity: { type: 'string' }, unit: { type: 'string' }, table: { type: 'string' }, address: { type: 'string' },
      count: { type: 'string' }, timeout: { type: 'string' },
    });
    const number = (name: string, fallback?: number): number => {
      const text = values[name] as string | undefined;
      if (text === undefined) {
        if (fallback === undefined) throw new UsageError(`--${name} is required`);
        return fallback;
      }
      const n = Number(text);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: expected a whole number (got "${text}")`);
      return n;
    };
    let bus: ModbusBus;
    if (values.host !== undefined) {
      bus = { id: 'probe', type: 'modbus-tcp', host: values.host as string, port: number('port', 502), interRequestDelayMs: 0 };
    } else if (values.serial !== undefined) {
      bus = {
        id: 'probe', type: 'modbus-rtu', path: values.serial as string, baudRate: number('baud', 9600) as never,
        parity: parityOf(values.parity as string | undefined), dataBits: 8, stopBits: 1, interRequestDelayMs: 0,
      };
    } else {
      throw new UsageError('give --host (Modbus TCP) or --serial (Modbus RTU)');
    }
    const table = (values.table as string | undefined) ?? 'holding';
    if (table !== 'holding' && table !== 'input') throw new UsageError(`--table: expected holding or input (got "${table}")`);
    const result = await probeRegisters({
      bus, unitId: number('unit', 1), table, address: number('address'), count: number('count', 4), timeoutMs: number('timeout', 1000),
    });
    process.stdout.write(formatProbe(result) + '\n');
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return reportConfigErrors(error);
    process.stderr.write(`fieldgate probe: ${(error as Error).message ?? String(error)}\n`);
    return 1;
  }
}

async function passwd(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(args, { batch: { type: 'boolean', short: 'b' } }, true);
    const [file, user, given, ...extra] = positionals;
    if (!file || !user || extra.length > 0) throw new UsageError('usage: fieldgate passwd [-b] FILE USER [PASSWORD]');
    if (!fs.existsSync(path.dirname(path.resolve(file)))) throw new Error(`the directory ${path.dirname(path.resolve(file))} does not exist; nothing was changed`);
    if (values.batch) {
      if (given === undefined) throw new UsageError('-b needs the password as the third argument');
      if (given.length === 0) throw new UsageError('the password must not be empty');
      const result = addOrUpdateUser(file, user, given);
      process.stderr.write(`${result.added ? 'added' : 'updated'} user "${user}" in ${file}${result.createdFile ? ' (new file, mode 0600)' : ''}\n`);
      return 0;
    }
    if (given !== undefined) throw new UsageError('a password on the command line needs -b (it shows in the process list and the shell history)');
    // Asked twice without echo on a terminal; the first line of stdin when piped.
    await runPasswdCommand(file, user, { input: process.stdin, output: process.stderr });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return reportConfigErrors(error);
    process.stderr.write(`fieldgate passwd: ${(error as Error).message}\n`);
    return 1;
  }
}

async function schema(args: string[]): Promise<number> {
  try {
    const { values } = parse(args, { out: { type: 'string', short: 'o' } });
    const dir = path.resolve((values.out as string | undefined) ?? 'schemas');
    fs.mkdirSync(dir, { recursive: true });
    const gateway = z.toJSONSchema(gatewayConfigSchema, { io: 'input', unrepresentable: 'any' });
    fs.writeFileSync(path.join(dir, 'gateway.schema.json'), JSON.stringify(gateway, null, 2) + '\n');
    fs.writeFileSync(path.join(dir, 'device-mapping.schema.json'), JSON.stringify(deviceMappingJsonSchema(), null, 2) + '\n');
    process.stdout.write(`wrote ${path.join(dir, 'gateway.schema.json')} and ${path.join(dir, 'device-mapping.schema.json')}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return reportConfigErrors(error);
    process.stderr.write(`fieldgate schema: cannot write the schemas: ${(error as Error).message}\n`);
    return 1;
  }
}
