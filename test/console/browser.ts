// Debian's Chromium driven by playwright-core, with the flags it needs on a closed network (without
// the background-networking ones it hangs trying to reach Google), and a fresh profile each time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ROOT } from '../gateway/helpers.js';
import { requireTool } from '../helpers/peers.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Under CI=true a missing chromium fails the test file (`.ci/run` installs it), elsewhere it skips. */
export const haveChromium = requireTool('chromium') && fs.existsSync(CHROMIUM);
/** Screenshots of the test runs (ignored by git). */
export const SHOTS = path.join(ROOT, 'test-results', 'console');

export async function launchBrowser(viewport = { width: 1200, height: 900 }): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export { ensureConsoleBuilt } from './build.js';
