// What MQTT 5.0 allows: property types (§2.2.2.2) and which properties each packet may carry.

export type PropertyType = 'byte' | 'u16' | 'u32' | 'vint' | 'string' | 'binary' | 'pair';

export const PROPERTY_TYPES: Record<number, PropertyType> = {
  0x01: 'byte', 0x02: 'u32', 0x03: 'string', 0x08: 'string', 0x09: 'binary', 0x0b: 'vint',
  0x11: 'u32', 0x12: 'string', 0x13: 'u16', 0x15: 'string', 0x16: 'binary', 0x17: 'byte',
  0x18: 'u32', 0x19: 'byte', 0x1a: 'string', 0x1c: 'string', 0x1f: 'string', 0x21: 'u16',
  0x22: 'u16', 0x23: 'u16', 0x24: 'byte', 0x25: 'byte', 0x26: 'pair', 0x27: 'u32',
  0x28: 'byte', 0x29: 'byte', 0x2a: 'byte',
};

/** Client → server. */
export const CLIENT_ALLOWED: Record<string, readonly number[]> = {
  connect: [0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
  will: [0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
  publish: [0x01, 0x02, 0x03, 0x08, 0x09, 0x23, 0x26],
  puback: [0x1f, 0x26],
  pubrec: [0x1f, 0x26],
  pubrel: [0x1f, 0x26],
  pubcomp: [0x1f, 0x26],
  subscribe: [0x0b, 0x26],
  unsubscribe: [0x26],
  disconnect: [0x11, 0x1c, 0x1f, 0x26],
  auth: [0x15, 0x16, 0x1f, 0x26],
};

/** Server → client, by mqtt-packet's property names (what the oracle sees after parsing). */
export const SERVER_ALLOWED: Record<string, readonly string[]> = {
  connack: [
    'sessionExpiryInterval', 'assignedClientIdentifier', 'serverKeepAlive', 'authenticationMethod',
    'authenticationData', 'responseInformation', 'serverReference', 'reasonString', 'receiveMaximum',
    'topicAliasMaximum', 'maximumQoS', 'retainAvailable', 'userProperties', 'maximumPacketSize',
    'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable',
  ],
  publish: [
    'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData',
    'subscriptionIdentifier', 'topicAlias', 'userProperties',
  ],
  puback: ['reasonString', 'userProperties'],
  pubrec: ['reasonString', 'userProperties'],
  pubrel: ['reasonString', 'userProperties'],
  pubcomp: ['reasonString', 'userProperties'],
  suback: ['reasonString', 'userProperties'],
  unsuback: ['reasonString', 'userProperties'],
  disconnect: ['sessionExpiryInterval', 'serverReference', 'reasonString', 'userProperties'],
  auth: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties'],
};

/** Properties that may appear more than once in a packet. */
export const REPEATABLE = new Set([0x26]);

export const ALL_PROPERTY_IDS = Object.keys(PROPERTY_TYPES).map(Number);

export const PACKET_TYPES = {
  connect: 1, connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7, subscribe: 8,
  suback: 9, unsubscribe: 10, unsuback: 11, pingreq: 12, pingresp: 13, disconnect: 14, auth: 15,
} as const;

/** Reason codes a client may send, per packet (MQTT 5.0 §3.4.2.1 … §3.15.2.1). */
export const CLIENT_REASONS: Record<string, readonly number[]> = {
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  disconnect: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x98, 0x99, 0x9a],
  auth: [0x00, 0x18, 0x19],
};
