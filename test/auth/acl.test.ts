import { describe, expect, it } from 'vitest';
import { AclChecker, createAclAuthorizer, filterCovers, filterIntersection, filterMatchesTopic, filtersOverlap, parseAcl } from '../../src/auth/acl.js';
import type { ClientIdentity } from '../../src/broker/types.js';

const client = (clientId: string, username?: string): ClientIdentity => ({ clientId, username, address: '127.0.0.1', local: false });

describe('topic filter relations', () => {
  it('matches topics per MQTT rules', () => {
    expect(filterMatchesTopic('a/+/c', 'a/b/c')).toBe(true);
    expect(filterMatchesTopic('a/+/c', 'a/b/d')).toBe(false);
    expect(filterMatchesTopic('a/#', 'a')).toBe(true);
    expect(filterMatchesTopic('a/#', 'a/b/c')).toBe(true);
    expect(filterMatchesTopic('a/+', 'a/b/c')).toBe(false);
    expect(filterMatchesTopic('#', '$SYS/x')).toBe(false);
    expect(filterMatchesTopic('+/x', '$SYS/x')).toBe(false);
    expect(filterMatchesTopic('$SYS/#', '$SYS/x')).toBe(true);
    expect(filterMatchesTopic('a/b', 'a/b/')).toBe(false);
    expect(filterMatchesTopic('a/+', 'a/')).toBe(true);
  });

  it('knows when one filter covers another', () => {
    expect(filterCovers('sensors/#', 'sensors/+/temp')).toBe(true);
    expect(filterCovers('sensors/#', 'sensors/#')).toBe(true);
    expect(filterCovers('sensors/#', 'sensors')).toBe(true);
    expect(filterCovers('sensors/+/temp', 'sensors/a/temp')).toBe(true);
    expect(filterCovers('sensors/+/temp', 'sensors/+/temp')).toBe(true);
    expect(filterCovers('sensors/a/temp', 'sensors/+/temp')).toBe(false);
    expect(filterCovers('sensors/+', 'sensors/#')).toBe(false);
    expect(filterCovers('sensors/+/temp', 'sensors/#')).toBe(false);
    expect(filterCovers('#', '$SYS/#')).toBe(false);
    expect(filterCovers('#', '+/x')).toBe(true);
  });

  it('knows when two filters can match a common topic', () => {
    expect(filtersOverlap('#', 'secret/x')).toBe(true);
    expect(filtersOverlap('a/+/c', 'a/b/+')).toBe(true);
    expect(filtersOverlap('a/b', 'a/c')).toBe(false);
    expect(filtersOverlap('a/+', 'a/b/c')).toBe(false);
    expect(filtersOverlap('a/#', 'a')).toBe(true);
    expect(filtersOverlap('#', '$SYS/x')).toBe(false);
  });
});

describe('parseAcl', () => {
  const text = [
    '# fieldgate ACL',
    '',
    'topic read public/#',
    '   ',
    'user alice',
    'topic readwrite fieldgate/#',
    'topic deny fieldgate/secret/#',
    'user bob',
    'topic fieldgate/meter1/#',
    'topic write cmd/+/set',
    'pattern read clients/%c/#',
    'pattern write users/%u/inbox',
  ].join('\n');

  it('sorts rules into anonymous, per-user and pattern lists with line numbers', () => {
    const rules = parseAcl(text);
    expect(rules.anonymous).toEqual([{ access: 'read', topic: 'public/#', line: 3 }]);
    expect(rules.users.get('alice')).toEqual([
      { access: 'readwrite', topic: 'fieldgate/#', line: 6 },
      { access: 'deny', topic: 'fieldgate/secret/#', line: 7 },
    ]);
    expect(rules.users.get('bob')).toEqual([
      { access: 'readwrite', topic: 'fieldgate/meter1/#', line: 9 },
      { access: 'write', topic: 'cmd/+/set', line: 10 },
    ]);
    expect(rules.patterns.map((r) => r.line)).toEqual([11, 12]);
  });

  it('reports bad lines with their number and what to write instead', () => {
    expect(() => parseAcl('user alice\nallow a/b\n', 'acl')).toThrow('acl:2: unknown keyword "allow" (expected "user", "topic" or "pattern"');
    expect(() => parseAcl('topic\n', 'acl')).toThrow('acl:1: "topic" needs a topic');
    expect(() => parseAcl('\n\ntopic reed a/b\n', 'acl')).toThrow('acl:3: unknown access type "reed"');
    expect(() => parseAcl('pattern read\n', 'acl')).toThrow(/acl:1: .*needs a topic/);
    expect(() => parseAcl('topic read a/#/b\n', 'acl')).toThrow('acl:1: "#" must be a whole level and the last one');
    expect(() => parseAcl('topic read a/b+\n', 'acl')).toThrow('acl:1: "+" must be a whole level');
    expect(() => parseAcl('user\n', 'acl')).toThrow('acl:1: "user" needs a name');
  });
});

describe('AclChecker', () => {
  const checker = new AclChecker(
    parseAcl(
      [
        'topic read public/#',
        'topic write public/anon-inbox',
        'user alice',
        'topic readwrite fieldgate/#',
        'topic deny fieldgate/secret/#',
        'user bob',
        'topic read fieldgate/meter1/#',
        'topic write fieldgate/meter1/relay/set',
        'pattern readwrite clients/%c/#',
        'pattern read users/%u/#',
        'pattern deny %u/private/#',
      ].join('\n'),
    ),
  );
  const anon = client('anon-1');
  const alice = client('alice-laptop', 'alice');
  const bob = client('bob-pi', 'bob');
  const carol = client('carol-1', 'carol'); // no user block: patterns only

  it('gives anonymous clients the rules before the first user line', () => {
    expect(checker.canSubscribe(anon, 'public/#')).toBe(true);
    expect(checker.canPublish(anon, 'public/anon-inbox')).toBe(true);
    expect(checker.canPublish(anon, 'public/other')).toBe(false);
    expect(checker.canSubscribe(anon, 'fieldgate/#')).toBe(false);
    expect(checker.canSubscribe(alice, 'public/#')).toBe(false); // anonymous rules are not everybody's
  });

  it('applies user blocks, with deny winning', () => {
    expect(checker.canPublish(alice, 'fieldgate/meter1/power')).toBe(true);
    expect(checker.canPublish(alice, 'fieldgate/secret/key')).toBe(false);
    expect(checker.canSubscribe(alice, 'fieldgate/meter1/+')).toBe(true);
    expect(checker.canSubscribe(alice, 'fieldgate/secret/#')).toBe(false);
    // A subscription that could carry a denied message is granted, and filtered at delivery (as Mosquitto).
    expect(checker.subscriptionAccess(alice, 'fieldgate/meter1/+')).toBe('whole');
    expect(checker.subscriptionAccess(alice, 'fieldgate/#')).toBe('partial');
    expect(checker.subscriptionAccess(alice, 'fieldgate/+/key')).toBe('partial');
    expect(checker.subscriptionAccess(alice, 'fieldgate/+/power')).toBe('partial'); // would include fieldgate/secret/power
    expect(checker.subscriptionAccess(alice, '#')).toBe('partial');
    expect(checker.subscriptionAccess(alice, 'fieldgate/secret/+/x')).toBe('none'); // wholly inside the deny
    expect(checker.canRead(alice, 'fieldgate/secret/power')).toBe(false);
    expect(checker.canRead(alice, 'fieldgate/meter1/power')).toBe(true);
  });

  it('needs write to publish and read to subscribe', () => {
    expect(checker.canSubscribe(bob, 'fieldgate/meter1/#')).toBe(true);
    expect(checker.canPublish(bob, 'fieldgate/meter1/power')).toBe(false);
    expect(checker.canPublish(bob, 'fieldgate/meter1/relay/set')).toBe(true);
    expect(checker.canSubscribe(bob, 'fieldgate/meter1/relay/set')).toBe(true);
    // Wider than what bob may read: granted, filtered at delivery.
    expect(checker.subscriptionAccess(bob, 'fieldgate/#')).toBe('partial');
    expect(checker.subscriptionAccess(bob, '#')).toBe('partial');
    // No read rule reaches these: refused.
    expect(checker.subscriptionAccess(bob, 'fieldgate/meter2/#')).toBe('none');
    expect(checker.subscriptionAccess(bob, 'other/#')).toBe('none');
    expect(checker.subscriptionAccess(bob, '$SYS/#')).toBe('none');
    expect(checker.canRead(bob, 'fieldgate/meter1/power')).toBe(true);
    expect(checker.canRead(bob, 'fieldgate/meter2/power')).toBe(false);
  });

  it('substitutes %c and %u in patterns for every client', () => {
    expect(checker.canPublish(carol, 'clients/carol-1/status')).toBe(true);
    expect(checker.canPublish(carol, 'clients/bob-pi/status')).toBe(false);
    expect(checker.canSubscribe(carol, 'users/carol/#')).toBe(true);
    expect(checker.canPublish(carol, 'users/carol/x')).toBe(false);
    expect(checker.canSubscribe(bob, 'clients/bob-pi/#')).toBe(true);
    expect(checker.canSubscribe(anon, 'clients/anon-1/+')).toBe(true);
    // %u patterns do not apply to anonymous clients
    expect(checker.canSubscribe(anon, 'users/anon-1/#')).toBe(false);
    expect(checker.canPublish(alice, 'alice/private/x')).toBe(false);
  });

  it('refuses pattern access to ids that could escape their subtree', () => {
    const sneaky = client('x/../bob-pi', 'carol');
    expect(checker.canPublish(sneaky, 'clients/x/../bob-pi/a')).toBe(false);
    expect(checker.canSubscribe(client('#', 'carol'), 'clients/#')).toBe(false);
    expect(checker.canSubscribe(client('c', '+'), 'users/+/#')).toBe(false);
  });

  it('checks the real filter of a shared subscription', () => {
    expect(checker.canSubscribe(bob, '$share/g1/fieldgate/meter1/#')).toBe(true);
    expect(checker.canSubscribe(bob, '$share/g1/fieldgate/meter2/#')).toBe(false);
  });

  it('works as the broker AuthorizeHook', () => {
    const authorize = createAclAuthorizer(checker.rules);
    expect(authorize(bob, 'subscribe', 'fieldgate/meter1/#')).toBe(true);
    expect(authorize(bob, 'subscribe', 'fieldgate/+/power')).toBe('filter');
    expect(authorize(bob, 'subscribe', 'fieldgate/meter2/power')).toBe(false);
    expect(authorize(bob, 'read', 'fieldgate/meter1/power')).toBe(true);
    expect(authorize(bob, 'read', 'fieldgate/meter2/power')).toBe(false);
    expect(authorize(bob, 'publish', 'fieldgate/meter1/#')).toBe(false);
  });

  it('refuses a subscription whose every reachable topic is denied', () => {
    const rules = new AclChecker(parseAcl('user u\ntopic read a/#\ntopic deny a/#\ntopic read b/+/x\ntopic deny b/#\ntopic read c/#\ntopic deny c/+/secret\n'));
    const u = client('u1', 'u');
    expect(rules.subscriptionAccess(u, '#')).toBe('partial'); // c/… is readable
    expect(rules.subscriptionAccess(u, 'a/+')).toBe('none');
    expect(rules.subscriptionAccess(u, '+/+/x')).toBe('partial'); // c/y/x
    expect(rules.subscriptionAccess(u, 'b/#')).toBe('none');
    expect(rules.subscriptionAccess(u, 'c/+/secret')).toBe('none');
    expect(rules.subscriptionAccess(u, 'c/+/+')).toBe('partial');
  });

  it('intersects filters', () => {
    expect(filterIntersection('#', 'a/+')).toBe('a/+');
    expect(filterIntersection('a/+/c', '+/b/#')).toBe('a/b/c');
    expect(filterIntersection('a/#', 'a')).toBe('a');
    expect(filterIntersection('a/b', 'a/c')).toBeUndefined();
    expect(filterIntersection('#', '$SYS/#')).toBeUndefined();
    expect(filterIntersection('+/#', '#')).toBe('+/#');
  });
});
