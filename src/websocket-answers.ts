// What a WebSocket listener says to HTTP that is not an MQTT WebSocket upgrade: a plain GET
// (a browser, curl, a health checker pointed at the wrong port) gets 426 Upgrade Required, an
// upgrade or request on another path 404, a malformed upgrade 400 — each with a one-line body and
// one log line, instead of a silent close or a request left hanging.

import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { Logger } from './log.js';

export interface WebSocketAnswersOptions {
  /** The MQTT path ("/mqtt"). */
  path: string;
  /** Listener name for the log line (its url), read when a line is written. */
  listener: () => string;
  logger: Logger;
}

function pathOf(request: http.IncomingMessage): string {
  return (request.url ?? '/').split('?', 1)[0]!;
}

function peer(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/** Writes a whole HTTP/1.1 response on a raw upgrade socket, then closes it. */
export function refuseUpgrade(socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = `${body}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(text)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}

/**
 * Wires an http(s) server and a `noServer` WebSocketServer together: upgrades on `path` go to `wss`,
 * everything else is answered and logged here.
 */
export function answerNonMqttHttp(web: http.Server, wss: WebSocketServer, options: WebSocketAnswersOptions, onConnection: Parameters<WebSocketServer['handleUpgrade']>[3]): void {
  const { path, logger } = options;
  web.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const onPath = pathOf(request) === path;
    const status = onPath ? 426 : 404;
    const body = onPath
      ? `this is an MQTT over WebSocket endpoint: connect with an MQTT client to ws(s)://…${path} (subprotocol "mqtt")`
      : `not found: MQTT over WebSocket is on ${path}`;
    logger.info({ listener: options.listener(), address: peer(request.socket), method: request.method, path: request.url, status },
      onPath ? 'plain HTTP request on a WebSocket listener: 426 Upgrade Required' : 'HTTP request for an unknown path: 404');
    const text = `${body}\n`;
    response.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Connection: 'close',
      ...(onPath ? { Upgrade: 'websocket' } : {}),
    });
    response.end(text);
  });
  web.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(request) !== path) {
      logger.info({ listener: options.listener(), address: peer(request.socket), path: request.url, status: 404 }, `WebSocket upgrade refused: wrong path (MQTT is on ${path})`);
      refuseUpgrade(socket, 404, `not found: MQTT over WebSocket is on ${path}`);
      return;
    }
    wss.handleUpgrade(request, socket, head, onConnection);
  });
  // ws found the upgrade malformed (method, Upgrade, Sec-WebSocket-Key/Version, subprotocol header).
  wss.on('wsClientError', (error: Error, socket: Duplex, request: http.IncomingMessage) => {
    const status = request.method !== 'GET' ? 405 : 400;
    logger.info({ listener: options.listener(), address: peer(request.socket), path: request.url, status, reason: error.message }, `WebSocket upgrade refused: ${error.message}`);
    refuseUpgrade(socket, status, `WebSocket upgrade refused: ${error.message}`, status === 400 && /Version/.test(error.message) ? { 'Sec-WebSocket-Version': '13' } : {});
  });
}
