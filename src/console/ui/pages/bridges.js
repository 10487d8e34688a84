// Bridges: link state, outbox depth and oldest age (chart), drops, the dead letters with retry and delete.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Chart, Ring } from '../chart.js';
import { ago, Badge, bytes, ErrorBox, html, sinceIso, Table, toneOf, useAction, useLink, useNow } from '../util.js';

/** What a retry or delete did, in words. */
function resultText(action, data) {
  if (action === 'bridge/dead/retry') return `${data.retried} message${data.retried === 1 ? '' : 's'} handed back to the outbox to be sent again`;
  return `${data.deleted} dead letter${data.deleted === 1 ? '' : 's'} deleted`;
}

/** A payload as text (or its base64, said so), cut for the table. */
function payloadText(r) {
  if (r.payload === undefined || r.payload === null) return '';
  const text = r.payloadEncoding === 'base64' ? `base64 ${r.payload}` : r.payload;
  return text.length > 80 || r.truncated ? `${text.slice(0, 80)}…` : text;
}

/** Asked again whenever the bridge's count of dead letters changes, so new ones show without a reload. */
function DeadLetters({ bridge, dead }) {
  const link = useLink();
  const now = useNow(5000);
  const [answer, refresh] = useAction('bridge/dead/list', { bridge, limit: 100 }, 0, [bridge, dead]);
  const [result, setResult] = useState(null);
  const act = async (action, body) => {
    setResult({ status: 'pending' });
    const a = await link.request(action, { bridge, ...body });
    setResult({ ...a, action });
    refresh();
  };
  if (answer?.status === 'error') return html`<${ErrorBox} answer=${answer} title="Dead letters" />`;
  const rows = answer?.data?.rows ?? [];
  return html`<div data-testid=${`dead-letters-${bridge}`}>
    <${Table} caption=${`Dead letters of ${bridge}: messages the cloud refused (${answer?.data?.total ?? '…'})`} head=${['Id', 'Topic', 'Payload', 'Size', 'Reason', 'Dead for', 'Actions']} empty="none"
      rows=${rows.map((r) => html`<tr data-dead-id=${r.id}><td>${r.id}</td><td>${r.topic}</td><td class="payload">${payloadText(r)}</td><td>${bytes(r.bytes)}</td><td>${r.reason}</td>
        <td title=${r.deadAt}>${sinceIso(r.deadAt, now)}</td>
        <td class="actions"><button type="button" aria-label=${`Retry dead letter ${r.id} (${r.topic})`} onClick=${() => act('bridge/dead/retry', { ids: [r.id] })}>Retry</button>
            <button type="button" class="danger" aria-label=${`Delete dead letter ${r.id} (${r.topic})`} onClick=${() => act('bridge/dead/delete', { ids: [r.id] })}>Delete</button></td></tr>`)} />
    ${rows.length > 0 && html`<p><button type="button" onClick=${() => act('bridge/dead/retry', { all: true })}>Retry all</button>
      <button type="button" class="danger" onClick=${() => act('bridge/dead/delete', { all: true })}>Delete all</button></p>`}
    <p aria-live="polite" data-testid=${`dead-result-${bridge}`}>${result?.status === 'ok' ? resultText(result.action, result.data) : result?.status === 'pending' ? '…' : ''}</p><${ErrorBox} answer=${result?.status === 'error' ? result : undefined} />
  </div>`;
}

export function Bridges({ bridges }) {
  const rings = useRef(new Map());
  const [history] = useAction('history', { points: [] }, 10_000);
  for (const b of bridges ?? []) {
    let r = rings.current.get(b.name);
    if (!r) rings.current.set(b.name, (r = { depth: new Ring(360), age: new Ring(360) }));
    const t = Date.now() / 1000;
    if (!r.depth.t.length || t - r.depth.t.at(-1) > 1) { r.depth.push(t, b.outboxDepth); r.age.push(t, b.oldestAgeSeconds ?? 0); }
  }
  const chartOf = (name) => {
    const h = history?.status === 'ok' ? history.data.bridges?.[name] : undefined;
    if (h) {
      return [history.data.times.map((t) => t / 1000), h.depth, h.oldestAgeSeconds];
    }
    const r = rings.current.get(name);
    return [r.depth.t, r.depth.v, r.age.v];
  };
  return html`<section aria-labelledby="h-bridges"><h2 id="h-bridges">Bridges</h2>
    <${Table} caption="Upstream bridges" head=${['Bridge', 'State', 'Outbox', 'Oldest', 'Sent', 'Acked', 'Dropped', 'Dead', 'Received', 'Last error']} empty="no bridge configured"
      rows=${(bridges ?? []).map((b) => html`<tr><th scope="row">${b.name}<br/><span class="muted">${b.remote}</span></th>
        <td><${Badge} tone=${toneOf(b.state)}>${b.state}<//></td><td>${b.outboxDepth} (${bytes(b.outboxBytes)})</td><td>${ago(b.oldestAgeSeconds)}</td>
        <td>${b.sent}</td><td>${b.acked}</td><td>${b.dropped}</td><td>${b.dead}</td><td>${b.received}</td><td>${b.lastError ?? b.outboxError ?? ''}</td></tr>`)} />
    ${(bridges ?? []).map((b) => html`<div><h3>${b.name}</h3>
      <${Chart} title=${`${b.name}: outbox depth and oldest row's age (s)`} labels=${['depth', 'oldest age (s)']} data=${chartOf(b.name)} />
      <${DeadLetters} bridge=${b.name} dead=${b.dead} /></div>`)}
  </section>`;
}
