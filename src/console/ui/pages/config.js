// Config: the running config's check, and a mapping editor validated as you type (its JSON Schema),
// saved through the gateway (which checks it again and keeps the running one when it is refused).
import { useEffect, useState } from 'preact/hooks';
import { validateJsonText } from '../validate.js';
import { ErrorBox, html, useAction, useLink } from '../util.js';

let schemaPromise;
function loadSchema() {
  schemaPromise ??= fetch('/assets/device-mapping.schema.json').then((r) => r.json()).catch(() => null);
  return schemaPromise;
}

export function Config() {
  const link = useLink();
  const [check, refreshCheck] = useAction('check', {});
  const [file, setFile] = useState(undefined);
  const [mapping] = useAction('mapping/get', file ? { file } : {}, 0, [file]);
  const [text, setText] = useState('');
  const [schema, setSchema] = useState(null);
  const [saved, setSaved] = useState(null);
  useEffect(() => { loadSchema().then(setSchema); }, []);
  useEffect(() => { if (mapping?.status === 'ok') { setText(mapping.data.text); setSaved(null); } }, [mapping]);
  const errors = text ? validateJsonText(text, schema) : [];
  const save = async () => {
    setSaved({ status: 'pending' });
    const answer = await link.request('mapping/save', { file: mapping.data.file, text }, 30_000);
    setSaved(answer);
    refreshCheck();
  };
  const c = check?.data;
  return html`<section aria-labelledby="h-config"><h2 id="h-config">Config</h2>
    <h3>Check of the running config</h3>
    ${c ? html`<div class=${c.valid ? 'ok' : 'error'} role="status" data-testid="check-result"><strong>${c.file}: ${c.valid ? 'OK' : 'errors'}</strong>
      ${c.valid && html` — <span data-testid="check-devices">${c.devices} device${c.devices === 1 ? '' : 's'}</span>`}
      ${(c.errors ?? []).length > 0 && html`<ul>${c.errors.map((e) => html`<li>${e}</li>`)}</ul>`}
      ${(c.warnings ?? []).length > 0 && html`<ul>${c.warnings.map((e) => html`<li>warning: ${e}</li>`)}</ul>`}
      ${(c.lines ?? []).length > 0 && html`<ul class="plain check-lines">${c.lines.map((l) => html`<li>${l}</li>`)}</ul>`}</div>` : html`<p class="muted">checking…</p>`}
    <h3>Edit a device mapping</h3>
    <${ErrorBox} answer=${mapping} title="Mapping" />
    ${mapping?.status === 'ok' && html`<div>
      <label for="mapping-file">File</label>
      <select id="mapping-file" value=${mapping.data.file} onChange=${(e) => setFile(e.currentTarget.value)}>${mapping.data.files.map((f) => html`<option>${f}</option>`)}</select>
      ${/[\\/]demo[\\/]demo-meter\.json$/.test(mapping.data.file) && html`<p class="muted">This is the demo meter's mapping: the gateway writes it again at every start, so a change here lasts until the next restart. Your own mappings go in a config file's "devices".</p>`}
      <label for="mapping-text" class="block">Mapping JSON (checked against its JSON Schema as you type)</label>
      <textarea id="mapping-text" spellcheck="false" rows="22" value=${text} onInput=${(e) => setText(e.currentTarget.value)}
        aria-describedby="mapping-errors" aria-invalid=${errors.length > 0}></textarea>
      <div id="mapping-errors" aria-live="polite" data-testid="live-errors">${errors.length === 0
        ? html`<p class="ok">${schema ? 'valid against the schema' : 'valid JSON'}</p>`
        : html`<ul class="error">${errors.slice(0, 20).map((e) => html`<li><code class="path">${e.path}</code> ${e.message}</li>`)}</ul>`}</div>
      <p><button type="button" onClick=${save} disabled=${saved?.status === 'pending'}>Save and reload</button>
        <span class="muted"> the gateway checks it again (register overlaps, ids) and keeps the running mapping if it refuses it</span></p>
      <div aria-live="polite" data-testid="save-result">
        ${saved?.status === 'ok' && html`<p class="ok">Saved ${saved.data.file} (previous kept as ${saved.data.previous ?? '—'}), reloaded.</p>`}
        <${ErrorBox} answer=${saved?.status === 'error' ? saved : undefined} title="The gateway refused this mapping (the running one is kept)" />
      </div></div>`}
  </section>`;
}
