// paho-mqtt 1.6.1 (Debian / Raspberry Pi OS bookworm: python3-paho-mqtt) as a real peer, MQTT 3.1.1
// and 5.0 (issue 10). Its MQTT 5 network thread dies on a 4-byte PUBACK/PUBREC/PUBREL/PUBCOMP with
// reason 0 and an empty property block: the broker sends the 2-byte form, as Mosquitto does.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { uniqueTopic, useHarness } from '../helpers/broker.js';
import { spawnBroker, type ChildBroker } from '../helpers/child-broker.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'paho_client.py');

interface PahoEvent { event: string; [field: string]: unknown }
interface PahoRun { code: number | null; events: PahoEvent[]; stderr: string; messages: Array<{ topic: string; payload: string; qos: number }> }

interface PahoArgs {
  port: number;
  version: 4 | 5;
  client_id: string;
  clean?: boolean;
  session_expiry?: number;
  subscribe?: Array<[string, number]>;
  publish?: Array<[string, string, number]>;
  expect?: number;
  timeout?: number;
  disconnect?: boolean;
}

function pahoAvailable(): boolean {
  const ok = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI === 'true') throw new Error('paho-mqtt is required under CI=true (apt-get install -y python3-paho-mqtt)');
  if (!ok) console.warn('skipping paho tests: /usr/bin/python3 with python3-paho-mqtt not found (apt-get install -y python3-paho-mqtt)');
  return ok;
}

/** Runs the paho client to completion, passing each event it prints to `onEvent`. */
function runPaho(args: PahoArgs, onEvent?: (e: PahoEvent) => void): Promise<PahoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, JSON.stringify({ timeout: 10, ...args })], { stdio: ['ignore', 'pipe', 'pipe'] });
    const events: PahoEvent[] = [];
    let buffered = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === '') continue;
        const event = JSON.parse(line) as PahoEvent;
        events.push(event);
        onEvent?.(event);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      const messages = events.filter((e) => e.event === 'message') as unknown as PahoRun['messages'];
      resolve({ code, events, stderr, messages });
    });
  });
}

/** A subscriber that is running (SUBACK received) while the test publishes; resolves with its whole run. */
async function startSubscriber(args: PahoArgs): Promise<{ done: Promise<PahoRun> }> {
  let ready!: () => void;
  let failed!: (error: Error) => void;
  const subscribed = new Promise<void>((resolve, reject) => { ready = resolve; failed = reject; });
  const done = runPaho(args, (e) => { if (e.event === 'subscribed') ready(); });
  void done.then((run) => failed(new Error(`paho subscriber ended before SUBACK: ${JSON.stringify(run.events)} ${run.stderr}`)));
  await subscribed;
  return { done };
}

function describeRun(run: PahoRun): string {
  return `exit ${run.code}; events ${JSON.stringify(run.events)}; stderr ${run.stderr.slice(0, 2000)}`;
}

describe.skipIf(!pahoAvailable())('paho-mqtt 1.6.1 as a peer', () => {
  const h = useHarness();

  for (const version of [4, 5] as const) {
    const name = version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1';
    for (const qos of [0, 1, 2]) {
      it(`${name}: a paho subscriber at QoS ${qos} receives 3 of 3 from a paho publisher, and its network thread lives`, async () => {
        const { port } = await h.broker();
        const topic = uniqueTopic(`paho${version}q${qos}`);
        const sub = await startSubscriber({ port, version, client_id: `paho-sub-${version}-${qos}`, subscribe: [[topic, qos]], expect: 3 });
        const pub = await runPaho({ port, version, client_id: `paho-pub-${version}-${qos}`, publish: [1, 2, 3].map((n) => [topic, `m${n}`, qos] as [string, string, number]) });
        expect(pub.code, describeRun(pub)).toBe(0);
        const run = await sub.done;
        expect(run.code, describeRun(run)).toBe(0);
        expect(run.messages.map((m) => m.payload)).toEqual(['m1', 'm2', 'm3']);
        expect(run.messages.map((m) => m.qos)).toEqual([qos, qos, qos]);
        expect(run.events.find((e) => e.event === 'done')?.network_thread_alive, describeRun(run)).toBe(true);
        expect(run.stderr).not.toMatch(/Traceback|struct\.error/);
      });
    }
  }

  it('acknowledgements to a v5 client are in the short form: 40 02 00 id', async () => {
    const { port } = await h.broker();
    const raw = await h.raw(port, 5);
    await raw.connect({ clientId: 'short-acks' });
    const start = Buffer.concat(raw.bytes).length;
    raw.send({ cmd: 'publish', topic: 'short/1', payload: Buffer.from('x'), qos: 1, messageId: 7, dup: false, retain: false });
    raw.send({ cmd: 'publish', topic: 'short/2', payload: Buffer.from('x'), qos: 2, messageId: 8, dup: false, retain: false });
    await raw.next('puback');
    await raw.next('pubrec');
    raw.send({ cmd: 'pubrel', messageId: 8 });
    await raw.next('pubcomp');
    expect(Buffer.concat(raw.bytes).subarray(start).toString('hex')).toBe('40020007' + '50020008' + '70020008');
  });

  describe('persistent sessions across a broker restart', () => {
    let child: ChildBroker | null = null;
    h.defer(() => child?.kill9());

    for (const version of [4, 5] as const) {
      it(`${version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1'}: a paho client gets the QoS 1 and 2 messages queued while it was away, after the restart`, async () => {
        const dataDir = await h.tempDir();
        child = await spawnBroker(dataDir);
        const topic = uniqueTopic(`paho-persist${version}`);
        const session: Partial<PahoArgs> = version === 5 ? { clean: false, session_expiry: 3600 } : { clean: false };
        const first = await runPaho({ port: child.port, version, client_id: `paho-keeper-${version}`, subscribe: [[`${topic}/#`, 2]], ...session });
        expect(first.code, describeRun(first)).toBe(0);
        const pub = await runPaho({ port: child.port, version, client_id: `paho-away-pub-${version}`, publish: [[`${topic}/a`, 'q1', 1], [`${topic}/b`, 'q2', 2], [`${topic}/c`, 'q1b', 1]] });
        expect(pub.code, describeRun(pub)).toBe(0);
        await child.stop();
        child = await spawnBroker(dataDir);
        const back = await runPaho({ port: child.port, version, client_id: `paho-keeper-${version}`, expect: 3, ...session });
        expect(back.code, describeRun(back)).toBe(0);
        expect(back.events.find((e) => e.event === 'connected')?.session_present).toBe(true);
        expect(back.messages.map((m) => [m.payload, m.qos])).toEqual([['q1', 1], ['q2', 2], ['q1b', 1]]);
        expect(back.events.find((e) => e.event === 'done')?.network_thread_alive, describeRun(back)).toBe(true);
      });
    }
  });
});
