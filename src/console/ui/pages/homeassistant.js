// Home Assistant: the discovery configs announced now.
import { ErrorBox, html, Table, useAction } from '../util.js';

export function HomeAssistant() {
  const [answer] = useAction('homeassistant/entities', {}, 30_000);
  const d = answer?.status === 'ok' ? answer.data : undefined;
  return html`<section aria-labelledby="h-ha"><h2 id="h-ha">Home Assistant</h2>
    <${ErrorBox} answer=${answer} title="Entities" />
    ${d && html`<${Table} caption=${`Entities announced under ${d.prefix}/`} head=${['Name', 'Component', 'Device', 'State topic', 'Command topic', 'Unit']} empty="none (discovery is off, or no device)"
      rows=${d.entities.map((e) => html`<tr><th scope="row">${e.name}<br/><span class="muted">${e.uniqueId}</span></th><td>${e.component}</td><td>${e.device}</td>
        <td><code>${e.stateTopic}</code></td><td>${e.commandTopic ? html`<code>${e.commandTopic}</code>` : ''}</td><td>${e.unit ?? ''}</td></tr>`)} />`}
  </section>`;
}
