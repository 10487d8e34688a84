import { describe, expect, it } from 'vitest';
import type { ModbusPoint } from '../../src/devices/modbus/model.js';
import { barrierKey, planReads } from '../../src/devices/modbus/planner.js';

function point(name: string, table: ModbusPoint['table'], address: number, count = 1, extra: Partial<ModbusPoint> = {}): ModbusPoint {
  return { name, topic: `t/${name}`, table, address, count, type: count === 2 ? 'float32' : 'uint16', byteOrder: 'ABCD', pollIntervalMs: 1000, deadband: 0, writable: false, ...extra };
}

const limits = { maxRegisters: 125, maxBits: 2000, maxGap: 4 };

describe('read planner', () => {
  it('merges neighbours and small gaps into one read per table', () => {
    const blocks = planReads([point('a', 'input', 0, 2), point('b', 'input', 2, 2), point('c', 'input', 8, 2), point('d', 'holding', 0), point('e', 'coil', 3), point('f', 'coil', 40)], limits);
    expect(blocks.map((b) => [b.table, b.address, b.count, b.points.map((p) => p.name).join('')])).toEqual([
      ['coil', 3, 38, 'ef'],
      ['holding', 0, 1, 'd'],
      ['input', 0, 10, 'abc'],
    ]);
  });

  it('splits at gaps wider than maxGap and at the per-request cap', () => {
    expect(planReads([point('a', 'input', 0), point('b', 'input', 6)], limits)).toHaveLength(2);
    const many = Array.from({ length: 70 }, (_, i) => point(`p${i}`, 'input', i * 2, 2));
    const blocks = planReads(many, limits);
    expect(blocks.map((b) => b.count)).toEqual([124, 16]);
    const small = planReads(many, { ...limits, maxRegisters: 10 });
    expect(small).toHaveLength(14);
    expect(small.every((b) => b.count <= 10)).toBe(true);
  });

  it('never splits a multi-register value and keeps bits of one register together', () => {
    const blocks = planReads([point('a', 'holding', 0, 4), point('b', 'holding', 4, 1, { type: 'bit', bit: 0 }), point('c', 'holding', 4, 1, { type: 'bit', bit: 1 })], { ...limits, maxRegisters: 4 });
    expect(blocks.map((b) => [b.address, b.count, b.points.length])).toEqual([[0, 4, 1], [4, 1, 2]]);
  });

  it('starts a new read at a remembered barrier', () => {
    const pts = [point('a', 'input', 0), point('b', 'input', 1), point('c', 'input', 2)];
    const blocks = planReads(pts, { ...limits, barriers: new Set([barrierKey('input', 2)]) });
    expect(blocks.map((b) => [b.address, b.count])).toEqual([[0, 2], [2, 1]]);
  });
});
