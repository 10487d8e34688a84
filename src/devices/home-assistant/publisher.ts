// Keeps Home Assistant's view of the devices current: publishes the discovery configs retained,
// again when Home Assistant announces itself (its birth message "online" on <prefix>/status), and
// clears (empty retained message) the configs of devices and points that are gone, including those
// a previous run left on the broker. Also keeps the gateway's own sensor (devices online) current.
import type { LocalClient, Message } from '../../broker/types.js';
import type { Logger } from '../../log.js';
import type { DeviceMapping } from '../mapping-schema.js';
import { lineDeviceTopicPrefix } from '../line/schema.js';
import { availabilityPayloads, buildDiscoveryConfigs, gatewayDiscoveryConfig, gatewayIdentifier, gatewayStateTopic, type DiscoveryOptions } from './discovery.js';

export interface HomeAssistantDiscovery {
  /** Announces the mapping's devices and clears the configs of those no longer in it. */
  update(mapping: Pick<DeviceMapping, 'modbusDevices' | 'lineDevices'>): Promise<void>;
  /** Publishes every current config again (as on Home Assistant's birth message). */
  republish(): Promise<void>;
  /** Topics of the configs currently announced. */
  topics(): string[];
  /** The configs currently announced: topic and payload (JSON text). */
  configs(): Array<{ topic: string; payload: string }>;
  stop(): void;
}

/**
 * Starts listening for Home Assistant's birth message and looks for configs a previous run of this
 * gateway left retained. Nothing is announced until the first `update`.
 */
export async function startHomeAssistantDiscovery(client: LocalClient, options: DiscoveryOptions, logger: Logger): Promise<HomeAssistantDiscovery> {
  const statusTopic = `${options.prefix}/status`;
  const current = new Map<string, string>();
  const leftOver = await retainedConfigsOfThisGateway(client, options);
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  const serial = (job: () => Promise<void>): Promise<void> => {
    const next = chain.then(job);
    chain = next.catch(() => undefined);
    return next;
  };
  const publish = (topic: string, payload: string) => client.publish(topic, payload, { qos: 1, retain: true });
  const availability = trackAvailability(client, (online) => {
    publish(gatewayStateTopic(options), String(online)).catch((err: unknown) => logger.warn({ err }, 'publishing the number of devices online failed'));
  });

  // A status message retained on the broker arrives at once; the first update announces everything anyway.
  let replaying = true;
  client.subscribe(statusTopic, (message: Message) => {
    if (stopped || (replaying && message.retain)) return;
    if (message.payload.toString('utf8').trim() !== 'online') return;
    logger.info({ topic: statusTopic, configs: current.size }, 'Home Assistant is online: publishing the discovery configs again');
    handle.republish().catch((err: unknown) => logger.warn({ err }, 'republishing Home Assistant discovery configs failed'));
  });
  setImmediate(() => (replaying = false));

  const handle: HomeAssistantDiscovery = {
    update(mapping) {
      return serial(async () => {
        if (stopped) return;
        // The gateway first: every device names it as the device it is connected through.
        const configs = [gatewayDiscoveryConfig(options), ...buildDiscoveryConfigs(mapping, options)];
        const next = new Map(configs.map((c) => [c.topic, JSON.stringify(c.payload)]));
        const gone = [...new Set([...current.keys(), ...leftOver])].filter((topic) => !next.has(topic));
        const changed = [...next].filter(([topic, payload]) => current.get(topic) !== payload);
        await Promise.all([...gone.map((topic) => publish(topic, '')), ...changed.map(([topic, payload]) => publish(topic, payload))]);
        leftOver.clear();
        current.clear();
        for (const [topic, payload] of next) current.set(topic, payload);
        availability.watch([...mapping.modbusDevices.map((d) => d.topicPrefix), ...mapping.lineDevices.map(lineDeviceTopicPrefix)].map((prefix) => `${prefix}/availability`));
        if (changed.length > 0 || gone.length > 0) {
          logger.info({ prefix: options.prefix, entities: next.size, published: changed.length, removed: gone.length }, `Home Assistant discovery: ${next.size} entities announced under ${options.prefix}/`);
        }
      });
    },
    republish() {
      return serial(async () => {
        if (stopped) return;
        await Promise.all([...current].map(([topic, payload]) => publish(topic, payload)));
      });
    },
    topics() {
      return [...current.keys()];
    },
    configs() {
      return [...current].map(([topic, payload]) => ({ topic, payload }));
    },
    stop() {
      stopped = true;
      client.unsubscribe(statusTopic);
      availability.stop();
    },
  };
  return handle;
}

/**
 * With discovery off: clears the configs an earlier run of this gateway left retained, so that Home
 * Assistant does not keep entities nobody announces any more. Returns how many were cleared.
 */
export async function clearHomeAssistantDiscovery(client: LocalClient, options: DiscoveryOptions, logger: Logger): Promise<number> {
  const leftOver = await retainedConfigsOfThisGateway(client, options);
  if (leftOver.size === 0) return 0;
  const clear = (topic: string) => client.publish(topic, '', { qos: 1, retain: true });
  await Promise.all([...[...leftOver].map(clear), clear(gatewayStateTopic(options))]);
  logger.info({ prefix: options.prefix, removed: leftOver.size }, `Home Assistant discovery is off: removed the ${leftOver.size} configs an earlier run published`);
  return leftOver.size;
}

/** Config topics retained on the broker that this gateway published (the gateway's own, and its devices'). */
async function retainedConfigsOfThisGateway(client: LocalClient, options: DiscoveryOptions): Promise<Set<string>> {
  const filter = `${options.prefix}/+/+/+/config`;
  const via = gatewayIdentifier(options.gatewayId);
  const found = new Set<string>();
  client.subscribe(filter, (message) => {
    if (!message.retain || message.payload.length === 0) return;
    try {
      const payload = JSON.parse(message.payload.toString('utf8')) as { device?: { via_device?: unknown; identifiers?: unknown }; origin?: { name?: unknown } };
      if (payload.origin?.name !== 'fieldgate') return;
      const gatewayItself = Array.isArray(payload.device?.identifiers) && payload.device.identifiers.includes(via);
      if (payload.device?.via_device === via || gatewayItself) found.add(message.topic);
    } catch {
      // Someone else's config, not JSON: not ours.
    }
  });
  // Retained messages are handed to a new in-process subscription within this turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  client.unsubscribe(filter);
  return found;
}

/** Follows the availability topics of the running devices and reports how many say "online" when that changes. */
function trackAvailability(client: LocalClient, report: (online: number) => void) {
  const online = new Map<string, boolean>();
  let reported: number | undefined;
  let stopped = false;
  const reportIfChanged = () => {
    if (stopped) return;
    const count = [...online.values()].filter(Boolean).length;
    if (count === reported) return;
    reported = count;
    report(count);
  };
  return {
    watch(topics: string[]) {
      const wanted = new Set(topics);
      for (const topic of online.keys()) {
        if (wanted.has(topic)) continue;
        client.unsubscribe(topic);
        online.delete(topic);
      }
      for (const topic of wanted) {
        if (online.has(topic)) continue;
        online.set(topic, false);
        client.subscribe(topic, (message) => {
          if (!online.has(topic)) return;
          online.set(topic, message.payload.toString('utf8') === availabilityPayloads.available);
          reportIfChanged();
        });
      }
      // After the retained availability messages of new subscriptions (delivered within this turn).
      setImmediate(reportIfChanged);
    },
    stop() {
      stopped = true;
      for (const topic of online.keys()) client.unsubscribe(topic);
      online.clear();
    },
  };
}
