// Actions that show what runs: `device` (one device in detail), `history` (the charts' series),
// `logs` (the recent log lines) and `homeassistant/entities` (the discovery configs announced).
import type { DeviceDetail } from '../devices/index.js';
import type { LogRing } from '../log-ring.js';
import type { ActionResult, Handlers } from './actions.js';
import { deviceDetailOf } from './device-detail.js';
import type { History } from './history.js';
import { requestError } from './requests.js';

export interface ObserveSources {
  deviceDetail(id: string): DeviceDetail | undefined;
  deviceIds(): string[];
  history: History;
  /** Absent when the logger was made without a ring (an embedded gateway in a test or a program). */
  logRing?: LogRing;
  homeAssistant(): { prefix: string; configs: Array<{ topic: string; payload: string }> };
}

const fail = (source: string, path: string, message: string): ActionResult => ({ ok: false, errors: [requestError(source, path, message)] });

export function observeHandlers(s: ObserveSources): Pick<Handlers, 'device' | 'history' | 'logs' | 'homeassistant/entities'> {
  return {
    device: (body, source) => {
      const detail = s.deviceDetail(body.id);
      if (!detail) return fail(source, 'id', `no running device has this id (got ${JSON.stringify(body.id)}; devices: ${s.deviceIds().join(', ') || 'none'})`);
      return { ok: true, data: deviceDetailOf(detail) };
    },
    history: (body) => ({ ok: true, data: s.history.snapshot({ points: body.points, since: body.since }) }),
    logs: (body, source) => {
      if (!s.logRing) return fail(source, '', 'this gateway keeps no log lines (it was started without a log ring: `fieldgate run` has one)');
      return { ok: true, data: { capacity: s.logRing.capacity, lines: s.logRing.query({ level: body.level, part: body.part, after: body.after, limit: body.limit }) } };
    },
    'homeassistant/entities': () => {
      const { prefix, configs } = s.homeAssistant();
      return { ok: true, data: { prefix, entities: configs.map(({ topic, payload }) => entityOf(prefix, topic, payload)) } };
    },
  };
}

function entityOf(prefix: string, topic: string, payload: string) {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    // announced by us, so JSON; an empty object if not
  }
  const device = config.device as { name?: unknown } | undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    topic,
    component: topic.slice(prefix.length + 1).split('/')[0] ?? null,
    uniqueId: text(config.unique_id), name: text(config.name), device: text(device?.name),
    stateTopic: text(config.state_topic), commandTopic: text(config.command_topic), unit: text(config.unit_of_measurement),
  };
}
