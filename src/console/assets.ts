// The console's static files (built by `npm run build` into dist/console-ui/), read once at start and
// kept with their gzip form: a page load costs no disk read and no compression.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export interface Asset {
  body: Buffer;
  gzip: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

/** dist/console-ui of the package: the same from src/console/ (tests under tsx) and dist/console/. */
export function defaultAssetsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'console-ui');
}

/** Every file of `dir` by its URL path ("/index.html"); empty when the console was not built. */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!fs.existsSync(dir)) return assets;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const body = fs.readFileSync(file);
    const urlPath = '/' + path.relative(dir, file).split(path.sep).join('/');
    assets.set(urlPath, {
      body,
      gzip: zlib.gzipSync(body, { level: 9 }),
      type: TYPES[path.extname(file)] ?? 'application/octet-stream',
      etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`,
    });
  }
  return assets;
}

/** Bytes sent for the whole console, gzipped (the budget is 150,000 bytes). */
export function gzippedTotal(assets: Map<string, Asset>): number {
  let total = 0;
  for (const asset of assets.values()) total += asset.gzip.length;
  return total;
}
