// Micro-benchmark of the router's delivery-time ACL check: Broker.route() in process, 50 offline
// sessions subscribed to "#" (QoS 0, so offer() returns before any queueing: what is measured is
// matching, folding and the read check), 20 topics in rotation.
//   node --import tsx bench/broker/acl-route.ts [src-dir]
// Modes: no authorize hook; an ACL that covers "#" wholly (no per-message check); an ACL with a
// deny inside "#" (every delivery is checked, answers cached per session and topic).
// Pass another checkout's src/ (e.g. main's, copied to a scratch dir) to compare the same modes there.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const src = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '../../src'));
const { Broker } = await import(pathToFileURL(path.join(src, 'broker/broker.ts')).href);
const { Session } = await import(pathToFileURL(path.join(src, 'broker/session.ts')).href);
const { createAclAuthorizer, parseAcl } = await import(pathToFileURL(path.join(src, 'auth/acl.ts')).href);

const SESSIONS = 50;
const TOPICS = Array.from({ length: 20 }, (_, i) => `fieldgate/meter${i % 5}/p${i}`);
const ROUTES = Number(process.env.ROUTES ?? 400_000);

async function measure(name: string, aclText: string | null, print = true): Promise<number> {
  const authorize = aclText === null ? undefined : createAclAuthorizer(parseAcl(aclText));
  const broker = new Broker({ dataDir: null, sysIntervalMs: 0, authorize });
  await broker.start();
  for (let i = 0; i < SESSIONS; i++) {
    const session = new Session(`s${i}`, 4, 0);
    broker.sessions.set(session.clientId, session);
    const identity = { clientId: session.clientId, username: 'dash', address: 'bench', local: false };
    const decision = typeof broker.authorizeSubscription === 'function' ? broker.authorizeSubscription(session, identity, '#') : 'whole';
    if (decision === 'denied') throw new Error('subscription refused');
    broker.addSubscription(session, { filter: '#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 });
  }
  const messages = TOPICS.map((topic) => ({ topic, payload: Buffer.from('x'), qos: 0 as const, retain: false }));
  const run = (count: number) => {
    for (let i = 0; i < count; i++) broker.route(messages[i % messages.length]);
  };
  run(200_000); // warm-up
  // CPU time, not wall time: the machine is shared, and a descheduled process must not look slow.
  const before = process.cpuUsage();
  run(ROUTES);
  const used = process.cpuUsage(before);
  const rate = (ROUTES * SESSIONS) / ((used.user + used.system) / 1e6);
  await broker.close();
  if (print) console.log(`${name.padEnd(34)} ${(rate / 1e6).toFixed(2)}M deliveries per CPU-second`);
  return rate;
}

// Best of several interleaved rounds: on a shared machine the slowest rounds measure the neighbours.
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const modes: Array<[string, string | null]> = [
  ['no ACL', null],
  ['ACL covering "#" (no check)', 'user dash\ntopic readwrite #\n'],
  ['ACL with a deny (checked, cached)', 'user dash\ntopic readwrite #\ntopic deny test/nosubscribe\n'],
];
console.log(`src: ${src}, best of ${ROUNDS} rounds`);
const best = new Map<string, number>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, acl] of modes) best.set(name, Math.max(best.get(name) ?? 0, await measure(name, acl, false)));
}
for (const [name] of modes) console.log(`${name.padEnd(34)} ${(best.get(name)! / 1e6).toFixed(2)}M deliveries per CPU-second`);
const none = best.get(modes[0]![0])!;
console.log(`ratios to no ACL: whole ${(best.get(modes[1]![0])! / none).toFixed(2)}, partial ${(best.get(modes[2]![0])! / none).toFixed(2)}`);
