// One line per device for `fieldgate check`: what will be polled, where it goes, and how many reads it takes.
import type { DeviceMapping } from './mapping-schema.js';
import { lineDeviceTopicPrefix } from './line/schema.js';
import { minimumRequests, planDeviceReads } from './modbus/planner.js';

export function describeMapping(mapping: DeviceMapping): string[] {
  const lines: string[] = [];
  for (const bus of mapping.buses) {
    const where = 'path' in bus ? bus.path : `${bus.host}:${bus.port}`;
    lines.push(`bus ${bus.id} (${bus.type}) ${where}`);
    for (const d of mapping.modbusDevices.filter((m) => m.bus.id === bus.id)) {
      const reads = planDeviceReads(d).length;
      const minimum = minimumRequests(d.points, { maxRegisters: d.maxRegistersPerRequest, maxBits: d.maxBitsPerRequest });
      lines.push(`  ${d.id} unit ${d.unitId}: ${d.points.length} points → ${d.topicPrefix}/…, ${reads} read(s) per poll (minimum ${minimum}), every ${d.pollIntervalMs} ms`);
    }
    for (const d of mapping.lineDevices.filter((l) => l.bus === bus.id)) {
      lines.push(`  ${d.id}: ${Object.keys(d.fields).length} fields → ${lineDeviceTopicPrefix(d)}/…`);
    }
  }
  return lines;
}
