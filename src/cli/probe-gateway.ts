// `fieldgate probe --gateway URL --bus ID …`: the probe asked of a running gateway (its management
// API's bus/read), so the read queues with the gateway's polls on that bus instead of opening the port
// a second time (two masters on one RS-485 line garble each other's frames; many TCP gateways take one
// client only). The gateway id comes from its retained state/info unless --gateway-id names it.
import mqtt, { type MqttClient } from 'mqtt';
import type { ProbeResult } from '../devices/modbus/probe.js';

export interface GatewayProbeOptions {
  url: string;
  username?: string;
  password?: string;
  gatewayId?: string;
  bus: string;
  unitId: number;
  table: 'holding' | 'input';
  address: number;
  count: number;
  timeoutMs: number;
  /** How long to wait for the gateway at all. */
  waitMs?: number;
}

export async function probeThroughGateway(o: GatewayProbeOptions): Promise<ProbeResult> {
  const waitMs = o.waitMs ?? 10_000 + o.timeoutMs;
  const client = await connect(o, waitMs);
  try {
    const gatewayId = o.gatewayId ?? (await findGatewayId(client, Math.min(waitMs, 5000)));
    const responseTopic = `fieldgate/${gatewayId}/response/bus/read/${client.options.clientId}`;
    await client.subscribeAsync(responseTopic, { qos: 1 });
    const correlationData = Buffer.from(String(Math.random()));
    const answer = new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the gateway "${gatewayId}" did not answer within ${waitMs} ms (is its management API reachable, and may this user write fieldgate/${gatewayId}/request/bus/read and read ${responseTopic}?)`)), waitMs);
      client.on('message', (topic, payload, packet) => {
        if (topic !== responseTopic || !packet.properties?.correlationData?.equals(correlationData)) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(payload.toString('utf8')) as Record<string, any>);
        } catch (err) {
          reject(new Error(`the gateway's answer is not JSON: ${(err as Error).message}`));
        }
      });
    });
    const body = { bus: o.bus, unitId: o.unitId, table: o.table, address: o.address, count: o.count, timeoutMs: o.timeoutMs };
    await client.publishAsync(`fieldgate/${gatewayId}/request/bus/read`, JSON.stringify(body), { qos: 1, properties: { responseTopic, correlationData } });
    const reply = await answer;
    if (reply.status !== 'ok') throw new Error(`the gateway refused: ${String(reply.error)}`);
    return { registers: reply.data.registers, decodings: reply.data.decodings.map(({ scale: _scale, ...d }: Record<string, unknown>) => d) } as ProbeResult;
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

function connect(o: GatewayProbeOptions, waitMs: number): Promise<MqttClient> {
  const client = mqtt.connect(o.url, {
    protocolVersion: 5, reconnectPeriod: 0, connectTimeout: waitMs,
    clientId: `fieldgate-probe-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    username: o.username, password: o.password,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(new Error(`cannot connect to the gateway at ${o.url}: ${err.message}`));
    });
    client.once('close', () => reject(new Error(`cannot connect to the gateway at ${o.url}: connection closed`)));
  });
}

/** The gateway ids that announce themselves on the broker (retained fieldgate/<id>/state/info). */
async function findGatewayId(client: MqttClient, waitMs: number): Promise<string> {
  const ids = new Set<string>();
  const onMessage = (topic: string) => {
    const m = /^fieldgate\/([^/]+)\/state\/info$/.exec(topic);
    if (m) ids.add(m[1]!);
  };
  client.on('message', onMessage);
  await client.subscribeAsync('fieldgate/+/state/info', { qos: 0 });
  const deadline = Date.now() + waitMs;
  // Retained messages follow the SUBACK at once; a short settle collects them all.
  while (ids.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 100));
  client.off('message', onMessage);
  await client.unsubscribeAsync('fieldgate/+/state/info').catch(() => undefined);
  if (ids.size === 1) return [...ids][0]!;
  if (ids.size === 0) throw new Error('no gateway announces itself on that broker (no retained fieldgate/<id>/state/info readable by this user): give --gateway-id');
  throw new Error(`several gateways on that broker (${[...ids].join(', ')}): give --gateway-id`);
}
