// V8's gc() for the two full collections the gateway makes while it is quiet: once after start-up
// (gateway/settle-gc.ts) and once after a burst of connections (broker/idle-collector.ts).
// bin/fieldgate.js starts node with --expose-gc, which installs it as a global.
import v8 from 'node:v8';
import vm from 'node:vm';

export const GC_GLOBAL = 'gc';

export type Collect = () => void;

/** The gc() that --expose-gc installed, else null. */
export function exposedGc(): Collect | null {
  const gc = (globalThis as Record<string, unknown>)[GC_GLOBAL];
  return typeof gc === 'function' ? (gc as Collect) : null;
}

let fallback: Collect | null | undefined;

/**
 * The exposed gc(), or, in a process started without --expose-gc (a test or bench embedding the broker), one
 * obtained by setting the flag now and reading gc in a new context (~140 KiB of heap, made once). null when
 * that is refused.
 */
export function garbageCollector(): Collect | null {
  const exposed = exposedGc();
  if (exposed) return exposed;
  if (fallback !== undefined) return fallback;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    fallback = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    fallback = null;
  }
  return fallback;
}
