// Turns one frame of text into named raw values, by the device's parser configuration.
import { parseNmeaSentence } from './nmea.js';
import type { LineParserConfig } from './schema.js';

export type RawFieldValue = string | number | boolean;

export type ParseOutcome =
  | { ok: true; fields: Record<string, RawFieldValue> }
  | { ok: false; reason: 'no-match' | 'invalid-json' | 'checksum' | 'no-checksum' | 'malformed'; detail: string };

export type LineParser = (frame: string) => ParseOutcome;

export function createLineParser(config: LineParserConfig): LineParser {
  switch (config.type) {
    case 'regex':
      return regexParser(new RegExp(config.pattern, config.flags));
    case 'json':
      return parseJsonLine;
    case 'key-value':
      return keyValueParser(config.pairSeparator, config.keyValueSeparator);
    case 'nmea0183':
      return (frame) => {
        const result = parseNmeaSentence(frame, config.requireChecksum);
        return result.ok ? { ok: true, fields: result.fields } : result;
      };
  }
}

function regexParser(re: RegExp): LineParser {
  return (frame) => {
    const m = re.exec(frame);
    re.lastIndex = 0;
    if (!m?.groups) return { ok: false, reason: 'no-match', detail: `does not match ${re}` };
    const fields: Record<string, RawFieldValue> = {};
    for (const [name, value] of Object.entries(m.groups)) if (value !== undefined) fields[name] = value;
    return { ok: true, fields };
  };
}

/** One JSON object per line; nested objects and arrays become dotted names ("env.temp", "values.0"). */
export function parseJsonLine(frame: string): ParseOutcome {
  let value: unknown;
  try {
    value = JSON.parse(frame);
  } catch (err) {
    return { ok: false, reason: 'invalid-json', detail: (err as Error).message };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'invalid-json', detail: 'expected a JSON object' };
  }
  const fields: Record<string, RawFieldValue> = {};
  flatten(value as Record<string, unknown>, '', fields, 0);
  return { ok: true, fields };
}

function flatten(value: Record<string, unknown> | unknown[], prefix: string, out: Record<string, RawFieldValue>, depth: number): void {
  if (depth > 16) return;
  for (const [key, v] of Object.entries(value)) {
    const name = prefix + key;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[name] = v;
    else if (typeof v === 'object' && v !== null) flatten(v as Record<string, unknown>, `${name}.`, out, depth + 1);
  }
}

function keyValueParser(pairSeparator: string | undefined, keyValueSeparator: string): LineParser {
  return (frame) => {
    const pairs = pairSeparator === undefined ? frame.split(/[\s,;]+/) : frame.split(pairSeparator);
    const fields: Record<string, RawFieldValue> = {};
    let found = 0;
    for (const pair of pairs) {
      const at = pair.indexOf(keyValueSeparator);
      if (at <= 0) continue;
      const key = pair.slice(0, at).trim();
      if (key === '') continue;
      fields[key] = pair.slice(at + keyValueSeparator.length).trim();
      found++;
    }
    if (found === 0) return { ok: false, reason: 'no-match', detail: `no "key${keyValueSeparator}value" pairs` };
    return { ok: true, fields };
  };
}
