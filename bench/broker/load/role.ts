// What the worker process asks of each kind of load: the orchestrator drives all of them with the
// same few commands over the IPC channel.

export type Counters = Record<string, number>;

export interface Role {
  /** Connects and subscribes; resolves when the load can start. */
  setup(): Promise<Counters>;
  start(): void;
  counters(): Counters;
  /** Stops generating and waits (bounded) until what was sent has left this process. */
  stop(): Promise<Counters>;
  close(): Promise<void>;
  /** Set by roles that finish on their own (latency); the worker reports it as 'done'. */
  finished?: Promise<Counters>;
}

export async function waitUntil(condition: () => boolean, timeoutMs: number, stepMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return true;
}
