// One Modbus device: polls its points in merged reads on its bus, publishes values and availability,
// backs off when it stops answering, and carries out `…/set` commands with read-back.
import { answerUnknownCommands } from '../unknown-command.js';
import type { Logger } from '../../log.js';
import type { LocalClient, Message } from '../../broker/types.js';
import { DevicePublisher } from '../publisher.js';
import type { BusStatus, ModbusBusRunner } from './bus.js';
import { decodeRegisters, encodeRegisters, setBit, type RawValue } from './codec.js';
import { isBitTable, type ModbusDevice, type ModbusPoint } from './model.js';
import {
  LinkDown,
  ModbusException,
  ModbusTimeout,
  parseReply,
  readRequest,
  writeMultipleCoilsRequest,
  writeMultipleRegistersRequest,
  writeSingleCoilRequest,
  writeSingleRegisterRequest,
  type Reply,
} from './pdu.js';
import { barrierKey, planDeviceReads, type ReadBlock } from './planner.js';
import { CommandError, parseCommand, toEngineering, type PointValue } from './value.js';

export interface DeviceStatus {
  id: string;
  name: string;
  bus: string;
  protocol: 'modbus' | 'line';
  online: boolean;
  lastError?: string;
  lastPollAt?: string;
  polls: number;
  failedPolls: number;
  pointErrors: Record<string, string>;
}

/** What the last reads of one point gave: the value and when, or why the last read failed. */
export interface PointReading {
  value?: PointValue;
  /** Epoch ms of the last successful read. */
  readAt?: number;
  error?: string;
  errorAt?: number;
}

/** A device as the management API's `device` action shows it: its status, model and every point's last reading. */
export interface DeviceDetail {
  status: DeviceStatus;
  /** Duration of the last poll in ms (every read of it, bus queueing included). */
  pollLatencyMs?: number;
  lastErrorAt?: number;
  modbus?: { device: ModbusDevice; readings: ReadonlyMap<string, PointReading>; bus: BusStatus };
}

interface PollGroup {
  intervalMs: number;
  points: ModbusPoint[];
  blocks: ReadBlock[];
  timer?: NodeJS.Timeout;
  running: boolean;
}

const readFunction = { coil: 1, 'discrete-input': 2, holding: 3, input: 4 } as const;

/**
 * Called after every poll that reached the bus: how long it took (queueing on the bus included) and
 * whether it succeeded. Polls skipped because the bus is not open are not reported.
 */
export type PollObserver = (deviceId: string, seconds: number, ok: boolean) => void;

export class ModbusDeviceRunner {
  private readonly publisher: DevicePublisher;
  private readonly groups: PollGroup[];
  private readonly barriers = new Set<string>();
  private stopped = false;
  /** Set when the device stopped answering (not when the whole bus is down). */
  private unresponsive = false;
  private backoffMs: number;
  private writes: Promise<void> = Promise.resolve();
  private stopUnknownCommands: () => void = () => undefined;
  private stats = { polls: 0, failedPolls: 0, lastError: undefined as string | undefined, lastPollAt: undefined as number | undefined, lastPollMs: undefined as number | undefined, lastErrorAt: undefined as number | undefined };
  /** Point name → its last reading: one Map entry written per point read, read only when someone asks. */
  private readonly readings = new Map<string, PointReading>();

  constructor(
    readonly device: ModbusDevice,
    private readonly bus: ModbusBusRunner,
    private readonly client: LocalClient,
    private readonly logger: Logger,
    private readonly onPoll?: PollObserver,
  ) {
    this.publisher = new DevicePublisher(client, { topicPrefix: device.topicPrefix, qos: device.qos, retain: device.retain, ...device.publish }, logger);
    const byInterval = new Map<number, ModbusPoint[]>();
    for (const p of device.points) byInterval.set(p.pollIntervalMs, [...(byInterval.get(p.pollIntervalMs) ?? []), p]);
    this.groups = [...byInterval.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([intervalMs, points]) => ({ intervalMs, points, blocks: [], running: false }));
    this.replan();
    this.backoffMs = device.pollIntervalMs;
  }

  get published(): number {
    return this.publisher.published;
  }

  start(): void {
    // Retained messages are replayed to a new subscription within this turn of the event loop. A retained
    // `…/set` is a stale command (from before a restart): writing it into the device again would be wrong.
    let replayingRetained = true;
    setImmediate(() => (replayingRetained = false));
    for (const p of this.device.points) {
      this.client.subscribe(
        `${p.topic}/set`,
        (m) => {
          if (m.retain && replayingRetained) {
            this.logger.info({ point: p.name }, 'ignoring a retained command left on the broker');
            return;
          }
          // An empty retained message is someone clearing a retained command, not a command.
          if (m.retain && m.payload.length === 0) return;
          this.onCommand(p, m);
        },
        { qos: 1 },
      );
    }
    this.stopUnknownCommands = answerUnknownCommands(this.client, {
      deviceId: this.device.id, topicPrefix: this.device.topicPrefix, knownSetTopics: this.device.points.map((p) => `${p.topic}/set`),
      writable: this.device.points.filter((p) => p.writable).map((p) => p.name), qos: this.device.qos, logger: this.logger,
    });
    this.bus.onStateChange((online) => {
      if (this.stopped) return;
      if (!online) {
        this.stats.lastError = this.bus.status().lastError;
        this.publisher.setAvailability(false);
      } else {
        this.unresponsive = false;
        for (const g of this.groups) this.schedule(g, 0);
      }
    });
    this.groups.forEach((g) => this.schedule(g, 0));
  }

  /** Stops polling and publishes `offline`; resolves once that is routed. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const g of this.groups) clearTimeout(g.timer);
    for (const p of this.device.points) this.client.unsubscribe(`${p.topic}/set`);
    this.stopUnknownCommands();
    await this.writes;
    await this.publisher.publishNow(`${this.device.topicPrefix}/availability`, 'offline', true).catch(() => undefined);
  }

  status(): DeviceStatus {
    return {
      id: this.device.id,
      name: this.device.name,
      bus: this.device.bus.id,
      protocol: 'modbus',
      online: this.publisher.isOnline,
      lastError: this.stats.lastError,
      lastPollAt: this.stats.lastPollAt ? new Date(this.stats.lastPollAt).toISOString() : undefined,
      polls: this.stats.polls,
      failedPolls: this.stats.failedPolls,
      pointErrors: this.publisher.pointErrors(),
    };
  }

  detail(): DeviceDetail {
    return {
      status: this.status(),
      pollLatencyMs: this.stats.lastPollMs,
      lastErrorAt: this.stats.lastErrorAt,
      modbus: { device: this.device, readings: this.readings, bus: this.bus.status() },
    };
  }

  /** The reads one poll of every group issues, for tests, `fieldgate check` and the benchmark. */
  plannedReads(): ReadBlock[] {
    return this.groups.flatMap((g) => g.blocks);
  }

  private replan(): void {
    for (const g of this.groups) g.blocks = planDeviceReads(this.device, g.points, this.barriers);
  }

  private schedule(group: PollGroup, delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(group.timer);
    group.timer = setTimeout(() => void this.poll(group), delayMs);
  }

  private async poll(group: PollGroup): Promise<void> {
    if (this.stopped || group.running) return;
    // While the device does not answer, only the fastest group probes it.
    if (this.unresponsive && group !== this.groups[0]) {
      this.schedule(group, group.intervalMs);
      return;
    }
    if (!this.bus.online) {
      // The port or connection is not open (yet): nothing was asked of the device, so this is no failed poll.
      // The bus reopening schedules the next poll; until then the device is offline only once the bus has really failed.
      if (this.bus.attempted) {
        this.stats.lastError = this.bus.status().lastError ?? `bus ${this.device.bus.id} is offline`;
        this.publisher.setAvailability(false);
      }
      this.schedule(group, Math.max(group.intervalMs, this.device.offlinePollIntervalMs));
      return;
    }
    group.running = true;
    const startedAt = Date.now();
    const startedHr = process.hrtime.bigint();
    let ok = true;
    try {
      const blocks = this.unresponsive ? group.blocks.slice(0, 1) : group.blocks;
      for (const block of blocks) {
        if (this.stopped) return;
        await this.readAndPublish(block, this.unresponsive ? 0 : this.device.retries);
      }
      this.stats.polls++;
      this.stats.lastPollAt = Date.now();
      this.publisher.flushState();
      if (this.unresponsive) this.logger.info('modbus device answers again');
      this.unresponsive = false;
      this.backoffMs = this.device.pollIntervalMs;
      this.publisher.setAvailability(true);
    } catch (err) {
      ok = false;
      this.stats.failedPolls++;
      this.stats.lastError = (err as Error).message;
      this.stats.lastErrorAt = Date.now();
      if (err instanceof LinkDown) {
        this.publisher.setAvailability(false);
      } else {
        if (!this.unresponsive) this.logger.warn({ err: (err as Error).message }, 'modbus device offline');
        this.unresponsive = true;
        this.publisher.setAvailability(false);
      }
    } finally {
      group.running = false;
    }
    if (this.stopped) return;
    const seconds = Number(process.hrtime.bigint() - startedHr) / 1e9;
    this.stats.lastPollMs = Math.round(seconds * 10_000) / 10;
    this.reportPoll(seconds, ok);
    if (!ok && this.unresponsive) {
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.device.offlinePollIntervalMs);
      this.schedule(group, delay);
    } else if (!ok) {
      // The bus is down: the bus's reconnect triggers the next poll; keep a slow safety net.
      this.schedule(group, Math.max(group.intervalMs, this.device.offlinePollIntervalMs));
    } else {
      this.schedule(group, Math.max(0, startedAt + group.intervalMs - Date.now()));
    }
  }

  private reportPoll(seconds: number, ok: boolean): void {
    if (!this.onPoll) return;
    try {
      this.onPoll(this.device.id, seconds, ok);
    } catch (err) {
      this.logger.warn({ err }, 'poll observer failed');
    }
  }

  private async transact(pdu: Buffer, retries: number, urgent = false): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await this.bus.transact(this.device.unitId, pdu, { timeoutMs: this.device.timeoutMs, delayAfterMs: this.device.interRequestDelayMs, urgent });
        return parseReply(pdu, reply);
      } catch (err) {
        const retryable = err instanceof ModbusTimeout || isGatewayNoAnswer(err) || (err instanceof Error && err.name === 'ProtocolError');
        if (!retryable || attempt >= retries) throw err;
      }
    }
  }

  private async read(block: Pick<ReadBlock, 'table' | 'address' | 'count'>, retries: number, urgent = false): Promise<Reply> {
    return this.transact(readRequest(readFunction[block.table], block.address, block.count), retries, urgent);
  }

  /** Reads a block; a refused merged read is split in two (remembered for later polls) and retried at once. */
  private async readAndPublish(block: ReadBlock, retries: number): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.read(block, retries);
    } catch (err) {
      // A TCP gateway saying the unit behind it did not answer means the device is gone, not the point.
      if (!(err instanceof ModbusException) || isGatewayNoAnswer(err)) throw err;
      if (block.points.length > 1 && (err.exceptionCode === 2 || err.exceptionCode === 3)) {
        const middle = block.points[Math.floor(block.points.length / 2)];
        this.barriers.add(barrierKey(block.table, middle.address));
        this.logger.info({ table: block.table, address: block.address, count: block.count, splitAt: middle.address }, 'device refused a merged read; splitting it');
        const parts = planDeviceReads(this.device, block.points, this.barriers);
        if (parts.length > 1) {
          this.replan();
          for (const part of parts) await this.readAndPublish(part, retries);
          return;
        }
      }
      for (const p of block.points) this.pointFailed(p, err.message);
      return;
    }
    // The device answered: say so before its values, so a subscriber never sees readings of a device
    // still marked offline (after a recovery the rest of the poll can take a while on a slow bus).
    this.publisher.setAvailability(true);
    const now = Date.now();
    for (const p of block.points) {
      const value = this.decodePoint(p, block, reply);
      if (value !== undefined) this.pointRead(p, value, now);
    }
  }

  private pointRead(p: ModbusPoint, value: PointValue, now: number, force = false): void {
    this.readings.set(p.name, { value, readAt: now });
    this.publisher.offer(p, value, now, force);
  }

  private pointFailed(p: ModbusPoint, message: string): void {
    const last = this.readings.get(p.name);
    this.readings.set(p.name, { value: last?.value, readAt: last?.readAt, error: message, errorAt: Date.now() });
    this.publisher.pointError(p.name, p.topic, message);
  }

  private decodePoint(p: ModbusPoint, block: Pick<ReadBlock, 'address'>, reply: Reply): PointValue | undefined {
    const offset = p.address - block.address;
    try {
      let raw: RawValue;
      if (isBitTable(p.table)) raw = reply.bits?.[offset] ?? false;
      else raw = decodeRegisters((reply.registers ?? []).slice(offset, offset + p.count), p.type, p.byteOrder, p.bit);
      return toEngineering(p, raw);
    } catch (err) {
      this.pointFailed(p, (err as Error).message);
      return undefined;
    }
  }

  private onCommand(p: ModbusPoint, message: Message): void {
    const payload = message.payload.toString('utf8');
    this.writes = this.writes.then(() => this.write(p, payload, message));
  }

  private async write(p: ModbusPoint, payload: string, message: Message): Promise<void> {
    let result: { ok: true; value: PointValue } | { ok: false; error: string };
    try {
      const raw = parseCommand(p, payload);
      await this.writeRaw(p, raw);
      const single = { table: p.table, address: p.address, count: p.count, points: [p] };
      const reply = await this.read(single, this.device.retries, true);
      const value = this.decodePoint(p, single, reply);
      if (value === undefined) throw new Error('read-back could not be decoded');
      this.pointRead(p, value, Date.now(), true);
      this.publisher.flushState();
      result = { ok: true, value };
    } catch (err) {
      const reason = err instanceof CommandError || err instanceof RangeError ? err.message : describeFailure(err);
      result = { ok: false, error: reason };
      this.logger.info({ point: p.name, payload, reason }, 'write rejected');
    }
    const body = result.ok ? `{"ok":true,"value":${resultValueJson(result.value)}}` : JSON.stringify(result);
    this.publisher.send(`${p.topic}/set/result`, body, false);
    const responseTopic = message.properties?.responseTopic;
    if (responseTopic) {
      this.client
        .publish(responseTopic, body, { qos: this.device.qos, properties: { correlationData: message.properties?.correlationData } })
        .catch(() => undefined);
    }
  }

  private async writeRaw(p: ModbusPoint, raw: RawValue): Promise<void> {
    const multiple = this.device.writeFunctions === 'multiple';
    if (p.table === 'coil') {
      const pdu = multiple ? writeMultipleCoilsRequest(p.address, [raw === true]) : writeSingleCoilRequest(p.address, raw === true);
      await this.transact(pdu, this.device.retries, true);
      return;
    }
    let registers: number[];
    if (p.type === 'bit') {
      const current = await this.read({ table: p.table, address: p.address, count: 1 }, this.device.retries, true);
      registers = [setBit(current.registers?.[0] ?? 0, p.bit ?? 0, raw === true)];
    } else {
      registers = encodeRegisters(raw, p.type, p.byteOrder, p.count);
    }
    const pdu = registers.length === 1 && !multiple ? writeSingleRegisterRequest(p.address, registers[0]) : writeMultipleRegistersRequest(p.address, registers);
    await this.transact(pdu, this.device.retries, true);
  }
}

/**
 * The value in `…/set/result` as JSON, in the representation of the value topic: a 64-bit integer is
 * a JSON number with all its digits (as the value topic's payload), not a string.
 */
function resultValueJson(v: PointValue): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return 'null';
  return JSON.stringify(v);
}

function isGatewayNoAnswer(err: unknown): boolean {
  return err instanceof ModbusException && (err.exceptionCode === 10 || err.exceptionCode === 11);
}

function describeFailure(err: unknown): string {
  if (err instanceof ModbusException) return `device refused: ${err.message}`;
  if (err instanceof ModbusTimeout) return `device did not answer: ${err.message}`;
  if (err instanceof LinkDown) return `bus offline: ${err.message}`;
  return (err as Error)?.message ?? String(err);
}
