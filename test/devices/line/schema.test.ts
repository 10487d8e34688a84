import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatMappingError, issuesToErrors } from '../../../src/devices/mapping-errors.js';
import { lineBusSchema, lineDeviceProfileSchema, lineDeviceSchema, lineDeviceTopicPrefix, lineMappingIssues } from '../../../src/devices/line/schema.js';

/** The errors exactly as the mapping loader prints them, for an object at devices[0] / buses[0]. */
function problems(schema: z.ZodType, input: unknown, at = 'devices[0]'): string[] {
  const r = schema.safeParse(input, { reportInput: true });
  if (r.success) return [];
  return issuesToErrors('devices/site.json', at, r.error.issues, () => ['baudRate', 'path', 'parity']).map(formatMappingError);
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
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '', baudRate: 9600.5, parity: 'evn', framing: { type: 'regex', pattern: '(' } }, 'buses[0]')).toEqual([
      'devices/site.json: buses[0].path: needs at least 1 character(s)',
      'devices/site.json: buses[0].baudRate: expected an integer (got 9600.5)',
      'devices/site.json: buses[0].parity: expected one of none, even, odd, mark, space (got "evn")',
      'devices/site.json: buses[0].framing.pattern: not a valid JavaScript regular expression (got "(")',
    ]);
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '/dev/x', framing: { type: 'fixed-length', length: 0 } }, 'buses[0]')).toEqual([
      'devices/site.json: buses[0].framing.length: expected at least 1 (got 0)',
    ]);
    expect(problems(lineBusSchema, { id: 'b', type: 'serial-line', path: '/dev/x', baud: 9600 }, 'buses[0]')).toEqual(['devices/site.json: buses[0].baud: unknown key (did you mean "baudRate"?)']);
  });
});

describe('line device schema', () => {
  it('requires protocol "line" so it is never mistaken for a Modbus device', () => {
    const { protocol: _p, ...noProtocol } = gpsDevice;
    expect(problems(lineDeviceSchema, noProtocol)).toEqual(['devices/site.json: devices[0].protocol: expected "line" (got nothing)']);
    expect(problems(lineDeviceSchema, { ...gpsDevice, protocol: 'modbus' })).toEqual(['devices/site.json: devices[0].protocol: expected "line" (got "modbus")']);
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
    expect(problems(lineDeviceSchema, device)).toEqual(['devices/site.json: devices[0].fields.humidity: the parser pattern has no named group of this name (groups: temperature) (got "humidity")']);
    expect(problems(lineDeviceSchema, { ...device, parser: { type: 'regex', pattern: 'T=([\\d.]+)' }, fields: { t: {} } })).toEqual([
      `devices/site.json: devices[0].parser.pattern: needs at least one named group, e.g. "T=(?<temperature>-?[0-9.]+)" (got ${JSON.stringify("T=([\\d.]+)")})`,
    ]);
  });

  it('checks NMEA fields against what the parser produces', () => {
    expect(problems(lineDeviceSchema, { ...gpsDevice, fields: { latitud: {}, 'GGA.altitude': {}, 'GSV.3': {}, 'RMC.speedKnot': {} } })).toEqual([
      'devices/site.json: devices[0].fields.latitud: not a field the nmea0183 parser produces (did you mean "latitude"?) (got "latitud")',
      'devices/site.json: devices[0].fields.RMC.speedKnot: not a field the nmea0183 parser produces (did you mean "RMC.speedKnots"?) (got "RMC.speedKnot")',
    ]);
    const [unknown] = problems(lineDeviceSchema, { ...gpsDevice, fields: { wind: {} } });
    expect(unknown).toMatch(/fields\.wind: not a field the nmea0183 parser produces; use one of utcTime, latitude, .*raw field like "GSV.3"/);
  });

  it('rejects duplicate topics, reserved names and bad topic segments', () => {
    const r = problems(lineDeviceSchema, {
      ...gpsDevice,
      fields: { latitude: { topic: 'position' }, longitude: { topic: 'position' }, altitude: { topic: 'availability' }, satellites: { topic: 'a/+/b' } },
      commands: { 'bad#': { template: 'X{value}\n' } },
    });
    expect(r).toEqual(
      [
        'devices/site.json: devices[0].fields.satellites.topic: no "+", "#" or NUL (it becomes part of a topic) (got "a/+/b")',
        'devices/site.json: devices[0].fields.longitude.topic: this topic is already used by field "latitude" (got "position")',
        'devices/site.json: devices[0].fields.altitude: this topic is reserved for the device\'s online/offline state (got "availability")',
        'devices/site.json: devices[0].commands.bad#: cannot be a topic segment: no "+", "#" or NUL (it becomes part of a topic) (got "bad#")',
      ],
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
      'devices/site.json: devices[0].poll.command: needs at least 1 character(s)',
      'devices/site.json: devices[0].poll.intervalMs: expected at least 10 (got 5)',
      'devices/site.json: devices[0].commands.mode.type: expected one of number, integer, string, boolean (got "float")',
      'devices/site.json: devices[0].commands.mode.replyPattern: not a valid JavaScript regular expression (got "[")',
    ]);
    expect(problems(lineDeviceSchema, { ...gpsDevice, commands: { rate: { template: 'RATE {value}\r\n', min: 10, max: 1 } } })).toEqual([
      'devices/site.json: devices[0].commands.rate.min: must not be greater than max (1) (got 10)',
    ]);
  });

  it('needs at least one mapped field', () => {
    expect(problems(lineDeviceSchema, { ...gpsDevice, fields: {} })).toEqual([
      'devices/site.json: devices[0].fields: map at least one parsed field to a topic, e.g. { "temperature": { "unit": "°C" } } (got an object)',
    ]);
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
