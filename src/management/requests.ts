// Request bodies, validated with zod and answered with the errors `fieldgate check` gives for a config:
//   request fieldgate/gw/request/client/disconnect: clientId: missing: expected string
import { z } from 'zod';
import { formatMappingError, issuesToErrors, type MappingError } from '../devices/mapping-errors.js';

/** Every request may carry a `transaction`, echoed in the answer (for clients without a v5 Correlation Data). */
const transaction = z.union([z.string().max(256), z.number()]).optional();
const empty = z.strictObject({ transaction });
const clientId = z.string().min(1).max(65535);

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
    try {
      input = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      return { ok: false, errors: [requestError(source, '', `not valid JSON: ${(error as Error).message} (expected a JSON object, or nothing)`)] };
    }
  }
  const schema = requestSchemas[action] as unknown as z.ZodType<RequestBody<A>>;
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return { ok: true, body: result.data };
  const errors = issuesToErrors(source, '', result.error.issues, () => Object.keys((requestSchemas[action] as z.ZodObject).shape))
    .map((e) => ({ path: e.path, message: e.message, text: formatMappingError(e) }));
  return { ok: false, errors, transaction: echoable(input) };
}

/** The transaction of a body that failed validation, when it is itself valid. */
function echoable(input: unknown): string | number | undefined {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return undefined;
  const parsed = transaction.safeParse((input as Record<string, unknown>).transaction);
  return parsed.success ? parsed.data : undefined;
}
