// `in` rules: subscribe on the remote after every CONNACK and republish into the local broker.
// The remote gets its PUBACK only once the local broker has taken the message.
import type { MqttClient, IClientSubscribeOptions, IPublishPacket } from 'mqtt';
import type { LocalClient, PublishOptions, QoS } from '../broker/types.js';
import type { Logger } from '../log.js';
import type { BridgeConfig, BridgeRule } from './config.js';
import { remoteFilter, toLocalTopic, topicMatches } from './topics.js';
import { describeError } from './outbox.js';

export class Inbound {
  private readonly rules: BridgeRule[];
  received = 0;
  refused = 0;

  constructor(
    private readonly config: BridgeConfig,
    private readonly local: LocalClient,
    private readonly logger: Logger,
  ) {
    this.rules = config.rules.filter((r) => r.direction === 'in' || r.direction === 'both');
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  /** Installs the message handler on a fresh client; call before the connection completes. */
  install(client: MqttClient): void {
    client.handleMessage = (packet, done) => {
      this.deliver(packet).then(
        () => done(),
        (err: unknown) => {
          // The local broker refuses only for good (invalid topic, denied): acknowledge so the remote does not redeliver forever.
          this.refused += 1;
          this.logger.error({ topic: packet.topic, err: describeError(err) }, 'bridge: local broker refused a remote message; dropped');
          done();
        },
      );
    };
  }

  /** Subscribes every `in` rule on the remote; resolves once SUBACKs arrived (failures are logged per filter). */
  async subscribe(client: MqttClient): Promise<void> {
    if (this.rules.length === 0) return;
    const map: Record<string, IClientSubscribeOptions> = {};
    for (const rule of this.rules) {
      const opts: IClientSubscribeOptions = { qos: rule.qos };
      // No-local keeps `both` rules from bouncing our own messages back (MQTT 5 only).
      if (this.config.protocolVersion === 5) opts.nl = true;
      map[remoteFilter(rule)] = opts;
    }
    await new Promise<void>((resolve) => {
      client.subscribe(map, (err, granted) => {
        if (err) {
          this.logger.error({ err: describeError(err) }, 'bridge: remote subscription failed');
        }
        for (const g of granted ?? []) {
          if (g.qos === 128 || g.qos > 2) {
            this.logger.error({ filter: g.topic, code: g.qos }, 'bridge: remote refused the subscription (check the remote ACL)');
          }
        }
        resolve();
      });
    });
  }

  private async deliver(packet: IPublishPacket): Promise<void> {
    const rule = this.rules.find((r) => topicMatches(remoteFilter(r), packet.topic));
    if (rule === undefined) return;
    const topic = toLocalTopic(rule, packet.topic);
    if (topic === undefined) return;
    const options: PublishOptions = { qos: Math.min(packet.qos, rule.qos) as QoS, retain: packet.retain };
    const p = packet.properties;
    if (p !== undefined) {
      const props: NonNullable<PublishOptions['properties']> = {};
      if (p.payloadFormatIndicator !== undefined) props.payloadFormatIndicator = p.payloadFormatIndicator;
      if (p.messageExpiryInterval !== undefined) props.messageExpiryInterval = p.messageExpiryInterval;
      if (p.contentType !== undefined) props.contentType = p.contentType;
      if (p.responseTopic !== undefined) props.responseTopic = p.responseTopic;
      if (p.correlationData !== undefined) props.correlationData = p.correlationData;
      if (p.userProperties !== undefined) props.userProperties = p.userProperties;
      if (Object.keys(props).length > 0) options.properties = props;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    await this.local.publish(topic, payload, options);
    this.received += 1;
  }
}
