// The pure part of Home Assistant MQTT discovery: from a loaded device mapping (shipped profiles,
// the demo, the commented example) to the config messages, without a broker.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDemoMapping } from '../../src/demo/demo-mapping.js';
import { buildDiscoveryConfigs, gatewayDiscoveryConfig, numberRange, type DiscoveryConfig } from '../../src/devices/home-assistant/index.js';
import { loadDeviceMapping, shippedProfileDir, type DeviceMapping } from '../../src/devices/mapping-schema.js';
import { formatValue, parseCommand } from '../../src/devices/modbus/value.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-ha-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rtuBus = { id: 'rs485', type: 'modbus-rtu', path: '/dev/serial/by-id/usb-FTDI-if00' };
const options = { prefix: 'homeassistant', gatewayId: 'pi-garage' };

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(content, null, 2));
  return file;
}

function load(file: string): DeviceMapping {
  const result = loadDeviceMapping(file);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.mapping;
}

function errorsOf(content: unknown): string[] {
  const result = loadDeviceMapping(write('bad.json', content));
  if (result.ok) throw new Error('expected the mapping to be rejected');
  return result.errors;
}

/** Configs by the point's state topic. */
function byStateTopic(configs: DiscoveryConfig[]): Map<string, DiscoveryConfig> {
  return new Map(configs.map((c) => [c.payload.state_topic as string, c]));
}

describe('discovery configs of the shipped Eastron SDM120 profile', () => {
  const mapping = () => load(write('sdm120.json', { buses: [rtuBus], include: [{ profile: 'eastron-sdm120', id: 'meter1', bus: 'rs485', unitId: 2 }] }));

  it('makes one sensor per point with the device class and state class its unit implies', () => {
    const configs = buildDiscoveryConfigs(mapping(), options);
    expect(configs).toHaveLength(13);
    const expected: Record<string, [string | undefined, string, string | undefined]> = {
      voltage: ['voltage', 'measurement', 'V'],
      current: ['current', 'measurement', 'A'],
      power: ['power', 'measurement', 'W'],
      apparent_power: ['apparent_power', 'measurement', 'VA'],
      reactive_power: ['reactive_power', 'measurement', 'var'],
      power_factor: ['power_factor', 'measurement', undefined],
      frequency: ['frequency', 'measurement', 'Hz'],
      import_energy: ['energy', 'total_increasing', 'kWh'],
      export_energy: ['energy', 'total_increasing', 'kWh'],
      import_reactive_energy: ['reactive_energy', 'total_increasing', 'kvarh'],
      export_reactive_energy: ['reactive_energy', 'total_increasing', 'kvarh'],
      total_energy: ['energy', 'total_increasing', 'kWh'],
      total_reactive_energy: ['reactive_energy', 'total_increasing', 'kvarh'],
    };
    const configsByTopic = byStateTopic(configs);
    for (const [point, [deviceClass, stateClass, unit]] of Object.entries(expected)) {
      const config = configsByTopic.get(`fieldgate/meter1/${point}`);
      expect(config?.topic, point).toBe(`homeassistant/sensor/pi-garage_meter1/${point}/config`);
      expect(config?.payload.device_class, point).toBe(deviceClass);
      expect(config?.payload.state_class, point).toBe(stateClass);
      expect(config?.payload.unit_of_measurement, point).toBe(unit);
    }
  });

  it('carries the topics fieldgate uses, stable unique ids and the device block', () => {
    const voltage = byStateTopic(buildDiscoveryConfigs(mapping(), options)).get('fieldgate/meter1/voltage')!;
    expect(voltage.deviceId).toBe('meter1');
    expect(voltage.payload).toEqual({
      name: 'Voltage',
      unique_id: 'fieldgate:pi-garage:meter1:voltage',
      default_entity_id: 'sensor.meter1_voltage',
      state_topic: 'fieldgate/meter1/voltage',
      availability_topic: 'fieldgate/meter1/availability',
      payload_available: 'online',
      payload_not_available: 'offline',
      unit_of_measurement: 'V',
      device_class: 'voltage',
      state_class: 'measurement',
      suggested_display_precision: 1,
      device: {
        identifiers: ['fieldgate:pi-garage:meter1'],
        name: 'Eastron SDM120',
        manufacturer: 'Eastron',
        model: 'SDM120-Modbus',
        via_device: 'fieldgate:pi-garage',
      },
      origin: { name: 'fieldgate', sw_version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
    });
    // The same mapping gives the same ids every time; another gateway gives others.
    expect(buildDiscoveryConfigs(mapping(), options).map((c) => c.payload.unique_id)).toEqual(buildDiscoveryConfigs(mapping(), options).map((c) => c.payload.unique_id));
    const other = buildDiscoveryConfigs(mapping(), { prefix: 'ha', gatewayId: 'barn.local' });
    expect(other[0].topic).toBe('ha/sensor/barn_local_meter1/voltage/config');
    expect(other[0].payload.unique_id).toBe('fieldgate:barn.local:meter1:voltage');
    expect((other[0].payload.device as { via_device: string }).via_device).toBe('fieldgate:barn.local');
  });

  it('a name given in the including mapping names the device; the profile still gives maker and model', () => {
    const named = load(write('sdm120-named.json', { buses: [rtuBus], include: [{ profile: 'eastron-sdm120', id: 'heatpump', name: 'Heat pump meter', bus: 'rs485', unitId: 3 }] }));
    const device = buildDiscoveryConfigs(named, options)[0].payload.device;
    expect(device).toMatchObject({ name: 'Heat pump meter', manufacturer: 'Eastron', model: 'SDM120-Modbus' });
  });
});

describe('discovery configs of the demo meter', () => {
  const demo = () => load(writeDemoMapping(path.join(dir, 'demo'), 1502));

  it('announces the relay coil as a switch whose payloads the adapter publishes and accepts', () => {
    const mapping = demo();
    const relay = byStateTopic(buildDiscoveryConfigs(mapping, options)).get('fieldgate/demo-meter/relay')!;
    expect(relay.topic).toBe('homeassistant/switch/pi-garage_demo-meter/relay/config');
    expect(relay.payload).toMatchObject({
      command_topic: 'fieldgate/demo-meter/relay/set',
      state_topic: 'fieldgate/demo-meter/relay',
      payload_on: 'true',
      payload_off: 'false',
      availability_topic: 'fieldgate/demo-meter/availability',
    });
    expect(relay.payload).not.toHaveProperty('state_class');
    const point = mapping.modbusDevices[0].points.find((p) => p.name === 'relay')!;
    // What Home Assistant sends is understood, and what fieldgate publishes is what Home Assistant compares against.
    expect(parseCommand(point, relay.payload.payload_on as string)).toBe(true);
    expect(parseCommand(point, relay.payload.payload_off as string)).toBe(false);
    expect(formatValue(true)).toBe(relay.payload.payload_on);
    expect(formatValue(false)).toBe(relay.payload.payload_off);
  });

  it('announces every demo point with its precision, energy as a growing counter', () => {
    const configs = byStateTopic(buildDiscoveryConfigs(demo(), options));
    expect([...configs.keys()].map((t) => t.split('/').pop())).toEqual(['voltage', 'current', 'power', 'power-factor', 'frequency', 'energy-import', 'energy-total', 'relay']);
    expect(configs.get('fieldgate/demo-meter/power')!.payload).toMatchObject({ device_class: 'power', suggested_display_precision: 0, name: 'Power' });
    expect(configs.get('fieldgate/demo-meter/power-factor')!.payload).toMatchObject({ device_class: 'power_factor', name: 'Power factor' });
    expect(configs.get('fieldgate/demo-meter/energy-total')!.payload).toMatchObject({ device_class: 'energy', state_class: 'total_increasing', unit_of_measurement: 'kWh', default_entity_id: 'sensor.demo_meter_energy_total' });
    expect(configs.get('fieldgate/demo-meter/energy-total')!.payload.device).toMatchObject({ name: 'Simulated Eastron SDM120', manufacturer: 'Eastron' });
  });
});

describe('discovery configs of the other shipped profiles and the commented example', () => {
  const example = () => load(path.join(shippedProfileDir, 'example.json'));

  it('XY-MD02: %RH is humidity in %, writable corrections are numbers with their range and no device class', () => {
    const configs = byStateTopic(buildDiscoveryConfigs(load(write('md02.json', { buses: [rtuBus], include: [{ profile: 'xy-md02', id: 'cellar', bus: 'rs485', unitId: 4 }] })), options));
    expect(configs.get('fieldgate/cellar/humidity')!.payload).toMatchObject({ device_class: 'humidity', unit_of_measurement: '%', state_class: 'measurement' });
    expect(configs.get('fieldgate/cellar/temperature')!.payload).toMatchObject({ device_class: 'temperature', unit_of_measurement: '°C' });
    const correction = configs.get('fieldgate/cellar/temperature_correction')!;
    expect(correction.topic).toBe('homeassistant/number/pi-garage_cellar/temperature_correction/config');
    expect(correction.payload).toMatchObject({ command_topic: 'fieldgate/cellar/temperature_correction/set', min: -10, max: 10, step: 0.1, unit_of_measurement: '°C', mode: 'box' });
    // A correction is an offset: Home Assistant must not convert it as a temperature.
    expect(correction.payload).not.toHaveProperty('device_class');
    expect(correction.payload).not.toHaveProperty('state_class');
    expect(correction.payload.device).toMatchObject({ model: 'XY-MD02' });
  });

  it('example.json: bits and discrete inputs are binary sensors, a coil a switch, text a plain sensor, line fields sensors', () => {
    const configs = byStateTopic(buildDiscoveryConfigs(example(), options));
    for (const topic of ['home/boiler/status/burner_on', 'home/boiler/status/fault', 'home/boiler/door_open']) {
      expect(configs.get(topic)!.topic, topic).toMatch(/^homeassistant\/binary_sensor\/pi-garage_boiler\/[A-Za-z0-9_-]+\/config$/);
      expect(configs.get(topic)!.payload, topic).toMatchObject({ payload_on: 'true', payload_off: 'false' });
      expect(configs.get(topic)!.payload, topic).not.toHaveProperty('command_topic');
    }
    expect(configs.get('home/boiler/status/burner_on')!.payload).toMatchObject({ name: 'Status burner on', unique_id: 'fieldgate:pi-garage:boiler:status_burner_on' });
    expect(configs.get('home/boiler/pump')!.payload).toMatchObject({ command_topic: 'home/boiler/pump/set', payload_on: 'true' });
    expect(configs.get('home/boiler/pump')!.topic).toContain('/switch/');
    expect(configs.get('home/boiler/setpoint')!.payload).toMatchObject({ min: 30, max: 80, step: 0.1, command_topic: 'home/boiler/setpoint/set', unit_of_measurement: '°C' });
    expect(configs.get('home/boiler/pressure')!.payload).toMatchObject({ device_class: 'pressure', unit_of_measurement: 'bar' });
    expect(configs.get('home/boiler/serial_number')!.payload).not.toHaveProperty('state_class');
    expect(configs.get('home/boiler/serial_number')!.payload).not.toHaveProperty('unit_of_measurement');
    expect(configs.get('home/boiler/flow_temperature')!.payload).toMatchObject({ qos: 1, availability_topic: 'home/boiler/availability' });
    // Line devices: their fields, by their topic, with the line device's availability.
    expect(configs.get('home/greenhouse/temperature')!.payload).toMatchObject({ device_class: 'temperature', unit_of_measurement: '°C', availability_topic: 'home/greenhouse/availability', suggested_display_precision: 1 });
    expect(configs.get('home/greenhouse/humidity')!.payload).toMatchObject({ device_class: 'humidity', unit_of_measurement: '%' });
    expect(configs.get('home/gps/fix-valid')!.topic).toBe('homeassistant/binary_sensor/pi-garage_gps/fix-valid/config');
    expect(configs.get('home/gps/satellites')!.payload).toMatchObject({ state_class: 'measurement', suggested_display_precision: 0 });
    expect(configs.get('home/gps/utc-time')!.payload).not.toHaveProperty('state_class');
    expect(configs.get('home/gps/altitude')!.payload).toMatchObject({ device_class: 'distance', unit_of_measurement: 'm' });
  });

  it('every topic level and id is one Home Assistant accepts, and no two entities share one', () => {
    const configs = buildDiscoveryConfigs(example(), options);
    const expectedCount = example().modbusDevices.reduce((n, d) => n + d.points.length, 0) + example().lineDevices.reduce((n, d) => n + Object.keys(d.fields).length, 0);
    expect(configs).toHaveLength(expectedCount);
    for (const c of configs) {
      expect(c.topic).toMatch(/^homeassistant\/(sensor|binary_sensor|switch|number)\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/config$/);
      expect(c.payload.default_entity_id).toMatch(/^(sensor|binary_sensor|switch|number)\.[a-z0-9]+(_[a-z0-9]+)*$/);
    }
    expect(new Set(configs.map((c) => c.topic)).size).toBe(configs.length);
    expect(new Set(configs.map((c) => c.payload.unique_id)).size).toBe(configs.length);
  });

  it('unique ids and device identifiers stay distinct when device id and point name could be joined two ways', () => {
    const point = (name: string) => ({ name, table: 'holding', address: 0, unit: 'V' });
    const configs = buildDiscoveryConfigs(load(write('ambiguous.json', {
      buses: [rtuBus],
      devices: [
        { id: 'meter', bus: 'rs485', unitId: 1, points: [point('l1_voltage')] },
        { id: 'meter_l1', bus: 'rs485', unitId: 2, points: [point('voltage')] },
      ],
    })), options);
    expect(configs.map((c) => c.payload.unique_id)).toEqual(['fieldgate:pi-garage:meter:l1_voltage', 'fieldgate:pi-garage:meter_l1:voltage']);
    expect(new Set(configs.map((c) => (c.payload.device as { identifiers: string[] }).identifiers[0])).size).toBe(2);
  });
});

describe('per-device and per-point settings', () => {
  const tcpBus = { id: 'plc', type: 'modbus-tcp', host: '127.0.0.1', port: 1502 };
  const device = (points: unknown[], extra: Record<string, unknown> = {}) => ({ id: 'plc1', bus: 'plc', unitId: 1, points, ...extra });

  it('"announce": false leaves out a device or a point', () => {
    const lineBus = { id: 'ard', type: 'serial-line', path: '/dev/ttyACM0' };
    const lineDevice = (id: string, extra: Record<string, unknown>) => ({ id, protocol: 'line', bus: 'ard', parser: { type: 'json' }, fields: { t: { unit: '°C' }, h: { unit: '%RH' } }, ...extra });
    const mapping = load(write('announce.json', {
      buses: [tcpBus, lineBus],
      devices: [
        device([{ name: 'a', table: 'input', address: 0 }, { name: 'b', table: 'input', address: 1, homeAssistant: { announce: false } }]),
        { id: 'hidden', bus: 'plc', unitId: 2, homeAssistant: { announce: false }, points: [{ name: 'x', table: 'input', address: 0 }] },
        lineDevice('shed', { fields: { t: { unit: '°C' }, h: { unit: '%RH', homeAssistant: { announce: false } } } }),
        lineDevice('attic', { homeAssistant: { announce: false } }),
      ],
    }));
    expect(buildDiscoveryConfigs(mapping, options).map((c) => c.payload.state_topic)).toEqual(['fieldgate/plc1/a', 'fieldgate/shed/t']);
  });

  it('name, component, device class and state class can be set; "none" removes an inferred class', () => {
    const mapping = load(write('overrides.json', {
      buses: [tcpBus],
      devices: [device([
        { name: 'kwh_today', table: 'input', address: 0, unit: 'kWh', homeAssistant: { name: 'Energy today', stateClass: 'total' } },
        { name: 'tank', table: 'input', address: 1, unit: '%', homeAssistant: { deviceClass: 'moisture' } },
        { name: 'offset', table: 'input', address: 2, unit: 'V', homeAssistant: { deviceClass: 'none', stateClass: 'none' } },
        { name: 'mode', table: 'holding', address: 3, writable: true, homeAssistant: { component: 'sensor' } },
        { name: 'door', table: 'coil', address: 0, writable: true, homeAssistant: { component: 'binary_sensor', deviceClass: 'door' } },
      ])],
    }));
    const configs = byStateTopic(buildDiscoveryConfigs(mapping, options));
    expect(configs.get('fieldgate/plc1/kwh_today')!.payload).toMatchObject({ name: 'Energy today', device_class: 'energy', state_class: 'total' });
    expect(configs.get('fieldgate/plc1/tank')!.payload).toMatchObject({ device_class: 'moisture', unit_of_measurement: '%' });
    expect(configs.get('fieldgate/plc1/offset')!.payload).toMatchObject({ unit_of_measurement: 'V' });
    expect(configs.get('fieldgate/plc1/offset')!.payload).not.toHaveProperty('device_class');
    expect(configs.get('fieldgate/plc1/offset')!.payload).not.toHaveProperty('state_class');
    expect(configs.get('fieldgate/plc1/mode')!.topic).toBe('homeassistant/sensor/pi-garage_plc1/mode/config');
    expect(configs.get('fieldgate/plc1/mode')!.payload).not.toHaveProperty('command_topic');
    expect(configs.get('fieldgate/plc1/door')!.topic).toBe('homeassistant/binary_sensor/pi-garage_plc1/door/config');
    expect(configs.get('fieldgate/plc1/door')!.payload).toMatchObject({ device_class: 'door', payload_on: 'true' });
  });

  it('points whose names differ only in characters a topic level cannot hold get distinct ids', () => {
    const mapping = load(write('clash.json', { buses: [tcpBus], devices: [device([{ name: 'l1/voltage', table: 'input', address: 0 }, { name: 'l1_voltage', table: 'input', address: 1 }])] }));
    const configs = buildDiscoveryConfigs(mapping, options);
    expect(configs.map((c) => c.topic)).toEqual(['homeassistant/sensor/pi-garage_plc1/l1_voltage/config', 'homeassistant/sensor/pi-garage_plc1/l1_voltage_2/config']);
    expect(configs.map((c) => c.payload.name)).toEqual(['L1 voltage', 'L1 voltage']);
  });

  it('a component that cannot work is refused at load with the JSON path and the fix', () => {
    expect(errorsOf({ buses: [tcpBus], devices: [device([{ name: 'v', table: 'input', address: 0, homeAssistant: { component: 'switch' } }])] })).toEqual([
      expect.stringMatching(/bad\.json: devices\[0\]\.points\[0\]\.homeAssistant\.component: a switch needs a boolean/),
    ]);
    expect(errorsOf({ buses: [tcpBus], devices: [device([{ name: 'c', table: 'coil', address: 0, homeAssistant: { component: 'switch' } }])] })).toEqual([
      expect.stringMatching(/devices\[0\]\.points\[0\]\.homeAssistant\.component: a switch needs a writable point: add "writable": true, or use "binary_sensor"$/),
    ]);
    expect(errorsOf({ buses: [tcpBus], devices: [device([{ name: 'v', table: 'input', address: 0, homeAssistant: { component: 'lamp' } }])] })).toEqual([
      expect.stringMatching(/devices\[0\]\.points\[0\]\.homeAssistant\.component: expected one of sensor, binary_sensor, switch, number \(got "lamp"\)$/),
    ]);
    expect(errorsOf({ buses: [tcpBus], devices: [device([{ name: 'v', table: 'input', address: 0, homeAssistant: { devceClass: 'voltage' } }])] })).toEqual([
      expect.stringMatching(/devices\[0\]\.points\[0\]\.homeAssistant\.devceClass: unknown key \(did you mean "deviceClass"\?\)$/),
    ]);
    const lineErrors = errorsOf({
      buses: [{ id: 'ard', type: 'serial-line', path: '/dev/ttyACM0' }],
      devices: [{ id: 'gh', protocol: 'line', bus: 'ard', parser: { type: 'json' }, fields: { t: { homeAssistant: { component: 'number' } }, ok: { homeAssistant: { component: 'binary_sensor' } } } }],
    });
    expect(lineErrors).toEqual([
      expect.stringMatching(/devices\[0\]\.fields\.t\.homeAssistant\.component: a line field is read-only in Home Assistant: use "sensor" or "binary_sensor"/),
      expect.stringMatching(/devices\[0\]\.fields\.ok\.homeAssistant\.component: a binary_sensor needs a boolean/),
    ]);
  });
});

describe('the gateway as a device', () => {
  it('is announced with one sensor, under the identifier every device names as via_device', () => {
    const gateway = gatewayDiscoveryConfig({ prefix: 'homeassistant', gatewayId: 'barn.local' });
    expect(gateway.topic).toBe('homeassistant/sensor/barn_local/devices_online/config');
    expect(gateway.payload).toMatchObject({
      name: 'Devices online',
      unique_id: 'fieldgate:barn.local:devices_online',
      state_topic: 'homeassistant/sensor/barn_local/devices_online/state',
      state_class: 'measurement',
      device: { identifiers: ['fieldgate:barn.local'], name: 'fieldgate barn.local', manufacturer: 'fieldgate' },
    });
    const mapping = load(writeDemoMapping(path.join(dir, 'demo-gw'), 1502));
    const deviceConfig = buildDiscoveryConfigs(mapping, { prefix: 'homeassistant', gatewayId: 'barn.local' })[0];
    expect((deviceConfig.payload.device as { via_device: string }).via_device).toBe((gateway.payload.device as { identifiers: string[] }).identifiers[0]);
  });
});

describe('the range of a writable number', () => {
  it('is min/max when given, else what the register holds after scale and offset', () => {
    expect(numberRange({ type: 'int16', scale: 0.1, decimals: 1 })).toEqual({ min: -3276.8, max: 3276.7, step: 0.1 });
    expect(numberRange({ type: 'uint16' })).toEqual({ min: 0, max: 65535, step: 1 });
    expect(numberRange({ type: 'int16', scale: -2, offset: 10 })).toEqual({ min: -65524, max: 65546, step: 2 });
    expect(numberRange({ type: 'uint32', min: 5, max: 50 })).toEqual({ min: 5, max: 50, step: 1 });
    expect(numberRange({ type: 'float32', decimals: 2 })).toMatchObject({ step: 0.01 });
    expect(numberRange({ type: 'float32' }).step).toBe(0.001);
  });
});
