// Devices, and one device's page: its points live (value, unit, age, quality), a chart, writable points' control.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Chart, Ring } from '../chart.js';
import { ago, Badge, ErrorBox, html, sinceIso, Table, toneOf, useAction, useLink, useNow, useTopics } from '../util.js';

export function Devices({ devices }) {
  const now = useNow(5000);
  return html`<section aria-labelledby="h-devices"><h2 id="h-devices">Devices</h2>
    <${Table} caption="Every device of the running mappings" head=${['Device', 'Availability', 'Last poll', 'Polls', 'Errors', 'Last error', 'Bus']}
      empty="no device configured" rows=${(devices ?? []).map((d) => html`<tr>
        <td><a href=${`#/device/${encodeURIComponent(d.id)}`}>${d.name || d.id}</a><br/><span class="muted">${d.id}</span></td>
        <td><${Badge} tone=${toneOf(d.availability)}>${d.availability}<//></td>
        <td>${d.lastPollAt ? `${sinceIso(d.lastPollAt, now)} ago` : 'never'}</td><td>${d.polls}</td><td>${d.errorCount}</td>
        <td>${d.lastError ?? ''}</td><td>${typeof d.bus === 'object' ? d.bus.id : d.bus}</td></tr>`)} />
  </section>`;
}

const NOT_POINTS = /\/(availability|error|set|set\/result)$/;

/** Points from the device action, else from what the device publishes (the default prefix fieldgate/<id>). */
function pointsOf(detail, id, messages) {
  if (detail?.points) return detail.points;
  const prefix = `fieldgate/${id}/`;
  const out = [];
  for (const [topic, m] of messages) {
    if (!topic.startsWith(prefix) || NOT_POINTS.test(topic) || topic.slice(prefix.length).includes('/')) continue;
    out.push({ name: topic.slice(prefix.length), topic, unit: m.unit, writable: m.text === 'true' || m.text === 'false', value: m.text, quality: null });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** A …/set/result answer in words: what the device reads back, or why it refused. */
function resultText(text) {
  try {
    const r = JSON.parse(text);
    if (r.ok === true) return `answer: ok, now ${JSON.stringify(r.value)}`;
    if (r.ok === false) return `answer: refused: ${r.error}`;
  } catch { /* not JSON: shown as it came */ }
  return `answer: ${text}`;
}

function WriteControl({ point }) {
  const link = useLink();
  const results = useTopics(`${point.topic}/set/result`);
  const result = results.get(`${point.topic}/set/result`);
  const [sent, setSent] = useState(null);
  const set = (value) => { setSent(value); link.publish(`${point.topic}/set`, value); };
  const shown = result && !result.retained ? result.text : null;
  const on = point.value === true || point.value === 'true';
  return html`<div class="control">
    ${point.type === 'bool' || point.type === 'bit' || point.value === true || point.value === false || point.value === 'true' || point.value === 'false'
      ? html`<div class="toggle" role="group" aria-label=${`${point.name}: ${on ? 'on' : 'off'}`}>
             <button type="button" class=${on ? '' : 'off'} aria-pressed=${on} onClick=${() => set('true')} aria-label=${`Switch ${point.name} on`}>On</button>
             <button type="button" class=${on ? 'off' : ''} aria-pressed=${!on} onClick=${() => set('false')} aria-label=${`Switch ${point.name} off`}>Off</button></div>`
      : html`<form onSubmit=${(e) => { e.preventDefault(); set(e.currentTarget.elements.value.value); }}>
          <label class="sr-only" for=${`set-${point.name}`}>New value for ${point.name}</label>
          <input id=${`set-${point.name}`} name="value" size="8" /><button type="submit">Set</button></form>`}
    <output aria-live="polite" data-testid=${`set-result-${point.name}`}>${shown ? resultText(shown) : sent !== null ? `sent ${sent}…` : ''}</output>
  </div>`;
}

export function Device({ id }) {
  const now = useNow(1000);
  const [detailAnswer] = useAction('device', { id }, 5000, [id]);
  const detail = detailAnswer?.status === 'ok' ? detailAnswer.data : undefined;
  const messages = useTopics(`fieldgate/${id}/#`);
  const points = pointsOf(detail, id, messages);
  const series = useRef(new Map());
  const [history] = useAction('history', { points: points.filter((p) => p.name).map((p) => `${id}/${p.name}`) }, 0, [points.length]);
  const [chosen, setChosen] = useState(null);
  // Live values for the chart: every non-retained numeric message.
  for (const [topic, m] of messages) {
    const name = topic.slice(`fieldgate/${id}/`.length);
    const v = Number(m.text);
    if (m.at === null || !Number.isFinite(v) || m.text === '') continue;
    let ring = series.current.get(name);
    if (!ring) series.current.set(name, (ring = new Ring(600)));
    if (ring.t.at(-1) !== m.at / 1000) ring.push(m.at / 1000, v);
  }
  const numeric = points.filter((p) => Number.isFinite(Number(messages.get(p.topic)?.text ?? p.value)) && p.type !== 'bool');
  const shownName = chosen ?? numeric[0]?.name;
  const chartData = useMemo(() => {
    const past = history?.status === 'ok' ? history.data.points?.[`${id}/${shownName}`] : undefined;
    const ring = series.current.get(shownName) ?? new Ring();
    const t = [...(past?.t ?? []).map((x) => x / 1000), ...ring.t];
    const v = [...(past?.v ?? []), ...ring.v];
    return [t, v];
  }, [history, shownName, messages]);
  const availability = messages.get(`fieldgate/${id}/availability`)?.text ?? detail?.availability;
  return html`<section aria-labelledby="h-device">
    <p><a href="#/devices">← Devices</a></p>
    <h2 id="h-device">${detail?.name ?? id} <${Badge} tone=${toneOf(availability)}>${availability ?? '…'}<//></h2>
    ${detail && html`<p class="muted">bus ${detail.bus?.id ?? detail.bus} (${detail.bus?.state ?? '?'}${detail.bus?.lastError ? `: ${detail.bus.lastError}` : ''}), unit ${detail.unitId ?? '—'}, poll every ${detail.pollIntervalMs ?? '?'} ms, last poll took ${detail.pollLatencyMs ?? '?'} ms, ${detail.errorCount} errors${detail.lastError ? `, last: ${detail.lastError}` : ''}</p>`}
    <${ErrorBox} answer=${detailAnswer?.status === 'error' && !/unknown action/.test(detailAnswer.error) ? detailAnswer : undefined} title="Device" />
    <${Table} caption="Points" head=${['Point', 'Value', 'Age', 'Quality', 'Control']} empty="no reading yet" rows=${points.map((p) => {
      const live = messages.get(p.topic);
      const value = live ? live.text : p.value === undefined || p.value === null ? '—' : String(p.value);
      const age = live?.at ? (now - live.at) / 1000 : p.ageSeconds;
      const quality = p.quality ?? (availability === 'online' ? (live?.at ? 'good' : 'none') : 'stale');
      return html`<tr data-point=${p.name}>
        <th scope="row"><button type="button" class="link" onClick=${() => setChosen(p.name)} aria-label=${`Chart ${p.name}`}>${p.name}</button></th>
        <td class="num"><span data-testid=${`value-${p.name}`}>${value}</span> <span class="unit">${p.unit ?? live?.unit ?? ''}</span></td>
        <td>${age === undefined || age === null ? (live?.retained ? 'retained, age unknown' : '—') : ago(age)}</td>
        <td><${Badge} tone=${toneOf(quality)}>${quality}<//>${p.error ? html` <span class="muted">${p.error}</span>` : ''}</td>
        <td>${p.writable ? html`<${WriteControl} point=${{ ...p, value }} />` : ''}</td></tr>`;
    })} />
    ${shownName && html`<${Chart} title=${`${shownName} (${points.find((p) => p.name === shownName)?.unit ?? ''})`} labels=${[shownName]} data=${chartData} />`}
  </section>`;
}
