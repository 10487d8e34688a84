// Which fieldgate code the benchmark runs: the compiled dist/ when it is up to date or builds,
// else src/ through tsx.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchDir, repoDir } from '../lib/child-scripts.js';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

// A failed `tsc` still emits dist/, which then looks newer than src/: the outcome of the last
// build this suite ran is kept here, so that a failed build is not mistaken for a good one.
const buildRecord = path.join(benchDir, 'results', 'tmp', 'fieldgate-build.json');
interface BuildRecord { ok: boolean; error: string; srcNewest: number; distMtime: number }

function distMtime(): number {
  try {
    return statSync(path.join(repoDir, 'dist/broker/broker.js')).mtimeMs;
  } catch {
    return 0;
  }
}

/** The error of the last build, if it failed and neither src/ nor dist/ changed since. */
function lastBuildFailure(srcNewest: number): string | null {
  try {
    const record = JSON.parse(readFileSync(buildRecord, 'utf8')) as BuildRecord;
    return !record.ok && record.srcNewest === srcNewest && record.distMtime === distMtime() ? record.error : null;
  } catch {
    return null;
  }
}

function build(srcNewest: number): string | null {
  process.stdout.write('fieldgate: dist/ is older than src/ or missing, building it (npx tsc -p tsconfig.build.json)...\n');
  const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoDir, encoding: 'utf8' });
  const error = result.status === 0
    ? null
    : (`${result.stdout}${result.stderr}`.split('\n').find((line) => line.includes('error')) ?? `exit ${result.status}`).trim();
  mkdirSync(path.dirname(buildRecord), { recursive: true });
  const record: BuildRecord = { ok: error === null, error: error ?? '', srcNewest, distMtime: distMtime() };
  writeFileSync(buildRecord, JSON.stringify(record));
  return error;
}

/** Arguments for `node` that start the fieldgate server script on the right code, and how. */
export function fieldgateServerArgs(serverArgs: string[], serverHow: string): { args: string[]; how: string } {
  const srcNewest = newestMtime(path.join(repoDir, 'src'));
  const distArgs = [...serverArgs, path.join(repoDir, 'dist/broker/broker.js')];
  let args: string[];
  let how: string;
  let failure = lastBuildFailure(srcNewest);
  if (failure === null && distMtime() >= srcNewest) {
    args = distArgs;
    how = `dist/ (up to date), server script ${serverHow}`;
  } else {
    if (failure === null) failure = build(srcNewest);
    if (failure === null) {
      args = distArgs;
      how = `dist/ (rebuilt by this run), server script ${serverHow}`;
    } else {
      process.stdout.write(`fieldgate: dist build failed (${failure}); running src/ through tsx instead\n`);
      args = ['--import', 'tsx', path.join(repoDir, 'bench/broker/servers/fieldgate.ts'), path.join(repoDir, 'src/broker/broker.ts')];
      how = `src/ through tsx (dist build failed: ${failure})`;
    }
  }
  return { args, how };
}
