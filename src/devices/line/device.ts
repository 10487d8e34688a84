// One line device: parses the frames routed to it, publishes its mapped fields and its availability.
import type { Logger } from '../../log.js';
import type { LocalClient, PublishOptions } from '../../broker/types.js';
import { createLineParser, type LineParser } from './parsers.js';
import { lineDeviceTopicPrefix, type LineDevice } from './schema.js';
import { convertFieldValue, payloadOf } from './values.js';

export interface LineDeviceStats {
  /** What `<prefix>/availability` last said. */
  online: boolean;
  /** Frames the parser accepted. */
  acceptedFrames: number;
  /** Frames the parser rejected for any reason (including checksum errors). */
  rejectedFrames: number;
  /** NMEA sentences dropped for a wrong or missing checksum. */
  checksumErrors: number;
  /** Field values that could not be converted to their declared type. */
  valueErrors: number;
  publishedValues: number;
  pollsSent: number;
  pollTimeouts: number;
  commandsWritten: number;
  commandsRejected: number;
}

export class LineDeviceRuntime {
  readonly prefix: string;
  readonly stats: LineDeviceStats = {
    online: false,
    acceptedFrames: 0,
    rejectedFrames: 0,
    checksumErrors: 0,
    valueErrors: 0,
    publishedValues: 0,
    pollsSent: 0,
    pollTimeouts: 0,
    commandsWritten: 0,
    commandsRejected: 0,
  };
  private readonly parse: LineParser;
  private readonly valueOptions: PublishOptions;
  private online: boolean | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private missedReplies = 0;
  private stopped = false;

  constructor(
    readonly config: LineDevice,
    private readonly client: LocalClient,
    private readonly logger: Logger,
  ) {
    this.prefix = lineDeviceTopicPrefix(config);
    this.parse = createLineParser(config.parser);
    this.valueOptions = { qos: config.qos, retain: config.retain };
  }

  /** Whether it waits for replies to its own poll command instead of listening to everything. */
  get polled(): boolean {
    return this.config.poll !== undefined;
  }

  /** Parses a frame; on success publishes the mapped fields and returns true. */
  accept(frame: string): boolean {
    if (this.stopped) return false;
    const outcome = this.parse(frame);
    if (!outcome.ok) {
      this.stats.rejectedFrames++;
      if (outcome.reason === 'checksum' || outcome.reason === 'no-checksum') this.stats.checksumErrors++;
      this.logger.debug({ reason: outcome.reason, detail: outcome.detail, frame: frame.slice(0, 120) }, 'line rejected');
      return false;
    }
    this.stats.acceptedFrames++;
    this.missedReplies = 0;
    this.setOnline(true);
    this.armStaleTimer();
    for (const [name, field] of Object.entries(this.config.fields)) {
      const raw = outcome.fields[name];
      if (raw === undefined) continue;
      const converted = convertFieldValue(raw, field);
      if (!converted.ok) {
        this.stats.valueErrors++;
        this.logger.debug({ field: name, error: converted.error }, 'value not converted');
        continue;
      }
      const options: PublishOptions = field.unit === undefined ? this.valueOptions : { ...this.valueOptions, properties: { userProperties: { unit: field.unit } } };
      this.stats.publishedValues++;
      this.publish(`${this.prefix}/${field.topic ?? name}`, payloadOf(converted.value), options);
    }
    return true;
  }

  /** Called when the port opened: a device that must prove itself stays offline until it does. */
  portOpened(): void {
    if (this.config.staleAfterMs === undefined && !this.polled) this.setOnline(true);
    else this.armStaleTimer();
  }

  portLost(): void {
    this.clearStaleTimer();
    this.setOnline(false);
  }

  /** Polled and has missed enough replies in a row to be considered gone. */
  get unanswering(): boolean {
    const limit = this.config.poll?.offlineAfterMissedReplies ?? 1;
    return this.missedReplies >= limit;
  }

  pollTimedOut(): void {
    this.stats.pollTimeouts++;
    this.missedReplies++;
    if (this.unanswering) this.setOnline(false);
  }

  setOnline(online: boolean): void {
    if (this.online === online || this.stopped) return;
    this.online = online;
    this.stats.online = online;
    this.logger.info({ online }, online ? 'line device online' : 'line device offline');
    this.publish(`${this.prefix}/availability`, online ? 'online' : 'offline', { qos: this.config.qos, retain: true });
  }

  /** Publishes offline and stops publishing. */
  async stop(): Promise<void> {
    this.clearStaleTimer();
    if (this.online !== false) {
      this.online = false;
      this.stats.online = false;
      await this.client.publish(`${this.prefix}/availability`, 'offline', { qos: this.config.qos, retain: true }).catch(() => undefined);
    }
    this.stopped = true;
  }

  publish(topic: string, payload: string, options: PublishOptions): void {
    // Readings have no publisher waiting for a PUBACK: they may wait in memory for the cloud (see Message.holdable).
    this.client.publish(topic, payload, { ...options, holdable: true }).catch((err: unknown) => {
      this.logger.warn({ topic, err }, 'publish failed');
    });
  }

  private armStaleTimer(): void {
    const after = this.config.staleAfterMs;
    if (after === undefined) return;
    this.clearStaleTimer();
    this.staleTimer = setTimeout(() => {
      this.staleTimer = undefined;
      this.logger.warn({ staleAfterMs: after }, 'no line from the device in time');
      this.setOnline(false);
    }, after);
    this.staleTimer.unref?.();
  }

  private clearStaleTimer(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
  }
}
