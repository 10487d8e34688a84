// Plays one fuzz case over its own TCP socket and judges the broker's side of the conversation.

import net from 'node:net';
import type { FuzzCase } from './case.js';
import { limitsOfConnect, SocketOracle } from './oracle.js';
import { Rng } from './prng.js';

export interface Bounds {
  /** The broker's connect timeout plus its sweep interval plus slack for a loaded machine. */
  answerMs: number;
  /** Slack on top of 1.5 × keep alive for a dribbled packet. */
  keepAliveSlackMs: number;
  /** After the last byte either way, how long to wait before we close. */
  lingerMs: number;
}

export interface CaseResult {
  fuzzCase: FuzzCase;
  violations: string[];
  startedAt: number;
  endedAt: number;
  closedByBroker: boolean;
  output: string;
}

export function runCase(port: number, fuzzCase: FuzzCase, bounds: Bounds): Promise<CaseResult> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const connectFrame = fuzzCase.frames[fuzzCase.names.indexOf('connect')] ?? fuzzCase.frames[0];
    // Receive Maximum is checked where every QoS 1/2 PUBLISH stays unacknowledged: valid cases that send no acks.
    const acks = fuzzCase.names.some((n) => n === 'puback' || n === 'pubrec' || n === 'pubcomp');
    const oracle = new SocketOracle(limitsOfConnect(connectFrame), `case ${fuzzCase.index}`, fuzzCase.valid && !acks);
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const rng = new Rng(fuzzCase.splitSeed);
    let lastTraffic = Date.now();
    let allSent = false;
    let allSentAt = 0;
    let done = false;
    let closedByBroker = false;
    let gracefulEnd = false;
    let connackAt = 0;
    const timers: NodeJS.Timeout[] = [];

    const finish = (extra?: string) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      clearInterval(poll);
      if (extra) oracle.violations.push(extra);
      // Only a clean end must fall on a packet boundary (a reset is an abort); the oracle excuses a
      // cut that comes after the broker's close grace (a deliberate drop of a socket that did not read).
      if (closedByBroker && gracefulEnd) {
        oracle.finish();
        // How late this process was to read (a starved fuzz process can look like a client that does not read).
        if (oracle.violations.length > 0 && maxPollGap > 200) oracle.violations.push(`this fuzz socket's 20 ms poll was late by up to ${maxPollGap} ms`);
      }
      socket.destroy();
      resolve({ fuzzCase, violations: oracle.violations, startedAt, endedAt: Date.now(), closedByBroker, output: oracle.outputHex() });
    };

    socket.on('data', (chunk: Buffer) => {
      lastTraffic = Date.now();
      oracle.onData(chunk);
      if (oracle.connack && connackAt === 0) connackAt = Date.now();
    });
    socket.on('end', () => { gracefulEnd = true; closedByBroker = true; finish(); });
    socket.on('error', () => { if (!done) closedByBroker = true; });
    socket.on('close', () => { closedByBroker = true; finish(); });

    const write = (bytes: Buffer) => {
      if (!done && !socket.destroyed && socket.writable) socket.write(bytes);
      lastTraffic = Date.now();
    };

    socket.once('connect', () => {
      if (fuzzCase.delivery === 'burst') {
        const all = Buffer.concat(fuzzCase.frames);
        const pieces: Buffer[] = [];
        // Split at random byte boundaries: whole, a few pieces, or (small cases) byte by byte.
        const mode = rng.int(10);
        if (mode < 4 || all.length < 2) pieces.push(all);
        else if (mode < 9 || all.length > 512) {
          let at = 0;
          for (let n = rng.range(1, 4); n > 0 && at < all.length; n--) {
            const next = at + rng.range(1, Math.max(1, all.length - at));
            pieces.push(all.subarray(at, next));
            at = next;
          }
          if (at < all.length) pieces.push(all.subarray(at));
        } else for (let i = 0; i < all.length; i++) pieces.push(all.subarray(i, i + 1));
        const sendNext = (i: number) => {
          if (done) return;
          if (i >= pieces.length) {
            allSent = true;
            allSentAt = Date.now();
            return;
          }
          write(pieces[i]);
          if (rng.chance(0.3)) timers.push(setTimeout(() => sendNext(i + 1), rng.int(5)));
          else setImmediate(() => sendNext(i + 1));
        };
        sendNext(0);
      } else {
        write(fuzzCase.frames[0]);
        const rest = Buffer.concat(fuzzCase.frames.slice(1));
        let i = 0;
        const drip = () => {
          if (done) return;
          if (i >= rest.length) {
            allSent = true;
            return;
          }
          write(rest.subarray(i, i + 1));
          i++;
          timers.push(setTimeout(drip, fuzzCase.dribbleMs));
        };
        timers.push(setTimeout(drip, fuzzCase.dribbleMs));
      }
    });

    let lastPoll = Date.now();
    let maxPollGap = 0;
    const poll = setInterval(() => {
      const now = Date.now();
      maxPollGap = Math.max(maxPollGap, now - lastPoll - 20);
      lastPoll = now;
      if (fuzzCase.delivery === 'dribble') {
        // A packet never completes: only the keep-alive timer may end this connection.
        const limit = connackAt + fuzzCase.keepAlive * 1500 + bounds.keepAliveSlackMs;
        if (connackAt > 0 && now > limit) finish(`a packet dribbled one byte per ${fuzzCase.dribbleMs} ms kept the connection open ${now - connackAt} ms after CONNACK (keep alive ${fuzzCase.keepAlive} s: bound ${fuzzCase.keepAlive * 1500} ms + ${bounds.keepAliveSlackMs} ms slack)`);
        else if (connackAt === 0 && now - startedAt > bounds.answerMs) finish(`no CONNACK and not closed within ${bounds.answerMs} ms`);
        return;
      }
      const answered = oracle.received.length > 0;
      // Quiet for a moment, or a subscriber that keeps receiving: we have seen enough.
      if (allSent && answered && (now - lastTraffic > bounds.lingerMs || now - allSentAt > bounds.lingerMs * 5)) {
        if (fuzzCase.abrupt) finish();
        else {
          socket.end();
          timers.push(setTimeout(() => finish(), bounds.lingerMs));
        }
      } else if (!answered && now - startedAt > bounds.answerMs) {
        finish(`neither answered nor closed within ${bounds.answerMs} ms`);
      }
    }, 20);
  });
}
