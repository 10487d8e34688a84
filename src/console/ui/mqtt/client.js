// MQTT.js for the console, bundled from its compiled sources instead of its prebuilt browser file:
// only the client and the browser WebSocket transport (no URL parser, TCP/TLS, WeChat/Alipay
// transports, Node polyfills beyond buffer/events/process, or debug logging), which is most of the
// console's asset budget saved. scripts/build-console.mjs maps the rest (see ./stubs/).
import MqttClient from 'mqtt-build/lib/client.js';
import { browserStreamBuilder } from 'mqtt-build/lib/connect/ws.js';

/** Connects to `ws(s)://<this page's host><path>`; `options` as MQTT.js's connect() takes them. */
export function connectWebSocket(path, options) {
  const secure = location.protocol === 'https:';
  const opts = {
    ...options,
    protocol: secure ? 'wss' : 'ws',
    hostname: location.hostname,
    port: Number(location.port) || (secure ? 443 : 80),
    path,
  };
  const client = new (MqttClient.default ?? MqttClient)((c) => browserStreamBuilder(c, opts), opts);
  client.on('error', () => {});
  return client;
}
