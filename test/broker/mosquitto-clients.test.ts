// Debian mosquitto-clients (mosquitto_pub, mosquitto_sub, mosquitto_rr 2.0) as separate processes
// against the broker, talking to MQTT.js clients: what a new user would try first.
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connectV4, startBroker, useHarness, waitFor, type Harness, type TestClient } from '../helpers/broker.js';
import { requireTool } from '../helpers/peers.js';

const haveClients = requireTool('mosquitto_pub') && requireTool('mosquitto_sub') && requireTool('mosquitto_rr');

interface Tool {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(h: Harness, command: string, args: string[], stdin?: string | Buffer): Tool {
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': after the last output has been read.
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  if (stdin !== undefined) proc.stdin!.end(stdin);
  else proc.stdin!.end();
  h.defer(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  return { proc, lines, stderr: () => stderr, exited };
}

async function runToEnd(h: Harness, command: string, args: string[], stdin?: string | Buffer): Promise<Tool> {
  const tool = run(h, command, args, stdin);
  const code = await Promise.race([tool.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  expect(code, `${command} ${args.join(' ')} failed: ${tool.stderr()}`).toBe(0);
  return tool;
}

/** Starts mosquitto_sub and waits until its subscription is live (it prints a ready ping we keep sending). */
async function subscriber(h: Harness, port: number, helper: TestClient, args: string[]): Promise<Tool> {
  const ready = `ready/${Math.random().toString(16).slice(2, 10)}`;
  const tool = run(h, 'mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-F', '%t|%q|%r|%p', '-t', ready, ...args]);
  await waitFor(
    async () => {
      if (tool.lines.some((l) => l.startsWith(ready))) return true;
      await helper.publish(ready, 'ping', { qos: 0 });
      return false;
    },
    15_000,
    `mosquitto_sub to subscribe (${tool.stderr()})`,
  );
  return tool;
}

function body(tool: Tool, prefix: string): string[] {
  return tool.lines.filter((l) => !l.startsWith('ready/') && l.startsWith(prefix));
}

describe.skipIf(!haveClients)('mosquitto_pub / mosquitto_sub / mosquitto_rr', () => {
  const h = useHarness();

  for (const version of ['mqttv31', 'mqttv311', 'mqttv5']) {
    it(`mosquitto_pub -V ${version} at QoS 0, 1, 2 reaches an MQTT.js subscriber`, async () => {
      const { port } = await h.broker();
      const c = await h.v5(port, { clientId: 'js-sub' });
      await c.subscribe('mp/#', { qos: 2 });
      for (const qos of ['0', '1', '2']) {
        await runToEnd(h, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', version, '-q', qos, '-t', `mp/q${qos}`, '-m', `hello ${qos}`]);
      }
      await c.waitMessages(3);
      expect(c.messages.map((m) => [m.topic, m.text, m.qos])).toEqual([
        ['mp/q0', 'hello 0', 0],
        ['mp/q1', 'hello 1', 1],
        ['mp/q2', 'hello 2', 2],
      ]);
    });
  }

  for (const version of ['mqttv311', 'mqttv5']) {
    it(`mosquitto_sub -V ${version} receives MQTT.js publishes at the granted QoS`, async () => {
      const { port } = await h.broker();
      const helper = await h.v4(port, { clientId: 'helper' });
      const sub = await subscriber(h, port, helper, ['-V', version, '-q', '1', '-t', 'ms/#']);
      await helper.publish('ms/a', 'one', { qos: 0 });
      await helper.publish('ms/b', 'two', { qos: 2 });
      await waitFor(() => body(sub, 'ms/').length === 2, 10_000, `mosquitto_sub output: ${sub.lines.join(' / ')}`);
      expect(body(sub, 'ms/')).toEqual(['ms/a|0|0|one', 'ms/b|1|0|two']);
    });
  }

  it('v5 properties set with mosquitto_pub -D reach an MQTT.js subscriber', async () => {
    const { port } = await h.broker();
    const c = await h.v5(port, { clientId: 'props' });
    await c.subscribe('props/t', { qos: 1 });
    await runToEnd(h, 'mosquitto_pub', [
      '-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-q', '1', '-t', 'props/t', '-m', '{"v":1}',
      '-D', 'PUBLISH', 'user-property', 'site', 'north',
      '-D', 'PUBLISH', 'content-type', 'application/json',
      '-D', 'PUBLISH', 'message-expiry-interval', '300',
      '-D', 'PUBLISH', 'response-topic', 'props/reply',
      '-D', 'PUBLISH', 'correlation-data', 'abc',
    ]);
    const [m] = await c.waitMessages(1);
    expect(m!.text).toBe('{"v":1}');
    expect(m!.properties?.userProperties).toEqual({ site: 'north' });
    expect(m!.properties?.contentType).toBe('application/json');
    expect(m!.properties?.messageExpiryInterval).toBeLessThanOrEqual(300);
    expect(m!.properties?.responseTopic).toBe('props/reply');
    expect(Buffer.from(m!.properties!.correlationData!).toString()).toBe('abc');
  });

  it('retained with mosquitto_pub -r, read by mosquitto_sub -C 1 with the retain flag, cleared with -r -n', async () => {
    const { port } = await h.broker();
    const base = ['-h', '127.0.0.1', '-p', String(port)];
    await runToEnd(h, 'mosquitto_pub', [...base, '-r', '-q', '1', '-t', 'ret/state', '-m', 'on']);
    const read = await runToEnd(h, 'mosquitto_sub', [...base, '-t', 'ret/#', '-C', '1', '-W', '10', '-F', '%t|%r|%p']);
    expect(read.lines).toEqual(['ret/state|1|on']);
    await runToEnd(h, 'mosquitto_pub', [...base, '-r', '-q', '1', '-t', 'ret/state', '-n']);
    const c = await h.v4(port, { clientId: 'check' });
    await c.subscribe('ret/#', { qos: 1 });
    await c.subscribe('ret-end', { qos: 1 });
    await c.publish('ret-end', 'end', { qos: 1 });
    await waitFor(() => c.texts().includes('end'));
    expect(c.texts()).toEqual(['end']);
  });

  it('100 lines from mosquitto_pub -l arrive in order; a 100 KiB payload from -s arrives intact', async () => {
    const { port } = await h.broker();
    const c = await h.v4(port, { clientId: 'lines' });
    await c.subscribe('lines/#', { qos: 1 });
    const input = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n') + '\n';
    await runToEnd(h, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'lines/l', '-l'], input);
    await c.waitMessages(100);
    expect(c.texts()).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
    const big = Buffer.alloc(100 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = 0x41 + (i % 26);
    await runToEnd(h, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '2', '-t', 'lines/big', '-s'], big);
    await c.waitMessages(101);
    expect(c.messages[100]!.payload.equals(big)).toBe(true);
  });

  it('a persistent mosquitto_sub -c gets what was published while it was away, also across a broker restart', { timeout: 60_000 }, async () => {
    const dataDir = await h.tempDir();
    let started = await startBroker({ dataDir });
    h.defer(() => started.close());
    const helper = await connectV4(started.port, { clientId: 'helper' });
    const first = await subscriber(h, started.port, helper, ['-c', '-i', 'mosq-durable', '-q', '1', '-t', 'away/#']);
    first.proc.kill('SIGTERM');
    await first.exited;
    await helper.end();
    for (const text of ['a1', 'a2', 'a3']) {
      await runToEnd(h, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(started.port), '-q', '1', '-t', 'away/t', '-m', text]);
    }
    await started.close();
    started = await startBroker({ dataDir });
    const back = await runToEnd(h, 'mosquitto_sub', ['-h', '127.0.0.1', '-p', String(started.port), '-c', '-i', 'mosq-durable', '-q', '1', '-t', 'away/#', '-C', '3', '-W', '15', '-F', '%p']);
    expect(back.lines).toEqual(['a1', 'a2', 'a3']);
  });

  it('the will of a mosquitto_sub that is killed reaches MQTT.js', async () => {
    const { port } = await h.broker();
    const c = await h.v4(port, { clientId: 'will-watch' });
    await c.subscribe('wills/#', { qos: 1 });
    const victim = await subscriber(h, port, c, ['--will-topic', 'wills/mosq', '--will-payload', 'mosquitto_sub died', '--will-qos', '1', '-t', 'nothing']);
    victim.proc.kill('SIGKILL');
    await waitFor(() => c.texts().includes('mosquitto_sub died'), 10_000, 'the will');
    expect(c.messages.filter((m) => m.topic === 'wills/mosq').map((m) => m.text)).toEqual(['mosquitto_sub died']);
  });

  it('mosquitto_rr gets the answer of an MQTT.js responder (v5 response topic + correlation data)', async () => {
    const { port } = await h.broker();
    const responder = await h.v5(port, { clientId: 'responder' });
    responder.mqtt.on('message', (topic, payload, packet) => {
      if (topic !== 'rr/req' || !packet.properties?.responseTopic) return;
      responder.mqtt.publish(packet.properties.responseTopic, `pong:${payload.toString()}`, { qos: 1, properties: { correlationData: packet.properties.correlationData } });
    });
    await responder.subscribe('rr/req', { qos: 1 });
    const rr = await runToEnd(h, 'mosquitto_rr', ['-h', '127.0.0.1', '-p', String(port), '-t', 'rr/req', '-e', 'rr/resp', '-m', 'ping', '-q', '1', '-W', '10']);
    expect(rr.lines).toEqual(['pong:ping']);
  });

  it('mosquitto_sub can read $SYS/broker/version', async () => {
    const { port } = await h.broker({ sysIntervalMs: 200 });
    const sys = await runToEnd(h, 'mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', '$SYS/broker/version', '-C', '1', '-W', '10']);
    expect(sys.lines).toHaveLength(1);
    expect(sys.lines[0]!.length).toBeGreaterThan(0);
  });
});
