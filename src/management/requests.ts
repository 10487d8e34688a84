// Request bodies, validated with zod and answered with the errors `fieldgate check` gives for a config:
//   request fieldgate/gw/request/client/disconnect: clientId: missing: expected string
import { z } from 'zod';
import { formatMappingError, issuesToErrors, type MappingError } from '../devices/mapping-errors.js';
import { byteOrders } from '../devices/modbus/codec.js';
import { describeJsonError, parseJsonText } from '../config/json-text.js';

/** Every request may carry a `transaction`, echoed in the answer (for clients without a v5 Correlation Data). */
const transaction = z.union([z.string().max(256), z.number()]).optional();
const empty = z.strictObject({ transaction });
const clientId = z.string().min(1).max(65535);
const id = z.string().min(1).max(256);
const rowIds = z.array(z.number().int().min(1)).min(1).max(10_000);
/** Dead letters are chosen by id, or all of them: never an empty choice that looks like "all". */
const deadChoice = z.union([
  z.strictObject({ transaction, bridge: id, ids: rowIds }),
  z.strictObject({ transaction, bridge: id, all: z.literal(true) }),
]);
const registerTable = z.enum(['holding', 'input']);
const unitId = z.number().int().min(0).max(255);
const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** Numeric types a register decoding can have (what bus/read shows). */
const decodedTypes = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'] as const;

export const requestSchemas = {
  info: empty,
  parts: empty,
  devices: empty,
  bridges: empty,
  clients: empty,
  sessions: empty,
  check: empty,
  'client/disconnect': z.strictObject({ transaction, clientId }),
  'session/remove': z.strictObject({ transaction, clientId }),
  device: z.strictObject({ transaction, id }),
  history: z.strictObject({ transaction, points: z.array(id).max(1000).optional(), since: z.number().int().min(0).optional() }),
  logs: z.strictObject({
    transaction,
    level: z.enum(logLevels).optional(),
    part: z.string().min(1).max(64).optional(),
    after: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(1000).default(200),
  }),
  'bridge/dead/list': z.strictObject({ transaction, bridge: id, after: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(100) }),
  'bridge/dead/retry': deadChoice,
  'bridge/dead/delete': deadChoice,
  'bus/scan': z.strictObject({
    transaction, bus: id,
    from: z.number().int().min(0).max(255).default(1),
    to: z.number().int().min(0).max(255).default(247),
    table: registerTable.default('holding'),
    address: z.number().int().min(0).max(65535).default(0),
    timeoutMs: z.number().int().min(20).max(5000).default(200),
  }).refine((b) => b.to >= b.from, { message: 'expected "to" ≥ "from"', path: ['to'] })
    .refine((b) => b.to - b.from < 247, { message: 'expected at most 247 unit ids in one scan', path: ['to'] }),
  'bus/read': z.strictObject({
    transaction, bus: id, unitId,
    table: registerTable.default('holding'),
    address: z.number().int().min(0).max(65535),
    count: z.number().int().min(1).max(125).default(4),
    expect: z.number().finite().optional(),
    tolerance: z.number().min(0).max(1).default(0.1),
    timeoutMs: z.number().int().min(20).max(10_000).default(1000),
  }).refine((b) => b.address + b.count <= 65536, { message: 'expected address + count ≤ 65536', path: ['count'] }),
  'bus/point': z.strictObject({
    transaction,
    name: z.string().min(1).max(256),
    table: registerTable,
    address: z.number().int().min(0).max(65535),
    type: z.enum(decodedTypes),
    byteOrder: z.enum(byteOrders).default('ABCD'),
    scale: z.number().finite().optional(),
    unit: z.string().max(64).optional(),
    decimals: z.number().int().min(0).max(15).optional(),
    device: id.optional(),
  }),
  'mapping/get': z.strictObject({ transaction, file: z.string().min(1).max(4096).optional() }),
  'mapping/save': z.strictObject({ transaction, file: z.string().min(1).max(4096), text: z.string().max(4 * 1024 * 1024) }),
  'homeassistant/entities': empty,
} as const;

export type Action = keyof typeof requestSchemas;
export type RequestBody<A extends Action> = z.output<(typeof requestSchemas)[A]>;
export const ACTIONS = Object.keys(requestSchemas) as Action[];

export function isAction(name: string): name is Action {
  return Object.hasOwn(requestSchemas, name);
}

/** One error as `fieldgate check` prints it, with its parts for a program. */
export interface RequestError {
  path: string;
  message: string;
  text: string;
  /** For errors in a mapping file (mapping/save): the file, `path` being the JSON path in it. */
  file?: string;
}

export function requestError(source: string, path: string, message: string): RequestError {
  const e: MappingError = { file: source, path, message };
  return { path, message, text: formatMappingError(e) };
}

export type Parsed<A extends Action> = { ok: true; body: RequestBody<A> } | { ok: false; errors: RequestError[]; transaction?: string | number };

/** Parses and validates a request's payload: an empty payload is `{}`. Never throws. */
export function parseRequest<A extends Action>(action: A, payload: Buffer, source: string): Parsed<A> {
  let input: unknown = {};
  if (payload.length > 0) {
    // Line and column as `fieldgate check` says them, not V8's wording of JSON.parse's error.
    const parsed = parseJsonText(payload.toString('utf8'));
    if (!parsed.ok) return { ok: false, errors: [requestError(source, '', `${describeJsonError(parsed)}; a request body is a JSON object, or nothing`)] };
    input = parsed.value;
  }
  const schema = requestSchemas[action] as unknown as z.ZodType<RequestBody<A>>;
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return { ok: true, body: result.data };
  const errors = issuesToErrors(source, '', result.error.issues, () => knownKeys(requestSchemas[action]))
    .map((e) => ({ path: e.path, message: e.message, text: formatMappingError(e) }));
  return { ok: false, errors, transaction: echoable(input) };
}

/** The transaction of a request for an unknown action, echoed in its error answer when it is valid. */
export function requestTransaction(payload: Buffer): string | number | undefined {
  try {
    return echoable(JSON.parse(payload.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** The transaction of a body that failed validation, when it is itself valid. */
function echoable(input: unknown): string | number | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return undefined;
  const parsed = transaction.safeParse((input as Record<string, unknown>).transaction);
  return parsed.success ? parsed.data : undefined;
}

/** The keys a body may have (for "did you mean"), also of a union of objects or a refined object. */
function knownKeys(schema: z.ZodType): string[] {
  const def = (schema as unknown as { def: { type: string; options?: z.ZodType[]; in?: z.ZodType } }).def;
  if ('shape' in schema) return Object.keys((schema as z.ZodObject).shape);
  if (def.type === 'union') return [...new Set(def.options!.flatMap(knownKeys))];
  if (def.type === 'pipe' && def.in) return knownKeys(def.in);
  return [];
}
