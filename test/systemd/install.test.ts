// The Pi install as the README writes it: `npm pack`, a global install into /usr/local, the examples
// copied to /etc/fieldgate, a password file, `fieldgate check`, the unit's ExecStart. No registry here:
// the tarball is unpacked where `npm install -g --prefix` puts it, with the shared node_modules next
// to it, and the README's commands run against a temporary prefix and /etc.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editorSchemaCheck, requireJsonschema, toolInPath } from '../helpers/peers.js';
import { ensureBuilt, ROOT, tempDir } from '../gateway/helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const unit = fs.readFileSync(path.join(ROOT, 'systemd/fieldgate.service'), 'utf8');

/** The shell blocks of one README section. */
function shellBlocks(heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, `README section "${heading}"`).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + heading.length + 2);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The README's commands, one per entry: comments dropped, `a && b` split, `sudo ` removed. */
function commands(block: string): string[] {
  return block.split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('#'))
    .flatMap((line) => line.split(/\s+&&\s+/))
    .map((command) => command.replace(/^sudo\s+/, ''));
}

const execStart = /^ExecStart=(\S+)(.*)$/m.exec(unit)!;

describe('the Pi install (README "Install on a Raspberry Pi (systemd)")', () => {
  let dir: string;
  let tarball: string;
  let files: string[];
  let prefix: string;
  let etc: string;
  let installPrefix: string;
  let packageDir: string;
  const ran: string[] = [];

  beforeAll(() => {
    ensureBuilt();
    dir = tempDir('fieldgate-install-');
    // --ignore-scripts: dist/ is fresh from ensureBuilt (npm pack would otherwise run `prepare`, a second build).
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    const [packed] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(dir, packed!.filename);
    files = packed!.files.map((f) => f.path);
    prefix = path.join(dir, 'usr-local');
    etc = path.join(dir, 'etc');
  }, 180_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('npm pack makes a tarball with the program, profiles, schemas, examples and the unit, without tests or sources', () => {
    expect(path.basename(tarball)).toBe(`${pkg.name}-${pkg.version}.tgz`);
    for (const needed of ['bin/fieldgate.js', 'dist/cli.js', 'dist/gateway.js', 'package.json', 'README.md',
      'devices/eastron-sdm120.json', 'schemas/gateway.schema.json', 'schemas/device-mapping.schema.json',
      'examples/pi-rs485-sdm120.json', 'examples/acl', 'examples/devices/sdm120-rs485.json',
      'systemd/fieldgate.service', 'systemd/fieldgate.sysusers']) {
      expect(files, needed).toContain(needed);
    }
    for (const f of files) expect(f).not.toMatch(/^(test|src|bench|node_modules|data)\/|\.db$/);
    // Everything dist/ imports is in the package (a file missing from "files" would break only the install).
    const built = fs.readdirSync(path.join(ROOT, 'dist'), { recursive: true }).map(String).filter((f) => f.endsWith('.js'));
    for (const f of built) expect(files).toContain(`dist/${f}`);
  });

  it('a password file or data made next to the examples in the checkout (README "Configuration") is not packed', () => {
    const copy = path.join(dir, 'checkout');
    fs.mkdirSync(copy);
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
    fs.cpSync(path.join(ROOT, 'examples'), path.join(copy, 'examples'), { recursive: true });
    fs.writeFileSync(path.join(copy, 'examples/passwd'), 'alice:$7$101$x$y\n');
    fs.mkdirSync(path.join(copy, 'examples/data'));
    fs.writeFileSync(path.join(copy, 'examples/data/fieldgate.db'), '');
    const out = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: copy, encoding: 'utf8', timeout: 120_000 });
    const packed = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    expect(packed).toContain('examples/pi-rs485-sdm120.json');
    expect(packed).toContain('examples/schemas/gateway.schema.json');
    expect(packed.filter((f) => /passwd$|^examples\/data\//.test(f))).toEqual([]);
  }, 120_000);

  it('the README\'s commands, run against a temporary /usr/local and /etc, install a working fieldgate', async () => {
    const [block] = shellBlocks('## Install on a Raspberry Pi (systemd)').filter((b) => b.includes('npm pack'));
    expect(block, 'the install block').toBeDefined();
    const env = { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` };
    let cwd = dir;
    const local = (text: string) => text.split('/etc/fieldgate').join(path.join(etc, 'fieldgate')).split(installPrefix ?? '\0').join(prefix);
    for (const command of commands(block!)) {
      const words = command.split(/\s+/);
      const install = /^npm install -g --prefix (\S+) \.\/(\S+\.tgz)$/.exec(command);
      if (command === 'npm ci' || command === 'npm pack') continue; // done above, from this checkout
      if (install) {
        // What npm does with a tarball: unpack into PREFIX/lib/node_modules/NAME, link PREFIX/bin/NAME.
        installPrefix = install[1]!;
        expect(install[2]).toBe(path.basename(tarball));
        packageDir = path.join(prefix, 'lib/node_modules', pkg.name);
        fs.mkdirSync(packageDir, { recursive: true });
        execFileSync('tar', ['-xzf', tarball, '-C', packageDir, '--strip-components=1']);
        fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(packageDir, 'node_modules')); // the dependencies npm would install
        fs.mkdirSync(path.join(prefix, 'bin'), { recursive: true });
        for (const [name, target] of Object.entries(pkg.bin)) fs.symlinkSync(path.join('../lib/node_modules', pkg.name, target), path.join(prefix, 'bin', name));
      } else if (words[0] === 'cd') {
        expect(words[1]).toBe(path.join(installPrefix, 'lib/node_modules', pkg.name));
        cwd = packageDir;
      } else if (words[0] === 'install' && !command.includes('/etc/fieldgate')) {
        // Into /usr/lib/sysusers.d or /etc/systemd/system: the file must be in the package.
        expect(fs.existsSync(path.join(cwd, words.at(-2)!)), command).toBe(true);
      } else if (words[0] === 'install') {
        // No fieldgate group here: ownership is not what this checks.
        execFileSync('bash', ['-c', local(command).replace(/ -o \S+ -g \S+/, '')], { cwd, env });
      } else if (words[0] === 'fieldgate') {
        const input = words[1] === 'passwd' ? 'alice-password\n' : '';
        const result = execFileSync('bash', ['-c', local(command)], { cwd: '/', env, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
        ran.push(`${command}\n${result}`);
      } else if (['systemd-sysusers', 'systemctl', 'journalctl'].includes(words[0]!)) {
        continue; // needs a running systemd
      } else {
        throw new Error(`the README's install block has a command this test does not know: ${command}`);
      }
    }
    expect(installPrefix).toBe('/usr/local');
    // `fieldgate check` ran (execFileSync throws on a non-zero exit) and said OK.
    const check = ran.find((r) => r.startsWith('fieldgate check'));
    expect(check).toMatch(/fieldgate\.json: OK/);
    expect(check).toMatch(/meter unit 1: \d+ points/);
    // The copied examples' "$schema" resolve, as an editor resolves them (relative to the file), to the
    // schemas the installed fieldgate wrote into /etc/fieldgate/schemas, and the files are valid against them.
    expect(ran.some((r) => r.startsWith('fieldgate schema --out /etc/fieldgate/schemas'))).toBe(true);
    if (requireJsonschema()) {
      const results = editorSchemaCheck(['fieldgate/fieldgate.json', 'fieldgate/devices/sdm120-rs485.json'].map((file) => path.join(etc, file)));
      expect(results.map((r) => [r.schema, r.errors])).toEqual([
        [path.join(etc, 'fieldgate/schemas/gateway.schema.json'), []],
        [path.join(etc, 'fieldgate/schemas/device-mapping.schema.json'), []],
      ]);
    }
  }, 120_000);

  it('the unit starts what that install put in place, outside what ProtectHome= hides', () => {
    expect(execStart[1]).toBe(`/usr/local/bin/${Object.keys(pkg.bin)[0]}`);
    expect(execStart[2]).toBe(' run --config /etc/fieldgate/fieldgate.json');
    expect(unit).toMatch(/^ProtectHome=yes$/m);
    for (const hidden of ['/home/', '/root/', '/run/user/']) expect(execStart[1]!.startsWith(hidden)).toBe(false);
    expect(fs.lstatSync(path.join(prefix, 'bin/fieldgate')).isSymbolicLink()).toBe(true);
    // The link resolves to the package's launcher, which finds its dist/ next to it.
    expect(fs.realpathSync(path.join(prefix, 'bin/fieldgate'))).toBe(fs.realpathSync(path.join(packageDir, 'bin/fieldgate.js')));
  });

  it('the unit\'s comment points at README and INSTALL.md sections that exist', () => {
    for (const m of unit.matchAll(/README "([^"]+)"/g)) expect(readme, `README heading "${m[1]}"`).toMatch(new RegExp(`^#+ ${m[1]!.replace(/[()]/g, '\\$&')}$`, 'm'));
    expect(unit).toMatch(/README "/);
    expect(fs.existsSync(path.join(ROOT, 'systemd/INSTALL.md'))).toBe(true);
  });

  it.skipIf(!toolInPath('systemd-analyze'))('systemd-analyze verify accepts the unit with ExecStart at the installed command', async () => {
    const copy = path.join(dir, 'fieldgate.service');
    fs.writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${path.join(prefix, 'bin/fieldgate')}`));
    const { stdout, stderr } = await promisify(execFile)('systemd-analyze', ['verify', '--man=no', copy], { timeout: 60_000 });
    expect(stdout + stderr).toBe('');
  });
});
