// The demo as the gateway will run it: simulated meter + demo mapping + device runtime + broker,
// watched by an MQTT.js subscriber, with the relay switched through …/set.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { writeDemoMapping } from '../../src/demo/demo-mapping.js';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { loadDeviceMapping, startDevices, type DevicesHandle } from '../../src/devices/index.js';
import { silentLogger } from '../../src/log.js';

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('demo: simulated SDM120 through the gateway', () => {
  let dir: string;
  let meter: SimulatedMeter;
  let broker: Broker;
  let devices: DevicesHandle | undefined;
  let watcher: MqttClient | undefined;
  let port: number;
  const latest = new Map<string, string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-demo-e2e-'));
    meter = await startSimulatedMeter({ seed: 11 });
    broker = new Broker({ dataDir: null, sysIntervalMs: 0 });
    await broker.start();
    ({ port } = await broker.listen({ port: 0, host: '127.0.0.1' }));
    const loaded = loadDeviceMapping(writeDemoMapping(dir, meter.port));
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    // Faster polls than the shipped 2 s keep the test short.
    for (const d of loaded.mapping.modbusDevices) for (const p of d.points) p.pollIntervalMs = 200;
    devices = await startDevices(loaded.mapping, (id) => broker.createLocalClient(id), silentLogger);
    watcher = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0 });
    watcher.on('message', (topic, payload) => latest.set(topic, payload.toString()));
    await watcher.subscribeAsync('fieldgate/demo-meter/#');
  });
  afterAll(async () => {
    await watcher?.endAsync(true);
    await devices?.stop();
    await broker?.close();
    await meter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes plausible readings', async () => {
    await waitFor(() => ['voltage', 'power', 'frequency', 'energy-total', 'relay'].every((n) => latest.has(`fieldgate/demo-meter/${n}`)), 'demo readings');
    const value = (name: string) => Number(latest.get(`fieldgate/demo-meter/${name}`));
    expect(value('voltage')).toBeGreaterThan(220);
    expect(value('voltage')).toBeLessThan(240);
    expect(value('frequency')).toBeCloseTo(50, 0);
    expect(value('power')).toBeGreaterThan(50);
    expect(value('energy-total')).toBeGreaterThan(1234);
    expect(latest.get('fieldgate/demo-meter/relay')).toBe('true');
    expect(devices!.status()[0]).toMatchObject({ id: 'demo-meter', online: true });
  });

  it('switches the relay through …/set and the load drops to 0 W', async () => {
    await watcher!.publishAsync('fieldgate/demo-meter/relay/set', 'false', { qos: 1 });
    await waitFor(() => meter.relayOn === false, 'the relay to switch off');
    await waitFor(() => latest.get('fieldgate/demo-meter/relay') === 'false', 'relay=false to be published');
    await waitFor(() => latest.get('fieldgate/demo-meter/power') === '0', 'power 0 W to be published');
    await watcher!.publishAsync('fieldgate/demo-meter/relay/set', 'on', { qos: 1 });
    await waitFor(() => meter.relayOn && Number(latest.get('fieldgate/demo-meter/power')) > 50, 'the load to return');
  });
});
