// The `device` action: one device with every point's last value, its age and quality. A value is
// `good` only while it is young and its device answers; otherwise it is shown as what it is (stale,
// failed or never read), so a console never presents an old reading as a live one.
import type { DeviceDetail, PointReading } from '../devices/index.js';
import type { ModbusDevice, ModbusPoint } from '../devices/modbus/model.js';
import { jsonValue } from '../devices/modbus/value.js';

export type Quality = 'good' | 'stale' | 'error' | 'none';

/** How old a value may be and still be good: two poll intervals plus one timeout (a poll may be a little late). */
export function freshForMs(device: Pick<ModbusDevice, 'timeoutMs'>, point: Pick<ModbusPoint, 'pollIntervalMs'>): number {
  return 2 * point.pollIntervalMs + device.timeoutMs;
}

export function qualityOf(reading: PointReading | undefined, online: boolean, freshMs: number, now: number): Quality {
  if (reading?.error !== undefined) return 'error';
  if (reading?.readAt === undefined) return 'none';
  return online && now - reading.readAt <= freshMs ? 'good' : 'stale';
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function deviceDetailOf(detail: DeviceDetail, now = Date.now()) {
  const { status } = detail;
  const base = {
    id: status.id, name: status.name, protocol: status.protocol,
    availability: status.online ? 'online' : 'offline',
    lastPollAt: status.lastPollAt ?? null, pollLatencyMs: detail.pollLatencyMs ?? null,
    polls: status.polls, errorCount: status.failedPolls,
    lastError: status.lastError ?? null, lastErrorAt: iso(detail.lastErrorAt),
  };
  if (!detail.modbus) return { ...base, bus: { id: status.bus, type: 'serial-line', state: status.online ? 'open' : 'retrying' }, points: [] };
  const { device, readings, bus } = detail.modbus;
  return {
    ...base,
    unitId: device.unitId,
    pollIntervalMs: device.pollIntervalMs,
    bus: {
      id: bus.id, type: bus.type, state: bus.state, retryInMs: bus.retryInMs ?? null, lastError: bus.lastError ?? null,
      requests: bus.requests, timeouts: bus.timeouts, reconnects: bus.reconnects,
    },
    points: device.points.map((p) => {
      const r = readings.get(p.name);
      return {
        name: p.name, topic: p.topic, table: p.table, address: p.address, type: p.type,
        unit: p.unit ?? null, writable: p.writable,
        value: r?.value === undefined ? null : jsonValue(r.value),
        readAt: iso(r?.readAt),
        ageSeconds: r?.readAt === undefined ? null : Math.max(0, Math.round((now - r.readAt) / 100) / 10),
        quality: qualityOf(r, status.online, freshForMs(device, p), now),
        error: r?.error ?? null,
      };
    }),
  };
}
