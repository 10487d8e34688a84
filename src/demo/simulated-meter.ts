// An in-process Modbus TCP energy meter laid out like an Eastron SDM120 (input registers, float32
// big-endian ABCD), so the demo mapping shows real readings without hardware. Its day runs sped up:
// household load peaks in the morning and evening, and the energy registers integrate that power.
// Coil 0 is a relay: switching it off drops the load to zero, which demonstrates `…/set`.
import type { Logger } from '../log.js';
import { ModbusServerException, startModbusTcpServer, type ModbusDataModel, type ModbusTcpServer } from './modbus-tcp-server.js';

/** SDM120 input-register addresses (0-based wire addresses; each value is two registers). */
export const sdm120Registers = {
  voltage: 0x0000,
  current: 0x0006,
  activePower: 0x000c,
  apparentPower: 0x0012,
  reactivePower: 0x0018,
  powerFactor: 0x001e,
  frequency: 0x0046,
  importEnergy: 0x0048,
  exportEnergy: 0x004a,
  totalEnergy: 0x0156,
} as const;

export const RELAY_COIL = 0;

/** Input registers the meter answers for; unused addresses in this range read as 0 (as merged reads need). */
const INPUT_REGISTER_END = 0x0200;

export interface MeterReadings {
  voltage: number;
  current: number;
  activePower: number;
  apparentPower: number;
  reactivePower: number;
  powerFactor: number;
  frequency: number;
  importEnergy: number;
  exportEnergy: number;
  totalEnergy: number;
  relayOn: boolean;
  /** Hour of the simulated day, 0 ≤ h < 24. */
  simulatedHour: number;
}

export interface SimulatedMeterOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** The unit id it answers to (others get no reply, as on a real bus). Default 1. */
  unitId?: number;
  /** Real milliseconds per simulated day. Default 10 minutes. */
  dayLengthMs?: number;
  /** Simulated hour at start. Default 6 (the morning peak follows soon). */
  startHour?: number;
  /** Energy counter at start, kWh. Default 1234.5. */
  startEnergyKwh?: number;
  /** Seed for the measurement noise. */
  seed?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
  logger?: Logger;
}

export interface SimulatedMeter {
  host: string;
  port: number;
  unitId: number;
  /** The values the registers hold right now (the same model the Modbus reads see). */
  readings(): MeterReadings;
  readonly relayOn: boolean;
  stop(): Promise<void>;
}

/** Small deterministic PRNG (mulberry32), so a seeded meter is reproducible. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bump(hour: number, centre: number, width: number): number {
  return Math.exp(-(((hour - centre) / width) ** 2));
}

/** Household load in watts at a simulated hour, before noise: base load plus morning, noon and evening peaks. */
export function loadCurveWatts(hour: number): number {
  return 180 + 1100 * bump(hour, 7.5, 1) + 500 * bump(hour, 12.5, 1.3) + 1700 * bump(hour, 19, 1.6) + 300 * bump(hour, 22, 1);
}

class MeterModel {
  private readonly random: () => number;
  private readonly dayLengthMs: number;
  private readonly startedAt: number;
  private readonly startHour: number;
  private lastAt: number;
  private lastPower: number;
  private energyKwh: number;
  private cached: { at: number; readings: MeterReadings } | undefined;
  relayOn = true;

  constructor(options: SimulatedMeterOptions, private readonly now: () => number) {
    this.random = randomSource(options.seed ?? 120);
    this.dayLengthMs = options.dayLengthMs ?? 10 * 60_000;
    this.startHour = options.startHour ?? 6;
    this.startedAt = now();
    this.lastAt = this.startedAt;
    this.energyKwh = options.startEnergyKwh ?? 1234.5;
    this.lastPower = this.powerAt(this.startHour);
  }

  private hourAt(at: number): number {
    const hours = this.startHour + ((at - this.startedAt) / this.dayLengthMs) * 24;
    return ((hours % 24) + 24) % 24;
  }

  private noise(amplitude: number): number {
    return (this.random() * 2 - 1) * amplitude;
  }

  private powerAt(hour: number): number {
    if (!this.relayOn) return 0;
    return Math.max(0, loadCurveWatts(hour) * (1 + this.noise(0.04)));
  }

  /** Advances the model to now; all values of one Modbus request come from one call. */
  sample(): MeterReadings {
    const at = this.now();
    if (this.cached && this.cached.at === at) return this.cached.readings;
    const hour = this.hourAt(at);
    const power = this.powerAt(hour);
    // Energy counts in simulated time, so it moves visibly and matches the sped-up load curve.
    const simulatedHours = (Math.max(0, at - this.lastAt) / this.dayLengthMs) * 24;
    this.energyKwh += (((this.lastPower + power) / 2) * simulatedHours) / 1000;
    this.lastAt = Math.max(this.lastAt, at);
    this.lastPower = power;

    const slow = (at - this.startedAt) / 60_000;
    const voltage = 230 + 2.5 * Math.sin(slow * 0.7) - 0.0015 * power + this.noise(0.4);
    const powerFactor = power === 0 ? 1 : 0.86 + 0.12 * (1 - Math.exp(-power / 500)) + this.noise(0.005);
    const apparentPower = power / powerFactor;
    const reactivePower = Math.sqrt(Math.max(0, apparentPower ** 2 - power ** 2));
    const readings: MeterReadings = {
      voltage,
      current: apparentPower / voltage,
      activePower: power,
      apparentPower,
      reactivePower,
      powerFactor,
      frequency: 50 + 0.03 * Math.sin(slow * 1.3) + this.noise(0.01),
      importEnergy: this.energyKwh,
      exportEnergy: 0,
      totalEnergy: this.energyKwh,
      relayOn: this.relayOn,
      simulatedHour: hour,
    };
    this.cached = { at, readings };
    return readings;
  }

  setRelay(on: boolean): void {
    if (on === this.relayOn) return;
    this.sample(); // account the energy up to the switch at the old load
    this.relayOn = on;
    this.lastPower = this.powerAt(this.hourAt(this.lastAt));
    this.cached = undefined;
  }
}

/** The 16-bit register image of one sample, float32 ABCD at the SDM120 addresses. */
function registerImage(readings: MeterReadings): Map<number, number> {
  const image = new Map<number, number>();
  const buffer = Buffer.alloc(4);
  for (const [name, address] of Object.entries(sdm120Registers) as Array<[keyof typeof sdm120Registers, number]>) {
    buffer.writeFloatBE(readings[name]);
    image.set(address, buffer.readUInt16BE(0));
    image.set(address + 1, buffer.readUInt16BE(2));
  }
  return image;
}

/** Starts the simulated SDM120 on a loopback port. */
export async function startSimulatedMeter(options: SimulatedMeterOptions = {}): Promise<SimulatedMeter> {
  const host = options.host ?? '127.0.0.1';
  const unitId = options.unitId ?? 1;
  const model = new MeterModel(options, options.now ?? Date.now);

  const model_: ModbusDataModel = {
    readInputRegisters: (address, length) => {
      if (address + length > INPUT_REGISTER_END) throw new ModbusServerException(0x02, `input registers end at 0x${INPUT_REGISTER_END.toString(16)}`);
      const image = registerImage(model.sample());
      return Array.from({ length }, (_, i) => image.get(address + i) ?? 0);
    },
    readCoils: (address, count) => {
      if (address !== RELAY_COIL || count !== 1) throw new ModbusServerException(0x02, `no coil ${address} (the relay is coil ${RELAY_COIL})`);
      return [model.relayOn];
    },
    writeCoil: (address, value) => {
      if (address !== RELAY_COIL) throw new ModbusServerException(0x02, `no coil ${address} (the relay is coil ${RELAY_COIL})`);
      model.setRelay(value);
      options.logger?.info({ relay: value ? 'on' : 'off' }, 'simulated meter: relay switched');
    },
  };

  let server: ModbusTcpServer;
  try {
    server = await startModbusTcpServer({
      host,
      port: options.port ?? 0,
      unitId,
      model: model_,
      onError: (err) => options.logger?.warn({ err }, 'simulated meter: request error'),
    });
  } catch (err) {
    throw new Error(`simulated meter cannot listen on ${host}${options.port ? `:${options.port}` : ''}: ${(err as Error).message}`);
  }

  return {
    host,
    port: server.port,
    unitId,
    readings: () => model.sample(),
    get relayOn() {
      return model.relayOn;
    },
    stop: () => server.close(),
  };
}
