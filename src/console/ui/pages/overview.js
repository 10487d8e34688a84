// Overview: who the gateway is, its listeners, message rates, bridges, devices, recent warnings.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Chart, Ring } from '../chart.js';
import { ago, Badge, bytes, html, Table, toneOf, useAction, useLink, useNow, useTopics } from '../util.js';

/**
 * Message rates: the gateway's history (one bucket per 10 s, asked again every bucket, so the buckets
 * from before this browser connected, when nobody was sent anything, do not stand for "out" for long),
 * else computed here from the $SYS counters.
 */
function useRates() {
  const [history] = useAction('history', { points: [] }, 10_000);
  const sys = useTopics('$SYS/broker/messages/+');
  const ring = useRef({ in: new Ring(360), out: new Ring(360), last: null });
  const [, setTick] = useState(0);
  useEffect(() => {
    const rx = Number(sys.get('$SYS/broker/messages/received')?.text);
    const tx = Number(sys.get('$SYS/broker/messages/sent')?.text);
    if (!Number.isFinite(rx) || !Number.isFinite(tx)) return;
    const now = Date.now() / 1000;
    const last = ring.current.last;
    if (last && now - last.t > 0.5 && rx >= last.rx) {
      ring.current.in.push(now, (rx - last.rx) / (now - last.t));
      ring.current.out.push(now, (tx - last.tx) / (now - last.t));
      setTick((n) => n + 1);
    }
    if (!last || now - last.t > 0.5) ring.current.last = { t: now, rx, tx };
  }, [sys]);
  if (history?.status === 'ok' && history.data.messages) {
    const { times, messages } = history.data;
    return [times.map((t) => t / 1000), messages.in, messages.out];
  }
  return [ring.current.in.t, ring.current.in.v, ring.current.out.v];
}

/** The newest value of a series, one decimal, or "…". */
function newest(series) {
  for (let i = series.length - 1; i >= 0; i--) if (series[i] !== null && series[i] !== undefined) return String(Math.round(series[i] * 10) / 10);
  return '…';
}

export function Overview({ info, devices, bridges, parts, session }) {
  const now = useNow(5000);
  const [clients] = useAction('clients', {}, 10_000);
  const [uptime] = useAction('info', {}, 60_000);
  const [logs] = useAction('logs', { level: 'warn', limit: 8 }, 15_000);
  const store = useTopics('$SYS/broker/store/+');
  const rates = useRates();
  const perListener = useMemo(() => {
    const counts = new Map();
    for (const c of clients?.data ?? []) counts.set(c.listener, (counts.get(c.listener) ?? 0) + 1);
    return counts;
  }, [clients]);
  const online = (devices ?? []).filter((d) => d.availability === 'online').length;
  const startedAt = info?.startedAt ? Date.parse(info.startedAt) : null;
  const dbSize = uptime?.data?.databaseBytes ?? uptime?.data?.database?.bytes;
  const warnings = [
    ...(parts ?? []).filter((p) => p.state !== 'running' && p.state !== 'stopped').map((p) => `${p.name}: ${p.state}: ${p.detail}`),
    ...(devices ?? []).filter((d) => d.availability !== 'online').map((d) => `device ${d.id} offline${d.lastError ? `: ${d.lastError}` : ''}`),
    ...(bridges ?? []).filter((b) => b.state !== 'connected').map((b) => `bridge ${b.name} disconnected${b.lastError ? `: ${b.lastError}` : ''}`),
    ...(store.get('$SYS/broker/store/state')?.text === 'failing' ? [`database writes failing: ${store.get('$SYS/broker/store/error')?.text}`] : []),
  ];
  const logLines = logs?.status === 'ok' ? logs.data.lines : [];
  return html`<section aria-labelledby="h-overview">
    <h2 id="h-overview">Overview</h2>
    <div class="cards">
      <div class="card"><h3>Gateway</h3><dl>
        <dt>Id</dt><dd data-testid="gateway-id">${info?.gatewayId ?? '…'}</dd>
        <dt>Version</dt><dd>${info?.version ?? '…'}</dd>
        <dt>Uptime</dt><dd>${startedAt ? ago((now - startedAt) / 1000) : '…'}</dd>
        <dt>Durability</dt><dd>${info?.durability ?? '…'}</dd>
        <dt>Database</dt><dd>${dbSize !== undefined ? bytes(dbSize) : store.get('$SYS/broker/store/state')?.text ?? '…'}</dd>
      </dl></div>
      <div class="card"><h3>Devices</h3><p class="big" data-testid="devices-online">${online} / ${(devices ?? []).length} online</p>
        <ul class="plain">${(devices ?? []).map((d) => html`<li><a href=${`#/device/${encodeURIComponent(d.id)}`}>${d.name || d.id}</a> <${Badge} tone=${toneOf(d.availability)}>${d.availability}<//></li>`)}</ul></div>
      <div class="card"><h3>Bridges</h3>${(bridges ?? []).length === 0 ? html`<p class="muted">no bridge configured</p>` : html`<ul class="plain">${bridges.map((b) => html`<li>${b.name} <${Badge} tone=${toneOf(b.state)}>${b.state}<//> <span class="muted">outbox ${b.outboxDepth}</span></li>`)}</ul>`}</div>
    </div>
    <${Chart} title="Messages per second" labels=${['in', 'out']} data=${rates} />
    <p class="muted rates" data-testid="rates">Latest: <strong data-testid="rate-in">${newest(rates[1])}</strong> in per second (published to the broker by clients and by the gateway's own devices and state), <strong data-testid="rate-out">${newest(rates[2])}</strong> out (sent to clients, this console included).</p>
    <${Table} caption="Listeners" head=${['URL', 'Type', 'Auth', 'Clients']} rows=${(info?.listeners ?? []).map((l) => html`<tr>
      <td>${l.url}</td><td>${l.type}</td><td>${l.allowAnonymous ? 'anonymous allowed' : 'user and password'}</td><td>${perListener.get(l.url) ?? 0}</td></tr>`).concat(
      [...perListener].filter(([name]) => name?.startsWith('console ')).map(([name, n]) => html`<tr>
        <td>${name.slice('console '.length)}mqtt</td><td>console (MQTT over WebSocket)</td><td>${session.loginRequired ? 'console login' : 'loopback, no login'}</td><td>${n}</td></tr>`))} />
    <h3>Recent warnings</h3>
    ${warnings.length + logLines.length === 0 ? html`<p class="muted">none</p>` : html`<ul class="warnings">
      ${warnings.map((w) => html`<li>${w}</li>`)}
      ${logLines.slice().reverse().map((l) => html`<li><span class="muted">${l.time?.slice(11, 19)}</span> <${Badge} tone=${toneOf(l.level)}>${l.level}<//> ${l.part ? html`<span class="muted">${l.part}</span> ` : ''}${l.msg}</li>`)}
    </ul>`}
  </section>`;
}
