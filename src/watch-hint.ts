// The start-up hint "watch the readings: mosquitto_sub … -t '<prefix>/#'": built from where the
// configured devices really publish, not a fixed "fieldgate/#".

import { lineDeviceTopicPrefix } from './devices/line/schema.js';
import type { DeviceMapping } from './devices/mapping-schema.js';

/** Filters that cover every prefix: one "<prefix>/#" each, those inside another dropped, at most `limit` (then first levels). */
export function watchFilters(prefixes: readonly string[], limit = 4): string[] {
  const unique = [...new Set(prefixes.filter((p) => p.length > 0))].sort();
  if (unique.length === 0) return ['#'];
  const covers = (outer: string, inner: string) => inner === outer || inner.startsWith(`${outer}/`);
  let kept = unique.filter((p) => !unique.some((other) => other !== p && covers(other, p)));
  if (kept.length > limit) {
    const firstLevels = [...new Set(kept.map((p) => p.split('/', 1)[0]!))];
    if (firstLevels.length > limit) return ['#'];
    kept = firstLevels;
  }
  return kept.map((p) => `${p}/#`);
}

export interface WatchListener {
  host: string;
  port: number;
  allowAnonymous: boolean;
}

/** A ready mosquitto_sub line for the first (plain MQTT) listener and the devices' topic prefixes. */
export function watchCommand(listener: WatchListener, hasPasswordFile: boolean, prefixes: readonly string[]): string {
  const host = listener.host === '0.0.0.0' || listener.host === '::' ? '127.0.0.1' : listener.host;
  const credentials = listener.allowAnonymous || !hasPasswordFile ? '' : ' -u USER -P PASSWORD';
  const topics = watchFilters(prefixes).map((f) => ` -t '${f}'`).join('');
  return `mosquitto_sub -h ${host} -p ${listener.port}${credentials}${topics} -v`;
}

/** Where the devices publish: their topic prefixes, and any point topic outside its device's prefix. */
export function devicePrefixes(mapping: DeviceMapping): string[] {
  const prefixes: string[] = [];
  for (const device of mapping.modbusDevices) {
    prefixes.push(device.topicPrefix);
    for (const p of device.points) if (!p.topic.startsWith(`${device.topicPrefix}/`)) prefixes.push(p.topic);
  }
  for (const device of mapping.lineDevices) prefixes.push(lineDeviceTopicPrefix(device));
  return prefixes;
}
