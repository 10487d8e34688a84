// Entry point for the gateway: starts every serial-line bus that has devices on it.
import type { Logger } from '../../log.js';
import type { LocalClient } from '../../broker/types.js';
import { startLineBus, type LineBusHandle, type LineBusStats } from './runtime.js';
import type { LineBus, LineDevice } from './schema.js';

export { startLineBus, type LineBusHandle, type LineBusStats } from './runtime.js';
export { lineBusSchema, lineDeviceSchema, lineDeviceProfileSchema, lineDeviceTopicPrefix, lineMappingIssues, type LineBus, type LineDevice } from './schema.js';

export interface LineAdapters {
  stop(): Promise<void>;
  stats(): Record<string, LineBusStats>;
}

/**
 * Starts one runtime per serial-line bus that has line devices. `buses` may contain other bus types
 * (they are skipped). A bus whose port is missing keeps retrying in the background; it never blocks the others.
 */
export async function startLineAdapters(
  buses: ReadonlyArray<{ type: string; id: string }>,
  devices: ReadonlyArray<LineDevice>,
  client: LocalClient,
  logger: Logger,
): Promise<LineAdapters> {
  const handles = new Map<string, LineBusHandle>();
  for (const bus of buses) {
    if (bus.type !== 'serial-line') continue;
    const onBus = devices.filter((d) => d.bus === bus.id);
    if (onBus.length === 0) continue;
    handles.set(bus.id, await startLineBus(bus as LineBus, [...onBus], client, logger));
  }
  return {
    async stop() {
      await Promise.all([...handles.values()].map((h) => h.stop()));
    },
    stats() {
      return Object.fromEntries([...handles].map(([id, h]) => [id, h.stats()]));
    },
  };
}
