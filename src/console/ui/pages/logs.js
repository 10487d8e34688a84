// Logs: the gateway's recent lines (its bounded ring), by level and part.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Badge, ErrorBox, html, toneOf, useLink } from '../util.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const PARTS = ['', 'broker', 'devices', 'bridges', 'management', 'home-assistant', 'metrics', 'listeners', 'console', 'gateway'];

export function Logs() {
  const link = useLink();
  const [level, setLevel] = useState('info');
  const [part, setPart] = useState('');
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  const after = useRef(undefined);
  useEffect(() => {
    let alive = true;
    let timer;
    after.current = undefined;
    setLines([]);
    const poll = async () => {
      const body = { level, limit: 200, ...(part ? { part } : {}), ...(after.current !== undefined ? { after: after.current } : {}) };
      const a = await link.request('logs', body);
      if (!alive) return;
      if (a.status === 'ok') {
        setError(null);
        const got = a.data.lines;
        if (got.length > 0) after.current = got.at(-1).seq;
        setLines((old) => [...old, ...got].slice(-500));
      } else setError(a);
      timer = setTimeout(poll, 3000);
    };
    poll();
    return () => { alive = false; clearTimeout(timer); };
  }, [level, part]);
  return html`<section aria-labelledby="h-logs"><h2 id="h-logs">Logs</h2>
    <div class="grid"><label for="log-level">Level and above</label>
      <select id="log-level" value=${level} onChange=${(e) => setLevel(e.currentTarget.value)}>${LEVELS.map((l) => html`<option>${l}</option>`)}</select>
      <label for="log-part">Part</label>
      <select id="log-part" value=${part} onChange=${(e) => setPart(e.currentTarget.value)}>${PARTS.map((p) => html`<option value=${p}>${p || 'all'}</option>`)}</select></div>
    <${ErrorBox} answer=${error} title="Logs" />
    <ol class="logs" aria-label="Log lines, oldest first">${lines.map((l) => html`<li><span class="muted">${l.time?.replace('T', ' ').slice(0, 19)}</span>${' '}<${Badge} tone=${toneOf(l.level)}>${l.level}<//> ${l.part && html`<span class="muted">${l.part}</span>`} ${l.msg}</li>`)}</ol>
  </section>`;
}
