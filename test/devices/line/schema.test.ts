import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { lineBusSchema, lineDeviceProfileSchema, lineDeviceSchema, lineDeviceTopicPrefix, lineMappingIssues } from '../../../src/devices/line/schema.js';

/** "path: message" for every issue, the form the mapping loader reports. */
function problems(schema: z.ZodType, input: unknown): string[] {
  const r = schema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
}

const gpsDevice = {
  id: 'gps1',
  protocol: 'line',
  bus: 'gps',
  parser: { type: 'nmea0183' },
  fields: { latitude: { unit: '°' }, altitude: { unit: 'm', decimals: 1 }, satellites: { type: 'integer' } },
};

describe('line bus schema', () => {
  it('fills data-sheet defaults: 9600 8N1, newline framing, bounded frames', () => {
    const bus = lineBusSchema.parse({ id: 'gps', type: 'serial-line', path: '/dev/serial/by-id/usb-u-blox_GNSS-if00' });
    expect(bus).toMatchObject({ baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, framing: { type: 'delimiter', delimiter: '\n' }, maxFrameLength: 1024 });
  });

  it('accepts fixed-length and regex framing', () => {
    expect(lineBusSchema.parse({ id: 'b', type: 'serial-line', path: '/dev/ttyS0', framing: { type: 'fixed-length', length: 8 } }).framing).toEqual({ type: 'fixed-length', length: 8 });
    expect(lineBusSchema.parse({ id: 'b', type: 'serial-line', path: '/dev/ttyS0', framing: { type: 'regex', pattern: '<[^>]*>' } }).framing).toEqual({ type: 'regex', pattern: '<[^>]*>', flags: '' });
  });

  it('points at the JSON path of each mistake', () => {
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '', baudRate: 9600.5, parity: 'evn', framing: { type: 'regex', pattern: '(' } })).toEqual([
      'path: Too small: expected string to have >=1 characters',
      'baudRate: Invalid input: expected int, received number',
      'parity: Invalid option: expected one of "none"|"even"|"odd"|"mark"|"space"',
      'framing.pattern: not a valid JavaScript regular expression',
    ]);
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '/dev/x', framing: { type: 'fixed-length', length: 0 } })).toEqual(['framing.length: Too small: expected number to be >=1']);
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '/dev/x', baud: 9600 })).toEqual([': Unrecognized key: "baud"']);
  });
});

describe('line device schema', () => {
  it('requires protocol "line" so it is never mistaken for a Modbus device', () => {
    const { protocol: _p, ...noProtocol } = gpsDevice;
    expect(problems(lineDeviceSchema, noProtocol)).toEqual(['protocol: Invalid input: expected "line"']);
    expect(problems(lineDeviceSchema, { ...gpsDevice, protocol: 'modbus' })).toEqual(['protocol: Invalid input: expected "line"']);
  });

  it('fills defaults and derives the topic prefix from the id', () => {
    const d = lineDeviceSchema.parse(gpsDevice);
    expect(d).toMatchObject({ qos: 0, retain: true, commands: {}, parser: { type: 'nmea0183', requireChecksum: true } });
    expect(d.fields.altitude).toEqual({ type: 'number', scale: 1, offset: 0, decimals: 1, unit: 'm' });
    expect(lineDeviceTopicPrefix(d)).toBe('fieldgate/gps1');
    expect(lineDeviceTopicPrefix({ ...d, topicPrefix: 'site/roof/gps' })).toBe('site/roof/gps');
  });

  it('checks regex fields against the named groups of the pattern', () => {
    const device = { id: 'th', protocol: 'line', bus: 'b', parser: { type: 'regex', pattern: 'T=(?<temperature>[\\d.]+)' }, fields: { temperature: {}, humidity: {} } };
    expect(problems(lineDeviceSchema, device)).toEqual(['fields.humidity: the parser pattern has no named group "humidity" (groups: temperature)']);
    expect(problems(lineDeviceSchema, { ...device, parser: { type: 'regex', pattern: 'T=([\\d.]+)' }, fields: { t: {} } })).toContain(
      'parser.pattern: needs at least one named group, e.g. "T=(?<temperature>-?[0-9.]+)"',
    );
  });

  it('checks NMEA fields against what the parser produces', () => {
    const r = problems(lineDeviceSchema, { ...gpsDevice, fields: { latitud: {}, 'GGA.altitude': {}, 'GSV.3': {} } });
    expect(r).toHaveLength(1);
    expect(r[0]).toMatch(/^fields\.latitud: not a field the nmea0183 parser produces; use one of .*latitude/);
  });

  it('rejects duplicate topics, reserved names and bad topic segments', () => {
    const r = problems(lineDeviceSchema, {
      ...gpsDevice,
      fields: { latitude: { topic: 'position' }, longitude: { topic: 'position' }, altitude: { topic: 'availability' }, satellites: { topic: 'a/+/b' } },
      commands: { 'bad#': { template: 'X{value}\n' } },
    });
    expect(r).toEqual(
      expect.arrayContaining([
        'fields.satellites.topic: no "+", "#" or NUL (it becomes part of a topic)',
        'fields.longitude.topic: topic "position" is already used by field "latitude"',
        'fields.altitude: topic "availability" is reserved for the device\'s online/offline state',
        'commands.bad#: "bad#" cannot be a topic segment: no "+", "#" or NUL (it becomes part of a topic)',
      ]),
    );
  });

  it('validates poll and set commands', () => {
    expect(
      problems(lineDeviceSchema, {
        ...gpsDevice,
        poll: { command: '', intervalMs: 5 },
        commands: { rate: { template: 'RATE {value}\r\n', min: 10, max: 1 }, mode: { template: 'M{value}\n', type: 'float', replyPattern: '[' } },
      }),
    ).toEqual([
      'poll.command: Too small: expected string to have >=1 characters',
      'poll.intervalMs: Too small: expected number to be >=10',
      'commands.mode.type: Invalid option: expected one of "number"|"integer"|"string"|"boolean"',
      'commands.mode.replyPattern: not a valid JavaScript regular expression',
    ]);
    expect(problems(lineDeviceSchema, { ...gpsDevice, commands: { rate: { template: 'RATE {value}\r\n', min: 10, max: 1 } } })).toEqual(['commands.rate.min: min (10) is greater than max (1)']);
  });

  it('needs at least one mapped field', () => {
    expect(problems(lineDeviceSchema, { ...gpsDevice, fields: {} })).toEqual(['fields: map at least one parsed field to a topic, e.g. { "temperature": { "unit": "°C" } }']);
  });

  it('profiles may leave out id and bus', () => {
    const { id: _i, bus: _b, ...template } = gpsDevice;
    expect(lineDeviceProfileSchema.safeParse(template).success).toBe(true);
    expect(problems(lineDeviceProfileSchema, { ...template, fields: { latitud: {} } })).toHaveLength(1);
  });
});

describe('cross-references', () => {
  it('a line device must name an existing serial-line bus', () => {
    const buses = [{ id: 'rs485', type: 'modbus-rtu' }, { id: 'gps', type: 'serial-line' }];
    expect(
      lineMappingIssues(buses, [
        { device: { id: 'a', bus: 'gps', protocol: 'line' }, path: ['devices', 0] },
        { device: { id: 'b', bus: 'rs485', protocol: 'line' }, path: ['devices', 1] },
        { device: { id: 'c', bus: 'nope', protocol: 'line' }, path: ['devices', 2] },
      ]),
    ).toEqual([
      { path: ['devices', 1, 'bus'], message: 'bus "rs485" is a modbus-rtu bus; a "protocol": "line" device needs a "serial-line" bus' },
      { path: ['devices', 2, 'bus'], message: 'no bus with id "nope" (serial-line buses: gps)' },
    ]);
  });
});
