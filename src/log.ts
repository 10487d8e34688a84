import fs from 'node:fs';
import { pino, type Logger } from 'pino';
import type { LogRing } from './log-ring.js';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `log.format` in the gateway config: "auto" picks from where stdout goes. */
export type LogFormat = 'auto' | 'json' | 'text';

/** What the lines look like: pino JSON, journald text (priority prefix), or the terminal's pretty form. */
export type LogOutput = 'json' | 'journal' | 'text' | 'pretty';

/**
 * Is stdout connected to journald? systemd sets JOURNAL_STREAM="<device>:<inode>" of the stream it
 * gives the service (systemd.exec(5)); comparing it with stdout's own identity keeps a child whose
 * stdout was redirected elsewhere from believing it, as sd_journal_stream_fd users do.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  const [device, inode] = stream.split(':');
  if (device === undefined || inode === undefined) return false;
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(device) && stat.ino === BigInt(inode);
  } catch {
    return false;
  }
}

/**
 * The output for a format setting: a terminal keeps the pretty form; under journald (stdout not a
 * terminal) "auto" means text lines with the syslog priority prefix; elsewhere (Docker, pipes, log
 * shippers) JSON. "text" forces text (with the prefix under journald, with a timestamp elsewhere).
 */
export function chooseLogOutput(format: LogFormat = 'auto', where: { tty: boolean; journal: boolean } = { tty: process.stdout.isTTY === true, journal: stdoutIsJournal() }): LogOutput {
  if (format === 'json') return 'json';
  if (where.tty) return format === 'text' ? 'text' : 'pretty';
  if (where.journal) return 'journal';
  return format === 'text' ? 'text' : 'json';
}

export interface LoggerOptions {
  level?: LogLevel;
  output?: LogOutput;
  /** Where the lines go (default process.stdout). */
  write?: (line: string) => void;
  /** Also keeps every line (pino's JSON, before formatting) here, for the management API's `logs`. */
  ring?: LogRing;
}

export function createLogger(level: LogLevel = 'info', options: Omit<LoggerOptions, 'level'> | boolean = {}): Logger {
  // `createLogger(level, pretty)` was the old signature.
  const opts = typeof options === 'boolean' ? { output: options ? ('pretty' as const) : ('json' as const) } : options;
  const output = opts.output ?? chooseLogOutput();
  const write = opts.write ?? stdoutWrite();
  const ring = opts.ring;
  if (output === 'json') {
    if (ring === undefined) return opts.write ? pino({ level, base: undefined }, { write }) : pino({ level, base: undefined });
    const out = opts.write ?? destinationWrite();
    return pino({ level, base: undefined }, { write: (line: string) => { ring.push(line); out(line); } });
  }
  const format = output === 'pretty' ? formatForTerminal : output === 'journal' ? formatForJournal : formatAsText;
  return pino({ level, base: undefined }, { write: (line: string) => { ring?.push(line); write(format(line)); } });
}

/**
 * A failed write of the log to stdout ends the lines there, never the gateway: EIO once the terminal
 * hung up (the SSH session dropped, the window closed: the SIGHUP that came with it reloads, as in
 * Mosquitto, and the gateway goes on), EPIPE once a pipe's reader exited. The ring keeps the lines
 * for the management API. Without this, Node's unhandled 'error' event killed the gateway at its
 * next log line after the terminal closed.
 */
let stdoutGone = false;
let stdoutGuarded = false;
function stdoutWrite(): (line: string) => void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', () => { stdoutGone = true; });
  }
  return (line) => { if (!stdoutGone) process.stdout.write(line); };
}

/** pino's own stdout destination (as `pino()` uses), written through so a tee does not change how lines leave; its write errors end the lines as above (pino's own filter stops at EPIPE only). */
function destinationWrite(): (line: string) => void {
  const destination = pino.destination(1);
  let gone = false;
  destination.on('error', () => {
    gone = true;
    // sonic-boom's flushSync (pino calls it at exit) retries a failed write for ever, 100 ms at a
    // time, whatever the error: with EIO the process never exited and no signal could stop it.
    const noop = () => undefined;
    Object.assign(destination, { write: () => true, flush: noop, flushSync: noop, end: noop });
  });
  return (line) => { if (!gone) destination.write(line); };
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** sd-daemon(3) priorities: <2> critical, <3> error, <4> warning, <6> info, <7> debug. */
export function syslogPriority(pinoLevel: number): number {
  if (pinoLevel >= 60) return 2;
  if (pinoLevel >= 50) return 3;
  if (pinoLevel >= 40) return 4;
  if (pinoLevel >= 30) return 6;
  return 7;
}

function formatForTerminal(line: string): string {
  try {
    const { level, time, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const clock = new Date(Number(time)).toISOString().slice(11, 23);
    const extra = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
    return `${clock} ${levelNames[Number(level)] ?? level} ${String(msg ?? '')}${extra}\n`;
  } catch {
    return line;
  }
}

const bare = /^[^\s"=\\]+$/;

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return bare.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'object' && value !== null && 'message' in value && 'type' in value) {
    // A serialized error: its message, not the stack (one event, one line).
    const err = value as { type: unknown; message: unknown; code?: unknown };
    return JSON.stringify(`${String(err.type)}: ${String(err.message)}${err.code !== undefined ? ` (${String(err.code)})` : ''}`);
  }
  return JSON.stringify(value);
}

/** `message key=value …` on one line: newlines in the message are escaped, values JSON-quoted when needed. */
function textBody(record: Record<string, unknown>): string {
  const { level: _level, time: _time, msg, ...rest } = record;
  let out = String(msg ?? '').replace(/\r?\n/g, '\\n');
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    out += ` ${key}=${fieldValue(value)}`;
  }
  return out;
}

/** `<6>client connected clientId=… username=…`: journald takes the priority from the prefix and adds the time itself. */
export function formatForJournal(line: string): string {
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    return `<${syslogPriority(Number(record.level))}>${textBody(record)}\n`;
  } catch {
    return `<6>${line.trimEnd().replace(/\n/g, '\\n')}\n`;
  }
}

/** Text lines for anywhere else: ISO time, level, message, fields. */
export function formatAsText(line: string): string {
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    const level = (levelNames[Number(record.level)] ?? String(record.level)).trim();
    return `${new Date(Number(record.time)).toISOString()} ${level.padEnd(5)} ${textBody(record)}\n`;
  } catch {
    return line;
  }
}

/** A logger that drops everything: the default for embedded brokers in tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Writes lines to stderr for a reader who may be journald: when stderr is the stream JOURNAL_STREAM
 * names (systemd gives a service's stderr the same stream as its stdout), each line gets the syslog
 * priority prefix, so the configuration errors a service stops on (exit 78) show in
 * `journalctl -p warning` (journald files unprefixed lines at info). Elsewhere the lines are unchanged.
 */
export function writeStderrLines(text: string, priority: number, journal = stdoutIsJournal(process.env, 2)): void {
  process.stderr.write(journal ? prefixLines(text, priority) : text);
}

/** `<N>` before every line of `text` (which ends with a newline). */
export function prefixLines(text: string, priority: number): string {
  return text.split('\n').map((line, i, all) => (i === all.length - 1 && line === '' ? line : `<${priority}>${line}`)).join('\n');
}
