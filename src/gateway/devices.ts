// The device adapters (and the demo's simulated meter), one handle per mapping file so a reload
// restarts only the files that changed (a bus and its devices always live in one file: bus ids are
// unique across files). Starting never waits for a device: buses connect in the background.
import fs from 'node:fs';
import path from 'node:path';
import type { Broker } from '../broker/broker.js';
import { ConfigError, type GatewayConfig } from '../config/gateway-config.js';
import { writeDemoMapping } from '../demo/demo-mapping.js';
import type { SimulatedMeter } from '../demo/simulated-meter.js';
import { loadDeviceMappings, startDevices, type DeviceDetail, type DeviceMapping, type DevicesHandle, type DeviceStatus, type ModbusBusRunner, type PointReading, type PollObserver } from '../devices/index.js';
import type { Logger } from '../log.js';
import type { Part, ReloadResult } from './part.js';

export function loadMappingsOrThrow(files: string[]): DeviceMapping {
  const result = loadDeviceMappings(files);
  if (!result.ok) throw new ConfigError(result.errors);
  return result.mapping;
}

interface RunningFile {
  text: string;
  handle: DevicesHandle;
  mapping: DeviceMapping;
}

export interface DevicesPartOptions {
  onPoll?: PollObserver;
  /** A device that is no longer in any mapping (its metrics series can go). */
  onRemoved?(deviceId: string): void;
}

export class DevicesPart implements Part {
  readonly name = 'devices';
  private meter: SimulatedMeter | null = null;
  private demoFile: string | undefined;
  private files: string[] = [];
  private readonly running = new Map<string, RunningFile>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly broker: Broker,
    private readonly logger: Logger,
    private readonly options: DevicesPartOptions = {},
  ) {}

  async start(): Promise<void> {
    if (this.config.demo) {
      // The simulator (a Modbus TCP server) is loaded only for the demo.
      const { startSimulatedMeter } = await import('../demo/simulated-meter.js');
      this.meter = await startSimulatedMeter({ port: 0, logger: this.logger.child({ part: 'demo-meter' }) });
      this.demoFile = writeDemoMapping(path.join(this.config.broker.dataDir, 'demo'), this.meter.port);
      this.logger.info(`demo: simulated SDM120 energy meter on modbus-tcp://127.0.0.1:${this.meter.port}, mapping ${this.demoFile}`);
    }
    this.files = this.filesOf(this.config);
    const mapping = loadMappingsOrThrow(this.files);
    for (const file of this.files) await this.startFile(file, readText(file));
    const count = mapping.modbusDevices.length + mapping.lineDevices.length;
    if (count > 0) this.logger.info({ devices: count, files: this.files.length }, 'device adapters started');
  }

  async stop(deadlineMs: number): Promise<void> {
    // Buses abort their connects at once; a device's last write and its "offline" goodbye are local.
    const stops = [...this.running.values()].map((d) => d.handle.stop());
    this.running.clear();
    await Promise.race([Promise.all(stops), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    await this.meter?.stop();
    this.meter = null;
  }

  /** The mappings of the files running now, in file order. */
  mappings(): DeviceMapping[] {
    return [...this.running.values()].map((d) => d.mapping);
  }

  deviceStatus(): DeviceStatus[] {
    return [...this.running.values()].flatMap((d) => d.handle.status());
  }

  /** The mapping files running now (in the demo its generated mapping first). */
  runningFiles(): string[] {
    return [...this.files];
  }

  deviceDetail(id: string): DeviceDetail | undefined {
    for (const d of this.running.values()) {
      const detail = d.handle.detail(id);
      if (detail) return detail;
    }
    return undefined;
  }

  /** Each running Modbus device's readings (for the management API's history). */
  readings(): Array<{ deviceId: string; readings: ReadonlyMap<string, PointReading> }> {
    const out: Array<{ deviceId: string; readings: ReadonlyMap<string, PointReading> }> = [];
    for (const d of this.running.values()) {
      for (const device of d.mapping.modbusDevices) {
        const readings = d.handle.detail(device.id)?.modbus?.readings;
        if (readings) out.push({ deviceId: device.id, readings });
      }
    }
    return out;
  }

  modbusBus(id: string): ModbusBusRunner | undefined {
    for (const d of this.running.values()) {
      const bus = d.handle.modbusBus(id);
      if (bus) return bus;
    }
    return undefined;
  }

  busIds(): string[] {
    return [...this.running.values()].flatMap((d) => d.mapping.buses.map((b) => b.id));
  }

  fileOfDevice(id: string): string | undefined {
    for (const [file, d] of this.running) {
      if (d.mapping.modbusDevices.some((m) => m.id === id) || d.mapping.lineDevices.some((l) => l.id === id)) return file;
    }
    return undefined;
  }

  async reload(next: GatewayConfig | undefined): Promise<ReloadResult> {
    const files = next ? this.filesOf(next) : this.files;
    const texts = new Map(files.map((file) => [file, readText(file)]));
    const removed = this.files.filter((file) => !files.includes(file));
    const changed = files.filter((file) => this.running.get(file)?.text !== texts.get(file));
    if (changed.length === 0 && removed.length === 0) return { errors: [], restartNeeded: [] };
    // All files are checked together (ids, buses and topics must stay unique across them).
    const result = loadDeviceMappings(files);
    if (!result.ok) {
      this.logger.error({ errors: result.errors }, 'new device mapping rejected; the running one is kept');
      return { errors: result.errors, restartNeeded: [] };
    }
    const before = new Set(this.deviceStatus().map((d) => d.id));
    for (const file of [...removed, ...changed]) {
      await this.running.get(file)?.handle.stop();
      this.running.delete(file);
    }
    for (const file of changed) await this.startFile(file, texts.get(file)!);
    this.files = files;
    for (const d of this.deviceStatus()) before.delete(d.id);
    for (const id of before) this.options.onRemoved?.(id);
    this.logger.info({ files: changed, removed }, `device mappings reloaded: ${changed.length} file(s) changed, ${removed.length} removed, the others keep running`);
    return { errors: [], restartNeeded: [] };
  }

  status() {
    const devices = this.deviceStatus();
    if (devices.length === 0) return { state: 'running' as const, detail: 'no devices configured' };
    const offline = devices.filter((d) => !d.online);
    const detail = `${devices.length - offline.length} of ${devices.length} devices online${offline.length > 0 ? `; offline: ${offline.map((d) => (d.lastError ? `${d.id} (${d.lastError})` : d.id)).join(', ')}` : ''}`;
    return { state: offline.length > 0 ? ('degraded' as const) : ('running' as const), detail };
  }

  private filesOf(config: GatewayConfig): string[] {
    return this.demoFile !== undefined ? [this.demoFile, ...config.devices] : [...config.devices];
  }

  private async startFile(file: string, text: string): Promise<void> {
    const mapping = loadMappingsOrThrow([file]);
    const handle = await startDevices(mapping, (id) => this.broker.createLocalClient(id), this.logger.child({ part: 'devices' }), { onPoll: this.options.onPoll });
    this.running.set(file, { text, handle, mapping });
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return `missing:${file}`;
  }
}
