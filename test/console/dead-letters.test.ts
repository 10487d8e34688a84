// The Bridges page's dead letters in a real browser: `fieldgate run` bridged to a Mosquitto "cloud"
// whose ACL refuses one topic (PUBACK 0x87: the bridge files the message as a dead letter). The rows
// show up without a reload; Retry, once the cloud takes the topic, delivers it there and empties the
// row; Delete removes one that is still refused.
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MosquittoRemote } from '../bridge/helpers.js';
import { ensureBuilt, freePort, GatewayProcess, tempDir, waitFor } from '../gateway/helpers.js';
import { requireTool } from '../helpers/peers.js';
import { ensureConsoleBuilt, haveChromium, launchBrowser, SHOTS } from './browser.js';

describe.skipIf(!haveChromium || !requireTool('mosquitto'))('web console: dead letters, retried and deleted from the Bridges page', () => {
  let cwd: string;
  let aclFile: string;
  let cloud: MosquittoRemote;
  let cloudPort: number;
  let cloudSubscriber: MqttClient;
  const arrived: string[] = [];
  let gateway: GatewayProcess;
  let local: MqttClient;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  const pageErrors: string[] = [];

  const startCloud = async (rules: string[]) => {
    fs.writeFileSync(aclFile, [...rules, 'topic read fleet/#', ''].join('\n'), { mode: 0o644 });
    cloudPort = await cloud.start(cloudPort);
    cloudSubscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${cloudPort}`, { reconnectPeriod: 0, protocolVersion: 5 });
    cloudSubscriber.on('message', (t, p) => arrived.push(`${t} ${p.toString()}`));
    await cloudSubscriber.subscribeAsync('fleet/#', { qos: 1 });
  };

  /** The state badge of the bridge's row in the first table. */
  const bridgeState = async () => (await page.locator('main table').first().locator('tbody tr td').first().textContent({ timeout: 2000 }).catch(() => '')) ?? '';
  const rowCount = () => page.locator('[data-testid=dead-letters-cloud] tbody tr[data-dead-id]').count();

  beforeAll(async () => {
    ensureBuilt();
    ensureConsoleBuilt();
    cwd = tempDir('fieldgate-console-dead-');
    fs.chmodSync(cwd, 0o755);
    aclFile = path.join(cwd, 'cloud.acl');
    cloud = new MosquittoRemote([`acl_file ${aclFile}`]);
    await startCloud(['topic write fleet/gw/data/ok/#']);
    const port = await freePort();
    fs.writeFileSync(path.join(cwd, 'fieldgate.json'), JSON.stringify({
      gatewayId: 'dead-gw', broker: { port },
      console: { enabled: true, port: 0 },
      bridges: [{
        name: 'cloud', url: `mqtt://127.0.0.1:${cloudPort}`, clientId: 'dead-gw', protocolVersion: 5,
        reconnect: { minMs: 50, maxMs: 300 },
        rules: [{ direction: 'out', filter: 'data/#', remotePrefix: 'fleet/gw/' }],
      }],
    }));
    gateway = new GatewayProcess(['--config', 'fieldgate.json'], cwd);
    const line = await gateway.waitForLog((l) => l.msg.startsWith('web console on '), 'the console URL');
    const url = line.msg.slice('web console on '.length).split(' ')[0]!;
    local = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5 });
    ({ context, close: closeBrowser } = await launchBrowser());
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${url}#/bridges`);
    await page.locator('[data-testid=dead-letters-cloud]').waitFor({ timeout: 20_000 });
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await local?.endAsync(true);
    await gateway?.stop();
    await cloudSubscriber?.endAsync(true);
    await cloud?.dispose();
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
  });

  it('shows the refused messages as they are refused, without a reload', async () => {
    await waitFor(async () => (await bridgeState()) === 'connected', 'the bridge connected on the page', 20_000);
    expect(await rowCount()).toBe(0);
    await local.publishAsync('data/ok/1', 'fine', { qos: 1 });
    await local.publishAsync('data/secret/a', 'refused-a', { qos: 1 });
    await local.publishAsync('data/secret/b', 'refused-b', { qos: 1 });
    await waitFor(() => arrived.includes('fleet/gw/data/ok/1 fine'), 'the allowed message at the cloud');
    await waitFor(async () => (await rowCount()) === 2, 'two dead letters on the page', 30_000);
    const table = (await page.locator('[data-testid=dead-letters-cloud] table').textContent()) ?? '';
    expect(table).toContain('fleet/gw/data/secret/a');
    expect(table).toContain('refused-a');
    expect(table).toMatch(/0x87/);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'dead-letters.png'), fullPage: true });
  });

  it('Retry sends one again once the cloud takes it, and its row goes', async () => {
    // The cloud's ACL now takes secret/a.
    await cloudSubscriber.endAsync(true);
    await cloud.stop();
    await startCloud(['topic write fleet/gw/data/ok/#', 'topic write fleet/gw/data/secret/a']);
    // (A retry while the bridge is still reconnecting waits in the outbox: the order does not matter.)
    await waitFor(async () => (await bridgeState()) === 'connected', 'the bridge connected again', 20_000);
    await page.getByRole('button', { name: /^Retry dead letter \d+ \(fleet\/gw\/data\/secret\/a\)$/ }).click();
    await waitFor(() => arrived.includes('fleet/gw/data/secret/a refused-a'), 'the retried message at the cloud', 20_000);
    expect(await page.locator('[data-testid=dead-result-cloud]').textContent()).toBe('1 message handed back to the outbox to be sent again');
    await waitFor(async () => (await rowCount()) === 1, 'one row left', 15_000);
    expect(await page.locator('[data-testid=dead-letters-cloud] tbody').textContent()).not.toContain('secret/a');
  });

  it('Delete removes one that is still refused', async () => {
    await page.getByRole('button', { name: /^Delete dead letter \d+ \(fleet\/gw\/data\/secret\/b\)$/ }).click();
    await waitFor(async () => (await rowCount()) === 0, 'no row left', 15_000);
    expect(await page.locator('[data-testid=dead-result-cloud]').textContent()).toBe('1 dead letter deleted');
    expect(await page.locator('[data-testid=dead-letters-cloud] caption').textContent()).toContain('(0)');
    expect(arrived.filter((m) => m.includes('secret/b'))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
