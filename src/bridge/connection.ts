// MQTT.js client options for a bridge, and readable causes for refused or failed connections.
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { BridgeConfig } from './config.js';

/** Packet ids 1..SENDER_PACKET_IDS belong to the outbox sender; the ids above it to MQTT.js (birth, subscriptions). */
export const SENDER_PACKET_IDS = 65535 - 1024;

/** MQTT.js's packet ids, cycling through the top 1024 so they never collide with the sender's. */
export class ClientPacketIds implements NonNullable<IClientOptions['messageIdProvider']> {
  private last = 65535;

  allocate(): number {
    this.last = this.last >= 65535 ? SENDER_PACKET_IDS + 1 : this.last + 1;
    return this.last;
  }

  getLastAllocated(): number {
    return this.last;
  }

  register(id: number): boolean {
    return id > SENDER_PACKET_IDS;
  }

  deallocate(): void {}

  clear(): void {}
}

/** Builds the options of one connection attempt. Reads TLS files each time so a fixed certificate is picked up without a restart. */
export function connectOptions(config: BridgeConfig): IClientOptions {
  const v5 = config.protocolVersion === 5;
  const options: IClientOptions = {
    clientId: config.clientId,
    keepalive: config.keepaliveSeconds,
    protocolVersion: config.protocolVersion,
    clean: config.cleanSession,
    // Reconnects, resubscriptions and the outgoing queue are the bridge's own business: one MQTT.js client per connection.
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    connectTimeout: config.connectTimeoutMs,
    messageIdProvider: new ClientPacketIds(),
    // Every PUBACK would otherwise clear and re-arm the keepalive timer; a PINGREQ per keepalive period costs nothing.
    reschedulePings: false,
  };
  // MQTT.js traces every packet through `debug`; skip that unless someone asked for traces (DEBUG=mqttjs*).
  if (process.env.DEBUG === undefined || process.env.DEBUG === '') options.log = () => undefined;
  if (config.username !== undefined) options.username = config.username;
  if (config.password !== undefined) options.password = config.password;
  if (v5) {
    options.properties = {
      sessionExpiryInterval: config.sessionExpirySeconds ?? (config.cleanSession ? 0 : 7 * 24 * 3600),
    };
  }
  if (config.statusTopic !== undefined) {
    options.will = { topic: config.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true };
  }
  if (config.tls !== undefined) {
    const { ca, cert, key, rejectUnauthorized, servername } = config.tls;
    if (ca !== undefined) options.ca = readTlsFile(ca, 'tls.ca');
    if (cert !== undefined) options.cert = readTlsFile(cert, 'tls.cert');
    if (key !== undefined) options.key = readTlsFile(key, 'tls.key');
    options.rejectUnauthorized = rejectUnauthorized;
    if (servername !== undefined) options.servername = servername;
  }
  return options;
}

function readTlsFile(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw new Error(`cannot read ${field} file "${path}" (${code})`);
  }
}

const connackCauses: Record<number, string> = {
  1: 'unacceptable protocol version (the remote does not speak this MQTT version; try protocolVersion 4)',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version (try protocolVersion 4)',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
  0x95: 'packet too large',
  0x97: 'quota exceeded',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9f: 'connection rate exceeded',
};

const tlsHints: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the remote certificate is self-signed: set tls.ca to the CA that signed it',
  SELF_SIGNED_CERT_IN_CHAIN: 'the remote certificate chain ends in an unknown CA: set tls.ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the remote certificate is signed by an unknown CA: set tls.ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the remote certificate is signed by an unknown CA: set tls.ca',
  CERT_HAS_EXPIRED: 'the remote certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the remote certificate does not name this host: check the URL host or tls.servername',
  ECONNREFUSED: 'nothing listens at the remote address (connection refused)',
  ENOTFOUND: 'the remote host name does not resolve',
  ETIMEDOUT: 'the remote did not answer in time',
  EHOSTUNREACH: 'the remote host is unreachable',
};

/** How the bridge reaches its remote, for hints that depend on it. */
export interface BridgeTransport {
  /** mqtts:// or wss:// */
  tls: boolean;
  /** A client certificate is configured (mutual TLS). */
  clientCertificate: boolean;
}

export function transportOf(config: Pick<BridgeConfig, 'url' | 'tls'>): BridgeTransport {
  return { tls: /^(mqtts|wss):/i.test(config.url), clientCertificate: config.tls?.cert !== undefined };
}

/** A reset says little by itself; what it usually means depends on the transport. */
function resetHint(transport: BridgeTransport | undefined): string {
  if (transport?.clientCertificate) return 'the remote closed the connection (with mutual TLS: the remote may have rejected the client certificate)';
  if (transport?.tls) return 'the remote closed the connection (if it requires a client certificate: set tls.cert and tls.key)';
  return 'the remote closed the connection (is this the port of a plain MQTT listener, and does the broker accept this client?)';
}

/** A one-line cause for a failed connection attempt, naming the CONNACK code when there is one. */
export function describeConnectError(err: unknown, protocolVersion: 4 | 5, transport?: BridgeTransport): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number') {
    const cause = connackCauses[code] ?? 'refused';
    const hex = `0x${code.toString(16).padStart(2, '0')}`;
    return `remote refused the connection: ${cause} (CONNACK ${protocolVersion === 5 ? 'reason code' : 'return code'} ${code}, ${hex})`;
  }
  if (typeof code === 'string') {
    if (/CERTIFICATE_REQUIRED/.test(code)) return `the remote requires a client certificate: set tls.cert and tls.key [${code}]`;
    if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|DECRYPT_ERROR|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED)/.test(code)) {
      return `the remote rejected the client certificate (tls.cert not signed by a CA it trusts, expired or revoked?) [${code}]`;
    }
    const hint = code === 'ECONNRESET' ? resetHint(transport) : tlsHints[code];
    return hint !== undefined ? `${hint} [${code}: ${err.message}]` : `${err.message} [${code}]`;
  }
  if (/certificate required|alert/i.test(err.message)) {
    return `TLS handshake failed: ${err.message} (the remote may require or reject the client certificate: check tls.cert/tls.key)`;
  }
  return err.message;
}

/** PUBACK reason codes for which resending the same message cannot succeed. */
export const permanentPubackCodes = new Set([0x87, 0x90, 0x95, 0x99, 0x9a]);
