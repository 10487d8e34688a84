// MQTT 5.0 properties (§2.2.2): the spec's table of identifiers, value types and the packets that
// may carry each one, and a reader that applies it. Names are mqtt-packet's, so handlers see the
// objects they always saw. Rules, as in the spec and Mosquitto's property_mosq.c:
// - an unknown identifier, a length running past the block, or a block not consumed exactly: malformed (0x81);
// - a property the packet may not carry, or given twice (only User Property repeats): protocol error (0x82);
// - a value out of its range (a 0/1 byte that is neither, Receive Maximum 0, …): protocol error.

import { isValidTopicName } from '../topics.js';
import { malformed, protocolViolation } from './errors.js';
import type { PacketReader } from './reader.js';

/** Where a property block sits: a packet type, or the will properties inside CONNECT. */
export type PropertyContext =
  | 'connect' | 'will' | 'connack' | 'publish' | 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'
  | 'subscribe' | 'suback' | 'unsubscribe' | 'unsuback' | 'disconnect' | 'auth';

export type PropertyType = 'boolean-byte' | 'byte' | 'int16' | 'int32' | 'varint' | 'string' | 'binary' | 'pair';

export interface PropertyRule {
  id: number;
  /** mqtt-packet's property name. */
  name: string;
  type: PropertyType;
  /** Packets that may carry it (MQTT 5.0 §2.2.2.2, Table 2-4). */
  contexts: readonly PropertyContext[];
  /** Smallest value allowed, for integers whose 0 is a protocol error. */
  min?: number;
  /** Reason code for a value out of range (default 0x82 protocol error). */
  rangeReason?: number;
  /** Extra value check; returns what is wrong, or null. */
  check?: (value: string) => string | null;
}

const ACKS: PropertyContext[] = ['puback', 'pubrec', 'pubrel', 'pubcomp'];
const ALL: PropertyContext[] = ['connect', 'will', 'connack', 'publish', ...ACKS, 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'disconnect', 'auth'];

export const PROPERTY_RULES: readonly PropertyRule[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: 'boolean-byte', contexts: ['publish', 'will'] },
  { id: 0x02, name: 'messageExpiryInterval', type: 'int32', contexts: ['publish', 'will'] },
  { id: 0x03, name: 'contentType', type: 'string', contexts: ['publish', 'will'] },
  // [MQTT-3.3.2-14]: a Response Topic is a topic name, no wildcards.
  { id: 0x08, name: 'responseTopic', type: 'string', contexts: ['publish', 'will'], check: (v) => (isValidTopicName(v) ? null : 'Response Topic is not a valid topic name') },
  { id: 0x09, name: 'correlationData', type: 'binary', contexts: ['publish', 'will'] },
  { id: 0x0b, name: 'subscriptionIdentifier', type: 'varint', contexts: ['publish', 'subscribe'], min: 1 },
  { id: 0x11, name: 'sessionExpiryInterval', type: 'int32', contexts: ['connect', 'connack', 'disconnect'] },
  { id: 0x12, name: 'assignedClientIdentifier', type: 'string', contexts: ['connack'] },
  { id: 0x13, name: 'serverKeepAlive', type: 'int16', contexts: ['connack'] },
  { id: 0x15, name: 'authenticationMethod', type: 'string', contexts: ['connect', 'connack', 'auth'] },
  { id: 0x16, name: 'authenticationData', type: 'binary', contexts: ['connect', 'connack', 'auth'] },
  { id: 0x17, name: 'requestProblemInformation', type: 'boolean-byte', contexts: ['connect'] },
  { id: 0x18, name: 'willDelayInterval', type: 'int32', contexts: ['will'] },
  { id: 0x19, name: 'requestResponseInformation', type: 'boolean-byte', contexts: ['connect'] },
  { id: 0x1a, name: 'responseInformation', type: 'string', contexts: ['connack'] },
  { id: 0x1c, name: 'serverReference', type: 'string', contexts: ['connack', 'disconnect'] },
  { id: 0x1f, name: 'reasonString', type: 'string', contexts: ['connack', ...ACKS, 'suback', 'unsuback', 'disconnect', 'auth'] },
  { id: 0x21, name: 'receiveMaximum', type: 'int16', contexts: ['connect', 'connack'], min: 1 },
  { id: 0x22, name: 'topicAliasMaximum', type: 'int16', contexts: ['connect', 'connack'] },
  // §3.3.2.3.4: Topic Alias 0 is answered with 0x94 Topic Alias invalid.
  { id: 0x23, name: 'topicAlias', type: 'int16', contexts: ['publish'], min: 1, rangeReason: 0x94 },
  { id: 0x24, name: 'maximumQoS', type: 'byte', contexts: ['connack'] },
  { id: 0x25, name: 'retainAvailable', type: 'boolean-byte', contexts: ['connack'] },
  { id: 0x26, name: 'userProperties', type: 'pair', contexts: ALL },
  { id: 0x27, name: 'maximumPacketSize', type: 'int32', contexts: ['connect', 'connack'], min: 1 },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: 'boolean-byte', contexts: ['connack'] },
  { id: 0x29, name: 'subscriptionIdentifiersAvailable', type: 'boolean-byte', contexts: ['connack'] },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: 'boolean-byte', contexts: ['connack'] },
];

/** Properties the spec allows in a packet type but not from a client [MQTT-3.3.4-6]. */
export const NOT_FROM_CLIENTS: Partial<Record<PropertyContext, readonly string[]>> = {
  publish: ['subscriptionIdentifier'],
};

const byId: (PropertyRule | undefined)[] = [];
for (const rule of PROPERTY_RULES) byId[rule.id] = rule;

export type Properties = Record<string, unknown>;

/**
 * Reads a property block (its Variable Byte Integer length, then the properties) sent by a client.
 * Returns undefined for an empty block, as mqtt-packet does.
 */
export function readProperties(reader: PacketReader, context: PropertyContext): Properties | undefined {
  const length = reader.varint('property length');
  if (length === 0) return undefined;
  if (length > reader.remaining) throw malformed(`${reader.what}: property length ${length} runs past the end of the packet`);
  const outerLimit = reader.limit;
  const end = reader.pos + length;
  reader.limit = end;
  const properties: Properties = {};
  const forbidden = NOT_FROM_CLIENTS[context];
  while (reader.pos < end) {
    const id = reader.byte('property identifier');
    const rule = byId[id];
    if (rule === undefined) throw malformed(`${reader.what}: unknown property identifier 0x${id.toString(16).padStart(2, '0')}`);
    if (!rule.contexts.includes(context) || (forbidden !== undefined && forbidden.includes(rule.name))) {
      throw protocolViolation(`${reader.what}: property ${rule.name} (0x${id.toString(16).padStart(2, '0')}) is not allowed here`);
    }
    if (rule.type === 'pair') {
      const name = reader.string('user property name');
      const value = reader.string('user property value');
      // No prototype: a user property may be called "__proto__".
      const users = (properties.userProperties ??= Object.create(null)) as Record<string, string | string[]>;
      const existing = users[name];
      if (existing === undefined) users[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else users[name] = [existing, value];
      continue;
    }
    if (properties[rule.name] !== undefined) throw protocolViolation(`${reader.what}: property ${rule.name} given more than once`);
    properties[rule.name] = readValue(reader, rule);
  }
  reader.limit = outerLimit;
  return properties;
}

function readValue(reader: PacketReader, rule: PropertyRule): unknown {
  switch (rule.type) {
    case 'boolean-byte': {
      const value = reader.byte(rule.name);
      if (value > 1) throw protocolViolation(`${reader.what}: ${rule.name} must be 0 or 1, got ${value}`);
      return value === 1;
    }
    case 'byte': return inRange(reader, rule, reader.byte(rule.name));
    case 'int16': return inRange(reader, rule, reader.uint16(rule.name));
    case 'int32': return inRange(reader, rule, reader.uint32(rule.name));
    case 'varint': return inRange(reader, rule, reader.varint(rule.name));
    case 'binary': return reader.binary(rule.name);
    case 'string': {
      const value = reader.string(rule.name);
      const problem = rule.check?.(value) ?? null;
      if (problem !== null) throw protocolViolation(`${reader.what}: ${problem}`);
      return value;
    }
    case 'pair': throw new Error('user properties are read by readProperties');
  }
}

function inRange(reader: PacketReader, rule: PropertyRule, value: number): number {
  if (rule.min !== undefined && value < rule.min) {
    throw protocolViolation(`${reader.what}: ${rule.name} ${value} is not allowed (at least ${rule.min})`, rule.rangeReason);
  }
  return value;
}
