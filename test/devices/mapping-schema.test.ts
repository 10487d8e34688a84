import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { busSchema, deviceMappingJsonSchema, loadDeviceMapping, loadDeviceMappings, parseModiconAddress } from '../../src/devices/mapping-schema.js';
import { formatMappingError, issuesToErrors } from '../../src/devices/mapping-errors.js';
import { describeMapping } from '../../src/devices/summary.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-mapping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

const rtuBus = { id: 'rs485', type: 'modbus-rtu', path: '/dev/serial/by-id/usb-FTDI-if00', baudRate: 9600 };
const tcpBus = { id: 'plc', type: 'modbus-tcp', host: '127.0.0.1', port: 1502 };

function meter(points: unknown[], extra: Record<string, unknown> = {}) {
  return { id: 'meter', bus: 'rs485', unitId: 1, points, ...extra };
}

function errorsOf(content: unknown, name = 'meter.json'): string[] {
  const result = loadDeviceMapping(write(name, content));
  if (result.ok) throw new Error('expected the mapping to be rejected');
  return result.errors;
}

describe('device mapping loader', () => {
  it('accepts a good mapping and resolves addresses, defaults and topics', () => {
    const result = loadDeviceMapping(
      write('good.json', {
        buses: [rtuBus, tcpBus],
        devices: [
          meter([
            { name: 'voltage', table: 'input', address: 0, type: 'float32', unit: 'V' },
            { name: 'relay', table: 'coil', address: 3, writable: true },
            { name: 'alarm/low', table: 'holding', address: 10, type: 'bit', bit: 3 },
            { name: 'alarm/high', table: 'holding', address: 10, type: 'bit', bit: 4 },
          ]),
          { id: 'plc1', bus: 'plc', unitId: 0, addressBase: 'modicon', topicPrefix: 'site/plc1', byteOrder: 'CDAB', points: [{ name: 'setpoint', address: 40011, type: 'int32', writable: true, min: -10, max: 10 }] },
        ],
      }),
    );
    if (!result.ok) throw new Error(result.errors.join('\n'));
    const [m, plc] = result.mapping.modbusDevices;
    expect(m.topicPrefix).toBe('fieldgate/meter');
    expect(m.points[0]).toMatchObject({ topic: 'fieldgate/meter/voltage', table: 'input', address: 0, count: 2, byteOrder: 'ABCD', pollIntervalMs: 1000 });
    expect(m.points[1]).toMatchObject({ type: 'bool', count: 1 });
    expect(plc.points[0]).toMatchObject({ topic: 'site/plc1/setpoint', table: 'holding', address: 10, byteOrder: 'CDAB' });
    expect(plc.bus.type).toBe('modbus-tcp');
  });

  it('names the file, the JSON path, what was expected and what it got', () => {
    const errors = errorsOf({ buses: [rtuBus], devices: [meter([{ name: 'a', table: 'input', address: 0 }, { name: 'b', table: 'input', address: 1 }, { name: 'c', table: 'input', address: 2 }, { name: 'd', table: 'input', address: 3, type: 'float' }])] });
    expect(errors).toEqual([expect.stringMatching(/meter\.json: devices\[0\]\.points\[3\]\.type: expected one of bool, bit, int16, uint16, .*float64, string \(got "float"\)$/)]);
  });

  it('reports every problem at once', () => {
    const errors = errorsOf({
      buses: [rtuBus, { id: 'x', type: 'modbus-udp' }],
      devices: [
        meter([
          { name: 'v', table: 'holding', address: 0, type: 'float32' },
          { name: 'overlap', table: 'holding', address: 1, type: 'uint16' },
          { name: 'far', table: 'holding', address: 70000 },
          { name: 'edge', table: 'holding', address: 65534, type: 'float64' },
          { name: 'serial', table: 'holding', address: 100, type: 'string' },
          { name: 'v', table: 'input', address: 0 },
          { name: 'flag', table: 'coil', address: 0, type: 'int16' },
          { name: 'ro', table: 'input', address: 5, writable: true },
          { name: 'bitless', table: 'holding', address: 200, type: 'bit' },
          { name: 'typo', table: 'holding', address: 300, type: 'float' },
        ]),
        { id: 'other', bus: 'nowhere', unitId: 2, points: [{ name: 'x', table: 'input', address: 0 }] },
        { id: 'meter', bus: 'rs485', unitId: 1, pollInterval: 5, points: [] },
        { id: 'zero', bus: 'rs485', unitId: 0, points: [{ name: 'x', table: 'input', address: 0 }] },
        { id: 'small', bus: 'rs485', unitId: 9, maxRegistersPerRequest: 2, points: [{ name: 'label', table: 'holding', address: 0, type: 'string', length: 8 }, { name: 'energy', table: 'holding', address: 10, type: 'float64' }] },
      ],
      version: 2,
    });
    const text = errors.join('\n');
    expect(text).toContain('buses[1].type: expected one of modbus-rtu, modbus-tcp, modbus-rtu-over-tcp, serial-line (got "modbus-udp")');
    expect(text).toMatch(/devices\[0\]\.points\[1\]: "overlap" \(holding 1\) overlaps "v" \(holding 0–1\)/);
    expect(text).toContain('devices[0].points[2].address: expected at most 65535');
    expect(text).toContain('devices[0].points[3].address: float64 at 65534 needs 4 registers and runs past 65535');
    expect(text).toContain('devices[0].points[4].length: missing: type "string" needs "length"');
    expect(text).toContain('devices[0].points[6].type: a coil holds one bit: expected bool (got "int16")');
    expect(text).toContain('devices[0].points[7].writable: input registers are read-only');
    expect(text).toContain('devices[0].points[8].bit: missing');
    expect(text).toContain('devices[1].bus: unknown bus "nowhere" (buses: rs485)');
    expect(text).toContain('devices[2].pollInterval: unknown key (did you mean "pollIntervalMs"?)');
    expect(text).toContain('devices[2].points: needs at least 1 item');
    expect(text).toContain('devices[3].unitId: expected 1…247 on an RTU bus (got 0)');
    expect(text).toContain('devices[0].points[9].type: expected one of bool, bit');
    expect(text).toContain('meter.json: version: unknown key');
    expect(text).toContain('devices[4].points[0].length: string needs 8 registers, more than one read may take (maxRegistersPerRequest 2)');
    expect(text).toContain('devices[4].points[1].type: float64 needs 4 registers, more than one read may take (maxRegistersPerRequest 2)');
    expect(errors.length).toBeGreaterThanOrEqual(12);
    for (const e of errors) expect(e.startsWith(path.join(dir, 'meter.json') + ': ')).toBe(true);
  });

  it('reports duplicate topics, device ids and unit ids, also across files', () => {
    const a = write('a.json', { buses: [tcpBus], devices: [{ id: 'd1', bus: 'plc', unitId: 1, topicPrefix: 'site', points: [{ name: 'temp', table: 'input', address: 0 }] }] });
    const b = write('b.json', {
      devices: [
        { id: 'd2', bus: 'plc', unitId: 2, topicPrefix: 'site', points: [{ name: 'temp', table: 'input', address: 0 }] },
        { id: 'd1', bus: 'plc', unitId: 1, points: [{ name: 'x', table: 'input', address: 0 }] },
      ],
    });
    const result = loadDeviceMappings([a, b]);
    expect(result.ok).toBe(false);
    const text = result.ok ? '' : result.errors.join('\n');
    expect(text).toMatch(/b\.json: devices\[0\]\.points\[0\]\.name: duplicate topic "site\/temp"/);
    expect(text).toMatch(/b\.json: devices\[0\]\.topicPrefix: duplicate topic "site\/availability"/);
    expect(text).toMatch(/b\.json: devices\[1\]\.id: duplicate device id "d1"/);
    expect(text).toMatch(/b\.json: devices\[1\]\.unitId: unit id 1 on bus "plc" is already used/);
  });

  it('explains bad JSON, wrong types and missing keys', () => {
    expect(errorsOf('{ "buses": [ }', 'broken.json')[0]).toMatch(/broken\.json: not valid JSON/);
    expect(errorsOf([], 'array.json')[0]).toMatch(/expected a JSON object/);
    const errors = errorsOf({ buses: [{ id: 'rs485', type: 'modbus-rtu', baudRate: 9601 }], devices: [{ id: 'm', bus: 'rs485', unitId: '1', points: [{ table: 'input', address: -1 }] }] });
    const text = errors.join('\n');
    expect(text).toContain('buses[0].path: missing: expected string');
    expect(text).toMatch(/buses\[0\]\.baudRate: expected one of .*9600.* \(got 9601\)/);
    expect(text).toContain('devices[0].unitId: expected number (got "1")');
    expect(text).toContain('devices[0].points[0].name: missing: expected string');
    expect(text).toContain('devices[0].points[0].address: expected at least 0 (got -1)');
    const missing = loadDeviceMapping(path.join(dir, 'nope.json'));
    expect(missing.ok ? '' : missing.errors[0]).toMatch(/nope\.json: cannot read the file \(ENOENT\)/);
  });

  it('understands 1-based and Modicon (4xxxx) data-sheet addresses', () => {
    expect(parseModiconAddress(40001)).toEqual({ table: 'holding', address: 0 });
    expect(parseModiconAddress(30002)).toEqual({ table: 'input', address: 1 });
    expect(parseModiconAddress(10001)).toEqual({ table: 'discrete-input', address: 0 });
    expect(parseModiconAddress(1)).toEqual({ table: 'coil', address: 0 });
    expect(parseModiconAddress(465536)).toEqual({ table: 'holding', address: 65535 });
    expect(parseModiconAddress(50000)).toBeUndefined();
    const ok = loadDeviceMapping(write('one.json', { buses: [rtuBus], devices: [meter([{ name: 'a', table: 'holding', address: 1 }], { addressBase: 1 })] }));
    expect(ok.ok && ok.mapping.modbusDevices[0].points[0].address).toBe(0);
    const errors = errorsOf({ buses: [rtuBus], devices: [meter([{ name: 'a', table: 'input', address: 40001 }, { name: 'b', address: 50000 }], { addressBase: 'modicon' })] });
    expect(errors.join('\n')).toContain('points[0].table: address 40001 is a holding reference but table says input');
    expect(errors.join('\n')).toContain('points[1].address: expected a data-sheet reference like 40001');
  });

  it('includes a profile by name and overrides its bus and unit id', () => {
    write('my-meter.json', { profile: { name: 'My meter', pollIntervalMs: 2000, points: [{ name: 'power', table: 'input', address: 12, type: 'float32' }] } });
    const result = loadDeviceMapping(write('site.json', { buses: [rtuBus], include: [{ profile: 'my-meter', id: 'm7', bus: 'rs485', unitId: 7, pollIntervalMs: 500 }] }));
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.mapping.modbusDevices[0]).toMatchObject({ id: 'm7', unitId: 7, pollIntervalMs: 500, name: 'My meter' });
    const bad = errorsOf({ buses: [rtuBus], include: [{ profile: 'no-such-profile', id: 'x', bus: 'rs485', unitId: 1 }, { profile: 'my-meter', id: 'y', bus: 'rs485', unitId: 2, colour: 'red' }] });
    expect(bad.join('\n')).toMatch(/include\[0\]\.profile: no profile "no-such-profile"/);
    expect(bad.join('\n')).toContain('include[1].colour: unknown key');
  });

  it('checks every shipped profile and example', async () => {
    const { readdirSync } = await import('node:fs');
    const shipped = path.resolve(import.meta.dirname, '../../devices');
    const files = readdirSync(shipped).filter((f) => f.endsWith('.json')).map((f) => path.join(shipped, f));
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['eastron-sdm120.json', 'eastron-sdm630.json', 'example.json', 'nmea-gps.json', 'xy-md02.json']);
    for (const f of files) {
      const r = loadDeviceMapping(f);
      expect(r.ok ? [] : r.errors).toEqual([]);
    }
    // The example shows both kinds of device: Modbus (included and inline) and line (included profile and inline).
    const example = loadDeviceMapping(path.join(shipped, 'example.json'));
    if (!example.ok) throw new Error(example.errors.join('\n'));
    expect(example.mapping.modbusDevices.map((d) => d.id).sort()).toEqual(['boiler', 'cellar', 'main-meter']);
    expect(example.mapping.lineDevices.map((d) => [d.id, d.bus, d.parser.type]).sort()).toEqual([
      ['gps', 'gps', 'nmea0183'],
      ['greenhouse', 'arduino', 'key-value'],
    ]);
    expect(describeMapping(example.mapping)).toContain('  gps: 10 fields → home/gps/…');
  });

  it('accepts line devices next to Modbus devices and checks them against the same buses and topics', () => {
    const lineBus = { id: 'gps-port', type: 'serial-line', path: '/dev/serial/by-id/usb-u-blox-if00', baudRate: 9600 };
    const gps = { id: 'gps', protocol: 'line', bus: 'gps-port', parser: { type: 'json' }, fields: { speed: { unit: 'km/h' } } };
    const ok = loadDeviceMapping(write('mixed.json', { buses: [rtuBus, lineBus], devices: [meter([{ name: 'v', table: 'input', address: 0 }]), gps] }));
    if (!ok.ok) throw new Error(ok.errors.join('\n'));
    expect(ok.mapping.lineDevices.map((d) => d.id)).toEqual(['gps']);
    expect(ok.mapping.modbusDevices.map((d) => d.id)).toEqual(['meter']);
    const bad = errorsOf({
      buses: [rtuBus, lineBus],
      devices: [
        meter([{ name: 'v', table: 'input', address: 0 }], { id: 'meter2', bus: 'gps-port' }),
        { ...gps, bus: 'rs485' },
        { ...gps, id: 'gps2', topicPrefix: 'fieldgate/meter', fields: { v: {} } },
        meter([{ name: 'v', table: 'input', address: 0 }]),
      ],
    });
    const text = bad.join('\n');
    expect(text).toContain('devices[0].bus: bus "gps-port" is serial-line: a Modbus device needs');
    expect(text).toMatch(/devices\[1\]\.bus: .*serial-line/);
    expect(text).toContain('devices[2].topicPrefix: duplicate topic "fieldgate/meter/availability"');
    expect(text).toContain('devices[2].fields.v: duplicate topic "fieldgate/meter/v"');
  });

  it('shows the offending value of a discriminated union (bus, framing and parser types), not "an object"', () => {
    const parsed = busSchema.safeParse({ id: 'x', type: 'modbus', path: '/dev/ttyUSB0' }, { reportInput: true });
    expect(parsed.success).toBe(false);
    const direct = issuesToErrors('devices/site.json', 'buses[0]', parsed.success ? [] : parsed.error.issues, () => []).map(formatMappingError);
    expect(direct).toEqual(['devices/site.json: buses[0].type: expected one of modbus-rtu, modbus-tcp, modbus-rtu-over-tcp, serial-line (got "modbus")']);
    const errors = errorsOf({
      buses: [{ id: 'gps-port', type: 'serial-line', path: '/dev/ttyACM0', framing: { type: 'line' } }, { id: 'ok-port', type: 'serial-line', path: '/dev/ttyACM1' }],
      devices: [
        { id: 'gps', protocol: 'line', bus: 'ok-port', parser: { type: 'csv' }, fields: { speed: {} } },
        { id: 'gps2', protocol: 'line', bus: 'ok-port', parser: { pattern: 'x' }, fields: { speed: {} } },
      ],
    });
    const text = errors.join('\n');
    expect(text).toContain('buses[0].framing.type: expected one of delimiter, fixed-length, regex (got "line")');
    expect(text).toContain('devices[0].parser.type: expected one of regex, json, key-value, nmea0183 (got "csv")');
    expect(text).toContain('devices[1].parser.type: missing: expected one of regex, json, key-value, nmea0183');
    expect(text).not.toContain('an object');
  });

  it('summarises a mapping for `fieldgate check`', () => {
    const r = loadDeviceMapping(path.resolve(import.meta.dirname, '../../devices/example.json'));
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const lines = describeMapping(r.mapping);
    expect(lines).toContain('bus plc (modbus-tcp) 192.168.1.50:502');
    expect(lines.find((l) => l.includes('main-meter'))).toMatch(/main-meter unit 1: 36 points → home\/energy\/main\/…, \d+ read\(s\) per poll \(minimum \d+\), every 5000 ms/);
  });

  it('exports a JSON Schema for editors', () => {
    const schema = deviceMappingJsonSchema();
    expect(schema.$schema).toMatch(/json-schema/);
    const text = JSON.stringify(schema);
    expect(text).toContain('modbus-rtu-over-tcp');
    expect(text).toContain('float64');
  });
});
