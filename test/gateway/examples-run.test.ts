// The shipped Pi example as the systemd unit runs it (`fieldgate run --config …`), on a machine
// without its RS-485 adapter: the gateway serves MQTT with users and the ACL, and the missing meter
// is reported offline instead of stopping anything.
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    await gateway.waitForLog((l) => l.msg.startsWith('metrics on '), 'the gateway to start');

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
