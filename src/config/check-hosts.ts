// `fieldgate check`: the host names in the config resolve. A listen address that does not resolve
// stops `run` (an error); a peer that does not resolve now (the cloud broker, a Modbus TCP gateway)
// is retried by the running gateway, so it is a warning: the network may not be up yet.
import dns from 'node:dns';
import net from 'node:net';
import type { DeviceMapping } from '../devices/index.js';
import type { GatewayConfig } from './gateway-config.js';

export const DNS_TIMEOUT_MS = 2000;

/** Why `host` does not resolve (ENOTFOUND, a timeout …), or undefined when it does. */
export async function resolveProblem(host: string, timeoutMs = DNS_TIMEOUT_MS): Promise<string | undefined> {
  if (host === '' || net.isIP(host) !== 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer from DNS within ${timeoutMs / 1000} s`), timeoutMs);
  });
  const lookup = dns.promises.lookup(host).then(() => undefined, (error: NodeJS.ErrnoException) => (error.code === 'ENOTFOUND' ? 'no such host (ENOTFOUND)' : `${error.code ?? error.message}`));
  try {
    return await Promise.race([lookup, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkHosts(config: GatewayConfig, mapping: DeviceMapping | null, source: string): Promise<{ errors: string[]; warnings: string[] }> {
  const listen = [
    { where: 'broker.host', host: config.broker.host },
    ...config.listeners.map((l, i) => ({ where: `listeners[${i}].host`, host: l.host })),
    ...(config.metrics ? [{ where: 'metrics.host', host: config.metrics.host }] : []),
  ];
  const peers: Array<{ where: string; host: string; what: string }> = [];
  config.bridges.forEach((b, i) => {
    let host: string | undefined;
    try {
      host = new URL(b.url).hostname.replace(/^\[|\]$/g, '');
    } catch {
      host = undefined;
    }
    if (host) peers.push({ where: `${source}: bridges[${i}].url`, host, what: `the bridge "${b.name}" keeps retrying` });
  });
  for (const bus of mapping?.buses ?? []) {
    if ('host' in bus && typeof bus.host === 'string') peers.push({ where: `bus "${bus.id}"`, host: bus.host, what: 'the bus keeps retrying' });
  }
  const [listenProblems, peerProblems] = await Promise.all([
    Promise.all(listen.map((l) => resolveProblem(l.host))),
    Promise.all(peers.map((p) => resolveProblem(p.host))),
  ]);
  const errors = listen.flatMap((l, i) => (listenProblems[i] ? [`${source}: ${l.where}: "${l.host}" does not resolve: ${listenProblems[i]} (the gateway cannot listen there; use an address such as 0.0.0.0 or 127.0.0.1)`] : []));
  const warnings = peers.flatMap((p, i) => (peerProblems[i] ? [`${p.where}: "${p.host}" does not resolve now: ${peerProblems[i]}; ${p.what}`] : []));
  return { errors, warnings };
}
