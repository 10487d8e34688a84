// Raw parsed values → typed, scaled values and MQTT payloads; `…/set` payloads → text for the port.
import type { RawFieldValue } from './parsers.js';
import type { FieldValueType, LineField, LineSetCommand } from './schema.js';
import { scaleValue } from '../precision.js';

export type FieldValue = number | string | boolean;
export type Conversion<T> = { ok: true; value: T } | { ok: false; error: string };

const numberText = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function toNumber(raw: RawFieldValue): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === 'boolean') return raw ? 1 : 0;
  const text = raw.trim();
  if (/^0x[0-9a-f]+$/i.test(text)) return parseInt(text, 16);
  return numberText.test(text) ? Number(text) : undefined;
}

const trueWords = new Set(['1', 'true', 'on', 'yes', 'y', 't', 'high']);
const falseWords = new Set(['0', 'false', 'off', 'no', 'n', 'f', 'low']);

function toBoolean(raw: RawFieldValue): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'number') return raw !== 0;
  const word = raw.trim().toLowerCase();
  if (trueWords.has(word)) return true;
  if (falseWords.has(word)) return false;
  return undefined;
}

/** value = raw × scale + offset, rounded to `decimals` (integers: to a whole number). */
export function convertFieldValue(raw: RawFieldValue, field: Pick<LineField, 'type' | 'scale' | 'offset' | 'decimals'>): Conversion<FieldValue> {
  switch (field.type) {
    case 'string':
      return { ok: true, value: String(raw) };
    case 'boolean': {
      const value = toBoolean(raw);
      return value === undefined ? { ok: false, error: `${JSON.stringify(raw)} is not a boolean` } : { ok: true, value };
    }
    case 'number':
    case 'integer': {
      const n = toNumber(raw);
      if (n === undefined) return { ok: false, error: `${JSON.stringify(raw)} is not a number` };
      const value = field.type === 'integer' ? Math.round(n * field.scale + field.offset) : scaleValue(n, field.scale, field.offset, field.decimals);
      return Number.isFinite(value) ? { ok: true, value } : { ok: false, error: `${JSON.stringify(raw)} scales to ${value}` };
    }
  }
}

export function payloadOf(value: FieldValue): string {
  return typeof value === 'string' ? value : String(value);
}

/** Validates a `…/set` payload for a command and renders the text to write to the port. */
export function buildSetCommand(payload: string, command: LineSetCommand): { ok: true; value: FieldValue; text: string } | { ok: false; error: string } {
  const parsed = parseSetValue(payload, command.type, command);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  let text: string;
  if (typeof value === 'boolean') text = value ? command.trueText : command.falseText;
  else if (typeof value === 'number') text = command.decimals === undefined ? String(value) : value.toFixed(command.decimals);
  else text = value;
  return { ok: true, value, text: renderTemplate(command.template, text) };
}

function parseSetValue(payload: string, type: FieldValueType, command: LineSetCommand): Conversion<FieldValue> {
  const text = payload.trim();
  switch (type) {
    case 'string':
      // A line break inside the value would let a publisher append commands of its own.
      if (/[\x00-\x1f\x7f]/.test(payload)) return { ok: false, error: 'control characters (CR, LF, …) are not allowed in the value' };
      if (payload.length > command.maxLength) return { ok: false, error: `longer than ${command.maxLength} characters` };
      return { ok: true, value: payload };
    case 'boolean': {
      const value = toBoolean(text);
      return value === undefined ? { ok: false, error: `expected true/false, on/off or 1/0 (got ${JSON.stringify(payload)})` } : { ok: true, value };
    }
    case 'number':
    case 'integer': {
      const n = numberText.test(text) ? Number(text) : NaN;
      if (!Number.isFinite(n)) return { ok: false, error: `expected a number (got ${JSON.stringify(payload)})` };
      if (type === 'integer' && !Number.isInteger(n)) return { ok: false, error: `expected an integer (got ${JSON.stringify(payload)})` };
      if (command.min !== undefined && n < command.min) return { ok: false, error: `${n} is below the minimum ${command.min}` };
      if (command.max !== undefined && n > command.max) return { ok: false, error: `${n} is above the maximum ${command.max}` };
      return { ok: true, value: n };
    }
  }
}

/** Replaces "{value}"; "{{" and "}}" stand for literal braces. */
export function renderTemplate(template: string, value: string): string {
  return template.replace(/\{\{|\}\}|\{value\}/g, (token) => (token === '{{' ? '{' : token === '}}' ? '}' : value));
}
