// MQTT.js peers for the management API's tests: a v5 request with its own Response Topic and
// Correlation Data, answered or not (a refused PUBLISH, an unreadable response topic).
import mqtt, { type MqttClient } from 'mqtt';

export interface Answer {
  status: 'ok' | 'error';
  data?: any;
  error?: string;
  errors?: { path: string; message: string; text: string; file?: string }[];
  transaction?: string | number;
}

export async function connectClient(url: string, options: mqtt.IClientOptions, track: MqttClient[]): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 5, ...options });
  track.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/** Publishes a v5 request; resolves with the answer, or with `{ refused }` when the broker refused the PUBLISH, or undefined after `ms` of silence. */
export async function ask(
  client: MqttClient, ns: string, action: string, body: unknown = {},
  options: { responseTopic?: string; ms?: number } = {},
): Promise<Answer & { refused?: string }> {
  const responseTopic = options.responseTopic ?? `${client.options.username}/replies/${client.options.clientId}`;
  const correlationData = Buffer.from(`c-${Math.random()}`);
  // A response topic the user may not read is refused (SUBACK 0x87): the request goes out all the same.
  await client.subscribeAsync(responseTopic, { qos: 1 }).catch(() => undefined);
  let onMessage: ((topic: string, payload: Buffer, packet: mqtt.IPublishPacket) => void) | undefined;
  const answer = new Promise<Answer>((resolve) => {
    onMessage = (topic, payload, packet) => {
      if (topic !== responseTopic || !packet.properties?.correlationData?.equals(correlationData)) return;
      resolve(JSON.parse(payload.toString()) as Answer);
    };
    client.on('message', onMessage);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    try {
      await client.publishAsync(`${ns}/request/${action}`, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1, properties: { responseTopic, correlationData } });
    } catch (err) {
      return { status: 'error', refused: (err as Error).message };
    }
    const ms = options.ms ?? 20_000;
    return await Promise.race([answer, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer to ${action} within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
    client.off('message', onMessage!);
  }
}

/** Like ask, but expects silence: resolves true when nothing came within `ms`. */
export async function silent(client: MqttClient, ns: string, action: string, body: unknown, responseTopic: string, ms = 1500): Promise<boolean> {
  try {
    const a = await ask(client, ns, action, body, { responseTopic, ms });
    return a.refused !== undefined;
  } catch {
    return true;
  }
}
