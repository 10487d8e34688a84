// What the chaos run checks: every message a publisher got a PUBACK for reached every receiver, in
// order, with duplicates counted.
//
// Ordering under QoS 1 (at least once): a receiver may get a message again after a restart or a
// reconnect (a redelivery, which QoS 1 allows). Such a repeat is a duplicate, never a reordering.
// The order that must hold is that of FIRST receipts: for one publisher, the acknowledged sequence
// numbers, taken in the order each one first reached a receiver, must be increasing. Messages that
// were never acknowledged (PUBACK lost in a kill, refused with a v5 reason code) may arrive or not,
// anywhere: they are counted ("unacknowledged but delivered"), they are not checked for order.

export interface PublisherRecord {
  id: string;
  /** Sequence numbers that got a PUBACK with a success reason code. */
  acked: Set<number>;
  /** Highest sequence number sent. */
  lastSent: number;
}

export interface ReceiverRecord {
  name: string;
  /** Per publisher: the sequence numbers in the order they arrived, repeats included. */
  received: Map<string, number[]>;
}

export interface ReceiverVerdict {
  receiver: string;
  /** Acknowledged messages that never arrived. */
  lost: number;
  lostSamples: string[];
  /** Acknowledged messages whose first receipt came after that of a higher acknowledged sequence number. */
  reordered: number;
  reorderSamples: string[];
  duplicates: number;
  unacknowledgedDelivered: number;
  received: number;
}

export function record(receiver: ReceiverRecord, publisher: string, seq: number): void {
  let list = receiver.received.get(publisher);
  if (!list) receiver.received.set(publisher, (list = []));
  list.push(seq);
}

export function judge(receiver: ReceiverRecord, publishers: PublisherRecord[]): ReceiverVerdict {
  const verdict: ReceiverVerdict = {
    receiver: receiver.name, lost: 0, lostSamples: [], reordered: 0, reorderSamples: [],
    duplicates: 0, unacknowledgedDelivered: 0, received: 0,
  };
  for (const publisher of publishers) {
    const arrivals = receiver.received.get(publisher.id) ?? [];
    verdict.received += arrivals.length;
    const seen = new Set<number>();
    let highestAcked = 0;
    for (const seq of arrivals) {
      if (seen.has(seq)) {
        verdict.duplicates++;
        continue;
      }
      seen.add(seq);
      if (!publisher.acked.has(seq)) {
        verdict.unacknowledgedDelivered++;
        continue;
      }
      if (seq < highestAcked) {
        verdict.reordered++;
        if (verdict.reorderSamples.length < 5) verdict.reorderSamples.push(`${publisher.id}#${seq} first arrived after #${highestAcked}`);
      } else highestAcked = seq;
    }
    for (const seq of publisher.acked) {
      if (seen.has(seq)) continue;
      verdict.lost++;
      if (verdict.lostSamples.length < 5) verdict.lostSamples.push(`${publisher.id}#${seq}`);
    }
  }
  return verdict;
}

/** True once the receiver has every acknowledged message (for the drain wait). */
export function hasAll(receiver: ReceiverRecord, publishers: PublisherRecord[]): boolean {
  for (const publisher of publishers) {
    const arrivals = new Set(receiver.received.get(publisher.id) ?? []);
    for (const seq of publisher.acked) if (!arrivals.has(seq)) return false;
  }
  return true;
}
