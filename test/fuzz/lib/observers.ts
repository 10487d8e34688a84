// Raw-socket subscribers to the fuzzed topics whose every received byte goes through the oracle:
// one announces small limits (Maximum Packet Size, Receive Maximum, Topic Alias Maximum) and never
// acknowledges, two (5.0 and 3.1.1) acknowledge everything. They must stay connected.

import mqttPacket from 'mqtt-packet';
import net from 'node:net';
import { FUZZ_ROOT } from './generator.js';
import { SocketOracle, type ReceiverLimits } from './oracle.js';

interface ObserverSpec {
  name: string;
  version: 4 | 5;
  acks: boolean;
  properties?: mqttPacket.IConnectPacket['properties'];
}

export const OBSERVER_LIMITS = { maximumPacketSize: 200, receiveMaximum: 2, topicAliasMaximum: 2 };

class Observer {
  readonly oracle: SocketOracle;
  socket!: net.Socket;
  closed = false;
  subacked = false;

  constructor(readonly spec: ObserverSpec, readonly problems: (m: string) => void) {
    const limits: ReceiverLimits = { version: spec.version, ...(spec.version === 5 ? { topicAliasMaximum: 0, ...spec.properties } : {}) } as ReceiverLimits;
    this.oracle = new SocketOracle(limits, spec.name, !spec.acks);
  }

  start(port: number, tag: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const { name, version, acks } = this.spec;
      const socket = (this.socket = net.connect({ port, host: '127.0.0.1' }));
      const gen = (p: mqttPacket.Packet) => socket.write(mqttPacket.generate(p, { protocolVersion: version }));
      // A parser of our own to drive acknowledgements; the oracle keeps its own independent one.
      const parser = mqttPacket.parser({ protocolVersion: version });
      parser.on('error', () => {});
      parser.on('packet', (p: mqttPacket.Packet) => {
        if (p.cmd === 'connack') {
          // The one that never acknowledges would queue the good clients' stream for ever: fuzzed topics only.
          const subscriptions = [{ topic: `${FUZZ_ROOT}/#`, qos: 2 as const }, ...(acks ? [{ topic: 'good/seq/#', qos: 1 as const }] : [])];
          gen({ cmd: 'subscribe', messageId: 1, subscriptions } as mqttPacket.ISubscribePacket);
        } else if (p.cmd === 'suback') {
          this.subacked = true;
          resolve();
        } else if (p.cmd === 'publish' && acks && p.qos > 0) {
          gen({ cmd: p.qos === 1 ? 'puback' : 'pubrec', messageId: p.messageId } as mqttPacket.Packet);
          if (p.qos === 1) this.oracle.released(p.messageId!);
        } else if (p.cmd === 'pubrel' && acks) {
          gen({ cmd: 'pubcomp', messageId: p.messageId } as mqttPacket.Packet);
          this.oracle.released(p.messageId!);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        this.oracle.onData(chunk);
        parser.parse(chunk);
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        this.closed = true;
        if (!this.stopping) this.problems(`observer ${name} was disconnected (broker sent ${this.oracle.disconnect ? `DISCONNECT 0x${(this.oracle.disconnect.reasonCode ?? 0).toString(16)}` : 'no DISCONNECT'})`);
        if (!this.subacked) reject(new Error(`observer ${name} closed before SUBACK`));
      });
      socket.on('connect', () => gen({
        cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId: `obs-${tag}-${name}`, clean: true, keepalive: 0,
        ...(version === 5 ? { properties: this.spec.properties ?? {} } : {}),
      } as mqttPacket.IConnectPacket));
    });
  }

  stopping = false;
}

export class Observers {
  readonly problems: string[] = [];
  private list: Observer[] = [];
  /** Observers of earlier connections (close, then start again): what they saw still counts. */
  private readonly retired: Observer[] = [];

  constructor(readonly tag: string) {}

  /** Connects a new set of observers (with fresh oracles: each connection is judged on its own). */
  async start(port: number): Promise<void> {
    const problem = (m: string) => { if (this.problems.length < 50) this.problems.push(m); };
    this.list = [
      new Observer({ name: 'v5-small-limits-no-acks', version: 5, acks: false, properties: OBSERVER_LIMITS }, problem),
      new Observer({ name: 'v5-acking', version: 5, acks: true }, problem),
      new Observer({ name: 'v4-acking', version: 4, acks: true }, problem),
    ];
    await Promise.all(this.list.map((o) => o.start(port, this.tag)));
  }

  private get all(): Observer[] {
    return [...this.retired, ...this.list];
  }

  /** What the oracle found in what the observers received. */
  violations(): string[] {
    return this.all.flatMap((o) => o.oracle.violations.map((v) => `observer ${o.spec.name}: ${v}`));
  }

  received(): number {
    return this.all.reduce((n, o) => n + o.oracle.received.length, 0);
  }

  /** Closes their connections: their clean sessions end, and with them what the broker queued for them. */
  close(): void {
    for (const o of this.list) {
      o.stopping = true;
      o.socket?.destroy();
    }
    this.retired.push(...this.list.splice(0));
  }
}
