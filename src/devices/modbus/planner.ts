// Request planning: merge the points of one device into the fewest reads per table, within the
// per-request cap, bridging gaps of unused addresses up to maxGap, and never across a "barrier"
// (an address where a device refused a merged read before).
import type { ModbusDevice, ModbusPoint } from './model.js';
import { isBitTable } from './model.js';
import type { Table } from './schema.js';

export interface ReadBlock {
  table: Table;
  address: number;
  count: number;
  points: ModbusPoint[];
}

export interface PlanLimits {
  maxRegisters: number;
  maxBits: number;
  /** Registers a merged read may span without a point in them; bit tables allow 16× as many bits. */
  maxGap: number;
  /** `${table}:${address}` keys where a block must start. */
  barriers?: ReadonlySet<string>;
}

export function barrierKey(table: Table, address: number): string {
  return `${table}:${address}`;
}

const tableOrder: Table[] = ['coil', 'discrete-input', 'holding', 'input'];

export function planReads(points: readonly ModbusPoint[], limits: PlanLimits): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  for (const table of tableOrder) {
    const sorted = points.filter((p) => p.table === table).sort((a, b) => a.address - b.address);
    const bits = isBitTable(table);
    const cap = bits ? limits.maxBits : limits.maxRegisters;
    const gap = bits ? limits.maxGap * 16 : limits.maxGap;
    let current: ReadBlock | undefined;
    for (const p of sorted) {
      const end = p.address + p.count;
      if (current) {
        const currentEnd = current.address + current.count;
        const fits = Math.max(currentEnd, end) - current.address <= cap;
        const close = p.address - currentEnd <= gap;
        const barrier = limits.barriers?.has(barrierKey(table, p.address)) === true && p.address >= currentEnd;
        if (fits && close && !barrier) {
          current.count = Math.max(currentEnd, end) - current.address;
          current.points.push(p);
          continue;
        }
      }
      current = { table, address: p.address, count: p.count, points: [p] };
      blocks.push(current);
    }
  }
  return blocks;
}

/** The fewest requests any planner could issue for these points (no gap limit, only the cap and 64 KiB tables). */
export function minimumRequests(points: readonly ModbusPoint[], limits: Pick<PlanLimits, 'maxRegisters' | 'maxBits'>): number {
  return planReads(points, { ...limits, maxGap: 65536 }).length;
}

/** The reads one poll of these points (default: all the device's points) takes, with the device's own limits. */
export function planDeviceReads(device: ModbusDevice, points: readonly ModbusPoint[] = device.points, barriers?: ReadonlySet<string>): ReadBlock[] {
  return planReads(points, { maxRegisters: device.maxRegistersPerRequest, maxBits: device.maxBitsPerRequest, maxGap: device.maxGap, barriers });
}
