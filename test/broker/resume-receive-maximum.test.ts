// Found by the fuzzer (issue 8, seed 20261204 case 15890): a v5 client that resumed its session with
// Receive Maximum 2 got all 7 PUBLISHes left in flight by its previous connection at once. The resend
// must respect the new connection's Receive Maximum [MQTT-3.3.4-9]; the rest follow, with their
// packet ids and DUP, as acknowledgements free the window.
import type { IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { sleep, uniqueTopic, useHarness, waitFor } from '../helpers/broker.js';

describe('session resume and Receive Maximum (MQTT 5.0)', () => {
  const h = useHarness();

  for (const qos of [1, 2] as const) {
    it(`QoS ${qos}: in-flight PUBLISHes of the old connection are resent within the new Receive Maximum`, async () => {
      const { port } = await h.broker();
      const topic = uniqueTopic(`resume-rm-${qos}`);
      const clientId = `rm-${qos}`;
      const first = await h.raw(port, 5);
      await first.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 600, receiveMaximum: 20 } });
      first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
      await first.next('suback');
      // One publisher per message: a publisher's QoS 2 PUBLISH holds its next until PUBREC.
      for (let i = 0; i < 7; i++) await (await h.v4(port, { clientId: `rm-pub-${qos}-${i}` })).publish(topic, `m${i}`, { qos });
      const ids: number[] = [];
      for (let i = 0; i < 7; i++) ids.push(((await first.next('publish')) as IPublishPacket).messageId!);
      first.socket.destroy(); // none acknowledged
      await sleep(100);

      const back = await h.raw(port, 5);
      const connack = await back.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 600, receiveMaximum: 2 } });
      expect(connack.sessionPresent).toBe(true);
      await waitFor(() => back.peek('publish').length >= 2, 5000, 'two resent PUBLISHes');
      await sleep(300);
      const resent = back.peek('publish') as IPublishPacket[];
      expect(resent.length).toBe(2);
      const seen: IPublishPacket[] = [];
      while (seen.length < 7) {
        const p = (await back.next('publish', 5000)) as IPublishPacket;
        expect(back.peek('publish').length).toBeLessThanOrEqual(1);
        seen.push(p);
        if (qos === 1) back.send({ cmd: 'puback', messageId: p.messageId });
        else {
          back.send({ cmd: 'pubrec', messageId: p.messageId });
          const rel = await back.next('pubrel');
          back.send({ cmd: 'pubcomp', messageId: rel.messageId });
        }
      }
      expect(seen.map((p) => p.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      expect(seen.map((p) => p.messageId)).toEqual(ids);
      expect(seen.every((p) => p.dup)).toBe(true);
    });
  }
});
