// Runs the gateway's parts: starts them in the order given (each depends only on those before it),
// stops them in reverse within one deadline, reloads them in order and reports each one's status.
import type { GatewayConfig } from '../config/gateway-config.js';
import type { Logger } from '../log.js';
import type { Part, PartState, PartStatus, ReloadResult } from './part.js';

export interface ControllerOptions {
  /** The whole stop, the last part's (the database commit and close) excepted. */
  stopDeadlineMs: number;
  /** Caps a part's share of the stop deadline (by part name), so one hanging part leaves time to the others. */
  stopCapsMs?: Record<string, number>;
}

export class Controller {
  private readonly states = new Map<Part, PartState>();
  private readonly started: Part[] = [];
  private stopping: Promise<void> | undefined;
  private reloading: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly parts: Part[],
    private readonly logger: Logger,
    private readonly options: ControllerOptions,
  ) {}

  /** Starts every part in order. When one fails, those already started are stopped and the error is thrown. */
  async start(): Promise<void> {
    for (const part of this.parts) {
      if (this.stopping) throw new Error('stopped while starting');
      this.states.set(part, 'starting');
      try {
        await part.start();
      } catch (error) {
        this.states.set(part, 'stopped');
        // A part that failed half-way may hold something (a listener, a meter): it is stopped too.
        this.started.push(part);
        await this.stop().catch(() => undefined);
        throw error;
      }
      this.started.push(part);
      this.states.set(part, 'running');
    }
  }

  /** Stops the started parts in reverse order; the last one (the database) gets all the time it needs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const began = Date.now();
      const deadline = began + this.options.stopDeadlineMs;
      const parts = [...this.started].reverse();
      for (const [i, part] of parts.entries()) {
        const last = i === parts.length - 1;
        this.states.set(part, 'stopping');
        const cap = this.options.stopCapsMs?.[part.name] ?? Infinity;
        const budget = Math.max(0, Math.min(cap, deadline - Date.now()));
        const partBegan = Date.now();
        try {
          if (last) await part.stop(budget);
          else if (!(await withinDeadline(part.stop(budget), budget + 50))) {
            this.logger.warn({ part: part.name, budgetMs: budget }, `${part.name} did not stop in time; going on with the stop`);
          }
        } catch (error) {
          this.logger.error({ err: error, part: part.name }, `${part.name} failed to stop cleanly`);
        }
        this.states.set(part, 'stopped');
        this.logger.debug({ part: part.name, ms: Date.now() - partBegan }, 'part stopped');
      }
      this.logger.debug({ ms: Date.now() - began }, 'all parts stopped');
    })();
    return this.stopping;
  }

  /** SIGHUP: every started part re-reads its files, in start order; two reloads never overlap. */
  reload(next: GatewayConfig | undefined): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      const total: ReloadResult = { errors: [], restartNeeded: [] };
      for (const part of this.started) {
        if (!part.reload || this.stopping) continue;
        try {
          const result = await part.reload(next);
          total.errors.push(...result.errors);
          total.restartNeeded.push(...result.restartNeeded);
        } catch (error) {
          total.errors.push(`${part.name}: reload failed: ${(error as Error).message}`);
        }
      }
      return total;
    };
    const result = this.reloading.then(run);
    this.reloading = result.catch(() => undefined);
    return result;
  }

  status(): PartStatus[] {
    return this.parts.map((part) => {
      const state = this.states.get(part) ?? 'stopped';
      if (state !== 'running') return { name: part.name, state, detail: state === 'stopped' && !this.stopping ? 'not started' : state };
      const own = part.status();
      return { name: part.name, ...own };
    });
  }

  /** True once every part has started and the stop has not begun. */
  get ready(): boolean {
    return !this.stopping && this.started.length === this.parts.length && this.parts.every((p) => this.states.get(p) === 'running');
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }
}

async function withinDeadline(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  const done = work.then(() => true as const);
  // A part that fails after its deadline has passed is no longer anyone's business: no unhandled rejection.
  done.catch(() => undefined);
  try {
    return await Promise.race([done, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
