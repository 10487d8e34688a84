// The command line as a user types it: `node bin/fieldgate.js …` in a child process.
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedMeter, type SimulatedMeter } from '../../src/demo/simulated-meter.js';
import { parseGatewayConfig } from '../../src/config/gateway-config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import { editorSchemaCheck, requireJsonschema, requireTool } from '../helpers/peers.js';
import { requirePymodbus, requireSocat, startPtyPair, startSlave } from '../devices/helpers/modbus-peers.js';
import { startMosquitto, mosquittoPub } from '../auth/mosquitto-peer.js';
import { checkCredentials, readPasswordFile } from '../../src/auth/password-file.js';
import { ensureBuilt, freePort, ROOT, runCli, tempDir, waitFor } from '../gateway/helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
let dir: string;

beforeAll(() => {
  ensureBuilt();
  dir = tempDir('fieldgate-cli-');
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

describe('help and version', () => {
  it('--help lists every command and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['run', 'check', 'probe', 'passwd', 'schema']) expect(result.stdout).toMatch(new RegExp(`^  fieldgate ${command}\\b`, 'm'));
    expect(result.stdout).toContain(`fieldgate ${pkg.version}`);
  });

  it('--version prints the package version', async () => {
    const result = await runCli(['--version']);
    expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('an unknown command or flag is a usage error (exit 2) that points at --help', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const flag = await runCli(['check', '--confg', 'x.json']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--confg/);
    expect(flag.stderr).toContain('fieldgate --help');
  });
});

describe('exit codes and per-command help', () => {
  it('a bare `fieldgate` prints the help on stderr and exits 2 (usage error)', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^  fieldgate run\b/m);
    expect(result.stderr).toContain('78 configuration error');
  });

  it('every command takes --help and -h (exit 0, its own usage)', async () => {
    for (const command of ['run', 'check', 'probe', 'passwd', 'schema']) {
      for (const flag of ['--help', '-h']) {
        const result = await runCli([command, flag]);
        expect(result.code, `${command} ${flag}: ${result.stderr}`).toBe(0);
        expect(result.stdout).toMatch(new RegExp(`^  fieldgate ${command}\\b`, 'm'));
        for (const other of ['run', 'check', 'probe', 'passwd', 'schema'].filter((c) => c !== command)) expect(result.stdout).not.toMatch(new RegExp(`^  fieldgate ${other}\\b`, 'm'));
      }
    }
    const run = await runCli(['run', '--help']);
    expect(run.stdout).toContain('--config, -c FILE');
    expect(run.stdout).not.toMatch(/fieldgate check/);
  });

  it('a configuration error exits 78 (EX_CONFIG) from run and check; a runtime error (port taken) exits 1', async () => {
    const bad = write('exit/bad.json', { broker: { durability: 'fast' } });
    expect((await runCli(['check', '--config', bad])).code).toBe(78);
    expect((await runCli(['run', '--config', bad])).code).toBe(78);
    // A file the config names that is missing is a configuration error too.
    const noPasswd = write('exit/no-passwd.json', { broker: { port: 0, dataDir: path.join(dir, 'exit/data') }, auth: { passwordFile: 'passwd' } });
    const missing = await runCli(['run', '--config', noPasswd]);
    expect(missing.code).toBe(78);
    expect(missing.stdout + missing.stderr).toMatch(/auth\.passwordFile: .*ENOENT/);
    expect((await runCli(['run', '--config', path.join(dir, 'exit/absent.json')])).code).toBe(78);
    // A usage error stays 2.
    expect((await runCli(['run', '--port', 'x'])).code).toBe(2);
    // The port being taken is not the config's fault: 1, so systemd restarts it.
    const net = await import('node:net');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const taken = (server.address() as import('node:net').AddressInfo).port;
      const good = write('exit/good.json', { broker: { port: taken, dataDir: path.join(dir, 'exit/data') } });
      const busy = await runCli(['run', '--config', good]);
      expect(busy.code, busy.stdout + busy.stderr).toBe(1);
    } finally {
      server.close();
    }
  });

  it('schema --out into a directory that cannot exist fails at once instead of spinning', async () => {
    const started = Date.now();
    const result = await runCli(['schema', '--out', '/proc/fieldgate-x'], { timeoutMs: 10_000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('fieldgate schema: cannot write the schemas to /proc/fieldgate-x: ENOENT\n');
    expect(Date.now() - started).toBeLessThan(10_000);
    const file = write('exit/plain-file', 'x');
    expect((await runCli(['schema', '--out', path.join(file, 'sub')], { timeoutMs: 10_000 })).stderr).toMatch(/ENOTDIR|EEXIST/);
  });

  it('run --data in a directory that cannot exist exits 1 with the reason instead of spinning (found by the 2nd README walkthrough)', async () => {
    // Node 20's mkdirSync({ recursive: true }) loops for ever on /proc/x at 100% CPU, deaf to SIGTERM:
    // the data directory and the demo mapping under it went through it.
    const result = await runCli(['run', '--port', '0', '--console-port', '0', '--data', '/proc/fieldgate-data'], { timeoutMs: 30_000 });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toContain('cannot create the data directory /proc/fieldgate-data (ENOENT)');
    const file = write('exit/data-is-a-file', 'x');
    const under = await runCli(['run', '--port', '0', '--console-port', '0', '--data', path.join(file, 'data')], { timeoutMs: 30_000 });
    expect(under.code, under.stdout + under.stderr).toBe(1);
    expect(under.stdout).toContain('(ENOTDIR)');
  });
});

describe('check', () => {
  it('prints what would run for a valid config with devices, listeners, auth and a bridge', async () => {
    write('good/devices/meter.json', {
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
      include: [{ profile: 'eastron-sdm120', id: 'kitchen', bus: 'lan', unitId: 3, topicPrefix: 'home/kitchen' }],
    });
    fs.writeFileSync(path.join(dir, 'good/acl'), 'pattern read home/#\n');
    const passwd = await runCli(['passwd', '-b', path.join(dir, 'good/passwd'), 'alice', 'secret']);
    expect(passwd.code).toBe(0);
    const config = write('good/fieldgate.json', {
      broker: { host: '0.0.0.0', port: 1883, dataDir: 'state' },
      listeners: [{ type: 'ws', host: '127.0.0.1', port: 9001 }],
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
      devices: ['devices/meter.json'],
      bridges: [{ name: 'cloud', url: 'mqtt://localhost', clientId: 'gw', rules: [{ direction: 'out', filter: 'home/#' }] }],
      metrics: { port: 9883 },
      gatewayId: 'pi-kitchen',
      homeAssistant: { discovery: true },
    });
    const result = await runCli(['check', '--config', config]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`${config}: OK`);
    expect(out).toContain('listener mqtt://0.0.0.0:1883 (user name and password required)');
    expect(out).toContain('listener ws://127.0.0.1:9001/mqtt (anonymous allowed; user names checked against the password file)');
    expect(out).toContain(`data in ${path.join(dir, 'good/state')}`);
    expect(out).toMatch(/bus lan \(modbus-tcp\) 127\.0\.0\.1:5020/);
    expect(out).toMatch(/kitchen unit 3: \d+ points → home\/kitchen\/…/);
    expect(out).toContain('bridge cloud → mqtt://localhost: out home/#');
    expect(out).toContain('metrics on http://127.0.0.1:9883/metrics');
    // One Home Assistant entity per point of the meter, and the gateway's own.
    const points = Number(/kitchen unit 3: (\d+) points/.exec(out)![1]);
    expect(out).toContain(`Home Assistant discovery under homeassistant/ (gateway id pi-kitchen): ${points + 1} entities (1 for the gateway ("Devices online"), ${points} from the device mappings)`);

    const withPoints = await runCli(['check', '--config', config, '--points']);
    expect(withPoints.code).toBe(0);
    expect(withPoints.stdout).toContain('points of kitchen (0-based wire addresses):');
    // The SDM120 profile's voltage is 30001 in the data sheet: input register 0 on the wire.
    expect(withPoints.stdout).toMatch(/^ {4}voltage +float32 ABCD +input 0 +1 decimals V +every \d+ ms +→ home\/kitchen\/voltage$/m);
  });

  it('check --points of the embedded default lists the demo meter\'s points (found by the 2nd README walkthrough: it listed none)', async () => {
    const result = await runCli(['check', '--points'], { cwd: tempDir('fieldgate-check-demo-points-') });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('points of demo-meter (0-based wire addresses):');
    expect(result.stdout).toMatch(/^ {4}voltage +float32 ABCD +input 0 +1 decimals V +every 2000 ms +→ fieldgate\/demo-meter\/voltage$/m);
    expect(result.stdout).toMatch(/^ {4}relay +bool +coil 0 +every 2000 ms +→ fieldgate\/demo-meter\/relay \(write: fieldgate\/demo-meter\/relay\/set\)$/m);
    // Without --points, no point lines.
    expect((await runCli(['check'], { cwd: tempDir('fieldgate-check-demo-points-') })).stdout).not.toContain('points of demo-meter');
  });

  it('lists every error at once, config and device mappings, with JSON path, expected and got; exit 78', async () => {
    write('bad/devices/meter.json', {
      buses: [{ id: 'rs485', type: 'modbus-rtu', path: '/dev/ttyUSB0', baudRate: 9600 }],
      devices: [{ id: 'm1', bus: 'nobus', unitId: 1, points: [{ name: 'v', table: 'input', address: 0, type: 'float' }] }],
    });
    const config = write('bad/fieldgate.json', {
      broker: { port: 70000, durability: 'fast', hots: '0.0.0.0' },
      listeners: [{ type: 'mqtts', port: 8883 }],
      devices: ['devices/meter.json', 'devices/missing.json'],
      metrics: { port: '9883' },
    });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe('fieldgate: the configuration has 8 errors:');
    const meter = path.join(dir, 'bad/devices/meter.json');
    expect(lines.slice(1).map((l) => l.trim()).sort()).toEqual([
      `${config}: broker.durability: expected one of "full", "normal", "off" (got "fast")`,
      `${config}: broker.port: Too big: expected number to be <=65535 (got 70000)`,
      `${config}: broker: unknown key "hots": did you mean "host"?`,
      `${config}: listeners[0].tls: a mqtts listener needs "tls": { "cert": "...", "key": "..." } (got none)`,
      `${config}: metrics.port: expected number (got "9883")`,
      `${meter}: devices[0].bus: unknown bus "nobus" (buses: rs485)`,
      `${meter}: devices[0].points[0].type: expected one of bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string (got "float")`,
      `${path.join(dir, 'bad/devices/missing.json')}: cannot read the file (ENOENT)`,
    ].sort());
  });

  it('device-mapping errors alone also fail the check', async () => {
    write('badmap/m.json', { buses: [], devices: [{ id: 'x', bus: 'b', unitId: 300, points: [] }] });
    const config = write('badmap/fieldgate.json', { devices: ['m.json'] });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`${path.join(dir, 'badmap/m.json')}: devices[0].unitId`);
    expect(result.stderr).toMatch(/got 300/);
  });

  it('a mapping that collides with the demo\'s (with "demo": true) is reported', async () => {
    write('demo-clash/m.json', {
      buses: [{ id: 'demo', type: 'modbus-tcp', host: '127.0.0.1', port: 502 }],
      devices: [{ id: 'demo-meter', bus: 'demo', unitId: 1, points: [{ name: 'p', table: 'input', address: 0, type: 'float32' }] }],
    });
    const config = write('demo-clash/fieldgate.json', { demo: true, devices: ['m.json'] });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`${path.join(dir, 'demo-clash/m.json')}: devices[0].id: duplicate device id "demo-meter" (first defined at the demo mapping ("demo": true) devices[0])`);
  });

  it('two listeners on one port are refused before anything starts', async () => {
    const config = write('ports/fieldgate.json', {
      broker: { host: '0.0.0.0', port: 1883 },
      listeners: [{ type: 'ws', host: '127.0.0.1', port: 1883 }, { type: 'ws', host: '127.0.0.1', port: 9001, path: '/a' }],
      metrics: { host: '127.0.0.1', port: 9001 },
    });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`${config}: listeners[0].port: port 1883 on 127.0.0.1 is already taken by broker.port (on 0.0.0.0): choose another port`);
    expect(result.stderr).toContain(`${config}: metrics.port: port 9001 on 127.0.0.1 is already taken by listeners[1].port (on 127.0.0.1)`);
  });

  it('names files the config points at that cannot be used', async () => {
    write('files/not-a-cert.pem', 'hello\n');
    write('files/bad-acl', 'topic sideways x/#\n');
    const config = write('files/fieldgate.json', {
      listeners: [{ type: 'mqtts', port: 8883, tls: { cert: 'not-a-cert.pem', key: 'missing.key', useIdentityAsUsername: true } }],
      auth: { passwordFile: 'nope', aclFile: 'bad-acl' },
    });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    const err = result.stderr;
    expect(err).toContain(`${config}: listeners[0].tls.key: cannot read ${path.join(dir, 'files/missing.key')} (ENOENT)`);
    expect(err).toContain(`${config}: listeners[0].tls.ca: client certificates need "ca"`);
    expect(err).toMatch(new RegExp(`${config}: auth.passwordFile: .*nope`));
    expect(err).toMatch(new RegExp(`${config}: auth.aclFile: .*bad-acl`));
  });

  it('reports a missing or malformed config file', async () => {
    const missing = await runCli(['check', '--config', path.join(dir, 'absent.json')]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain(`${path.join(dir, 'absent.json')}: cannot read the config file (ENOENT)`);
    const broken = write('broken.json', '{ "broker": ');
    const malformed = await runCli(['check', '--config', broken]);
    expect(malformed.code).toBe(78);
    expect(malformed.stderr).toContain(`${broken}: not valid JSON`);
  });

  it('without --config describes the embedded default (loopback broker, ./data, demo)', async () => {
    const cwd = tempDir('fieldgate-cli-default-');
    try {
      const result = await runCli(['check'], { cwd });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('(embedded default): OK');
      expect(result.stdout).toContain('listener mqtt://127.0.0.1:1883 (anonymous allowed)');
      expect(result.stdout).toContain(`data in ${path.join(fs.realpathSync(cwd), 'data')}`);
      expect(result.stdout).toContain('demo: simulated SDM120');
      expect(result.stdout).toMatch(/^  Home Assistant discovery under homeassistant\/ \(gateway id \S+\): \d+ entities \(1 for the gateway \("Devices online"\), \d+ of the demo meter\)$/m);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('check finds everything in one pass', () => {
  it('schema errors, register overlaps, duplicate topics, every bad ACL and password line, missing files: one run', async () => {
    write('onepass/m.json', {
      buses: [{ id: 'b', type: 'modbus-tcp', host: '127.0.0.1', port: 502 }],
      devices: [
        { id: 'd1', bus: 'b', unitId: 1, points: [
          { name: 'a', table: 'holding', address: 0, type: 'float32' },
          { name: 'b', table: 'holding', address: 1, type: 'uint16' },
          { name: 'c', table: 'holding', address: 5, type: 'flot' },
          { name: 'a', table: 'holding', address: 9, type: 'uint16' },
        ] },
        { id: 'd2', bus: 'b', unitId: 2, topicPrefix: 'fieldgate/d1', points: [{ name: 'a', table: 'holding', address: 20, type: 'uint16' }] },
      ],
    });
    write('onepass/acl', 'topic sideways x\nuser bob\ntopic read a/#/b\nbogus line\ntopic read ok/#\n');
    write('onepass/passwd', 'alice:plain\nbob\n');
    const config = write('onepass/fieldgate.json', {
      broker: { hots: '0.0.0.0', durability: 'fast' },
      listeners: [{ type: 'mqtts', port: 8883 }],
      auth: { passwordFile: 'passwd', aclFile: 'acl' },
      devices: ['m.json'],
      metrcs: {},
    });
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    const m = path.join(dir, 'onepass/m.json');
    const acl = path.join(dir, 'onepass/acl');
    const passwd = path.join(dir, 'onepass/passwd');
    const lines = result.stderr.trim().split('\n').slice(1).map((l) => l.trim());
    expect(lines).toEqual(expect.arrayContaining([
      `${config}: broker: unknown key "hots": did you mean "host"?`,
      `${config}: (top level): unknown key "metrcs": did you mean "metrics"?`,
      `${config}: broker.durability: expected one of "full", "normal", "off" (got "fast")`,
      `${m}: devices[0].points[2].type: expected one of bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string (got "flot")`,
      `${m}: devices[0].points[1]: "b" (holding 1) overlaps "a" (holding 0–1)`,
      `${m}: devices[0].points[3].name: duplicate topic "fieldgate/d1/a" (also used by ${m} devices[0].points[0].name)`,
      `${m}: devices[1].topicPrefix: duplicate topic "fieldgate/d1/availability" (also used by ${m} devices[0].topicPrefix)`,
      `${config}: auth.aclFile: ${acl}:1: unknown access type "sideways" (expected read, write, readwrite or deny)`,
      `${config}: auth.aclFile: ${acl}:3: "#" must be a whole level and the last one (in "a/#/b")`,
      `${config}: auth.aclFile: ${acl}:4: unknown keyword "bogus" (expected "user", "topic" or "pattern"; comments start with "#")`,
    ]));
    expect(lines.filter((l) => l.startsWith(`${config}: auth.passwordFile: ${passwd}:1: `))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith(`${config}: auth.passwordFile: ${passwd}:2: `))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('acl:5'))).toEqual([]);
    expect(result.stderr.split('\n')[0]).toBe(`fieldgate: the configuration has ${lines.length} errors:`);
  });

  it('not valid JSON is reported with line and column, in the config and in a mapping', async () => {
    const config = write('json/fieldgate.json', '{\n  "broker": {\n    "port": 1883\n    "host": "x"\n  }\n}\n');
    const result = await runCli(['check', '--config', config]);
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`${config}: not valid JSON at line 4, column 5: expected "," or "}" after a value (a missing comma?) (got "\\"")`);
    expect(result.stderr).not.toMatch(/position \d+/);
    write('json/m.json', '{ "buses": [],\n  // a comment\n  "devices": [] }');
    const withMapping = write('json/ok.json', { devices: ['m.json'] });
    const mapping = await runCli(['check', '--config', withMapping]);
    expect(mapping.stderr).toContain(`${path.join(dir, 'json/m.json')}: not valid JSON at line 2, column 3: JSON has no comments: use a "_comment" key`);
    const trailing = write('json/trailing.json', '{ "demo": true, }');
    expect((await runCli(['check', '--config', trailing])).stderr).toContain('not valid JSON at line 1, column 17: a comma before "}": JSON allows no trailing comma');
  });

  it('a listen address that does not resolve is an error; a bridge or Modbus TCP host that does not, a warning; a missing serial port, a warning', async () => {
    const listen = write('dns/listen.json', { broker: { host: 'gateway.invalid' } });
    const refused = await runCli(['check', '--config', listen]);
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain(`${listen}: broker.host: "gateway.invalid" does not resolve: no such host (ENOTFOUND)`);
    write('dns/m.json', {
      buses: [{ id: 'rs485', type: 'modbus-rtu', path: path.join(dir, 'dns/no-such-tty'), baudRate: 9600 }, { id: 'plc', type: 'modbus-tcp', host: 'plc.invalid', port: 502 }],
      devices: [
        { id: 'm', bus: 'rs485', unitId: 1, points: [{ name: 'v', table: 'holding', address: 0, type: 'int16' }] },
        { id: 'p', bus: 'plc', unitId: 1, points: [{ name: 'w', table: 'holding', address: 0, type: 'int16' }] },
      ],
    });
    const rule = [{ direction: 'out', filter: '#' }];
    const peers = write('dns/peers.json', {
      broker: { host: 'localhost' },
      devices: ['m.json'],
      bridges: [{ name: 'cloud', url: 'mqtt://cloud.invalid:1883', clientId: 'a', rules: rule }, { name: 'near', url: 'mqtt://localhost:1883', clientId: 'b', rules: rule }],
    });
    const warned = await runCli(['check', '--config', peers]);
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stdout).toContain(`${peers}: OK (3 warnings, on stderr)`);
    expect(warned.stderr.trim().split('\n').sort()).toEqual([
      `fieldgate: warning: ${peers}: bridges[0].url: "cloud.invalid" does not resolve now: no such host (ENOTFOUND); the bridge "cloud" keeps retrying`,
      `fieldgate: warning: bus "plc": "plc.invalid" does not resolve now: no such host (ENOTFOUND); the bus keeps retrying`,
      `fieldgate: warning: bus "rs485": ${path.join(dir, 'dns/no-such-tty')} does not exist now; the gateway will start and keep trying to open it (is the adapter plugged in? ls /dev/serial/by-id/)`,
    ].sort());
    // Once the port exists the warning is gone.
    write('dns/no-such-tty', '');
    const later = await runCli(['check', '--config', peers]);
    expect(later.stderr).not.toContain('no-such-tty');
  });
});

describe('check describes what run does', () => {
  it('a listener that refuses everyone says so, and the broker does refuse everyone there', async () => {
    write('access/ca.pem', 'unused');
    const config = write('access/fieldgate.json', { broker: { host: '0.0.0.0', port: 0, dataDir: 'data' } });
    const result = await runCli(['check', '--config', config]);
    expect(result.stdout).toContain('listener mqtt://0.0.0.0:0 (refuses every client: not on loopback and no auth.passwordFile (add one, or "allowAnonymous": true))');
    const gateway = await startGateway(parseGatewayConfig({ broker: { host: '0.0.0.0', port: 0, dataDir: path.join(dir, 'access/data') } }, 'test', dir), silentLogger);
    try {
      const port = gateway.listeners[0].port;
      for (const credentials of [{}, { username: 'alice', password: 'anything' }]) {
        await expect(mqtt.connectAsync({ host: '127.0.0.1', port, reconnectPeriod: 0, ...credentials })).rejects.toThrow(/Not authorized/i);
      }
    } finally {
      await gateway.stop();
    }
  });

  it('certificate-identity listeners are described by what they take', async () => {
    const { execFileSync } = await import('node:child_process');
    const tls = path.join(dir, 'access-tls');
    fs.mkdirSync(tls, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem'), '-subj', '/CN=localhost', '-days', '1'], { stdio: 'ignore' });
    const files = { cert: 'cert.pem', key: 'key.pem', ca: 'cert.pem' };
    const config = (name: string, extra: object) => {
      const file = path.join(tls, name);
      fs.writeFileSync(file, JSON.stringify({
        listeners: [
          { type: 'mqtts', host: '0.0.0.0', port: 18883, tls: { ...files, useIdentityAsUsername: true } },
          { type: 'mqtts', host: '0.0.0.0', port: 18884, tls: { ...files, useIdentityAsUsername: true, requireClientCertificate: true } },
        ],
        ...extra,
      }));
      return file;
    };
    const without = await runCli(['check', '--config', config('no-passwd.json', {})]);
    expect(without.stdout).toContain('listener mqtts://0.0.0.0:18883 (a client certificate required (its CN is the user name): no auth.passwordFile, so clients without one are refused)');
    expect(without.stdout).toContain('listener mqtts://0.0.0.0:18884 (client certificate required; its CN is the user name)');
    expect((await runCli(['passwd', '-b', path.join(tls, 'passwd'), 'alice', 'alice-password'])).code).toBe(0);
    const withPasswd = await runCli(['check', '--config', config('passwd.json', { auth: { passwordFile: 'passwd' } })]);
    expect(withPasswd.stdout).toContain('listener mqtts://0.0.0.0:18883 (a client certificate (its CN is the user name) or a user name and password)');
  });

  it('the entity count is what run announces (the gateway\'s own sensor included)', async () => {
    const cwd = tempDir('fieldgate-cli-entities-');
    try {
      const checked = await runCli(['check'], { cwd });
      const announced = Number(/discovery under homeassistant\/ \(gateway id \S+\): (\d+) entities/.exec(checked.stdout)?.[1]);
      expect(announced).toBeGreaterThan(1);
      const { GatewayProcess } = await import('../gateway/helpers.js');
      const gateway = new GatewayProcess(['--port', String(await freePort()), '--data', path.join(cwd, 'data')], cwd);
      try {
        const line = await gateway.waitForLog((l) => /^Home Assistant discovery: \d+ entities announced/.test(l.msg), 'the discovery announcement');
        expect(Number(/(\d+) entities/.exec(line.msg)![1])).toBe(announced);
      } finally {
        await gateway.stop();
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('--points shows line-device field topics, bit numbers, scale and decimals, in aligned columns', async () => {
    write('points/m.json', {
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 502 },
        { id: 'gps', type: 'serial-line', path: path.join(dir, 'points/tty'), baudRate: 9600 },
      ],
      devices: [
        { id: 'plc', bus: 'lan', unitId: 1, points: [
          { name: 'temperature', table: 'holding', address: 0, type: 'int16', scale: 0.1, unit: '°C' },
          { name: 'pump_running', table: 'holding', address: 1, type: 'bit', bit: 3 },
          { name: 'flow', table: 'input', address: 10, type: 'float32', byteOrder: 'CDAB', decimals: 2, unit: 'l/min' },
          { name: 'setpoint', table: 'holding', address: 2, type: 'uint16', writable: true, scale: 0.5, offset: -10 },
        ] },
        { id: 'sensor', protocol: 'line', bus: 'gps', parser: { type: 'key-value' }, fields: { t: { topic: 'climate/temperature', scale: 0.01, decimals: 1, unit: '°C' }, h: {} } },
      ],
    });
    fs.writeFileSync(path.join(dir, 'points/tty'), '');
    const config = write('points/fieldgate.json', { devices: ['m.json'] });
    const result = await runCli(['check', '--config', config, '--points']);
    expect(result.code, result.stderr).toBe(0);
    const out = result.stdout.split('\n');
    const rows = (name: string) => out.slice(out.indexOf(name) + 1).filter((l) => l.startsWith('    ')).slice(0, 4);
    const plc = rows('  points of plc (0-based wire addresses):');
    expect(plc[0]).toMatch(/^ {4}temperature +int16 +holding 0 +×0\.1 °C +every 1000 ms +→ fieldgate\/plc\/temperature$/);
    expect(plc[1]).toMatch(/^ {4}pump_running +bit +holding 1 bit 3 +every 1000 ms +→ fieldgate\/plc\/pump_running$/);
    expect(plc[2]).toMatch(/^ {4}flow +float32 CDAB +input 10 +2 decimals l\/min +every 1000 ms +→ fieldgate\/plc\/flow$/);
    expect(plc[3]).toMatch(/^ {4}setpoint +uint16 +holding 2 +×0\.5 -10 +every 1000 ms +→ fieldgate\/plc\/setpoint \(write: fieldgate\/plc\/setpoint\/set\)$/);
    // Every column starts at the same place on every row.
    for (const marker of ['→', 'every']) expect(new Set(plc.map((l) => l.indexOf(marker))).size).toBe(1);
    expect(new Set(plc.map((l) => l.search(/ (holding|input) /))).size).toBe(1);
    const fields = out.slice(out.indexOf('  fields of sensor:') + 1, out.indexOf('  fields of sensor:') + 3);
    expect(fields[0]).toMatch(/^ {4}t +number +×0\.01 1 decimals °C +→ fieldgate\/sensor\/climate\/temperature$/);
    expect(fields[1]).toMatch(/^ {4}h +number +→ fieldgate\/sensor\/h$/);
    expect(fields[0]!.indexOf('→')).toBe(fields[1]!.indexOf('→'));
  });
});

describe('schema', () => {
  it('writes the gateway and device-mapping JSON Schemas', async () => {
    const out = path.join(dir, 'schemas');
    const result = await runCli(['schema', '--out', out]);
    expect(result.code).toBe(0);
    const gateway = JSON.parse(fs.readFileSync(path.join(out, 'gateway.schema.json'), 'utf8'));
    const devices = JSON.parse(fs.readFileSync(path.join(out, 'device-mapping.schema.json'), 'utf8'));
    expect(gateway.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(gateway.properties)).toEqual(expect.arrayContaining(['broker', 'listeners', 'auth', 'devices', 'bridges', 'metrics']));
    expect(gateway.properties.broker.properties.durability.enum).toEqual(['full', 'normal', 'off']);
    expect(Object.keys(devices.properties)).toEqual(expect.arrayContaining(['buses', 'devices', 'include']));
  });

  it('the committed schemas/ and examples/schemas/ are what `fieldgate schema` writes today', async () => {
    const out = path.join(dir, 'schemas-now');
    expect((await runCli(['schema', '--out', out])).code).toBe(0);
    for (const name of ['gateway.schema.json', 'device-mapping.schema.json']) {
      expect(fs.readFileSync(path.join(ROOT, 'schemas', name), 'utf8'), `schemas/${name} is stale: run fieldgate schema`).toBe(fs.readFileSync(path.join(out, name), 'utf8'));
    }
    // examples/schemas/ is the copy the examples name (the Pi install writes the same to /etc/fieldgate/schemas).
    for (const name of ['gateway.schema.json', 'device-mapping.schema.json']) {
      expect(fs.readFileSync(path.join(ROOT, 'examples/schemas', name), 'utf8'), `examples/schemas/${name} is stale: run fieldgate schema --out examples/schemas`).toBe(fs.readFileSync(path.join(out, name), 'utf8'));
    }
  });

  it.skipIf(!requireJsonschema())('every example\'s "$schema" resolves in a fresh checkout as an editor resolves it, and the example is valid against it', () => {
    // Relative paths: the Pi examples are copied to /etc/fieldgate next to the schemas `fieldgate schema`
    // writes there (test/systemd/install.test.ts); the Docker ones to config/ in the checkout, next to schemas/.
    const configs = ['examples/pi-rs485-sdm120.json', 'examples/cloud-bridge.json', 'docker/fieldgate.json', 'examples/devices/sdm120-rs485.json', 'docker/devices/meter.json'];
    for (const file of configs) expect((JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as { $schema?: string }).$schema, file).toMatch(/^\.\.?\//);
    const results = editorSchemaCheck(configs.map((file) => path.join(ROOT, file)));
    expect(results.map((r) => [path.relative(ROOT, r.file), r.errors])).toEqual(configs.map((file) => [file, []]));
    for (const r of results) expect(path.basename(r.schema!)).toBe(r.file.includes('/devices/') ? 'device-mapping.schema.json' : 'gateway.schema.json');
    // The Docker README copies docker/ files to config/ and config/devices/ of the checkout: the same relative paths reach schemas/.
    const checkout = path.join(dir, 'docker-checkout');
    fs.cpSync(path.join(ROOT, 'schemas'), path.join(checkout, 'schemas'), { recursive: true });
    fs.mkdirSync(path.join(checkout, 'config/devices'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'docker/fieldgate.json'), path.join(checkout, 'config/fieldgate.json'));
    fs.copyFileSync(path.join(ROOT, 'docker/devices/meter.json'), path.join(checkout, 'config/devices/meter.json'));
    expect(editorSchemaCheck([path.join(checkout, 'config/fieldgate.json'), path.join(checkout, 'config/devices/meter.json')]).map((r) => r.errors)).toEqual([[], []]);
  });
});

describe('shipped example configs pass check', () => {
  let copy: string;
  beforeAll(() => {
    copy = path.join(dir, 'shipped');
    fs.cpSync(path.join(ROOT, 'examples'), path.join(copy, 'examples'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'docker'), path.join(copy, 'docker'), { recursive: true });
  });

  it('examples/cloud-bridge.json', async () => {
    const result = await runCli(['check', '--config', path.join(copy, 'examples/cloud-bridge.json')]);
    // cloud.example.com resolves only where there is DNS: without, a warning (the bridge keeps retrying), still exit 0.
    for (const line of result.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^fieldgate: warning: .*bridges\[0\]\.url: "cloud\.example\.com" does not resolve now: .*; the bridge "cloud" keeps retrying$/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('bridge cloud → mqtts://cloud.example.com:8883');
  });

  it('examples/pi-rs485-sdm120.json once its password file exists (as its comment says)', async () => {
    const config = path.join(copy, 'examples/pi-rs485-sdm120.json');
    const before = await runCli(['check', '--config', config]);
    expect(before.code).toBe(78);
    expect(before.stderr).toContain('auth.passwordFile');
    expect((await runCli(['passwd', '-b', path.join(copy, 'examples/passwd'), 'alice', 'pw'])).code).toBe(0);
    const result = await runCli(['check', '--config', config]);
    // The adapter is not plugged in here: a warning, not an error (run starts and waits for it).
    expect(result.stderr).toBe('fieldgate: warning: bus "rs485": /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0 does not exist now; the gateway will start and keep trying to open it (is the adapter plugged in? ls /dev/serial/by-id/)\n');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/: OK \(1 warning, on stderr\)$/m);
    expect(result.stdout).toMatch(/bus rs485 \(modbus-rtu\) \/dev\/serial\/by-id\//);
    expect(result.stdout).toMatch(/meter unit 1: \d+ points → fieldgate\/garage\/meter\/…/);
    expect(result.stdout).toContain('listener mqtt://0.0.0.0:1883 (user name and password required)');
  });

  it('docker/fieldgate.json with the serial meter of README "Docker" (docker/devices/meter.json)', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(copy, 'docker/fieldgate.json'), 'utf8'));
    config.devices = ['devices/meter.json'];
    config.demo = false;
    fs.writeFileSync(path.join(copy, 'docker/fieldgate-serial.json'), JSON.stringify(config));
    expect((await runCli(['passwd', '-b', path.join(copy, 'docker/passwd'), 'alice', 'alice-password'])).code).toBe(0);
    const result = await runCli(['check', '--config', path.join(copy, 'docker/fieldgate-serial.json')]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/bus rs485 \(modbus-rtu\) \/dev\/ttyUSB0/);
    expect(result.stdout).toMatch(/meter unit 1: \d+ points → fieldgate\/meter\/…/);
  });

  it('docker/fieldgate.json with a password file next to it', async () => {
    expect((await runCli(['passwd', '-b', path.join(copy, 'docker/passwd'), 'alice', 'pw'])).code).toBe(0);
    const result = await runCli(['check', '--config', path.join(copy, 'docker/fieldgate.json')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('data in /data');
    expect(result.stdout).toContain('metrics on http://0.0.0.0:9883/metrics');
  });
});

describe('passwd', () => {
  let passwdFile: string;
  beforeAll(async () => {
    passwdFile = path.join(dir, 'passwd-test');
    expect((await runCli(['passwd', '-b', passwdFile, 'alice', 'first'])).code).toBe(0);
    expect((await runCli(['passwd', passwdFile, 'bob'], { input: 'b0b-pass\n' })).code).toBe(0);
    const update = await runCli(['passwd', '-b', passwdFile, 'alice', 's3cret']);
    expect(update.code).toBe(0);
  });

  it('writes $7$ lines, one per user, updating in place', () => {
    const lines = fs.readFileSync(passwdFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^alice:\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(lines[1]).toMatch(/^bob:\$7\$/);
  });

  it.skipIf(!requireTool('script'))('asks twice without echo on a terminal (run under script(1) for a real pty)', async () => {
    const file = path.join(dir, 'passwd-tty');
    const { spawn } = await import('node:child_process');
    const child = spawn('script', ['-qc', `${process.execPath} ${path.join(ROOT, 'bin/fieldgate.js')} passwd ${file} carol`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(() => screen.includes('Password: '), 'the first prompt', 10_000);
    child.stdin.write('tty-secret\r');
    await waitFor(() => screen.includes('Reenter password: '), 'the second prompt', 10_000);
    child.stdin.write('tty-secret\r');
    expect(await exited).toBe(0);
    child.stdin.end();
    expect(screen).not.toContain('tty-secret');
    expect(screen).toContain(`added user "carol" in ${file}`);
    expect(checkCredentials(readPasswordFile(file), 'carol', 'tty-secret')).toBe(true);
  });

  it('names a missing directory instead of a temp file', async () => {
    const result = await runCli(['passwd', '-b', path.join(dir, 'no/such/dir/passwd'), 'erin', 'pw']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`fieldgate passwd: the directory ${path.join(dir, 'no/such/dir')} does not exist; nothing was changed\n`);
  });

  it('refuses a password on the command line without -b', async () => {
    const result = await runCli(['passwd', path.join(dir, 'passwd-x'), 'dave', 'visible']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('needs -b');
    expect(fs.existsSync(path.join(dir, 'passwd-x'))).toBe(false);
  });

  it.skipIf(!requireTool('mosquitto') || !requireTool('mosquitto_pub'))('Mosquitto itself accepts the file', async () => {
    fs.mkdirSync(path.join(dir, 'mosquitto'));
    const mosquitto = await startMosquitto(path.join(dir, 'mosquitto'), { passwordFile: passwdFile });
    try {
      expect(await mosquittoPub(mosquitto.port, 'alice', 's3cret')).toMatchObject({ code: 0 });
      expect(await mosquittoPub(mosquitto.port, 'bob', 'b0b-pass')).toMatchObject({ code: 0 });
      const refused = await mosquittoPub(mosquitto.port, 'alice', 'first');
      expect(refused.code).not.toBe(0);
      expect(refused.output).toMatch(/not authori[sz]ed|bad user name or password/i);
    } finally {
      await mosquitto.stop();
    }
  });

  it('-c replaces the file (as mosquitto_passwd -c) and -D deletes a user; Mosquitto agrees with the result', async () => {
    const file = path.join(dir, 'passwd-cD');
    expect((await runCli(['passwd', '-b', file, 'old', 'old-password'])).code).toBe(0);
    expect((await runCli(['passwd', '-b', file, 'keep', 'keep-password'])).code).toBe(0);
    const created = await runCli(['passwd', '-c', '-b', file, 'fresh', 'fresh-password']);
    expect(created.code).toBe(0);
    expect(created.stderr).toContain(`added user "fresh" in ${file} (a new file: the users it had are gone)`);
    expect([...readPasswordFile(file).keys()]).toEqual(['fresh']);
    expect((await runCli(['passwd', '-b', file, 'second', 'second-password'])).code).toBe(0);
    // -c without -b asks (here: reads the pipe) like the plain form.
    const piped = path.join(dir, 'passwd-c-piped');
    expect((await runCli(['passwd', '-c', piped, 'pipe'], { input: 'pipe-password\n' })).code).toBe(0);
    expect(checkCredentials(readPasswordFile(piped), 'pipe', 'pipe-password')).toBe(true);

    const deleted = await runCli(['passwd', '-D', file, 'fresh']);
    expect(deleted).toMatchObject({ code: 0, stderr: `deleted user "fresh" from ${file}\n` });
    expect([...readPasswordFile(file).keys()]).toEqual(['second']);
    // Deleting a user that is not there fails and changes nothing (mosquitto_passwd: "User … not found", exit 1).
    const before = fs.readFileSync(file, 'utf8');
    const absent = await runCli(['passwd', '-D', file, 'nobody']);
    expect(absent).toMatchObject({ code: 1, stderr: `fieldgate passwd: user "nobody" is not in ${file}; nothing was changed\n` });
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect((await runCli(['passwd', '-D', '-b', file, 'second'])).code).toBe(2);
    expect((await runCli(['passwd', '-D', '-c', file, 'second'])).code).toBe(2);

    if (requireTool('mosquitto_passwd')) {
      // mosquitto_passwd -D on our file, and our -D on its file.
      const { execFileSync } = await import('node:child_process');
      execFileSync('mosquitto_passwd', ['-b', file, 'theirs', 'their-password']);
      execFileSync('mosquitto_passwd', ['-D', file, 'second']);
      expect([...readPasswordFile(file).keys()]).toEqual(['theirs']);
      expect((await runCli(['passwd', '-D', file, 'theirs'])).code).toBe(0);
      expect(readPasswordFile(file).size).toBe(0);
      expect((await runCli(['passwd', '-b', file, 'back', 'back-password'])).code).toBe(0);
      execFileSync('mosquitto_passwd', ['-U', file]); // mosquitto_passwd still reads it
      expect([...readPasswordFile(file).keys()]).toEqual(['back']);
    }
  });

  it('warns about a very short password but writes it; errors are in its own words', async () => {
    const file = path.join(dir, 'passwd-short');
    const short = await runCli(['passwd', '-b', file, 'tiny', 'abc']);
    expect(short.code).toBe(0);
    expect(short.stderr).toMatch(/^warning: the password has only 3 characters: .*8 or more recommended\)$/m);
    expect(checkCredentials(readPasswordFile(file), 'tiny', 'abc')).toBe(true);
    const long = await runCli(['passwd', '-b', file, 'big', 'a-long-enough-one']);
    expect(long.stderr).not.toMatch(/warning/);
    const piped = await runCli(['passwd', file, 'pipe'], { input: 'short\n' });
    expect(piped.stderr).toMatch(/warning: the password has only 5 characters/);

    const unknown = await runCli(['passwd', '-x', file, 'u']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('fieldgate: unknown option "-x"\n(see fieldgate --help)\n');
    const missingValue = await runCli(['check', '--config']);
    expect(missingValue.stderr).toBe('fieldgate: -c, --config needs a value\n(see fieldgate --help)\n');
    const positional = await runCli(['check', 'extra']);
    expect(positional.stderr).toBe('fieldgate: unexpected argument "extra"\n(see fieldgate --help)\n');
    const noFile = await runCli(['passwd', '-D', path.join(dir, 'passwd-none'), 'u']);
    expect(noFile.stderr).toBe(`fieldgate passwd: cannot read ${path.join(dir, 'passwd-none')} (ENOENT); nothing was changed\n`);
    for (const r of [unknown, missingValue, positional, noFile]) expect(r.stderr).not.toMatch(/positional argument|<value>|ENOENT: no such|at .*\.js/);
  });

  it('the gateway authenticates against it', async () => {
    const config = parseGatewayConfig({ broker: { port: 0, dataDir: path.join(dir, 'passwd-gw') }, auth: { passwordFile: passwdFile } }, 'test', dir);
    const gateway: Gateway = await startGateway(config, silentLogger);
    try {
      const port = gateway.listeners[0].port;
      const good = await mqtt.connectAsync({ host: '127.0.0.1', port, username: 'alice', password: 's3cret', reconnectPeriod: 0 });
      await good.endAsync();
      await expect(mqtt.connectAsync({ host: '127.0.0.1', port, username: 'alice', password: 'first', reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password|Not authorized/i);
    } finally {
      await gateway.stop();
    }
  });
});

describe('probe', () => {
  let meter: SimulatedMeter;
  beforeAll(async () => {
    meter = await startSimulatedMeter({ port: 0, seed: 5, dayLengthMs: 24 * 3600 * 1000 });
  });
  afterAll(async () => meter?.stop());

  it('reads the simulated SDM120 over Modbus TCP and shows its float32 ABCD values', async () => {
    const result = await runCli(['probe', '--host', '127.0.0.1', '--port', String(meter.port), '--table', 'input', '--address', '0', '--count', '2']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const voltage = meter.readings().voltage;
    const line = result.stdout.split('\n').find((l) => /^0\s+float32\s+ABCD\s/.test(l));
    expect(line, result.stdout).toBeDefined();
    const shown = Number(line!.trim().split(/\s+/)[3]);
    expect(shown).toBeGreaterThan(200);
    expect(Math.abs(shown - voltage)).toBeLessThan(5);
    // The other orders of the same bytes are not a plausible voltage: that is how probe finds the order.
    const dcba = Number(result.stdout.split('\n').find((l) => /^0\s+float32\s+DCBA\s/.test(l))!.trim().split(/\s+/)[3]);
    expect(Math.abs(dcba - voltage)).toBeGreaterThan(5);
    // The hex header shows the two raw registers.
    expect(result.stdout.split('\n')[0]).toMatch(/^address\s+hex\s+[0-9a-f]{4} [0-9a-f]{4}$/);
  });

  it.skipIf(!requirePymodbus() || !requireSocat())('reads a pymodbus RTU slave on a serial port (socat pty) and shows float32 in every word order', async () => {
    const pty = await startPtyPair();
    // 230.5 as float32 high word first (ABCD): 0x4366 0x8000.
    const slave = await startSlave({ transport: 'rtu', device: pty.slave, units: { 1: { hr: { size: 10, values: { 0: 0x4366, 1: 0x8000 } } } } });
    try {
      const result = await runCli(['probe', '--serial', pty.gateway, '--baud', '9600', '--unit', '1', '--table', 'holding', '--address', '0', '--count', '2']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const value = (order: string) => result.stdout.split('\n').find((l) => new RegExp(`^0\\s+float32\\s+${order}\\s`).test(l))?.trim().split(/\s+/)[3];
      expect(result.stdout.split('\n')[0]).toMatch(/4366 8000$/);
      expect(value('ABCD')).toBe('230.5');
      expect(value('CDAB')).not.toBe('230.5');
    } finally {
      await slave.stop();
      await pty.stop();
    }
  });

  it.skipIf(!requirePymodbus())('--expect shows only the decodings near the display value (scaled ones noted), floats rounded', async () => {
    // 2305 = 230.5 V with scale 0.1; 230.1 as float32 ABCD (0x4366 0x1999: 230.10000610… in binary).
    const slave = await startSlave({ transport: 'tcp', units: { 1: { hr: { size: 10, values: { 0: 2305, 1: 0x4366, 2: 0x1999 } } } } });
    try {
      const all = await runCli(['probe', '--host', '127.0.0.1', '--port', String(slave.port), '--address', '0', '--count', '3']);
      expect(all.code, all.stderr).toBe(0);
      expect(all.stdout).toMatch(/^1\s+float32\s+ABCD\s+230\.1$/m);
      expect(all.stdout).not.toMatch(/230\.1000/);
      const near = await runCli(['probe', '--host', '127.0.0.1', '--port', String(slave.port), '--address', '0', '--count', '3', '--expect', '230.5']);
      expect(near.code, near.stderr).toBe(0);
      const rows = near.stdout.trim().split('\n').slice(1);
      expect(rows).toContain('0        uint16   ABCD  2305  (× 0.1 = 230.5: "scale": 0.1)');
      expect(rows).toContain('1        float32  ABCD  230.1');
      for (const row of rows) {
        const m = /^(\d+)\s+(\S+)\s+(\S+)\s+(\S+)(\s+\(× (\S+))?/.exec(row)!;
        expect(Math.abs(Number(m[4]) * Number(m[6] ?? 1) - 230.5), row).toBeLessThanOrEqual(23.05);
      }
      expect(rows.length).toBeLessThan(all.stdout.trim().split('\n').length - 1);
      const none = await runCli(['probe', '--host', '127.0.0.1', '--port', String(slave.port), '--address', '0', '--count', '3', '--expect=-7777']);
      expect(none.stdout).toContain('no decoding is within 10% of -7777');
      expect((await runCli(['probe', '--host', '127.0.0.1', '--address', '0', '--expect', 'abc'])).code).toBe(2);
    } finally {
      await slave.stop();
    }
  });

  it('a peer that resets the connection gets a message that says what to check', async () => {
    const net = await import('node:net');
    const server = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const result = await runCli(['probe', '--host', '127.0.0.1', '--port', String(port), '--address', '0', '--timeout', '2000']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`fieldgate probe: 127.0.0.1:${port} closed the connection (ECONNRESET) instead of answering: is it a Modbus TCP port? Some gateways take one client at a time: stop other masters (a running fieldgate polling this device) and try again\n`);
    } finally {
      server.close();
    }
  });

  it('a dead port is a clear error with exit 1; missing --address a usage error', async () => {
    const port = await freePort();
    const dead = await runCli(['probe', '--host', '127.0.0.1', '--port', String(port), '--address', '0', '--timeout', '500']);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/^fieldgate probe: .+/);
    const usage = await runCli(['probe', '--host', '127.0.0.1']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--address is required');
  });
});
