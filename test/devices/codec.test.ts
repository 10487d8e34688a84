import { describe, expect, it } from 'vitest';
import { decodeRegisters, encodeRegisters, setBit, type ByteOrder, type PointType } from '../../src/devices/modbus/codec.js';

// Known wire images, written out by hand from the IEEE 754 / two's-complement encodings.
const cases: Array<{ type: PointType; value: number | bigint | string | boolean; order: ByteOrder; regs: number[] }> = [
  { type: 'int16', value: -1234, order: 'ABCD', regs: [0xfb2e] },
  { type: 'int16', value: -1234, order: 'BADC', regs: [0x2efb] },
  { type: 'uint16', value: 65535, order: 'ABCD', regs: [0xffff] },
  { type: 'uint16', value: 0x1234, order: 'DCBA', regs: [0x3412] },
  { type: 'int32', value: -2, order: 'ABCD', regs: [0xffff, 0xfffe] },
  { type: 'int32', value: -123456789, order: 'ABCD', regs: [0xf8a4, 0x32eb] },
  { type: 'int32', value: -123456789, order: 'CDAB', regs: [0x32eb, 0xf8a4] },
  { type: 'int32', value: -123456789, order: 'BADC', regs: [0xa4f8, 0xeb32] },
  { type: 'int32', value: -123456789, order: 'DCBA', regs: [0xeb32, 0xa4f8] },
  { type: 'uint32', value: 4000000000, order: 'ABCD', regs: [0xee6b, 0x2800] },
  { type: 'uint32', value: 4000000000, order: 'CDAB', regs: [0x2800, 0xee6b] },
  { type: 'float32', value: 123.45600128173828, order: 'ABCD', regs: [0x42f6, 0xe979] },
  { type: 'float32', value: 123.45600128173828, order: 'CDAB', regs: [0xe979, 0x42f6] },
  { type: 'float32', value: 123.45600128173828, order: 'BADC', regs: [0xf642, 0x79e9] },
  { type: 'float32', value: 123.45600128173828, order: 'DCBA', regs: [0x79e9, 0xf642] },
  { type: 'float32', value: -230.5, order: 'ABCD', regs: [0xc366, 0x8000] },
  { type: 'float64', value: -1.5, order: 'ABCD', regs: [0xbff8, 0, 0, 0] },
  { type: 'float64', value: -1.5, order: 'CDAB', regs: [0, 0, 0, 0xbff8] },
  { type: 'float64', value: -1.5, order: 'BADC', regs: [0xf8bf, 0, 0, 0] },
  { type: 'float64', value: -1.5, order: 'DCBA', regs: [0, 0, 0, 0xf8bf] },
  { type: 'int64', value: -1234567890123n, order: 'ABCD', regs: [0xffff, 0xfee0, 0x8e04, 0xfb35] },
  { type: 'int64', value: -1234567890123n, order: 'CDAB', regs: [0xfb35, 0x8e04, 0xfee0, 0xffff] },
  { type: 'int64', value: -1234567890123n, order: 'BADC', regs: [0xffff, 0xe0fe, 0x048e, 0x35fb] },
  { type: 'int64', value: -1234567890123n, order: 'DCBA', regs: [0x35fb, 0x048e, 0xe0fe, 0xffff] },
  { type: 'uint64', value: 18446744073709551615n, order: 'ABCD', regs: [0xffff, 0xffff, 0xffff, 0xffff] },
  { type: 'uint64', value: 0x0102030405060708n, order: 'ABCD', regs: [0x0102, 0x0304, 0x0506, 0x0708] },
  { type: 'uint64', value: 0x0102030405060708n, order: 'DCBA', regs: [0x0807, 0x0605, 0x0403, 0x0201] },
  { type: 'string', value: 'SDM630', order: 'ABCD', regs: [0x5344, 0x4d36, 0x3330, 0, 0] },
  { type: 'string', value: 'SDM630', order: 'BADC', regs: [0x4453, 0x364d, 0x3033, 0, 0] },
  { type: 'bool', value: true, order: 'ABCD', regs: [1] },
  { type: 'bool', value: false, order: 'ABCD', regs: [0] },
];

describe('register codec', () => {
  for (const c of cases) {
    it(`${c.type} ${String(c.value)} in ${c.order}`, () => {
      expect(decodeRegisters(c.regs, c.type, c.order)).toEqual(c.value);
      const length = c.type === 'string' ? c.regs.length : 0;
      expect(encodeRegisters(c.value, c.type, c.order, length)).toEqual(c.regs);
    });
  }

  it('decodes NaN and infinities in every order', () => {
    expect(decodeRegisters([0x7fc0, 0x0000], 'float32', 'ABCD')).toBeNaN();
    expect(decodeRegisters([0x0000, 0x7fc0], 'float32', 'CDAB')).toBeNaN();
    expect(decodeRegisters([0xc07f, 0x0000], 'float32', 'BADC')).toBeNaN();
    expect(decodeRegisters([0x0000, 0xc07f], 'float32', 'DCBA')).toBeNaN();
    expect(decodeRegisters([0x7ff8, 0, 0, 0], 'float64', 'ABCD')).toBeNaN();
    expect(decodeRegisters([0xff80, 0x0000], 'float32', 'ABCD')).toBe(-Infinity);
    expect(encodeRegisters(Number.NaN, 'float32', 'ABCD')).toEqual([0x7fc0, 0x0000]);
  });

  it('reads one bit of a register, least significant bit = 0', () => {
    expect(decodeRegisters([0b1000_0000_0000_0100], 'bit', 'ABCD', 2)).toBe(true);
    expect(decodeRegisters([0b1000_0000_0000_0100], 'bit', 'ABCD', 1)).toBe(false);
    expect(decodeRegisters([0b1000_0000_0000_0100], 'bit', 'ABCD', 15)).toBe(true);
    expect(setBit(0x8004, 2, false)).toBe(0x8000);
    expect(setBit(0x8000, 0, true)).toBe(0x8001);
  });

  it('rejects values that do not fit the type', () => {
    expect(() => encodeRegisters(40000, 'int16')).toThrow(/-32768…32767/);
    expect(() => encodeRegisters(-1, 'uint16')).toThrow(RangeError);
    expect(() => encodeRegisters(1.5, 'int32')).toThrow(/integer/);
    expect(() => encodeRegisters('abc', 'float32')).toThrow(/number/);
    expect(() => encodeRegisters(-1, 'uint64')).toThrow(RangeError);
    expect(() => encodeRegisters('toolong', 'string', 'ABCD', 2)).toThrow(/longer/);
  });

  it('refuses to decode from too few registers', () => {
    expect(() => decodeRegisters([1], 'float32')).toThrow(/needs 2 registers/);
  });
});
