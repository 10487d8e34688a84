// The console's HTTP server without a browser: what it serves and refuses on loopback without a
// login (DNS rebinding, cross-site WebSockets), the asset budget, and a busy port.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { tempDir } from '../gateway/helpers.js';
import { ensureConsoleBuilt } from './browser.js';

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) }); });
    req.on('error', reject);
  });
}

const upgradeHeaders = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'mqtt' };

describe('console server on loopback, no login', () => {
  let dir: string;
  let gateway: Gateway;
  let base: string;

  beforeAll(async () => {
    ensureConsoleBuilt();
    dir = tempDir('fieldgate-console-server-');
    const config = gatewayConfigSchema.parse({ gatewayId: 'gw', broker: { port: 0, dataDir: dir }, console: { enabled: true, port: 0 } });
    gateway = await startGateway(config, silentLogger);
    base = gateway.consoleUrl!;
  });
  afterAll(async () => {
    await gateway?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page and its assets gzipped, within the 150 KB budget', async () => {
    const page = await get(base);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body.toString()).toContain('/assets/app.js');
    let total = 0;
    const names = fs.readdirSync(path.join(process.cwd(), 'dist', 'console-ui'));
    for (const name of names) {
      const asset = await get(`${base}assets/${name}`, { 'Accept-Encoding': 'gzip' });
      expect(asset.status).toBe(200);
      expect(asset.headers['content-encoding']).toBe('gzip');
      expect(zlib.gunzipSync(asset.body).length).toBeGreaterThan(0);
      total += asset.body.length;
    }
    process.stdout.write(`web console assets: ${names.length} files, ${total} bytes gzipped (budget 150,000)\n`);
    expect(total).toBeLessThanOrEqual(150_000); // KB = 1000 bytes, as scripts/build-console.mjs checks
    const session = JSON.parse((await get(`${base}session`)).body.toString());
    expect(session).toMatchObject({ user: null, loginRequired: false, gatewayId: 'gw', mqttPath: '/mqtt' });
  });

  it('refuses a non-loopback Host (DNS rebinding) and a WebSocket from another origin', async () => {
    const port = new URL(base).port;
    expect((await get(base, { Host: `evil.example:${port}` })).status).toBe(421);
    expect((await get(`${base}mqtt`, { ...upgradeHeaders, Origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(`${base}mqtt`, { ...upgradeHeaders, Host: `evil.example:${port}`, Origin: `http://evil.example:${port}` })).status).toBe(403);
    // No Origin at all: not a page of this console either.
    expect((await get(`${base}mqtt`, upgradeHeaders)).status).toBe(403);
  });

  it('carries MQTT over /mqtt into the broker for a client from its own origin', async () => {
    const url = `${base.replace('http', 'ws')}mqtt`;
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, wsOptions: { headers: { Origin: base.slice(0, -1) } } });
    const answer = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
    await client.subscribeAsync('fieldgate/gw/response/me');
    await client.publishAsync('fieldgate/gw/request/info', JSON.stringify({ transaction: 1 }), { properties: { responseTopic: 'fieldgate/gw/response/me' } });
    expect(JSON.parse(await answer)).toMatchObject({ status: 'ok', data: { gatewayId: 'gw' }, transaction: 1 });
    expect(gateway.status().find((p) => p.name === 'console')!.detail).toMatch(/1 browser connected/);
    await client.endAsync();
  });

  it('a busy console port leaves the gateway running, the console part degraded', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    const other = tempDir('fieldgate-console-busy-');
    const config = gatewayConfigSchema.parse({ gatewayId: 'gw2', broker: { port: 0, dataDir: other }, console: { enabled: true, port } });
    const second = await startGateway(config, silentLogger);
    try {
      expect(second.consoleUrl).toBeNull();
      expect(second.status().find((p) => p.name === 'console')).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/port is already in use/) });
      expect(second.status().find((p) => p.name === 'listeners')!.state).toBe('running');
    } finally {
      await second.stop();
      blocker.close();
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
