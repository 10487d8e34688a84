// One scheduler per physical bus. On a serial line (RTU, also RTU over a TCP converter) exactly one
// transaction is in flight, separated by the 3.5-character silent interval plus the configured delay,
// and a timeout is followed by draining the line so a late reply is never taken for the next answer.
// On Modbus TCP each unit id gets its own lane, so devices behind one gateway run in parallel.
// The bus reopens its port or connection with backoff when it is lost.
import type { Logger } from '../../log.js';
import { openLink, type ModbusLink } from './links.js';
import { LinkDown, ModbusTimeout } from './pdu.js';
import { MODBUS_RECONNECT_DEFAULTS, type ModbusBus } from './schema.js';

export interface TransactOptions {
  timeoutMs: number;
  /** Extra pause after this transaction before the next one on the same lane. */
  delayAfterMs?: number;
  /** Writes go ahead of queued polls. */
  urgent?: boolean;
}

interface Job {
  unitId: number;
  pdu: Buffer;
  options: TransactOptions;
  resolve(reply: Buffer): void;
  reject(error: Error): void;
}

interface Lane {
  queue: Job[];
  busy: boolean;
  nextAt: number;
  /** Serial lines: unit id → time until which a late reply from it may still arrive. */
  quarantine: Map<number, number>;
  /** Cuts a quarantine wait short when a new job arrives. */
  wake?: () => void;
}

/** `open`; `retrying`: an attempt to open the port or connection is under way; `backing-off`: waiting before the next one. */
export type BusState = 'open' | 'retrying' | 'backing-off' | 'stopped';

export interface BusStatus {
  id: string;
  type: ModbusBus['type'];
  online: boolean;
  state: BusState;
  /** While backing off: ms until the next attempt to open. */
  retryInMs?: number;
  lastError?: string;
  requests: number;
  timeouts: number;
  strayBytes: number;
  reconnects: number;
}

/** Modbus RTU inter-frame silence: 3.5 character times, fixed at 1.75 ms above 19200 baud (Modbus over serial line spec). */
export function rtuSilentIntervalMs(bus: ModbusBus): number {
  if (bus.type !== 'modbus-rtu') return 0;
  if (bus.baudRate > 19200) return 1.75;
  const bitsPerChar = 1 + bus.dataBits + (bus.parity === 'none' ? 0 : 1) + bus.stopBits;
  return (3.5 * bitsPerChar * 1000) / bus.baudRate;
}

/** A link that stayed open this long is considered healthy: after losing it, reopening starts fast again. */
const steadyLinkMs = 10_000;

export class ModbusBusRunner {
  private link: ModbusLink | undefined;
  private readonly lanes = new Map<string, Lane>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private listeners: Array<(online: boolean) => void> = [];
  private connectLoop: Promise<void> | undefined;
  /** Aborts an open attempt in progress when the bus stops. */
  private readonly stopping = new AbortController();
  private counters = { requests: 0, timeouts: 0, strayBytes: 0, reconnects: 0 };
  private lastError: string | undefined;
  private firstAttemptSettled = false;
  private phase: BusState = 'retrying';
  private retryAt = 0;
  private settleFirstAttemptPromise!: () => void;
  /** Resolves once the first open attempt has succeeded or failed, so devices do not start by flapping offline. */
  readonly firstAttempt = new Promise<void>((resolve) => (this.settleFirstAttemptPromise = resolve));
  readonly silentMs: number;

  constructor(
    readonly bus: ModbusBus,
    private readonly logger: Logger,
    private readonly reconnect = {
      initialMs: bus.reconnectInitialDelayMs ?? MODBUS_RECONNECT_DEFAULTS.initialMs,
      maxMs: Math.max(bus.reconnectMaxDelayMs ?? MODBUS_RECONNECT_DEFAULTS.maxMs, bus.reconnectInitialDelayMs ?? 0),
    },
  ) {
    this.silentMs = rtuSilentIntervalMs(bus);
  }

  get online(): boolean {
    return this.link !== undefined && !this.link.closed;
  }

  /** True once the first open attempt has succeeded or failed: before that, offline only means "not yet". */
  get attempted(): boolean {
    return this.firstAttemptSettled;
  }

  private settleFirstAttempt(): void {
    this.firstAttemptSettled = true;
    this.settleFirstAttemptPromise();
  }

  /** Called with true when the port/connection opens, false when it is lost or the first attempt to open it fails. */
  onStateChange(listener: (online: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.connectLoop ??= this.runConnectLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.settleFirstAttempt();
    this.stopping.abort();
    this.wake?.();
    for (const lane of this.lanes.values()) {
      for (const job of lane.queue.splice(0)) job.reject(new LinkDown('bus stopped'));
      lane.wake?.();
    }
    await this.link?.close();
    await this.connectLoop;
  }

  status(): BusStatus {
    const live = this.link?.stats;
    return {
      id: this.bus.id,
      type: this.bus.type,
      online: this.online,
      state: this.stopped ? 'stopped' : this.online ? 'open' : this.phase === 'open' ? 'retrying' : this.phase,
      ...(this.phase === 'backing-off' && !this.stopped ? { retryInMs: Math.max(0, this.retryAt - Date.now()) } : {}),
      lastError: this.lastError,
      requests: this.counters.requests + (live?.requests ?? 0),
      timeouts: this.counters.timeouts + (live?.timeouts ?? 0),
      strayBytes: this.counters.strayBytes + (live?.strayBytes ?? 0),
      reconnects: this.counters.reconnects,
    };
  }

  /** Queues one request; resolves with the reply PDU. Rejects at once with LinkDown while the bus is offline. */
  transact(unitId: number, pdu: Buffer, options: TransactOptions): Promise<Buffer> {
    if (!this.online || this.stopped) return Promise.reject(new LinkDown(this.lastError ?? `bus ${this.bus.id} is offline`));
    const key = this.bus.type === 'modbus-tcp' ? String(unitId) : 'line';
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { queue: [], busy: false, nextAt: 0, quarantine: new Map() };
      this.lanes.set(key, lane);
    }
    return new Promise<Buffer>((resolve, reject) => {
      const job = { unitId, pdu, options, resolve, reject };
      if (options.urgent) lane.queue.unshift(job);
      else lane.queue.push(job);
      lane.wake?.();
      void this.pump(lane);
    });
  }

  /**
   * The next job to run: on a serial line a unit that just timed out may still answer late, and
   * its reply would look like the answer to our next request to it. So it waits out a quarantine
   * of twice its timeout while requests to other units go ahead (their replies carry another unit id).
   */
  private takeNext(lane: Lane): Job | number | undefined {
    if (lane.queue.length === 0) return undefined;
    const now = Date.now();
    let earliest = Infinity;
    for (let i = 0; i < lane.queue.length; i++) {
      const until = lane.quarantine.get(lane.queue[i].unitId) ?? 0;
      if (until <= now) {
        lane.quarantine.delete(lane.queue[i].unitId);
        return lane.queue.splice(i, 1)[0];
      }
      earliest = Math.min(earliest, until);
    }
    return earliest;
  }

  private async pump(lane: Lane): Promise<void> {
    if (lane.busy) return;
    lane.busy = true;
    try {
      for (;;) {
        const wait = lane.nextAt - Date.now();
        if (wait > 0) await sleep(wait);
        const next = this.takeNext(lane);
        if (next === undefined) break;
        if (typeof next === 'number') {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(1, next - Date.now()));
            lane.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          lane.wake = undefined;
          continue;
        }
        const job = next;
        const link = this.link;
        if (!link || link.closed || this.stopped) {
          job.reject(new LinkDown(this.lastError ?? `bus ${this.bus.id} is offline`));
          continue;
        }
        try {
          job.resolve(await link.request(job.unitId, job.pdu, job.options.timeoutMs));
        } catch (err) {
          if (err instanceof ModbusTimeout && link.serial && !link.closed) {
            lane.quarantine.set(job.unitId, Date.now() + 2 * job.options.timeoutMs);
            // Bytes still arriving belong to nobody: let them finish and throw them away.
            await link.drain(Math.max(20, this.silentMs * 4), Math.max(50, job.options.timeoutMs));
          }
          job.reject(err as Error);
        }
        lane.nextAt = Date.now() + this.silentMs + (job.options.delayAfterMs ?? this.bus.interRequestDelayMs);
      }
    } finally {
      lane.busy = false;
    }
  }

  private async runConnectLoop(): Promise<void> {
    let delay = this.reconnect.initialMs;
    let everConnected = false;
    while (!this.stopped) {
      let link: ModbusLink;
      this.phase = 'retrying';
      try {
        link = await openLink(this.bus, undefined, this.stopping.signal);
      } catch (err) {
        if (this.stopped) break;
        const message = (err as Error).message;
        if (message !== this.lastError) this.logger.warn({ err: message, retryInMs: delay }, 'modbus bus cannot open');
        this.lastError = message;
        // The first failure is news for the devices (they started without waiting for the bus): offline now.
        const first = !this.firstAttemptSettled;
        this.settleFirstAttempt();
        if (first) this.emit(false);
        await this.pause(delay);
        delay = Math.min(delay * 2, this.reconnect.maxMs);
        continue;
      }
      if (this.stopped) {
        await link.close();
        break;
      }
      if (everConnected) this.counters.reconnects++;
      everConnected = true;
      const openedAt = Date.now();
      this.lastError = undefined;
      this.link = link;
      this.phase = 'open';
      this.logger.info('modbus bus open');
      const closed = new Promise<string>((resolve) => link.onClose(resolve));
      this.settleFirstAttempt();
      this.emit(true);
      const reason = await closed;
      this.counters.requests += link.stats.requests;
      this.counters.timeouts += link.stats.timeouts;
      this.counters.strayBytes += link.stats.strayBytes;
      this.link = undefined;
      if (this.stopped) break;
      this.lastError = `bus ${this.bus.id} lost: ${reason}`;
      this.logger.warn({ reason }, 'modbus bus lost; reopening');
      for (const lane of this.lanes.values()) for (const job of lane.queue.splice(0)) job.reject(new LinkDown(this.lastError));
      this.emit(false);
      // Only a link that stayed up for a while earns a quick reopen: one that drops right after opening
      // (a flapping USB adapter, a converter that accepts and hangs up) keeps backing off.
      if (Date.now() - openedAt >= steadyLinkMs) delay = this.reconnect.initialMs;
      await this.pause(delay);
      delay = Math.min(delay * 2, this.reconnect.maxMs);
    }
  }

  private emit(online: boolean): void {
    for (const l of this.listeners) {
      try {
        l(online);
      } catch (err) {
        this.logger.error({ err }, 'bus state listener failed');
      }
    }
  }

  private pause(ms: number): Promise<void> {
    this.phase = 'backing-off';
    this.retryAt = Date.now() + ms;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
