// The whole gateway in one process: the broker is the hub; listeners feed it sockets, device adapters
// and bridges are its in-process clients. Data flows device → adapter → broker → (subscribers, bridge).

import fs from 'node:fs';
import path from 'node:path';
import { createAuth, type Auth } from './auth/create-auth.js';
import { Broker } from './broker/broker.js';
import { startBridge, type BridgeHandle } from './bridge/index.js';
import { ConfigError, homeAssistantDiscoveryOptions, type GatewayConfig, type ListenerConfig } from './config/gateway-config.js';
import { writeDemoMapping } from './demo/demo-mapping.js';
import { startSimulatedMeter, type SimulatedMeter } from './demo/simulated-meter.js';
import { clearHomeAssistantDiscovery, loadDeviceMappings, startDevices, startHomeAssistantDiscovery, type DeviceMapping, type DevicesHandle, type HomeAssistantDiscovery } from './devices/index.js';
import { isLoopback, openListener, type OpenListener } from './listeners.js';
import type { Logger } from './log.js';
import { brokerCollector, bridgesCollector, createMetrics, gatewayHealth, startMetricsServer, type MetricsServer } from './metrics/index.js';

export interface Gateway {
  readonly broker: Broker;
  readonly listeners: OpenListener[];
  readonly metricsServer: MetricsServer | null;
  /** SIGHUP: re-reads the password/ACL files, TLS certificates and device mappings; a bad new file keeps the running one. */
  reload(): Promise<{ ok: boolean; errors: string[] }>;
  stop(): Promise<void>;
}

/** Every listener the config asks for: the broker section's plain MQTT listener first. */
export function listenerConfigs(config: GatewayConfig): ListenerConfig[] {
  const main: ListenerConfig = { type: 'mqtt', host: config.broker.host, port: config.broker.port, path: '/mqtt' };
  return [main, ...config.listeners];
}

/** Anonymous clients are allowed by default only on loopback listeners (as Mosquitto 2 does). */
export function anonymousAllowed(config: GatewayConfig, listener: ListenerConfig): boolean {
  return listener.allowAnonymous ?? config.auth.allowAnonymous ?? isLoopback(listener.host);
}

export function loadMappingsOrThrow(files: string[]): DeviceMapping {
  const result = loadDeviceMappings(files);
  if (!result.ok) throw new ConfigError(result.errors);
  return result.mapping;
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<Gateway> {
  const listenerList = listenerConfigs(config);
  let auth: Auth | undefined;
  if (config.auth.passwordFile !== undefined || config.auth.aclFile !== undefined) {
    auth = createAuth({
      passwordFile: config.auth.passwordFile, aclFile: config.auth.aclFile,
      // Each listener decides whether clients without a user name get in (anonymousAllowed, checked by
      // the broker before this hook): the hook itself must not refuse them on a loopback listener.
      allowAnonymous: true, logger,
    });
  }

  const b = config.broker;
  const broker = new Broker({
    dataDir: b.dataDir, logger: logger.child({ part: 'broker' }), durability: b.durability, commitWindowMs: b.commitWindowMs,
    connectTimeoutMs: b.connectTimeoutMs, maxKeepAlive: b.maxKeepAlive, receiveMaximum: b.receiveMaximum,
    maximumPacketSize: b.maximumPacketSize, topicAliasMaximum: b.topicAliasMaximum, maxInflightMessages: b.maxInflightMessages, maxQueuedMessages: b.maxQueuedMessages,
    maxQueuedBytes: b.maxQueuedBytes, queuePolicy: b.queuePolicy, queueQos0: b.queueQos0, sysIntervalMs: b.sysIntervalSeconds * 1000,
    retainedWriteIntervalMs: b.retainedWriteIntervalSeconds * 1000,
    // Without a password file there is nothing to check a user name against: leave authentication to
    // the listeners (a listener that takes no anonymous clients then refuses every user name too).
    authenticate: config.auth.passwordFile !== undefined ? auth?.authenticate : undefined, authorize: auth?.authorize,
  });
  await broker.start();

  const listeners: OpenListener[] = [];
  let meter: SimulatedMeter | null = null;
  // One handle per mapping file, so a reload restarts only the files that changed (a bus and its
  // devices always live in one file: bus ids are unique across files).
  const devicesByFile = new Map<string, { text: string; handle: DevicesHandle; mapping: DeviceMapping }>();
  const deviceStatus = () => [...devicesByFile.values()].flatMap((d) => d.handle.status());
  let discovery: HomeAssistantDiscovery | null = null;
  const announceDevices = async (): Promise<void> => {
    if (!discovery) return;
    const running = [...devicesByFile.values()].map((d) => d.mapping);
    await discovery
      .update({ modbusDevices: running.flatMap((m) => m.modbusDevices), lineDevices: running.flatMap((m) => m.lineDevices) })
      .catch((err: unknown) => logger.error({ err }, 'Home Assistant discovery configs could not be published'));
  };
  const bridges: BridgeHandle[] = [];
  let metricsServer: MetricsServer | null = null;

  const stop = async (): Promise<void> => {
    await Promise.all(bridges.map((bridge) => bridge.stop()));
    discovery?.stop();
    await Promise.all([...devicesByFile.values()].map((d) => d.handle.stop()));
    await meter?.stop();
    await metricsServer?.close();
    // Stop accepting first; a listener's close completes only once its connections are gone, which
    // broker.close() brings about after telling v5 clients why (DISCONNECT 0x8B).
    const listenersClosed = Promise.all(listeners.map((l) => l.close().catch(() => undefined)));
    await broker.close();
    await listenersClosed;
  };

  try {
    for (const listener of listenerList) {
      const open = await openListener(broker, listener, anonymousAllowed(config, listener), b.maxConnections);
      listeners.push(open);
      logger.info({ url: open.url, anonymous: open.allowAnonymous }, `MQTT broker listening on ${open.url}`);
      if (!open.allowAnonymous) {
        if (config.auth.passwordFile === undefined) logger.warn(`${open.url}: not on loopback and no auth.passwordFile: every client is refused (add a password file, or "allowAnonymous": true on the listener)`);
        else logger.info(`${open.url}: anonymous clients refused (set "allowAnonymous": true on the listener to allow them)`);
      }
    }

    logger.info(`watch the readings: ${watchCommand(listeners[0], config.auth.passwordFile !== undefined)}`);

    const deviceFiles = [...config.devices];
    if (config.demo) {
      meter = await startSimulatedMeter({ port: 0, logger: logger.child({ part: 'demo-meter' }) });
      const demoFile = writeDemoMapping(path.join(b.dataDir, 'demo'), meter.port);
      deviceFiles.unshift(demoFile);
      logger.info(`demo: simulated SDM120 energy meter on modbus-tcp://127.0.0.1:${meter.port}, mapping ${demoFile}`);
    }
    const mapping = loadMappingsOrThrow(deviceFiles);
    const clientFor = (id: string) => broker.createLocalClient(id);
    // Created before the devices so their polls feed the latency histogram from the first one.
    const metrics = config.metrics ? createMetrics({ logger }) : null;
    const onPoll = metrics ? (deviceId: string, seconds: number) => metrics.observePollLatency(deviceId, seconds) : undefined;
    const startFile = async (file: string, text: string): Promise<void> => {
      const fileMapping = loadMappingsOrThrow([file]);
      const handle = await startDevices(fileMapping, clientFor, logger.child({ part: 'devices' }), { onPoll });
      devicesByFile.set(file, { text, handle, mapping: fileMapping });
    };
    for (const file of deviceFiles) await startFile(file, readText(file));
    const discoveryOptions = homeAssistantDiscoveryOptions(config);
    const discoveryClient = broker.createLocalClient('fieldgate-home-assistant');
    if (config.homeAssistant.discovery) {
      discovery = await startHomeAssistantDiscovery(discoveryClient, discoveryOptions, logger.child({ part: 'home-assistant' }));
      await announceDevices();
    } else {
      await clearHomeAssistantDiscovery(discoveryClient, discoveryOptions, logger.child({ part: 'home-assistant' }));
      discoveryClient.close();
    }
    if (mapping.modbusDevices.length + mapping.lineDevices.length > 0) {
      logger.info({ devices: mapping.modbusDevices.length + mapping.lineDevices.length, files: deviceFiles.length }, 'device adapters started');
    }

    for (const bridgeConfig of config.bridges) bridges.push(await startBridge(broker, bridgeConfig, logger));

    if (config.metrics && metrics) {
      metrics.registerCollector(brokerCollector(broker));
      metrics.registerCollector(() => ({
        devices: deviceStatus().map((d) => ({ device: d.id, online: d.online, errorsTotal: d.failedPolls })),
      }));
      metrics.registerCollector(bridgesCollector(() => bridges));
      metricsServer = await startMetricsServer({
        host: config.metrics.host, port: config.metrics.port, metrics, logger,
        // Every listener accepts a TCP connection and the database takes a write lock (nothing is written).
        health: gatewayHealth({ broker, listeners: () => listeners }),
      });
      logger.info(`metrics on http://${config.metrics.host}:${metricsServer.port}/metrics, health on /healthz`);
    }

    const reloadOnce = async (): Promise<{ ok: boolean; errors: string[] }> => {
      const errors: string[] = [];
      if (auth) {
        const result = auth.reload();
        if (!result.ok) errors.push(...result.errors);
      }
      for (const listener of listeners) {
        if (!listener.reloadTls) continue;
        try {
          listener.reloadTls();
          logger.info(`${listener.url}: certificate and key reloaded`);
        } catch (error) {
          const message = `${listener.url}: new certificate/key not usable, the old ones stay: ${(error as Error).message}`;
          errors.push(message);
          logger.error(message);
        }
      }
      const texts = new Map(deviceFiles.map((file) => [file, readText(file)]));
      const changed = deviceFiles.filter((file) => devicesByFile.get(file)?.text !== texts.get(file));
      if (changed.length > 0) {
        // All files are checked together (ids, buses and topics must stay unique across them).
        const result = loadDeviceMappings(deviceFiles);
        if (!result.ok) {
          errors.push(...result.errors);
          logger.error({ errors: result.errors }, 'new device mapping rejected; the running one is kept');
        } else {
          const before = new Set(deviceStatus().map((d) => d.id));
          for (const file of changed) {
            await devicesByFile.get(file)?.handle.stop();
            devicesByFile.delete(file);
            await startFile(file, texts.get(file)!);
          }
          for (const d of deviceStatus()) before.delete(d.id);
          for (const removed of before) metrics?.forgetDevice(removed);
          await announceDevices();
          logger.info({ files: changed }, `device mappings reloaded: ${changed.length} file(s) changed, the others keep running`);
        }
      }
      return { ok: errors.length === 0, errors };
    };
    // Two SIGHUPs in a row must not restart the same devices twice at once.
    let reloading: Promise<unknown> = Promise.resolve();
    const reload = (): Promise<{ ok: boolean; errors: string[] }> => {
      const next = reloading.then(reloadOnce);
      reloading = next.catch(() => undefined);
      return next;
    };

    return { broker, listeners, get metricsServer() { return metricsServer; }, reload, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** A ready mosquitto_sub line for the first (plain MQTT) listener. */
function watchCommand(listener: OpenListener, hasPasswordFile: boolean): string {
  const host = listener.host === '0.0.0.0' || listener.host === '::' ? '127.0.0.1' : listener.host;
  const credentials = listener.allowAnonymous || !hasPasswordFile ? '' : ' -u USER -P PASSWORD';
  return `mosquitto_sub -h ${host} -p ${listener.port}${credentials} -t 'fieldgate/#' -v`;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return `missing:${file}`;
  }
}
