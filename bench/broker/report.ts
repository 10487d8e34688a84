// The results table (terminal and markdown are the same text) and the dated results file.

import type { MachineInfo } from '../lib/proc.js';
import { formatCount, formatRatio, markdownTable } from '../lib/table.js';
import type { BrokerName, BrokerUnderTest } from './brokers.js';
import { scenarioNames, scenarioTitles, type Figure, type ScenarioResult, type Timing } from './scenario.js';

const displayName: Record<BrokerName, string> = { fieldgate: 'fieldgate', mosquitto: 'Mosquitto', aedes: 'Aedes' };

function formatFigure(figure: Figure): string {
  if (!Number.isFinite(figure.value)) return '—';
  if (figure.unit === 'ms') return `${figure.label.replace(' ms', '')} ${figure.value.toFixed(2)} ms`;
  if (figure.unit === 'KiB') return `${figure.value.toFixed(1)} KiB`;
  return `${formatCount(figure.value)} ${figure.label}`;
}

function find(results: ScenarioResult[], scenario: string, broker: string): ScenarioResult | undefined {
  return results.find((r) => r.scenario === scenario && r.broker === broker);
}

export function renderTable(results: ScenarioResult[], brokers: BrokerName[]): string {
  const rows: string[][] = [];
  for (const scenario of scenarioNames) {
    const fieldgate = find(results, scenario, 'fieldgate');
    for (const broker of brokers) {
      const result = find(results, scenario, broker);
      if (!result) continue;
      const ratio = broker === 'fieldgate' || !fieldgate
        ? ''
        : result.figures.map((figure, i) => {
          const ours = fieldgate.figures[i];
          return ours ? formatRatio(ours.value / figure.value) : '—';
        }).join(' / ');
      rows.push([
        scenarioTitles[scenario],
        displayName[broker],
        result.figures.length ? result.figures.map(formatFigure).join(', ') : 'failed',
        ratio,
        result.lost === null ? '' : formatCount(result.lost),
        Number.isFinite(result.brokerCpuSeconds) ? result.brokerCpuSeconds.toFixed(2) : '—',
        Number.isFinite(result.peakRssMiB) ? result.peakRssMiB.toFixed(1) : '—',
        Number.isFinite(result.generatorCpuSeconds) ? `${result.generatorCpuSeconds.toFixed(2)} (${result.generatorCpuPercent.toFixed(0)}%)` : '—',
        result.notes.join('; '),
      ]);
    }
  }
  return markdownTable(
    ['scenario', 'broker', 'result', 'fieldgate ÷ broker', 'lost', 'broker CPU s', 'peak RSS MiB', 'generator CPU s (% of a core)', 'notes'],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

/** The floors, checked against Mosquitto in the same run. */
export function floorChecks(results: ScenarioResult[]): string[] {
  const lines: string[] = [];
  const ratioToMosquitto = (scenario: string) => {
    const ours = find(results, scenario, 'fieldgate')?.figures[0]?.value;
    const theirs = find(results, scenario, 'mosquitto')?.figures[0]?.value;
    return ours !== undefined && theirs !== undefined ? ours / theirs : NaN;
  };
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  for (const scenario of ['fanin', 'fanout'] as const) {
    const ratio = ratioToMosquitto(scenario);
    if (Number.isFinite(ratio)) lines.push(`- ${scenarioTitles[scenario]} ≥ 0.8× Mosquitto: ${formatRatio(ratio)} — ${verdict(ratio >= 0.8)}`);
  }
  const qos1 = find(results, 'fanout-qos1', 'fieldgate');
  if (qos1 && qos1.lost !== null) lines.push(`- QoS 1 with zero loss: ${formatCount(qos1.lost)} lost — ${verdict(qos1.lost === 0 && !qos1.notes.some((n) => n.includes('never acknowledged')))}`);
  const idle = find(results, 'idle-rss', 'fieldgate')?.figures[0]?.value;
  if (idle !== undefined) lines.push(`- ≤ 8 KiB RSS per idle connection: ${idle.toFixed(1)} KiB — ${verdict(idle <= 8)}`);
  // Issue 8: bounded work per turn must not cost the throughput lead, and must keep others' answers fast.
  for (const scenario of ['fanin', 'fanout'] as const) {
    const ratio = ratioToMosquitto(scenario);
    if (Number.isFinite(ratio)) lines.push(`- issue 8: ${scenarioTitles[scenario]} ≥ 2× Mosquitto: ${formatRatio(ratio)} — ${verdict(ratio >= 2)}`);
  }
  const fairness = find(results, 'fairness', 'fieldgate');
  if (fairness && fairness.figures.length >= 4) {
    const connack = fairness.figures[0]!.value;
    const ping = fairness.figures[3]!.value;
    lines.push(`- issue 8: probe p99 CONNACK ≤ 50 ms and PINGRESP ≤ 50 ms under fan-in + fan-out: ${connack.toFixed(1)} / ${ping.toFixed(1)} ms — ${verdict(connack <= 50 && ping <= 50)}`);
  }
  return lines;
}

export interface ReportContext {
  startedAt: Date;
  finishedAt: Date;
  loadBefore: string;
  loadAfter: string;
  machine: MachineInfo;
  node: string;
  brokers: BrokerUnderTest[];
  generator: string;
  timing: Timing;
  rounds: number;
  args: string[];
}

export function renderReport(results: ScenarioResult[], context: ReportContext): string {
  const { machine } = context;
  const seconds = ((context.finishedAt.getTime() - context.startedAt.getTime()) / 1000).toFixed(0);
  const floors = floorChecks(results);
  return [
    `# Broker benchmark, ${context.startedAt.toISOString().slice(0, 10)}`,
    '',
    `Command: \`npm run bench -- broker${context.args.length ? ' ' + context.args.join(' ') : ''}\` (see bench/README.md for what each figure means).`,
    `Run ${context.startedAt.toISOString()} → ${context.finishedAt.toISOString()} (${seconds} s).`,
    '',
    '## Machine',
    `- ${machine.cpus} CPUs (nproc), ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.kernel}`,
    `- Load average (1/5/15 min) before: ${context.loadBefore}; after: ${context.loadAfter}. The machine is shared: other work running at the same time lowers every broker's figures.`,
    '',
    '## Versions',
    `- Node ${context.node}`,
    ...context.brokers.map((b) => `- ${displayName[b.name]} ${b.version}: ${b.how}`),
    `- Load generator: raw MQTT 3.1.1 over net sockets, pre-encoded packets, frame-scanner counting; ${context.generator}`,
    '',
    '## Results',
    `Loopback, 64-byte payloads, MQTT 3.1.1, a fresh broker process per scenario; throughput measured over ${context.timing.measureMs} ms after ${context.timing.warmupMs} ms of warm-up;`,
    `publishers write ${context.timing.publishBatch ?? '32 (fan-in) / 16 (fan-out)'} PUBLISH packets per socket write and keep at most 2,048 (QoS 0) / 256 (QoS 1) messages not yet handled by the broker.`,
    `RSS per idle connection: ${context.timing.idleClients.toLocaleString('en-US')} clients.`,
    context.rounds > 1
      ? `Each scenario ran ${context.rounds} rounds per broker, interleaved; the table shows the best round (latency: lowest p99) and, under "lost", the worst round's loss.`
      : 'Each scenario ran once per broker.',
    'Ratios are fieldgate ÷ that broker: above 1 is better for rates, below 1 is better for latency and memory.',
    '',
    renderTable(results, context.brokers.map((b) => b.name)),
    '',
    ...(floors.length ? ['## Floors of issues 2 and 8', ...floors, ''] : []),
  ].join('\n');
}
