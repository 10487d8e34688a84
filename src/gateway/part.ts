// One part of the gateway (database and broker core, bridges, devices, Home Assistant discovery,
// metrics/HTTP, listeners): the controller starts the parts in dependency order and stops them in reverse.
import type { GatewayConfig } from '../config/gateway-config.js';

export type PartState = 'starting' | 'running' | 'degraded' | 'stopping' | 'stopped';

export interface PartStatus {
  name: string;
  state: PartState;
  /** One line for a person: what is running, or what is wrong. */
  detail: string;
}

export interface ReloadResult {
  errors: string[];
  /** Config keys (JSON paths) that changed and take effect only after a restart. */
  restartNeeded: string[];
}

export interface Part {
  readonly name: string;
  /** Must not wait for anything outside the box (a device, the cloud): those connect in the background. */
  start(): Promise<void>;
  /**
   * Releases what the part holds. `deadlineMs` is the time it has: past it the controller moves on to the
   * next part, so a part should pass it on to whatever could hang (a connect, a goodbye to a remote).
   */
  stop(deadlineMs: number): Promise<void>;
  /**
   * SIGHUP: re-reads the files the part uses; `next` is the gateway config read again (undefined when it
   * could not be or was not asked for). A bad new file keeps the running one and is reported in `errors`.
   */
  reload?(next: GatewayConfig | undefined): Promise<ReloadResult>;
  status(): Omit<PartStatus, 'name'>;
}
