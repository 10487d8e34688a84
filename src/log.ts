import { pino, type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * JSON lines when stdout is not a terminal (journald, Docker), a compact readable form on a terminal.
 */
export function createLogger(level: LogLevel = 'info', pretty = process.stdout.isTTY === true): Logger {
  if (!pretty) return pino({ level, base: undefined });
  return pino({ level, base: undefined }, { write: (line: string) => process.stdout.write(formatForTerminal(line)) });
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

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

/** A logger that drops everything: the default for embedded brokers in tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
