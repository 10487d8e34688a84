// A fleet tool in the cloud manages the gateway through its bridge: a real Mosquitto "cloud", the
// bridge's `in` rule brings the requests in, its `out` rules take the answers (on the v5 Response
// Topic the tool chose, or the plain response topic) and the state topics back up. No port opened
// on the gateway.
import fs from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { MosquittoRemote } from '../bridge/helpers.js';
import { tempDir, waitFor } from '../gateway/helpers.js';

const GW = 'fleet-gw';
const NS = `fieldgate/${GW}`;

describe('management API through a bridge', () => {
  let dir: string;
  let cloud: MosquittoRemote;
  let gateway: Gateway;
  let tool: MqttClient;

  beforeAll(async () => {
    dir = tempDir('fieldgate-mgmt-bridge-');
    cloud = new MosquittoRemote();
    const cloudPort = await cloud.start();
    gateway = await startGateway(parseGatewayConfig({
      gatewayId: GW, demo: true,
      broker: { port: 0, dataDir: 'data', sysIntervalSeconds: 0 },
      bridges: [{
        name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: GW, protocolVersion: 5,
        reconnect: { minMs: 50, maxMs: 300 },
        rules: [
          { direction: 'in', filter: `${NS}/request/#` },
          { direction: 'out', filter: `${NS}/response/#` },
          { direction: 'out', filter: `${NS}/state/#` },
          { direction: 'out', filter: 'fleet/replies/#' },
        ],
      }],
    }, 'bridge management test', dir), silentLogger, { stateIntervalMs: 200 });
    tool = await mqtt.connectAsync(`mqtt://127.0.0.1:${cloudPort}`, { protocolVersion: 5, reconnectPeriod: 0, clientId: 'fleet-tool' });
    await tool.subscribeAsync(['fleet/replies/#', `${NS}/response/#`, `${NS}/state/#`], { qos: 1 });
  });

  afterAll(async () => {
    await tool?.endAsync();
    await gateway?.stop();
    await cloud?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a v5 request from the cloud on its Response Topic with the Correlation Data, and a 3.1.1-style one on the response topic', async () => {
    const answers: { topic: string; body: any; correlationData?: Buffer }[] = [];
    tool.on('message', (topic, payload, packet) => answers.push({ topic, body: JSON.parse(payload.toString()), correlationData: packet.properties?.correlationData }));
    // Until the bridge is connected and subscribed, a request falls on the floor: ask again.
    const v5 = await waitFor(async () => {
      const correlationData = Buffer.from(`fleet-${Math.random()}`);
      await tool.publishAsync(`${NS}/request/bridges`, '{}', { qos: 1, properties: { responseTopic: 'fleet/replies/tool', correlationData } });
      return waitFor(() => answers.find((a) => a.correlationData?.equals(correlationData)), 'an answer', 1_000).catch(() => undefined);
    }, 'an answer through the bridge', 20_000);
    expect(v5.topic).toBe('fleet/replies/tool');
    expect(v5.body.status).toBe('ok');
    expect(v5.body.data).toEqual([expect.objectContaining({ name: 'cloud', state: 'connected' })]);

    await tool.publishAsync(`${NS}/request/client/disconnect`, JSON.stringify({ transaction: 'fleet-1' }), { qos: 1 });
    const plain = await waitFor(() => answers.find((a) => a.body.transaction === 'fleet-1'), 'the plain answer', 10_000);
    expect(plain.topic).toBe(`${NS}/response/client/disconnect`);
    expect(plain.body.errors[0]).toMatchObject({ path: 'clientId', message: 'missing: expected string' });

    // The state topics go up too (info is retained on the gateway and forwarded).
    await waitFor(() => answers.find((a) => a.topic === `${NS}/state/devices`), 'state/devices in the cloud', 10_000);
  });

  it('answers a console action (device, with its points and bus state) from the cloud through the bridge', async () => {
    const answers: { body: any; correlationData?: Buffer }[] = [];
    tool.on('message', (_topic, payload, packet) => answers.push({ body: JSON.parse(payload.toString()), correlationData: packet.properties?.correlationData }));
    const answer = await waitFor(async () => {
      const correlationData = Buffer.from(`fleet-device-${Math.random()}`);
      await tool.publishAsync(`${NS}/request/device`, JSON.stringify({ id: 'demo-meter' }), { qos: 1, properties: { responseTopic: 'fleet/replies/tool', correlationData } });
      const got = await waitFor(() => answers.find((a) => a.correlationData?.equals(correlationData)), 'an answer', 2_000).catch(() => undefined);
      return got?.body.data?.points?.[0]?.quality === 'good' ? got : undefined;
    }, 'the device answer through the bridge', 20_000);
    expect(answer.body.data).toMatchObject({ id: 'demo-meter', availability: 'online', bus: { id: 'demo', state: 'open' } });
    expect(answer.body.data.points[0]).toMatchObject({ name: 'voltage', unit: 'V', quality: 'good' });
  });
});
