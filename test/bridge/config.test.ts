import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bridgeConfigSchema, bridgeListSchema, parseBridgeConfig, formatConfigIssues } from '../../src/bridge/config.js';
import { connectOptions, describeConnectError } from '../../src/bridge/connection.js';
import { Backoff } from '../../src/bridge/backoff.js';
import { toLocalTopic, toRemoteTopic, topicMatches } from '../../src/bridge/topics.js';

const minimal = { name: 'cloud', url: 'mqtts://cloud.example.com:8883', clientId: 'gw-1', rules: [{ direction: 'out', filter: 'sensors/#' }] };

describe('bridge config', () => {
  it('fills defaults', () => {
    const c = parseBridgeConfig(minimal);
    expect(c).toMatchObject({ protocolVersion: 4, keepaliveSeconds: 60, cleanSession: true, inflightWindow: 1024 });
    expect(c.outbox).toEqual({ maxRows: 1_000_000, maxBytes: 512 * 1024 * 1024, maxAgeSeconds: 604800, policy: 'drop-oldest' });
    expect(c.rules[0]).toEqual({ direction: 'out', filter: 'sensors/#', localPrefix: '', remotePrefix: '', qos: 1, queueQos0: true });
  });

  it('names the JSON path, what was expected and what it got', () => {
    const bad = { ...minimal, url: 'http://x', keepaliveSeconds: '60', rules: [{ direction: 'up', filter: 'a/#/b' }], outbox: { policy: 'drop-all' } };
    let message = '';
    try {
      parseBridgeConfig(bad, ['bridges', 0]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^invalid bridge configuration:/);
    expect(message).toMatch(/bridges\[0\]\.url: must be a URL starting with mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
    expect(message).toMatch(/bridges\[0\]\.keepaliveSeconds: .*expected number, received string/);
    expect(message).toMatch(/bridges\[0\]\.rules\[0\]\.direction: .*"out".*"in".*"both"/);
    expect(message).toMatch(/bridges\[0\]\.rules\[0\]\.filter: must be a valid MQTT topic filter/);
    expect(message).toMatch(/bridges\[0\]\.outbox\.policy: .*"drop-oldest".*"drop-newest"/);
  });

  it('rejects unknown keys, half a client certificate and TLS files on a plain URL', () => {
    const r1 = bridgeConfigSchema.safeParse({ ...minimal, urll: 'x' });
    expect(r1.success).toBe(false);
    expect(formatConfigIssues(r1.error!)).toMatch(/urll/);
    const r2 = bridgeConfigSchema.safeParse({ ...minimal, tls: { cert: '/c.pem' } });
    expect(formatConfigIssues(r2.error!)).toMatch(/tls: cert and key go together/);
    const r3 = bridgeConfigSchema.safeParse({ ...minimal, url: 'mqtt://h', tls: { ca: '/ca.pem' } });
    expect(formatConfigIssues(r3.error!)).toMatch(/url: TLS files are configured but the URL is not mqtts:\/\/ or wss:\/\//);
  });

  it('works inside a gateway config as z.array(bridgeConfigSchema)', () => {
    const gateway = z.object({ bridges: z.array(bridgeConfigSchema) });
    const r = gateway.safeParse({ bridges: [minimal, { ...minimal, name: 'bad name' }] });
    expect(r.success).toBe(false);
    expect(formatConfigIssues(r.error!)).toMatch(/bridges\[1\]\.name: must be 1-64 characters/);
  });
});

describe('bridge list', () => {
  it('refuses two bridges with the same name, naming both positions', () => {
    const r = z.object({ bridges: bridgeListSchema }).safeParse({ bridges: [minimal, { ...minimal, clientId: 'gw-2' }] });
    expect(r.success).toBe(false);
    expect(formatConfigIssues(r.error!)).toMatch(/bridges\[1\]\.name: duplicate bridge name "cloud" \(also at \[0\]\)/);
  });
});

describe('connection options', () => {
  it('sets an explicit session expiry for MQTT 5, a retained last will, and leaves reconnects to the bridge', () => {
    const o = connectOptions(parseBridgeConfig({ ...minimal, protocolVersion: 5, cleanSession: false, statusTopic: 'fleet/gw-1/status' }));
    expect(o.properties).toEqual({ sessionExpiryInterval: 604800 });
    expect(o.will).toMatchObject({ topic: 'fleet/gw-1/status', qos: 1, retain: true });
    expect(o.will!.payload.toString()).toBe('offline');
    expect(o).toMatchObject({ reconnectPeriod: 0, queueQoSZero: false, resubscribe: false, clean: false });
    expect(connectOptions(parseBridgeConfig({ ...minimal, protocolVersion: 5 })).properties).toEqual({ sessionExpiryInterval: 0 });
  });

  it('names unreadable TLS files', () => {
    const c = parseBridgeConfig({ ...minimal, tls: { ca: '/nonexistent/ca.pem' } });
    expect(() => connectOptions(c)).toThrow('cannot read tls.ca file "/nonexistent/ca.pem" (ENOENT)');
  });

  it('describes refused connections by CONNACK code', () => {
    const err = Object.assign(new Error('Connection refused: Not authorized'), { code: 0x87 });
    expect(describeConnectError(err, 5)).toBe('remote refused the connection: not authorized (CONNACK reason code 135, 0x87)');
    const e4 = Object.assign(new Error('x'), { code: 4 });
    expect(describeConnectError(e4, 4)).toBe('remote refused the connection: bad user name or password (CONNACK return code 4, 0x04)');
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter and is capped', () => {
    const b = new Backoff(100, 5000, () => 1);
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800]);
    for (let i = 0; i < 20; i++) b.next();
    expect(b.next()).toBe(5000);
    const low = new Backoff(100, 5000, () => 0);
    expect(low.next()).toBe(50);
    b.reset();
    expect(b.next()).toBe(100);
  });
});

describe('topic mapping', () => {
  const rule = { direction: 'both' as const, filter: 'sensors/#', localPrefix: 'site/', remotePrefix: 'fleet/gw-1/', qos: 1 as const, queueQos0: true };
  it('maps prefixes both ways', () => {
    expect(toRemoteTopic(rule, 'site/sensors/t1')).toBe('fleet/gw-1/sensors/t1');
    expect(toLocalTopic(rule, 'fleet/gw-1/sensors/t1')).toBe('site/sensors/t1');
    expect(toRemoteTopic(rule, 'other/sensors/t1')).toBeUndefined();
  });
  it('matches filters as MQTT does', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
  });
});
