// A serial port that will not open says why and what to do: the three causes met on a Pi
// (adapter not plugged in, port held by another program, user not in group dialout).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModbusBusRunner } from '../../src/devices/modbus/bus.js';
import { modbusRtuBusSchema } from '../../src/devices/modbus/schema.js';
import { startLineAdapters } from '../../src/devices/line/index.js';
import { lineBusSchema, lineDeviceSchema } from '../../src/devices/line/schema.js';
import { describeSerialOpenError } from '../../src/devices/serial-open-error.js';
import { Broker } from '../../src/broker/broker.js';
import { silentLogger } from '../../src/log.js';
import { captureLogger } from '../helpers/broker.js';
import { requireTool } from '../helpers/peers.js';
import { PtyPair, waitFor } from './line/pty-pair.js';

describe('describeSerialOpenError', () => {
  it('names the dialout group for "Permission denied" (serialport 13 text, seen opening a root-only pty as uid 65534)', () => {
    const text = describeSerialOpenError('/dev/ttyUSB0', 'Error: Permission denied, cannot open /dev/ttyUSB0');
    expect(text).toMatch(/^cannot open \/dev\/ttyUSB0: Permission denied — /); // serialport's ", cannot open …" is not repeated
    expect(text).toContain('group dialout');
    expect(text).toContain('sudo usermod -aG dialout');
  });

  it('keeps an unknown cause as it is, without a guessed hint', () => {
    expect(describeSerialOpenError('/dev/ttyS0', 'Error: Input/output error, cannot open /dev/ttyS0')).toBe('cannot open /dev/ttyS0: Input/output error');
  });
});

describe.skipIf(!requireTool('socat'))('serial ports that do not open, for real', () => {
  let dir: string;
  let pty: PtyPair;
  let holder: SerialPort | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fieldgate-serial-open-'));
    pty = new PtyPair(dir);
    await pty.start();
  });

  afterEach(async () => {
    if (holder?.isOpen) await new Promise((r) => holder!.close(r));
    holder = undefined;
    await pty.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Another program holding the port with the usual exclusive lock (serialport's default, like most tools). */
  async function holdGatewayEnd(): Promise<void> {
    holder = new SerialPort({ path: pty.gatewayPath, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => holder!.open((err) => (err ? reject(err) : resolve())));
  }

  it('Modbus RTU bus: a missing adapter → "is the adapter plugged in?" with the by-id listing', async () => {
    const bus = modbusRtuBusSchema.parse({ id: 'rs485', type: 'modbus-rtu', path: join(dir, 'ttyUSB-unplugged') });
    const runner = new ModbusBusRunner(bus, silentLogger, { initialMs: 50, maxMs: 100 });
    runner.start();
    try {
      await waitFor(() => runner.status().lastError !== undefined, 10_000, 'an open failure');
      const error = runner.status().lastError!;
      expect(error).toContain(`cannot open ${join(dir, 'ttyUSB-unplugged')}: No such file or directory`);
      expect(error).toContain('is the adapter plugged in?');
      expect(error).toContain('/dev/serial/by-id/');
      expect(runner.status().online).toBe(false);
    } finally {
      await runner.stop();
    }
  });

  it('Modbus RTU bus: a port another program holds → names fuser, and opens once it is released', async () => {
    await holdGatewayEnd();
    const bus = modbusRtuBusSchema.parse({ id: 'rs485', type: 'modbus-rtu', path: pty.gatewayPath });
    const runner = new ModbusBusRunner(bus, silentLogger, { initialMs: 50, maxMs: 100 });
    runner.start();
    try {
      await waitFor(() => runner.status().lastError !== undefined, 10_000, 'an open failure');
      const error = runner.status().lastError!;
      expect(error).toContain('Cannot lock port');
      expect(error).toContain(`another program has ${pty.gatewayPath} open`);
      expect(error).toContain(`fuser -v ${pty.gatewayPath}`);
      await new Promise((r) => holder!.close(r));
      await waitFor(() => runner.status().online, 10_000, 'the bus opening once the port is free');
    } finally {
      await runner.stop();
    }
  });

  it('line bus: the retry warning carries the hint, and the device is offline', async () => {
    await holdGatewayEnd();
    const { logger, entries } = captureLogger();
    const broker = new Broker({ dataDir: null, logger: silentLogger });
    await broker.start();
    const client = broker.createLocalClient('line-adapter');
    const buses = [lineBusSchema.parse({ id: 'gps-port', type: 'serial-line', path: pty.gatewayPath, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 100 })];
    const devices = [lineDeviceSchema.parse({ id: 'gps', protocol: 'line', bus: 'gps-port', parser: { type: 'key-value' }, fields: { x: {} } })];
    const adapters = await startLineAdapters(buses, devices, client, logger);
    try {
      await waitFor(() => entries.some((e) => e.msg === 'cannot open serial port; retrying'), 10_000, 'the retry warning');
      const warning = entries.find((e) => e.msg === 'cannot open serial port; retrying')!;
      expect(warning.err).toEqual(expect.stringContaining(`another program has ${pty.gatewayPath} open`));
      expect(adapters.stats()['gps-port'].open).toBe(false);
      expect(adapters.stats()['gps-port'].devices.gps.online).toBe(false);
    } finally {
      await adapters.stop();
      client.close();
      await broker.close();
    }
  });
});
