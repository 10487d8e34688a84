// The gateway's log in a real systemd-journald: journald runs in a private mount namespace (its
// sockets under a private /run, its journal files in a temporary directory), fieldgate runs with
// stdout and stderr on journald's stream socket and JOURNAL_STREAM naming that socket (what systemd
// does for a service; systemd-cat makes the connection, the same sd_journal_stream_fd() call), and
// the entries are read back with `journalctl --directory …/journal -o json`, as `journalctl -u fieldgate -p
// warning` would select them. Needs root (for the mount namespace) and systemd's journald; where
// either is missing the test says why and is skipped (a container may forbid unshare even to root).
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt, freePort, ROOT, tempDir, waitFor } from './helpers.js';

const JOURNALD = '/lib/systemd/systemd-journald';

function whyNot(): string | undefined {
  if (!fs.existsSync(JOURNALD)) return `${JOURNALD} is not installed (apt-get install systemd)`;
  for (const tool of ['journalctl', 'systemd-cat', 'unshare']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { return `${tool} is not in PATH`; }
  }
  try {
    execFileSync('unshare', ['--mount', '--fork', 'sh', '-c', 'mount -t tmpfs tmpfs /run'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'cannot make a private mount namespace here (needs root and CAP_SYS_ADMIN)';
  }
  return undefined;
}

const reason = whyNot();
if (reason) console.warn(`skipping the real-journald test: ${reason}`);

/**
 * Starts journald in a private /run, then fieldgate on its stream; waits for fieldgate, then stops
 * journald. Both pids are written to $D, so a test that fails midway can end them (see endHarness).
 */
const harness = `
set -u
D="$1"; shift
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log
mount --bind "$D/journal" /run/log
${JOURNALD} >"$D/journald.out" 2>&1 &
jpid=$!
echo $jpid > "$D/journald.pid"
for i in $(seq 200); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
# systemd-cat connects stdout and stderr to journald's stream socket and execs the command; the
# command sets JOURNAL_STREAM to that socket's device:inode, as systemd does for a service.
systemd-cat -t fieldgate sh -c 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/1) exec "$@"' sh "$@" &
echo $! > "$D/pid"
wait $!
echo $? > "$D/exit"
journalctl --sync >/dev/null 2>&1
kill $jpid
wait $jpid
`;

/** After a failure: the gateway and journald of a harness that did not finish, by the pids it wrote. */
function endHarness(dir: string): void {
  if (fs.existsSync(path.join(dir, 'exit'))) return;
  for (const file of ['pid', 'journald.pid']) {
    try { process.kill(Number(fs.readFileSync(path.join(dir, file), 'utf8')), 'SIGKILL'); } catch { /* not started, or gone */ }
  }
}

interface Entry { MESSAGE: string; PRIORITY: string; SYSLOG_IDENTIFIER?: string; _PID?: string; _TRANSPORT?: string }

describe.skipIf(reason !== undefined)('fieldgate run under a real systemd-journald', () => {
  let root: string;
  let dir: string;
  let journalDir: string;
  const journalctl = async (...args: string[]): Promise<Entry[]> => {
    const { stdout } = await promisify(execFile)('journalctl', ['--directory', path.join(journalDir, 'journal'), '--no-pager', '-o', 'json', '-t', 'fieldgate', ...args], { maxBuffer: 64 << 20, timeout: 30_000 });
    return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
  };
  /** A fresh journal (and harness directory) for each case. */
  const freshJournal = (name: string) => {
    dir = path.join(root, name);
    journalDir = path.join(dir, 'journal');
    fs.mkdirSync(journalDir, { recursive: true });
  };

  beforeAll(() => {
    ensureBuilt();
    root = tempDir('fieldgate-journald-');
  }, 120_000);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('stores each line with the priority of its prefix: journalctl -p warning shows the warnings and errors, not the rest', async () => {
    freshJournal('running');
    const work = path.join(dir, 'work');
    fs.mkdirSync(path.join(work, 'devices'), { recursive: true });
    const port = await freePort();
    // A Modbus TCP "device" that accepts and never answers: it goes offline (a warning).
    const silent = net.createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    fs.writeFileSync(path.join(work, 'acl'), 'topic readwrite #\n');
    fs.writeFileSync(path.join(work, 'devices', 'dead.json'), JSON.stringify({
      buses: [{ id: 'tcp-dead', type: 'modbus-tcp', host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }],
      devices: [{ id: 'rtu-dead', bus: 'tcp-dead', unitId: 1, pollIntervalMs: 200, timeoutMs: 200, retries: 0, points: [{ name: 'v', table: 'input', address: 0, type: 'uint16' }] }],
    }));
    fs.writeFileSync(path.join(work, 'fieldgate.json'), JSON.stringify({
      broker: { host: '127.0.0.1', port, dataDir: 'data', sysIntervalSeconds: 0 },
      auth: { aclFile: 'acl' },
      devices: ['devices/dead.json'],
    }));
    const child = spawn('unshare', ['--mount', '--fork', 'bash', '-c', harness, 'harness', dir, process.execPath, BIN, 'run', '--config', path.join(work, 'fieldgate.json')], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const messages = async () => (await journalctl().catch(() => [] as Entry[])).map((e) => e.MESSAGE);
    const has = (prefix: string) => async () => (await messages()).some((m) => m.startsWith(prefix));
    let pid = 0;
    try {
      await waitFor(has('watch the readings'), 'the start-up lines in the journal', 60_000);
      pid = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
      const client = await mqtt.connectAsync({ host: '127.0.0.1', port, username: 'carol', clientId: 'journal-client', reconnectPeriod: 0 });
      await client.endAsync();
      await waitFor(has('modbus device offline'), 'the offline warning in the journal', 60_000);
      fs.writeFileSync(path.join(work, 'acl'), 'topic reed a/b\n'); // a bad ACL on SIGHUP: an error, the old ACL stays
      process.kill(pid, 'SIGHUP');
      await waitFor(has('auth reload rejected'), 'the reload error in the journal', 60_000);
      process.kill(pid, 'SIGTERM');
      await waitFor(() => fs.existsSync(path.join(dir, 'exit')), 'fieldgate to stop', 30_000);
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${output}\n${(await messages()).join('\n')}\n${fs.existsSync(path.join(dir, 'journald.out')) ? fs.readFileSync(path.join(dir, 'journald.out'), 'utf8') : ''}`);
    } finally {
      silent.close();
      endHarness(dir);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(fs.readFileSync(path.join(dir, 'exit'), 'utf8').trim()).toBe('0');

    const all = await journalctl();
    const find = (prefix: string) => all.find((e) => e.MESSAGE.startsWith(prefix));
    expect(all.length).toBeGreaterThan(5);
    // journald took the "<N>" off every line and kept it as PRIORITY; nothing is pino JSON.
    expect(all.filter((e) => /^<\d>|^\{/.test(e.MESSAGE)).map((e) => e.MESSAGE)).toEqual([]);
    expect(all.every((e) => e._TRANSPORT === 'stdout' && e._PID === String(pid))).toBe(true);
    expect(find('MQTT broker listening on')).toMatchObject({ PRIORITY: '6' });
    expect(find('modbus device offline')).toMatchObject({ PRIORITY: '4' });
    expect(find('modbus device offline')!.MESSAGE).toMatch(/ device=rtu-dead( |$)/);
    expect(find('auth reload rejected')).toMatchObject({ PRIORITY: '3' });
    expect(find('client connected')).toMatchObject({ PRIORITY: '6' });
    expect(find('client connected')!.MESSAGE).toContain(`username=carol listener=mqtt://127.0.0.1:${port}`);

    // journalctl -p warning: priorities 0..4, selected by journald's own PRIORITY field.
    const warnings = (await journalctl('-p', 'warning')).map((e) => e.MESSAGE);
    expect(warnings.some((m) => m.startsWith('modbus device offline'))).toBe(true);
    expect(warnings.some((m) => m.startsWith('auth reload rejected'))).toBe(true);
    expect(warnings.filter((m) => /^(client connected|MQTT broker listening|watch the readings)/.test(m))).toEqual([]);
    const errors = (await journalctl('-p', 'err')).map((e) => e.MESSAGE);
    expect(errors.some((m) => m.startsWith('auth reload rejected'))).toBe(true);
    expect(errors.some((m) => m.startsWith('modbus device offline'))).toBe(false);
  }, 180_000);

  it('a configuration error that stops the service (exit 78, written before the logger exists) is an error in the journal, not info', async () => {
    freshJournal('bad-config');
    const config = path.join(dir, 'fieldgate.json');
    fs.writeFileSync(config, JSON.stringify({ broker: { hots: '0.0.0.0' }, devices: ['devices/missing.json'] }));
    const child = spawn('unshare', ['--mount', '--fork', 'bash', '-c', harness, 'harness', dir, process.execPath, BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => { endHarness(dir); child.kill('SIGKILL'); }, 60_000);
    await new Promise<void>((resolve) => child.once('close', () => resolve()));
    clearTimeout(timer);
    expect(fs.existsSync(path.join(dir, 'exit')), output).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'exit'), 'utf8').trim()).toBe('78');
    const all = await journalctl();
    expect(all.map((e) => [e.PRIORITY, e.MESSAGE])).toEqual([
      ['3', 'fieldgate: the configuration has 2 errors:'],
      ['3', expect.stringMatching(/broker: unknown key "hots": did you mean "host"\?$/)],
      ['3', expect.stringMatching(/devices\/missing\.json/)],
    ]);
    expect((await journalctl('-p', 'warning')).length).toBe(3);
  }, 120_000);

  it('an uncaught exception is logged at priority 2 (crit), its stack too, and the process exits 1', async () => {
    freshJournal('crash');
    const config = path.join(dir, 'fieldgate.json');
    const port = await freePort();
    fs.writeFileSync(config, JSON.stringify({ broker: { host: '127.0.0.1', port, dataDir: path.join(dir, 'data'), sysIntervalSeconds: 0 } }));
    const preload = path.join(ROOT, 'test/gateway/fixtures/crash-later.mjs');
    const child = spawn('unshare', ['--mount', '--fork', 'bash', '-c', harness, 'harness', dir, process.execPath, '--import', preload, BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => { endHarness(dir); child.kill('SIGKILL'); }, 60_000);
    await new Promise<void>((resolve) => child.once('close', () => resolve()));
    clearTimeout(timer);
    expect(fs.existsSync(path.join(dir, 'exit')), output).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'exit'), 'utf8').trim()).toBe('1');
    const crit = await journalctl('-p', 'crit');
    expect(crit[0]!.MESSAGE).toMatch(/^uncaught exception, exiting: boom from a test preload err=/);
    expect(crit.map((e) => e.MESSAGE)).toContain('Error: boom from a test preload');
    expect(crit.some((e) => /^\s+at .*crash-later\.mjs/.test(e.MESSAGE))).toBe(true);
    expect(crit.every((e) => e.PRIORITY === '2')).toBe(true);
    // Everything before it was at its own priority: the start-up lines are info.
    expect((await journalctl()).find((e) => e.MESSAGE.startsWith('MQTT broker listening on'))).toMatchObject({ PRIORITY: '6' });
  }, 120_000);
});
