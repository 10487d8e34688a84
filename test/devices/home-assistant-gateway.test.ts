// Home Assistant MQTT discovery end to end: a running gateway (broker, demo meter on Modbus TCP, a
// second simulated meter) watched by a real MQTT.js client subscribed to homeassistant/# as Home
// Assistant subscribes, which also sends commands and its birth message the way Home Assistant does.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { embeddedDefaultConfig, parseGatewayConfig } from '../../src/config/gateway-config.js';
import { writeDemoMapping } from '../../src/demo/demo-mapping.js';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { clearHomeAssistantDiscovery, gatewayDiscoveryConfig, startHomeAssistantDiscovery } from '../../src/devices/home-assistant/index.js';
import { loadDeviceMapping } from '../../src/devices/mapping-schema.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

/** An MQTT.js client that records everything it receives, in order. */
async function watcher(port: number, filters: string[]): Promise<{ client: MqttClient; seen: Seen[] }> {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, clientId: `ha-${Math.random().toString(16).slice(2)}` });
  const seen: Seen[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filters, { qos: 1 });
  return { client, seen };
}

const configTopic = (topic: string) => /^homeassistant\/[a-z_]+\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/config$/.test(topic);

function meterB(port: number, points: Array<Record<string, unknown>>) {
  return {
    buses: [{ id: 'bus-b', type: 'modbus-tcp', host: '127.0.0.1', port }],
    devices: [{ id: 'meter-b', name: 'Garage meter', manufacturer: 'Eastron', model: 'SDM120', bus: 'bus-b', unitId: 1, pollIntervalMs: 300, timeoutMs: 1000, points }],
  };
}
const voltage = { name: 'voltage', table: 'input', address: 0, type: 'float32', unit: 'V', decimals: 1 };
const frequency = { name: 'frequency', table: 'input', address: 70, type: 'float32', unit: 'Hz', decimals: 2 };

describe('Home Assistant discovery from a running gateway', () => {
  let dir: string;
  let meters: SimulatedMeter[] = [];
  let gateway: Gateway | undefined;
  let port: number;
  let ha: { client: MqttClient; seen: Seen[] };
  const clients: MqttClient[] = [];
  let bFile: string;
  let configInput: Record<string, unknown>;
  /** The latest config payload per topic, as Home Assistant would hold it. */
  const configsIn = (seen: Seen[]) => {
    const latest = new Map<string, string>();
    for (const m of seen) if (configTopic(m.topic)) latest.set(m.topic, m.payload);
    return latest;
  };
  const latestValue = (seen: Seen[], topic: string) => seen.filter((m) => m.topic === topic).at(-1)?.payload;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-ha-gw-'));
    meters = [await startSimulatedMeter({ seed: 21 }), await startSimulatedMeter({ seed: 22 })];
    const demoFile = writeDemoMapping(path.join(dir, 'demo'), meters[0].port);
    // Faster polls than the shipped 2 s keep the test short.
    const demo = JSON.parse(readFileSync(demoFile, 'utf8'));
    demo.devices[0].pollIntervalMs = 300;
    for (const p of demo.devices[0].points) delete p.pollIntervalMs;
    writeFileSync(demoFile, JSON.stringify(demo));
    bFile = path.join(dir, 'b.json');
    writeFileSync(bFile, JSON.stringify(meterB(meters[1].port, [voltage])));
    configInput = { gatewayId: 'test-gw', broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 }, devices: [demoFile, bFile], homeAssistant: { discovery: true } };
    gateway = await startGateway(parseGatewayConfig(configInput, 'test config', dir), silentLogger);
    port = gateway.listeners[0].port;
    ha = await watcher(port, ['homeassistant/#', 'fieldgate/#']);
    clients.push(ha.client);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await gateway?.stop();
    await Promise.all(meters.map((m) => m.stop()));
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('announces every point with retained configs that a new subscriber gets at once', async () => {
    const configs = await waitFor(() => {
      const latest = configsIn(ha.seen);
      return latest.size >= 10 ? latest : undefined;
    }, 'the configs of the gateway, the demo meter (8 points) and meter-b (1 point)');
    expect([...configs.keys()].sort()).toEqual([
      'homeassistant/sensor/test-gw/devices_online/config',
      'homeassistant/sensor/test-gw_demo-meter/current/config',
      'homeassistant/sensor/test-gw_demo-meter/energy-import/config',
      'homeassistant/sensor/test-gw_demo-meter/energy-total/config',
      'homeassistant/sensor/test-gw_demo-meter/frequency/config',
      'homeassistant/sensor/test-gw_demo-meter/power-factor/config',
      'homeassistant/sensor/test-gw_demo-meter/power/config',
      'homeassistant/sensor/test-gw_demo-meter/voltage/config',
      'homeassistant/sensor/test-gw_meter-b/voltage/config',
      'homeassistant/switch/test-gw_demo-meter/relay/config',
    ]);
    // Subscribed after the gateway started: every config came as a retained message.
    expect(ha.seen.filter((m) => configTopic(m.topic)).every((m) => m.retain)).toBe(true);
    const b = JSON.parse(configs.get('homeassistant/sensor/test-gw_meter-b/voltage/config')!);
    expect(b).toMatchObject({
      unique_id: 'fieldgate:test-gw:meter-b:voltage',
      state_topic: 'fieldgate/meter-b/voltage',
      availability_topic: 'fieldgate/meter-b/availability',
      device_class: 'voltage',
      device: { identifiers: ['fieldgate:test-gw:meter-b'], name: 'Garage meter', manufacturer: 'Eastron', model: 'SDM120', via_device: 'fieldgate:test-gw' },
    });
    // The topics a config names are the ones the gateway really publishes on.
    await waitFor(() => latestValue(ha.seen, b.availability_topic) === b.payload_available, 'meter-b to be available');
    await waitFor(() => Number(latestValue(ha.seen, b.state_topic)) > 200, 'a voltage reading on the state topic');
    // The gateway's own entity counts the devices that say they are online.
    const gatewayConfig = JSON.parse(configs.get('homeassistant/sensor/test-gw/devices_online/config')!);
    expect(gatewayConfig.device).toMatchObject({ identifiers: [b.device.via_device], name: 'fieldgate test-gw' });
    await waitFor(() => latestValue(ha.seen, gatewayConfig.state_topic) === '2', 'two devices online');
  }, 60_000);

  it("a switch's command_topic switches the demo relay, and its state topic follows", async () => {
    const relay = JSON.parse(await waitFor(() => configsIn(ha.seen).get('homeassistant/switch/test-gw_demo-meter/relay/config'), 'the relay config'));
    await waitFor(() => latestValue(ha.seen, relay.state_topic) === relay.payload_on, 'the relay to read on');
    // Home Assistant publishes payload_off on command_topic when the user flips the switch.
    await ha.client.publishAsync(relay.command_topic, relay.payload_off);
    await waitFor(() => !meters[0].relayOn, 'the simulated relay to open');
    await waitFor(() => latestValue(ha.seen, relay.state_topic) === relay.payload_off, 'the state topic to say off');
    await waitFor(() => latestValue(ha.seen, 'fieldgate/demo-meter/power') === '0', 'the load to drop to 0 W');
    await ha.client.publishAsync(relay.command_topic, relay.payload_on);
    await waitFor(() => meters[0].relayOn, 'the simulated relay to close');
    await waitFor(() => latestValue(ha.seen, relay.state_topic) === relay.payload_on, 'the state topic to say on');
  }, 60_000);

  it("Home Assistant's birth message makes the gateway publish every config again", async () => {
    const before = configsIn(ha.seen);
    const mark = ha.seen.length;
    // As Home Assistant does after (re)starting: "online" on <prefix>/status, not retained.
    await ha.client.publishAsync('homeassistant/status', 'online', { qos: 1 });
    const again = await waitFor(() => {
      const latest = configsIn(ha.seen.slice(mark));
      return latest.size === before.size ? latest : undefined;
    }, 'every config to be published again');
    expect(again).toEqual(before);
  }, 60_000);

  it('a reload that changes a mapping announces new points; one that removes a device clears its configs', async () => {
    writeFileSync(bFile, JSON.stringify(meterB(meters[1].port, [voltage, frequency])));
    expect(await gateway!.reload()).toEqual({ ok: true, errors: [], restartNeeded: [] });
    const frequencyConfig = await waitFor(() => configsIn(ha.seen).get('homeassistant/sensor/test-gw_meter-b/frequency/config'), 'the new point to be announced');
    expect(JSON.parse(frequencyConfig)).toMatchObject({ device_class: 'frequency', state_topic: 'fieldgate/meter-b/frequency' });

    writeFileSync(bFile, JSON.stringify({ buses: [], devices: [] }));
    expect(await gateway!.reload()).toEqual({ ok: true, errors: [], restartNeeded: [] });
    const bTopics = ['homeassistant/sensor/test-gw_meter-b/voltage/config', 'homeassistant/sensor/test-gw_meter-b/frequency/config'];
    // An empty retained message is how Home Assistant is told to remove an entity.
    await waitFor(() => bTopics.every((t) => configsIn(ha.seen).get(t) === ''), 'empty configs for both meter-b points');
    await waitFor(() => latestValue(ha.seen, 'homeassistant/sensor/test-gw/devices_online/state') === '1', 'one device online');
    const retained = gateway!.broker.retainedFor('homeassistant/#').map((m) => m.topic);
    expect(retained.filter((t) => t.includes('meter-b'))).toEqual([]);
    expect(retained.filter((t) => t.includes('demo-meter'))).toHaveLength(8);
    // A Home Assistant that connects now learns of the demo meter only.
    const late = await watcher(port, ['homeassistant/#']);
    clients.push(late.client);
    await waitFor(() => late.seen.length >= 10, 'the retained configs of the gateway and the demo meter, and the gateway state');
    expect(late.seen.map((m) => m.topic).filter((t) => t.includes('meter-b'))).toEqual([]);
  }, 60_000);

  it('restarted with discovery off, the gateway removes what it announced before (the broker kept it on disk)', async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
    await gateway!.stop();
    gateway = undefined;
    gateway = await startGateway(parseGatewayConfig({ ...configInput, homeAssistant: { discovery: false } }, 'test config', dir), silentLogger);
    const retained = gateway.broker.retainedFor('homeassistant/#');
    expect(retained.map((m) => `${m.topic} ${m.payload.length}`)).toEqual([]);
    // The devices themselves still run and publish.
    const watcherAfter = await watcher(gateway.listeners[0].port, ['fieldgate/demo-meter/voltage']);
    clients.push(watcherAfter.client);
    await waitFor(() => watcherAfter.seen.length > 0, 'a demo reading after the restart');
  }, 60_000);
});

describe('configs a previous run left on the broker', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = new Broker({ dataDir: null, sysIntervalMs: 0 });
    await broker.start();
  });
  afterAll(async () => {
    await broker?.close();
  });

  it('those of this gateway whose device is gone are cleared; other gateways\' and other programs\' stay', async () => {
    const seed = broker.createLocalClient('seed');
    const stale = { name: 'Old', unique_id: 'x', state_topic: 'fieldgate/old/x', device: { identifiers: ['fieldgate:gw1:old'], via_device: 'fieldgate:gw1' }, origin: { name: 'fieldgate' } };
    const otherGateway = { ...stale, device: { identifiers: ['fieldgate:gw2:old'], via_device: 'fieldgate:gw2' } };
    const zigbee = { name: 'Lamp', unique_id: 'lamp', state_topic: 'zigbee2mqtt/lamp', device: { identifiers: ['zigbee2mqtt_0x01'] }, origin: { name: 'Zigbee2MQTT' } };
    await seed.publish('homeassistant/sensor/gw1_old/x/config', JSON.stringify(stale), { qos: 1, retain: true });
    await seed.publish('homeassistant/sensor/gw2_old/x/config', JSON.stringify(otherGateway), { qos: 1, retain: true });
    await seed.publish('homeassistant/light/0x01/light/config', JSON.stringify(zigbee), { qos: 1, retain: true });
    await seed.publish('homeassistant/sensor/legacy/thing/config', 'not json', { qos: 1, retain: true });

    const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-ha-left-'));
    try {
      const file = writeDemoMapping(dir, 1502);
      const loaded = loadDeviceMapping(file);
      if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
      const discovery = await startHomeAssistantDiscovery(broker.createLocalClient('ha-discovery'), { prefix: 'homeassistant', gatewayId: 'gw1' }, silentLogger);
      await discovery.update(loaded.mapping);
      const retained = new Set(broker.retainedFor('homeassistant/#').map((m) => m.topic));
      expect(retained.has('homeassistant/sensor/gw1_old/x/config')).toBe(false);
      expect(retained.has('homeassistant/sensor/gw2_old/x/config')).toBe(true);
      expect(retained.has('homeassistant/light/0x01/light/config')).toBe(true);
      expect(retained.has('homeassistant/sensor/legacy/thing/config')).toBe(true);
      expect(discovery.topics()).toHaveLength(9);
      for (const topic of discovery.topics()) expect(retained.has(topic), topic).toBe(true);
      discovery.stop();

      // Discovery turned off: this gateway's configs go (its own included), the others stay.
      const removed = await clearHomeAssistantDiscovery(broker.createLocalClient('ha-off'), { prefix: 'homeassistant', gatewayId: 'gw1' }, silentLogger);
      expect(removed).toBe(9);
      const after = new Set(broker.retainedFor('homeassistant/#').map((m) => m.topic));
      expect([...after].sort()).toEqual(['homeassistant/light/0x01/light/config', 'homeassistant/sensor/gw2_old/x/config', 'homeassistant/sensor/legacy/thing/config']);
      expect(after.has(gatewayDiscoveryConfig({ prefix: 'homeassistant', gatewayId: 'gw1' }).topic)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the gateway setting', () => {
  it('is off unless asked for, and on in the embedded demo default', () => {
    expect(parseGatewayConfig({}, 'test', '/tmp').homeAssistant).toEqual({ discovery: false, prefix: 'homeassistant' });
    expect(parseGatewayConfig({ homeAssistant: { discovery: true, prefix: 'ha' } }, 'test', '/tmp').homeAssistant).toEqual({ discovery: true, prefix: 'ha' });
    expect(embeddedDefaultConfig().homeAssistant).toEqual({ discovery: true, prefix: 'homeassistant' });
    expect(() => parseGatewayConfig({ homeAssistant: { discovery: true, prefix: 'ha/#' } }, 'cfg.json', '/tmp')).toThrow(/cfg\.json: homeAssistant\.prefix: no "\+", "#" or NUL/);
  });
});
