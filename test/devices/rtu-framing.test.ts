// RTU framing over a real pty, with the other end played byte by byte: socat delivers each write as
// one chunk, which would hide reassembly bugs, so the replies here are fragmented and noisy on purpose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { openLink, type ModbusLink } from '../../src/devices/modbus/links.js';
import { crc16, ModbusException, ModbusTimeout, parseReply, readRequest } from '../../src/devices/modbus/pdu.js';
import { requireSocat, startPtyPair, type PtyPair } from './helpers/modbus-peers.js';

function frame(bytes: number[]): Buffer {
  const b = Buffer.alloc(bytes.length + 2);
  Buffer.from(bytes).copy(b);
  b.writeUInt16LE(crc16(b.subarray(0, bytes.length)), bytes.length);
  return b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!requireSocat())('RTU framing on a pty', () => {
  let pty: PtyPair;
  let link: ModbusLink;
  let far: SerialPort;
  const received: Buffer[] = [];

  beforeAll(async () => {
    pty = await startPtyPair();
    link = await openLink({ id: 'x', type: 'modbus-rtu', path: pty.gateway, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, interRequestDelayMs: 0 });
    far = new SerialPort({ path: pty.slave, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => far.open((err) => (err ? reject(err) : resolve())));
    far.on('data', (d: Buffer) => received.push(d));
  });

  afterAll(async () => {
    await link?.close();
    if (far?.isOpen) await new Promise<void>((r) => far.close(() => r()));
    await pty?.stop();
  });

  async function nextRequest(): Promise<Buffer> {
    const start = Date.now();
    while (received.length === 0) {
      if (Date.now() - start > 5000) throw new Error('no request arrived');
      await sleep(5);
    }
    await sleep(20);
    return Buffer.concat(received.splice(0));
  }

  async function dribble(bytes: Buffer, chunk = 1, gapMs = 3): Promise<void> {
    for (let i = 0; i < bytes.length; i += chunk) {
      far.write(bytes.subarray(i, i + chunk));
      await new Promise<void>((r) => far.drain(() => r()));
      await sleep(gapMs);
    }
  }

  it('sends a correct RTU frame and reassembles a reply that arrives one byte at a time after noise', async () => {
    const request = readRequest(3, 0x10, 2);
    const pending = link.request(7, request, 3000);
    const wire = await nextRequest();
    expect(wire).toEqual(frame([7, 3, 0x00, 0x10, 0x00, 0x02]));
    const reply = frame([7, 3, 4, 0x42, 0xf6, 0xe9, 0x79]);
    // Line noise, a reply from another unit and a frame with a broken CRC come first.
    const otherUnit = frame([8, 3, 4, 1, 2, 3, 4]);
    const broken = Buffer.from(frame([7, 3, 4, 9, 9, 9, 9]));
    broken[broken.length - 1] ^= 0xff;
    await dribble(Buffer.concat([Buffer.from([0x00, 0xff, 0x07]), otherUnit, broken, reply]), 1, 1);
    const pdu = await pending;
    expect(parseReply(request, pdu)).toEqual({ registers: [0x42f6, 0xe979] });
    expect(link.stats.crcErrors).toBeGreaterThanOrEqual(1);
    expect(link.stats.strayBytes).toBeGreaterThanOrEqual(3 + otherUnit.length);
  });

  it('reassembles an exception reply split in two and reports it as a Modbus exception', async () => {
    const request = readRequest(4, 100, 1);
    const pending = link.request(7, request, 3000);
    await nextRequest();
    const exception = frame([7, 0x84, 2]);
    await dribble(exception, 3, 30);
    const pdu = await pending;
    expect(() => parseReply(request, pdu)).toThrow(ModbusException);
    expect(() => parseReply(request, pdu)).toThrow(/illegal data address/);
  });

  it('times out on a truncated reply and drops its tail when it finally comes', async () => {
    const request = readRequest(3, 0, 1);
    const pending = link.request(7, request, 200);
    await nextRequest();
    const reply = frame([7, 3, 2, 0x12, 0x34]);
    await dribble(reply.subarray(0, 4), 4, 0);
    await expect(pending).rejects.toBeInstanceOf(ModbusTimeout);
    const strayBefore = link.stats.strayBytes;
    await dribble(reply.subarray(4), 3, 0);
    // Wait for the tail to be read (socat may relay it late on a loaded machine), then it must count as stray.
    const deadline = Date.now() + 5000;
    while (link.stats.strayBytes === strayBefore && Date.now() < deadline) await sleep(10);
    expect(link.stats.strayBytes).toBeGreaterThan(strayBefore);
    // The next request gets its own answer, not the leftovers.
    const next = link.request(7, request, 3000);
    await nextRequest();
    await dribble(frame([7, 3, 2, 0xab, 0xcd]), 2, 2);
    expect(parseReply(request, await next)).toEqual({ registers: [0xabcd] });
  });
});
