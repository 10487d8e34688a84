// Well-behaved MQTT.js clients beside the fuzzer: 3.1.1 and 5.0, persistent and clean, plain and
// $share subscriptions (also on the fuzzed topics). Publishers send QoS 1 messages with sequence
// numbers; every one acknowledged must reach every plain subscriber and one member of the share
// group, and no good client may be disconnected.

import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { FUZZ_ROOT } from './generator.js';

const SEQ_ROOT = 'good/seq';

interface Publisher {
  name: string;
  client: MqttClient;
  topic: string;
  next: number;
  inflight: number;
  acked: Set<number>;
}

interface Subscriber {
  name: string;
  client: MqttClient;
  /** 'plain' gets every message; the 'share' group members get each message once between them. */
  kind: 'plain' | 'share';
  received: Map<string, Set<number>>;
}

export class GoodClients {
  readonly problems: string[] = [];
  private readonly publishers: Publisher[] = [];
  private readonly subscribers: Subscriber[] = [];
  private readonly all: Array<{ name: string; client: MqttClient }> = [];
  private publishTimer: NodeJS.Timeout | null = null;
  private churnTimer: NodeJS.Timeout | null = null;
  private churnBusy = false;
  private stopping = false;
  churnRounds = 0;

  constructor(readonly port: number, readonly tag: string) {}

  private problem(message: string): void {
    if (this.problems.length < 50) this.problems.push(`${new Date().toISOString()} ${message}`);
  }

  private async connect(name: string, options: IClientOptions, watch = true): Promise<MqttClient> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.port}`, {
      clientId: `good-${this.tag}-${name}`, reconnectPeriod: 0, connectTimeout: 15_000, keepalive: 30, ...options,
    });
    if (watch) {
      let lastDisconnect = '';
      client.on('packetreceive', (p) => {
        if (p.cmd === 'disconnect') lastDisconnect = ` (DISCONNECT 0x${(p.reasonCode ?? 0).toString(16)} ${p.properties?.reasonString ?? ''})`;
      });
      client.on('error', (e) => this.problem(`good client ${name}: error ${e.message}`));
      client.on('close', () => { if (!this.stopping) this.problem(`good client ${name} was disconnected${lastDisconnect}`); });
      this.all.push({ name, client });
    }
    return client;
  }

  private async subscriber(name: string, kind: Subscriber['kind'], options: IClientOptions, filters: Record<string, { qos: 0 | 1 | 2 }>): Promise<void> {
    const client = await this.connect(name, options);
    const sub: Subscriber = { name, client, kind, received: new Map() };
    client.on('message', (topic, payload) => {
      if (!topic.startsWith(`${SEQ_ROOT}/`)) return;
      const seq = Number(payload.toString());
      let set = sub.received.get(topic);
      if (!set) sub.received.set(topic, (set = new Set()));
      set.add(seq);
    });
    const granted = await client.subscribeAsync(filters);
    for (const g of granted) if (g.qos >= 0x80) this.problem(`good client ${name}: SUBSCRIBE ${g.topic} refused with 0x${g.qos.toString(16)}`);
    this.subscribers.push(sub);
  }

  async start(): Promise<void> {
    const v5 = { protocolVersion: 5 as const };
    const fuzzed = { [`${FUZZ_ROOT}/#`]: { qos: 1 as const } };
    await this.subscriber('v5-persistent', 'plain', { ...v5, clean: false, properties: { sessionExpiryInterval: 600, topicAliasMaximum: 8 } }, { [`${SEQ_ROOT}/#`]: { qos: 1 }, ...fuzzed });
    await this.subscriber('v4-clean', 'plain', { protocolVersion: 4, clean: true }, { [`${SEQ_ROOT}/#`]: { qos: 1 }, [`${FUZZ_ROOT}/#`]: { qos: 2 } });
    await this.subscriber('v4-persistent-share', 'share', { protocolVersion: 4, clean: false }, { [`$share/g/${SEQ_ROOT}/#`]: { qos: 1 } });
    await this.subscriber('v5-clean-share', 'share', { ...v5, clean: true }, { [`$share/g/${SEQ_ROOT}/#`]: { qos: 1 }, [`${FUZZ_ROOT}/+`]: { qos: 0 } });
    for (const [name, options] of [['v5', v5], ['v4', { protocolVersion: 4 as const }]] as const) {
      const client = await this.connect(`pub-${name}`, options);
      this.publishers.push({ name, client, topic: `${SEQ_ROOT}/${this.tag}-${name}`, next: 1, inflight: 0, acked: new Set() });
    }
  }

  /** QoS 1 messages at up to `perSecond` per publisher, at most 10 in flight each. */
  startPublishing(perSecond = 200): void {
    const perTick = Math.max(1, Math.round(perSecond / 100));
    this.publishTimer = setInterval(() => {
      for (const p of this.publishers) {
        for (let i = 0; i < perTick && p.inflight < 10; i++) {
          const seq = p.next++;
          p.inflight++;
          p.client.publish(p.topic, String(seq), { qos: 1 }, (err) => {
            p.inflight--;
            if (err) this.problem(`good publisher ${p.name}: seq ${seq} failed: ${err.message}`);
            else p.acked.add(seq);
          });
        }
      }
    }, 10);
  }

  /** Every few seconds a 3.1.1 and a 5.0 client connect, subscribe (plain, on the fuzzed topics, and $share) and leave. */
  startChurn(everyMs = 1500): void {
    this.churnTimer = setInterval(() => {
      if (this.churnBusy) return;
      this.churnBusy = true;
      this.churnOnce().finally(() => { this.churnBusy = false; });
    }, everyMs);
  }

  private async churnOnce(): Promise<void> {
    for (const protocolVersion of [4, 5] as const) {
      const name = `churn-v${protocolVersion}`;
      let client: MqttClient | null = null;
      try {
        client = await this.connect(name, { protocolVersion, clean: true }, false);
        const granted = await client.subscribeAsync({ [`$share/churn/${SEQ_ROOT}/#`]: { qos: 1 }, [`${FUZZ_ROOT}/#`]: { qos: 1 } });
        for (const g of granted) if (g.qos >= 0x80) this.problem(`${name}: SUBSCRIBE ${g.topic} refused with 0x${g.qos.toString(16)}`);
        await client.endAsync();
        this.churnRounds++;
      } catch (e) {
        if (!this.stopping) this.problem(`${name}: ${(e as Error).message}`);
        client?.end(true);
      }
    }
  }

  /** A new v5 client subscribes to the fuzzed topics: retained messages must not cost it its connection. */
  async lateSubscriber(): Promise<void> {
    const name = 'late-v5';
    try {
      const client = await this.connect(name, { protocolVersion: 5, clean: true }, false);
      let closed = '';
      client.on('packetreceive', (p) => { if (p.cmd === 'disconnect') closed = `DISCONNECT 0x${(p.reasonCode ?? 0).toString(16)}`; });
      client.on('close', () => { closed ||= 'closed'; });
      await client.subscribeAsync({ [`${FUZZ_ROOT}/#`]: { qos: 2 } });
      await new Promise((r) => setTimeout(r, 500));
      if (closed) this.problem(`${name}: disconnected after subscribing to ${FUZZ_ROOT}/# (retained messages): ${closed}`);
      await client.endAsync();
    } catch (e) {
      this.problem(`${name}: ${(e as Error).message}`);
    }
  }

  get published(): number {
    return this.publishers.reduce((n, p) => n + p.acked.size, 0);
  }

  /** Stops publishing, waits (bounded) for every acknowledged message to arrive, returns what was lost. */
  async stopAndVerify(timeoutMs: number): Promise<{ losses: string[]; acked: number }> {
    if (this.publishTimer) clearInterval(this.publishTimer);
    if (this.churnTimer) clearInterval(this.churnTimer);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (this.publishers.some((p) => p.inflight > 0) || this.churnBusy)) await new Promise((r) => setTimeout(r, 50));
    const missing = () => {
      const losses: string[] = [];
      for (const p of this.publishers) {
        for (const sub of this.subscribers.filter((s) => s.kind === 'plain')) {
          const got = sub.received.get(p.topic) ?? new Set();
          const lost = [...p.acked].filter((s) => !got.has(s));
          if (lost.length) losses.push(`${sub.name} lost ${lost.length} of ${p.acked.size} acknowledged messages of ${p.name}: not delivered ${timeoutMs / 1000} s after the last publish (first: ${lost.slice(0, 5).join(',')})`);
        }
        const shared = this.subscribers.filter((s) => s.kind === 'share').map((s) => s.received.get(p.topic) ?? new Set<number>());
        const lost = [...p.acked].filter((s) => !shared.some((set) => set.has(s)));
        if (lost.length) losses.push(`share group g lost ${lost.length} of ${p.acked.size} acknowledged messages of ${p.name}: not delivered ${timeoutMs / 1000} s after the last publish (first: ${lost.slice(0, 5).join(',')})`);
      }
      return losses;
    };
    let losses = missing();
    while (losses.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      losses = missing();
    }
    return { losses, acked: this.published };
  }

  async close(): Promise<void> {
    this.stopping = true;
    if (this.publishTimer) clearInterval(this.publishTimer);
    if (this.churnTimer) clearInterval(this.churnTimer);
    await Promise.all(this.all.map(({ client }) => client.endAsync(true).catch(() => {})));
  }
}
