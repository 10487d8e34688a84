// Every int16 and a sweep of uint32 raw values through the scales data sheets use: the published text
// has no more decimals than the scale implies and is the exact decimal result.
import { describe, expect, it } from 'vitest';
import { convertFieldValue } from '../../src/devices/line/values.js';
import { decimalPlaces, scaleValue } from '../../src/devices/precision.js';

/** raw × scale + offset computed in decimal (integers scaled by powers of ten), as a person would. */
function exact(raw: number, scale: number, offset: number): number {
  const d = Math.max(decimalPlaces(scale), decimalPlaces(offset));
  const k = 10 ** d;
  return (raw * Math.round(scale * k) + Math.round(offset * k)) / k;
}

describe('scaled values carry no binary noise', () => {
  it('every int16 × 0.1, 0.01, 0.001, 0.5, 0.25, 0.2 (with and without an offset)', () => {
    for (const [scale, offset] of [[0.1, 0], [0.01, 0], [0.001, 0], [0.5, 0], [0.25, 0], [0.2, 0], [0.1, -273.15], [0.01, 0.5]] as const) {
      const allowed = Math.max(decimalPlaces(scale), decimalPlaces(offset));
      for (let raw = -32768; raw <= 32767; raw++) {
        const v = scaleValue(raw, scale, offset, undefined);
        if (v !== exact(raw, scale, offset) || decimalPlaces(v) > allowed) {
          expect.fail(`${raw} × ${scale} + ${offset} gave ${v}`);
        }
      }
    }
  });

  it('uint32 energy counters × 0.01 and 0.001', () => {
    for (let raw = 0; raw < 2 ** 32; raw += 104_729) {
      for (const scale of [0.01, 0.001]) expect(scaleValue(raw, scale, 0, undefined)).toBe(exact(raw, scale, 0));
    }
  });

  it('"decimals" still wins, and float raw values keep their precision', () => {
    expect(scaleValue(-12, 0.1, 0, 3)).toBe(-1.2);
    expect(scaleValue(12345, 0.001, 0, 1)).toBe(12.3);
    expect(scaleValue(12.345, 1, 0, 2)).toBe(12.35);
    // A float32 reading × 0.1 keeps its digits (only the product's noise goes).
    expect(scaleValue(230.1999969482422, 0.1, 0, undefined)).toBe(23.01999969482422);
    expect(scaleValue(5, 1, 0, undefined)).toBe(5);
  });

  it('line-device fields get the same treatment', () => {
    expect(convertFieldValue('-12', { type: 'number', scale: 0.1, offset: 0, decimals: undefined })).toEqual({ ok: true, value: -1.2 });
    expect(convertFieldValue('12.3', { type: 'number', scale: 0.1, offset: 0, decimals: undefined })).toEqual({ ok: true, value: 1.23 });
  });
});
