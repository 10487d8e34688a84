// A WebSocket listener answers what is not an MQTT WebSocket upgrade instead of hanging or closing
// silently: raw HTTP over a socket, Node's http client, and the ws client on a wrong path; MQTT.js
// over ws:// still works beside them. Every refusal leaves one log line naming the listener.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import mqtt from 'mqtt';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogger } from '../helpers/broker.js';
import { tempDir, waitFor } from './helpers.js';

/** Sends raw bytes, returns everything the server wrote until it closed (bounded). */
function rawExchange(port: number, request: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close within ${timeoutMs} ms; got: ${JSON.stringify(data)}`)); }, timeoutMs);
    socket.on('data', (c) => { data += c.toString(); });
    socket.on('close', () => { clearTimeout(timer); resolve(data); });
    socket.on('error', () => undefined);
  });
}

describe('WebSocket listener answers plain HTTP and wrong paths', () => {
  let dir: string;
  let gateway: Gateway;
  const log = captureLogger();
  let port: number;

  beforeAll(async () => {
    dir = tempDir('fieldgate-ws-answers-');
    const config = parseGatewayConfig(
      { broker: { host: '127.0.0.1', port: 0, dataDir: 'data', sysIntervalSeconds: 0 }, listeners: [{ type: 'ws', port: 0, path: '/mqtt' }] },
      'ws-test', dir,
    );
    gateway = await startGateway(config, log.logger);
    port = gateway.listeners.find((l) => l.type === 'ws')!.port;
  });
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const logged = (msg: RegExp) => log.entries.filter((e) => typeof e.msg === 'string' && msg.test(e.msg));

  it('answers a plain GET on the MQTT path with 426 and a one-line body', async () => {
    const response = await rawExchange(port, 'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(response).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n/);
    expect(response).toMatch(/\r\nUpgrade: websocket\r\n/i);
    const body = response.split('\r\n\r\n')[1]!;
    expect(body.trimEnd().split('\n')).toHaveLength(1);
    expect(body).toMatch(/MQTT over WebSocket/);
    await waitFor(() => logged(/426/).length > 0 || undefined, 'the 426 log line');
    expect(logged(/426/)[0]).toMatchObject({ listener: `ws://127.0.0.1:${port}/mqtt`, status: 426, path: '/mqtt' });
  });

  it('answers other paths with 404, with and without an upgrade', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/index.html' }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
    });
    expect(status).toBe(404);

    const ws = new WebSocket(`ws://127.0.0.1:${port}/wrong`, 'mqtt');
    const refused = await new Promise<string>((resolve) => {
      ws.on('unexpected-response', (_req, res) => { resolve(`status ${res.statusCode}`); ws.terminate(); });
      ws.on('open', () => resolve('opened'));
      ws.on('error', (e) => resolve(`error ${e.message}`));
    });
    expect(refused).toBe('status 404');

    const raw = await rawExchange(port, 'GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(raw.split('\r\n\r\n')[1]).toBe('not found: MQTT over WebSocket is on /mqtt\n');
    await waitFor(() => logged(/WebSocket upgrade refused: wrong path/).length >= 2 || undefined, 'the refused-upgrade log lines');
    expect(logged(/WebSocket upgrade refused: wrong path/)[0]).toMatchObject({ listener: `ws://127.0.0.1:${port}/mqtt`, path: '/wrong', status: 404 });
  });

  it('answers a malformed upgrade with 400 and logs why', async () => {
    const raw = await rawExchange(port, 'GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    await waitFor(() => logged(/WebSocket upgrade refused: Missing or invalid Sec-WebSocket-Key/).length > 0 || undefined, 'the 400 log line');
  });

  it('still carries MQTT on the right path', async () => {
    const client = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, { reconnectPeriod: 0, clientId: 'ws-ok' });
    await client.subscribeAsync('t/ws');
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('t/ws', 'over ws');
    expect(await got).toBe('over ws');
    await client.endAsync();
    const connected = await waitFor(() => log.entries.find((e) => e.msg === 'client connected' && e.clientId === 'ws-ok'), 'the connect line');
    expect(connected.listener).toBe(`ws://127.0.0.1:${port}/mqtt`);
    const gone = await waitFor(() => log.entries.find((e) => e.msg === 'client disconnected' && e.clientId === 'ws-ok'), 'the disconnect line');
    expect(gone.listener).toBe(`ws://127.0.0.1:${port}/mqtt`);
  });
});
