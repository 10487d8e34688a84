// Builds the web console into dist/console-ui/ (run by `npm run build`, hence by `prepare`):
// one script (Preact, htm, uPlot, MQTT.js's browser build and the pages, minified), one stylesheet,
// the page, and the device-mapping JSON Schema the editor checks against. Prints the gzipped sizes.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ui = path.join(root, 'src', 'console', 'ui');
const out = path.join(root, 'dist', 'console-ui');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: path.join(ui, 'main.js') },
  bundle: true, minify: true, format: 'esm', target: 'es2020', outdir: out, legalComments: 'none', logLevel: 'warning',
  // MQTT.js's browser build (a single prebuilt file: its Node entry would pull in net/tls).
  alias: { 'mqtt/dist/mqtt.esm.js': path.join(root, 'node_modules', 'mqtt', 'dist', 'mqtt.esm.js') },
});
await build({ entryPoints: { app: path.join(ui, 'app.css') }, bundle: true, minify: true, outdir: out, logLevel: 'warning' });
fs.copyFileSync(path.join(ui, 'index.html'), path.join(out, 'index.html'));
// The descriptions are for editors with hover help; the console checks only the rules.
const schema = JSON.parse(fs.readFileSync(path.join(root, 'schemas', 'device-mapping.schema.json'), 'utf8'));
const strip = (node) => {
  if (Array.isArray(node)) return node.map(strip);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'description' && typeof v === 'string')).map(([k, v]) => [k, strip(v)]));
};
fs.writeFileSync(path.join(out, 'device-mapping.schema.json'), JSON.stringify(strip(schema)));

let total = 0;
const lines = [];
for (const name of fs.readdirSync(out).sort()) {
  const body = fs.readFileSync(path.join(out, name));
  const gz = zlib.gzipSync(body, { level: 9 }).length;
  total += gz;
  lines.push(`  ${name}: ${(body.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`);
}
console.log(`web console built in dist/console-ui (${(total / 1024).toFixed(1)} KiB gzipped in all, budget 150 KB):\n${lines.join('\n')}`);
