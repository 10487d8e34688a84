// Wildcard subscriptions under a Mosquitto ACL file: fieldgate must deliver, for the same subscriptions,
// exactly what a real Mosquitto 2 given the same ACL and password files delivers. Both brokers are
// driven by the same mosquitto_sub subscribers (3.1.1 and 5.0) and MQTT.js publisher, retained messages included.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../gateway/helpers.js';
import { requireTool } from '../helpers/peers.js';
import { startMosquitto, type RunningMosquitto } from './mosquitto-peer.js';

const acl = [
  'user dash',
  'topic readwrite #',
  'topic deny test/nosubscribe',
  'user ops',
  'topic read fieldgate/#',
  'topic deny fieldgate/secret/#',
  'topic read marker/#',
  'user pub',
  'topic write #',
  'pattern read clients/%c/#',
].join('\n');

const passwords: Record<string, string> = { dash: 'd-pw', ops: 'o-pw', pub: 'p-pw' };

/** [user, client id, filter, protocol]: one mosquitto_sub each. */
const subscribers: Array<[string, string, string, '311' | '5']> = [
  ['dash', 'd1', '+/+', '311'],
  ['dash', 'd2', '#', '5'],
  ['dash', 'd3', 'test/nosubscribe', '311'],
  ['dash', 'd4', 'test/+', '5'],
  ['ops', 'o1', 'fieldgate/#', '311'],
  ['ops', 'o2', '#', '5'],
  ['ops', 'o3', '+/+/power', '311'],
  ['ops', 'o4', 'fieldgate/secret/#', '5'],
  ['ops', 'c7', 'clients/+/x', '311'],
];

const retainedFirst = ['test/nosubscribe', 'fieldgate/secret/r', 'fieldgate/meter/r'];
const published = [
  'test/nosubscribe', 'test/ok', 'fieldgate/meter/power', 'fieldgate/secret/power', 'fieldgate/secret/a/b',
  'other/power', 'clients/c7/x', 'clients/c8/x', 'a', 'x/y/z/w',
];

/**
 * Publishes as "pub" over one MQTT.js connection per broker (QoS 1, in order): one mosquitto_pub
 * process per message made the run take minutes on a loaded machine.
 */
const publishers = new Map<number, Promise<mqtt.MqttClient>>();
async function pub(port: number, topic: string, payload: string, retain: boolean): Promise<void> {
  let client = publishers.get(port);
  if (!client) {
    client = mqtt.connectAsync({ host: '127.0.0.1', port, username: 'pub', password: passwords.pub, clientId: `pub-${port}`, reconnectPeriod: 0 });
    publishers.set(port, client);
  }
  await (await client).publishAsync(topic, payload, { qos: 1, retain });
}

/** mosquitto_sub, line-buffered (stdbuf) so its -d lines show when they happen and not at exit. */
class Sub {
  readonly lines: string[] = [];
  private readonly child;
  private readonly exited: Promise<void>;
  constructor(args: string[]) {
    this.child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    this.child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.lines.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    this.child.stderr.on('data', (chunk: Buffer) => this.lines.push(`stderr: ${chunk.toString().trim()}`));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** Runs the whole scenario against one broker; returns, per subscriber, the "topic payload" lines it got. */
async function deliveries(port: number): Promise<string[][]> {
  for (const topic of retainedFirst) await pub(port, topic, `retained ${topic}`, true);
  const subs = subscribers.map(([user, clientId, filter, protocol], i) => {
    const marker = `marker/${i}`;
    const matchesMarker = filter === '#' || filter === '+/+';
    const args = ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', passwords[user]!, '-i', clientId, '-V', protocol, '-q', '1', '-v', '-d', '-t', filter];
    // A marker topic every subscriber may read ends its stream; it rides on the filter itself when that matches it.
    if (!matchesMarker) args.push('-t', marker);
    return new Sub(args);
  });
  try {
    await waitFor(() => subs.every((s) => s.lines.some((l) => l.includes('received SUBACK'))), 'every SUBACK');
    for (const topic of published) await pub(port, topic, `live ${topic}`, false);
    for (let i = 0; i < subs.length; i++) await pub(port, `marker/${i}`, 'end', false);
    await waitFor(() => subs.every((s, i) => s.lines.includes(`marker/${i} end`)), 'every marker');
    // Debug lines (-d) and the markers are not deliveries under test.
    // The management API's retained state topics are the gateway's own (as $SYS is): Mosquitto has none.
    return subs.map((s) => s.lines.filter((l) => !/^(Client |Subscribed|stderr:)/.test(l) && !l.startsWith('marker/') && !isGatewayState(l)).sort());
  } finally {
    await Promise.all(subs.map((s) => s.stop()));
  }
}

/** fieldgate/<gatewayId>/state/…: the management API's retained state, published by the gateway itself. */
function isGatewayState(topicOrLine: string): boolean {
  return /^fieldgate\/[^/]+\/state\//.test(topicOrLine);
}

/**
 * A persistent session fills up under one user (dash, who may read everything but test/nosubscribe),
 * and the same client id comes back as another user (ops): queued messages ops may not read are dropped.
 */
async function queuedAcrossUsers(port: number): Promise<string[]> {
  const options = { host: '127.0.0.1', port, clientId: 'handover', clean: false, reconnectPeriod: 0, connectTimeout: 10_000 };
  const first = await mqtt.connectAsync({ ...options, username: 'dash', password: passwords.dash });
  const retained: string[] = [];
  first.on('message', (topic) => { if (!isGatewayState(topic)) retained.push(topic); });
  await first.subscribeAsync('#', { qos: 1 });
  // The retained messages (acknowledged by MQTT.js) are not part of what gets queued.
  await waitFor(() => retained.length === 2, 'the retained messages');
  await first.endAsync();
  for (const topic of ['fieldgate/secret/q', 'fieldgate/meter/q', 'other/q']) await pub(port, topic, 'queued', false);
  // Queued messages come right behind the CONNACK: listen before connecting.
  const got: string[] = [];
  const second = mqtt.connect({ ...options, username: 'ops', password: passwords.ops });
  second.on('message', (topic) => got.push(topic));
  await new Promise<void>((resolve, reject) => { second.once('connect', () => resolve()); second.once('error', reject); });
  await pub(port, 'marker/handover', 'end', false);
  // marker/# is readable by ops and matches "#": it arrives after anything queued before it.
  await waitFor(() => got.includes('marker/handover'), 'the handover marker');
  await second.endAsync();
  return got.filter((t) => t !== 'marker/handover');
}

describe.skipIf(!requireTool('stdbuf') || !requireTool('mosquitto') || !requireTool('mosquitto_sub'))('wildcard subscriptions under an ACL file, as Mosquitto delivers them', () => {
  let dir: string;
  let mosquitto: RunningMosquitto | undefined;
  let gateway: Gateway | undefined;
  let ours: string[][];
  let theirs: string[][];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-acl-delivery-'));
    const passwordFile = join(dir, 'passwd');
    const aclFile = join(dir, 'acl');
    for (const [user, pw] of Object.entries(passwords)) addOrUpdateUser(passwordFile, user, pw);
    writeFileSync(aclFile, acl + '\n');
    mosquitto = await startMosquitto(dir, { passwordFile, aclFile });
    const config = parseGatewayConfig(
      { broker: { host: '127.0.0.1', port: 0, dataDir: join(dir, 'data'), sysIntervalSeconds: 0 }, auth: { passwordFile: 'passwd', aclFile: 'acl', allowAnonymous: false } },
      'test', dir,
    );
    gateway = await startGateway(config, silentLogger);
    ours = await deliveries(gateway.listeners[0]!.port);
    theirs = await deliveries(mosquitto.port);
  }, 90_000);
  afterAll(async () => {
    for (const client of publishers.values()) await (await client).endAsync(true).catch(() => undefined);
    await gateway?.stop();
    await mosquitto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the same messages for the same subscriptions', () => {
    const label = (lists: string[][]) => lists.map((lines, i) => `${subscribers[i]!.slice(0, 3).join(' ')}: ${lines.join(' | ')}`);
    expect(label(ours)).toEqual(label(theirs));
  });

  it('grants "+/+" and "#" next to a deny and never delivers the denied topic', () => {
    const [plus, hash] = ours;
    expect(plus).toContain('test/ok live test/ok');
    expect(hash).toContain('fieldgate/secret/power live fieldgate/secret/power');
    expect(hash).toContain('fieldgate/meter/r retained fieldgate/meter/r');
    for (const lines of ours) expect(lines.filter((l) => l.startsWith('test/nosubscribe'))).toEqual([]);
  });

  it('drops queued messages the returning client may no longer read, as Mosquitto does', async () => {
    const theirsQueued = await queuedAcrossUsers(mosquitto!.port);
    const oursQueued = await queuedAcrossUsers(gateway!.listeners[0]!.port);
    expect(oursQueued).toEqual(theirsQueued);
    expect(oursQueued).toEqual(['fieldgate/meter/q']);
  });

  it('answers SUBACK 0x80 (3.1.1) / 0x87 (5.0) only for a subscription nothing could pass, and grants the wildcards', async () => {
    const port = gateway!.listeners[0]!.port;
    for (const protocol of ['311', '5']) {
      // mosquitto_sub -d prints the SUBACK's codes: "Subscribed (mid: 1): 1, 1, 128".
      const sub = new Sub(['-h', '127.0.0.1', '-p', String(port), '-u', 'dash', '-P', passwords.dash!, '-V', protocol, '-q', '1', '-d',
        '-t', '+/+', '-t', '#', '-t', 'test/nosubscribe']);
      try {
        const line = await waitFor(() => sub.lines.find((l) => l.startsWith('Subscribed (mid')), `the SUBACK (${protocol})`);
        expect(line.replace(/^Subscribed \(mid: \d+\): /, ''), `protocol ${protocol}`).toBe(`1, 1, ${protocol === '5' ? 0x87 : 0x80}`);
      } finally {
        await sub.stop();
      }
    }
  });

  it('filters a partly readable subscription message by message, retained ones too', () => {
    const ops = ours[5]!; // ops on "#"
    expect(ops).toEqual(['fieldgate/meter/power live fieldgate/meter/power', 'fieldgate/meter/r retained fieldgate/meter/r']);
    expect(ours[8]).toEqual(['clients/c7/x live clients/c7/x']); // %c pattern through clients/+/x
  });
});
