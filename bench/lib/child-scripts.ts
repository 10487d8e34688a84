// Child processes of a benchmark (load generators, broker servers) should run on plain `node`:
// the tsx loader adds a hooks thread, memory and start-up CPU to the very process being measured.
// So each TypeScript entry is bundled once per run with esbuild (tsx's own dependency) into
// bench/results/tmp/ (git-ignored); if esbuild cannot be loaded the entry runs through tsx instead.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = path.resolve(benchDir, '..');
const outDir = path.join(benchDir, 'results', 'tmp');

export interface NodeCommand {
  /** Arguments for `process.execPath`, ending with the script. */
  args: string[];
  how: 'bundled with esbuild, plain node' | 'through tsx (esbuild unavailable)';
}

const cache = new Map<string, NodeCommand>();

/** `entry` is relative to bench/, e.g. 'broker/load/worker.ts'. */
export async function nodeCommandFor(entry: string): Promise<NodeCommand> {
  const known = cache.get(entry);
  if (known) return known;
  const source = path.join(benchDir, entry);
  let command: NodeCommand;
  try {
    // Not a declared dependency of fieldgate: loaded by name so that type-checking does not need it.
    const esbuildName = 'esbuild';
    const esbuild = (await import(esbuildName)) as { build(options: Record<string, unknown>): Promise<unknown> };
    mkdirSync(outDir, { recursive: true });
    const outfile = path.join(outDir, entry.replace(/[\\/]/g, '__').replace(/\.ts$/, '.mjs'));
    await esbuild.build({
      entryPoints: [source],
      outfile,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
    });
    command = { args: [outfile], how: 'bundled with esbuild, plain node' };
  } catch {
    command = { args: ['--import', 'tsx', source], how: 'through tsx (esbuild unavailable)' };
  }
  cache.set(entry, command);
  return command;
}
