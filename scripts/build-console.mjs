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

// MQTT.js from its compiled sources (src/console/ui/mqtt/client.js says why), with the modules its
// browser WebSocket client never calls mapped to stubs and Node's buffer/events/process to the
// browser packages readable-stream already depends on.
const stubs = path.join(ui, 'mqtt', 'stubs');
const result = await build({
  entryPoints: { app: path.join(ui, 'main.js') },
  bundle: true, minify: process.env.CONSOLE_NO_MINIFY !== '1', format: 'esm', target: 'es2020', platform: 'browser', outdir: out, legalComments: 'none', logLevel: 'warning',
  metafile: true,
  alias: {
    debug: path.join(stubs, 'debug.cjs'), 'lru-cache': path.join(stubs, 'lru-cache.js'),
    ws: path.join(stubs, 'empty.js'), url: path.join(stubs, 'empty.js'),
    // The package's exports name only its entry points; the compiled modules are under build/.
    'mqtt-build': path.join(root, 'node_modules', 'mqtt', 'build'),
  },
  inject: [path.join(stubs, 'process.js')],
  define: { global: 'globalThis' },
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

// The budget: all assets together at most 150 KB gzipped (KB = 1000 bytes), checked on every
// build: a build over it fails. The biggest inputs are written next to it for the next person to look.
const BUDGET_BYTES = 150_000;
let total = 0;
const lines = [];
for (const name of fs.readdirSync(out).sort()) {
  const body = fs.readFileSync(path.join(out, name));
  const gz = zlib.gzipSync(body, { level: 9 }).length;
  total += gz;
  lines.push(`  ${name}: ${body.length} bytes, ${gz} bytes gzipped`);
}
const inputs = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.inputs ?? {};
const biggest = Object.entries(inputs).map(([file, { bytesInOutput }]) => [file.replace(/^.*node_modules\//, ''), bytesInOutput])
  .sort((a, b) => b[1] - a[1]).slice(0, 8).map(([file, bytes]) => `    ${file}: ${bytes} bytes minified`);
console.log(`web console built in dist/console-ui (${total} bytes gzipped in all, budget ${BUDGET_BYTES}):\n${lines.join('\n')}\n  biggest parts of app.js:\n${biggest.join('\n')}`);
if (total > BUDGET_BYTES && process.env.CONSOLE_NO_MINIFY !== '1') {
  console.error(`web console assets are ${total} bytes gzipped, over the budget of ${BUDGET_BYTES} bytes`);
  process.exit(1);
}
