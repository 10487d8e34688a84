// Topic names and filters, MQTT 3.1.1 §4.7 / MQTT 5.0 §4.7.

const MAX_TOPIC_BYTES = 65535;

/** A topic name a PUBLISH may carry: non-empty, no wildcards, no U+0000 [MQTT-4.7.3-1], [MQTT-3.3.2-2], [MQTT-4.7.3-2]. */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0 || Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return false;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x2b /* + */ || c === 0x23 /* # */ || c === 0) return false;
    if (!isAllowedCodeUnit(topic, i)) return false;
  }
  return true;
}

/** A UTF-8 string field (client id, user name) as [MQTT-1.5.3-1, 1.5.3-2] allow it: well-formed, no U+0000. */
export function isWellFormedString(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 0 || !isAllowedCodeUnit(text, i)) return false;
  }
  return true;
}

/**
 * A topic filter: '#' only as the last level and alone in it [MQTT-4.7.1-2]; '+' alone in its level [MQTT-4.7.1-3].
 * Shared subscriptions ($share/group/filter) are validated by parseSharedFilter first.
 */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || Buffer.byteLength(filter) > MAX_TOPIC_BYTES) return false;
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0) return false;
    if (!isAllowedCodeUnit(filter, i)) return false;
    if (c === 0x23) {
      if (i !== filter.length - 1) return false;
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false;
    } else if (c === 0x2b) {
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false;
      if (i < filter.length - 1 && filter.charCodeAt(i + 1) !== 0x2f) return false;
    }
  }
  return true;
}

/**
 * Well-formed UTF-16 only: a lone surrogate cannot be encoded as UTF-8 [MQTT-1.5.4-1]. Ill-formed
 * bytes from the network are refused by the decoders (decode/reader.ts) before any string exists;
 * U+FFFD is a character like any other (Mosquitto accepts it), and refusing it here dropped stored
 * retained and queued messages of such topics at the next start (message-check.ts).
 */
function isAllowedCodeUnit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = s.charCodeAt(i + 1);
    return next >= 0xdc00 && next <= 0xdfff;
  }
  if (c >= 0xdc00 && c <= 0xdfff) {
    const prev = s.charCodeAt(i - 1);
    return prev >= 0xd800 && prev <= 0xdbff;
  }
  return true;
}

export interface SharedFilter {
  group: string;
  filter: string;
}

/**
 * `$share/{ShareName}/{filter}` [MQTT-4.8.2-1, 4.8.2-2]: the share name is non-empty and has no '/', '+' or '#'.
 * Returns null for a filter that is not shared, 'invalid' for a malformed shared one.
 */
export function parseSharedFilter(filter: string): SharedFilter | null | 'invalid' {
  if (!filter.startsWith('$share/')) return null;
  const rest = filter.slice(7);
  const slash = rest.indexOf('/');
  if (slash <= 0) return 'invalid';
  const group = rest.slice(0, slash);
  const inner = rest.slice(slash + 1);
  if (group.includes('+') || group.includes('#')) return 'invalid';
  if (!isValidTopicFilter(inner)) return 'invalid';
  return { group, filter: inner };
}

/** Whether a (non-shared) filter matches a topic name; '$' topics are not matched by a leading wildcard [MQTT-4.7.2-1]. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 /* $ */ && (filter.charCodeAt(0) === 0x2b || filter.charCodeAt(0) === 0x23)) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
