// The console's one connection: MQTT over WebSocket to the console's own /mqtt, as one client of the
// management API (requests on fieldgate/<id>/request/<action>, answers on a response topic of its own).
import { connectWebSocket } from './mqtt/client.js';

/** MQTT topic filter matching ('+' one level, '#' the rest). */
export function topicMatches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i > 0 || !topic.startsWith('$');
    if (i >= t.length) return false;
    if (f[i] === '+') {
      if (i === 0 && t[0].startsWith('$')) return false;
      continue;
    }
    if (f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function createLink({ gatewayId, path }) {
  const base = `fieldgate/${gatewayId}`;
  const clientId = `fieldgate-console-${Math.random().toString(16).slice(2, 10)}`;
  const replyTopic = `${base}/response/${clientId}`;
  const client = connectWebSocket(path, { protocolVersion: 5, clientId, clean: true, reconnectPeriod: 3000, keepalive: 60, connectTimeout: 10_000 });
  const pending = new Map();
  const handlers = new Map(); // filter → Set of callbacks
  const statusListeners = new Set();
  let status = 'connecting';
  let next = 1;
  const setStatus = (s) => {
    status = s;
    for (const l of statusListeners) l(s);
  };
  client.on('connect', () => setStatus('connected'));
  client.on('reconnect', () => setStatus('connecting'));
  client.on('offline', () => setStatus('offline'));
  client.on('close', () => { if (status === 'connected') setStatus('offline'); });
  client.on('error', () => setStatus('offline'));
  client.subscribe(replyTopic, { qos: 0 });
  client.on('message', (topic, payload, packet) => {
    const text = new TextDecoder().decode(payload);
    if (topic === replyTopic) {
      let answer;
      try { answer = JSON.parse(text); } catch { return; }
      let key = answer.transaction;
      // An unknown action is answered without the transaction: match it by the action it names.
      if (key === undefined) key = [...pending].find(([, p]) => answer.error?.includes(JSON.stringify(p.action)))?.[0];
      const waiting = pending.get(key);
      if (!waiting) return;
      pending.delete(key);
      clearTimeout(waiting.timer);
      waiting.resolve(answer);
      return;
    }
    for (const [filter, set] of handlers) {
      if (!topicMatches(filter, topic)) continue;
      for (const cb of set) cb(topic, text, packet);
    }
  });

  return {
    gatewayId,
    base,
    clientId,
    get status() { return status; },
    onStatus(cb) { statusListeners.add(cb); return () => statusListeners.delete(cb); },
    /** A management request; resolves to the answer ({status, data} or {status: 'error', error, errors}). */
    request(action, body = {}, timeoutMs = 15_000) {
      const transaction = `c${next++}`;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(transaction);
          resolve({ status: 'error', error: `no answer to ${action} within ${timeoutMs / 1000} s (is the gateway running, and may this user send ${base}/request/${action}?)`, errors: [] });
        }, timeoutMs);
        pending.set(transaction, { resolve, timer, action });
        client.publish(`${base}/request/${action}`, JSON.stringify({ ...body, transaction }), { qos: 0, properties: { responseTopic: replyTopic } });
      });
    },
    subscribe(filter, cb) {
      let set = handlers.get(filter);
      if (!set) {
        set = new Set();
        handlers.set(filter, set);
        client.subscribe(filter, { qos: 0 });
      }
      set.add(cb);
      return () => {
        set.delete(cb);
        if (set.size === 0 && handlers.get(filter) === set) {
          handlers.delete(filter);
          client.unsubscribe(filter);
        }
      };
    },
    publish(topic, text) {
      client.publish(topic, text, { qos: 1 });
    },
  };
}
