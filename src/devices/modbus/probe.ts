// `fieldgate probe`: read a register range once and show it decoded as every type and byte order,
// so a user can find which one matches the data sheet before writing a mapping.
import { byteOrders, decodeRegisters, registerCount, type ByteOrder, type PointType } from './codec.js';
import { openLink } from './links.js';
import { ModbusException, parseReply, readRequest } from './pdu.js';
import type { ModbusBus } from './schema.js';

export interface ProbeOptions {
  /** A bus as written in a mapping (modbus-rtu, modbus-tcp, modbus-rtu-over-tcp); defaults are not applied here. */
  bus: ModbusBus;
  unitId: number;
  table: 'holding' | 'input';
  /** 0-based wire address. */
  address: number;
  count: number;
  timeoutMs?: number;
}

export interface ProbeDecoding {
  address: number;
  type: PointType;
  byteOrder: ByteOrder;
  value: string;
}

export interface ProbeResult {
  registers: number[];
  decodings: ProbeDecoding[];
}

const probeTypes: PointType[] = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64'];

/** Every type and byte order that fits at every start address in the registers. */
export function decodeAll(registers: number[], firstAddress: number): ProbeDecoding[] {
  const out: ProbeDecoding[] = [];
  for (let i = 0; i < registers.length; i++) {
    for (const type of probeTypes) {
      const n = registerCount(type);
      if (i + n > registers.length) continue;
      // For 16-bit values word order is meaningless: show ABCD and the byte-swapped BADC only.
      const orders = n === 1 ? (['ABCD', 'BADC'] as const) : byteOrders;
      for (const byteOrder of orders) {
        const value = decodeRegisters(registers.slice(i, i + n), type, byteOrder);
        out.push({ address: firstAddress + i, type, byteOrder, value: showValue(type, value) });
      }
    }
  }
  return out;
}

/**
 * A float as a person compares it with a display: float32 holds about 7 significant digits
 * (230.5 stays 230.5; 230.49999237060547 becomes 230.5), float64 about 15.
 */
function showValue(type: PointType, value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return String(value);
  if (type === 'float32') return String(Number(value.toPrecision(7)));
  if (type === 'float64') return String(Number(value.toPrecision(15)));
  return String(value);
}

/** Scales a raw register value commonly carries (a display's 230.5 V stored as 2305 with scale 0.1). */
const commonScales = [1, 0.1, 0.01, 0.001, 10, 100];

/**
 * `probe --expect VALUE`: the decodings within `tolerance` (relative, default 10%) of what the device's
 * display shows, directly or with one of the common scales (noted, for the mapping's "scale").
 */
export function nearValue(decodings: ProbeDecoding[], expected: number, tolerance = 0.1): Array<ProbeDecoding & { scale: number }> {
  const slack = Math.max(Math.abs(expected) * tolerance, 1e-9);
  const out: Array<ProbeDecoding & { scale: number }> = [];
  for (const d of decodings) {
    const v = Number(d.value);
    if (!Number.isFinite(v)) continue;
    const scale = commonScales.find((s) => Math.abs(v * s - expected) <= slack);
    if (scale !== undefined) out.push({ ...d, scale });
  }
  return out;
}

/** Why a probe failed, in terms of what to check (the socket error codes alone say little). */
export function probeFailure(err: unknown, bus: ModbusBus): Error {
  const code = (err as NodeJS.ErrnoException)?.code ?? (/\b(E[A-Z]+)\b/.exec((err as Error)?.message ?? '')?.[1]);
  const where = 'host' in bus ? `${bus.host}:${bus.port}` : bus.path;
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new Error(`${where} closed the connection (${code}) instead of answering: is it a Modbus TCP port? Some gateways take one client at a time: stop other masters (a running fieldgate polling this device) and try again`);
  }
  if (code === 'ECONNREFUSED') return new Error(`${where} refused the connection (ECONNREFUSED): nothing listens on that port`);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new Error(`${where} is not reachable (${code})`);
  if (code === 'ENOTFOUND') return new Error(`${where}: no such host (ENOTFOUND)`);
  return err instanceof Error ? err : new Error(String(err));
}

/** Reads `count` registers once (no scheduler: run it while the gateway is not polling that bus). */
export async function probeRegisters(options: ProbeOptions): Promise<ProbeResult> {
  if (options.count < 1 || options.count > 125) throw new RangeError('count must be 1…125');
  let link: Awaited<ReturnType<typeof openLink>>;
  try {
    link = await openLink(options.bus);
  } catch (err) {
    throw probeFailure(err, options.bus);
  }
  try {
    const request = readRequest(options.table === 'holding' ? 3 : 4, options.address, options.count);
    const reply = parseReply(request, await link.request(options.unitId, request, options.timeoutMs ?? 1000));
    const registers = reply.registers ?? [];
    return { registers, decodings: decodeAll(registers, options.address) };
  } catch (err) {
    if (err instanceof ModbusException) throw new Error(`unit ${options.unitId} refused the read: ${err.message}`);
    throw probeFailure(err, options.bus);
  } finally {
    await link.close();
  }
}

/** A plain-text table of a probe result for the terminal. */
export function formatProbe(result: ProbeResult, expected?: number): string {
  const lines = ['address  hex     ' + result.registers.map((r) => r.toString(16).padStart(4, '0')).join(' ')];
  if (expected === undefined) {
    for (const d of result.decodings) lines.push(`${String(d.address).padEnd(8)} ${d.type.padEnd(8)} ${d.byteOrder}  ${d.value}`);
    return lines.join('\n');
  }
  const near = nearValue(result.decodings, expected);
  if (near.length === 0) lines.push(`no decoding is within 10% of ${expected} (directly or × ${commonScales.slice(1).join(', ')}): check the address, the table (--table input|holding) and the unit`);
  for (const d of near) lines.push(`${String(d.address).padEnd(8)} ${d.type.padEnd(8)} ${d.byteOrder}  ${d.value}${d.scale === 1 ? '' : `  (× ${d.scale} = ${Number((Number(d.value) * d.scale).toPrecision(7))}: "scale": ${d.scale})`}`);
  return lines.join('\n');
}
