// The broker-side series of a running gateway, scraped over HTTP: sessions, queued and dropped
// messages, authentication failures, and connections per listener (MQTT.js over TCP and WebSocket).
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogger } from '../helpers/broker.js';
import { tempDir, waitFor } from '../gateway/helpers.js';

function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('gateway metrics: sessions, queues, drops, auth failures, listeners', () => {
  let dir: string;
  let gateway: Gateway;
  const clients: MqttClient[] = [];
  const log = captureLogger();
  const scrape = async () => (await fetch(`http://127.0.0.1:${gateway.metricsServer!.port}/metrics`)).text();

  beforeAll(async () => {
    dir = tempDir('fieldgate-metrics-counters-');
    addOrUpdateUser(path.join(dir, 'passwd'), 'alice', 'a-pw');
    const config = parseGatewayConfig({
      broker: { host: '127.0.0.1', port: 0, dataDir: 'data', sysIntervalSeconds: 0, maxQueuedMessages: 3, queuePolicy: 'drop-oldest' },
      listeners: [{ type: 'ws', host: '127.0.0.1', port: 0 }],
      auth: { passwordFile: 'passwd' },
      metrics: { host: '127.0.0.1', port: 0 },
    }, 'metrics-counters', dir);
    gateway = await startGateway(config, log.logger);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts what happens', async () => {
    const [tcp, ws] = gateway.listeners;
    const before = await scrape();
    expect(series(before, 'fieldgate_auth_failures_total')).toBe(0);
    expect(series(before, 'fieldgate_sessions')).toBe(0);

    await expect(mqtt.connectAsync({ host: '127.0.0.1', port: tcp!.port, username: 'alice', password: 'wrong', reconnectPeriod: 0 })).rejects.toThrow();
    await expect(mqtt.connectAsync({ host: '127.0.0.1', port: tcp!.port, username: 'bob', password: 'x', reconnectPeriod: 0, protocolVersion: 5 })).rejects.toThrow();

    // An offline persistent session gets 5 QoS 1 messages with room for 3: 3 queued, 2 dropped.
    const away = await mqtt.connectAsync({ host: '127.0.0.1', port: tcp!.port, username: 'alice', password: 'a-pw', clientId: 'away', clean: false, reconnectPeriod: 0 });
    await away.subscribeAsync('q/#', { qos: 1 });
    await away.endAsync();
    const publisher = await mqtt.connectAsync(`ws://127.0.0.1:${ws!.port}/mqtt`, { username: 'alice', password: 'a-pw', clientId: 'pub', reconnectPeriod: 0 });
    clients.push(publisher);
    const viaTcp = await mqtt.connectAsync({ host: '127.0.0.1', port: tcp!.port, username: 'alice', password: 'a-pw', clientId: 'tcp-1', reconnectPeriod: 0 });
    clients.push(viaTcp);
    for (let i = 0; i < 5; i++) await publisher.publishAsync(`q/${i}`, String(i), { qos: 1 });

    const text = await waitFor(async () => {
      const t = await scrape();
      return series(t, 'fieldgate_messages_dropped_total') === 2 ? t : undefined;
    }, 'the drops on /metrics');
    expect(series(text, 'fieldgate_auth_failures_total')).toBe(2);
    expect(series(text, 'fieldgate_sessions')).toBe(3); // away (offline), pub, tcp-1
    expect(series(text, 'fieldgate_messages_queued')).toBe(3);
    expect(series(text, `fieldgate_listener_clients_connected{listener="${tcp!.url}"}`)).toBe(1);
    expect(series(text, `fieldgate_listener_clients_connected{listener="${ws!.url}"}`)).toBe(1);
    expect(series(text, `fieldgate_listener_connections{listener="${ws!.url}"}`)).toBe(1);
    // TCP: the two refused, away, tcp-1 were accepted; tcp-1 is still open.
    expect(series(text, `fieldgate_listener_connections_total{listener="${tcp!.url}"}`)).toBe(4);
    expect(series(text, `fieldgate_listener_connections{listener="${tcp!.url}"}`)).toBe(1);
    expect(text).toMatch(/# TYPE fieldgate_messages_dropped_total counter/);
    // The refusals' log lines name the user and the listener.
    const refusals = log.entries.filter((e) => typeof e.msg === 'string' && e.msg.startsWith('connection refused: bad user name or password'));
    expect(refusals.map((e) => [e.username, e.listener])).toEqual([['alice', tcp!.url], ['bob', tcp!.url]]);
  });
});
