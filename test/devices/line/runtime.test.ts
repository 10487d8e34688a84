// End to end over a real pty: a simulated device on one end of a socat pair, startLineBus on the other,
// publishing through the real Broker.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Broker } from '../../../src/broker/broker.js';
import type { LocalClient, Message } from '../../../src/broker/types.js';
import { silentLogger } from '../../../src/log.js';
import { startLineAdapters } from '../../../src/devices/line/index.js';
import { startLineBus, type LineBusHandle } from '../../../src/devices/line/runtime.js';
import { loadDeviceMapping } from '../../../src/devices/mapping-schema.js';
import { lineBusSchema, lineDeviceSchema, type LineDeviceInput } from '../../../src/devices/line/schema.js';
import { requireTool } from '../../helpers/peers.js';
import { PtyPair, SimulatedDevice, sleep, waitFor } from './pty-pair.js';

// Sentences with verified checksums (see nmea.test.ts).
const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n';
const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n';
const ggaBadChecksum = '$GPGGA,123520,4807.038,N,01131.000,E,1,09,0.9,999.9,M,46.9,M,,*47\r\n';

describe.skipIf(!requireTool('socat'))('line devices on a socat pty', () => {
  let dir: string;
  let pty: PtyPair;
  let device: SimulatedDevice;
  let broker: Broker;
  let adapterClient: LocalClient;
  let observer: LocalClient;
  let handle: LineBusHandle | undefined;
  let messages: Message[];
  let polls: Array<{ device: string; seconds: number; ok: boolean }>;

  const latest = (topic: string) => [...messages].reverse().find((m) => m.topic === topic);
  const payloadOf = (topic: string) => latest(topic)?.payload.toString();
  const all = (topic: string) => messages.filter((m) => m.topic === topic).map((m) => m.payload.toString());

  const start = async (devices: LineDeviceInput[], busExtra: Record<string, unknown> = {}) => {
    const bus = lineBusSchema.parse({ id: 'line1', type: 'serial-line', path: pty.gatewayPath, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 200, ...busExtra });
    handle = await startLineBus(bus, devices.map((d) => lineDeviceSchema.parse(d)), adapterClient, silentLogger, (id, seconds, ok) => polls.push({ device: id, seconds, ok }));
    await waitFor(() => handle!.stats().open, 10_000, 'gateway port open');
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-line-'));
    pty = new PtyPair(dir);
    await pty.start();
    device = new SimulatedDevice(pty.devicePath);
    await device.open();
    broker = new Broker({ dataDir: null });
    await broker.start();
    adapterClient = broker.createLocalClient('line-adapter');
    observer = broker.createLocalClient('observer');
    messages = [];
    polls = [];
    observer.subscribe('#', (m) => messages.push(m));
  });

  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    observer.close();
    adapterClient.close();
    await broker.close();
    await device.close();
    await pty.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes typed, scaled values with their unit from lines that arrive in fragments', async () => {
    await start([
      {
        id: 'th1',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'key-value' },
        fields: {
          T: { topic: 'temperature', scale: 0.1, unit: '°C' },
          H: { topic: 'humidity', decimals: 1, unit: '%' },
          OK: { topic: 'sensor-ok', type: 'boolean' },
          N: { topic: 'sample', type: 'integer' },
          ID: { topic: 'serial-number', type: 'string' },
        },
      },
    ]);
    await waitFor(() => payloadOf('fieldgate/th1/availability') === 'online', 5000, 'online');

    await device.writeFragments(['T=2', '15 H=4', '0.46 OK', '=1 N=4', '2 ID=A', 'B-7\r', '\nT=-', '30 H=50 OK=0 N=43 ID=AB-7\r\n']);
    await waitFor(() => all('fieldgate/th1/temperature').length === 2, 5000, 'two temperatures');

    expect(all('fieldgate/th1/temperature')).toEqual(['21.5', '-3']);
    expect(all('fieldgate/th1/humidity')).toEqual(['40.5', '50']);
    expect(all('fieldgate/th1/sensor-ok')).toEqual(['true', 'false']);
    expect(all('fieldgate/th1/sample')).toEqual(['42', '43']);
    expect(all('fieldgate/th1/serial-number')).toEqual(['AB-7', 'AB-7']);
    const temperature = latest('fieldgate/th1/temperature')!;
    expect(temperature.retain).toBe(true);
    expect(temperature.properties?.userProperties).toEqual({ unit: '°C' });

    // Retained: a subscriber arriving later gets the last value at once.
    const late = broker.createLocalClient('late');
    const got: string[] = [];
    late.subscribe('fieldgate/th1/temperature', (m) => got.push(m.payload.toString()));
    await waitFor(() => got.length === 1, 2000, 'retained value');
    expect(got).toEqual(['-3']);
    late.close();
    expect(handle!.stats().devices.th1).toMatchObject({ acceptedFrames: 2, rejectedFrames: 0 });
  });

  it('NMEA: publishes GGA/RMC fields, ignores and counts sentences with a bad checksum', async () => {
    await start([
      {
        id: 'gps',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'nmea0183' },
        fields: {
          latitude: { decimals: 6, unit: '°' },
          longitude: { decimals: 6, unit: '°' },
          altitude: { unit: 'm' },
          satellites: { type: 'integer' },
          fixQuality: { topic: 'fix-quality', type: 'integer' },
          speedKmh: { topic: 'speed', decimals: 1, unit: 'km/h' },
        },
      },
    ]);
    // The bad sentence is split too, so reassembly and checksum rejection are tested together.
    await device.writeFragments([gga.slice(0, 20), gga.slice(20), ggaBadChecksum.slice(0, 33), ggaBadChecksum.slice(33), 'garbage \u0001\u0002 line\r\n', rmc.slice(0, 7), rmc.slice(7)]);
    await waitFor(() => latest('fieldgate/gps/speed') !== undefined, 5000, 'speed from RMC');
    await sleep(100);

    expect(all('fieldgate/gps/altitude')).toEqual(['545.4']);
    expect(all('fieldgate/gps/satellites')).toEqual(['8']);
    expect(payloadOf('fieldgate/gps/fix-quality')).toBe('1');
    expect(all('fieldgate/gps/latitude')).toEqual(['48.1173', '48.1173']);
    expect(payloadOf('fieldgate/gps/longitude')).toBe('11.516667');
    expect(payloadOf('fieldgate/gps/speed')).toBe('41.5');
    expect(latest('fieldgate/gps/altitude')!.properties?.userProperties).toEqual({ unit: 'm' });
    expect(handle!.stats().devices.gps).toMatchObject({ acceptedFrames: 2, checksumErrors: 1, rejectedFrames: 2 });
  });

  it('polls with a command and reads the reply; goes offline when replies stop and back online when they resume', async () => {
    let answering = true;
    device.onLine = (line) => {
      if (line === 'W?\r\n' && answering) void device.writeFragments(['ST,GS,+00', '12.50kg\r', '\n'], 15);
    };
    await start([
      {
        id: 'scale',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'regex', pattern: '^ST,GS,(?<weight>[-+][\\d.]+)kg$' },
        fields: { weight: { unit: 'kg', decimals: 2 } },
        poll: { command: 'W?\r\n', intervalMs: 300, timeoutMs: 800, offlineAfterMissedReplies: 2, offlinePollIntervalMs: 1500 },
      },
    ]);
    await waitFor(() => all('fieldgate/scale/availability').length >= 1, 5000, 'availability');
    expect(all('fieldgate/scale/availability')[0]).toBe('offline'); // until the first reply
    await waitFor(() => all('fieldgate/scale/weight').length >= 2, 10_000, 'two polled weights');
    expect(payloadOf('fieldgate/scale/weight')).toBe('12.5');
    expect(payloadOf('fieldgate/scale/availability')).toBe('online');
    expect(device.received.filter((l) => l === 'W?\r\n').length).toBeGreaterThanOrEqual(2);

    // Each answered poll is reported with its round trip: the reply comes in three fragments 15 ms apart.
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.every((p) => p.device === 'scale' && p.ok && p.seconds >= 0.025 && p.seconds < 0.8)).toBe(true);

    answering = false;
    await waitFor(() => payloadOf('fieldgate/scale/availability') === 'offline', 10_000, 'offline after missed replies');
    expect(handle!.stats().devices.scale.pollTimeouts).toBeGreaterThanOrEqual(2);
    // A poll nobody answers is reported as failed after its 800 ms timeout.
    const failed = polls.filter((p) => !p.ok);
    expect(failed.length).toBe(handle!.stats().devices.scale.pollTimeouts);
    expect(failed.every((p) => p.seconds >= 0.79)).toBe(true);

    // Offline, it is probed every 1.5 s instead of every 0.3 s.
    const sentBefore = handle!.stats().devices.scale.pollsSent;
    await sleep(3200);
    const probes = handle!.stats().devices.scale.pollsSent - sentBefore;
    expect(probes).toBeGreaterThanOrEqual(1);
    expect(probes).toBeLessThanOrEqual(3);

    answering = true;
    await waitFor(() => payloadOf('fieldgate/scale/availability') === 'online', 10_000, 'online again');
  });

  it('writes …/set through the template, answers on …/set/result, and rejects bad values without writing', async () => {
    device.onLine = (line) => {
      if (line.startsWith('SP ')) void device.write(`OK ${line.slice(3)}`);
    };
    await start([
      {
        id: 'ctl',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'json' },
        fields: { 'state.sp': { topic: 'setpoint', unit: '°C' } },
        commands: {
          setpoint: { template: 'SP {value}\r\n', type: 'number', min: 5, max: 30, decimals: 1, replyPattern: '^OK ', replyTimeoutMs: 2000 },
          relay: { template: 'RELAY {value}\n', type: 'boolean', trueText: 'ON', falseText: 'OFF' },
        },
      },
    ]);
    const results = () => all('fieldgate/ctl/setpoint/set/result').map((p) => JSON.parse(p) as Record<string, unknown>);

    await observer.publish('fieldgate/ctl/setpoint/set', '21.25');
    await waitFor(() => results().length === 1, 5000, 'setpoint result');
    expect(device.received).toContain('SP 21.3\r\n');
    expect(results()[0]).toEqual({ ok: true, value: 21.25, reply: 'OK 21.3' });

    // MQTT 5 request/response: the answer also goes to the response topic, with the correlation data.
    const replies: Message[] = [];
    observer.subscribe('app/replies', (m) => replies.push(m));
    await observer.publish('fieldgate/ctl/setpoint/set', '18', { properties: { responseTopic: 'app/replies', correlationData: Buffer.from('req-7') } });
    await waitFor(() => replies.length === 1, 5000, 'response-topic answer');
    expect(JSON.parse(replies[0].payload.toString())).toEqual({ ok: true, value: 18, reply: 'OK 18.0' });
    expect(replies[0].properties?.correlationData?.toString()).toBe('req-7');

    await observer.publish('fieldgate/ctl/setpoint/set', '99');
    await waitFor(() => results().length === 3, 5000, 'rejection');
    expect(results()[2]).toEqual({ ok: false, error: '99 is above the maximum 30' });

    await observer.publish('fieldgate/ctl/relay/set', 'on');
    await waitFor(() => all('fieldgate/ctl/relay/set/result').length === 1, 5000, 'relay result');
    expect(JSON.parse(payloadOf('fieldgate/ctl/relay/set/result')!)).toEqual({ ok: true, value: true });
    await waitFor(() => device.received.includes('RELAY ON\n'), 2000, 'relay line at the device');
    expect(device.received.filter((l) => l.startsWith('SP '))).toEqual(['SP 21.3\r\n', 'SP 18.0\r\n']);

    // A command the device does not have is answered with an error (not ignored), and nothing is written.
    const written = device.received.length;
    await observer.publish('fieldgate/ctl/fan/set', 'on');
    await waitFor(() => all('fieldgate/ctl/fan/set/result').length === 1, 5000, 'unknown command result');
    expect(JSON.parse(payloadOf('fieldgate/ctl/fan/set/result')!)).toEqual({ ok: false, error: 'device "ctl" has no point "fan" (writable: setpoint, relay)' });
    expect(device.received.length).toBe(written);
    // The known commands were answered once each (the catch-all leaves them alone).
    expect(results()).toHaveLength(3);
    expect(all('fieldgate/ctl/relay/set/result')).toHaveLength(1);

    // The device reports its state as JSON lines; the unsolicited report is still parsed.
    await device.writeFragments(['{"state":{"s', 'p":21.3}}\n']);
    await waitFor(() => payloadOf('fieldgate/ctl/setpoint') === '21.3', 5000, 'reported setpoint');
  });

  it('a retained …/set left on the broker is not replayed into the device at start', async () => {
    await observer.publish('fieldgate/ctl2/relay/set', '1', { retain: true });
    await start([
      {
        id: 'ctl2',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'json' },
        fields: { relay: { type: 'boolean' } },
        commands: { relay: { template: 'RELAY {value}\n', type: 'boolean' } },
      },
    ]);
    await sleep(300);
    expect(device.received).toEqual([]);
    await observer.publish('fieldgate/ctl2/relay/set', '0');
    await waitFor(() => device.received.includes('RELAY 0\n'), 5000, 'live command written');
  });

  it('survives the pty disappearing: offline, reopens with backoff, online and publishing again', async () => {
    await start([
      { id: 'kv', protocol: 'line', bus: 'line1', parser: { type: 'key-value' }, fields: { v: { topic: 'value', type: 'integer' } } },
    ]);
    await device.write('v=1\n');
    await waitFor(() => payloadOf('fieldgate/kv/value') === '1', 5000, 'first value');
    expect(payloadOf('fieldgate/kv/availability')).toBe('online');

    await device.close();
    await pty.stop();
    await waitFor(() => payloadOf('fieldgate/kv/availability') === 'offline', 10_000, 'offline after unplug');
    expect(handle!.stats().open).toBe(false);
    await sleep(500); // several failed reopen attempts while the port is gone

    await pty.start();
    await device.open();
    await waitFor(() => handle!.stats().open, 10_000, 'port reopened');
    await waitFor(() => payloadOf('fieldgate/kv/availability') === 'online', 10_000, 'online after replug');
    await device.writeFragments(['v=', '2\n']);
    await waitFor(() => payloadOf('fieldgate/kv/value') === '2', 5000, 'value after replug');
    expect(handle!.stats().reopenCount).toBe(1);
  });

  it('marks a silent device offline after staleAfterMs and online again on the next line', async () => {
    await start([
      { id: 'st', protocol: 'line', bus: 'line1', parser: { type: 'key-value' }, fields: { t: {} }, staleAfterMs: 400 },
    ]);
    await sleep(100);
    expect(payloadOf('fieldgate/st/availability')).toBe('offline'); // has not proven itself yet
    await device.write('t=1\n');
    // Judged by the sequence, not the latest state, so a slow machine cannot skip past a state.
    await waitFor(() => all('fieldgate/st/availability').length >= 3, 5000, 'online, then stale');
    expect(all('fieldgate/st/availability')).toEqual(['offline', 'online', 'offline']);
    await device.write('t=2\n');
    await waitFor(() => all('fieldgate/st/availability').length >= 4, 5000, 'online again');
    expect(all('fieldgate/st/availability').slice(0, 4)).toEqual(['offline', 'online', 'offline', 'online']);
  });

  it('drops an overlong line, keeps going, and publishes offline on stop', async () => {
    await start([{ id: 'ol', protocol: 'line', bus: 'line1', parser: { type: 'key-value' }, fields: { a: {} } }], { maxFrameLength: 64 });
    await device.writeFragments(['a=1' + 'x'.repeat(500), 'y'.repeat(500), '\na=2\n']);
    await waitFor(() => payloadOf('fieldgate/ol/a') === '2', 5000, 'value after overlong line');
    expect(all('fieldgate/ol/a')).toEqual(['2']);
    expect(handle!.stats().framing.overlong).toBe(1);
    await handle!.stop();
    handle = undefined;
    expect(payloadOf('fieldgate/ol/availability')).toBe('offline');
  });

  it('waits for a port that is not there yet (adapter plugged in after boot) and tolerates DTR/RTS ioctl failures', async () => {
    await device.close();
    await pty.stop();
    const bus = lineBusSchema.parse({ id: 'line1', type: 'serial-line', path: pty.gatewayPath, dtr: true, rts: false, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 200 });
    handle = await startLineBus(bus, [lineDeviceSchema.parse({ id: 'late', protocol: 'line', bus: 'line1', parser: { type: 'json' }, fields: { n: { type: 'integer' } } })], adapterClient, silentLogger);
    await sleep(400);
    expect(handle.stats().open).toBe(false);
    expect(payloadOf('fieldgate/late/availability')).toBe('offline');

    await pty.start();
    await device.open();
    await waitFor(() => handle!.stats().open, 10_000, 'port opened once it appeared');
    await device.writeFragments(['{"n":', '7}\n']);
    await waitFor(() => payloadOf('fieldgate/late/n') === '7', 5000, 'value');
    expect(payloadOf('fieldgate/late/availability')).toBe('online');
  });

  it('shares one port between a streaming device and a polled one: replies go to the poller, the rest to listeners', async () => {
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming && i < 200; i++) {
        await device.writeFragments([`t=${i % 10}`, '\n'], 10).catch(() => undefined);
      }
    })();
    device.onLine = (line) => {
      if (line === 'E?\n') void device.writeFragments(['E=1', '2345\n'], 10);
    };
    try {
      await start([
        { id: 'therm', protocol: 'line', bus: 'line1', parser: { type: 'key-value' }, fields: { t: { type: 'integer' } } },
        { id: 'meter', protocol: 'line', bus: 'line1', parser: { type: 'regex', pattern: '^E=(?<energy>\\d+)$' }, fields: { energy: { scale: 0.001, unit: 'kWh' } }, poll: { command: 'E?\n', intervalMs: 150, timeoutMs: 1000 } },
      ]);
      await waitFor(() => all('fieldgate/meter/energy').length >= 3 && all('fieldgate/therm/t').length >= 10, 10_000, 'both devices publishing');
    } finally {
      streaming = false;
      await stream;
    }
    expect(new Set(all('fieldgate/meter/energy'))).toEqual(new Set(['12.345']));
    expect(all('fieldgate/therm/t').every((v) => /^\d$/.test(v))).toBe(true);
    expect(payloadOf('fieldgate/meter/availability')).toBe('online');
    expect(payloadOf('fieldgate/therm/availability')).toBe('online');
    const stats = handle!.stats().devices;
    expect(stats.therm.rejectedFrames).toBe(0); // the poll replies never reached the listener
    expect(stats.meter.pollTimeouts).toBe(0);
  });

  it('answers a command sent while the port is gone with an error instead of hanging', async () => {
    await start([
      { id: 'cmd', protocol: 'line', bus: 'line1', parser: { type: 'json' }, fields: { v: {} }, commands: { mode: { template: 'MODE {value}\n', type: 'integer' } } },
    ]);
    await device.close();
    await pty.stop();
    await waitFor(() => !handle!.stats().open, 10_000, 'port lost');
    await observer.publish('fieldgate/cmd/mode/set', '2');
    await waitFor(() => latest('fieldgate/cmd/mode/set/result') !== undefined, 5000, 'result');
    expect(JSON.parse(payloadOf('fieldgate/cmd/mode/set/result')!)).toEqual({ ok: false, error: 'serial port is not open' });
  });

  it('runs a mapping file that includes the shipped NMEA GPS profile', async () => {
    const file = join(dir, 'site.json');
    writeFileSync(
      file,
      JSON.stringify({
        buses: [
          { id: 'plc', type: 'modbus-tcp', host: '127.0.0.1' },
          { id: 'gps-port', type: 'serial-line', path: pty.gatewayPath, baudRate: 9600, reconnectInitialDelayMs: 50 },
        ],
        include: [{ profile: 'nmea-gps', id: 'gps', bus: 'gps-port' }],
      }),
    );
    const loaded = loadDeviceMapping(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const adapters = await startLineAdapters(loaded.mapping.buses, loaded.mapping.lineDevices, adapterClient, silentLogger);
    try {
      expect(Object.keys(adapters.stats())).toEqual(['gps-port']);
      await waitFor(() => adapters.stats()['gps-port'].open, 10_000, 'port open');
      await device.writeFragments([gga.slice(0, 30), gga.slice(30), rmc]);
      await waitFor(() => payloadOf('fieldgate/gps/utc-time') !== undefined, 5000, 'RMC fields');
      expect(payloadOf('fieldgate/gps/latitude')).toBe('48.1173');
      expect(payloadOf('fieldgate/gps/longitude')).toBe('11.5166667');
      expect(payloadOf('fieldgate/gps/altitude')).toBe('545.4');
      expect(payloadOf('fieldgate/gps/satellites')).toBe('8');
      expect(payloadOf('fieldgate/gps/fix-quality')).toBe('1');
      expect(payloadOf('fieldgate/gps/speed')).toBe('41.5');
      expect(payloadOf('fieldgate/gps/fix-valid')).toBe('true');
      expect(payloadOf('fieldgate/gps/utc-time')).toBe('1994-03-23T12:35:19Z');
      expect(payloadOf('fieldgate/gps/availability')).toBe('online');
      expect(all('fieldgate/gps/latitude')).toHaveLength(1); // GGA only, not repeated from RMC
    } finally {
      await adapters.stop();
    }
    expect(payloadOf('fieldgate/gps/availability')).toBe('offline');
  });

  it('a bus whose port cannot be opened stays offline and does not hold up the others', async () => {
    const notATty = join(dir, 'not-a-tty');
    writeFileSync(notATty, '');
    const buses = [
      lineBusSchema.parse({ id: 'broken', type: 'serial-line', path: notATty, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 100 }),
      lineBusSchema.parse({ id: 'missing', type: 'serial-line', path: join(dir, 'no-such-port'), reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 100 }),
      lineBusSchema.parse({ id: 'good', type: 'serial-line', path: pty.gatewayPath }),
    ];
    const devices = ['broken', 'missing', 'good'].map((bus) => lineDeviceSchema.parse({ id: `on-${bus}`, protocol: 'line', bus, parser: { type: 'key-value' }, fields: { x: {} } }));
    const adapters = await startLineAdapters(buses, devices, adapterClient, silentLogger);
    try {
      await waitFor(() => adapters.stats().good.open, 10_000, 'good port open');
      await device.write('x=5\n');
      await waitFor(() => payloadOf('fieldgate/on-good/x') === '5', 5000, 'value on the good bus');
      await sleep(300); // several failed attempts on the others
      expect(adapters.stats().broken.open).toBe(false);
      expect(adapters.stats().missing.open).toBe(false);
      expect(payloadOf('fieldgate/on-broken/availability')).toBe('offline');
      expect(payloadOf('fieldgate/on-missing/availability')).toBe('offline');
      expect(payloadOf('fieldgate/on-good/availability')).toBe('online');
      expect(adapters.stats().good.devices['on-good'].online).toBe(true);
      expect(adapters.stats().broken.devices['on-broken'].online).toBe(false);
    } finally {
      await adapters.stop();
    }
  });

  it('stopping answers a command still waiting for its reply instead of leaving it hanging', async () => {
    await start([
      {
        id: 'slow',
        protocol: 'line',
        bus: 'line1',
        parser: { type: 'json' },
        fields: { v: {} },
        commands: { calibrate: { template: 'CAL {value}\n', type: 'integer', replyPattern: '^CAL OK', replyTimeoutMs: 30_000 } },
      },
    ]);
    await observer.publish('fieldgate/slow/calibrate/set', '1');
    await waitFor(() => device.received.includes('CAL 1\n'), 5000, 'command at the device');
    const began = Date.now();
    await handle!.stop();
    handle = undefined;
    expect(Date.now() - began).toBeLessThan(5000);
    await waitFor(() => latest('fieldgate/slow/calibrate/set/result') !== undefined, 2000, 'result');
    expect(JSON.parse(payloadOf('fieldgate/slow/calibrate/set/result')!)).toEqual({ ok: false, error: 'adapter stopping' });
    expect(payloadOf('fieldgate/slow/availability')).toBe('offline');
  });
});
