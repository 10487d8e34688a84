// Device-mapping files (devices/*.json): the schema, its JSON Schema for editors, and a loader that
// reports every problem at once as `file: json.path: what was expected (got what)`.
import { describeJsonError, parseJsonText } from '../config/json-text.js';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { lineBusSchema, lineDeviceSchema, lineDeviceProfileSchema, lineDeviceTopicPrefix, lineMappingIssues } from './line/schema.js';
import { registerCount } from './modbus/codec.js';
import { defaultMaxGap } from './modbus/read-cost.js';
import { isBitTable, type ModbusDevice, type ModbusPoint } from './modbus/model.js';
import {
  modbusBusSchemas,
  modbusBusTypes,
  modbusDeviceSchema,
  modbusPointSchema,
  publishSchema,
  type ModbusBus,
  type ModbusDeviceInput,
  type ModbusPointInput,
  type Table,
} from './modbus/schema.js';
import { formatMappingError, issuesToErrors, joinPath, type MappingError } from './mapping-errors.js';
import { homeAssistantComponentIssue } from './home-assistant/components.js';
import { homeAssistantDeviceSchema, homeAssistantEntitySchema } from './home-assistant/schema.js';

export { formatMappingError, type MappingError };

export type LineBus = z.infer<typeof lineBusSchema>;
export type LineDevice = z.infer<typeof lineDeviceSchema>;
export type Bus = ModbusBus | LineBus;

export const busSchema = z.discriminatedUnion('type', [...modbusBusSchemas, lineBusSchema]);

/** A profile reference: `{ "profile": "eastron-sdm120", "id": "meter1", "bus": "rs485", "unitId": 2 }` plus overrides. */
export const includeSchema = z.looseObject({
  profile: z.string().min(1).describe('Profile name: <name>.json next to this file or among the shipped profiles; every other key overrides the profile (id, bus and unitId are required); "points" (and a line profile\'s "fields", "commands") merge by name: change a profile point by giving its name and the keys to change, add one with a new name'),
});

const profileTemplateSchema = z.union([modbusDeviceSchema.partial({ id: true, bus: true, unitId: true }), lineDeviceProfileSchema]);

export const deviceMappingSchema = z.strictObject({
  $schema: z.string().optional(),
  description: z.string().optional(),
  _comment: z.string().optional(),
  include: z.array(includeSchema).optional(),
  buses: z.array(busSchema).default([]),
  devices: z.array(z.union([modbusDeviceSchema, lineDeviceSchema])).default([]),
  profile: profileTemplateSchema.optional().describe('Makes this file a profile: a device template other mappings include'),
});

export type DeviceMappingFile = z.infer<typeof deviceMappingSchema>;

/** JSON Schema (draft 2020-12) of a device-mapping file, for `fieldgate schema` and editors. */
export function deviceMappingJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(deviceMappingSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export interface DeviceMapping {
  files: string[];
  buses: Bus[];
  modbusDevices: ModbusDevice[];
  lineDevices: LineDevice[];
}

export type LoadResult = { ok: true; mapping: DeviceMapping } | { ok: false; errors: string[]; details: MappingError[] };

export interface LoadOptions {
  /** Where `include` looks for profiles after the including file's own directory. Default: the shipped devices/. */
  profileDirs?: string[];
}

export const shippedProfileDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../devices');

let knownKeysCache: Set<string> | undefined;
function knownKeys(): Set<string> {
  if (knownKeysCache) return knownKeysCache;
  const keys = new Set<string>();
  for (const s of [deviceMappingSchema, modbusDeviceSchema, modbusPointSchema, publishSchema, homeAssistantDeviceSchema, homeAssistantEntitySchema, ...modbusBusSchemas]) {
    for (const k of Object.keys(s.shape)) keys.add(k);
  }
  for (const s of [lineBusSchema, lineDeviceSchema] as unknown[]) {
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (shape) for (const k of Object.keys(shape)) keys.add(k);
  }
  knownKeysCache = keys;
  return keys;
}

/** Loads one mapping file. */
export function loadDeviceMapping(file: string, options: LoadOptions = {}): LoadResult {
  return loadDeviceMappings([file], options);
}

/** Loads several mapping files as one gateway configuration (ids, buses and topics must be unique across them). */
export function loadDeviceMappings(files: string[], options: LoadOptions = {}): LoadResult {
  const errors: MappingError[] = [];
  const buses: Array<{ bus: Bus; file: string; path: string }> = [];
  const modbus: ModbusEntry[] = [];
  const line: Array<{ device: LineDevice; file: string; path: string }> = [];

  for (const file of files) {
    const raw = readJson(file, errors);
    if (raw === undefined) continue;
    collectFile(file, raw, options, errors, buses, modbus, line);
  }

  const busById = new Map<string, { bus: Bus; file: string; path: string }>();
  for (const b of buses) {
    const first = busById.get(b.bus.id);
    if (first) errors.push({ file: b.file, path: `${b.path}.id`, message: `duplicate bus id "${b.bus.id}" (first defined in ${first.file} ${first.path})` });
    else busById.set(b.bus.id, b);
  }

  const deviceIds = new Map<string, string>();
  const checkDeviceId = (id: string, file: string, at: string) => {
    const first = deviceIds.get(id);
    if (first) errors.push({ file, path: `${at}.id`, message: `duplicate device id "${id}" (first defined at ${first})` });
    else deviceIds.set(id, `${file} ${at}`);
  };

  const busNames = () => [...busById.keys()].join(', ') || 'none defined';
  const resolved: ModbusDevice[] = [];
  const checked: Array<{ device: ModbusDevice; entry: ModbusEntry; fileIndexes: number[] }> = [];
  const unitIds = new Map<string, string>();
  for (const d of modbus) {
    checkDeviceId(d.input.id, d.file, d.path);
    const entry = busById.get(d.input.bus);
    if (!entry) {
      errors.push({ file: d.file, path: `${d.path}.bus`, message: `unknown bus "${d.input.bus}" (buses: ${busNames()})` });
      continue;
    }
    if (!(modbusBusTypes as readonly string[]).includes(entry.bus.type)) {
      errors.push({ file: d.file, path: `${d.path}.bus`, message: `bus "${entry.bus.id}" is ${entry.bus.type}: a Modbus device needs a modbus-rtu, modbus-tcp or modbus-rtu-over-tcp bus` });
      continue;
    }
    const bus = entry.bus as ModbusBus;
    if (bus.type !== 'modbus-tcp' && (d.input.unitId < 1 || d.input.unitId > 247)) {
      errors.push({ file: d.file, path: `${d.path}.unitId`, message: `expected 1…247 on an RTU bus (got ${d.input.unitId})` });
    }
    const unitKey = `${bus.id}/${d.input.unitId}`;
    const firstUnit = unitIds.get(unitKey);
    if (firstUnit) errors.push({ file: d.file, path: `${d.path}.unitId`, message: `unit id ${d.input.unitId} on bus "${bus.id}" is already used by ${firstUnit}` });
    else unitIds.set(unitKey, `${d.file} ${d.path}`);
    // A device with errors is still checked against the others (topics), from the points that resolved.
    const { device, ok, fileIndexes } = resolveModbusDevice(d, bus, errors);
    checked.push({ device, entry: d, fileIndexes });
    if (ok && d.complete) resolved.push(device);
  }

  for (const d of line) checkDeviceId(d.device.id, d.file, d.path);
  for (const d of line) {
    const issues = lineMappingIssues([...busById.values()].map((b) => b.bus), [{ device: d.device, path: [] }]);
    for (const issue of issues) errors.push({ file: d.file, path: joinPath(d.path, issue.path), message: issue.message });
  }

  checkTopics(checked, line, errors);

  if (errors.length > 0) return { ok: false, errors: errors.map(formatMappingError), details: errors };
  return { ok: true, mapping: { files, buses: buses.map((b) => b.bus), modbusDevices: resolved, lineDevices: line.map((l) => l.device) } };
}

function readJson(file: string, errors: MappingError[]): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    errors.push({ file, path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
    return undefined;
  }
  const parsed = parseJsonText(text);
  if (parsed.ok) return parsed.value;
  errors.push({ file, path: '', message: describeJsonError(parsed) });
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function collectFile(
  file: string,
  raw: unknown,
  options: LoadOptions,
  errors: MappingError[],
  buses: Array<{ bus: Bus; file: string; path: string }>,
  modbus: ModbusEntry[],
  line: Array<{ device: LineDevice; file: string; path: string }>,
): void {
  if (!isObject(raw)) {
    errors.push({ file, path: '', message: `expected a JSON object with "buses" and "devices" (got ${Array.isArray(raw) ? 'an array' : typeof raw})` });
    return;
  }
  // Check the top level key by key so that one bad key does not hide the errors further down.
  const topLevel: Record<string, z.ZodType> = {
    $schema: z.string(),
    description: z.string(),
    _comment: z.string(),
    include: z.array(z.unknown()),
    buses: z.array(z.unknown()),
    devices: z.array(z.unknown()),
    profile: z.unknown(),
  };
  const valid: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const schema = topLevel[key];
    if (!schema) {
      errors.push(...issuesToErrors(file, '', [{ code: 'unrecognized_keys', keys: [key], path: [], message: '', input: raw }], knownKeys));
      continue;
    }
    const parsed = schema.safeParse(value, { reportInput: true });
    if (parsed.success) valid[key] = parsed.data;
    else errors.push(...issuesToErrors(file, key, parsed.error.issues, knownKeys));
  }
  const include = (valid.include ?? []) as unknown[];
  const rawBuses = (valid.buses ?? []) as unknown[];
  const rawDevices = (valid.devices ?? []) as unknown[];
  const profile = valid.profile;

  if (profile !== undefined) {
    const parsed = profileTemplateSchema.safeParse(profile, { reportInput: true });
    if (!parsed.success) errors.push(...issuesToErrors(file, 'profile', parsed.error.issues, knownKeys));
  }

  rawBuses.forEach((b, i) => {
    const at = `buses[${i}]`;
    const type = isObject(b) ? b.type : undefined;
    const schema = [...modbusBusSchemas, lineBusSchema].find((s) => (s.shape.type as z.ZodLiteral<string>).value === type);
    if (!schema) {
      const types = [...modbusBusTypes, 'serial-line'].join(', ');
      errors.push({ file, path: isObject(b) ? `${at}.type` : at, message: isObject(b) ? `expected one of ${types} (got ${type === undefined ? 'nothing' : JSON.stringify(type)})` : 'expected a bus object' });
      return;
    }
    const parsed = (schema as z.ZodType).safeParse(b, { reportInput: true });
    if (!parsed.success) errors.push(...issuesToErrors(file, at, parsed.error.issues, knownKeys));
    else buses.push({ bus: parsed.data as Bus, file, path: at });
  });

  const addDevice = (d: unknown, at: string, errorFile: string) => {
    if (!isObject(d)) {
      errors.push({ file: errorFile, path: at, message: 'expected a device object' });
      return;
    }
    if (isLineDevice(d)) {
      const parsed = lineDeviceSchema.safeParse(d, { reportInput: true });
      if (!parsed.success) errors.push(...issuesToErrors(errorFile, at, parsed.error.issues, knownKeys));
      else line.push({ device: parsed.data, file: errorFile, path: at });
      return;
    }
    // Points are checked one by one so that the checks across points (overlaps, topics) still run
    // on the good ones when a few are broken.
    const head = modbusDeviceHeadSchema.safeParse(d, { reportInput: true });
    if (!head.success) errors.push(...issuesToErrors(errorFile, at, head.error.issues, knownKeys));
    const points: ModbusPointInput[] = [];
    const pointIndexes: number[] = [];
    let complete = head.success;
    (Array.isArray(d.points) ? d.points : []).forEach((p, i) => {
      const parsed = modbusPointSchema.safeParse(p, { reportInput: true });
      if (parsed.success) {
        points.push(parsed.data);
        pointIndexes.push(i);
      } else {
        complete = false;
        errors.push(...issuesToErrors(errorFile, `${at}.points[${i}]`, parsed.error.issues, knownKeys));
      }
    });
    if (head.success) modbus.push({ input: { ...head.data, points }, file: errorFile, path: at, pointIndexes, complete });
  };

  include.forEach((inc, i) => {
    const at = `include[${i}]`;
    const parsed = includeSchema.safeParse(inc, { reportInput: true });
    if (!parsed.success) {
      errors.push(...issuesToErrors(file, at, parsed.error.issues, knownKeys));
      return;
    }
    const { profile: name, ...overrides } = parsed.data;
    const template = findProfile(file, name, options, errors, at);
    if (!template) return;
    addDevice(mergeProfile(template, overrides), at, file);
  });

  rawDevices.forEach((d, i) => addDevice(d, `devices[${i}]`, file));
}

/**
 * A profile with an include's overrides. Keys replace the profile's, except "points" (Modbus),
 * "fields" and "commands" (line devices), which merge by name: an included point with the name of a
 * profile point changes only the keys it gives, one with a new name is added. The include's own
 * points come first, so an error in one names its place in the include (`include[0].points[1]`).
 */
export function mergeProfile(template: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...template, ...overrides };
  if (Array.isArray(template.points) && Array.isArray(overrides.points)) {
    const byName = new Map<unknown, Record<string, unknown>>();
    for (const p of template.points) if (isObject(p)) byName.set(p.name, p);
    const given = new Set(overrides.points.filter(isObject).map((p) => p.name));
    merged.points = [
      ...overrides.points.map((p) => (isObject(p) && byName.has(p.name) ? { ...byName.get(p.name), ...p } : p)),
      ...template.points.filter((p) => !isObject(p) || !given.has(p.name)),
    ];
  }
  for (const key of ['fields', 'commands']) {
    if (isObject(template[key]) && isObject(overrides[key])) {
      const base = template[key] as Record<string, unknown>;
      const extra = overrides[key] as Record<string, unknown>;
      merged[key] = { ...base, ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, isObject(v) && isObject(base[k]) ? { ...(base[k] as object), ...v } : v])) };
    }
  }
  return merged;
}

interface ModbusEntry {
  input: ModbusDeviceInput;
  file: string;
  path: string;
  /** Index in the file's points array of each entry of input.points (broken points are left out). */
  pointIndexes: number[];
  /** False when some point failed its schema: checked, but never run. */
  complete: boolean;
}

const modbusDeviceHeadSchema = modbusDeviceSchema.extend({ points: z.array(z.unknown()).min(1) });

function isLineDevice(d: Record<string, unknown>): boolean {
  return 'fields' in d || d.protocol === 'line';
}

function findProfile(file: string, name: string, options: LoadOptions, errors: MappingError[], at: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.includes('..')) {
    errors.push({ file, path: `${at}.profile`, message: `expected a profile name like "eastron-sdm120" (got ${JSON.stringify(name)})` });
    return undefined;
  }
  const dirs = [path.dirname(file), ...(options.profileDirs ?? [shippedProfileDir])];
  for (const dir of dirs) {
    const candidate = path.join(dir, name.endsWith('.json') ? name : `${name}.json`);
    if (!existsSync(candidate)) continue;
    const innerErrors: MappingError[] = [];
    const raw = readJson(candidate, innerErrors);
    if (raw === undefined) {
      errors.push(...innerErrors);
      return undefined;
    }
    if (!isObject(raw) || !isObject(raw.profile)) {
      errors.push({ file, path: `${at}.profile`, message: `${candidate} is not a profile (it has no "profile" object)` });
      return undefined;
    }
    const { description: _d, _comment: _c, ...template } = raw.profile;
    return template;
  }
  errors.push({ file, path: `${at}.profile`, message: `no profile "${name}" (looked for ${name}.json in ${dirs.join(', ')})` });
  return undefined;
}

/** Table and 0-based address of a 5- or 6-digit Modicon reference such as 40001 or 300010. */
export function parseModiconAddress(reference: number): { table: Table; address: number } | undefined {
  const six: Array<[number, Table]> = [[400001, 'holding'], [300001, 'input'], [100001, 'discrete-input']];
  for (const [base, table] of six) if (reference >= base && reference <= base + 65535) return { table, address: reference - base };
  const five: Array<[number, Table]> = [[40001, 'holding'], [30001, 'input'], [10001, 'discrete-input'], [1, 'coil']];
  for (const [base, table] of five) if (reference >= base && reference <= base + 9998) return { table, address: reference - base };
  return undefined;
}

/** The device from the points that resolved; `fileIndexes` has each one's index in the file (for error paths). */
function resolveModbusDevice(entry: ModbusEntry, bus: ModbusBus, errors: MappingError[]): { device: ModbusDevice; ok: boolean; fileIndexes: number[] } {
  const { input: d, file, path: at, pointIndexes } = entry;
  const before = errors.length;
  const points: ModbusPoint[] = [];
  /** Index in the file's points array of each resolved point. */
  const fileIndexes: number[] = [];
  const prefix = d.topicPrefix ?? `fieldgate/${d.id}`;
  d.points.forEach((p, i) => {
    const point = resolvePoint(d, p, prefix, file, `${at}.points[${pointIndexes[i]}]`, errors);
    if (point) {
      points.push(point);
      fileIndexes.push(pointIndexes[i]!);
    }
  });
  checkOverlaps(points, fileIndexes, file, at, errors);
  const device: ModbusDevice = {
    id: d.id,
    name: d.name ?? d.id,
    manufacturer: d.manufacturer,
    model: d.model,
    announce: d.homeAssistant?.announce ?? true,
    bus,
    unitId: d.unitId,
    pollIntervalMs: d.pollIntervalMs,
    timeoutMs: d.timeoutMs,
    retries: d.retries,
    maxRegistersPerRequest: d.maxRegistersPerRequest ?? 125,
    maxBitsPerRequest: d.maxBitsPerRequest ?? 2000,
    maxGap: d.maxGap ?? defaultMaxGap(bus, { maxRegistersPerRequest: d.maxRegistersPerRequest ?? 125, interRequestDelayMs: d.interRequestDelayMs ?? bus.interRequestDelayMs }),
    interRequestDelayMs: d.interRequestDelayMs ?? bus.interRequestDelayMs,
    offlinePollIntervalMs: d.offlinePollIntervalMs,
    topicPrefix: prefix,
    writeFunctions: d.writeFunctions,
    qos: d.qos,
    retain: d.retain,
    publish: { onChange: d.publish.onChange, maxSilenceMs: d.publish.maxSilenceMs, state: d.publish.state },
    points,
  };
  return { device, ok: errors.length === before, fileIndexes };
}

function resolvePoint(d: ModbusDeviceInput, p: ModbusPointInput, prefix: string, file: string, at: string, errors: MappingError[]): ModbusPoint | undefined {
  const fail = (key: string, message: string) => {
    errors.push({ file, path: key ? `${at}.${key}` : at, message });
  };
  const before = errors.length;
  let table = p.table;
  let address = p.address;
  if (d.addressBase === 'modicon') {
    const parsed = parseModiconAddress(p.address);
    if (!parsed) fail('address', `expected a data-sheet reference like 40001, 30001, 10001, 00001 or 400001 (got ${p.address})`);
    else {
      if (table && table !== parsed.table) fail('table', `address ${p.address} is a ${parsed.table} reference but table says ${table}`);
      table = parsed.table;
      address = parsed.address;
    }
  } else if (d.addressBase === 1) {
    if (p.address < 1) fail('address', `addressBase is 1: addresses start at 1 (got ${p.address})`);
    address = p.address - 1;
  }
  if (!table) {
    fail('table', 'missing: expected one of coil, discrete-input, holding, input');
    return undefined;
  }
  const bitTable = isBitTable(table);
  const type = p.type ?? (bitTable ? 'bool' : 'uint16');
  if (bitTable && type !== 'bool') fail('type', `a ${table} holds one bit: expected bool (got "${type}")`);
  if (type === 'bit' && p.bit === undefined) fail('bit', 'missing: type "bit" needs "bit" (0 = least significant)');
  if (p.bit !== undefined && type !== 'bit') fail('bit', `only type "bit" takes "bit" (type is "${type}")`);
  if (type === 'string' && p.length === undefined) fail('length', 'missing: type "string" needs "length" (number of registers)');
  if (p.length !== undefined && type !== 'string') fail('length', `only type "string" takes "length" (type is "${type}")`);
  if (p.writable && (table === 'input' || table === 'discrete-input')) fail('writable', `${table} registers are read-only in Modbus`);
  if (p.min !== undefined && p.max !== undefined && p.min > p.max) fail('min', `min ${p.min} is above max ${p.max}`);
  if (p.scale === 0) fail('scale', 'must not be 0');
  const count = bitTable ? 1 : registerCount(type, p.length ?? 1);
  const cap = d.maxRegistersPerRequest ?? 125;
  if (!bitTable && count > cap) fail(type === 'string' ? 'length' : 'type', `${type} needs ${count} registers, more than one read may take (maxRegistersPerRequest ${cap})`);
  if (address > 65535) fail('address', `expected at most 65535 (got ${address}${address !== p.address ? ` from ${p.address}` : ''})`);
  else if (address + count - 1 > 65535) fail('address', `${type} at ${address} needs ${count} registers and runs past 65535`);
  if (p.name === 'availability' || /(^|\/)(set|set\/result|error)$/.test(p.name)) fail('name', `"${p.name}" collides with the topics fieldgate uses for availability and commands`);
  const componentIssue = homeAssistantComponentIssue(p.homeAssistant?.component, { writable: p.writable, bool: type === 'bool' || type === 'bit', text: type === 'string' });
  if (componentIssue) fail('homeAssistant.component', componentIssue);
  if (errors.length > before) return undefined;
  return {
    name: p.name,
    topic: `${prefix}/${p.name}`,
    table,
    address,
    type,
    count,
    bit: p.bit,
    byteOrder: p.byteOrder ?? d.byteOrder,
    scale: p.scale,
    offset: p.offset,
    decimals: p.decimals,
    unit: p.unit,
    pollIntervalMs: p.pollIntervalMs ?? d.pollIntervalMs,
    deadband: p.deadband ?? d.publish.deadband,
    writable: p.writable,
    min: p.min,
    max: p.max,
    homeAssistant: p.homeAssistant,
  };
}

function checkOverlaps(points: ModbusPoint[], fileIndexes: number[], file: string, at: string, errors: MappingError[]): void {
  const indexOf = new Map(points.map((p, i) => [p, fileIndexes[i]]));
  const byTable = new Map<Table, ModbusPoint[]>();
  for (const p of points) byTable.set(p.table, [...(byTable.get(p.table) ?? []), p]);
  for (const [table, list] of byTable) {
    const sorted = [...list].sort((a, b) => a.address - b.address);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length && sorted[j].address <= sorted[i].address + sorted[i].count - 1; j++) {
        const a = sorted[i];
        const b = sorted[j];
        if (a.type === 'bit' && b.type === 'bit' && a.bit !== b.bit) continue;
        const later = (indexOf.get(a) ?? 0) > (indexOf.get(b) ?? 0) ? a : b;
        const earlier = later === a ? b : a;
        errors.push({
          file,
          path: `${at}.points[${indexOf.get(later)}]`,
          message: `"${later.name}" (${table} ${later.address}${later.count > 1 ? `–${later.address + later.count - 1}` : ''}) overlaps "${earlier.name}" (${table} ${earlier.address}${earlier.count > 1 ? `–${earlier.address + earlier.count - 1}` : ''})`,
        });
      }
    }
  }
}

function checkTopics(devices: Array<{ device: ModbusDevice; entry: ModbusEntry; fileIndexes: number[] }>, line: Array<{ device: LineDevice; file: string; path: string }>, errors: MappingError[]): void {
  const seen = new Map<string, string>();
  const claim = (topic: string, file: string, at: string) => {
    const first = seen.get(topic);
    if (first) errors.push({ file, path: at, message: `duplicate topic "${topic}" (also used by ${first})` });
    else seen.set(topic, `${file} ${at}`);
  };
  for (const { device: d, entry, fileIndexes } of devices) {
    claim(`${d.topicPrefix}/availability`, entry.file, joinPath(entry.path, ['topicPrefix']));
    d.points.forEach((p, i) => claim(p.topic, entry.file, joinPath(entry.path, ['points', fileIndexes[i]!, 'name'])));
  }
  for (const { device, file, path: at } of line) {
    const prefix = lineDeviceTopicPrefix(device);
    claim(`${prefix}/availability`, file, joinPath(at, ['topicPrefix']));
    for (const [name, field] of Object.entries(device.fields)) claim(`${prefix}/${field.topic ?? name}`, file, joinPath(at, ['fields', name]));
  }
}
