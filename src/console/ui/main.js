// The web console: one MQTT connection (link.js), the gateway's state topics shared by every page,
// a page per hash route.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { createLink } from './link.js';
import { html, LinkContext, useAction, useJsonTopic, useLink } from './util.js';
import { Overview } from './pages/overview.js';
import { Device, Devices } from './pages/devices.js';
import { Bridges } from './pages/bridges.js';
import { Clients } from './pages/clients.js';
import { Commissioning } from './pages/commissioning.js';
import { Config } from './pages/config.js';
import { Logs } from './pages/logs.js';
import { HomeAssistant } from './pages/homeassistant.js';

const PAGES = [
  ['overview', 'Overview'], ['devices', 'Devices'], ['bridges', 'Bridges'], ['clients', 'Clients'],
  ['commissioning', 'Commissioning'], ['config', 'Config'], ['logs', 'Logs'], ['homeassistant', 'Home Assistant'],
];

function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** A state topic, filled in at once by the action of the same name (the fast ones are not retained). */
function useState_(name) {
  const link = useLink();
  const live = useJsonTopic(`${link.base}/state/${name}`);
  const [first] = useAction(name, {}, 0, [link.status]);
  return live ?? (first?.status === 'ok' ? first.data : undefined);
}

function App({ session }) {
  const link = useLink();
  const [status, setStatus] = useState(link.status);
  useEffect(() => link.onStatus(setStatus), []);
  const [page, arg] = useRoute();
  const info = useState_('info');
  const devices = useState_('devices');
  const bridges = useState_('bridges');
  const parts = useState_('parts');
  useEffect(() => { document.title = `fieldgate ${info?.gatewayId ?? ''} · ${PAGES.find(([p]) => p === page)?.[1] ?? page}`; }, [page, info]);
  const shown = page === 'device' ? 'devices' : page;
  let body;
  switch (page) {
    case 'devices': body = html`<${Devices} devices=${devices} />`; break;
    case 'device': body = html`<${Device} id=${arg} />`; break;
    case 'bridges': body = html`<${Bridges} bridges=${bridges} />`; break;
    case 'clients': body = html`<${Clients} />`; break;
    case 'commissioning': body = html`<${Commissioning} devices=${devices} />`; break;
    case 'config': body = html`<${Config} />`; break;
    case 'logs': body = html`<${Logs} />`; break;
    case 'homeassistant': body = html`<${HomeAssistant} />`; break;
    default: body = html`<${Overview} info=${info} devices=${devices} bridges=${bridges} parts=${parts} session=${session} />`;
  }
  return html`<a class="skip" href="#main">Skip to content</a>
    <header><h1>fieldgate <span class="muted">${info?.gatewayId ?? session.gatewayId}</span></h1>
      <span class=${`conn ${status}`} role="status" aria-live="polite" data-testid="connection">${status}</span>
      ${session.user && html`<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value=${session.csrf} />
        <span class="muted">${session.user}</span> <button type="submit">Log out</button></form>`}</header>
    <nav aria-label="Pages"><ul>${PAGES.map(([p, label]) => html`<li><a href=${`#/${p}`} aria-current=${p === shown ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
    <main id="main" tabindex="-1">${body}</main>`;
}

async function start() {
  const root = document.getElementById('app');
  let session;
  try {
    const response = await fetch('/session', { credentials: 'same-origin' });
    if (response.status === 401) { location.href = '/login'; return; }
    session = await response.json();
  } catch (error) {
    root.textContent = `cannot reach the gateway: ${error.message}`;
    return;
  }
  const link = createLink({ gatewayId: session.gatewayId, path: session.mqttPath });
  root.textContent = '';
  render(html`<${LinkContext.Provider} value=${link}><${App} session=${session} /><//>`, root);
}

start();
