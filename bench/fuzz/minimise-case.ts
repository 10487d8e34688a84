// Replays and minimises one generated case:
//   node --import tsx bench/fuzz/minimise-case.ts --seed N --case I [--kind crash|good-client|invalid-answer] [--budget 16]
import { describeCase, generateCase } from '../../test/fuzz/lib/case.js';
import { formatFailure, minimise, replay, type FailureKind } from '../../test/fuzz/lib/harness.js';

const arg = (name: string, fallback: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : fallback; };
const fuzzCase = generateCase(Number(arg('seed', '1')), Number(arg('case', '0')), { exclude: arg('exclude', '').split(',').filter(Boolean) });
console.log(describeCase(fuzzCase));
const first = await replay([fuzzCase]);
console.log(`replay: ${[...first.kinds].join(', ') || 'no failure'}${first.messages.length ? `: ${first.messages.join('; ').slice(0, 1500)}` : ''}`);
const kind = (arg('kind', '') || [...first.kinds][0]) as FailureKind | undefined;
if (kind) {
  const failure = { kind, message: first.messages.join('; '), cases: [fuzzCase] };
  await minimise(failure, Number(arg('budget', '16')), console.log);
  console.log(formatFailure(failure));
}
process.exit(0);
