// raw × scale + offset in binary floating point leaves noise (-12 × 0.1 = -1.2000000000000002). The
// result has no more decimal places than the raw value's plus the scale's (and the offset's): round
// to that, which removes the noise and nothing else. An explicit "decimals" still wins.

/** Digits after the decimal point in the shortest decimal form of `x` (0.1 → 1, 2.5e-7 → 8, 120 → 0). */
export function decimalPlaces(x: number): number {
  if (!Number.isFinite(x)) return 0;
  const [mantissa, exponent] = String(Math.abs(x)).split('e');
  const fraction = mantissa!.split('.')[1]?.length ?? 0;
  return Math.max(0, fraction - Number(exponent ?? 0));
}

/** Rounds half away from zero on decimal digits (12.345 → 12.35, not 12.34 as toFixed gives). */
export function roundDecimal(value: number, decimals: number): number {
  if (!Number.isFinite(value)) return value;
  const sign = value < 0 ? -1 : 1;
  const text = String(Math.abs(value));
  if (text.includes('e')) return sign * (Math.round(Math.abs(value) * 10 ** decimals) / 10 ** decimals);
  return sign * Number(`${Math.round(Number(`${text}e${decimals}`))}e-${decimals}`);
}

/** raw × scale + offset, rounded to `decimals` when given, else to the precision scale and offset imply. */
export function scaleValue(raw: number, scale: number, offset: number, decimals: number | undefined): number {
  const value = raw * scale + offset;
  if (decimals !== undefined) return roundDecimal(value, decimals);
  if (scale === 1 && offset === 0) return value;
  const implied = Math.max(decimalPlaces(raw) + decimalPlaces(scale), decimalPlaces(offset));
  return implied > 15 ? Number(value.toPrecision(15)) : roundDecimal(value, implied);
}
