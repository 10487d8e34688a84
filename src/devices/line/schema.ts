// zod schemas for line-based serial buses and devices (GPS receivers, Arduino sketches, scales, sensors
// that print text lines) as a user writes them in devices/*.json.
import { z } from 'zod';
import { closestKey } from '../mapping-errors.js';
import { nmeaFieldNames, isNmeaRawFieldName } from './nmea.js';
import { homeAssistantComponentIssue } from '../home-assistant/components.js';
import { deviceManufacturer, deviceModel, homeAssistantDeviceOption, homeAssistantEntityOption } from '../home-assistant/schema.js';

const note = { description: z.string().optional(), _comment: z.string().optional() };

const topicSuffix = z
  .string()
  .min(1)
  .regex(/^[^#+\u0000]+$/, 'no "+", "#" or NUL (it becomes part of a topic)')
  .refine((s) => !s.startsWith('/') && !s.endsWith('/') && !s.includes('//'), 'no leading, trailing or double "/"');

function compiles(pattern: string, flags = ''): boolean {
  try {
    new RegExp(pattern, flags);
    return true;
  } catch {
    return false;
  }
}

const regexFlags = z.string().regex(/^[imsu]*$/, 'only the flags i, m, s and u').default('');

export const delimiterFramingSchema = z.strictObject({
  type: z.literal('delimiter'),
  ...note,
  delimiter: z.string().min(1).default('\n').describe('Ends each line; "\\n" also accepts "\\r\\n"'),
});

export const fixedLengthFramingSchema = z.strictObject({
  type: z.literal('fixed-length'),
  ...note,
  length: z.number().int().min(1).max(65_536).describe('Every frame is exactly this many bytes'),
});

export const regexFramingSchema = z.strictObject({
  type: z.literal('regex'),
  ...note,
  pattern: z.string().min(1).refine((p) => compiles(p), 'not a valid JavaScript regular expression').describe('Each match is one frame (or its named group "frame"); bytes before a match are dropped. End the pattern with a terminator so it cannot match a partial frame.'),
  flags: regexFlags,
});

export const lineFramingSchema = z.discriminatedUnion('type', [delimiterFramingSchema, fixedLengthFramingSchema, regexFramingSchema]);

export const lineBusSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "-" or "."'),
  type: z.literal('serial-line'),
  ...note,
  path: z.string().min(1).describe('Serial device; prefer /dev/serial/by-id/… which survives re-plugging'),
  baudRate: z.number().int().min(50).max(4_000_000).default(9600),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).default('none'),
  dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1),
  encoding: z.enum(['utf8', 'latin1', 'ascii']).default('utf8').describe('How bytes become text and commands become bytes; "latin1" for devices using an 8-bit code page'),
  framing: lineFramingSchema.prefault({ type: 'delimiter' }),
  trimWhitespace: z.boolean().default(true).describe('Strip spaces, "\\r" and NULs around each frame'),
  maxFrameLength: z.number().int().min(1).max(65_536).default(1024).describe('Longer frames are dropped and counted, so a device that never sends the delimiter cannot grow memory'),
  dtr: z.boolean().optional().describe('Set DTR after opening (some boards reset or power their sensor from it)'),
  rts: z.boolean().optional(),
  reconnectInitialDelayMs: z.number().int().min(10).max(60_000).default(500),
  reconnectMaxDelayMs: z.number().int().min(10).max(600_000).default(15_000),
});

export const regexParserSchema = z.strictObject({
  type: z.literal('regex'),
  ...note,
  pattern: z
    .string()
    .min(1)
    .refine((p) => compiles(p), 'not a valid JavaScript regular expression')
    .refine((p) => !compiles(p) || namedGroups(p).length > 0, 'needs at least one named group, e.g. "T=(?<temperature>-?[0-9.]+)"'),
  flags: regexFlags,
});

export const jsonParserSchema = z.strictObject({
  type: z.literal('json'),
  ...note,
});

export const keyValueParserSchema = z.strictObject({
  type: z.literal('key-value'),
  ...note,
  pairSeparator: z.string().min(1).optional().describe('Between pairs; default: any run of spaces, tabs, "," or ";"'),
  keyValueSeparator: z.string().min(1).default('=').describe('Between a key and its value, e.g. "=" or ":"'),
});

export const nmeaParserSchema = z.strictObject({
  type: z.literal('nmea0183'),
  ...note,
  requireChecksum: z.boolean().default(true).describe('Drop sentences without a "*hh" checksum'),
});

export const lineParserSchema = z.discriminatedUnion('type', [regexParserSchema, jsonParserSchema, keyValueParserSchema, nmeaParserSchema]);

export const fieldValueTypes = ['number', 'integer', 'string', 'boolean'] as const;
export type FieldValueType = (typeof fieldValueTypes)[number];

export const lineFieldSchema = z.strictObject({
  ...note,
  topic: topicSuffix.optional().describe('Published on <topicPrefix>/<topic>; default: the field name'),
  type: z.enum(fieldValueTypes).default('number'),
  scale: z.number().default(1).describe('value = raw × scale + offset'),
  offset: z.number().default(0),
  decimals: z.number().int().min(0).max(15).optional(),
  unit: z.string().optional().describe('Sent as the MQTT 5 user property "unit"'),
  homeAssistant: homeAssistantEntityOption,
});

export const pollSchema = z.strictObject({
  ...note,
  command: z.string().min(1).describe('Written to the port every intervalMs, e.g. "READ\\r\\n"'),
  intervalMs: z.number().int().min(10).max(86_400_000),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000).describe('How long to wait for a reply the parser accepts'),
  offlineAfterMissedReplies: z.number().int().min(1).max(1000).default(3),
  offlinePollIntervalMs: z.number().int().min(100).max(86_400_000).default(10_000).describe('How often a device that stopped answering is probed, so it does not occupy a shared port'),
});

export const setCommandSchema = z.strictObject({
  ...note,
  template: z.string().min(1).describe('Written to the port with "{value}" replaced, e.g. "SET {value}\\r\\n"; "{{" and "}}" are literal braces'),
  type: z.enum(fieldValueTypes).default('number'),
  min: z.number().optional(),
  max: z.number().optional(),
  decimals: z.number().int().min(0).max(15).optional().describe('Digits after the point written for numbers'),
  trueText: z.string().default('1').describe('Written for boolean true'),
  falseText: z.string().default('0'),
  maxLength: z.number().int().min(0).max(4096).default(64).describe('For strings'),
  replyPattern: z.string().refine((p) => compiles(p), 'not a valid JavaScript regular expression').optional().describe('Wait for a frame matching this after writing; the command fails if none arrives'),
  replyTimeoutMs: z.number().int().min(10).max(60_000).default(1000),
});

const lineDeviceObject = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" or "-"'),
  protocol: z.literal('line'),
  name: z.string().optional(),
  ...note,
  manufacturer: deviceManufacturer,
  model: deviceModel,
  bus: z.string().min(1).describe('Id of a "serial-line" bus'),
  topicPrefix: topicSuffix.optional().describe('Default: fieldgate/<id>'),
  parser: lineParserSchema,
  fields: z.record(z.string().min(1), lineFieldSchema),
  poll: pollSchema.optional(),
  commands: z.record(z.string().min(1), setCommandSchema).default({}).describe('Each <name> listens on <topicPrefix>/<name>/set'),
  staleAfterMs: z.number().int().min(10).max(86_400_000).optional().describe('Mark the device offline when no line it accepts arrived for this long'),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0),
  retain: z.boolean().default(true),
  homeAssistant: homeAssistantDeviceOption,
});

function checkLineDevice(device: z.infer<typeof lineDeviceObject> | Omit<z.infer<typeof lineDeviceObject>, 'id' | 'bus'>, ctx: z.RefinementCtx): void {
  checkFieldsAgainstParser(device.parser, device.fields, ctx);
  checkTopicsUnique(device.fields, device.commands, ctx);
  for (const [name, field] of Object.entries(device.fields)) {
    const component = field.homeAssistant?.component;
    const issue = component === 'switch' || component === 'number'
      ? 'a line field is read-only in Home Assistant: use "sensor" or "binary_sensor"'
      : homeAssistantComponentIssue(component, { writable: false, bool: field.type === 'boolean', text: field.type === 'string' });
    if (issue) ctx.addIssue({ code: 'custom', path: ['fields', name, 'homeAssistant', 'component'], input: component, message: issue });
  }
  for (const [name, command] of Object.entries(device.commands)) {
    topicSuffixIssue(name, ['commands', name], ctx);
    if (command.min !== undefined && command.max !== undefined && command.min > command.max) {
      ctx.addIssue({ code: 'custom', path: ['commands', name, 'min'], input: command.min, message: `must not be greater than max (${command.max})` });
    }
  }
}

/** A line device in a mapping file. `protocol: "line"` tells it apart from Modbus devices. */
export const lineDeviceSchema = lineDeviceObject.superRefine(checkLineDevice);

/** A line device inside a profile file: id and bus come from the including mapping. */
export const lineDeviceProfileSchema = lineDeviceObject.partial({ id: true, bus: true }).superRefine(checkLineDevice);

export type LineBusInput = z.input<typeof lineBusSchema>;
export type LineBus = z.infer<typeof lineBusSchema>;
export type LineFraming = z.infer<typeof lineFramingSchema>;
export type LineParserConfig = z.infer<typeof lineParserSchema>;
export type LineField = z.infer<typeof lineFieldSchema>;
export type LineSetCommand = z.infer<typeof setCommandSchema>;
export type LineDeviceInput = z.input<typeof lineDeviceSchema>;
export type LineDevice = z.infer<typeof lineDeviceSchema>;

/** The topic prefix a device publishes under. */
export function lineDeviceTopicPrefix(device: Pick<LineDevice, 'id' | 'topicPrefix'>): string {
  return device.topicPrefix ?? `fieldgate/${device.id}`;
}

export function namedGroups(pattern: string): string[] {
  const names: string[] = [];
  for (const m of pattern.matchAll(/\(\?<([A-Za-z_$][A-Za-z0-9_$]*)>/g)) names.push(m[1]);
  return names;
}

function topicSuffixIssue(value: string, path: (string | number)[], ctx: z.RefinementCtx): void {
  const result = topicSuffix.safeParse(value);
  if (!result.success) ctx.addIssue({ code: 'custom', path, input: value, message: `cannot be a topic segment: ${result.error.issues[0].message}` });
}

function checkFieldsAgainstParser(parser: LineParserConfig, fields: Record<string, LineField>, ctx: z.RefinementCtx): void {
  const names = Object.keys(fields);
  if (names.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['fields'], input: fields, message: 'map at least one parsed field to a topic, e.g. { "temperature": { "unit": "°C" } }' });
  }
  for (const name of names) {
    if (fields[name].topic === undefined) topicSuffixIssue(name, ['fields', name], ctx);
  }
  if (parser.type === 'regex') {
    const groups = namedGroups(parser.pattern);
    for (const name of names) {
      if (groups.length > 0 && !groups.includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['fields', name], input: name, message: `the parser pattern has no named group of this name (groups: ${groups.join(', ') || 'none'})` });
      }
    }
  } else if (parser.type === 'nmea0183') {
    for (const name of names) {
      if (!nmeaFieldNames.has(name) && !isNmeaRawFieldName(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['fields', name],
          input: name,
          message: nmeaFieldHint(name),
        });
      }
    }
  }
}

function nmeaFieldHint(name: string): string {
  const plain = [...nmeaFieldNames].filter((n) => !n.includes('.'));
  const dot = name.indexOf('.');
  const suggestion = dot > 0 ? closestKey(name, [...nmeaFieldNames].filter((n) => n.includes('.'))) : closestKey(name, plain);
  if (suggestion) return `not a field the nmea0183 parser produces (did you mean "${suggestion}"?)`;
  return `not a field the nmea0183 parser produces; use one of ${plain.join(', ')}, a sentence-qualified name like "GGA.altitude", or a raw field like "GSV.3"`;
}

function checkTopicsUnique(fields: Record<string, LineField>, commands: Record<string, LineSetCommand>, ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (const [name, field] of Object.entries(fields)) {
    const topic = field.topic ?? name;
    const earlier = seen.get(topic);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['fields', name, 'topic'], input: topic, message: `this topic is already used by field "${earlier}"` });
    } else {
      seen.set(topic, name);
    }
  }
  for (const name of Object.keys(commands)) {
    if (name === 'availability' || seen.has(`${name}/set`)) {
      ctx.addIssue({ code: 'custom', path: ['commands', name], input: name, message: 'this command name collides with a published topic' });
    }
  }
  if (seen.has('availability')) {
    ctx.addIssue({ code: 'custom', path: ['fields', seen.get('availability') ?? 'availability'], input: 'availability', message: 'this topic is reserved for the device\'s online/offline state' });
  }
}

/**
 * Cross-checks that need the whole mapping: every line device names an existing serial-line bus.
 * Returns issues with paths relative to the mapping root, for the top-level mapping schema.
 */
export function lineMappingIssues(
  buses: ReadonlyArray<{ id: string; type: string }>,
  devices: ReadonlyArray<{ device: { id: string; bus: string; protocol?: string }; path: (string | number)[] }>,
): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  for (const { device, path } of devices) {
    if (device.protocol !== 'line') continue;
    const bus = buses.find((b) => b.id === device.bus);
    if (bus === undefined) {
      const known = buses.filter((b) => b.type === 'serial-line').map((b) => b.id);
      issues.push({ path: [...path, 'bus'], message: `no bus with id "${device.bus}"${known.length ? ` (serial-line buses: ${known.join(', ')})` : ' (declare a bus with "type": "serial-line")'}` });
    } else if (bus.type !== 'serial-line') {
      issues.push({ path: [...path, 'bus'], message: `bus "${device.bus}" is a ${bus.type} bus; a "protocol": "line" device needs a "serial-line" bus` });
    }
  }
  return issues;
}
