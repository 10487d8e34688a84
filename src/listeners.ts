// Network listeners in front of the broker: MQTT over TCP, TLS, WebSocket and secure WebSocket.
// Each accepted stream is handed to broker.handle(); the broker never sees the transport.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Broker } from './broker/broker.js';
import { peerAddress } from './broker/connection.js';
import type { ListenerConfig } from './config/gateway-config.js';
import { answerNonMqttHttp } from './websocket-answers.js';

export interface OpenListener {
  type: ListenerConfig['type'];
  host: string;
  port: number;
  allowAnonymous: boolean;
  url: string;
  /** Network connections (TCP, before any handshake) open now and accepted since start, for metrics. */
  connections(): { open: number; total: number };
  /** TLS listeners: re-reads the certificate, key and CA for new connections (SIGHUP after a renewal). Throws when they are unusable; the old ones stay. */
  reloadTls?(): void;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

function certificateIdentity(socket: tls.TLSSocket, enabled: boolean): string | undefined {
  if (!enabled || !socket.authorized) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : Array.isArray(cn) ? cn[0] : undefined;
}

function tlsOptions(config: NonNullable<ListenerConfig['tls']>): tls.TlsOptions {
  return {
    cert: fs.readFileSync(config.cert),
    key: fs.readFileSync(config.key),
    ca: config.ca ? fs.readFileSync(config.ca) : undefined,
    requestCert: config.requireClientCertificate || config.useIdentityAsUsername,
    rejectUnauthorized: config.requireClientCertificate,
  };
}

function listenError(config: ListenerConfig, error: NodeJS.ErrnoException): Error {
  const where = `${config.type} listener on ${config.host}:${config.port}`;
  if (error.code === 'EADDRINUSE') return new Error(`${where}: the port is already in use (another MQTT broker or fieldgate?); stop it or choose another port (--port, or "port" in the config)`);
  if (error.code === 'EACCES') return new Error(`${where}: not allowed to bind this port (ports below 1024 need CAP_NET_BIND_SERVICE)`);
  if (error.code === 'EADDRNOTAVAIL') return new Error(`${where}: this machine has no address ${config.host}`);
  return new Error(`${where}: ${error.message}`);
}

export async function openListener(broker: Broker, config: ListenerConfig, allowAnonymous: boolean, maxConnections: number): Promise<OpenListener> {
  const useIdentity = config.tls?.useIdentityAsUsername ?? false;
  // Known once bound (port 0 picks one); log lines written before that use the configured address.
  let listenerName = `${config.type}://${config.host}:${config.port}`;
  let server: net.Server;
  let secureServer: tls.Server | undefined;
  switch (config.type) {
    case 'mqtt':
      server = net.createServer({ noDelay: true }, (socket) => {
        broker.handle(socket, { address: peerAddress(socket), allowAnonymous, listener: listenerName });
      });
      break;
    case 'mqtts':
      server = secureServer = tls.createServer(tlsOptions(config.tls!), (socket) => {
        socket.setNoDelay(true);
        broker.handle(socket, {
          address: peerAddress(socket), allowAnonymous, listener: listenerName,
          certificateUser: certificateIdentity(socket, useIdentity),
        });
      });
      break;
    case 'ws':
    case 'wss': {
      // Loaded only for a WebSocket listener: ws costs ~7 MiB of RSS a gateway without one does not need.
      const { WebSocketServer, createWebSocketStream } = await import('ws');
      const web = config.type === 'ws' ? http.createServer() : (secureServer = https.createServer(tlsOptions(config.tls!)));
      const wss = new WebSocketServer({
        noServer: true,
        // ws buffers a whole message before handing it on (default limit 100 MiB): bound it by the
        // broker's packet size limit, with room for a client that puts several packets in one message.
        maxPayload: 2 * broker.options.maximumPacketSize + 64 * 1024,
        // MQTT over WebSocket uses the "mqtt" subprotocol [MQTT-6.0.0-3].
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
      wss.on('error', () => undefined);
      // Upgrades on the path go to ws; plain HTTP, other paths and malformed upgrades are answered (and logged) there.
      answerNonMqttHttp(web, wss, { path: config.path, listener: () => listenerName, logger: broker.logger }, (socket, request) => {
        const stream = createWebSocketStream(socket);
        stream.on('error', () => stream.destroy());
        const tlsSocket = request.socket as tls.TLSSocket;
        broker.handle(stream, {
          address: `${request.socket.remoteAddress}:${request.socket.remotePort}`, allowAnonymous, listener: listenerName,
          certificateUser: config.type === 'wss' ? certificateIdentity(tlsSocket, useIdentity) : undefined,
        });
      });
      server = web;
      break;
    }
  }
  server.maxConnections = maxConnections;
  const counts = { open: 0, total: 0 };
  // One listener function for all of this listener's sockets ('close' comes once): `once` would give
  // every socket a closure, a bound wrapper and its state (~250 bytes of an idle connection's heap).
  const closed = (): void => {
    counts.open--;
  };
  server.on('connection', (socket: net.Socket) => {
    counts.open++;
    counts.total++;
    socket.on('close', closed);
  });
  if (secureServer) {
    // A failed handshake (no or an untrusted client certificate, a client that does not trust ours):
    // one line, so a refused device can be diagnosed without it spamming at error level.
    secureServer.on('tlsClientError', (error, socket) => {
      broker.logger.info({ listener: config.type, address: `${socket.remoteAddress}:${socket.remotePort}`, reason: error.message }, 'TLS handshake failed');
    });
  }
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenError(config, error));
    server.once('error', failed);
    server.listen(config.port, config.host, () => {
      server.off('error', failed);
      server.on('error', (error) => broker.logger.error({ err: error, listener: config.type }, 'listener error'));
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  const path = config.type === 'ws' || config.type === 'wss' ? config.path : '';
  const shownHost = address.address.includes(':') ? `[${address.address}]` : address.address;
  listenerName = `${config.type}://${shownHost}:${address.port}${path}`;
  return {
    type: config.type, host: address.address, port: address.port, allowAnonymous,
    url: listenerName,
    connections: () => ({ ...counts }),
    reloadTls: secureServer ? () => secureServer!.setSecureContext(tlsOptions(config.tls!)) : undefined,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // http servers keep idle keep-alive sockets: the broker closes the MQTT ones itself.
      (server as http.Server).closeAllConnections?.();
    }),
  };
}
