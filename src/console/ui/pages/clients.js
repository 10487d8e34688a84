// Clients and sessions: who is connected, with what; disconnect a client, remove an offline session.
import { useState } from 'preact/hooks';
import { ErrorBox, html, sinceIso, Table, useAction, useLink, useNow } from '../util.js';

export function Clients() {
  const link = useLink();
  const now = useNow(5000);
  const [clients, refreshClients] = useAction('clients', {}, 5000);
  const [sessions, refreshSessions] = useAction('sessions', {}, 5000);
  const [result, setResult] = useState(null);
  const act = async (action, clientId) => {
    const a = await link.request(action, { clientId });
    setResult({ ...a, done: action === 'session/remove' ? 'session removed' : 'disconnected' });
    refreshClients();
    refreshSessions();
  };
  return html`<section aria-labelledby="h-clients"><h2 id="h-clients">Clients and sessions</h2>
    <output aria-live="polite">${result?.status === 'ok' ? `${result.data.clientId}: ${result.done}` : ''}</output><${ErrorBox} answer=${result} />
    <${Table} caption="Connected clients" head=${['Client id', 'User', 'Listener', 'Protocol', 'Connected for', 'Subscriptions', 'Queued', '']}
      rows=${(clients?.data ?? []).map((c) => html`<tr><th scope="row">${c.clientId}${c.clientId === link.clientId ? html` <span class="muted">(this console)</span>` : ''}</th>
        <td>${c.username ?? '—'}</td><td>${c.listener ?? ''}<br/><span class="muted">${c.address}</span></td><td>${c.protocol}</td>
        <td>${sinceIso(c.connectedSince, now)}</td><td>${c.subscriptions}</td><td>${c.queued}</td>
        <td>${c.clientId !== link.clientId && html`<button type="button" class="danger" onClick=${() => act('client/disconnect', c.clientId)} aria-label=${`Disconnect ${c.clientId}`}>Disconnect</button>`}</td></tr>`)} />
    <${Table} caption="Sessions" head=${['Client id', 'Connected', 'Persistent', 'Protocol', 'Expiry (s)', 'Offline for', 'Subscriptions', 'Queued', '']}
      rows=${(sessions?.data ?? []).map((s) => html`<tr><th scope="row">${s.clientId}</th><td>${s.connected ? 'yes' : 'no'}</td><td>${s.persistent ? 'yes' : 'no'}</td>
        <td>${s.protocol}</td><td>${s.expiryIntervalSeconds ?? 'never'}</td><td title=${s.disconnectedAt ?? ''}>${s.disconnectedAt ? sinceIso(s.disconnectedAt, now) : ''}</td><td>${s.subscriptions}</td><td>${s.queued}</td>
        <td>${!s.connected && html`<button type="button" class="danger" onClick=${() => act('session/remove', s.clientId)} aria-label=${`Remove session ${s.clientId}`}>Remove</button>`}</td></tr>`)} />
  </section>`;
}
