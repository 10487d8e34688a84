// The shipped examples run, not just pass `check`: the Pi config as the systemd unit runs it on a
// machine without its RS-485 adapter (users, ACL, the meter offline, nothing stops), and the cloud
// bridge config against a real Mosquitto standing in for the cloud.
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/peers.js';
import { MosquittoRemote } from '../bridge/helpers.js';
import { ensureBuilt, freePort, GatewayProcess, ROOT, runCli, tempDir, waitFor } from './helpers.js';

describe('examples/pi-rs485-sdm120.json without its serial adapter', () => {
  let dir: string;
  let gateway: GatewayProcess | undefined;

  beforeAll(() => {
    ensureBuilt();
    dir = tempDir('fieldgate-example-run-');
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs, takes users from its password file, applies its ACL and marks the meter offline', async () => {
    fs.cpSync(path.join(ROOT, 'examples'), dir, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'pi-rs485-sdm120.json'), 'utf8'));
    const mqttPort = await freePort();
    // Same config, on free ports and a temp data directory; the serial path stays (it does not exist here).
    config.broker.port = mqttPort;
    config.broker.dataDir = path.join(dir, 'data');
    config.listeners[0].port = await freePort();
    config.metrics.port = await freePort();
    fs.writeFileSync(path.join(dir, 'fieldgate.json'), JSON.stringify(config));
    expect((await runCli(['passwd', '-b', path.join(dir, 'passwd'), 'alice', 'alice-pw'])).code).toBe(0);
    expect((await runCli(['passwd', '-b', path.join(dir, 'passwd'), 'bob', 'bob-pw'])).code).toBe(0);

    gateway = new GatewayProcess(['--config', path.join(dir, 'fieldgate.json')], dir);
    await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the gateway to start (listeners open last)');

    const bob = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, username: 'bob', password: 'bob-pw', reconnectPeriod: 0, protocolVersion: 5 });
    const seen = new Map<string, string>();
    bob.on('message', (topic, payload) => seen.set(topic, payload.toString()));
    await bob.subscribeAsync('fieldgate/#');
    await waitFor(() => seen.get('fieldgate/garage/meter/availability') === 'offline', 'the meter to be reported offline');
    // examples/acl: everyone reads fieldgate/#, only alice may write there.
    await expect(bob.subscribeAsync('elsewhere/#')).rejects.toThrow(/Not authorized/);
    const alice = await mqtt.connectAsync({ host: '127.0.0.1', port: mqttPort, username: 'alice', password: 'alice-pw', reconnectPeriod: 0 });
    await expect(bob.publishAsync('fieldgate/garage/note', 'from bob', { qos: 1 })).rejects.toThrow(/Not authorized/);
    await alice.publishAsync('fieldgate/garage/note', 'from alice', { qos: 1 });
    await waitFor(() => seen.get('fieldgate/garage/note') === 'from alice', "alice's note");
    await Promise.all([alice.endAsync(), bob.endAsync()]);

    const metrics = await (await fetch(`http://127.0.0.1:${config.metrics.port}/metrics`)).text();
    expect(metrics).toMatch(/^fieldgate_device_online\{device="meter"\} 0$/m);
    expect(gateway.running).toBe(true);
    gateway.signal('SIGTERM');
    expect((await gateway.exited).code).toBe(0);
  });
});

describe.skipIf(!requireTool('mosquitto'))('examples/cloud-bridge.json against a Mosquitto "cloud"', () => {
  let dir: string;
  let cloud: MosquittoRemote;
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-example-bridge-');
    cloud = new MosquittoRemote();
    await cloud.start();
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
    await cloud?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('forwards the demo readings under fleet/gw-1/ and takes the relay command back from the cloud', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/cloud-bridge.json'), 'utf8'));
    // The same bridge, pointed at a local Mosquitto without TLS; free ports, temp data.
    config.bridges[0].url = `mqtt://127.0.0.1:${cloud.port}`;
    config.broker.port = await freePort();
    config.broker.dataDir = path.join(dir, 'data');
    config.metrics.port = await freePort();
    fs.writeFileSync(path.join(dir, 'fieldgate.json'), JSON.stringify(config));
    gateway = new GatewayProcess(['--config', path.join(dir, 'fieldgate.json')], dir);

    const watcher = await mqtt.connectAsync({ host: '127.0.0.1', port: cloud.port, reconnectPeriod: 0 });
    const seen = new Map<string, string>();
    watcher.on('message', (topic, payload) => seen.set(topic, payload.toString()));
    await watcher.subscribeAsync('fleet/gw-1/#', { qos: 1 });
    await waitFor(() => seen.has('fleet/gw-1/fieldgate/demo-meter/power') && seen.get('fleet/gw-1/status') === 'online', 'readings and status in the cloud');
    expect(Number(seen.get('fleet/gw-1/fieldgate/demo-meter/voltage'))).toBeGreaterThan(200);

    await watcher.publishAsync('fleet/gw-1/fieldgate/demo-meter/relay/set', 'false', { qos: 1 });
    await waitFor(() => seen.get('fleet/gw-1/fieldgate/demo-meter/relay') === 'false' && seen.get('fleet/gw-1/fieldgate/demo-meter/power') === '0', 'the relay off, seen from the cloud');
    await watcher.endAsync();
    gateway.signal('SIGTERM');
    expect((await gateway.exited).code).toBe(0);
  });
});
