// The MQTT.js client of one connection attempt. For mqtt:// and mqtts:// the stream is built here
// (net / tls) and handed to MqttClient, because mqtt.connect() loads every transport it knows the first
// time it runs: `ws` (with http, https, zlib), `socks` and ip-address, ~3.5 MiB RSS that a gateway
// bridging over TCP or TLS never uses. ws:// and wss:// (and a SOCKS proxy from MQTTJS_SOCKS_PROXY)
// still go through mqtt.connect().
import net from 'node:net';
import tls from 'node:tls';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';

export function connectRemote(url: string, options: IClientOptions): MqttClient {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return mqtt.connect(url, options);
  }
  const protocol = parsed.protocol.replace(/:$/, '');
  const direct = (protocol === 'mqtt' || protocol === 'mqtts') && !process.env['MQTTJS_SOCKS_PROXY'];
  if (!direct) return mqtt.connect(url, options);

  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = parsed.port !== '' ? Number(parsed.port) : protocol === 'mqtts' ? 8883 : 1883;
  const opts: IClientOptions = { ...options, protocol, host, hostname: host, port };
  // As mqtt.connect(): credentials and ?clientId= in the URL count when the options do not say otherwise.
  if (parsed.username !== '' && opts.username === undefined) opts.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '' && opts.password === undefined) opts.password = decodeURIComponent(parsed.password);
  const clientIdParam = parsed.searchParams.get('clientId');
  if (clientIdParam !== null) opts.clientId = clientIdParam;
  if (opts.clean === false && !opts.clientId) throw new Error('Missing clientId for unclean clients');

  const build = protocol === 'mqtt' ? () => net.createConnection({ host, port }) : (client: MqttClient) => tlsStream(client, opts, host, port);
  const client = new MqttClient(build, opts);
  // mqtt.connect() adds the same no-op listener: an 'error' with no other listener must not throw.
  client.on('error', () => undefined);
  return client;
}

function tlsStream(client: MqttClient, opts: IClientOptions, host: string, port: number): tls.TLSSocket {
  const rejectUnauthorized = opts.rejectUnauthorized !== false;
  const socket = tls.connect({
    host,
    port,
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    rejectUnauthorized,
    ...(opts.servername !== undefined ? { servername: opts.servername } : net.isIP(host) === 0 ? { servername: host } : {}),
  } as tls.ConnectionOptions);
  // A handshake failure is the client's error (the bridge logs it); after the handshake errors are the stream's.
  const handshakeError = (err: Error) => {
    if (rejectUnauthorized) client.emit('error', err);
    socket.end();
  };
  socket.on('error', handshakeError);
  socket.on('secureConnect', () => {
    if (rejectUnauthorized && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
    else socket.removeListener('error', handshakeError);
  });
  return socket;
}
