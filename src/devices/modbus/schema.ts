// zod schemas for Modbus buses, devices and points as a user writes them in devices/*.json.
import { z } from 'zod';
import { byteOrders, registerTypes } from './codec.js';
import { deviceManufacturer, deviceModel, homeAssistantDeviceOption, homeAssistantEntityOption } from '../home-assistant/schema.js';

const note = { description: z.string().optional(), _comment: z.string().optional() };

const baudRates = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400] as const;

export const busId = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "-" or "."');

export const modbusRtuBusSchema = z.strictObject({
  id: busId,
  type: z.literal('modbus-rtu'),
  ...note,
  path: z.string().min(1).describe('Serial device; prefer /dev/serial/by-id/… which survives re-plugging'),
  baudRate: z.union(baudRates.map((b) => z.literal(b))).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  interRequestDelayMs: z.number().int().min(0).max(10_000).default(0).describe('Pause after each transaction, on top of the 3.5-character silent interval'),
  reconnectInitialDelayMs: z.number().int().min(10).max(60_000).optional().describe('First pause before reopening a lost port or connection (default 250); it doubles on each failure'),
  reconnectMaxDelayMs: z.number().int().min(10).max(600_000).optional().describe('Longest pause between reopening attempts (default 2000: a re-plugged adapter is back within about 2 s)'),
});

export const modbusTcpBusSchema = z.strictObject({
  id: busId,
  type: z.literal('modbus-tcp'),
  ...note,
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
  interRequestDelayMs: z.number().int().min(0).max(10_000).default(0),
  reconnectInitialDelayMs: z.number().int().min(10).max(60_000).optional().describe('First pause before reopening a lost port or connection (default 250); it doubles on each failure'),
  reconnectMaxDelayMs: z.number().int().min(10).max(600_000).optional().describe('Longest pause between reopening attempts (default 2000: a re-plugged adapter is back within about 2 s)'),
});

export const modbusRtuOverTcpBusSchema = z.strictObject({
  id: busId,
  type: z.literal('modbus-rtu-over-tcp'),
  ...note,
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  interRequestDelayMs: z.number().int().min(0).max(10_000).default(0),
  reconnectInitialDelayMs: z.number().int().min(10).max(60_000).optional().describe('First pause before reopening a lost port or connection (default 250); it doubles on each failure'),
  reconnectMaxDelayMs: z.number().int().min(10).max(600_000).optional().describe('Longest pause between reopening attempts (default 2000: a re-plugged adapter is back within about 2 s)'),
});

export const modbusBusSchemas = [modbusRtuBusSchema, modbusTcpBusSchema, modbusRtuOverTcpBusSchema] as const;

/**
 * Reopening a lost port or connection: the pause starts at the initial delay and doubles up to the
 * maximum. The default maximum of 2 s finds a re-plugged adapter within about 2 s; opening a missing
 * port or refused connection every 2 s costs next to nothing.
 */
export const MODBUS_RECONNECT_DEFAULTS = { initialMs: 250, maxMs: 2000 };
export const modbusBusTypes = ['modbus-rtu', 'modbus-tcp', 'modbus-rtu-over-tcp'] as const;

export const tables = ['coil', 'discrete-input', 'holding', 'input'] as const;
export type Table = (typeof tables)[number];

const topicSegment = z
  .string()
  .min(1)
  .regex(/^[^#+\u0000]+$/, 'no "+", "#" or NUL (it becomes part of a topic)')
  .refine((s) => !s.startsWith('/') && !s.endsWith('/') && !s.includes('//'), 'no leading, trailing or double "/"');

export const modbusPointSchema = z.strictObject({
  name: topicSegment.describe('Topic segment: the value is published on <topicPrefix>/<name>'),
  ...note,
  table: z.enum(tables).optional().describe('Required unless addressBase is "modicon", where the address says it'),
  address: z.number().int().min(0).max(465_536),
  type: z.enum(registerTypes).optional().describe('Default: bool for coils and discrete inputs, uint16 for registers'),
  bit: z.number().int().min(0).max(15).optional().describe('For type "bit": 0 = least significant bit'),
  length: z.number().int().min(1).max(123).optional().describe('For type "string": number of registers (2 characters each)'),
  byteOrder: z.enum(byteOrders).optional(),
  scale: z.number().optional(),
  offset: z.number().optional(),
  decimals: z.number().int().min(0).max(15).optional(),
  unit: z.string().optional(),
  pollIntervalMs: z.number().int().min(10).optional(),
  deadband: z.number().min(0).optional(),
  writable: z.boolean().default(false),
  min: z.number().optional(),
  max: z.number().optional(),
  homeAssistant: homeAssistantEntityOption,
});

export const publishSchema = z.strictObject({
  onChange: z.boolean().default(true).describe('Publish only changed values (false: every poll)'),
  deadband: z.number().min(0).default(0).describe('A numeric change smaller than this is not a change'),
  maxSilenceMs: z.number().int().min(0).default(300_000).describe('Republish an unchanged value after this long (0: never)'),
  state: z.boolean().default(false).describe('Also publish one JSON message with all points on <topicPrefix>'),
});

export const modbusDeviceSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" or "-"'),
  protocol: z.literal('modbus').optional(),
  name: z.string().optional(),
  ...note,
  manufacturer: deviceManufacturer,
  model: deviceModel,
  bus: z.string().min(1),
  unitId: z.number().int().min(0).max(255),
  pollIntervalMs: z.number().int().min(10).default(1000),
  timeoutMs: z.number().int().min(10).max(60_000).default(1000),
  retries: z.number().int().min(0).max(10).default(1),
  maxRegistersPerRequest: z.number().int().min(1).max(125).optional(),
  maxBitsPerRequest: z.number().int().min(1).max(2000).optional(),
  maxGap: z.number().int().min(0).max(125).optional().describe('Unused registers (or bits ×16) a merged read may span. Default: from the bus, as many as cost less time than one more request (RTU 2400 baud: 22, 9600: 58; TCP: up to the request cap)'),
  interRequestDelayMs: z.number().int().min(0).max(10_000).optional(),
  offlinePollIntervalMs: z.number().int().min(100).default(15_000).describe('How often a device that stopped answering is probed'),
  topicPrefix: topicSegment.optional().describe('Default: fieldgate/<id>'),
  byteOrder: z.enum(byteOrders).default('ABCD'),
  addressBase: z.union([z.literal(0), z.literal(1), z.literal('modicon')]).default(0).describe('0: wire addresses; 1: data sheet counts from 1; "modicon": 40001-style'),
  writeFunctions: z.enum(['single', 'multiple']).default('single').describe('"single": FC 5/6 where one coil or register is written (FC 16 for wider values); "multiple": always FC 15/16, for devices without FC 5/6'),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0),
  retain: z.boolean().default(true),
  publish: publishSchema.prefault({}),
  homeAssistant: homeAssistantDeviceOption,
  points: z.array(modbusPointSchema).min(1),
});

export type ModbusRtuBus = z.infer<typeof modbusRtuBusSchema>;
export type ModbusTcpBus = z.infer<typeof modbusTcpBusSchema>;
export type ModbusRtuOverTcpBus = z.infer<typeof modbusRtuOverTcpBusSchema>;
export type ModbusBus = ModbusRtuBus | ModbusTcpBus | ModbusRtuOverTcpBus;
export type ModbusPointInput = z.infer<typeof modbusPointSchema>;
export type ModbusDeviceInput = z.infer<typeof modbusDeviceSchema>;
