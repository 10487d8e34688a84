import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuth } from '../../src/auth/create-auth.js';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import type { ClientIdentity } from '../../src/broker/types.js';
import { requireTool } from '../helpers/peers.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'fieldgate-auth-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

const login = (username: string | undefined, password?: string, certificateUser?: string) => ({
  clientId: 'c1',
  username,
  password: password === undefined ? undefined : Buffer.from(password),
  address: '192.0.2.7',
  certificateUser,
});
const who = (username?: string, local = false): ClientIdentity => ({ clientId: 'c1', username, address: local ? 'local' : '192.0.2.7', local });

describe('createAuth', () => {
  it('checks passwords and refuses anonymous clients unless allowed', () => {
    const passwordFile = join(dir, 'pw1');
    addOrUpdateUser(passwordFile, 'alice', 'a-secret');
    const strict = createAuth({ passwordFile, allowAnonymous: false });
    expect(strict.authenticate(login('alice', 'a-secret'))).toBe(true);
    expect(strict.authenticate(login('alice', 'wrong'))).toBe(false);
    expect(strict.authenticate(login('alice'))).toBe(false);
    expect(strict.authenticate(login('mallory', 'a-secret'))).toBe(false);
    expect(strict.authenticate(login(undefined))).toBe(false);
    expect(createAuth({ passwordFile, allowAnonymous: true }).authenticate(login(undefined))).toBe(true);
    expect(strict.summary()).toEqual({ users: 1, aclRules: 0 });
  });

  it('without a password file, a username proves nothing', () => {
    expect(createAuth({ allowAnonymous: false }).authenticate(login('alice', 'x'))).toBe(false);
    expect(createAuth({ allowAnonymous: true }).authenticate(login('alice', 'x'))).toBe(true);
  });

  it('accepts a verified client certificate as the identity', () => {
    const auth = createAuth({ allowAnonymous: false });
    expect(auth.authenticate(login(undefined, undefined, 'meter-gw'))).toBe(true);
    expect(auth.authenticate(login('meter-gw', undefined, 'meter-gw'))).toBe(true);
    expect(auth.authenticate(login('admin', undefined, 'meter-gw'))).toBe(false);
  });

  it('authorizes by ACL, lets in-process clients through, and allows everything without an ACL', () => {
    const aclFile = join(dir, 'acl1');
    writeFileSync(aclFile, 'user alice\ntopic read fieldgate/#\n');
    const auth = createAuth({ aclFile, allowAnonymous: true });
    expect(auth.authorize(who('alice'), 'subscribe', 'fieldgate/#')).toBe(true);
    expect(auth.authorize(who('alice'), 'publish', 'fieldgate/x')).toBe(false);
    expect(auth.authorize(who(undefined), 'subscribe', 'fieldgate/#')).toBe(false);
    expect(auth.authorize(who(undefined, true), 'publish', 'fieldgate/x')).toBe(true);
    expect(createAuth({ allowAnonymous: true }).authorize(who('x'), 'publish', 'any/thing')).toBe(true);
  });

  it('fails at start naming every bad file', () => {
    const passwordFile = join(dir, 'bad-pw');
    const aclFile = join(dir, 'bad-acl');
    writeFileSync(passwordFile, 'alice:plain\n');
    writeFileSync(aclFile, 'topic read a\nallow b\n');
    expect(() => createAuth({ passwordFile, aclFile, allowAnonymous: false })).toThrow(/bad-pw:1: .*\n.*bad-acl:2: unknown keyword "allow"/);
    expect(() => createAuth({ passwordFile: join(dir, 'missing'), allowAnonymous: false })).toThrow(/missing: cannot read/);
  });

  it('reload picks up new users and rules, and keeps the old ones when a new file is bad', () => {
    const passwordFile = join(dir, 'pw2');
    const aclFile = join(dir, 'acl2');
    addOrUpdateUser(passwordFile, 'alice', 'one');
    writeFileSync(aclFile, 'user alice\ntopic read a/#\n');
    const auth = createAuth({ passwordFile, aclFile, allowAnonymous: false });

    addOrUpdateUser(passwordFile, 'bob', 'two');
    writeFileSync(aclFile, 'user alice\ntopic read b/#\n');
    expect(auth.reload()).toEqual({ ok: true });
    expect(auth.authenticate(login('bob', 'two'))).toBe(true);
    expect(auth.authorize(who('alice'), 'subscribe', 'b/#')).toBe(true);
    expect(auth.authorize(who('alice'), 'subscribe', 'a/#')).toBe(false);

    // A good password file with a bad ACL: nothing changes (all or nothing).
    addOrUpdateUser(passwordFile, 'carol', 'three');
    writeFileSync(aclFile, 'user alice\ntopic raed c/#\n');
    const result = auth.reload();
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.join()).toMatch(/acl2:2: unknown access type "raed"/);
    expect(auth.authenticate(login('carol', 'three'))).toBe(false);
    expect(auth.authorize(who('alice'), 'subscribe', 'b/#')).toBe(true);

    rmSync(passwordFile);
    expect(auth.reload().ok).toBe(false);
    expect(auth.authenticate(login('alice', 'one'))).toBe(true);
  });
});

describe.skipIf(!requireTool('mosquitto_passwd'))('createAuth with a password file from mosquitto_passwd', () => {
  it('authenticates its users and reloads after mosquitto_passwd changes a password', () => {
    const passwordFile = join(dir, 'mosq');
    execFileSync('mosquitto_passwd', ['-b', '-c', passwordFile, 'meter-reader', 'r3ad-only']);
    execFileSync('mosquitto_passwd', ['-b', passwordFile, 'operator', 'op-pass']);
    const auth = createAuth({ passwordFile, allowAnonymous: false });
    expect(auth.authenticate(login('meter-reader', 'r3ad-only'))).toBe(true);
    expect(auth.authenticate(login('operator', 'op-pass'))).toBe(true);
    expect(auth.authenticate(login('operator', 'r3ad-only'))).toBe(false);
    execFileSync('mosquitto_passwd', ['-b', passwordFile, 'operator', 'new-pass']);
    expect(auth.reload()).toEqual({ ok: true });
    expect(auth.authenticate(login('operator', 'op-pass'))).toBe(false);
    expect(auth.authenticate(login('operator', 'new-pass'))).toBe(true);
  });
});
