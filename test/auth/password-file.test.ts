import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addOrUpdateUser,
  checkCredentials,
  hashPassword,
  parsePasswordFile,
  parsePasswordHash,
  readPasswordFile,
  verifyPassword,
} from '../../src/auth/password-file.js';
import { requireTool } from '../helpers/peers.js';
import { mosquittoPub, startMosquitto, type RunningMosquitto } from './mosquitto-peer.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'fieldgate-pw-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('password hashes', () => {
  it('writes $7$ lines with 101 iterations, a 12-byte salt and a 64-byte hash', () => {
    const field = hashPassword('secret');
    expect(field).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    const parsed = parsePasswordHash(field);
    expect(parsed.kind).toBe('pbkdf2-sha512');
    expect(parsed.salt.length).toBe(12);
    expect(verifyPassword(parsed, 'secret')).toBe(true);
    expect(verifyPassword(parsed, 'Secret')).toBe(false);
    expect(verifyPassword(parsed, '')).toBe(false);
  });

  it('uses a fresh salt each time', () => {
    expect(hashPassword('same')).not.toBe(hashPassword('same'));
  });

  it('honours the iteration count stored in the line', () => {
    const parsed = parsePasswordHash(hashPassword('pw', { iterations: 7 }));
    expect(parsed.kind === 'pbkdf2-sha512' && parsed.iterations).toBe(7);
    expect(verifyPassword(parsed, 'pw')).toBe(true);
  });

  it('rejects malformed lines with the line number and a reason', () => {
    expect(() => parsePasswordFile('alice:plaintext\n', 'pw')).toThrow(/pw:1: user "alice": password is not hashed/);
    expect(() => parsePasswordFile('# c\n\nbob\n', 'pw')).toThrow(/pw:3: expected "username:\$7\$…"/);
    expect(() => parsePasswordFile('carol:$7$abc$AAAA$AAAA\n', 'pw')).toThrow(/pw:1: .*iterations "abc"/);
    expect(() => parsePasswordFile('dave:$7$101$AAAA$AAAA\n', 'pw')).toThrow(/hash is 3 bytes, expected 64/);
    expect(() => parsePasswordFile('erin:$5$AAAA$AAAA\n', 'pw')).toThrow(/unknown hash type "\$5\$"/);
    expect(() => parsePasswordFile('frank:$7$101$!!!!$AAAA\n', 'pw')).toThrow(/salt is not valid base64/);
    const line = `gus:${hashPassword('x')}`;
    expect(() => parsePasswordFile(`${line}\n${line}\n`, 'pw')).toThrow(/pw:2: user "gus" is already defined on line 1/);
  });

  it('names a missing file and how to create it', () => {
    expect(() => readPasswordFile(join(dir, 'nope'))).toThrow(/nope: cannot read \(ENOENT\): the file does not exist; create it with: fieldgate passwd -c .*nope USER/);
  });
});

describe('addOrUpdateUser', () => {
  it('creates the file with mode 0600, adds, then replaces a user while keeping other lines', () => {
    const file = join(dir, 'users');
    expect(addOrUpdateUser(file, 'alice', 'one')).toEqual({ added: true, createdFile: true, replacedFile: false });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, readFileSync(file, 'utf8') + '# the meter team\n');
    expect(addOrUpdateUser(file, 'bob', 'two')).toEqual({ added: true, createdFile: false, replacedFile: false });
    expect(addOrUpdateUser(file, 'alice', 'three')).toEqual({ added: false, createdFile: false, replacedFile: false });
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n')[1]).toBe('# the meter team');
    const users = readPasswordFile(file);
    expect([...users.keys()]).toEqual(['alice', 'bob']);
    expect(checkCredentials(users, 'alice', 'three')).toBe(true);
    expect(checkCredentials(users, 'alice', 'one')).toBe(false);
    expect(checkCredentials(users, 'bob', 'two')).toBe(true);
    expect(checkCredentials(users, 'nobody', 'two')).toBe(false);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps an existing file readable by the service group, but never wider than 0640', () => {
    const file = join(dir, 'shared');
    addOrUpdateUser(file, 'alice', 'one');
    chmodSync(file, 0o640);
    addOrUpdateUser(file, 'bob', 'two');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    chmodSync(file, 0o666);
    addOrUpdateUser(file, 'bob', 'three');
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });

  it.skipIf(process.getuid?.() !== 0)('keeps the owner when root edits a file of the service user', () => {
    const file = join(dir, 'owned');
    addOrUpdateUser(file, 'alice', 'one');
    chownSync(file, 4321, 20);
    addOrUpdateUser(file, 'alice', 'two');
    expect(statSync(file)).toMatchObject({ uid: 4321, gid: 20 });
  });

  it('refuses bad usernames and leaves a corrupt file untouched', () => {
    const file = join(dir, 'corrupt');
    writeFileSync(file, 'alice:notahash\n');
    expect(() => addOrUpdateUser(file, 'bob', 'pw')).toThrow(/corrupt:1: user "alice"/);
    expect(readFileSync(file, 'utf8')).toBe('alice:notahash\n');
    expect(() => addOrUpdateUser(join(dir, 'x'), 'a:b', 'pw')).toThrow(/must not contain ":"/);
    expect(() => addOrUpdateUser(join(dir, 'x'), 'a\tb', 'pw')).toThrow(/control characters/);
    expect(() => addOrUpdateUser(join(dir, 'x'), 'ok', '')).toThrow(/password is empty/);
  });
});

describe.skipIf(!requireTool('mosquitto_passwd'))('files made by mosquitto_passwd', () => {
  it('accepts $7$ (default) and $6$ (-H sha512) lines and refuses wrong passwords', () => {
    const file = join(dir, 'from-mosquitto');
    execFileSync('mosquitto_passwd', ['-b', '-c', file, 'alice', 'correct horse']);
    execFileSync('mosquitto_passwd', ['-b', file, 'bob', 'pä:ss wörd']);
    execFileSync('mosquitto_passwd', ['-b', '-I', '1000', file, 'carol', 'c']);
    execFileSync('mosquitto_passwd', ['-H', 'sha512', '-b', file, 'dave', 'old-style']);
    const users = readPasswordFile(file);
    expect(users.get('alice')!.hash.kind).toBe('pbkdf2-sha512');
    expect(users.get('dave')!.hash.kind).toBe('sha512');
    expect(checkCredentials(users, 'alice', 'correct horse')).toBe(true);
    expect(checkCredentials(users, 'alice', 'correct horse ')).toBe(false);
    expect(checkCredentials(users, 'bob', Buffer.from('pä:ss wörd'))).toBe(true);
    expect(checkCredentials(users, 'bob', 'pa:ss word')).toBe(false);
    expect(checkCredentials(users, 'carol', 'c')).toBe(true);
    expect(checkCredentials(users, 'dave', 'old-style')).toBe(true);
    expect(checkCredentials(users, 'dave', 'new-style')).toBe(false);
  });

  it('updates a mosquitto_passwd file, and mosquitto_passwd can edit ours', () => {
    const file = join(dir, 'mixed');
    execFileSync('mosquitto_passwd', ['-b', '-c', file, 'alice', 'a1']);
    addOrUpdateUser(file, 'bob', 'b1');
    execFileSync('mosquitto_passwd', ['-b', file, 'carol', 'c1']);
    addOrUpdateUser(file, 'alice', 'a2');
    const users = readPasswordFile(file);
    expect(checkCredentials(users, 'alice', 'a2')).toBe(true);
    expect(checkCredentials(users, 'bob', 'b1')).toBe(true);
    expect(checkCredentials(users, 'carol', 'c1')).toBe(true);
  });
});

describe.skipIf(!requireTool('mosquitto') || !requireTool('mosquitto_pub'))('files we write, used by mosquitto itself', () => {
  let mosquitto: RunningMosquitto | undefined;
  afterEach(async () => { await mosquitto?.stop(); mosquitto = undefined; });

  it('lets the right password in and keeps the wrong one out', async () => {
    const file = join(dir, 'for-mosquitto');
    addOrUpdateUser(file, 'alice', 'fieldgate-made');
    addOrUpdateUser(file, 'bob', 'other', { iterations: 2000 });
    mosquitto = await startMosquitto(dir, { passwordFile: file });
    const good = await mosquittoPub(mosquitto.port, 'alice', 'fieldgate-made');
    expect(good.output).toBe('');
    expect(good.code).toBe(0);
    expect((await mosquittoPub(mosquitto.port, 'bob', 'other')).code).toBe(0);
    const bad = await mosquittoPub(mosquitto.port, 'alice', 'wrong');
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/not authori[sz]ed|bad user name or password/i);
  });
});
