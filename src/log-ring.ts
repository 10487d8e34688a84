// The recent log lines, for the management API's `logs` action: a tee of the pino output kept as the
// JSON text pino wrote (nothing is parsed until someone asks), bounded in lines and in bytes.
export const LOG_RING_LINES = 1000;
export const LOG_RING_BYTES = 1024 * 1024;
export const LOG_LINE_MAX = 4096;

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export interface LogLine {
  seq: number;
  time: string;
  level: string;
  part: string;
  msg: string;
  fields: Record<string, unknown>;
}

export class LogRing {
  private readonly lines: Array<string | undefined>;
  private next = 0;
  private bytes = 0;
  /** Sequence number of the oldest line kept. */
  private first = 0;

  constructor(readonly capacity = LOG_RING_LINES, private readonly maxBytes = LOG_RING_BYTES) {
    this.lines = new Array<string | undefined>(capacity);
  }

  /** One pino JSON line (as pino writes it, newline included). */
  push(line: string): void {
    const text = line.length > LOG_LINE_MAX ? cut(line) : line;
    const i = this.next % this.capacity;
    if (this.lines[i] !== undefined) this.dropOldest();
    this.lines[i] = text;
    this.bytes += text.length;
    this.next++;
    while (this.bytes > this.maxBytes && this.first < this.next - 1) this.dropOldest();
  }

  private dropOldest(): void {
    const i = this.first % this.capacity;
    this.bytes -= this.lines[i]?.length ?? 0;
    this.lines[i] = undefined;
    this.first++;
  }

  /** The newest `limit` lines at `level` or above, of `part`, after sequence number `after`; oldest first. */
  query(options: { level?: string; part?: string; after?: number; limit?: number } = {}): LogLine[] {
    const minLevel = options.level === undefined ? 0 : LEVELS[options.level] ?? 0;
    const limit = options.limit ?? 200;
    const out: LogLine[] = [];
    for (let seq = this.next - 1; seq >= this.first && out.length < limit; seq--) {
      if (options.after !== undefined && seq <= options.after) break;
      const text = this.lines[seq % this.capacity];
      if (text === undefined) continue;
      const line = parse(seq, text);
      if (LEVELS[line.level] !== undefined && LEVELS[line.level]! < minLevel) continue;
      if (options.part !== undefined && line.part !== options.part) continue;
      out.push(line);
    }
    return out.reverse();
  }
}

/** A line cut to the limit stays one JSON object: its message and level survive, the fields do not. */
function cut(line: string): string {
  try {
    const { level, time, msg, part } = JSON.parse(line) as Record<string, unknown>;
    return JSON.stringify({ level, time, part, msg: String(msg ?? '').slice(0, LOG_LINE_MAX - 200), truncated: true }) + '\n';
  } catch {
    return JSON.stringify({ level: 30, time: Date.now(), msg: line.slice(0, LOG_LINE_MAX - 200), truncated: true }) + '\n';
  }
}

function parse(seq: number, text: string): LogLine {
  try {
    const { level, time, msg, ...fields } = JSON.parse(text) as Record<string, unknown>;
    return { seq, time: new Date(Number(time)).toISOString(), level: NAMES[Number(level)] ?? String(level), part: partOf(fields), msg: String(msg ?? ''), fields };
  } catch {
    return { seq, time: new Date().toISOString(), level: 'info', part: 'gateway', msg: text.trimEnd(), fields: {} };
  }
}

/** The part a line is about: its `part` binding, else what its other bindings name. */
function partOf(fields: Record<string, unknown>): string {
  if (typeof fields.part === 'string') return fields.part;
  if (fields.bridge !== undefined) return 'bridges';
  if (fields.device !== undefined || fields.bus !== undefined) return 'devices';
  if (fields.clientId !== undefined || fields.listener !== undefined) return 'broker';
  return 'gateway';
}
