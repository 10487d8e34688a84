// Hooks and formatting shared by the pages.
import { createContext, h } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);
export const LinkContext = createContext(null);
export const useLink = () => useContext(LinkContext);

/** The latest message of each topic under `filter` (a Map topic → {text, at, retained, unit}). */
export function useTopics(filter) {
  const link = useLink();
  const [messages, setMessages] = useState(() => new Map());
  useEffect(() => {
    if (!filter) return undefined;
    const map = new Map();
    setMessages(new Map());
    let queued = false;
    const off = link.subscribe(filter, (topic, text, packet) => {
      const unit = packet.properties?.userProperties?.unit;
      // A retained message delivered at subscribe time says nothing about when it was read.
      map.set(topic, { text, at: packet.retain ? null : Date.now(), retained: packet.retain, unit: Array.isArray(unit) ? unit[0] : unit });
      // Several messages in one turn cost one render.
      if (!queued) {
        queued = true;
        queueMicrotask(() => { queued = false; setMessages(new Map(map)); });
      }
    });
    return off;
  }, [filter]);
  return messages;
}

/** The latest JSON payload of one topic. */
export function useJsonTopic(topic) {
  const messages = useTopics(topic);
  const m = messages.get(topic);
  if (!m) return undefined;
  try { return JSON.parse(m.text); } catch { return undefined; }
}

/**
 * A management action's answer, asked for now and then every `intervalMs` (0: once) while the page
 * is shown and the tab visible; `refresh()` asks again at once.
 */
export function useAction(action, body = {}, intervalMs = 0, deps = []) {
  const link = useLink();
  const [answer, setAnswer] = useState(undefined);
  const tick = useRef(() => undefined);
  const key = JSON.stringify(body);
  useEffect(() => {
    let alive = true;
    let timer;
    const ask = async () => {
      clearTimeout(timer);
      const a = await link.request(action, body);
      if (!alive) return;
      setAnswer(a);
      if (intervalMs > 0) timer = setTimeout(() => (document.hidden ? document.addEventListener('visibilitychange', ask, { once: true }) : ask()), intervalMs);
    };
    tick.current = ask;
    ask();
    return () => { alive = false; clearTimeout(timer); document.removeEventListener('visibilitychange', ask); };
  }, [action, key, intervalMs, ...deps]);
  return [answer, () => tick.current()];
}

/** Re-renders every `ms` (ages on screen keep counting). */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function sinceIso(iso, now = Date.now()) {
  return iso ? ago((now - Date.parse(iso)) / 1000) : '—';
}

/** An answer's error for a person: its one line, and each error with its JSON path. */
export function ErrorBox({ answer, title = 'Refused' }) {
  if (!answer || answer.status !== 'error') return null;
  const list = answer.errors ?? [];
  return html`<div class="error" role="alert"><strong>${title}:</strong> ${list.length === 0 ? answer.error : ''}
    ${list.length > 0 && html`<ul>${list.map((e) => html`<li><code class="path">${e.path || '(top level)'}</code> ${e.message}</li>`)}</ul>`}</div>`;
}

export function Badge({ tone, children }) {
  return html`<span class=${`badge ${tone}`}>${children}</span>`;
}

export function toneOf(state) {
  return ({ online: 'good', connected: 'good', running: 'good', good: 'good', open: 'good', ok: 'good',
    degraded: 'warn', stale: 'warn', retrying: 'warn', 'backing-off': 'warn', starting: 'warn', stopping: 'warn', warn: 'warn', none: 'muted',
    offline: 'bad', disconnected: 'bad', error: 'bad', stopped: 'muted', fatal: 'bad' })[state] ?? 'muted';
}

export function Table({ caption, head, rows, empty = 'nothing' }) {
  // Chromium makes a box that scrolls a stop for the keyboard (arrow keys scroll it): named after its table.
  return html`<div class="scroll" role="region" aria-label=${caption}><table>
    <caption>${caption}</caption>
    <thead><tr>${head.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${rows.length === 0 ? html`<tr><td colspan=${head.length} class="muted">${empty}</td></tr>` : rows}</tbody>
  </table></div>`;
}
