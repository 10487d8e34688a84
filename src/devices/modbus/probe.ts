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
        out.push({ address: firstAddress + i, type, byteOrder, value: String(value) });
      }
    }
  }
  return out;
}

/** Reads `count` registers once (no scheduler: run it while the gateway is not polling that bus). */
export async function probeRegisters(options: ProbeOptions): Promise<ProbeResult> {
  if (options.count < 1 || options.count > 125) throw new RangeError('count must be 1…125');
  const link = await openLink(options.bus);
  try {
    const request = readRequest(options.table === 'holding' ? 3 : 4, options.address, options.count);
    const reply = parseReply(request, await link.request(options.unitId, request, options.timeoutMs ?? 1000));
    const registers = reply.registers ?? [];
    return { registers, decodings: decodeAll(registers, options.address) };
  } catch (err) {
    if (err instanceof ModbusException) throw new Error(`unit ${options.unitId} refused the read: ${err.message}`);
    throw err;
  } finally {
    await link.close();
  }
}

/** A plain-text table of a probe result for the terminal. */
export function formatProbe(result: ProbeResult): string {
  const lines = ['address  hex     ' + result.registers.map((r) => r.toString(16).padStart(4, '0')).join(' ')];
  for (const d of result.decodings) lines.push(`${String(d.address).padEnd(8)} ${d.type.padEnd(8)} ${d.byteOrder}  ${d.value}`);
  return lines.join('\n');
}
