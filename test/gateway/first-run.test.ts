// `fieldgate run` as a newcomer runs it: no config, an empty directory, the command from its own log
// to watch the readings, the demo relay switched with mosquitto_pub, SIGTERM, and a restart that
// finds the data directory again.
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/peers.js';
import { ensureBuilt, freePort, GatewayProcess, MosquittoSub, run, tempDir, waitFor } from './helpers.js';

const haveClients = requireTool('mosquitto_sub') && requireTool('mosquitto_pub');

describe.skipIf(!haveClients)('first run without a config', () => {
  let cwd: string;
  let port: number;
  const processes: Array<GatewayProcess | MosquittoSub> = [];

  beforeAll(async () => {
    ensureBuilt();
    cwd = tempDir('fieldgate-first-run-');
    port = await freePort();
  }, 120_000);
  afterAll(async () => {
    for (const p of processes) await p.stop();
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  it('says where it listens, streams demo readings to mosquitto_sub, obeys …/set, stops cleanly on SIGTERM', async () => {
    const gateway = new GatewayProcess(['--port', String(port)], cwd);
    processes.push(gateway);
    const hint = await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the mosquitto_sub hint');

    // The first screen: version, what started, and last (the listeners open once everything else runs)
    // where the broker listens and how to watch.
    const first = gateway.logs.slice(0, 8).map((l) => l.msg);
    expect(first).toContain(`MQTT broker listening on mqtt://127.0.0.1:${port}`);
    const command = hint.msg.slice('watch the readings: '.length);
    expect(command).toBe(`mosquitto_sub -h 127.0.0.1 -p ${port} -t 'fieldgate/demo-meter/#' -v`);
    expect(gateway.logs.indexOf(hint)).toBeLessThan(8);

    // Run exactly the command it printed (the shell would strip the quotes).
    const [tool, ...args] = command.split(' ').map((word) => word.replace(/^'(.*)'$/, '$1'));
    expect(tool).toBe('mosquitto_sub');
    const sub = new MosquittoSub(args);
    processes.push(sub);
    const started = Date.now();
    await waitFor(() => sub.latest('fieldgate/demo-meter/voltage') && sub.latest('fieldgate/demo-meter/power'), 'demo readings', 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(Number(sub.latest('fieldgate/demo-meter/voltage'))).toBeGreaterThan(200);
    expect(Number(sub.latest('fieldgate/demo-meter/power'))).toBeGreaterThan(0);
    expect(sub.latest('fieldgate/demo-meter/availability')).toBe('online');
    expect(sub.latest('fieldgate/demo-meter/relay')).toBe('true');

    run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'fieldgate/demo-meter/relay/set', '-m', 'false']);
    await waitFor(() => sub.latest('fieldgate/demo-meter/relay') === 'false', 'relay=false', 15_000);
    await waitFor(() => sub.latest('fieldgate/demo-meter/power') === '0', 'power 0 W', 15_000);

    // Something retained to find again after the restart.
    run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-r', '-t', 'notes/first-run', '-m', 'kept']);

    const v5 = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0, clientId: 'first-run-v5' });
    const disconnect = new Promise<number | undefined>((resolve) => v5.once('disconnect', (packet) => resolve(packet.reasonCode)));
    gateway.signal('SIGTERM');
    expect(await disconnect).toBe(0x8b);
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    await v5.endAsync(true);
    expect(gateway.logs.map((l) => l.msg)).toContain('stopped');
    await sub.stop();

    expect(fs.existsSync(path.join(cwd, 'data', 'fieldgate.db'))).toBe(true);
    expect(fs.existsSync(path.join(cwd, 'data', 'demo', 'demo-meter.json'))).toBe(true);
  });

  it('finds its data directory again on the next start', async () => {
    const gateway = new GatewayProcess(['--port', String(port)], cwd);
    processes.push(gateway);
    await gateway.waitForLog((l) => l.msg.startsWith('watch the readings: '), 'the restart');
    const sub = new MosquittoSub(['-h', '127.0.0.1', '-p', String(port), '-t', 'notes/#', '-v', '-C', '1', '-W', '10']);
    processes.push(sub);
    expect(await sub.exited).toBe(0);
    expect(sub.lines).toEqual(['notes/first-run kept']);
    gateway.signal('SIGTERM');
    expect((await gateway.exited).code).toBe(0);
  });

  it('SIGHUP and SIGTERM right after the first log line: no crash, a clean stop (the start takes ~20 ms, so usually after it)', async () => {
    const gateway = new GatewayProcess(['--port', '0', '--data', 'data-signals'], cwd);
    processes.push(gateway);
    await gateway.waitForLog((l) => l.msg.startsWith('fieldgate ') && l.msg.endsWith(' starting'), 'the first line');
    gateway.signal('SIGHUP');
    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.logs.map((l) => l.msg)).toContain('stopped');
  });
});
