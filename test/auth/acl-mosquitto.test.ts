// Our ACL decisions for PUBLISH must agree with Mosquitto's on the same ACL file.
// (Mosquitto 2 does not check SUBSCRIBE against the ACL, it filters at delivery, so only publish is compared.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AclChecker, readAclFile } from '../../src/auth/acl.js';
import { addOrUpdateUser } from '../../src/auth/password-file.js';
import { requireTool } from '../helpers/peers.js';
import { mosquittoPub, startMosquitto, type RunningMosquitto } from './mosquitto-peer.js';

const acl = [
  '# anonymous clients (none here: allow_anonymous false)',
  'topic read public/#',
  '',
  'user alice',
  'topic write fieldgate/#',
  'topic deny fieldgate/secret/#',
  'user bob',
  'topic readwrite fieldgate/meter1/+/set',
  'pattern write clients/%c/#',
  'pattern write users/%u/+/out',
].join('\n');

const cases: Array<[user: string, clientId: string, topic: string]> = [
  ['alice', 'a1', 'fieldgate/meter1/power'],
  ['alice', 'a1', 'fieldgate/secret/key'],
  ['alice', 'a1', 'public/x'],
  ['alice', 'a1', 'clients/a1/status'],
  ['alice', 'a1', 'clients/b1/status'],
  ['bob', 'b1', 'fieldgate/meter1/relay/set'],
  ['bob', 'b1', 'fieldgate/meter1/power'],
  ['bob', 'b1', 'fieldgate/meter2/relay/set'],
  ['bob', 'b1', 'users/bob/x/out'],
  ['bob', 'b1', 'users/alice/x/out'],
  ['bob', 'b1', 'users/bob/x/y/out'],
];

describe.skipIf(!requireTool('mosquitto') || !requireTool('mosquitto_pub'))('ACL decisions agree with mosquitto', () => {
  let dir: string;
  let mosquitto: RunningMosquitto | undefined;
  let checker: AclChecker;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-acl-'));
    const passwordFile = join(dir, 'passwd');
    const aclFile = join(dir, 'acl');
    addOrUpdateUser(passwordFile, 'alice', 'pa');
    addOrUpdateUser(passwordFile, 'bob', 'pb');
    writeFileSync(aclFile, acl + '\n');
    checker = new AclChecker(readAclFile(aclFile));
    mosquitto = await startMosquitto(dir, { passwordFile, aclFile });
  });
  afterAll(async () => {
    await mosquitto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('allows and refuses the same publishes', async () => {
    const passwords: Record<string, string> = { alice: 'pa', bob: 'pb' };
    const theirs: string[] = [];
    const ours: string[] = [];
    for (const [user, clientId, topic] of cases) {
      // MQTT 5 QoS 1: Mosquitto answers a denied publish with PUBACK "not authorized".
      const result = await mosquittoPub(mosquitto!.port, user, passwords[user]!, topic, ['-V', '5', '-i', clientId]);
      expect(result.code, result.output).toBe(0);
      const allowed = !/not authori[sz]ed/i.test(result.output);
      theirs.push(`${user} ${topic}: ${allowed}`);
      ours.push(`${user} ${topic}: ${checker.canPublish({ clientId, username: user, address: '127.0.0.1', local: false }, topic)}`);
    }
    expect(ours).toEqual(theirs);
    // The table must exercise both outcomes, or the comparison proves little.
    expect(theirs.filter((l) => l.endsWith('true')).length).toBeGreaterThanOrEqual(4);
    expect(theirs.filter((l) => l.endsWith('false')).length).toBeGreaterThanOrEqual(4);
  });
});
