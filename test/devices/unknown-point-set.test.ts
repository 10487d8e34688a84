// `…/set` to a point the device does not have gets an error on `…/set/result`, as a bad value does;
// driven through the gateway's broker with mosquitto_pub / mosquitto_sub (and MQTT.js for the v5
// response topic), against the built-in simulated meter.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { unknownCommandError } from '../../src/devices/unknown-command.js';
import { captureLogger } from '../helpers/broker.js';
import { requireTool } from '../helpers/peers.js';
import { tempDir, waitFor } from '../gateway/helpers.js';

function run(command: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stdout += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': the exit can come before the last of stdout has been read (an empty answer, seen in CI).
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout }); });
  });
}

describe.skipIf(!requireTool('mosquitto_pub') || !requireTool('mosquitto_sub'))('…/set for a point that does not exist', () => {
  let dir: string;
  let gateway: Gateway;
  let port: number;
  const log = captureLogger();

  beforeAll(async () => {
    dir = tempDir('fieldgate-unknown-set-');
    const config = parseGatewayConfig({ broker: { host: '127.0.0.1', port: 0, dataDir: 'data', sysIntervalSeconds: 0 }, demo: true }, 'test', dir);
    gateway = await startGateway(config, log.logger);
    port = gateway.listeners[0]!.port;
    // The device part may still be starting when startGateway returns: wait for the meter to be online.
    const watcher = await mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0 });
    const online = new Promise<void>((resolve) => watcher.on('message', (_t, p) => { if (p.toString() === 'online') resolve(); }));
    await watcher.subscribeAsync('fieldgate/demo-meter/availability');
    await online;
    await watcher.endAsync();
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** mosquitto_sub waits for one answer on `topic/result` while mosquitto_pub sends `payload` to `topic`. */
  async function answerTo(topic: string, payload: string): Promise<string> {
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', `${topic}/result`, '-C', '1', '-W', '20'], 30_000);
    // mosquitto_sub has no ready signal: resend until it has subscribed and an answer comes (bounded by -W).
    let answered = false;
    void sub.then(() => { answered = true; });
    for (let i = 0; i < 60 && !answered; i++) {
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-m', payload, '-q', '1']);
      await waitFor(() => answered || undefined, 'an answer', 250).catch(() => undefined);
    }
    const { code, stdout } = await sub;
    expect(code).toBe(0);
    expect(stdout.trim(), `no answer on ${topic}/result`).not.toBe('');
    return stdout.trim();
  }

  it('answers an unknown point with an error naming what can be set', async () => {
    const answer = JSON.parse(await answerTo('fieldgate/demo-meter/nope/set', 'true')) as Record<string, unknown>;
    expect(answer).toEqual({ ok: false, error: unknownCommandError('demo-meter', 'nope', ['relay']) });
    expect(answer.error).toBe('device "demo-meter" has no point "nope" (writable: relay)');
    expect(log.entries.some((e) => e.msg === `command for an unknown point: ${answer.error}` && e.device === 'demo-meter')).toBe(true);
  });

  it('answers a bad value on a real point the same way, and a good one with ok', async () => {
    expect(JSON.parse(await answerTo('fieldgate/demo-meter/relay/set', 'banana'))).toMatchObject({ ok: false, error: expect.any(String) });
    expect(JSON.parse(await answerTo('fieldgate/demo-meter/power/set', '5'))).toEqual({ ok: false, error: 'point "power" is not writable' });
    expect(JSON.parse(await answerTo('fieldgate/demo-meter/relay/set', 'true'))).toEqual({ ok: true, value: true });
  });

  it('answers once per command, and on the v5 response topic too', async () => {
    const client = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0 });
    const results: string[] = [];
    const replies: Array<{ payload: string; correlation?: string }> = [];
    client.on('message', (topic, payload, packet) => {
      if (topic === 'fieldgate/demo-meter/volts/set/result') results.push(payload.toString());
      if (topic === 'app/replies') replies.push({ payload: payload.toString(), correlation: packet.properties?.correlationData?.toString() });
    });
    await client.subscribeAsync(['fieldgate/demo-meter/volts/set/result', 'app/replies'], { qos: 1 });
    await client.publishAsync('fieldgate/demo-meter/volts/set', '230', { qos: 1, properties: { responseTopic: 'app/replies', correlationData: Buffer.from('c-1') } });
    await waitFor(() => (results.length === 1 && replies.length === 1) || undefined, 'the result and the reply');
    expect(replies[0]).toEqual({ payload: results[0], correlation: 'c-1' });
    // A retained command left on the broker is not answered (nobody is waiting for it), nor is the clearing of one.
    await client.publishAsync('fieldgate/demo-meter/volts/set', '', { qos: 1, retain: true });
    await client.publishAsync('fieldgate/demo-meter/volts/set', '1', { qos: 1 });
    await waitFor(() => results.length === 2 || undefined, 'the second result');
    expect(results).toHaveLength(2);
    await client.endAsync();
  });
});
