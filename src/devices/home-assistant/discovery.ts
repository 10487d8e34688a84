// Home Assistant MQTT discovery configs for a device mapping: one retained JSON message per point at
// <prefix>/<component>/<node_id>/<object_id>/config, describing the topics fieldgate already uses
// (value on <topic>, availability on <topicPrefix>/availability, commands on <topic>/set). Pure: no I/O.
import { VERSION } from '../../version.js';
import type { DeviceMapping, LineDevice } from '../mapping-schema.js';
import { lineDeviceTopicPrefix } from '../line/schema.js';
import type { ModbusDevice, ModbusPoint } from '../modbus/model.js';
import { defaultComponent, type PointKind } from './components.js';
import type { HomeAssistantComponent, HomeAssistantEntityOptions } from './schema.js';
import { numericSemantics } from './units.js';

export interface DiscoveryOptions {
  /** Home Assistant's discovery prefix (its default: "homeassistant"). */
  prefix: string;
  gatewayId: string;
}

export interface DiscoveryConfig {
  topic: string;
  /** The fieldgate device the entity belongs to. */
  deviceId: string;
  payload: Record<string, unknown>;
}

/** What fieldgate publishes: "true"/"false" for booleans (the `…/set` parser accepts the same words). */
export const boolPayloads = { on: 'true', off: 'false' } as const;
export const availabilityPayloads = { available: 'online', notAvailable: 'offline' } as const;

/** One entity before it becomes a config message. */
interface EntitySource {
  name: string;
  topic: string;
  kind: PointKind;
  unit?: string;
  decimals?: number;
  overrides?: HomeAssistantEntityOptions;
  /** For `number`: the range and step the device accepts. */
  range?: { min: number; max: number; step: number };
}

interface DeviceSource {
  id: string;
  name: string;
  manufacturer?: string;
  model?: string;
  topicPrefix: string;
  qos: 0 | 1 | 2;
  entities: EntitySource[];
}

/** Identifier of the gateway in Home Assistant's device registry (the `via_device` of every device). */
export function gatewayIdentifier(gatewayId: string): string {
  // ":" separates the parts of identifiers and unique ids: no gateway id, device id or object id
  // produces it, so "meter" + "l1_voltage" and "meter_l1" + "voltage" stay two entities.
  return `fieldgate:${gatewayId}`;
}

/** Where the gateway publishes how many of its devices are online (its own entity in Home Assistant). */
export function gatewayStateTopic(options: DiscoveryOptions): string {
  return `${options.prefix}/sensor/${safeId(options.gatewayId)}/devices_online/state`;
}

/**
 * The gateway itself as a Home Assistant device, with one sensor: how many of its devices are online.
 * Every device names it as `via_device`; announcing it gives that device a name instead of a blank entry.
 */
export function gatewayDiscoveryConfig(options: DiscoveryOptions): DiscoveryConfig {
  const node = safeId(options.gatewayId);
  return {
    topic: `${options.prefix}/sensor/${node}/devices_online/config`,
    deviceId: '',
    payload: {
      name: 'Devices online',
      unique_id: `${gatewayIdentifier(options.gatewayId)}:devices_online`,
      default_entity_id: `sensor.${entityIdSlug(`fieldgate_${node}_devices_online`)}`,
      state_topic: gatewayStateTopic(options),
      state_class: 'measurement',
      icon: 'mdi:lan-connect',
      device: { identifiers: [gatewayIdentifier(options.gatewayId)], name: `fieldgate ${options.gatewayId}`, manufacturer: 'fieldgate', model: 'MQTT edge gateway', sw_version: VERSION },
      origin: { name: 'fieldgate', sw_version: VERSION },
    },
  };
}

/** Every discovery config of the mapping's devices, except those announced with "announce": false. */
export function buildDiscoveryConfigs(mapping: Pick<DeviceMapping, 'modbusDevices' | 'lineDevices'>, options: DiscoveryOptions): DiscoveryConfig[] {
  const sources = [
    ...mapping.modbusDevices.filter((d) => d.announce !== false).map(modbusSource),
    ...mapping.lineDevices.filter((d) => d.homeAssistant?.announce !== false).map(lineSource),
  ];
  return sources.flatMap((device) => deviceConfigs(device, options));
}

function modbusSource(device: ModbusDevice): DeviceSource {
  return {
    id: device.id,
    name: device.name,
    manufacturer: device.manufacturer,
    model: device.model,
    topicPrefix: device.topicPrefix,
    qos: device.qos,
    entities: device.points.map((p) => ({
      name: p.name,
      topic: p.topic,
      kind: { writable: p.writable, bool: p.type === 'bool' || p.type === 'bit', text: p.type === 'string' },
      unit: p.unit,
      decimals: p.decimals,
      overrides: p.homeAssistant,
      range: p.writable ? numberRange(p) : undefined,
    })),
  };
}

function lineSource(device: LineDevice): DeviceSource {
  const prefix = lineDeviceTopicPrefix(device);
  return {
    id: device.id,
    name: device.name ?? device.id,
    manufacturer: device.manufacturer,
    model: device.model,
    topicPrefix: prefix,
    qos: device.qos,
    entities: Object.entries(device.fields).map(([key, field]) => {
      const suffix = field.topic ?? key;
      return {
        name: suffix,
        topic: `${prefix}/${suffix}`,
        kind: { writable: false, bool: field.type === 'boolean', text: field.type === 'string' },
        unit: field.unit,
        decimals: field.type === 'integer' ? 0 : field.decimals,
        overrides: field.homeAssistant,
      };
    }),
  };
}

function deviceConfigs(device: DeviceSource, options: DiscoveryOptions): DiscoveryConfig[] {
  const nodeId = `${safeId(options.gatewayId)}_${device.id}`;
  const deviceIdentifier = `${gatewayIdentifier(options.gatewayId)}:${device.id}`;
  const deviceBlock: Record<string, unknown> = {
    identifiers: [deviceIdentifier],
    name: device.name,
    ...(device.manufacturer !== undefined ? { manufacturer: device.manufacturer } : {}),
    ...(device.model !== undefined ? { model: device.model } : {}),
    via_device: gatewayIdentifier(options.gatewayId),
  };
  const objectIds = new Set<string>();
  const configs: DiscoveryConfig[] = [];
  for (const entity of device.entities) {
    if (entity.overrides?.announce === false) continue;
    const objectId = uniqueObjectId(safeId(entity.name), objectIds);
    const component = entity.overrides?.component ?? defaultComponent(entity.kind);
    const payload: Record<string, unknown> = {
      name: entity.overrides?.name ?? humanName(entity.name),
      unique_id: `${deviceIdentifier}:${objectId}`,
      // Home Assistant 2025.10 replaced "object_id" with "default_entity_id" (the entity id it suggests).
      default_entity_id: `${component}.${entityIdSlug(`${device.id}_${objectId}`)}`,
      state_topic: entity.topic,
      availability_topic: `${device.topicPrefix}/availability`,
      payload_available: availabilityPayloads.available,
      payload_not_available: availabilityPayloads.notAvailable,
      ...(device.qos > 0 ? { qos: device.qos } : {}),
      ...componentFields(component, entity),
      device: deviceBlock,
      origin: { name: 'fieldgate', sw_version: VERSION },
    };
    configs.push({ topic: `${options.prefix}/${component}/${nodeId}/${objectId}/config`, deviceId: device.id, payload });
  }
  return configs;
}

function componentFields(component: HomeAssistantComponent, entity: EntitySource): Record<string, unknown> {
  const overrides = entity.overrides;
  const deviceClass = (inferred: string | undefined) => {
    const chosen = overrides?.deviceClass ?? inferred;
    return chosen === undefined || chosen === 'none' ? {} : { device_class: chosen };
  };
  switch (component) {
    case 'binary_sensor':
      return { payload_on: boolPayloads.on, payload_off: boolPayloads.off, ...deviceClass(undefined) };
    case 'switch':
      return { command_topic: `${entity.topic}/set`, payload_on: boolPayloads.on, payload_off: boolPayloads.off, ...deviceClass(undefined) };
    case 'number': {
      // A written value is in the device's own unit; an inferred device class would let Home Assistant
      // convert it (°C → °F), which is wrong for offsets such as a temperature correction.
      const range = entity.range ?? { min: -1e15, max: 1e15, step: 0.001 };
      const unit = entity.unit?.trim() || undefined;
      return {
        command_topic: `${entity.topic}/set`,
        min: range.min,
        max: range.max,
        step: range.step,
        mode: 'box',
        ...(unit !== undefined ? { unit_of_measurement: unit } : {}),
        ...deviceClass(undefined),
      };
    }
    case 'sensor': {
      if (entity.kind.text || entity.kind.bool) return { ...deviceClass(undefined), ...stateClass(undefined) };
      const semantics = numericSemantics(entity.unit, entity.name);
      const explicitClass = overrides?.deviceClass !== undefined && overrides.deviceClass !== 'none';
      // An explicit device class keeps the unit as written; the inferred one may respell it ("%RH" → "%").
      const unit = explicitClass ? entity.unit?.trim() || undefined : semantics.unit;
      return {
        ...(unit !== undefined ? { unit_of_measurement: unit } : {}),
        ...deviceClass(semantics.deviceClass),
        ...stateClass(semantics.stateClass),
        ...(entity.decimals !== undefined ? { suggested_display_precision: entity.decimals } : {}),
      };
    }
  }
  function stateClass(inferred: string | undefined) {
    const chosen = overrides?.stateClass ?? inferred;
    return chosen === undefined || chosen === 'none' ? {} : { state_class: chosen };
  }
}

const numericRanges: Record<string, [number, number]> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [-9223372036854775808, 9223372036854775807],
  uint64: [0, 18446744073709551615],
  float32: [-3.4028234663852886e38, 3.4028234663852886e38],
  float64: [-Number.MAX_VALUE, Number.MAX_VALUE],
};

/** The range a writable number accepts: its min/max, else what its register type can hold after scaling. */
export function numberRange(p: Pick<ModbusPoint, 'type' | 'scale' | 'offset' | 'decimals' | 'min' | 'max'>): { min: number; max: number; step: number } {
  const [rawMin, rawMax] = numericRanges[p.type] ?? [0, 1];
  // Rounded to 12 significant digits: -32768 × 0.1 is -3276.8000000000002 in binary floating point.
  const a = Number((rawMin * (p.scale ?? 1) + (p.offset ?? 0)).toPrecision(12));
  const b = Number((rawMax * (p.scale ?? 1) + (p.offset ?? 0)).toPrecision(12));
  const integer = p.type !== 'float32' && p.type !== 'float64';
  let step: number;
  if (p.decimals !== undefined) step = 10 ** -p.decimals;
  else if (integer) step = Math.abs(p.scale ?? 1);
  else step = 0.001;
  // Home Assistant's smallest step is 0.001.
  step = Math.max(0.001, Number(step.toPrecision(12)));
  return { min: p.min ?? Math.min(a, b), max: p.max ?? Math.max(a, b), step };
}

/** "import_energy" → "Import energy", "l1/voltage" → "L1 voltage". */
export function humanName(pointName: string): string {
  const words = pointName.replace(/[_\-/.]+/g, ' ').trim();
  return words.length === 0 ? pointName : words[0].toUpperCase() + words.slice(1);
}

/** A topic level Home Assistant accepts as node_id or object_id: [a-zA-Z0-9_-]. */
function safeId(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '_');
}

function uniqueObjectId(base: string, taken: Set<string>): string {
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base}_${n}`;
  taken.add(candidate);
  return candidate;
}

/** An entity id's object part: lower case letters, digits and single underscores. */
function entityIdSlug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'fieldgate';
}
