// The hold that keeps a publisher's messages in order behind its QoS 2 PUBLISH (the client hands a
// QoS 2 message to the application only on PUBREL) must not hold other publishers' messages: found
// by the fuzzer (issue 8), where a good 3.1.1 subscriber of the fuzzed topics at QoS 2 received one
// message per QoS 2 round trip and fell 2,000 acknowledged QoS 1 messages behind.
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { uniqueTopic, useHarness } from '../helpers/broker.js';

for (const version of [4, 5] as const) {
  describe(`QoS 2 ordering hold, MQTT ${version === 4 ? '3.1.1' : '5.0'}`, () => {
    const h = useHarness();

    it("another publisher's QoS 1 messages pass a QoS 2 PUBLISH whose PUBREC has not come; the same publisher's wait behind it", async () => {
      const { port } = await h.broker();
      const root = uniqueTopic('q2scope');
      const sub = await h.raw(port, version);
      await sub.connect({ clientId: `q2sub-${version}` });
      sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${root}/#`, qos: 2 }] });
      await sub.next('suback');

      const slow = await h.v4(port, { clientId: `q2slow-${version}` });
      await slow.publish(`${root}/slow`, 'q2', { qos: 2 });
      const held = (await sub.next('publish')) as IPublishPacket;
      expect(held.qos).toBe(2);
      // No PUBREC for it: the same publisher's next message must wait, another publisher's must not.
      await slow.publish(`${root}/slow`, 'after-q2', { qos: 1 });
      const other = await h.v4(port, { clientId: `q2other-${version}` });
      for (let i = 0; i < 5; i++) await other.publish(`${root}/other`, `o${i}`, { qos: 1 });

      const received: string[] = [];
      for (let i = 0; i < 5; i++) {
        const p = (await sub.next('publish', 5000)) as IPublishPacket;
        received.push(p.payload.toString());
        sub.acknowledge(p);
      }
      expect(received).toEqual(['o0', 'o1', 'o2', 'o3', 'o4']);
      expect(sub.peek('publish').map((p) => (p as IPublishPacket).payload.toString())).not.toContain('after-q2');

      sub.send({ cmd: 'pubrec', messageId: held.messageId });
      await sub.next('pubrel');
      const after = (await sub.next('publish', 5000)) as IPublishPacket;
      expect(after.payload.toString()).toBe('after-q2');
    });
  });
}
