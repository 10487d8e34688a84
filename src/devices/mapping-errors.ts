// Turns zod issues into one-line errors a user can act on:
//   devices/meter.json: devices[0].points[3].type: expected one of int16, uint16, … (got "float")
import type { z } from 'zod';

export interface MappingError {
  file: string;
  /** JSON path like `devices[0].points[3].type` ('' for the whole file). */
  path: string;
  message: string;
}

export function formatMappingError(e: MappingError): string {
  return e.path ? `${e.file}: ${e.path}: ${e.message}` : `${e.file}: ${e.message}`;
}

export function joinPath(base: string, segments: ReadonlyArray<PropertyKey>): string {
  let out = base;
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? String(s) : `.${String(s)}`;
  }
  return out;
}

export function describeInput(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** Suggests the closest known key for a misspelt one. */
export function closestKey(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = key.toLowerCase();
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    const d = c.startsWith(lower) || lower.startsWith(c) ? 1 : editDistance(lower, c);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue ? ` (got ${describeInput(issue.input)})` : '';
  switch (issue.code) {
    case 'invalid_type':
      if (!('input' in issue) || issue.input === undefined) return `missing: expected ${issue.expected === 'int' ? 'an integer' : issue.expected}`;
      return `expected ${issue.expected === 'int' ? 'an integer' : issue.expected}${got}`;
    case 'invalid_value':
      if (issue.values.length === 1) return `expected ${JSON.stringify(issue.values[0])}${got}`;
      return `expected one of ${issue.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}${got}`;
    case 'too_big':
      return issue.origin === 'array' || issue.origin === 'string'
        ? `at most ${String(issue.maximum)} ${issue.origin === 'array' ? 'items' : 'characters'}`
        : `expected at most ${String(issue.maximum)}${got}`;
    case 'too_small':
      return issue.origin === 'array' || issue.origin === 'string'
        ? `needs at least ${String(issue.minimum)} ${issue.origin === 'array' ? 'item(s)' : 'character(s)'}`
        : `expected at least ${String(issue.minimum)}${got}`;
    case 'invalid_format':
      return `${issue.message}${got}`;
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        // zod reports the whole object as input; the user needs to see the tag value they wrote.
        const options = ((issue as { options?: unknown[] }).options ?? []).map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join(', ');
        const value = discriminatorValue(issue.input, String(issue.discriminator));
        return value === undefined ? `missing: expected one of ${options}` : `expected one of ${options} (got ${describeInput(value)})`;
      }
      const literals = issue.errors.flat().filter((e) => e.code === 'invalid_value').flatMap((e) => (e as { values: unknown[] }).values);
      if (literals.length > 0) return `expected one of ${literals.map((v) => JSON.stringify(v)).join(', ')}${got}`;
      return `${issue.message}${got}`;
    }
    default:
      return `${issue.message}${got}`;
  }
}

function discriminatorValue(input: unknown, key: string): unknown {
  return typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>)[key] : input;
}

/** The JSON path of an issue; a discriminator issue points at the discriminator key itself. */
function issuePath(basePath: string, issue: z.core.$ZodIssue): string {
  const segments: PropertyKey[] = [...issue.path];
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator && segments.at(-1) !== issue.discriminator) segments.push(String(issue.discriminator));
  return joinPath(basePath, segments);
}

/** One MappingError per zod issue; unknown keys become one error each, with a "did you mean". */
export function issuesToErrors(file: string, basePath: string, issues: readonly z.core.$ZodIssue[], knownKeys: () => Iterable<string>): MappingError[] {
  const out: MappingError[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const hint = closestKey(key, knownKeys());
        out.push({ file, path: joinPath(basePath, [...issue.path, key]), message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ' (remove it, or use "description" for notes)'}` });
      }
      continue;
    }
    out.push({ file, path: issuePath(basePath, issue), message: issueMessage(issue) });
  }
  return out;
}
