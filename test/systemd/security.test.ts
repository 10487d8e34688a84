// The systemd unit must stay hardened ("OK" or better from systemd-analyze) and still reach serial ports.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toolInPath } from '../helpers/peers.js';

const run = promisify(execFile);
const unitPath = resolve('systemd/fieldgate.service');
const unit = readFileSync(unitPath, 'utf8');

/** All values of a [Service] setting, in order (settings may repeat). */
function settings(name: string): string[] {
  return unit
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

// systemd-analyze comes with Debian's `systemd` package. Missing it fails only where CI promises to install it.
const haveAnalyze = toolInPath('systemd-analyze');
const ciInstallsSystemd = existsSync('.ci/run') && /apt-get install[^\n]*\bsystemd\b/.test(readFileSync('.ci/run', 'utf8'));
if (!haveAnalyze) {
  if (process.env.CI === 'true' && ciInstallsSystemd) throw new Error('systemd-analyze is required under CI=true (apt-get install -y systemd)');
  console.warn('skipping the systemd-analyze checks: systemd-analyze not in PATH (apt-get install -y systemd)');
}

describe('systemd/fieldgate.service', () => {
  it('runs the gateway as fieldgate with the dialout group, state and config directories', () => {
    expect(settings('ExecStart')).toEqual(['/usr/local/bin/fieldgate run --config /etc/fieldgate/fieldgate.json']);
    expect(settings('User')).toEqual(['fieldgate']);
    expect(settings('Group')).toEqual(['fieldgate']);
    expect(settings('SupplementaryGroups')).toEqual(['dialout']);
    expect(settings('StateDirectory')).toEqual(['fieldgate']);
    expect(settings('ConfigurationDirectory')).toEqual(['fieldgate']);
    expect(settings('Restart')).toEqual(['on-failure']);
    // A configuration error (exit 78, EX_CONFIG) is not restarted every RestartSec for ever.
    expect(settings('RestartPreventExitStatus')).toEqual(['78']);
    expect(settings('KillSignal')).toEqual(['SIGTERM']);
    expect(settings('TimeoutStopSec')).toHaveLength(1);
  });

  it('keeps serial adapters reachable inside the sandbox', () => {
    expect(settings('PrivateDevices')).not.toContain('yes');
    expect(settings('DevicePolicy')).toEqual(['closed']);
    const allowed = settings('DeviceAllow');
    expect(allowed).toContain('char-ttyUSB rw'); // USB-RS485 adapters, also via /dev/serial/by-id links
    expect(allowed).toContain('char-ttyAMA rw'); // Raspberry Pi UART
    expect(allowed).toContain('char-ttyACM rw');
    // PrivateUsers= would hide the dialout group from the kernel's permission check.
    expect(settings('PrivateUsers')).not.toContain('yes');
  });

  it('needs no capability for its ports (1883, 8883, 9001 are unprivileged)', () => {
    expect(settings('CapabilityBoundingSet')).toEqual(['']);
    expect(settings('AmbientCapabilities')).toEqual(['']);
    const families = settings('RestrictAddressFamilies').join(' ');
    expect(families).toMatch(/AF_INET\b/);
    expect(families).toMatch(/AF_INET6\b/);
    expect(settings('PrivateNetwork')).not.toContain('yes');
  });

  it.skipIf(!haveAnalyze)('is rated OK or better by systemd-analyze security (exposure ≤ 4.0)', async () => {
    const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unitPath], { timeout: 60_000 });
    const match = /Overall exposure level for fieldgate\.service: (\d+(?:\.\d+)?) (\S+)/.exec(stdout);
    expect(match, stdout.slice(-400)).not.toBeNull();
    const exposure = Number(match![1]);
    console.info(`systemd-analyze exposure: ${exposure} ${match![2]}`);
    expect(exposure).toBeLessThanOrEqual(4.0);
    expect(['OK', 'SAFE']).toContain(match![2]);
  });

  it.skipIf(!haveAnalyze)('passes systemd-analyze verify', async () => {
    // verify also checks that ExecStart exists; point it at a binary that does.
    const dir = mkdtempSync(join(tmpdir(), 'fieldgate-unit-'));
    try {
      const copy = join(dir, 'fieldgate.service');
      writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
      const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', copy], { timeout: 60_000 });
      expect(stdout + stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
