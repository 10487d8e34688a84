// `bridge/dead/list`, `bridge/dead/retry`, `bridge/dead/delete`: a bridge's dead letters (bridge_dead).
import { isUtf8 } from 'node:buffer';
import type { DeadLetter, DeadLetters } from '../bridge/dead-letters.js';
import type { ActionResult, Handlers } from './actions.js';
import { requestError } from './requests.js';

export const DEAD_PAYLOAD_SHOWN = 4096;

export interface DeadLetterSources {
  bridgeNames(): string[];
  /** undefined: no such bridge; null: its outbox is not open (yet). */
  deadLetters(bridge: string): DeadLetters | null | undefined;
}

const fail = (source: string, path: string, message: string): ActionResult => ({ ok: false, errors: [requestError(source, path, message)] });

export function deadLetterHandlers(s: DeadLetterSources): Pick<Handlers, 'bridge/dead/list' | 'bridge/dead/retry' | 'bridge/dead/delete'> {
  const open = (bridge: string, source: string): DeadLetters | ActionResult => {
    const dead = s.deadLetters(bridge);
    if (dead === undefined) return fail(source, 'bridge', `no bridge has this name (got ${JSON.stringify(bridge)}; bridges: ${s.bridgeNames().join(', ') || 'none'})`);
    if (dead === null) return fail(source, 'bridge', 'the bridge\'s outbox is not open (see the bridges action\'s outboxError)');
    return dead;
  };
  const choiceOf = (body: { ids?: number[]; all?: true }) => (body.all === true ? { all: true as const } : { ids: body.ids ?? [] });
  return {
    'bridge/dead/list': async (body, source) => {
      await outsideTransactions(s, body.bridge);
      const dead = open(body.bridge, source);
      if (!('list' in dead)) return dead;
      return { ok: true, data: { bridge: body.bridge, total: dead.count(), rows: dead.list(body.after, body.limit).map(shown) } };
    },
    'bridge/dead/retry': async (body, source) => {
      await outsideTransactions(s, body.bridge);
      const dead = open(body.bridge, source);
      if (!('list' in dead)) return dead;
      return { ok: true, data: { bridge: body.bridge, retried: dead.retry(choiceOf(body)) } };
    },
    'bridge/dead/delete': async (body, source) => {
      await outsideTransactions(s, body.bridge);
      const dead = open(body.bridge, source);
      if (!('list' in dead)) return dead;
      return { ok: true, data: { bridge: body.bridge, deleted: dead.delete(choiceOf(body)) } };
    },
  };
}

/**
 * A request may arrive while the broker's group commit is open: our changes would join it and could be
 * rolled back with it after we answered. Wait (a few turns, bounded) until no transaction is open.
 */
async function outsideTransactions(s: DeadLetterSources, bridge: string): Promise<void> {
  const dead = s.deadLetters(bridge);
  if (!dead) return;
  for (let i = 0; i < 1000 && dead.inTransaction; i++) await new Promise((resolve) => setTimeout(resolve, 1));
}

function shown(row: DeadLetter) {
  const cutPayload = row.payload.subarray(0, DEAD_PAYLOAD_SHOWN);
  const textEnd = textLength(cutPayload, row.payload.length > DEAD_PAYLOAD_SHOWN);
  const utf8 = textEnd >= 0;
  return {
    id: row.id, topic: row.topic, bytes: row.payload.length,
    payload: utf8 ? cutPayload.subarray(0, textEnd).toString('utf8') : cutPayload.toString('base64'),
    payloadEncoding: utf8 ? 'utf8' : 'base64',
    truncated: row.payload.length > DEAD_PAYLOAD_SHOWN,
    retain: row.retain, reason: row.reason,
    createdAt: new Date(row.createdAt).toISOString(), deadAt: new Date(row.deadAt).toISOString(),
  };
}

/** The length of `b` that is UTF-8 text (a character cut in two at the 4 KiB limit left out), or -1 when it is not text. */
function textLength(b: Buffer, cut: boolean): number {
  if (isUtf8(b)) return b.length;
  if (!cut) return -1;
  for (let drop = 1; drop <= 3 && drop < b.length; drop++) if (isUtf8(b.subarray(0, b.length - drop))) return b.length - drop;
  return -1;
}
