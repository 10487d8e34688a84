// The gateway's transitions with real peers: `fieldgate run` as a child process, a Mosquitto "cloud"
// behind a bridge, and one Modbus TCP device whose connects hang (a meter still booting after a power
// cut). What a QoS 1 publisher got a PUBACK for must reach the cloud, across the start and across a
// SIGTERM, and the stop must not wait for the device.
//
// Regression tests for issue 9, defects 1 and 2: on the old gateway the listeners opened before the
// bridges existed (the device start waited for the bus's 5 s connect timeout meanwhile), and a stop
// removed the bridges' subscriptions before the clients were disconnected and waited for the device.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MosquittoRemote, RemoteSubscriber } from '../bridge/helpers.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';
import { ensureBuilt, freePort, GatewayProcess, tempDir, waitFor } from './helpers.js';

const COMMIT_WINDOW_MS = 2;
/** SIGTERM to exit: 1 s plus the commit window is the promise; the rest is for a machine shared by many test runs. */
const STOP_SLACK_MS = 1000;

/** Publishes "0", "1", … at QoS 1 with a window in flight, recording which sequence numbers got a PUBACK. */
class SequencePublisher {
  readonly acked = new Set<number>();
  /** When each PUBACK arrived. */
  readonly ackedAt = new Map<number, number>();
  private next = 0;
  private closed = false;

  private constructor(readonly client: MqttClient, private readonly topic: string) {
    client.on('close', () => (this.closed = true));
    client.on('error', () => undefined);
  }

  /** Connects as soon as the listener takes connections (retrying every few ms), then publishes `window` at a time. */
  static async start(port: number, topic: string, window: number, protocolVersion: 4 | 5 = 4, until = Infinity): Promise<SequencePublisher> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const client = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion, reconnectPeriod: 0, connectTimeout: 2000, clientId: `seq-${topic.replace(/\W/g, '-')}-${Date.now()}` });
        const publisher = new SequencePublisher(client, topic);
        for (let i = 0; i < window; i++) publisher.publishNext(until);
        return publisher;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  private publishNext(until: number): void {
    if (this.closed || this.next >= until) return;
    const seq = this.next++;
    this.client.publish(this.topic, String(seq), { qos: 1 }, (error) => {
      if (error) return;
      this.acked.add(seq);
      this.ackedAt.set(seq, Date.now());
      this.publishNext(until);
    });
  }

  get done(): boolean {
    return this.closed;
  }

  async end(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

function missingAtCloud(acked: Set<number>, cloud: RemoteSubscriber, topic: string): number[] {
  const arrived = new Set(cloud.messages.filter((m) => m.topic === topic).map((m) => Number(m.payload)));
  return [...acked].filter((seq) => !arrived.has(seq)).sort((a, b) => a - b);
}

describe('lifecycle: start, SIGTERM and restart with a bridge to a Mosquitto cloud and a device whose connects hang', () => {
  let dir: string;
  let cloud: MosquittoRemote;
  let cloudSub: RemoteSubscriber;
  let blackhole: Blackhole;
  let configFile: string;
  let port: number;
  const gateways: GatewayProcess[] = [];
  const publishers: SequencePublisher[] = [];

  const startGateway = (): GatewayProcess => {
    const gateway = new GatewayProcess(['--config', configFile], dir);
    gateways.push(gateway);
    return gateway;
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir('fieldgate-lifecycle-');
    // The cloud keeps every message for its subscriber (its default queue limit drops QoS 1 under a burst).
    cloud = new MosquittoRemote(['max_queued_messages 0']);
    await cloud.start();
    cloudSub = await RemoteSubscriber.connect(`mqtt://127.0.0.1:${cloud.port}`, 'site/#');
    blackhole = await startBlackhole();
    // The device really hangs: a connect neither succeeds nor fails.
    const probe = net.connect(blackhole.port, '127.0.0.1');
    probe.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(probe.connecting).toBe(true);
    probe.destroy();

    port = await freePort();
    fs.mkdirSync(path.join(dir, 'devices'));
    fs.writeFileSync(path.join(dir, 'devices', 'booting-meter.json'), JSON.stringify({
      buses: [{ id: 'meter-bus', type: 'modbus-tcp', host: '127.0.0.1', port: blackhole.port }],
      devices: [{ id: 'booting-meter', bus: 'meter-bus', unitId: 1, pollIntervalMs: 500, points: [{ name: 'voltage', table: 'input', address: 0, type: 'float32' }] }],
    }));
    configFile = path.join(dir, 'fieldgate.json');
    fs.writeFileSync(configFile, JSON.stringify({
      broker: { port, dataDir: 'data', sysIntervalSeconds: 0, commitWindowMs: COMMIT_WINDOW_MS },
      devices: ['devices/booting-meter.json'],
      bridges: [{
        name: 'cloud', url: `mqtt://127.0.0.1:${cloud.port}`, clientId: 'lifecycle-gw', cleanSession: false,
        reconnect: { minMs: 100, maxMs: 1000 },
        rules: [{ direction: 'out', filter: 'lan/#', remotePrefix: 'site/' }],
      }],
    }));
  }, 120_000);

  afterAll(async () => {
    for (const p of publishers) await p.end();
    for (const g of gateways) await g.stop();
    await cloudSub?.close();
    await cloud?.dispose();
    await blackhole?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('defect 1: QoS 1 messages acknowledged right after the listener opens all reach the cloud; the start does not wait for the device', async () => {
    const gateway = startGateway();
    // Connect the moment the listener takes connections, and publish at once.
    const publisher = await SequencePublisher.start(port, 'lan/start', 50, 4, 2000);
    publishers.push(publisher);
    await waitFor(() => publisher.acked.size === 2000, 'every message acknowledged', 30_000);
    const started = gateway.logs.find((l) => l.msg.endsWith(' starting'))!;
    const ready = gateway.logs.find((l) => l.msg.startsWith('watch the readings: '))!;
    // The device's connect hangs for its 5 s timeout: the listeners must not have waited for it.
    expect(Number(ready.time) - Number(started.time)).toBeLessThan(3000);

    await waitFor(() => missingAtCloud(publisher.acked, cloudSub, 'site/lan/start').length === 0, 'every acknowledged message at the cloud', 30_000)
      .catch(() => undefined);
    const missing = missingAtCloud(publisher.acked, cloudSub, 'site/lan/start');
    expect({ acknowledged: publisher.acked.size, missing: missing.length, firstMissing: missing.slice(0, 10) }).toEqual({ acknowledged: 2000, missing: 0, firstMissing: [] });
    await publisher.end();
  }, 90_000);

  it('defect 2: messages acknowledged during a SIGTERM all reach the cloud (after a restart), and the stop takes at most ~1 s although the device hangs', async () => {
    for (const g of gateways) await g.stop();
    const cycles: Array<{ v4: SequencePublisher; v5: SequencePublisher; signalled: number; stopMs: number; deviceHanging: boolean }> = [];
    // SIGTERM right after the first PUBACK (the start-up window), in full flow, and at a random moment.
    const waits = [() => 0, () => 600, () => Math.floor(Math.random() * 1200)];
    for (const [cycle, wait] of waits.entries()) {
      // A fresh start each time, so the SIGTERM comes while the device's first connect hangs (its timeout is 5 s).
      const gateway = startGateway();
      // Two publishers, 3.1.1 and 5.0, publishing continuously through the SIGTERM.
      const v4 = await SequencePublisher.start(port, `lan/stop-v4-${cycle}`, 20, 4);
      const v5 = await SequencePublisher.start(port, `lan/stop-v5-${cycle}`, 20, 5);
      publishers.push(v4, v5);
      await waitFor(() => v4.acked.size > 0 && v5.acked.size > 0, 'the first PUBACKs', 20_000);
      await new Promise((r) => setTimeout(r, wait()));
      const deviceHanging = !gateway.logs.some((l) => l.msg === 'modbus bus cannot open' || l.msg === 'modbus bus open');
      const signalled = Date.now();
      gateway.signal('SIGTERM');
      const exit = await gateway.exited;
      const stopMs = Date.now() - signalled;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(v4.done && v5.done).toBe(true);
      const stoppedLine = gateway.logs.find((l) => l.msg === 'stopped');
      expect(stoppedLine).toBeDefined();
      const ackedAfterSignal = [v4, v5].reduce((n, p) => n + [...p.ackedAt.values()].filter((t) => t >= signalled).length, 0);
      console.info(`cycle ${cycle}: ${v4.acked.size + v5.acked.size} acknowledged; SIGTERM to exit ${stopMs} ms (the gateway's own measure: ${String(stoppedLine?.ms)} ms); ${ackedAfterSignal} PUBACKs arrived after the signal was sent; device connect hanging: ${deviceHanging}`);
      // Soft: the messages are checked below even when a stop was too slow.
      expect.soft(stopMs, `cycle ${cycle}: SIGTERM to exit took ${stopMs} ms`).toBeLessThanOrEqual(1000 + COMMIT_WINDOW_MS + STOP_SLACK_MS);
      cycles.push({ v4, v5, signalled, stopMs, deviceHanging });
    }
    // The stops found the device's connect hanging (on a loaded machine a cycle may pass its 5 s).
    expect(cycles.some((c) => c.deviceHanging)).toBe(true);

    // Whatever did not reach the cloud before a stop is in the outbox: the next start sends it.
    const restarted = startGateway();
    await restarted.waitForLog((l) => l.msg === 'bridge connected', 'the bridge to reconnect after the restart');
    for (const [cycle, { v4, v5, signalled }] of cycles.entries()) {
      for (const [publisher, topic] of [[v4, `site/lan/stop-v4-${cycle}`], [v5, `site/lan/stop-v5-${cycle}`]] as const) {
        await waitFor(() => missingAtCloud(publisher.acked, cloudSub, topic).length === 0, `every acknowledged ${topic} message at the cloud`, 30_000).catch(() => undefined);
        const missing = missingAtCloud(publisher.acked, cloudSub, topic);
        const afterSignal = missing.filter((seq) => publisher.ackedAt.get(seq)! >= signalled);
        expect({ topic, missing: missing.length, acknowledgedAfterSigterm: afterSignal.length, firstMissing: missing.slice(0, 10) })
          .toEqual({ topic, missing: 0, acknowledgedAfterSigterm: 0, firstMissing: [] });
      }
    }
    restarted.signal('SIGTERM');
    expect((await restarted.exited).code).toBe(0);
  }, 120_000);
});
