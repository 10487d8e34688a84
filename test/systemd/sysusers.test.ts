// systemd/fieldgate.sysusers creates the service user in the dialout group (checked in a scratch root).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toolInPath } from '../helpers/peers.js';

const haveSysusers = toolInPath('systemd-sysusers');
if (!haveSysusers) console.warn('skipping the sysusers check: systemd-sysusers not in PATH (apt-get install -y systemd)');

describe.skipIf(!haveSysusers)('systemd/fieldgate.sysusers', () => {
  it('creates fieldgate with home /var/lib/fieldgate, no shell, member of dialout', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fieldgate-sysroot-'));
    try {
      mkdirSync(join(root, 'etc'));
      writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
      writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
      writeFileSync(join(root, 'etc/shadow'), '');
      writeFileSync(join(root, 'etc/gshadow'), '');
      await promisify(execFile)('systemd-sysusers', [`--root=${root}`, resolve('systemd/fieldgate.sysusers')], { timeout: 60_000 });
      const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
      const group = readFileSync(join(root, 'etc/group'), 'utf8');
      expect(passwd).toMatch(/^fieldgate:x:\d+:\d+:fieldgate MQTT edge gateway:\/var\/lib\/fieldgate:\/usr\/sbin\/nologin$/m);
      expect(group).toMatch(/^dialout:x:20:fieldgate$/m);
      expect(group).toMatch(/^fieldgate:x:\d+:$/m);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
