// Checks everything a broker sends to one socket: it parses with an independent decoder
// (mqtt-packet's parser, a fresh one per socket), follows the packet order, carries only the
// properties the packet may carry, and respects the limits the receiver announced in its CONNECT.

import mqttPacket from 'mqtt-packet';
import { SERVER_ALLOWED } from './spec.js';

export interface ReceiverLimits {
  /** Protocol version the receiver speaks (what the broker must answer in). */
  version: 3 | 4 | 5;
  /** When the CONNECT's level was not 3, 4 or 5: accept a 3.1.1 or a 5.0 answer. */
  versionUncertain?: boolean;
  maximumPacketSize?: number;
  topicAliasMaximum?: number;
  /** Checked only where the receiver never acknowledges (so every QoS 1/2 PUBLISH stays in flight). */
  receiveMaximum?: number;
}

/** Limits announced by a CONNECT, as the broker would read them (mqtt-packet's view of our bytes). */
export function limitsOfConnect(connect: Buffer | undefined): ReceiverLimits {
  if (!connect || connect.length < 9) return { version: 4, versionUncertain: true };
  let parsed: mqttPacket.IConnectPacket | null = null;
  try {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p: mqttPacket.Packet) => { if (p.cmd === 'connect') parsed = p as mqttPacket.IConnectPacket; });
    parser.on('error', () => {});
    parser.parse(connect);
  } catch {
    parsed = null;
  }
  const p = parsed as mqttPacket.IConnectPacket | null;
  if (p && (p.protocolVersion === 3 || p.protocolVersion === 4 || p.protocolVersion === 5) && !(p as { bridgeMode?: boolean }).bridgeMode) {
    const props = (p.properties ?? {}) as Record<string, unknown>;
    const num = (v: unknown) => (Array.isArray(v) ? Math.min(...(v as number[])) : typeof v === 'number' ? v : undefined);
    return {
      version: p.protocolVersion as 3 | 4 | 5,
      maximumPacketSize: p.protocolVersion === 5 ? num(props.maximumPacketSize) : undefined,
      topicAliasMaximum: p.protocolVersion === 5 ? num(props.topicAliasMaximum) ?? 0 : undefined,
      receiveMaximum: p.protocolVersion === 5 ? num(props.receiveMaximum) : undefined,
    };
  }
  // Unparseable: guess the version from where the level byte would be, and assume no limits.
  const nameLength = connect.length > 4 ? connect.readUInt16BE(2) : 0;
  const level = connect[4 + nameLength];
  if (level === 3 || level === 4 || level === 5) return { version: level, versionUncertain: true };
  return { version: 4, versionUncertain: true };
}

/**
 * The smallest a v5 CONNACK could be made by leaving out every property the server may omit: only an
 * Assigned Client Identifier (for an empty client id) is needed. A limit below that cannot be met.
 */
function essentialConnackSize(frame: Buffer): number {
  let size = 5;
  try {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    let connack: mqttPacket.IConnackPacket | null = null;
    parser.on('packet', (p: mqttPacket.Packet) => { connack = p as mqttPacket.IConnackPacket; });
    parser.on('error', () => {});
    parser.parse(frame);
    const id = (connack as mqttPacket.IConnackPacket | null)?.properties?.assignedClientIdentifier;
    if (typeof id === 'string') size += 3 + Buffer.byteLength(id);
  } catch { /* not a v5 CONNACK: no exemption beyond the header */ }
  return size;
}

interface ParserState {
  parser: mqttPacket.Parser;
  packets: mqttPacket.Packet[];
  error: string | null;
}

function newParser(version: number): ParserState {
  const state: ParserState = { parser: mqttPacket.parser({ protocolVersion: version }), packets: [], error: null };
  state.parser.on('packet', (p: mqttPacket.Packet) => state.packets.push(p));
  state.parser.on('error', (e: Error) => { state.error ??= e.message; });
  return state;
}

export class SocketOracle {
  readonly violations: string[] = [];
  readonly received: mqttPacket.Packet[] = [];
  connack: mqttPacket.IConnackPacket | null = null;
  disconnect: mqttPacket.IDisconnectPacket | null = null;
  private bytes: Buffer[] = [];
  private byteCount = 0;
  private state: ParserState | null = null;
  private early = Buffer.alloc(0);
  private pending = Buffer.alloc(0);
  /** When the first bytes of the unfinished packet in `pending` arrived. */
  private pendingSince = 0;
  /** The broker dropped this socket inside a packet after its close grace (see finish). */
  droppedMidPacket = false;
  private readonly inflight = new Set<number>();

  constructor(readonly limits: ReceiverLimits, readonly label: string, readonly checkReceiveMaximum = false) {
    if (!limits.versionUncertain) this.state = newParser(limits.version);
  }

  /** The version the broker answers in, when our CONNECT did not say: a CONNACK longer than 2 bytes is 5.0's. */
  private decideVersion(chunk: Buffer): Buffer | null {
    this.early = Buffer.concat([this.early, chunk]);
    if (this.early.length < 2) return null;
    const version = this.early[0] === 0x20 && this.early[1] > 2 ? 5 : 4;
    (this.limits as { version: number }).version = version;
    this.state = newParser(version);
    return this.early;
  }

  private violation(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  /** Bytes from the broker. */
  onData(chunk: Buffer): void {
    if (this.byteCount < 65536) this.bytes.push(chunk);
    this.byteCount += chunk.length;
    this.frame(chunk);
    if (this.state === null) {
      const all = this.decideVersion(chunk);
      if (all === null) return;
      chunk = all;
    }
    const state = this.state!;
    state.parser.parse(chunk);
    if (state.error !== null) {
      this.violation(`unparseable output: ${state.error}`);
      state.error = null;
      this.state = newParser(this.limits.version); // one report; what follows is garbage anyway
      this.pending = Buffer.alloc(0);
      return;
    }
    for (const packet of state.packets.splice(0)) this.check(packet);
  }

  /** Our own framing, for packet sizes and for bytes left hanging at the end. */
  private frame(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let packetStartsHere = this.pending.length === 0;
    for (;;) {
      if (data.length < 2) break;
      let remaining = 0;
      let mult = 1;
      let pos = 1;
      let complete = false;
      for (; pos < data.length && pos <= 4; pos++) {
        remaining += (data[pos] & 0x7f) * mult;
        mult *= 128;
        if ((data[pos] & 0x80) === 0) {
          complete = true;
          pos++;
          break;
        }
      }
      if (!complete) {
        if (pos > 4) {
          this.violation('remaining length longer than four bytes');
          data = Buffer.alloc(0);
        }
        break;
      }
      const total = pos + remaining;
      if (data.length < total) break;
      const max = this.limits.maximumPacketSize;
      if (max !== undefined && max > 0 && total > max && !(data[0] === 0x20 && essentialConnackSize(data.subarray(0, total)) > max)) {
        this.violation(`packet 0x${data[0].toString(16)} of ${total} bytes exceeds the receiver's Maximum Packet Size ${max}`);
      }
      data = data.subarray(total);
      packetStartsHere = true;
    }
    if (data.length > 0 && packetStartsHere) this.pendingSince = Date.now();
    this.pending = Buffer.from(data);
  }

  private check(packet: mqttPacket.Packet): void {
    const first = this.received.length === 0;
    this.received.push(packet);
    if (first && packet.cmd !== 'connack' && packet.cmd !== 'auth') this.violation(`first packet from the broker is ${packet.cmd}, not CONNACK`);
    if (!first && packet.cmd === 'connack') this.violation('a second CONNACK');
    if (this.disconnect) this.violation(`${packet.cmd} after the broker's DISCONNECT`);
    if (packet.cmd === 'connack') this.connack = packet;
    if (packet.cmd === 'disconnect') this.disconnect = packet;
    if (this.connack && this.connack !== packet && (this.connack.reasonCode ?? this.connack.returnCode ?? 0) !== 0) {
      this.violation(`${packet.cmd} after a refusing CONNACK`);
    }
    if (['connect', 'subscribe', 'unsubscribe', 'pingreq'].includes(packet.cmd)) this.violation(`client-only packet ${packet.cmd} from the broker`);
    const props = (packet as { properties?: Record<string, unknown> }).properties;
    if (props) {
      if (this.limits.version !== 5) this.violation(`${packet.cmd} with properties on a ${this.limits.version} connection`);
      const allowed = SERVER_ALLOWED[packet.cmd] ?? [];
      for (const [name, value] of Object.entries(props)) {
        if (value === undefined) continue;
        if (!allowed.includes(name)) this.violation(`${packet.cmd} carries ${name}, which it may not`);
        if (value === null) this.violation(`${packet.cmd} carries a null ${name}`);
        if (name !== 'userProperties' && name !== 'subscriptionIdentifier' && Array.isArray(value)) this.violation(`${packet.cmd} carries ${name} more than once`);
      }
    }
    if ('messageId' in packet && packet.messageId !== undefined) {
      const id = packet.messageId;
      if (!(Number.isInteger(id) && id >= 1 && id <= 65535)) this.violation(`${packet.cmd} with packet identifier ${id}`);
    } else if (['puback', 'pubrec', 'pubrel', 'pubcomp', 'suback', 'unsuback'].includes(packet.cmd)) {
      this.violation(`${packet.cmd} without a packet identifier`);
    }
    if (packet.cmd === 'publish') {
      const alias = packet.properties?.topicAlias;
      const max = this.limits.topicAliasMaximum ?? 0;
      if (alias !== undefined && (alias < 1 || alias > max)) this.violation(`PUBLISH with topic alias ${alias} (receiver's maximum ${max})`);
      if (alias === undefined && packet.topic.length === 0) this.violation('PUBLISH with an empty topic and no alias');
      if (/[+#\u0000]/.test(packet.topic)) this.violation(`PUBLISH to a topic name with a wildcard or U+0000: ${JSON.stringify(packet.topic.slice(0, 40))}`);
      if (packet.qos > 0 && this.checkReceiveMaximum && this.limits.receiveMaximum !== undefined) {
        this.inflight.add(packet.messageId!);
        if (this.inflight.size > this.limits.receiveMaximum) this.violation(`${this.inflight.size} QoS ${packet.qos} PUBLISHes in flight, receiver's Receive Maximum ${this.limits.receiveMaximum}`);
      }
    }
  }

  /** The receiver acknowledged (PUBACK or PUBCOMP) this id. */
  released(id: number): void {
    this.inflight.delete(id);
  }

  /**
   * The connection ended cleanly: nothing may be left half-sent. One cut is the broker's choice: a
   * socket that has not taken its output within the close grace (CLOSE_GRACE_MS, 2 s, in broker.ts;
   * a client that reads too slowly, or nothing) is dropped, and the part of a packet the kernel had
   * already taken arrives cut. The broker wrote that whole packet before its close began, so such a
   * cut ends at least the grace after the packet began to arrive (to a client that reads as it
   * comes); a cut sooner is a broker bug. A client that lagged in reading may see a dropped cut sooner:
   * that is reported, with the time, for a person to judge.
   */
  finish(closeGraceMs = 2000): void {
    if (this.pending.length === 0) return;
    const waited = Date.now() - this.pendingSince;
    if (waited >= closeGraceMs) {
      this.droppedMidPacket = true;
      return;
    }
    this.violation(`the broker's output ends inside a packet ${waited} ms after the packet began (a drop for not reading comes after ${closeGraceMs} ms): ${this.pending.subarray(0, 16).toString('hex')}`);
  }

  /** What the broker sent, for failure reports. */
  outputHex(max = 256): string {
    const all = Buffer.concat(this.bytes);
    return all.subarray(0, max).toString('hex') + (all.length > max ? `…(${this.byteCount} bytes)` : '');
  }
}
