// The resolved, ready-to-run form of a Modbus device: 0-based wire addresses, tables and types
// filled in, topics computed. Produced by the mapping loader, consumed by the engine.
import type { ByteOrder, PointType } from './codec.js';
import type { ModbusBus, Table } from './schema.js';
import type { HomeAssistantEntityOptions } from '../home-assistant/schema.js';

export interface ModbusPoint {
  name: string;
  topic: string;
  table: Table;
  /** 0-based address on the wire. */
  address: number;
  type: PointType;
  /** Registers (register tables) or 1 (bit tables). */
  count: number;
  bit?: number;
  byteOrder: ByteOrder;
  scale?: number;
  offset?: number;
  decimals?: number;
  unit?: string;
  pollIntervalMs: number;
  deadband: number;
  writable: boolean;
  min?: number;
  max?: number;
  /** Overrides for Home Assistant discovery. */
  homeAssistant?: HomeAssistantEntityOptions;
}

export interface ModbusDevice {
  id: string;
  name: string;
  manufacturer?: string;
  model?: string;
  /** False: left out of Home Assistant discovery. Default true. */
  announce?: boolean;
  bus: ModbusBus;
  unitId: number;
  pollIntervalMs: number;
  timeoutMs: number;
  retries: number;
  maxRegistersPerRequest: number;
  maxBitsPerRequest: number;
  maxGap: number;
  interRequestDelayMs: number;
  offlinePollIntervalMs: number;
  topicPrefix: string;
  /** 'multiple': write with FC 15/16 even for one coil or register. */
  writeFunctions?: 'single' | 'multiple';
  qos: 0 | 1 | 2;
  retain: boolean;
  publish: { onChange: boolean; maxSilenceMs: number; state: boolean };
  points: ModbusPoint[];
}

export function isBitTable(table: Table): boolean {
  return table === 'coil' || table === 'discrete-input';
}
