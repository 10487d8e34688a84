// `npm run bench -- broker [--brokers fieldgate,mosquitto,aedes] [--scenarios fanin,...] [--measure-ms 3000] [--batch N] [--idle-clients N]
//   [--fieldgate-node-args "--max-semi-space-size=1"] [--rounds 2] [--write | --no-write]`
// Runs every scenario against every broker in turn, prints one table and writes it, with the
// machine and versions, to bench/results/YYYY-MM-DD-broker.md (standard runs only, unless --write).

import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { benchDir, nodeCommandFor } from '../lib/child-scripts.js';
import { loadAverage, machineInfo } from '../lib/proc.js';
import { brokerNames, prepareBroker, setSmallBoard, SMALL_BOARD_OLD_SPACE_MIB, type BrokerName, type BrokerUnderTest } from './brokers.js';
import { renderReport, renderTable } from './report.js';
import { combineRounds } from './rounds.js';
import { runScenario, scenarioNames, scenarioTitles, type ScenarioName, type ScenarioResult, type Timing } from './scenario.js';

interface Options {
  brokers: BrokerName[];
  scenarios: ScenarioName[];
  timing: Timing;
  write: boolean | null;
  fieldgateNodeArgs: string[];
  /** Brokers pinned to CPU 0, fieldgate with a small-board heap cap (brokers.ts). */
  smallBoard: boolean;
  rounds: number;
}

function listOption<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] {
  if (value === undefined) throw new Error(`${flag} needs a value: one or more of ${allowed.join(',')}`);
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`${flag}: unknown "${item}"; choose from ${allowed.join(', ')}`);
  }
  return items as T[];
}

function parseOptions(args: string[]): Options {
  const options: Options = { brokers: [...brokerNames], scenarios: [...scenarioNames], timing: { warmupMs: 1000, measureMs: 3000, publishBatch: null, idleClients: 1000 }, write: null, fieldgateNodeArgs: [], rounds: 2, smallBoard: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    switch (arg) {
      case '--brokers': options.brokers = listOption(args[++i], brokerNames, arg); break;
      case '--scenarios': options.scenarios = listOption(args[++i], scenarioNames, arg); break;
      case '--measure-ms': options.timing.measureMs = Number(args[++i]); break;
      case '--warmup-ms': options.timing.warmupMs = Number(args[++i]); break;
      case '--batch': options.timing.publishBatch = Number(args[++i]); break;
      case '--idle-clients': options.timing.idleClients = Number(args[++i]); break;
      case '--fieldgate-node-args': options.fieldgateNodeArgs = (args[++i] ?? '').split(/\s+/).filter(Boolean); break;
      case '--rounds': options.rounds = Number(args[++i]); break;
      case '--small-board': options.smallBoard = true; break;
      case '--write': options.write = true; break;
      case '--no-write': options.write = false; break;
      default: throw new Error(`unknown option ${arg} (options: --brokers, --scenarios, --measure-ms, --warmup-ms, --batch, --idle-clients, --fieldgate-node-args, --rounds, --small-board, --write, --no-write)`);
    }
  }
  if (!(options.timing.measureMs >= 500 && options.timing.measureMs <= 30_000)) throw new Error('--measure-ms must be between 500 and 30000');
  if (!(options.timing.warmupMs >= 200 && options.timing.warmupMs <= 10_000)) throw new Error('--warmup-ms must be between 200 and 10000');
  if (!(Number.isInteger(options.rounds) && options.rounds >= 1 && options.rounds <= 10)) throw new Error('--rounds must be an integer from 1 to 10');
  const idle = options.timing.idleClients;
  if (!(Number.isInteger(idle) && idle >= 100 && idle <= 10_000)) throw new Error('--idle-clients must be an integer from 100 to 10000');
  const batch = options.timing.publishBatch;
  if (batch !== null && !(Number.isInteger(batch) && batch >= 1 && batch <= 256)) throw new Error('--batch must be an integer from 1 to 256');
  return options;
}

/** Every broker and scenario with the default settings: the run that a dated results file records. */
function isStandardRun(options: Options): boolean {
  const { timing } = options;
  return options.brokers.length === brokerNames.length && options.scenarios.length === scenarioNames.length
    && timing.measureMs === 3000 && timing.warmupMs === 1000 && timing.publishBatch === null && timing.idleClients === 1000
    && options.fieldgateNodeArgs.length === 0 && !options.smallBoard;
}

async function runOne(scenario: ScenarioName, broker: BrokerUnderTest, timing: Timing): Promise<ScenarioResult> {
  try {
    const result = await runScenario(scenario, broker, timing);
    process.stdout.write(`${result.figures.map((f) => `${f.value.toFixed(f.unit === 'ms' || f.unit === 'KiB' ? 2 : 0)} ${f.label}`).join(', ')}\n`);
    return result;
  } catch (error) {
    process.stdout.write(`FAILED: ${(error as Error).message}\n`);
    return {
      scenario, broker: broker.name, figures: [], lost: null, brokerCpuSeconds: NaN, peakRssMiB: NaN, generatorCpuSeconds: NaN,
      generatorCpuPercent: NaN, busiestGeneratorPercent: NaN, brokerCpuPercent: NaN, notes: [`failed: ${(error as Error).message}`],
    };
  }
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const startedAt = new Date();
  const loadBefore = loadAverage();
  const generator = await nodeCommandFor('broker/load/worker.ts');
  setSmallBoard(options.smallBoard);
  const brokers: BrokerUnderTest[] = [];
  for (const name of options.brokers) brokers.push(await prepareBroker(name, options.fieldgateNodeArgs));
  for (const broker of brokers) process.stdout.write(`${broker.name} ${broker.version}: ${broker.how}\n`);
  if (options.smallBoard) process.stdout.write(`small board: brokers pinned to CPU 0 (taskset -c 0), fieldgate with --max-old-space-size=${SMALL_BOARD_OLD_SPACE_MIB}\n`);
  process.stdout.write(`load generator: ${generator.how}; load average ${loadBefore}\n\n`);

  // Rounds are interleaved (fieldgate, Mosquitto, Aedes, fieldgate, ...) so that a burst of other
  // work on the machine does not fall on one broker only.
  const results: ScenarioResult[] = [];
  for (const scenario of options.scenarios) {
    const rounds = new Map<string, ScenarioResult[]>(brokers.map((b) => [b.name, []]));
    for (let round = 1; round <= options.rounds; round++) {
      for (const broker of brokers) {
        const label = options.rounds > 1 ? ` (round ${round}/${options.rounds})` : '';
        process.stdout.write(`${scenarioTitles[scenario]} — ${broker.name}${label} ... `);
        rounds.get(broker.name)!.push(await runOne(scenario, broker, options.timing));
      }
    }
    for (const broker of brokers) results.push(combineRounds(rounds.get(broker.name)!));
  }

  const context = {
    startedAt, finishedAt: new Date(), loadBefore, loadAfter: loadAverage(), machine: machineInfo(),
    node: process.version, brokers, generator: generator.how, timing: options.timing, rounds: options.rounds, args,
  };
  process.stdout.write(`\n${renderTable(results, options.brokers)}\n\n`);
  if (options.write ?? isStandardRun(options)) {
    const dir = path.join(benchDir, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${startedAt.toISOString().slice(0, 10)}-broker${options.smallBoard ? '-small-board' : ''}.md`);
    writeFileSync(file, renderReport(results, context));
    process.stdout.write(`written to ${path.relative(process.cwd(), file)}\n`);
  } else {
    process.stdout.write('not a standard run (a subset or changed settings): results not written (add --write to write them anyway)\n');
  }
}
