// Checks an application message that did not come through a decoder — rows loaded from SQLite
// (written by any earlier version), messages from in-process clients and the bridge — against what
// a PUBLISH may carry, so that nothing the broker cannot encode is ever routed or stored.
// An older version stored user properties whose value was null (issue 8, defect 2): such a row must
// be dropped, not handed to every v5 subscriber.

import { isValidTopicName } from './topics.js';
import type { Message, MessageProperties } from './types.js';

const MAX_STRING_BYTES = 65535;
const MAX_UINT32 = 0xffffffff;
const MAX_SUBSCRIPTION_ID = 268_435_455;

type PropertyCheck = (value: unknown) => string | null;

const PROPERTY_CHECKS: Record<keyof MessageProperties, PropertyCheck> = {
  payloadFormatIndicator: (v) => (typeof v === 'boolean' ? null : 'payloadFormatIndicator is not a boolean'),
  messageExpiryInterval: (v) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_UINT32 ? null : 'messageExpiryInterval is not a four-byte integer'),
  contentType: (v) => stringProblem(v, 'contentType'),
  responseTopic: (v) => stringProblem(v, 'responseTopic') ?? (isValidTopicName(v as string) ? null : 'responseTopic is not a topic name'),
  correlationData: (v) => (Buffer.isBuffer(v) && v.length <= MAX_STRING_BYTES ? null : 'correlationData is not binary data of at most 65,535 bytes'),
  userProperties: userPropertiesProblem,
};

/** What is wrong with the message, or null when it can be routed and encoded as it is. */
export function messageProblem(message: Message): string | null {
  if (typeof message.topic !== 'string' || !isValidTopicName(message.topic)) return `invalid topic name ${JSON.stringify(message.topic)}`;
  if (!Buffer.isBuffer(message.payload)) return 'payload is not binary';
  if (message.qos !== 0 && message.qos !== 1 && message.qos !== 2) return `QoS ${String(message.qos)}`;
  if (message.expiresAt !== undefined && !Number.isFinite(message.expiresAt)) return 'expiry is not a number';
  return message.properties === undefined ? null : propertiesProblem(message.properties);
}

export function propertiesProblem(properties: unknown): string | null {
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) return 'properties are not an object';
  for (const [name, value] of Object.entries(properties)) {
    if (value === undefined) continue;
    const check = PROPERTY_CHECKS[name as keyof MessageProperties] as PropertyCheck | undefined;
    if (check === undefined) return `property ${name} does not travel with a message`;
    const problem = check(value);
    if (problem !== null) return problem;
  }
  return null;
}

/** Subscription identifiers stored with a queued delivery. */
export function subscriptionIdsProblem(ids: unknown): string | null {
  if (ids === undefined) return null;
  if (!Array.isArray(ids) || ids.length === 0) return 'subscription identifiers are not a list';
  for (const id of ids) if (!Number.isInteger(id) || id < 1 || id > MAX_SUBSCRIPTION_ID) return `subscription identifier ${String(id)}`;
  return null;
}

function userPropertiesProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'userProperties is not an object';
  for (const [name, entry] of Object.entries(value)) {
    const nameProblem = stringProblem(name, 'user property name');
    if (nameProblem !== null) return nameProblem;
    const values: unknown[] = Array.isArray(entry) ? entry : [entry];
    if (values.length === 0) return `user property ${JSON.stringify(name)} has no value`;
    for (const v of values) {
      const problem = stringProblem(v, `user property ${JSON.stringify(name)}`);
      if (problem !== null) return problem;
    }
  }
  return null;
}

/** A UTF-8 Encoded String field: a string, well-formed (no lone surrogate), no U+0000, at most 65,535 bytes. */
function stringProblem(value: unknown, what: string): string | null {
  if (typeof value !== 'string') return `${what} is ${value === null ? 'null' : `not a string (${typeof value})`}`;
  if (value.includes('\u0000')) return `${what} contains U+0000`;
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) return `${what} is not well-formed Unicode`;
  if (Buffer.byteLength(value) > MAX_STRING_BYTES) return `${what} is longer than 65,535 bytes`;
  return null;
}
