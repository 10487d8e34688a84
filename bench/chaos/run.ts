// Long mode of the chaos test (test/chaos/harness.ts): kill -9, SIGTERM, cloud outages, slow and
// dead Modbus devices and a disk-full episode against the whole gateway, then a drain and the count.
//   node --import tsx bench/chaos/run.ts [--seed N] [--duration-s S] [--kills N] [--sigterms N]
//        [--durability full|normal|off] [--commit-window-ms N] [--hold-ms N] [--publishers N] [--rate N]
//        [--no-disk-full] [--no-outages] [--uptime-ms N] [--keep] [--json FILE]
//        [--app-root DIR]   (another checkout with dist/ built, e.g. an old commit, for comparison)
// Exit code 0 when nothing acknowledged was lost or reordered, the drain completed and no QoS 0 (held) message was
// lost other than to a kill -9 within the hold time (+ ack timeout), 1 otherwise.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, runChaos } from '../../test/chaos/harness.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' }, 'duration-s': { type: 'string', default: '300' },
    kills: { type: 'string', default: '0' }, sigterms: { type: 'string', default: '0' },
    durability: { type: 'string', default: 'full' }, 'commit-window-ms': { type: 'string' }, 'hold-ms': { type: 'string' },
    publishers: { type: 'string', default: '4' }, rate: { type: 'string', default: '100' },
    'uptime-ms': { type: 'string', default: '1500' },
    'no-disk-full': { type: 'boolean', default: false }, 'no-outages': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false }, json: { type: 'string' }, 'app-root': { type: 'string' },
  },
});
const durability = values.durability as 'full' | 'normal' | 'off';
if (!['full', 'normal', 'off'].includes(durability)) throw new Error(`--durability: expected full, normal or off (got ${durability})`);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const report = await runChaos({
  seed, durationMs: Number(values['duration-s']) * 1000,
  minKills: Number(values.kills), minSigterms: Number(values.sigterms), durability,
  commitWindowMs: values['commit-window-ms'] !== undefined ? Number(values['commit-window-ms']) : undefined,
  holdMs: values['hold-ms'] !== undefined ? Number(values['hold-ms']) : undefined,
  publishers: Number(values.publishers), rate: Number(values.rate), meanUptimeMs: Number(values['uptime-ms']),
  diskFull: values['no-disk-full'] ? false : 'auto', outages: !values['no-outages'], keep: values.keep, appRoot: values['app-root'],
  drainTimeoutMs: 120_000,
});
console.log(formatReport(report));
if (values.json) fs.writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
process.exitCode = report.lost === 0 && report.reordered === 0 && report.drained && report.held.lostUnexcused === 0 ? 0 : 1;
