// The web console's HTTP server: the static UI, a login (when asked for) and MQTT over WebSocket on
// /mqtt into the broker, so the browser is one more MQTT client of the management API under the same
// users and ACL. Nothing here runs on a timer: with no browser connected it costs no CPU.
//
// Login (a user of the password file) is needed on a non-loopback address or with auth "required":
// a session cookie (HttpOnly, SameSite=Strict), a CSRF token in the login and logout forms (double
// submit for the login, the session's own token for the logout), failed logins limited per address
// and logged, and the WebSocket upgrade accepted only from a page of this origin (the Origin header:
// browsers do not apply CORS to WebSockets). Without a login, only loopback Host names are served, so
// a web page elsewhere cannot reach the console through DNS rebinding.
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log.js';
import { refuseUpgrade } from '../websocket-answers.js';
import { gzippedTotal, loadAssets, type Asset } from './assets.js';
import { loginPage } from './login-page.js';
import { DEFAULT_LOGIN_LIMIT, LoginLimiter, randomToken, sameToken, SESSION_LIFETIME_MS, SessionStore, type ConsoleSession, type LoginLimit } from './sessions.js';

export const MQTT_PATH = '/mqtt';
const SESSION_COOKIE = 'fieldgate_session';
const LOGIN_CSRF_COOKIE = 'fieldgate_login';
const MAX_FORM_BYTES = 4096;
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  // Not no-referrer: with it Chromium sends "Origin: null" on the login form's POST.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};

export interface ConsoleServerOptions {
  broker: Broker;
  host: string;
  port: number;
  /** A login is needed (non-loopback address, or auth "required"). */
  loginRequired: boolean;
  /** Checks a user's password against the password file; undefined when there is none (no login can succeed). */
  checkPassword?: (user: string, password: string, address: string) => boolean;
  gatewayId: string;
  assetsDir: string;
  logger: Logger;
  loginLimit?: LoginLimit;
}

export interface ConsoleServer {
  readonly url: string;
  readonly port: number;
  /** Gzipped bytes of every asset; 0 when the UI was not built. */
  readonly assetBytesGzipped: number;
  readonly built: boolean;
  /** Browsers connected over /mqtt now. */
  browsers(): number;
  close(): Promise<void>;
}

export function isLoopbackName(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h.startsWith('127.') || h === '::1';
}

function cookies(request: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return out;
}

function peer(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/** The Host header's name without the port. */
function hostnameOf(request: http.IncomingMessage): string {
  const host = request.headers.host ?? '';
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
}

/** A request from a page of this console (an absent Origin only for plain navigations, never for an upgrade). */
function sameOrigin(request: http.IncomingMessage, required: boolean): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return !required;
  const host = request.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

function readForm(request: http.IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        resolve(undefined);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    request.on('error', () => resolve(undefined));
  });
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { broker, logger, loginRequired } = options;
  const assets = loadAssets(options.assetsDir);
  const sessions = new SessionStore();
  const limiter = new LoginLimiter(options.loginLimit ?? DEFAULT_LOGIN_LIMIT);
  /** Open WebSockets by session, closed at its logout. */
  const socketsOf = new Map<string, Set<Duplex>>();
  // ws (~7 MiB of RSS) is loaded only when a console is served.
  const { WebSocketServer, createWebSocketStream } = await import('ws');
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 2 * broker.options.maximumPacketSize + 64 * 1024,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
  });
  wss.on('error', () => undefined);
  let listenerName = `console://${options.host}:${options.port}`;

  const sessionOf = (request: http.IncomingMessage): ConsoleSession | undefined => sessions.get(cookies(request)[SESSION_COOKIE]);

  const send = (response: http.ServerResponse, status: number, body: string | Buffer, headers: Record<string, string | string[]> = {}) => {
    response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
    response.end(body);
  };
  const redirect = (response: http.ServerResponse, to: string, headers: Record<string, string | string[]> = {}) => send(response, 303, '', { Location: to, ...headers });

  const serveAsset = (request: http.IncomingMessage, response: http.ServerResponse, asset: Asset) => {
    if (request.headers['if-none-match'] === asset.etag) {
      response.writeHead(304, { ...SECURITY_HEADERS, ETag: asset.etag });
      response.end();
      return;
    }
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzip : asset.body;
    response.writeHead(200, {
      ...SECURITY_HEADERS, 'Content-Type': asset.type, 'Content-Length': body.length, ETag: asset.etag, Vary: 'Accept-Encoding',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  };

  const showLogin = (response: http.ServerResponse, status: number, message?: string, user?: string) => {
    const token = randomToken();
    send(response, status, loginPage({ csrf: token, message, gatewayId: options.gatewayId, noPasswordFile: !options.checkPassword, user: user?.slice(0, 200) }), {
      'Content-Type': 'text/html; charset=utf-8',
      'Set-Cookie': `${LOGIN_CSRF_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`,
    });
  };

  const login = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    const address = request.socket.remoteAddress ?? '?';
    const form = await readForm(request);
    if (!form) return send(response, 413, 'login form too large');
    if (!sameOrigin(request, false) || !sameToken(form.get('csrf') ?? undefined, cookies(request)[LOGIN_CSRF_COOKIE])) {
      logger.warn({ address, listener: listenerName }, 'console login refused: missing or wrong CSRF token (a form from another site, or an expired page)');
      return showLogin(response, 403, 'The login form expired: please try again.');
    }
    const user = form.get('username') ?? '';
    const wait = limiter.retryAfterMs(address);
    if (wait > 0) {
      logger.warn({ address, user, retryAfterSeconds: Math.ceil(wait / 1000) }, 'console login refused: too many failed attempts from this address');
      response.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
      return showLogin(response, 429, `Too many failed logins: try again in ${Math.ceil(wait / 1000)} s.`, user);
    }
    let ok = false;
    try {
      ok = user.length > 0 && options.checkPassword !== undefined && options.checkPassword(user, form.get('password') ?? '', address);
    } catch (error) {
      logger.error({ err: error }, 'console login: the password check failed');
    }
    if (!ok) {
      limiter.failed(address);
      logger.warn({ address, user }, 'console login failed: wrong user name or password');
      return showLogin(response, 401, 'Wrong user name or password.', user);
    }
    limiter.succeeded(address);
    const session = sessions.create(user);
    logger.info({ address, user }, 'console login');
    redirect(response, '/', {
      'Set-Cookie': [
        `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_LIFETIME_MS / 1000}`,
        `${LOGIN_CSRF_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
      ],
    });
  };

  const logout = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    const form = await readForm(request);
    const session = sessionOf(request);
    if (!form || !session || !sameOrigin(request, false) || !sameToken(form.get('csrf') ?? undefined, session.csrf)) {
      return send(response, 403, 'logout refused: not logged in, or the form did not come from this console');
    }
    sessions.delete(session.id);
    for (const socket of socketsOf.get(session.id) ?? []) socket.destroy();
    socketsOf.delete(session.id);
    logger.info({ address: request.socket.remoteAddress, user: session.user }, 'console logout');
    redirect(response, '/login', { 'Set-Cookie': `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` });
  };

  const onRequest = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const url = (request.url ?? '/').split('?', 1)[0]!;
    if (!loginRequired && !isLoopbackName(hostnameOf(request))) {
      logger.warn({ address: peer(request.socket), host: request.headers.host }, 'console request with a non-loopback Host refused (the console takes no login here)');
      return send(response, 421, 'this console serves only loopback host names (localhost, 127.0.0.1)');
    }
    const method = request.method ?? 'GET';
    if (url === '/login' && method === 'POST') return void login(request, response);
    if (url === '/logout' && method === 'POST') return void logout(request, response);
    if (method !== 'GET' && method !== 'HEAD') return send(response, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    if (url === '/favicon.ico') return send(response, 204, '');
    if (url === MQTT_PATH) return send(response, 426, `MQTT over WebSocket: connect with an MQTT client to ws://…${MQTT_PATH} (subprotocol "mqtt")`, { Upgrade: 'websocket' });
    const asset = url.startsWith('/assets/') ? assets.get(url.slice('/assets'.length)) : undefined;
    // The scripts and styles hold no data: the login page uses them too.
    if (asset) return serveAsset(request, response, asset);
    const session = loginRequired ? sessionOf(request) : undefined;
    if (url === '/login') return loginRequired ? (session ? redirect(response, '/') : showLogin(response, 200)) : redirect(response, '/');
    if (loginRequired && !session) return url === '/' ? redirect(response, '/login') : send(response, 401, 'log in first: /login');
    if (url === '/session') {
      const body = JSON.stringify({ user: session?.user ?? null, csrf: session?.csrf ?? null, loginRequired, gatewayId: options.gatewayId, mqttPath: MQTT_PATH });
      return send(response, 200, body, { 'Content-Type': 'application/json' });
    }
    const index = assets.get('/index.html');
    if (url === '/' || url === '/index.html') {
      if (!index) return send(response, 503, 'the web console was not built: run `npm run build` in the fieldgate package');
      return serveAsset(request, response, index);
    }
    send(response, 404, 'not found');
  };

  const onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = (request.url ?? '/').split('?', 1)[0]!;
    const address = peer(request.socket);
    if (url !== MQTT_PATH) return refuseUpgrade(socket, 404, `not found: MQTT over WebSocket is on ${MQTT_PATH}`);
    if (!sameOrigin(request, true) || (!loginRequired && !isLoopbackName(hostnameOf(request)))) {
      logger.warn({ address, origin: request.headers.origin, host: request.headers.host }, 'console WebSocket refused: not from a page of this console (Origin)');
      return refuseUpgrade(socket, 403, 'WebSocket refused: Origin does not match this console');
    }
    const session = loginRequired ? sessionOf(request) : undefined;
    if (loginRequired && !session) {
      logger.info({ address }, 'console WebSocket refused: not logged in');
      return refuseUpgrade(socket, 401, 'log in first: /login');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      if (session) {
        const set = socketsOf.get(session.id) ?? new Set<Duplex>();
        socketsOf.set(session.id, set.add(stream));
        stream.once('close', () => {
          set.delete(stream);
          if (set.size === 0 && socketsOf.get(session.id) === set) socketsOf.delete(session.id);
        });
      }
      // Logged in: the connection is that user, whatever its CONNECT says (as a TLS client certificate's name).
      broker.handle(stream, { address, listener: listenerName, allowAnonymous: !loginRequired, certificateUser: session?.user });
    });
  };

  const server = http.createServer();
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  server.on('clientError', (_error, socket) => socket.destroy());
  server.maxConnections = 256;
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const where = `web console on ${options.host}:${options.port}`;
      reject(new Error(error.code === 'EADDRINUSE' ? `${where}: the port is already in use; choose another ("console": { "port": … } in the config, or --console-port)` : `${where}: ${error.message}`));
    };
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      server.on('error', (error) => logger.error({ err: error }, 'web console server error'));
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  const shownHost = address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;
  listenerName = `console ${url}`;
  return {
    url,
    port: address.port,
    assetBytesGzipped: gzippedTotal(assets),
    built: assets.has('/index.html'),
    browsers: () => wss.clients.size,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
    }),
  };
}
