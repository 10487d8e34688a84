// Several rounds of the same scenario on a shared machine: other people's work only ever makes a
// broker look slower, so the best round is the closest to what the broker can do. Losses are not
// averaged away: the worst round's loss is reported.

import { formatCount } from '../lib/table.js';
import type { ScenarioResult } from './scenario.js';

function key(result: ScenarioResult): number {
  // Latency rounds are compared by p99 (the last figure), the others by their only figure.
  const figure = result.figures[result.figures.length - 1];
  if (!figure || !Number.isFinite(figure.value)) return NaN;
  return figure.higherIsBetter ? figure.value : -figure.value;
}

function describe(result: ScenarioResult): string {
  const figure = result.figures[result.figures.length - 1];
  if (!figure) return 'failed';
  if (figure.unit === 'ms') return `p99 ${figure.value.toFixed(2)}`;
  return figure.unit === 'KiB' ? figure.value.toFixed(2) : formatCount(figure.value);
}

/** One result from the rounds of one scenario on one broker. */
export function combineRounds(rounds: ScenarioResult[]): ScenarioResult {
  if (rounds.length === 1) return rounds[0]!;
  const succeeded = rounds.filter((r) => Number.isFinite(key(r)));
  if (succeeded.length === 0) return rounds[rounds.length - 1]!;
  const best = succeeded.reduce((a, b) => (key(b) > key(a) ? b : a));
  const losses = rounds.map((r) => r.lost).filter((lost): lost is number => lost !== null);
  const worstLoss = losses.length ? Math.max(...losses) : null;
  const notes = [`best of ${rounds.length} rounds (${rounds.map(describe).join(' / ')})`, ...best.notes];
  if (worstLoss !== null && worstLoss !== best.lost) notes.push(`lost ${formatCount(best.lost ?? 0)} in the best round, ${formatCount(worstLoss)} in the worst`);
  for (const failed of rounds.filter((r) => !Number.isFinite(key(r)))) notes.push(...failed.notes);
  return { ...best, lost: worstLoss, notes };
}
