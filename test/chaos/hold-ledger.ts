// What the chaos run checks for messages nobody waits for (QoS 0 here, as device readings: Message.holdable). They
// may wait in memory for the cloud's PUBACK (the bridge's hold stage), so a kill -9 may lose those routed within
// the hold time before it (and those in flight on a connection that never answered, for at most the bridge's ack
// timeout). A SIGTERM must lose none of them: the stop writes or sends everything held.
//
// "Routed" is observed from outside: a local subscriber on the same topics saw the message, so the broker routed it
// to the bridge's subscription in the same turn. Messages that never reached the broker (gateway down, QoS 0
// dropped at the socket) are not counted.

export interface HoldRunRecord {
  startedAt: number;
  /** When the harness sent the signal that ended this run (SIGKILL or SIGTERM), or when it exited by itself. */
  endedAt: number | null;
  /** 'kill': ended by SIGKILL (also a SIGKILL during a stop); 'term': SIGTERM and a clean exit; 'crash': exited by itself. */
  end: 'kill' | 'term' | 'crash' | null;
}

export interface HoldVerdict {
  published: number;
  /** Seen by the local observer (routed by the broker). */
  observed: number;
  /** Observed and received by the cloud subscriber. */
  atCloud: number;
  /** Observed in runs that ended with a SIGTERM and a clean exit (each of them must be at the cloud). */
  inTermRuns: number;
  /** Observed, never at the cloud, in a run that ended with a kill -9 within the allowed time after it was observed. */
  lostToKill: number;
  /** The largest time from observation to the kill among those. */
  lostToKillMaxAgeMs: number;
  /** Observed, never at the cloud, and not excused: a SIGTERM, a crash, or a kill -9 later than the allowed time. */
  lostUnexcused: number;
  unexcusedSamples: string[];
}

/**
 * @param observedAt seq → when the local observer first saw it
 * @param atCloud seqs the cloud subscriber received
 * @param allowedMs how long before a kill -9 a held message may still be lost (hold time + ack timeout + slack)
 * @param runs every gateway run, in order; the last one may still be running (end null: its messages must be at the cloud)
 */
export function judgeHeld(published: number, observedAt: Map<number, number>, atCloud: Set<number>, runs: HoldRunRecord[], allowedMs: number): HoldVerdict {
  const verdict: HoldVerdict = {
    published, observed: observedAt.size, atCloud: 0, inTermRuns: 0, lostToKill: 0, lostToKillMaxAgeMs: 0, lostUnexcused: 0, unexcusedSamples: [],
  };
  for (const [seq, at] of observedAt) {
    // The run it was routed in: the last one that started before it was seen.
    let run: HoldRunRecord | undefined;
    for (const r of runs) if (r.startedAt <= at) run = r;
    if (run?.end === 'term') verdict.inTermRuns++;
    if (atCloud.has(seq)) {
      verdict.atCloud++;
      continue;
    }
    const age = run?.endedAt != null ? run.endedAt - at : null;
    if (run?.end === 'kill' && age !== null && age <= allowedMs) {
      verdict.lostToKill++;
      if (age > verdict.lostToKillMaxAgeMs) verdict.lostToKillMaxAgeMs = age;
      continue;
    }
    verdict.lostUnexcused++;
    if (verdict.unexcusedSamples.length < 5) {
      verdict.unexcusedSamples.push(`q0#${seq} seen ${run === undefined ? 'before any run' : `${at - run.startedAt} ms after a start, run ended by ${run.end ?? 'nothing (still running)'}${age !== null ? ` ${age} ms later` : ''}`}`);
    }
  }
  return verdict;
}
