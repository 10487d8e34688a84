// From raw register values to what a user sees (scale, offset, decimals) and back for writes.
import type { RawValue } from './codec.js';
import type { ModbusPoint } from './model.js';
import { scaleValue } from '../precision.js';

export type PointValue = number | bigint | boolean | string;

function isScaled(p: ModbusPoint): boolean {
  return p.scale !== undefined || p.offset !== undefined || p.decimals !== undefined;
}

export function toEngineering(p: ModbusPoint, raw: RawValue): PointValue {
  if (typeof raw === 'boolean' || typeof raw === 'string') return raw;
  if (typeof raw === 'bigint' && !isScaled(p)) return raw;
  return scaleValue(Number(raw), p.scale ?? 1, p.offset ?? 0, p.decimals);
}

/** MQTT payload text of a value: numbers and booleans as JSON would write them, NaN as "NaN". */
export function formatValue(v: PointValue): string {
  if (typeof v === 'string') return v;
  return String(v);
}

/** The value inside the JSON state message (JSON has no NaN, Infinity or bigint). */
export function jsonValue(v: PointValue): number | boolean | string | null {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  return v;
}

export class CommandError extends Error {}

/**
 * Parses a `…/set` payload for a point and returns the raw value to encode. Accepts plain text
 * ("21.5", "true", "on") or JSON ({"value": 21.5}). Checks writable, min and max.
 */
export function parseCommand(p: ModbusPoint, payload: string): RawValue {
  if (!p.writable) throw new CommandError(`point "${p.name}" is not writable`);
  let text = payload.trim();
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { value?: unknown };
      if (parsed.value === undefined) throw new Error();
      text = String(parsed.value);
    } catch {
      throw new CommandError('expected a value, or JSON like {"value": 12}');
    }
  }
  if (p.type === 'bool' || p.type === 'bit') {
    const t = text.toLowerCase();
    if (['true', '1', 'on'].includes(t)) return true;
    if (['false', '0', 'off'].includes(t)) return false;
    throw new CommandError(`expected true/false, 1/0 or on/off (got ${JSON.stringify(text)})`);
  }
  if (p.type === 'string') return text;
  if (text === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new CommandError(`expected a number (got ${JSON.stringify(text)})`);
  const value = Number(text);
  if (p.min !== undefined && value < p.min) throw new CommandError(`${value} is below min ${p.min}`);
  if (p.max !== undefined && value > p.max) throw new CommandError(`${value} is above max ${p.max}`);
  const integer = p.type !== 'float32' && p.type !== 'float64';
  if (!isScaled(p)) {
    if (integer && !Number.isInteger(value)) throw new CommandError(`${p.type} needs an integer (got ${text})`);
    if ((p.type === 'int64' || p.type === 'uint64') && /^[-+]?\d+$/.test(text)) return BigInt(text);
    return value;
  }
  const raw = (value - (p.offset ?? 0)) / (p.scale ?? 1);
  if (!integer) return raw;
  const rounded = Math.round(raw);
  if (Math.abs(raw - rounded) > 1e-6 * Math.max(1, Math.abs(raw))) {
    throw new CommandError(`${value} is not a multiple of the point's scale ${p.scale ?? 1}`);
  }
  return rounded;
}
