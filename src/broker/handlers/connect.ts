import { randomBytes } from 'node:crypto';
import type mqttPacket from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { resume } from '../outbound.js';
import { Session } from '../session.js';
import { isValidTopicName } from '../topics.js';
import type { Message } from '../types.js';

// CONNACK return codes (3.1.1) and reason codes (5.0).
const V3_IDENTIFIER_REJECTED = 0x02;
const V3_BAD_CREDENTIALS = 0x04;
const V3_NOT_AUTHORIZED = 0x05;
const V5_NOT_AUTHORIZED = 0x87;
const V5_BAD_CREDENTIALS = 0x86;
const V5_TOPIC_NAME_INVALID = 0x90;
const V5_SESSION_TAKEN_OVER = 0x8e;
// 3.1/3.1.1 CONNACK accepting the connection (§3.2), encoded once: written as they are, never modified.
const V3_CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const V3_CONNACK_ACCEPTED_SESSION_PRESENT = Buffer.from([0x20, 0x02, 0x01, 0x00]);
/** The CONNECT properties of a 3.1/3.1.1 client: none (shared, read only). */
const NO_PROPERTIES: NonNullable<mqttPacket.IConnectPacket['properties']> = Object.freeze({});

/** CONNECT (MQTT 3.1.1 §3.1, 5.0 §3.1): validate, authenticate, take over or resume the session, CONNACK. */
export function handleConnect(broker: Broker, connection: Connection, packet: mqttPacket.IConnectPacket): void {
  const version = packet.protocolVersion ?? 4;
  const v5 = version === 5;
  connection.protocolVersion = version;
  const cleanStart = packet.clean !== false;
  let clientId = packet.clientId ?? '';
  let assignedClientId: string | undefined;

  const properties = v5 ? packet.properties ?? NO_PROPERTIES : NO_PROPERTIES;
  // Known before any answer, so that even a refusing CONNACK respects it [MQTT-3.1.2-24].
  connection.clientMaximumPacketSize = properties.maximumPacketSize ?? 0;
  // The decoder (decode/connect.ts) checked the flags, every length, the UTF-8 of every string and
  // the properties (which, how often, ranges such as Receive Maximum and Maximum Packet Size ≠ 0).
  if (clientId === '') {
    if (v5) {
      clientId = assignedClientId = `fieldgate-${randomBytes(8).toString('hex')}`;
    } else if (version === 3 || !cleanStart) {
      // [MQTT-3.1.3-8]: an empty client id with CleanSession=0 is rejected with 0x02 (3.1 always needs one).
      return refuse(broker, connection, V3_IDENTIFIER_REJECTED, 'empty client id with a persistent session', packet);
    } else {
      clientId = `fieldgate-${randomBytes(8).toString('hex')}`;
    }
  }

  if (properties.authenticationMethod !== undefined) {
    // No enhanced authentication methods are offered (v5 §4.12): 0x8C Bad authentication method.
    return refuse(broker, connection, 0x8c, `authentication method "${properties.authenticationMethod}" not supported`, packet);
  }

  if (!connection.allowAnonymous && connection.certificateUser === undefined) {
    if (packet.username === undefined) {
      return refuse(broker, connection, v5 ? V5_NOT_AUTHORIZED : V3_NOT_AUTHORIZED, 'anonymous clients are not allowed on this listener', packet);
    }
    if (!broker.options.authenticate) {
      // Credentials are required here but there is nothing to check them against (as Mosquitto 2).
      return refuse(broker, connection, v5 ? V5_NOT_AUTHORIZED : V3_NOT_AUTHORIZED, 'this listener requires credentials and no password file is configured', packet);
    }
  }
  const authenticate = broker.options.authenticate;
  if (authenticate) {
    let accepted = false;
    try {
      accepted = authenticate({ clientId, username: packet.username, password: packet.password, address: connection.address, certificateUser: connection.certificateUser }) === true;
    } catch (error) {
      broker.logger.error({ err: error }, 'authentication hook failed; refusing');
    }
    if (!accepted) return refuse(broker, connection, v5 ? V5_BAD_CREDENTIALS : V3_BAD_CREDENTIALS, `bad user name or password for "${clientId}"`, packet);
  }

  let will: Message | null = null;
  let willDelay = 0;
  let willExpiry: number | undefined;
  if (packet.will) {
    if (!isValidTopicName(packet.will.topic)) {
      if (v5) return refuse(broker, connection, V5_TOPIC_NAME_INVALID, 'invalid will topic', packet);
      broker.logger.info({ address: connection.address }, 'connection closed: invalid will topic');
      return connection.close();
    }
    const wp = packet.will.properties;
    willDelay = v5 ? wp?.willDelayInterval ?? 0 : 0;
    const { willDelayInterval: _delay, messageExpiryInterval, ...applicationProperties } = wp ?? {};
    will = {
      topic: packet.will.topic,
      payload: Buffer.isBuffer(packet.will.payload) ? packet.will.payload : Buffer.from(packet.will.payload ?? ''),
      qos: packet.will.qos ?? 0,
      retain: packet.will.retain ?? false,
      properties: v5 && Object.keys(applicationProperties).length > 0 ? applicationProperties : undefined,
      expiresAt: undefined,
      origin: clientId,
    };
    willExpiry = messageExpiryInterval;
  }

  const requestedExpiry = v5 ? properties.sessionExpiryInterval ?? 0 : cleanStart ? 0 : broker.options.persistentSessionExpiry;
  const expiryInterval = v5 ? Math.min(requestedExpiry, broker.options.maxSessionExpiry) : requestedExpiry;
  if (expiryInterval > 0 && !broker.hasRoomForPersistentSession(clientId)) {
    return refuse(broker, connection, v5 ? 0x97 : 0x03, `persistent sessions at their limit (${broker.options.maxPersistentSessions})`);
  }

  // Session takeover [MQTT-3.1.4-3]: the existing connection with this client id is closed.
  const existing = broker.sessions.get(clientId);
  if (existing?.connection) {
    const old = existing.connection;
    old.closeReason = `session taken over by a new connection from ${connection.address}`;
    // Ended gracefully (not destroyed) so that the DISCONNECT reaches it; the session is detached at once.
    old.close(V5_SESSION_TAKEN_OVER, 'session taken over');
  }

  let session = broker.sessions.get(clientId);
  let sessionPresent = false;
  if (session && cleanStart) {
    broker.endSession(session);
    session = undefined;
  }
  if (session) {
    sessionPresent = true;
    session.clearTimers();
    // A reconnect before the will delay elapsed cancels the will [MQTT-3.1.3-9 (v5)].
    session.pendingWill = null;
    session.protocolVersion = version;
    if (session.persistent && expiryInterval === 0) broker.store.dropSession(clientId);
    session.expiryInterval = expiryInterval;
  } else {
    session = new Session(clientId, version, expiryInterval);
    broker.sessions.set(clientId, session);
  }
  if (session.persistent) {
    broker.store.saveSession(clientId, version, expiryInterval, null);
    if (!sessionPresent) for (const sub of session.subscriptions.values()) broker.store.saveSubscription(clientId, sub);
  }
  session.disconnectedAt = null;

  let keepAlive = packet.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  const cap = broker.options.maxKeepAlive;
  if (v5 && cap > 0 && (keepAlive === 0 || keepAlive > cap)) {
    keepAlive = cap;
    serverKeepAlive = cap;
  }
  connection.keepAliveMs = keepAlive * 1000;
  connection.inflightWindow = Math.min(properties.receiveMaximum ?? 65535, broker.options.maxInflightMessages);
  connection.clientTopicAliasMaximum = properties.topicAliasMaximum ?? 0;
  connection.will = will ? { message: will, delaySeconds: willDelay, expirySeconds: willExpiry } : null;
  connection.identity = { clientId, username: connection.certificateUser ?? packet.username, address: connection.address, local: false };
  connection.session = session;
  connection.connected = true;
  session.connection = connection;
  broker.stats.clientsConnected++;
  if (broker.stats.clientsConnected > broker.stats.clientsMaximum) broker.stats.clientsMaximum = broker.stats.clientsConnected;

  if (v5) {
    connection.send({
      cmd: 'connack', reasonCode: 0, sessionPresent,
      properties: {
        receiveMaximum: broker.options.receiveMaximum,
        maximumPacketSize: broker.options.maximumPacketSize,
        topicAliasMaximum: broker.options.topicAliasMaximum,
        retainAvailable: true,
        wildcardSubscriptionAvailable: true,
        subscriptionIdentifiersAvailable: true,
        sharedSubscriptionAvailable: true,
        ...(assignedClientId !== undefined ? { assignedClientIdentifier: assignedClientId } : {}),
        ...(serverKeepAlive !== undefined ? { serverKeepAlive } : {}),
        // The server's cap on the Session Expiry Interval is told to the client (MQTT 5.0 §3.2.2.3.2).
        ...(expiryInterval !== requestedExpiry ? { sessionExpiryInterval: expiryInterval } : {}),
      },
    });
  } else {
    connection.write(sessionPresent ? V3_CONNACK_ACCEPTED_SESSION_PRESENT : V3_CONNACK_ACCEPTED);
  }
  if (broker.logger.isLevelEnabled('info')) {
    broker.logger.info({
      clientId, username: connection.identity.username, listener: connection.listener || undefined, address: connection.address,
      protocol: version, cleanStart, sessionPresent, keepAlive,
    }, 'client connected');
  }
  broker.applyReadAccess(session, connection.identity);
  resume(broker, session);
}

const AUTH_REFUSALS = new Set([V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED, V5_BAD_CREDENTIALS, V5_NOT_AUTHORIZED]);

function refuse(broker: Broker, connection: Connection, code: number, reason: string, packet?: mqttPacket.IConnectPacket): void {
  if (AUTH_REFUSALS.has(code)) broker.stats.authFailures++;
  broker.logger.info({
    clientId: packet?.clientId || undefined, username: connection.certificateUser ?? packet?.username, listener: connection.listener || undefined,
    address: connection.address, code,
  }, `connection refused: ${reason}`);
  if (connection.protocolVersion === 5) connection.send({ cmd: 'connack', reasonCode: code, sessionPresent: false, properties: { reasonString: reason } });
  else connection.send({ cmd: 'connack', returnCode: code < 0x80 ? code : V3_BAD_CREDENTIALS, sessionPresent: false });
  connection.close();
}

