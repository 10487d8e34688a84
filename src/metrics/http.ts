// The optional HTTP endpoint: GET /metrics (Prometheus text format) and GET /healthz.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { FieldgateMetrics } from './registry.js';

export interface MetricsServerOptions {
  /** Default 127.0.0.1. Use 0.0.0.0 (or the LAN address) for a Prometheus server elsewhere. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** The gateway's metrics (collectors run on each scrape)… */
  metrics?: FieldgateMetrics;
  /** …or any prom-client registry, with an optional hook run before each scrape. */
  registry?: Registry;
  beforeScrape?: () => Promise<void> | void;
  /** True when the broker accepts connections and the database is writable. */
  health: () => Promise<boolean> | boolean;
  /** A health check slower than this counts as unhealthy. Default 5000 ms. */
  healthTimeoutMs?: number;
  logger?: Logger;
}

export interface MetricsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

async function checkHealth(health: MetricsServerOptions['health'], timeoutMs: number): Promise<{ ok: boolean; reason?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: boolean; reason: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `health check took longer than ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    const result = Promise.resolve()
      .then(health)
      .then(
        (ok) => ({ ok: ok === true }),
        (err: unknown) => ({ ok: false, reason: err instanceof Error ? err.message : String(err) }),
      );
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const registry = options.metrics?.registry ?? options.registry;
  if (!registry) throw new Error('startMetricsServer needs `metrics` or `registry`');
  const beforeScrape = options.metrics ? () => options.metrics!.refresh() : options.beforeScrape;
  const host = options.host ?? '127.0.0.1';
  const healthTimeoutMs = options.healthTimeoutMs ?? 5_000;

  const send = (res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8', head = false) => {
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(head ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      await beforeScrape?.();
      send(res, 200, await registry.metrics(), registry.contentType, head);
    } else if (path === '/healthz') {
      const { ok, reason } = await checkHealth(options.health, healthTimeoutMs);
      if (!ok) options.logger?.warn({ reason }, 'health check failed');
      send(res, ok ? 200 : 503, ok ? 'ok\n' : `unhealthy${reason ? `: ${reason}` : ''}\n`, undefined, head);
    } else {
      send(res, 404, 'not found (try /metrics or /healthz)\n');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.logger?.error({ err }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? ' (already in use: pick another metrics port)' : err.code === 'EACCES' ? ' (not allowed: use a port above 1023)' : '';
      reject(new Error(`metrics endpoint cannot listen on ${host}:${options.port}: ${err.message}${hint}`));
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => options.logger?.error({ err }, 'metrics endpoint error'));
  const { port } = server.address() as AddressInfo;

  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
