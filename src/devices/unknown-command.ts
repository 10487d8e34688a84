// `<prefix>/<name>/set` for a name the device does not have: answered on `…/set/result` (and the
// v5 response topic) with an error, as a bad value is, instead of being silently ignored.

import type { Logger } from '../log.js';
import type { LocalClient, QoS } from '../broker/types.js';

export interface UnknownCommandOptions {
  deviceId: string;
  topicPrefix: string;
  /** The `…/set` topics the device does handle: those are left to their own handlers. */
  knownSetTopics: Iterable<string>;
  /** What may be set, for the error text. */
  writable: string[];
  qos: QoS;
  /** The device's logger (it already binds the device id). */
  logger: Logger;
}

/** The error a client gets; pure, for the message's wording. */
export function unknownCommandError(deviceId: string, name: string, writable: string[]): string {
  const choices = writable.length === 0 ? 'it has no writable points' : `writable: ${writable.join(', ')}`;
  return `device "${deviceId}" has no point "${name}" (${choices})`;
}

/** Subscribes `<prefix>/+/set`; returns the function that unsubscribes it. */
export function answerUnknownCommands(client: LocalClient, options: UnknownCommandOptions): () => void {
  const known = new Set(options.knownSetTopics);
  const filter = `${options.topicPrefix}/+/set`;
  // Retained messages are replayed on subscribe in this turn: old commands, not someone asking now.
  let replaying = true;
  setImmediate(() => (replaying = false));
  client.subscribe(filter, (message) => {
    if (known.has(message.topic) || (message.retain && replaying)) return;
    if (message.retain && message.payload.length === 0) return;
    const name = message.topic.slice(options.topicPrefix.length + 1, -'/set'.length);
    const error = unknownCommandError(options.deviceId, name, options.writable);
    options.logger.info({ topic: message.topic }, `command for an unknown point: ${error}`);
    const body = JSON.stringify({ ok: false, error });
    client.publish(`${message.topic}/result`, body, { qos: options.qos }).catch(() => undefined);
    const responseTopic = message.properties?.responseTopic;
    if (responseTopic) {
      const correlationData = message.properties?.correlationData;
      client.publish(responseTopic, body, { qos: options.qos, properties: correlationData ? { correlationData } : undefined }).catch(() => undefined);
    }
  }, { qos: 1, noLocal: true });
  return () => client.unsubscribe(filter);
}
