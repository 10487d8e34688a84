// The fuzzer's long mode:
//   node --import tsx bench/fuzz/run.ts --cases 1000000 [--seed N] [--concurrency 32] [--segment 20000]
//        [--exclude class,class] [--minimise N] [--stop-on-failure] [--probe-every N]
// Runs the cases in segments (a fresh broker process per segment, so one crash does not end the run),
// prints cases/s, crashes, losses, good-client disconnections and invalid answers, with the
// reproducer (seed, case index, hex) of each failure, minimised with up to N replays.

import { randomSeed } from '../../test/fuzz/lib/prng.js';
import { formatFailure, formatReport, minimise, runFuzz, signature, type Failure, type FailureKind } from '../../test/fuzz/lib/harness.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

// Ctrl-C or kill: exit normally, so the harness's exit hook kills the broker process of the segment.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const cases = Number(arg('cases', '100000'));
const seed = Number(arg('seed', String(randomSeed())));
const concurrency = Number(arg('concurrency', '32'));
const segment = Number(arg('segment', '20000'));
const exclude = (arg('exclude', '') ?? '').split(',').filter(Boolean);
const minimiseBudget = Number(arg('minimise', '12'));
const probeEvery = Number(arg('probe-every', '0'));
const stopOnFailure = process.argv.includes('--stop-on-failure');

console.log(`fuzz long mode: seed ${seed}, ${cases} cases, concurrency ${concurrency}, segments of ${segment}${exclude.length ? `, excluding ${exclude.join(',')}` : ''}`);
const totals: Record<FailureKind, number> = { crash: 0, 'good-client': 0, loss: 0, 'invalid-answer': 0, memory: 0 };
const kept: Failure[] = [];
let index = 0;
let run = 0;
const started = Date.now();
while (index < cases) {
  const report = await runFuzz({ seed, cases: Math.min(segment, cases - index), startIndex: index, concurrency, exclude, probeEvery, log: console.log });
  run += report.casesRun;
  index = report.nextIndex;
  console.log(formatReport(report));
  for (const f of report.failures) {
    totals[f.kind]++;
    // Keep one of each distinct failure; minimise the first few of each kind.
    if (kept.some((k) => k.kind === f.kind && signature(k.message) === signature(f.message))) {
      console.log(`  again: [${f.kind}] ${f.message.slice(0, 300)}`);
      continue;
    }
    if (minimiseBudget > 0 && f.cases.length > 0 && kept.filter((k) => k.kind === f.kind).length < 3) await minimise(f, minimiseBudget, console.log);
    kept.push(f);
    console.log(formatFailure(f));
  }
  if (stopOnFailure && report.failures.length > 0) break;
}
const seconds = (Date.now() - started) / 1000;
console.log('');
console.log(`TOTAL seed ${seed}: ${run} cases in ${seconds.toFixed(0)} s (${(run / seconds).toFixed(0)} cases/s overall, broker restarts and checks included)`);
console.log(`  crashes ${totals.crash}, losses ${totals.loss}, good-client disconnections/refusals ${totals['good-client']}, distinct invalid answers ${totals['invalid-answer']}, memory ${totals.memory}`);
for (const f of kept) console.log(formatFailure(f));
process.exit(0);
