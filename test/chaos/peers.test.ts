// The chaos run blames every missing message on the gateway, so its cloud must not lose any itself. When the harness
// ran as root, Mosquitto switched to the "mosquitto" user, could not write its persistence file into the test's 0700
// directory, and lost the messages it had queued at every outage: with the hold stage on, the chaos run counted 151
// such losses against the gateway (the hold stage's default was turned off because of them). This checks the peer
// itself: a message queued for an offline persistent subscriber survives the cloud's stop and start.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../gateway/helpers.js';
import { requireTool } from '../helpers/peers.js';
import { CloudMosquitto } from './peers.js';

const haveMosquitto = requireTool('mosquitto');

describe.skipIf(!haveMosquitto)('chaos peers: the cloud Mosquitto', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('keeps a message queued for an offline persistent subscriber across its stop and start (as the outages do)', async () => {
    // The harness's own work directory is 0700, as mkdtemp makes it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-chaos-peer-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cloud = new CloudMosquitto(await freePort(), path.join(dir, 'cloud'));
    cleanup.push(() => cloud.stop());
    await cloud.start();

    const subscriber = () => mqtt.connect({ host: '127.0.0.1', port: cloud.port, clientId: 'peer-test-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
    const first = subscriber();
    await new Promise<void>((resolve, reject) => { first.once('connect', () => resolve()); first.once('error', reject); });
    await first.subscribeAsync('edge/#', { qos: 1 });
    await first.endAsync();

    const publisher = mqtt.connect({ host: '127.0.0.1', port: cloud.port, clientId: 'peer-test-pub', protocolVersion: 4, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { publisher.once('connect', () => resolve()); publisher.once('error', reject); });
    await publisher.publishAsync('edge/chaos/p0', 'p0:1:queued', { qos: 1 });
    await publisher.endAsync();

    await cloud.stop();
    expect(fs.existsSync(path.join(dir, 'cloud', 'mosquitto.db')), 'Mosquitto wrote its persistence file on the way out').toBe(true);
    await cloud.start();

    const second = subscriber();
    cleanup.push(() => { second.end(true); });
    const received = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 10_000);
      second.on('message', (_topic, payload) => {
        clearTimeout(timer);
        resolve(payload.toString());
      });
    });
    expect(received).toBe('p0:1:queued');
  }, 60_000);
});
