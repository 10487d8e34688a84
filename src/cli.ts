// fieldgate's command line: run, check, probe, passwd, schema.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
import { z } from 'zod';
import { describeAddUser, runPasswdCommand, shortPasswordWarning } from './auth/passwd-command.js';
import { addOrUpdateUser, deleteUser } from './auth/password-file.js';
import { ConfigError, embeddedDefaultConfig, gatewayConfigSchema, loadGatewayConfig, type GatewayConfig } from './config/gateway-config.js';
import { checkGatewayConfig } from './config/check.js';
import { checkHosts } from './config/check-hosts.js';
import { describeCheckedConfig } from './cli/check-output.js';
import { deviceMappingJsonSchema } from './devices/index.js';
import type { ModbusBus } from './devices/modbus/schema.js';
import { startGateway, type Gateway } from './gateway.js';
import { chooseLogOutput, createLogger, writeStderrLines, type LogLevel } from './log.js';
import { VERSION } from './version.js';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './cli/exit-codes.js';
import { COMMANDS, HELP, commandHelp, wantsHelp, type Command } from './cli/help.js';
import { makeDirectory } from './make-directory.js';
import { scheduleSettleGc } from './gateway/settle-gc.js';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      // A bare `fieldgate` is a usage error (as `git` with no command): the help, on stderr, exit 2.
      process.stderr.write(HELP);
      return EXIT_USAGE;
    case '-h':
    case '--help':
    case 'help':
      if (rest[0] !== undefined && (COMMANDS as readonly string[]).includes(rest[0])) process.stdout.write(commandHelp(rest[0] as Command));
      else process.stdout.write(HELP);
      return EXIT_OK;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return EXIT_OK;
  }
  if ((COMMANDS as readonly string[]).includes(command) && wantsHelp(rest)) {
    process.stdout.write(commandHelp(command as Command));
    return EXIT_OK;
  }
  switch (command) {
    case 'run': return run(rest);
    case 'check': return check(rest);
    case 'probe': return probe(rest);
    case 'passwd': return passwd(rest);
    case 'schema': return schema(rest);
    default:
      process.stderr.write(`fieldgate: unknown command "${command}"\n\n${HELP}`);
      return EXIT_USAGE;
  }
}

function parse(args: string[], options: ParseArgsOptionsConfig, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsProblem(error as Error & { code?: string }));
  }
}

/** node:util parseArgs' errors in our words (its own text suggests `-- "-x"` and names types). */
function parseArgsProblem(error: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown option "${quoted}"`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return `unexpected argument "${quoted}"`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = quoted.replace(/ <value>$/, '');
      if (/ambiguous/.test(error.message)) {
        const long = name.split(', ').at(-1)!;
        return `${long}: a value starting with "-" is written ${long}=-VALUE (as ${long}=-12.5)`;
      }
      return /argument missing/.test(error.message) ? `${name} needs a value` : `${name} takes no value`;
    }
    default: return error.message;
  }
}

class UsageError extends Error {}

/** --config, else $FIELDGATE_CONFIG (the container image sets it, so `docker exec … fieldgate check` checks what runs). */
function configFileOf(flag: unknown): string | undefined {
  if (typeof flag === 'string') return flag;
  const fromEnv = process.env.FIELDGATE_CONFIG;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

function reportConfigErrors(error: unknown): number {
  if (error instanceof ConfigError) {
    printWarnings(error.warnings);
    writeStderrLines(`fieldgate: the configuration has ${error.errors.length} error${error.errors.length > 1 ? 's' : ''}:\n${error.errors.map((line) => `  ${line}\n`).join('')}`, 3);
    return EXIT_CONFIG;
  }
  if (error instanceof UsageError) {
    writeStderrLines(`fieldgate: ${error.message}\n(see fieldgate --help)\n`, 3);
    return EXIT_USAGE;
  }
  throw error;
}

type RunValues = ReturnType<typeof parse>['values'];

/** What checkGatewayConfig warned about a config `run` read (a serial port not plugged in): logged once the logger exists. */
const configWarnings = new WeakMap<GatewayConfig, string[]>();

/**
 * The config `run` uses: the file (or $FIELDGATE_CONFIG, or the embedded default) with the command
 * line's overrides. At the start every file it names is checked too; on SIGHUP only the gateway
 * config is read again (each part checks its own files and reports their errors itself).
 */
function runConfig(values: RunValues, checkFiles = true): GatewayConfig {
  const file = configFileOf(values.config);
  let config: GatewayConfig;
  if (checkFiles) {
    const checked = checkGatewayConfig(file);
    config = checked.config;
    configWarnings.set(config, checked.warnings);
  } else {
    config = file === undefined ? embeddedDefaultConfig() : loadGatewayConfig(file);
  }
  if (values.host !== undefined) config.broker.host = values.host as string;
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected a port number 0-65535 (got "${values.port}")`);
    config.broker.port = port;
  }
  if (values['console-port'] !== undefined) {
    const port = Number(values['console-port']);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--console-port: expected a port number 0-65535 (got "${values['console-port']}")`);
    config.console.port = port;
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
      data: { type: 'string' }, 'log-level': { type: 'string' }, 'console-port': { type: 'string' },
    }));
    config = runConfig(values);
  } catch (error) {
    return reportConfigErrors(error);
  }

  const { LogRing } = await import('./log-ring.js');
  const logRing = new LogRing();
  const logger = createLogger(config.log.level as LogLevel, { output: chooseLogOutput(config.log.format), ring: logRing });
  logger.info({ version: VERSION, pid: process.pid, gatewayId: config.gatewayId, dataDir: config.broker.dataDir }, `fieldgate ${VERSION} starting`);
  for (const warning of configWarnings.get(config) ?? []) logger.warn(warning);
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
  // A crash is told where the log goes, at the highest priority (Node's own report would be an
  // unprefixed stderr text that journald files at info), with the stack on stderr as Node prints it.
  process.on('uncaughtException', (error: unknown) => {
    const err = error instanceof Error ? error : new Error(String(error));
    logger.fatal({ err }, `uncaught exception, exiting: ${err.message}`);
    writeStderrLines(`${err.stack ?? err.message}\n`, 2);
    process.exit(EXIT_FAILURE);
  });
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', reload);

  try {
    gateway = await startGateway(config, logger, { configFile: configFileOf(values.config), logRing });
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const line of error.errors) logger.error(line);
      return EXIT_CONFIG;
    }
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    return EXIT_FAILURE;
  }
  if (pendingStop) shutdown(pendingStop);
  else scheduleSettleGc();
  return finished;
}

async function check(args: string[]): Promise<number> {
  try {
    const { values } = parse(args, { config: { type: 'string', short: 'c' }, points: { type: 'boolean' } });
    const file = configFileOf(values.config);
    const checked = checkGatewayConfig(file);
    const { config, mapping } = checked;
    // What the run would fail on, or never reach: host names that do not resolve.
    const hosts = await checkHosts(config, mapping, file ?? '(embedded default)');
    const warnings = [...checked.warnings, ...hosts.warnings];
    if (hosts.errors.length > 0) throw new ConfigError(hosts.errors, warnings);
    const out: string[] = [`${file ?? '(embedded default)'}: OK${warnings.length > 0 ? ` (${warnings.length} warning${warnings.length > 1 ? 's' : ''}, on stderr)` : ''}`];
    out.push(...describeCheckedConfig(config, mapping, { points: values.points === true }));
    process.stdout.write(out.join('\n') + '\n');
    printWarnings(warnings);
    return EXIT_OK;
  } catch (error) {
    return reportConfigErrors(error);
  }
}

function printWarnings(warnings: string[]): void {
  for (const w of warnings) writeStderrLines(`fieldgate: warning: ${w}\n`, 4);
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
      count: { type: 'string' }, timeout: { type: 'string' }, expect: { type: 'string' },
      gateway: { type: 'string' }, bus: { type: 'string' }, 'gateway-id': { type: 'string' },
      username: { type: 'string', short: 'u' }, password: { type: 'string', short: 'P' },
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
    const expectText = values.expect as string | undefined;
    const expected = expectText === undefined ? undefined : Number(expectText);
    if (expected !== undefined && (expectText!.trim() === '' || !Number.isFinite(expected))) throw new UsageError(`--expect: expected a number, the value the device's display shows (got "${expectText}")`);
    const table = (values.table as string | undefined) ?? 'holding';
    if (table !== 'holding' && table !== 'input') throw new UsageError(`--table: expected holding or input (got "${table}")`);
    if (values.gateway !== undefined) {
      if (values.host !== undefined || values.serial !== undefined) throw new UsageError('--gateway asks a running gateway: give --bus (its bus id), not --host or --serial');
      if (values.bus === undefined) throw new UsageError('--gateway needs --bus: the id of the bus in the gateway\'s mapping');
      const { probeThroughGateway } = await import('./cli/probe-gateway.js');
      const { formatProbe } = await import('./devices/modbus/probe.js');
      const result = await probeThroughGateway({
        url: values.gateway as string, username: values.username as string | undefined, password: values.password as string | undefined,
        gatewayId: values['gateway-id'] as string | undefined, bus: values.bus as string,
        unitId: number('unit', 1), table, address: number('address'), count: number('count', 4), timeoutMs: number('timeout', 1000),
      });
      process.stdout.write(formatProbe(result, expected) + '\n');
      return EXIT_OK;
    }
    let bus: ModbusBus;
    if (values.host !== undefined) {
      bus = { id: 'probe', type: 'modbus-tcp', host: values.host as string, port: number('port', 502), interRequestDelayMs: 0 };
    } else if (values.serial !== undefined) {
      bus = {
        id: 'probe', type: 'modbus-rtu', path: values.serial as string, baudRate: number('baud', 9600) as never,
        parity: parityOf(values.parity as string | undefined), dataBits: 8, stopBits: 1, interRequestDelayMs: 0,
      };
    } else {
      throw new UsageError('give --host (Modbus TCP), --serial (Modbus RTU) or --gateway (a running gateway\'s broker) with --bus');
    }
    const { formatProbe, probeRegisters } = await import('./devices/modbus/probe.js');
    const result = await probeRegisters({
      bus, unitId: number('unit', 1), table, address: number('address'), count: number('count', 4), timeoutMs: number('timeout', 1000),
    });
    process.stdout.write(formatProbe(result, expected) + '\n');
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) return reportConfigErrors(error);
    process.stderr.write(`fieldgate probe: ${(error as Error).message ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}

async function passwd(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(args, {
      batch: { type: 'boolean', short: 'b' }, create: { type: 'boolean', short: 'c' }, delete: { type: 'boolean', short: 'D' },
    }, true);
    const [file, user, given, ...extra] = positionals;
    if (values.delete && (values.create || values.batch)) throw new UsageError(`-D cannot be used with ${values.create ? '-c' : '-b'}`);
    if (!file || !user || extra.length > 0 || (values.delete && given !== undefined)) {
      throw new UsageError('usage: fieldgate passwd [-c] [-b] FILE USER [PASSWORD]  |  fieldgate passwd -D FILE USER');
    }
    if (!fs.existsSync(path.dirname(path.resolve(file)))) throw new Error(`the directory ${path.dirname(path.resolve(file))} does not exist; nothing was changed`);
    if (values.delete) {
      deleteUser(file, user);
      process.stderr.write(`deleted user "${user}" from ${file}\n`);
      return EXIT_OK;
    }
    const replaceFile = values.create === true;
    if (values.batch) {
      if (given === undefined) throw new UsageError('-b needs the password as the third argument');
      if (given.length === 0) throw new UsageError('the password must not be empty');
      const warning = shortPasswordWarning(given);
      if (warning) process.stderr.write(`${warning}\n`);
      const result = addOrUpdateUser(file, user, given, { replaceFile });
      process.stderr.write(`${describeAddUser(result, user, file)}\n`);
      return EXIT_OK;
    }
    if (given !== undefined) throw new UsageError('a password on the command line needs -b (it shows in the process list and the shell history)');
    // Asked twice without echo on a terminal; the first line of stdin when piped.
    await runPasswdCommand(file, user, { input: process.stdin, output: process.stderr }, { replaceFile });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) return reportConfigErrors(error);
    process.stderr.write(`fieldgate passwd: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
}

async function schema(args: string[]): Promise<number> {
  let dir: string;
  try {
    const { values } = parse(args, { out: { type: 'string', short: 'o' } });
    dir = path.resolve((values.out as string | undefined) ?? 'schemas');
  } catch (error) {
    return reportConfigErrors(error);
  }
  try {
    makeDirectory(dir);
    const gateway = z.toJSONSchema(gatewayConfigSchema, { io: 'input', unrepresentable: 'any' });
    fs.writeFileSync(path.join(dir, 'gateway.schema.json'), JSON.stringify(gateway, null, 2) + '\n');
    fs.writeFileSync(path.join(dir, 'device-mapping.schema.json'), JSON.stringify(deviceMappingJsonSchema(), null, 2) + '\n');
    process.stdout.write(`wrote ${path.join(dir, 'gateway.schema.json')} and ${path.join(dir, 'device-mapping.schema.json')}\n`);
    return EXIT_OK;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`fieldgate schema: cannot write the schemas to ${dir}: ${code ?? (error as Error).message}\n`);
    return EXIT_FAILURE;
  }
}
