// Commissioning: scan a bus for the unit ids that answer, read a register range and see every
// decoding (with "near the display's value"), turn the chosen one into the point JSON.
import { useState } from 'preact/hooks';
import { ErrorBox, html, Table, useLink } from '../util.js';

const TABLES = ['holding', 'input', 'coil', 'discrete-input'];

function formValues(form) {
  return Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ''));
}

export function Commissioning({ devices }) {
  const link = useLink();
  const buses = [...new Set((devices ?? []).map((d) => (typeof d.bus === 'object' ? d.bus.id : d.bus)))];
  const [scan, setScan] = useState(null);
  const [read, setRead] = useState(null);
  const [point, setPoint] = useState(null);
  const [busy, setBusy] = useState('');
  const [near, setNear] = useState('');
  const [copied, setCopied] = useState('');
  const copy = async (text) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('copied');
    } catch {
      // The clipboard is only for https pages and localhost: over plain http on the LAN, select it.
      const range = document.createRange();
      range.selectNodeContents(document.querySelector('[data-testid=point-json]'));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      setCopied('selected: press Ctrl+C (this browser allows the clipboard only on https or localhost)');
    }
  };
  const doScan = async (e) => {
    e.preventDefault();
    const v = formValues(e.currentTarget);
    setBusy('scanning…');
    setScan(await link.request('bus/scan', { bus: v.bus, from: Number(v.from), to: Number(v.to), table: v.table }, 120_000));
    setBusy('');
  };
  const doRead = async (e) => {
    e.preventDefault();
    const v = formValues(e.currentTarget);
    const body = { bus: v.bus, unitId: Number(v.unitId), table: v.table, address: Number(v.address), count: Number(v.count) };
    if (v.expect !== undefined) { body.expect = Number(v.expect); body.tolerance = Number(v.tolerance ?? 0.1); }
    setNear(v.expect ?? '');
    setBusy('reading…');
    setPoint(null);
    setRead(await link.request('bus/read', body, 30_000));
    setBusy('');
  };
  const makePoint = async (d) => {
    const name = document.getElementById('point-name').value || 'value';
    const unit = document.getElementById('point-unit').value;
    const body = { name, table: read.data.table, address: d.address, type: d.type, scale: d.scale ?? 1 };
    if (d.byteOrder) body.byteOrder = d.byteOrder;
    if (unit) body.unit = unit;
    setCopied('');
    setPoint(await link.request('bus/point', body));
  };
  const busField = (id) => html`<label for=${id}>Bus</label>
    ${buses.length > 0 ? html`<select id=${id} name="bus">${buses.map((b) => html`<option>${b}</option>`)}</select>` : html`<input id=${id} name="bus" required />`}`;
  return html`<section aria-labelledby="h-comm"><h2 id="h-comm">Commissioning</h2>
    <p class="muted">Every request goes through the bus's scheduler: it queues with the polling, one transaction at a time.</p>
    <form class="grid" onSubmit=${doScan} aria-labelledby="h-scan"><h3 id="h-scan">Scan for unit ids</h3>
      ${busField('scan-bus')}
      <label for="scan-from">From unit</label><input id="scan-from" name="from" type="number" min="1" max="247" value="1" />
      <label for="scan-to">To unit</label><input id="scan-to" name="to" type="number" min="1" max="247" value="10" />
      <label for="scan-table">Table</label><select id="scan-table" name="table">${TABLES.map((t) => html`<option>${t}</option>`)}</select>
      <button type="submit">Scan</button></form>
    ${scan?.status === 'ok' && html`<p data-testid="scan-result">${scan.data.answered.length} answered (${scan.data.answered.map((a) => a.unitId).join(', ') || 'none'}), ${scan.data.silent} silent, in ${scan.data.ms} ms</p>`}
    <${ErrorBox} answer=${scan} />
    <form class="grid" onSubmit=${doRead} aria-labelledby="h-read"><h3 id="h-read">Read registers</h3>
      ${busField('read-bus')}
      <label for="read-unit">Unit id</label><input id="read-unit" name="unitId" type="number" min="0" max="255" value="1" />
      <label for="read-table">Table</label><select id="read-table" name="table">${TABLES.map((t) => html`<option>${t}</option>`)}</select>
      <label for="read-address">Address</label><input id="read-address" name="address" type="number" min="0" max="65535" value="0" />
      <label for="read-count">Registers</label><input id="read-count" name="count" type="number" min="1" max="125" value="4" />
      <label for="read-expect">Near the display's value</label><input id="read-expect" name="expect" type="number" step="any" placeholder="e.g. 230.1" />
      <label for="read-tolerance">Tolerance (relative)</label><input id="read-tolerance" name="tolerance" type="number" step="any" value="0.1" />
      <button type="submit">Read</button></form>
    <p aria-live="polite" class="muted">${busy}</p>
    <${ErrorBox} answer=${read} />
    ${read?.status === 'ok' && html`<div>
      <p>Registers: <code>${read.data.registers.join(' ')}</code></p>
      <div class="grid"><label for="point-name">Point name</label><input id="point-name" value="voltage" />
        <label for="point-unit">Unit</label><input id="point-unit" placeholder="V" /></div>
      <${Table} caption=${`Decodings${near ? ` near ${near}` : ''}`} head=${['Address', 'Type', 'Byte order', 'Scale', 'Value', '']} empty="no decoding near that value"
        rows=${read.data.decodings.map((d) => html`<tr data-decoding=${`${d.address}-${d.type}-${d.byteOrder ?? ''}`}><td>${d.address}</td><td>${d.type}</td><td>${d.byteOrder ?? ''}</td><td>${d.scale ?? 1}</td>
          <td class="num">${String(d.value)}</td><td><button type="button" onClick=${() => makePoint(d)} aria-label=${`Make a point of ${d.type} ${d.byteOrder ?? ''} at ${d.address}`}>Make point</button></td></tr>`)} />
    </div>`}
    <${ErrorBox} answer=${point} />
    ${point?.status === 'ok' && html`<div><h3>Point JSON ${point.data.valid ? '(valid)' : '(has errors)'}</h3>
      <pre data-testid="point-json">${JSON.stringify(point.data.point, null, 2)}</pre>
      ${!point.data.valid && html`<ul class="error">${point.data.errors.map((e) => html`<li>${typeof e === 'string' ? e : e.text ?? e.message}</li>`)}</ul>`}
      <button type="button" onClick=${() => copy(JSON.stringify(point.data.point, null, 2))}>Copy</button> <span aria-live="polite" class="muted">${copied}</span>
      <p class="muted">Add it to the device's "points" in its mapping (the Config page edits the running mappings).</p></div>`}
  </section>`;
}
