// Runs one serial-line bus: the port, the framer, the devices on it, their polls and `…/set` commands.
// Exactly one command is in flight on the port at a time, so a reply is always matched to its request.
import type { Logger } from '../../log.js';
import type { LocalClient, Message } from '../../broker/types.js';
import { LineDeviceRuntime, type LineDeviceStats } from './device.js';
import { createFramer, type FramerStats } from './framing.js';
import { openSerialLink } from './serial-link.js';
import type { LineBus, LineDevice, LineSetCommand } from './schema.js';
import { buildSetCommand } from './values.js';
import { answerUnknownCommands } from '../unknown-command.js';

export interface LineBusStats {
  open: boolean;
  reopenCount: number;
  framing: FramerStats;
  devices: Record<string, LineDeviceStats>;
}

export interface LineBusHandle {
  stop(): Promise<void>;
  stats(): LineBusStats;
}

interface Transaction {
  device: LineDeviceRuntime;
  text: string;
  /** Consumes a frame that answers this transaction. Absent: nothing to wait for. */
  reply?: (frame: string) => boolean;
  replyTimeoutMs: number;
  done(result: { ok: true; reply?: string } | { ok: false; error: string }): void;
}

const maxQueuedTransactions = 32;

/** Told about every request/response poll that was written to the port: its round trip and whether a reply came. */
export type LinePollObserver = (deviceId: string, seconds: number, ok: boolean) => void;

export async function startLineBus(bus: LineBus, devices: LineDevice[], client: LocalClient, logger: Logger, onPoll?: LinePollObserver): Promise<LineBusHandle> {
  const log = logger.child({ bus: bus.id });
  const runtimes = devices.map((d) => new LineDeviceRuntime(d, client, log.child({ device: d.id })));
  const listeners = runtimes.filter((r) => !r.polled);
  const framer = createFramer(bus.framing, { maxFrameLength: bus.maxFrameLength, encoding: bus.encoding, trimWhitespace: bus.trimWhitespace });
  const queue: Transaction[] = [];
  const pollPending = new Set<LineDeviceRuntime>();
  const timers: NodeJS.Timeout[] = [];
  const subscriptions: string[] = [];
  const stopUnknown: Array<() => void> = [];
  let current: { tx: Transaction; settle(reply?: string): void; fail(error: string): void } | undefined;
  let stopped = false;

  for (const r of runtimes) r.setOnline(false);

  const onFrame = (frame: string) => {
    if (current?.tx.reply?.(frame)) {
      current.settle(frame);
      return;
    }
    for (const r of listeners) r.accept(frame);
  };

  const link = openSerialLink(
    bus,
    {
      onData(chunk) {
        for (const frame of framer.push(chunk)) onFrame(frame);
      },
      onOpen() {
        framer.reset();
        for (const r of runtimes) r.portOpened();
        for (const r of runtimes) if (r.polled) enqueuePoll(r);
      },
      onLost() {
        framer.reset();
        for (const r of runtimes) r.portLost();
        for (const tx of queue.splice(0)) tx.done({ ok: false, error: 'serial port lost' });
        pollPending.clear();
      },
    },
    log,
  );

  const encode = (text: string) => Buffer.from(text, bus.encoding);

  const runNext = () => {
    if (current || stopped) return;
    const tx = queue.shift();
    if (!tx) return;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (result: Parameters<Transaction['done']>[0]) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      current = undefined;
      try {
        tx.done(result);
      } catch (err) {
        log.error({ err }, 'transaction callback failed');
      }
      setImmediate(runNext);
    };
    current = { tx, settle: (reply) => finish({ ok: true, reply }), fail: (error) => finish({ ok: false, error }) };
    link.write(encode(tx.text)).then(
      () => {
        if (settled) return;
        if (!tx.reply) finish({ ok: true });
        else timer = setTimeout(() => finish({ ok: false, error: `no reply within ${tx.replyTimeoutMs} ms` }), tx.replyTimeoutMs);
      },
      (err: Error) => finish({ ok: false, error: `write failed: ${err.message}` }),
    );
  };

  const enqueue = (tx: Transaction): boolean => {
    if (stopped || !link.isOpen) {
      tx.done({ ok: false, error: 'serial port is not open' });
      return false;
    }
    if (queue.length >= maxQueuedTransactions) {
      tx.done({ ok: false, error: 'too many commands queued for this port' });
      return false;
    }
    queue.push(tx);
    runNext();
    return true;
  };

  const lastPollAt = new Map<LineDeviceRuntime, number>();

  function enqueuePoll(r: LineDeviceRuntime): void {
    const poll = r.config.poll;
    if (!poll || pollPending.has(r) || !link.isOpen) return;
    // A device that stopped answering is only probed now and then: each probe blocks the port for timeoutMs.
    const now = Date.now();
    if (r.unanswering && now - (lastPollAt.get(r) ?? 0) < poll.offlinePollIntervalMs) return;
    lastPollAt.set(r, now);
    pollPending.add(r);
    r.stats.pollsSent++;
    const startedHr = process.hrtime.bigint();
    const report = (ok: boolean) => {
      if (!onPoll) return;
      try {
        onPoll(r.config.id, Number(process.hrtime.bigint() - startedHr) / 1e9, ok);
      } catch (err) {
        log.warn({ err, device: r.config.id }, 'poll observer failed');
      }
    };
    enqueue({
      device: r,
      text: poll.command,
      reply: (frame) => r.accept(frame),
      replyTimeoutMs: poll.timeoutMs,
      done(result) {
        pollPending.delete(r);
        if (result.ok) report(true);
        else if (link.isOpen && !stopped) {
          log.debug({ device: r.config.id, error: result.error }, 'poll failed');
          r.pollTimedOut();
          report(false);
        }
      },
    });
  }

  // Retained messages arrive in a microtask after subscribe(); everything after this turn is live.
  let replayingRetained = true;
  setImmediate(() => {
    replayingRetained = false;
  });
  for (const r of runtimes) {
    const poll = r.config.poll;
    if (poll) {
      const timer = setInterval(() => enqueuePoll(r), poll.intervalMs);
      timers.push(timer);
    }
    const commandNames = Object.keys(r.config.commands);
    try {
      stopUnknown.push(answerUnknownCommands(client, {
        deviceId: r.config.id, topicPrefix: r.prefix, knownSetTopics: commandNames.map((name) => `${r.prefix}/${name}/set`),
        writable: commandNames, qos: r.config.qos, logger: log.child({ device: r.config.id }),
      }));
    } catch (err) {
      log.error({ err, device: r.config.id }, 'cannot subscribe to the command topics');
    }
    for (const [name, command] of Object.entries(r.config.commands)) {
      const topic = `${r.prefix}/${name}/set`;
      try {
        client.subscribe(topic, (message) => handleSet(r, name, command, message), { qos: 1, noLocal: true });
        subscriptions.push(topic);
      } catch (err) {
        log.error({ err, topic }, 'cannot subscribe to a command topic; that command is unavailable');
      }
    }
  }

  function handleSet(r: LineDeviceRuntime, name: string, command: LineSetCommand, message: Message): void {
    const resultTopic = `${r.prefix}/${name}/set/result`;
    const answer = (body: Record<string, unknown>) => {
      const payload = JSON.stringify(body);
      r.publish(resultTopic, payload, { qos: r.config.qos, retain: false });
      const responseTopic = message.properties?.responseTopic;
      if (responseTopic) {
        r.publish(responseTopic, payload, { qos: r.config.qos, retain: false, properties: message.properties?.correlationData ? { correlationData: message.properties.correlationData } : undefined });
      }
    };
    // A retained command replayed on subscribe is stale: it must not be written into the device again.
    if (message.retain && replayingRetained) return;
    const built = buildSetCommand(message.payload.toString('utf8'), command);
    if (!built.ok) {
      r.stats.commandsRejected++;
      answer({ ok: false, error: built.error });
      return;
    }
    const replyPattern = command.replyPattern === undefined ? undefined : new RegExp(command.replyPattern);
    enqueue({
      device: r,
      text: built.text,
      reply: replyPattern ? (frame) => replyPattern.test(frame) : undefined,
      replyTimeoutMs: command.replyTimeoutMs,
      done(result) {
        if (result.ok) {
          r.stats.commandsWritten++;
          answer({ ok: true, value: built.value, ...(result.reply !== undefined ? { reply: result.reply } : {}) });
        } else {
          r.stats.commandsRejected++;
          answer({ ok: false, error: result.error });
        }
      },
    });
  }

  return {
    stats: () => ({
      open: link.isOpen,
      reopenCount: link.reopenCount,
      framing: { ...framer.stats },
      devices: Object.fromEntries(runtimes.map((r) => [r.config.id, { ...r.stats }])),
    }),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      for (const topic of subscriptions) client.unsubscribe(topic);
      for (const unsubscribe of stopUnknown) unsubscribe();
      current?.fail('adapter stopping');
      for (const tx of queue.splice(0)) tx.done({ ok: false, error: 'adapter stopping' });
      await Promise.all(runtimes.map((r) => r.stop()));
      await link.stop();
    },
  };
}
