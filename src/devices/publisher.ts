// Publishing device readings through the broker's in-process client: retained per-point values,
// on change with a deadband and a maximum silence, an optional JSON state message, availability.
import type { Logger } from '../log.js';
import type { LocalClient, MessageProperties, QoS } from '../broker/types.js';
import { formatValue, jsonValue, type PointValue } from './modbus/value.js';

export interface PublisherOptions {
  topicPrefix: string;
  qos: QoS;
  retain: boolean;
  onChange: boolean;
  maxSilenceMs: number;
  state: boolean;
}

interface Last {
  value: PointValue;
  payload: string;
  at: number;
}

export class DevicePublisher {
  private readonly last = new Map<string, Last>();
  private readonly errors = new Map<string, string>();
  private availability: boolean | undefined;
  private dirty = false;
  published = 0;

  constructor(
    private readonly client: LocalClient,
    private readonly options: PublisherOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Publishes a point's value if it changed beyond the deadband, the silence ran out, or `force`.
   * A unit travels as the MQTT 5 user property "unit", as for line devices.
   */
  offer(point: { name: string; topic: string; deadband: number; unit?: string }, value: PointValue, now = Date.now(), force = false): void {
    const { name, topic, deadband } = point;
    const previous = this.last.get(name);
    const payload = formatValue(value);
    const due =
      force ||
      !this.options.onChange ||
      previous === undefined ||
      changed(previous, value, payload, deadband) ||
      (this.options.maxSilenceMs > 0 && now - previous.at >= this.options.maxSilenceMs);
    if (this.errors.delete(name)) this.send(`${topic}/error`, '', true);
    if (!due) return;
    this.last.set(name, { value, payload, at: now });
    this.dirty = true;
    this.send(topic, payload, this.options.retain, point.unit === undefined ? undefined : { userProperties: { unit: point.unit } });
  }

  /** A Modbus exception on one point: reported on `<point>/error` (retained until the point reads again). */
  pointError(name: string, topic: string, message: string): void {
    if (this.errors.get(name) === message) return;
    this.errors.set(name, message);
    this.send(`${topic}/error`, message, true);
  }

  pointErrors(): Record<string, string> {
    return Object.fromEntries(this.errors);
  }

  setAvailability(online: boolean): void {
    if (this.availability === online) return;
    this.availability = online;
    this.send(`${this.options.topicPrefix}/availability`, online ? 'online' : 'offline', true);
  }

  get isOnline(): boolean {
    return this.availability === true;
  }

  /** After a poll cycle: one JSON message with every point's latest value, if anything was published. */
  flushState(now = Date.now()): void {
    if (!this.options.state || !this.dirty) return;
    this.dirty = false;
    const values: Record<string, number | boolean | string | null> = {};
    for (const [name, last] of this.last) values[name] = jsonValue(last.value);
    this.send(this.options.topicPrefix, JSON.stringify({ timestamp: new Date(now).toISOString(), values }), this.options.retain);
  }

  async publishNow(topic: string, payload: string, retain: boolean, properties?: MessageProperties): Promise<void> {
    this.published++;
    // Readings have no publisher waiting for a PUBACK: they may wait in memory for the cloud (see Message.holdable).
    await this.client.publish(topic, payload, { qos: this.options.qos, retain, holdable: true, ...(properties ? { properties } : {}) });
  }

  send(topic: string, payload: string, retain: boolean, properties?: MessageProperties): void {
    this.publishNow(topic, payload, retain, properties).catch((err: unknown) => this.logger.warn({ topic, err }, 'publish failed'));
  }
}

function changed(previous: Last, value: PointValue, payload: string, deadband: number): boolean {
  if (typeof value === 'number' && typeof previous.value === 'number') {
    if (Number.isNaN(value) || Number.isNaN(previous.value)) return Number.isNaN(value) !== Number.isNaN(previous.value);
    return deadband > 0 ? Math.abs(value - previous.value) >= deadband : value !== previous.value;
  }
  return payload !== previous.payload;
}
