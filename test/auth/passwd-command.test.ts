import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPasswdCommand } from '../../src/auth/passwd-command.js';
import { checkCredentials, readPasswordFile } from '../../src/auth/password-file.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'fieldgate-passwd-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function piped(text: string) {
  const input = new PassThrough();
  const output = new PassThrough();
  let said = '';
  output.on('data', (c: Buffer) => { said += c.toString(); });
  input.end(text);
  return { io: { input, output }, said: () => said };
}

describe('fieldgate passwd with piped input', () => {
  it('takes the first line as the password', async () => {
    const file = join(dir, 'piped');
    const run = piped('s3cret pass\nignored\n');
    await expect(runPasswdCommand(file, 'alice', run.io)).resolves.toEqual({ added: true, createdFile: true, replacedFile: false });
    expect(run.said()).toBe(`added user "alice" in ${file} (new file, mode 0600)\n`);
    expect(checkCredentials(readPasswordFile(file), 'alice', 's3cret pass')).toBe(true);
    const again = piped('other-pass\r\n');
    await runPasswdCommand(file, 'alice', again.io);
    expect(again.said()).toBe(`updated user "alice" in ${file}\n`);
    expect(checkCredentials(readPasswordFile(file), 'alice', 'other-pass')).toBe(true);
  });

  it('refuses an empty password and a bad user name without touching the file', async () => {
    const file = join(dir, 'refused');
    await expect(runPasswdCommand(file, 'bob', piped('\n').io)).rejects.toThrow('the password is empty; nothing was changed');
    await expect(runPasswdCommand(file, 'bob', piped('').io)).rejects.toThrow('the password is empty');
    await expect(runPasswdCommand(file, 'b:ob', piped('x\n').io)).rejects.toThrow('must not contain ":"');
    expect(() => statSync(file)).toThrow();
  });
});

// A real terminal: Python's pty module gives the command a pseudo-terminal, types into it and
// records what appears, so echo-off and the two prompts are checked as a user would see them.
const python = '/usr/bin/python3';
const driver = `
import os, pty, select, sys, time
cmd, answers = sys.argv[1:6], sys.argv[6:]  # node, --import=tsx, script, FILE, USER; then the answers
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen = b''
deadline = time.time() + 60
def read_until(token):
    global seen
    while token not in seen:
        if time.time() > deadline: raise SystemExit('timeout waiting for %r in %r' % (token, seen))
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try: chunk = os.read(fd, 1024)
            except OSError: return
            if not chunk: return
            seen += chunk
for prompt, answer in zip([b'Password: ', b'Reenter password: '], answers):
    read_until(prompt)
    os.write(fd, answer.encode() + b'\\r')
while True:
    if time.time() > deadline: raise SystemExit('timeout at exit')
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try: chunk = os.read(fd, 1024)
        except OSError: break
        if not chunk: break
        seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors='replace'))
sys.exit(os.WEXITSTATUS(status))
`;

const havePython = existsSync(python);
if (!havePython && process.env.CI === 'true') throw new Error('/usr/bin/python3 is required under CI=true (apt-get install -y python3)');
if (!havePython) console.warn('skipping terminal tests for fieldgate passwd: /usr/bin/python3 not found');

describe.skipIf(!havePython)('fieldgate passwd on a terminal', () => {
  const cli = resolve('test/auth/fixtures/passwd-cli.ts');
  async function onTty(file: string, user: string, answers: string[]): Promise<{ code: number; output: string }> {
    // argv for the driver: 3 words of command, then the answers; the command is a shell-free node invocation.
    const command = [process.execPath, '--import=tsx', cli];
    try {
      const { stdout } = await promisify(execFile)(python, ['-c', driver.replace('cmd, answers = sys.argv[1:6], sys.argv[6:]  # node, --import=tsx, script, FILE, USER; then the answers', 'cmd, answers = sys.argv[1:6], sys.argv[6:]'), ...command, file, user, ...answers], {
        timeout: 90_000,
        cwd: process.cwd(),
      });
      return { code: 0, output: stdout };
    } catch (err) {
      const e = err as { code: number; stdout: string };
      return { code: e.code, output: e.stdout };
    }
  }

  it('prompts twice without echoing the password', async () => {
    const file = join(dir, 'tty');
    const { code, output } = await onTty(file, 'carol', ['hidden-pw', 'hidden-pw']);
    expect(output).toContain('Password: ');
    expect(output).toContain('Reenter password: ');
    expect(output).not.toContain('hidden-pw');
    expect(output).toContain(`added user "carol" in ${file}`);
    expect(code).toBe(0);
    expect(checkCredentials(readPasswordFile(file), 'carol', 'hidden-pw')).toBe(true);
  });

  it('refuses two different answers', async () => {
    const file = join(dir, 'tty-mismatch');
    const { code, output } = await onTty(file, 'dave', ['one', 'two']);
    expect(output).toContain('error: the passwords do not match; nothing was changed');
    expect(code).toBe(2);
    expect(() => statSync(file)).toThrow();
  });
});
