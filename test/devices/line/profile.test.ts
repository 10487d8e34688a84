import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDeviceMapping } from '../../../src/devices/mapping-schema.js';
import { lineDeviceProfileSchema, lineDeviceSchema } from '../../../src/devices/line/schema.js';
import { createLineParser } from '../../../src/devices/line/parsers.js';
import { convertFieldValue } from '../../../src/devices/line/values.js';

const file = new URL('../../../devices/nmea-gps.json', import.meta.url);
const profile = (JSON.parse(readFileSync(file, 'utf8')) as { profile: Record<string, unknown> }).profile;

describe('devices/nmea-gps.json', () => {
  it('is a valid line-device profile, and a valid device once id and bus are given', () => {
    expect(lineDeviceProfileSchema.safeParse(profile).error?.issues ?? []).toEqual([]);
    expect(lineDeviceSchema.safeParse({ ...profile, id: 'gps', bus: 'gps' }).error?.issues ?? []).toEqual([]);
  });

  it('turns one GGA + RMC burst into each value exactly once', () => {
    const device = lineDeviceSchema.parse({ ...profile, id: 'gps', bus: 'gps' });
    const parse = createLineParser(device.parser);
    const published: Record<string, unknown[]> = {};
    for (const sentence of [
      '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47',
      '$GPGLL,4916.45,N,12311.12,W,225444,A,*1D',
      '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A',
    ]) {
      const r = parse(sentence);
      if (!r.ok) throw new Error(r.detail);
      for (const [name, field] of Object.entries(device.fields)) {
        const raw = r.fields[name];
        if (raw === undefined) continue;
        const v = convertFieldValue(raw, field);
        if (v.ok) (published[field.topic ?? name] ??= []).push(v.value);
      }
    }
    expect(published).toEqual({
      latitude: [48.1173],
      longitude: [11.5166667],
      altitude: [545.4],
      'fix-quality': [1],
      satellites: [8],
      hdop: [0.9],
      speed: [41.5],
      course: [84.4],
      'fix-valid': [true],
      'utc-time': ['1994-03-23T12:35:19Z'],
    });
  });

  it('can be included by name from a mapping, with id, bus and topic prefix overridden', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-profile-'));
    try {
      const mapping = join(dir, 'site.json');
      writeFileSync(
        mapping,
        JSON.stringify({
          buses: [{ id: 'gps', type: 'serial-line', path: '/dev/serial/by-id/usb-u-blox_GNSS-if00' }],
          include: [{ profile: 'nmea-gps', id: 'boat-gps', bus: 'gps', topicPrefix: 'boat/gps' }],
        }),
      );
      const result = loadDeviceMapping(mapping);
      if (!result.ok) throw new Error(result.errors.join('\n'));
      expect(result.mapping.lineDevices).toHaveLength(1);
      expect(result.mapping.lineDevices[0]).toMatchObject({ id: 'boat-gps', bus: 'gps', topicPrefix: 'boat/gps', protocol: 'line', parser: { type: 'nmea0183' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
