// Starts every bus and device of a loaded device mapping as in-process clients of the broker.
import type { Logger } from '../log.js';
import type { LocalClient } from '../broker/types.js';
import type { DeviceMapping, LineBus, LineDevice } from './mapping-schema.js';
import { ModbusBusRunner, type BusStatus } from './modbus/bus.js';
import { ModbusDeviceRunner, type DeviceDetail, type DeviceStatus, type PointReading, type PollObserver } from './modbus/device.js';
import type { ModbusBus } from './modbus/schema.js';
import { startLineBus, type LineBusHandle } from './line/runtime.js';

export type { DeviceStatus, DeviceDetail, PointReading, BusStatus, PollObserver };
export type { ModbusBusRunner };
export { loadDeviceMapping, loadDeviceMappings, deviceMappingJsonSchema, deviceMappingSchema, shippedProfileDir, type DeviceMapping, type LoadResult, type LoadOptions } from './mapping-schema.js';
export { probeRegisters, decodeAll, formatProbe, type ProbeOptions, type ProbeResult, type ProbeDecoding } from './modbus/probe.js';
export { planDeviceReads, minimumRequests, type ReadBlock } from './modbus/planner.js';
export { describeMapping } from './summary.js';
export { buildDiscoveryConfigs, clearHomeAssistantDiscovery, startHomeAssistantDiscovery, type DiscoveryConfig, type HomeAssistantDiscovery } from './home-assistant/index.js';
export type { ModbusDevice, ModbusPoint } from './modbus/model.js';
export type { ModbusBus } from './modbus/schema.js';

export interface DevicesHandle {
  stop(): Promise<void>;
  status(): DeviceStatus[];
  buses(): BusStatus[];
  /** One device in detail (undefined: not on these buses). */
  detail(deviceId: string): DeviceDetail | undefined;
  /** The scheduler of a Modbus bus, for requests that must queue with the polls (commissioning). */
  modbusBus(busId: string): ModbusBusRunner | undefined;
}

/** A LocalClient, or a factory the gateway passes as `(id) => broker.createLocalClient(id)` (one client per device). */
export type ClientSource = LocalClient | ((clientId: string) => LocalClient);

export interface StartDevicesOptions {
  /**
   * Called after each poll of a device: a Modbus poll cycle (every read of one poll group, bus queueing
   * included) or a line device's request/response poll. `seconds` is its duration, `ok` false when it failed
   * (timeout, refused read, link lost mid-poll). Polls skipped while the bus is not open are not reported.
   * For the gateway: `onPoll: (id, seconds) => metrics.observePollLatency(id, seconds)`.
   */
  onPoll?: PollObserver;
}

export async function startDevices(mapping: DeviceMapping, clients: ClientSource, logger: Logger, options: StartDevicesOptions = {}): Promise<DevicesHandle> {
  const clientFor = (id: string): LocalClient => (typeof clients === 'function' ? clients(id) : clients);
  const ownClients: LocalClient[] = [];
  const busRunners = new Map<string, ModbusBusRunner>();
  const devices: ModbusDeviceRunner[] = [];

  for (const device of mapping.modbusDevices) {
    let bus = busRunners.get(device.bus.id);
    if (!bus) {
      bus = new ModbusBusRunner(device.bus as ModbusBus, logger.child({ bus: device.bus.id }));
      busRunners.set(device.bus.id, bus);
    }
    const client = clientFor(`fieldgate-device-${device.id}`);
    if (typeof clients === 'function') ownClients.push(client);
    devices.push(new ModbusDeviceRunner(device, bus, client, logger.child({ device: device.id }), options.onPoll));
  }
  // Never wait for a bus here: a device still booting (connects hang) would hold the gateway's start for
  // the whole connect timeout. Devices poll once their bus opens, and report offline only once it has failed.
  for (const b of busRunners.values()) b.start();
  for (const d of devices) d.start();

  const lineBuses: Array<{ bus: LineBus; devices: LineDevice[]; handle: LineBusHandle }> = [];
  for (const bus of mapping.buses) {
    if (bus.type !== 'serial-line') continue;
    const onBus = mapping.lineDevices.filter((d) => d.bus === bus.id);
    if (onBus.length === 0) continue;
    const client = clientFor(`fieldgate-line-${bus.id}`);
    if (typeof clients === 'function') ownClients.push(client);
    lineBuses.push({ bus, devices: onBus, handle: await startLineBus(bus, onBus, client, logger, options.onPoll) });
  }

  let stopping: Promise<void> | undefined;
  const handle: DevicesHandle = {
    stop() {
      stopping ??= (async () => {
        // The devices stop polling first (synchronously); stopping the buses in the same turn aborts a
        // connect in progress and fails the requests in flight at once, so a silent device holds nobody.
        const stoppingDevices = devices.map((d) => d.stop());
        await Promise.all([...stoppingDevices, ...[...busRunners.values()].map((b) => b.stop()), ...lineBuses.map((l) => l.handle.stop())]);
        for (const c of ownClients) c.close();
      })();
      return stopping;
    },
    status() {
      const line = lineBuses.flatMap(({ bus, devices: ds, handle }) => {
        const stats = handle.stats();
        return ds.map(
          (d): DeviceStatus => ({
            id: d.id,
            name: d.name ?? d.id,
            bus: bus.id,
            protocol: 'line',
            online: stats.open && stats.devices[d.id]?.online === true,
            polls: stats.devices[d.id]?.acceptedFrames ?? 0,
            failedPolls: stats.devices[d.id]?.pollTimeouts ?? 0,
            pointErrors: {},
          }),
        );
      });
      return [...devices.map((d) => d.status()), ...line];
    },
    buses() {
      return [...busRunners.values()].map((b) => b.status());
    },
    detail(deviceId) {
      const modbus = devices.find((d) => d.device.id === deviceId);
      if (modbus) return modbus.detail();
      const status = handle.status().find((d) => d.id === deviceId);
      return status ? { status } : undefined;
    },
    modbusBus(busId) {
      return busRunners.get(busId);
    },
  };
  return handle;
}
