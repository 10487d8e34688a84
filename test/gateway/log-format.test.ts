// The gateway's log output as its readers see it: `fieldgate run` with stdout on the stream
// JOURNAL_STREAM names (as systemd starts it), parsed as journald parses a stream (sd-daemon(3)
// "<N>" priority prefix, one entry per line); `log.format: "json"` for log shippers, with no key
// repeated in any line; "text" forced elsewhere; the terminal's pretty form through a real pty.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseLogOutput, createLogger, formatForJournal, stdoutIsJournal, syslogPriority } from '../../src/log.js';
import { watchFilters } from '../../src/watch-hint.js';
import { requireTool } from '../helpers/peers.js';
import { BIN, ensureBuilt, freePort, tempDir, waitFor } from './helpers.js';

/** Keys that appear twice in one JSON object (JSON.parse would silently keep the last). */
export function duplicateKeys(json: string): string[] {
  const dups: string[] = [];
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  let expectKey = false;
  while (i < json.length) {
    const c = json[i]!;
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const text = JSON.parse(json.slice(i, j + 1)) as string;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        if (keys.has(text)) dups.push(text);
        keys.add(text);
      }
      expectKey = false;
      i = j + 1;
      continue;
    }
    if (c === '{') { stack.push(new Set()); expectKey = true; }
    else if (c === '[') { stack.push(null); }
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') expectKey = stack[stack.length - 1] !== null;
    i++;
  }
  return dups;
}

/** What journald makes of one line of a service's stdout stream (level-prefix on, as for services). */
function asJournal(line: string): { priority: number; message: string } {
  const m = /^<([0-7])>(.*)$/.exec(line);
  return m ? { priority: Number(m[1]), message: m[2]! } : { priority: 6, message: line };
}

describe('log output choice', () => {
  it('picks pretty on a terminal, journal text under journald, JSON elsewhere, and obeys log.format', () => {
    expect(chooseLogOutput('auto', { tty: true, journal: false })).toBe('pretty');
    expect(chooseLogOutput('auto', { tty: false, journal: true })).toBe('journal');
    expect(chooseLogOutput('auto', { tty: false, journal: false })).toBe('json');
    expect(chooseLogOutput('json', { tty: false, journal: true })).toBe('json');
    expect(chooseLogOutput('text', { tty: false, journal: false })).toBe('text');
    expect(chooseLogOutput('text', { tty: false, journal: true })).toBe('journal');
    expect([10, 20, 30, 40, 50, 60].map(syslogPriority)).toEqual([7, 7, 6, 4, 3, 2]);
  });

  it('finds repeated keys in a JSON line, at any depth', () => {
    expect(duplicateKeys('{"level":40,"device":"rtu-dead","device":"rtu-dead","msg":"x"}')).toEqual(['device']);
    expect(duplicateKeys('{"a":{"b":1,"b":2},"c":[{"d":1},{"d":2}],"e":"\\"e\\":"}')).toEqual(['b']);
    expect(duplicateKeys('{"a":1,"b":"a"}')).toEqual([]);
  });

  it('believes JOURNAL_STREAM only when it names the stream stdout really is', () => {
    const dir = tempDir('fieldgate-journal-stream-');
    const fd = fs.openSync(path.join(dir, 'out'), 'w');
    const other = fs.openSync(path.join(dir, 'other'), 'w');
    try {
      const stat = fs.fstatSync(fd, { bigint: true });
      const env = { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` };
      expect(stdoutIsJournal(env, fd)).toBe(true);
      expect(stdoutIsJournal(env, other)).toBe(false); // inherited by a process whose stdout went elsewhere
      expect(stdoutIsJournal({}, fd)).toBe(false);
      expect(stdoutIsJournal({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(other);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes one line per event even when a message or field has newlines', () => {
    const lines: string[] = [];
    const logger = createLogger('debug', { output: 'journal', write: (l) => lines.push(l) });
    logger.error({ err: new Error('disk\nfull'), path: '/var/lib/x y' }, 'first\nsecond');
    logger.debug('dbg');
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1)).toBe(true);
    expect(lines[0]).toBe('<3>first\\nsecond err="Error: disk\\nfull" path="/var/lib/x y"\n');
    expect(lines[1]).toBe('<7>dbg\n');
    expect(formatForJournal('not json\n')).toBe('<6>not json\n');
  });

  it('suggests watching where the devices publish', () => {
    expect(watchFilters(['fieldgate/demo-meter'])).toEqual(['fieldgate/demo-meter/#']);
    expect(watchFilters(['plant/a', 'plant/a/b', 'site/m1'])).toEqual(['plant/a/#', 'site/m1/#']);
    expect(watchFilters(['a/1', 'a/2', 'a/3', 'b/1', 'c/1'])).toEqual(['a/#', 'b/#', 'c/#']);
    expect(watchFilters([])).toEqual(['#']);
  });
});

describe('fieldgate run: the log as journald, a log shipper and a terminal see it', () => {
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = tempDir('fieldgate-log-format-');
  }, 120_000);
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Runs the gateway with stdout on a file that JOURNAL_STREAM names (what systemd does with a
   * socket), makes it log a refusal, a warning and an error, stops it, and returns its lines.
   */
  async function runUnderJournal(name: string, format: 'auto' | 'json' | 'text', journal = true): Promise<{ lines: string[]; port: number; wsPort: number }> {
    const work = path.join(dir, name);
    fs.mkdirSync(path.join(work, 'devices'), { recursive: true });
    const port = await freePort();
    const wsPort = await freePort();
    // A Modbus TCP "device" that accepts and never answers: the device goes offline (a warning).
    const silent = net.createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const deadPort = (silent.address() as net.AddressInfo).port;
    fs.writeFileSync(path.join(work, 'acl'), 'topic readwrite #\n');
    fs.writeFileSync(path.join(work, 'devices', 'dead.json'), JSON.stringify({
      buses: [{ id: 'tcp-dead', type: 'modbus-tcp', host: '127.0.0.1', port: deadPort }],
      devices: [{ id: 'rtu-dead', bus: 'tcp-dead', unitId: 1, pollIntervalMs: 200, timeoutMs: 200, retries: 0, points: [{ name: 'v', table: 'input', address: 0, type: 'uint16' }] }],
    }));
    fs.writeFileSync(path.join(work, 'fieldgate.json'), JSON.stringify({
      log: { level: 'debug', format },
      broker: { host: '127.0.0.1', port, dataDir: 'data', sysIntervalSeconds: 0 },
      listeners: [{ type: 'ws', host: '127.0.0.1', port: wsPort }],
      auth: { aclFile: 'acl' },
      devices: ['devices/dead.json'],
    }));
    const outFile = path.join(work, 'stdout');
    const out = fs.openSync(outFile, 'w');
    const stat = fs.fstatSync(out, { bigint: true });
    const env = { ...process.env, JOURNAL_STREAM: journal ? `${stat.dev}:${stat.ino}` : '' };
    const child = spawn(process.execPath, [BIN, 'run', '--config', path.join(work, 'fieldgate.json')], { cwd: work, env, stdio: ['ignore', out, 'pipe'] });
    fs.closeSync(out);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const text = () => fs.readFileSync(outFile, 'utf8');
    try {
      await waitFor(() => text().includes('watch the readings'), `${name}: the start-up lines`, 30_000);
      // A refused connection (wrong password is impossible without a password file: a bad protocol name is refused instead)…
      const client = await mqtt.connectAsync({ host: '127.0.0.1', port, username: 'carol', clientId: 'log-client', reconnectPeriod: 0 });
      await client.endAsync();
      await mqtt.connectAsync(`ws://127.0.0.1:${wsPort}/mqtt`, { username: 'carol', clientId: 'ws-client', reconnectPeriod: 0 }).then((c) => c.endAsync());
      await fetch(`http://127.0.0.1:${wsPort}/wrong`).then((r) => r.text()).catch(() => undefined);
      await waitFor(() => text().includes('modbus device offline'), `${name}: the offline warning`, 30_000);
      // A bad ACL on SIGHUP is an error (and the old ACL stays).
      fs.writeFileSync(path.join(work, 'acl'), 'topic reed a/b\n');
      child.kill('SIGHUP');
      await waitFor(() => text().includes('auth reload rejected'), `${name}: the reload error`, 30_000);
      await waitFor(() => text().includes('client disconnected') || undefined, `${name}: the disconnect line`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${text()}`);
    } finally {
      silent.close();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      expect(await exited).toBe(0);
      clearTimeout(timer);
    }
    return { lines: text().split('\n').filter((l) => l !== ''), port, wsPort };
  }

  it('under journald: text lines with the syslog priority, so journalctl -p warning shows the warnings and errors', async () => {
    const { lines, port, wsPort } = await runUnderJournal('journal', 'auto');
    const entries = lines.map(asJournal);
    expect(lines.every((l) => /^<[0-7]>/.test(l)), lines.filter((l) => !/^<[0-7]>/.test(l)).join('\n')).toBe(true);
    expect(lines.some((l) => l.startsWith('{'))).toBe(false);
    const find = (prefix: string) => entries.find((e) => e.message.startsWith(prefix));
    expect(find('MQTT broker listening on')).toMatchObject({ priority: 6 });
    expect(find('watch the readings:')?.message).toContain("-t 'fieldgate/rtu-dead/#'");
    expect(find('modbus device offline')).toMatchObject({ priority: 4 });
    expect(find('modbus device offline')?.message).toMatch(/ device=rtu-dead( |$)/);
    expect(find('auth reload rejected')).toMatchObject({ priority: 3 });
    const connected = find('client connected')!;
    expect(connected.message).toContain(`username=carol listener=mqtt://127.0.0.1:${port}`);
    expect(entries.find((e) => e.message.startsWith('client connected') && e.message.includes('clientId=ws-client'))?.message).toContain(`listener=ws://127.0.0.1:${wsPort}/mqtt`);
    expect(find('client disconnected')?.message).toContain('username=carol');
    expect(find('WebSocket upgrade refused') ?? find('HTTP request for an unknown path')).toBeDefined();
    // journalctl -p warning: priorities 0..4.
    const warnings = entries.filter((e) => e.priority <= 4).map((e) => e.message.split(' ', 3).join(' '));
    expect(warnings.length).toBeGreaterThanOrEqual(2);
    expect(entries.filter((e) => e.priority <= 4).every((e) => !e.message.startsWith('client connected'))).toBe(true);
  }, 90_000);

  it('log.format "json" keeps JSON lines under journald, and no line repeats a key', async () => {
    const { lines } = await runUnderJournal('json', 'json');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(5);
    const offline = records.find((r) => r.msg === 'modbus device offline');
    expect(offline).toMatchObject({ level: 40, device: 'rtu-dead' });
    const repeated = lines.map((l) => ({ l, dups: duplicateKeys(l) })).filter((x) => x.dups.length > 0);
    expect(repeated, repeated.map((x) => x.l).join('\n')).toEqual([]);
    expect(records.find((r) => r.msg === 'client connected')).toMatchObject({ username: 'carol' });
  }, 90_000);

  it('log.format "text" gives text lines with a time where journald is not there to add one', async () => {
    const { lines } = await runUnderJournal('text', 'text', false);
    expect(lines.find((l) => l.includes('modbus device offline'))).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  modbus device offline .*device=rtu-dead/);
  }, 90_000);

  it.skipIf(!requireTool('script'))('on a terminal (a real pty): the pretty form, as before', async () => {
    const port = await freePort();
    const work = path.join(dir, 'tty');
    fs.mkdirSync(work, { recursive: true });
    fs.writeFileSync(path.join(work, 'fieldgate.json'), JSON.stringify({ broker: { host: '127.0.0.1', port, dataDir: 'data', sysIntervalSeconds: 0 } }));
    // `script` gives the gateway a pty as stdout; once it says it listens it gets SIGINT (Ctrl-C), by the
    // pid its first line names: a fixed run time was too short on a loaded machine. `timeout` is the backstop.
    // Asynchronously: a synchronous wait would stall this test worker (and its reports to vitest) for seconds.
    const result = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = spawn('script', ['-qfec', `timeout -s INT 40 ${process.execPath} ${BIN} run --config fieldgate.json`, '/dev/null'], { cwd: work, env: { ...process.env, JOURNAL_STREAM: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let interrupted = false;
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        const pid = /"pid":(\d+)/.exec(stdout)?.[1];
        if (!interrupted && pid && stdout.includes('MQTT broker listening on')) {
          interrupted = true;
          process.kill(Number(pid), 'SIGINT');
        }
      });
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
      child.once('close', () => { clearTimeout(timer); resolve({ stdout, stderr }); });
    });
    const listening = result.stdout.split(/\r?\n/).find((l) => l.includes('MQTT broker listening on'));
    expect(listening, result.stdout + result.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  MQTT broker listening on mqtt:\/\/127\.0\.0\.1:\d+ \{"url":/);
  }, 60_000);
});
