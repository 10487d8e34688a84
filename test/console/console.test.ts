// The web console in a real browser (Debian's Chromium, playwright-core) against `fieldgate run`
// with the embedded default, as a new user starts it: the overview, live values, the relay switched
// from the console, commissioning, a refused mapping, and the login when it is required.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import mqtt from 'mqtt';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt, freePort, GatewayProcess, run, tempDir, waitFor } from '../gateway/helpers.js';
import { requireTool } from '../helpers/peers.js';
import { ensureConsoleBuilt, haveChromium, launchBrowser, SHOTS } from './browser.js';

async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent({ timeout: 15_000 })) ?? '';
}

/** Waits until the element's text passes `ok`; the last text seen is in the error. */
async function waitForText(page: Page, selector: string, ok: (text: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  let last = '';
  try {
    return await waitFor(async () => {
      last = (await page.locator(selector).first().textContent({ timeout: 2000 }).catch(() => null)) ?? '';
      return ok(last) ? last : undefined;
    }, what, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message} (last text: ${JSON.stringify(last)})`);
  }
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The management API's answer to an action the console needs, asked through the console's own page. */
async function unknownAction(page: Page, selector: string): Promise<boolean> {
  const text = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '');
  return /unknown action|no answer to/.test(text ?? '');
}

describe.skipIf(!haveChromium)('web console, embedded default', () => {
  let cwd: string;
  let gateway: GatewayProcess;
  let url: string;
  let context: BrowserContext;
  let closeBrowser: () => Promise<void>;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    ensureConsoleBuilt();
    cwd = tempDir('fieldgate-console-');
    gateway = new GatewayProcess(['--port', String(await freePort()), '--console-port', '0'], cwd);
    const line = await gateway.waitForLog((l) => l.msg.startsWith('web console on '), 'the console URL');
    url = line.msg.slice('web console on '.length);
    ({ context, close: closeBrowser } = await launchBrowser());
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await gateway?.stop();
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
  });

  it('prints its URL next to the broker\'s, on loopback, with no login', () => {
    const messages = gateway.logs.map((l) => l.msg);
    const broker = messages.findIndex((m) => m.startsWith('MQTT broker listening on mqtt://127.0.0.1:'));
    const console = messages.findIndex((m) => m.startsWith('web console on http://127.0.0.1:'));
    expect(broker).toBeGreaterThanOrEqual(0);
    expect(console).toBeGreaterThan(broker);
    // Right after the broker's line and the watch hint; a device's line may come in between.
    expect(console - broker).toBeLessThanOrEqual(4);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('the overview shows the demo meter online', async () => {
    await page.goto(url);
    await waitForText(page, '[data-testid=connection]', (t) => t === 'connected', 'the console connected over MQTT');
    await waitForText(page, '[data-testid=devices-online]', (t) => t.trim() === '1 / 1 online', 'the demo meter online');
    expect(await page.getByRole('link', { name: 'Simulated Eastron SDM120' }).count()).toBe(1);
    expect(await textOf(page, '[data-testid=gateway-id]')).not.toBe('…');
    await shot(page, 'overview');
  });

  it('the overview\'s out rate counts what this console is sent', async () => {
    // The gateway's only client is this browser: state topics, $SYS and the answers to its requests go
    // out to it. The history was asked for once at page load, when no bucket had a browser yet (all
    // out rates 0): the page must ask again as buckets close (one per 10 s) and show a rate above 0.
    await page.getByRole('link', { name: 'Overview' }).click();
    const out = await waitForText(page, '[data-testid=rate-out]', (t) => Number(t) > 0, 'an out rate above 0', 60_000);
    expect(Number(out)).toBeGreaterThan(0);
    expect(Number(await textOf(page, '[data-testid=rate-in]'))).toBeGreaterThan(0);
  });

  it('a voltage value changes on screen', async () => {
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('link', { name: 'Simulated Eastron SDM120' }).click();
    const first = await waitForText(page, '[data-testid=value-voltage]', (t) => Number(t) > 200, 'a voltage reading');
    const changed = await waitForText(page, '[data-testid=value-voltage]', (t) => Number(t) > 200 && t !== first, 'a new voltage reading', 30_000);
    expect(Math.abs(Number(changed) - 230)).toBeLessThan(20);
    await shot(page, 'device');
  });

  it('switching the relay off in the console drops the power reading to 0, and on brings it back', async () => {
    await waitForText(page, '[data-testid=value-power]', (t) => Number(t) > 0, 'power above 0 W');
    await page.getByRole('button', { name: 'Switch relay off' }).click();
    await waitForText(page, '[data-testid=set-result-relay]', (t) => t.startsWith('answer: '), 'the …/set/result answer');
    await waitForText(page, '[data-testid=value-relay]', (t) => t === 'false', 'relay false');
    await waitForText(page, '[data-testid=value-power]', (t) => t === '0', 'power 0 W', 30_000);
    expect(await textOf(page, '[data-testid=set-result-relay]')).toBe('answer: ok, now false');
    // The switch shows which way it is.
    await waitFor(async () => (await page.getByRole('button', { name: 'Switch relay off' }).getAttribute('aria-pressed')) === 'true', 'Off shown pressed');
    expect(await page.getByRole('button', { name: 'Switch relay on' }).getAttribute('aria-pressed')).toBe('false');
    await shot(page, 'relay-off');
    await page.getByRole('button', { name: 'Switch relay on' }).click();
    await waitForText(page, '[data-testid=value-power]', (t) => Number(t) > 0, 'power back above 0 W', 30_000);
  });

  it('the probe finds the meter\'s voltage in the right byte order and makes a point `fieldgate check` accepts', async (ctx) => {
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('link', { name: 'Simulated Eastron SDM120' }).click();
    const shown = Number(await waitForText(page, '[data-testid=value-voltage]', (t) => Number(t) > 200, 'the voltage the "display" shows'));
    await page.getByRole('link', { name: 'Commissioning' }).click();
    await page.locator('#scan-from').fill('1');
    await page.locator('#scan-to').fill('2');
    await page.locator('#scan-table').selectOption('input');
    await page.getByRole('button', { name: 'Scan' }).click();
    expect(await waitForText(page, '[data-testid=scan-result]', (t) => /answered/.test(t), 'the scan', 20_000)).toMatch(/answered \(1(, 2)?\)/);
    await page.locator('#read-unit').fill('1');
    await page.locator('#read-table').selectOption('input');
    await page.locator('#read-address').fill('0');
    await page.locator('#read-count').fill('2');
    await page.getByLabel("Near the display's value").fill(String(shown));
    await page.getByLabel('Tolerance (relative)').fill('0.02');
    await page.getByRole('button', { name: 'Read' }).click();
    await waitFor(async () => (await page.locator('table[aria-label], table').count()) > 0 || (await unknownAction(page, '[role=alert]')), 'the decodings', 20_000);
    if (await unknownAction(page, '[role=alert]')) ctx.skip(); // bus/read is console-api's: not on this branch yet
    const row = page.locator('tr[data-decoding="0-float32-ABCD"]');
    await row.waitFor({ timeout: 15_000 });
    expect(Math.abs(Number(await row.locator('td.num').textContent()) - shown)).toBeLessThan(2);
    // Nothing far from the display's value is offered.
    for (const value of await page.locator('tr[data-decoding] td.num').allTextContents()) expect(Math.abs(Number(value) - shown) / shown).toBeLessThan(0.25);
    await page.locator('#point-name').fill('voltage');
    await page.locator('#point-unit').fill('V');
    await row.getByRole('button', { name: /Make a point/ }).click();
    const json = await waitForText(page, '[data-testid=point-json]', (t) => t.includes('"float32"'), 'the point JSON');
    const point = JSON.parse(json) as Record<string, unknown>;
    expect(point).toMatchObject({ name: 'voltage', table: 'input', address: 0, type: 'float32' });
    await shot(page, 'commissioning');
    const dir = tempDir('fieldgate-console-point-');
    fs.writeFileSync(path.join(dir, 'meter.json'), JSON.stringify({
      buses: [{ id: 'meter', type: 'modbus-tcp', host: '127.0.0.1', port: 1502 }],
      devices: [{ id: 'meter-1', bus: 'meter', unitId: 1, points: [point] }],
    }));
    fs.writeFileSync(path.join(dir, 'fieldgate.json'), JSON.stringify({ devices: ['meter.json'] }));
    const out = run(process.execPath, [BIN, 'check', '--config', path.join(dir, 'fieldgate.json')]);
    expect(out).toMatch(/OK/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a mapping edited with an error is refused, with its JSON path shown as you type and by the gateway', async (ctx) => {
    await page.getByRole('link', { name: 'Config' }).click();
    const check = await waitForText(page, '[data-testid=check-result]', (t) => /OK/.test(t), 'the check of the running config');
    // As `fieldgate check` says it for the embedded default: the demo meter is its one device.
    expect(await textOf(page, '[data-testid=check-devices]')).toBe('1 device');
    expect(check).toContain('demo: simulated SDM120 energy meter under fieldgate/demo-meter/');
    expect(check).toContain('(embedded default): OK');
    await waitFor(async () => (await page.locator('#mapping-text').count()) > 0 || (await unknownAction(page, '[role=alert]')), 'the mapping editor', 20_000);
    if (await unknownAction(page, '[role=alert]')) ctx.skip(); // mapping/get is console-api's: not on this branch yet
    const editor = page.locator('#mapping-text');
    await waitFor(async () => (await editor.inputValue()).includes('demo-meter'), 'the demo mapping in the editor');
    const good = await editor.inputValue();
    expect(await textOf(page, '[data-testid=live-errors]')).toMatch(/valid/);
    await editor.fill(good.replace(/"pollIntervalMs": 2000/, '"pollIntervalMs": "fast"'));
    await waitForText(page, '[data-testid=live-errors]', (t) => t.includes('devices[0].pollIntervalMs'), 'the live error with its path');
    await page.getByRole('button', { name: 'Save and reload' }).click();
    const refused = await waitForText(page, '[data-testid=save-result]', (t) => /refused/.test(t), 'the refusal');
    expect(refused).toContain('devices[0].pollIntervalMs');
    await shot(page, 'mapping-refused');
    // The running mapping is kept: the meter still reads.
    await page.getByRole('link', { name: 'Overview' }).click();
    await waitForText(page, '[data-testid=devices-online]', (t) => t.trim() === '1 / 1 online', 'the meter still online');
  });

  it('disconnects a client and removes its offline persistent session', async () => {
    const brokerUrl = gateway.logs.find((l) => l.msg.startsWith('MQTT broker listening on '))!.msg.slice('MQTT broker listening on '.length);
    const client = await mqtt.connectAsync(brokerUrl, { clientId: 'meter-ui', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 });
    await client.subscribeAsync('fieldgate/demo-meter/#', { qos: 1 });
    const disconnected = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)));
    await page.getByRole('link', { name: 'Clients' }).click();
    await page.getByRole('button', { name: 'Disconnect meter-ui' }).click();
    expect(await disconnected).toBe(0x98);
    await client.endAsync(true);
    await page.getByRole('button', { name: 'Remove session meter-ui' }).click({ timeout: 15_000 });
    await waitFor(async () => (await page.getByRole('button', { name: 'Remove session meter-ui' }).count()) === 0, 'the session gone from the list', 15_000);
    expect(await page.locator('main output').textContent()).toBe('meter-ui: session removed');
    for (const table of await page.locator('main table').allTextContents()) expect(table).not.toContain('meter-ui');
  });

  it('lists the Home Assistant entities and filters the log by level', async () => {
    await page.getByRole('link', { name: 'Home Assistant' }).click();
    await waitForText(page, 'main table', (t) => t.includes('homeassistant') || t.includes('voltage'), 'the announced entities');
    expect(await page.locator('main tbody tr').count()).toBe(9);
    await page.getByRole('link', { name: 'Logs' }).click();
    await waitForText(page, 'main ol.logs', (t) => t.includes('web console on'), 'the console\'s own start line');
    await page.getByLabel('Level and above').selectOption('error');
    await waitFor(async () => !((await page.locator('main ol.logs').textContent()) ?? '').includes('web console on'), 'info lines filtered out');
  });

  it('threw no script error on any page', async () => {
    for (const name of ['bridges', 'clients', 'logs', 'homeassistant']) {
      await page.goto(`${url}#/${name}`);
      await page.locator('main h2').waitFor();
    }
    await page.waitForTimeout(500);
    expect(pageErrors).toEqual([]);
  });

  it('works from the keyboard: a skip link, then the pages in tab order', async () => {
    // A fresh load: the focus starts at the top of the page.
    await page.goto('about:blank');
    await page.goto(`${url}#/overview`);
    await page.locator('[data-testid=devices-online]').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Tab');
      names.push((await page.evaluate(() => document.activeElement?.textContent)) ?? '');
    }
    expect(names).toEqual(['Overview', 'Devices', 'Bridges']);
    await page.keyboard.press('Enter');
    await page.locator('h2#h-bridges').waitFor();
    expect(await page.locator('nav a[aria-current=page]').textContent()).toBe('Bridges');
  });

  it('fits a phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}#/device/demo-meter`);
    await waitForText(page, '[data-testid=value-voltage]', (t) => Number(t) > 200, 'the device page on a phone');
    // Nothing wider than the screen but the scrollable tables.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, 'phone');
    await page.setViewportSize({ width: 1200, height: 900 });
  });
});

function request(target: string, options: http.RequestOptions & { body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(target, options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' }); });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe.skipIf(!haveChromium || !requireTool('mosquitto_passwd'))('web console with auth "required"', () => {
  let cwd: string;
  let gateway: GatewayProcess;
  let url: string;
  let closeBrowser: () => Promise<void>;
  let context: BrowserContext;

  beforeAll(async () => {
    ensureBuilt();
    ensureConsoleBuilt();
    cwd = tempDir('fieldgate-console-auth-');
    run('mosquitto_passwd', ['-c', '-b', path.join(cwd, 'passwd'), 'operator', 'correct horse']);
    fs.writeFileSync(path.join(cwd, 'fieldgate.json'), JSON.stringify({
      demo: true, broker: { port: await freePort() }, auth: { passwordFile: 'passwd' },
      console: { enabled: true, port: 0, auth: 'required' },
    }));
    gateway = new GatewayProcess(['--config', 'fieldgate.json'], cwd);
    const line = await gateway.waitForLog((l) => l.msg.startsWith('web console on '), 'the console URL');
    url = line.msg.slice('web console on '.length).split(' ')[0]!;
    ({ context, close: closeBrowser } = await launchBrowser());
  }, 120_000);

  afterAll(async () => {
    await closeBrowser?.();
    await gateway?.stop();
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
  });

  it('asks for a login, refuses a wrong password, lets the right one in and logs out', async () => {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('User name').fill('operator');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(page, '[role=alert]', (t) => t.includes('Wrong user name or password'), 'the refusal');
    expect(new URL(page.url()).pathname).toBe('/login');
    await shot(page, 'login-refused');
    await page.getByLabel('User name').fill('operator');
    await page.getByLabel('Password').fill('correct horse');
    await page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(page, '[data-testid=connection]', (t) => t === 'connected', 'connected after the login');
    await waitForText(page, '[data-testid=devices-online]', (t) => t.trim() === '1 / 1 online', 'the overview as operator');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'fieldgate_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // The broker knows the browser as that user.
    await page.getByRole('link', { name: 'Clients' }).click();
    await waitForText(page, 'main table', (t) => t.includes('operator'), 'the console listed as user operator');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login$/);
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/login');
    for (const msg of ['console login failed: wrong user name or password', 'console login', 'console logout']) await gateway.waitForLog((l) => l.msg === msg, msg);
  });

  it('refuses a login POST without the form\'s CSRF token, a WebSocket without a session or from another origin, and limits failed logins', async () => {
    const form = (csrf: string) => `csrf=${csrf}&username=operator&password=nope`;
    const noToken = await request(`${url}login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: 'fieldgate_login=abc' }, body: form('xyz') });
    expect(noToken.status).toBe(403);
    const upgrade = (headers: Record<string, string>) => request(`${url}mqtt`, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'mqtt', ...headers } });
    const host = new URL(url).host;
    expect((await upgrade({ Origin: `http://${host}` })).status).toBe(401);
    expect((await upgrade({ Origin: 'http://evil.example' })).status).toBe(403);
    expect((await request(`${url}session`)).status).toBe(401);
    // Five wrong passwords from one address, then even the right one is refused for a while.
    const page = await request(`${url}login`);
    const token = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request(`${url}login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie }, body: form(token) });
      statuses.push(r.status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
    const right = await request(`${url}login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie }, body: `csrf=${token}&username=operator&password=correct%20horse` });
    expect(right.status).toBe(429);
    await gateway.waitForLog((l) => l.msg === 'console login refused: too many failed attempts from this address', 'the refusal logged');
  });
});
