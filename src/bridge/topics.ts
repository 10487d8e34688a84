// Topic remapping between the local broker and the remote, Mosquitto style:
// local topic = localPrefix + rest, remote topic = remotePrefix + rest.
import type { BridgeRule } from './config.js';

export function localFilter(rule: BridgeRule): string {
  return rule.localPrefix + rule.filter;
}

export function remoteFilter(rule: BridgeRule): string {
  return rule.remotePrefix + rule.filter;
}

/** Maps a local topic to the remote one; undefined if the topic lies outside the rule's local prefix. */
export function toRemoteTopic(rule: BridgeRule, localTopic: string): string | undefined {
  if (!localTopic.startsWith(rule.localPrefix)) return undefined;
  return rule.remotePrefix + localTopic.slice(rule.localPrefix.length);
}

export function toLocalTopic(rule: BridgeRule, remoteTopic: string): string | undefined {
  if (!remoteTopic.startsWith(rule.remotePrefix)) return undefined;
  return rule.localPrefix + remoteTopic.slice(rule.remotePrefix.length);
}

/** MQTT topic filter matching (topics starting with '$' do not match leading wildcards). */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('#') || filter.startsWith('+'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
