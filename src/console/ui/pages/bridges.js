// Bridges: link state, outbox depth and oldest age (chart), drops, the dead letters with retry and delete.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Chart, Ring } from '../chart.js';
import { ago, Badge, bytes, ErrorBox, html, Table, toneOf, useAction, useLink } from '../util.js';

function DeadLetters({ bridge }) {
  const link = useLink();
  const [answer, refresh] = useAction('bridge/dead/list', { bridge, limit: 100 }, 0, [bridge]);
  const [result, setResult] = useState(null);
  const act = async (action, body) => {
    const a = await link.request(action, { bridge, ...body });
    setResult(a);
    refresh();
  };
  if (answer?.status === 'error') return html`<${ErrorBox} answer=${answer} title="Dead letters" />`;
  const rows = answer?.data?.rows ?? [];
  return html`<div>
    <${Table} caption=${`Dead letters of ${bridge} (${answer?.data?.total ?? '…'})`} head=${['Id', 'Topic', 'Size', 'Reason', 'Dead since', '']} empty="none"
      rows=${rows.map((r) => html`<tr><td>${r.id}</td><td>${r.topic}</td><td>${bytes(r.bytes)}</td><td>${r.reason}</td><td>${r.deadAt}</td>
        <td><button type="button" onClick=${() => act('bridge/dead/retry', { ids: [r.id] })}>Retry</button>
            <button type="button" class="danger" onClick=${() => act('bridge/dead/delete', { ids: [r.id] })}>Delete</button></td></tr>`)} />
    ${rows.length > 0 && html`<p><button type="button" onClick=${() => act('bridge/dead/retry', { all: true })}>Retry all</button>
      <button type="button" class="danger" onClick=${() => act('bridge/dead/delete', { all: true })}>Delete all</button></p>`}
    <output aria-live="polite">${result?.status === 'ok' ? JSON.stringify(result.data) : ''}</output><${ErrorBox} answer=${result} />
  </div>`;
}

export function Bridges({ bridges }) {
  const rings = useRef(new Map());
  const [history] = useAction('history', { points: [] }, 30_000);
  for (const b of bridges ?? []) {
    let r = rings.current.get(b.name);
    if (!r) rings.current.set(b.name, (r = { depth: new Ring(360), age: new Ring(360) }));
    const t = Date.now() / 1000;
    if (!r.depth.t.length || t - r.depth.t.at(-1) > 1) { r.depth.push(t, b.outboxDepth); r.age.push(t, b.oldestAgeSeconds ?? 0); }
  }
  const chartOf = (name) => {
    const h = history?.status === 'ok' ? history.data.bridges?.[name] : undefined;
    if (h) {
      const t = h.depth.map((_, i) => history.data.start / 1000 + i * history.data.bucketSeconds);
      return [t, h.depth, h.oldestAgeSeconds];
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
      <${DeadLetters} bridge=${b.name} /></div>`)}
  </section>`;
}
