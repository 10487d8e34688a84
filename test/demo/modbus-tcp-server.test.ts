// The demo's own Modbus TCP server: framing and refusals on the wire, checked with raw sockets and
// with modbus-serial (an independent client) for the function codes it answers.
import net from 'node:net';
import ModbusSerial from 'modbus-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusServerException, startModbusTcpServer, type ModbusTcpServer } from '../../src/demo/modbus-tcp-server.js';

const ModbusRTU = ModbusSerial.default;

let server: ModbusTcpServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close();
  server = undefined;
});

function start(): Promise<ModbusTcpServer> {
  const coils = [false, false, false, false];
  const registers = [10, 20, 30];
  return startModbusTcpServer({
    host: '127.0.0.1',
    port: 0,
    unitId: 3,
    model: {
      readCoils: (a, n) => {
        if (a + n > coils.length) throw new ModbusServerException(2, 'no such coil');
        return coils.slice(a, a + n);
      },
      writeCoil: (a, v) => {
        if (a >= coils.length) throw new ModbusServerException(2, 'no such coil');
        coils[a] = v;
      },
      readHoldingRegisters: (a, n) => {
        if (a + n > registers.length) throw new ModbusServerException(2, 'no such register');
        return registers.slice(a, a + n);
      },
      writeRegister: (a, v) => {
        if (a === 2) throw new Error('model failure');
        registers[a] = v;
      },
    },
  });
}

function raw(port: number): Promise<{ socket: net.Socket; next: () => Promise<Buffer>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let chunks = Buffer.alloc(0);
    const waiting: Array<() => void> = [];
    socket.on('data', (d: Buffer) => {
      chunks = Buffer.concat([chunks, d]);
      waiting.splice(0).forEach((w) => w());
    });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const next = async (): Promise<Buffer> => {
      const deadline = Date.now() + 3000;
      while (chunks.length < 7 || chunks.length < 6 + chunks.readUInt16BE(4)) {
        if (Date.now() > deadline) throw new Error('no reply');
        await new Promise<void>((r) => {
          waiting.push(r);
          setTimeout(r, 50);
        });
      }
      const frame = chunks.subarray(0, 6 + chunks.readUInt16BE(4));
      chunks = chunks.subarray(frame.length);
      return frame;
    };
    socket.once('connect', () => resolve({ socket, next, closed }));
    socket.once('error', reject);
  });
}

function adu(transaction: number, unit: number, pdu: number[]): Buffer {
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(transaction, 0);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unit;
  Buffer.from(pdu).copy(b, 7);
  return b;
}

describe('demo Modbus TCP server', () => {
  it('answers an independent client: coils (FC 1, 5, 15) and registers (FC 3, 6, 16)', async () => {
    server = await start();
    const c = new ModbusRTU();
    await c.connectTCP('127.0.0.1', { port: server.port });
    c.setID(3);
    c.setTimeout(2000);
    try {
      await c.writeCoil(1, true);
      expect((await c.readCoils(0, 4)).data.slice(0, 4)).toEqual([false, true, false, false]);
      await c.writeCoils(0, [true, false, true]);
      expect((await c.readCoils(0, 4)).data.slice(0, 4)).toEqual([true, false, true, false]);
      await c.writeRegister(0, 0xbeef);
      await c.writeRegisters(1, [7]);
      expect((await c.readHoldingRegisters(0, 3)).data).toEqual([0xbeef, 7, 30]);
      await expect(c.readHoldingRegisters(2, 2)).rejects.toMatchObject({ modbusCode: 2 });
      await expect(c.readInputRegisters(0, 1)).rejects.toMatchObject({ modbusCode: 2 });
      await expect(c.writeRegister(2, 1)).rejects.toMatchObject({ modbusCode: 4 });
      expect((await c.readHoldingRegisters(0, 1)).data).toEqual([0xbeef]);
    } finally {
      await new Promise<void>((r) => c.close(() => r()));
    }
  });

  it('reassembles a request that arrives one byte at a time and answers pipelined requests in order', async () => {
    server = await start();
    const { socket, next } = await raw(server.port);
    const request = Buffer.concat([adu(0x1234, 3, [3, 0, 0, 0, 2]), adu(0x1235, 3, [3, 0, 2, 0, 1])]);
    for (const byte of request) {
      socket.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    expect([...(await next())]).toEqual([0x12, 0x34, 0, 0, 0, 7, 3, 3, 4, 0, 10, 0, 20]);
    expect([...(await next())]).toEqual([0x12, 0x35, 0, 0, 0, 5, 3, 3, 2, 0, 30]);
  });

  it('refuses what it does not do with the exception the spec names, and keeps serving', async () => {
    server = await start();
    const { socket, next } = await raw(server.port);
    socket.write(adu(1, 3, [0x2b, 0x0e, 1, 0])); // read device identification: not supported
    expect([...(await next()).subarray(7)]).toEqual([0xab, 1]);
    socket.write(adu(2, 3, [3, 0, 0, 0, 0])); // count 0
    expect([...(await next()).subarray(7)]).toEqual([0x83, 3]);
    socket.write(adu(3, 3, [3, 0, 0, 0, 126])); // past 125 registers
    expect([...(await next()).subarray(7)]).toEqual([0x83, 3]);
    socket.write(adu(4, 3, [5, 0, 0, 0x12, 0x34])); // a coil value other than FF00/0000
    expect([...(await next()).subarray(7)]).toEqual([0x85, 3]);
    socket.write(adu(5, 3, [15, 0, 0, 0, 3, 2, 0xff])); // byte count does not match the bit count
    expect([...(await next()).subarray(7)]).toEqual([0x8f, 3]);
    socket.write(adu(6, 3, [3, 0, 0])); // truncated PDU
    expect([...(await next()).subarray(7)]).toEqual([0x83, 3]);
    socket.write(adu(7, 3, [3, 0, 0, 0, 1]));
    expect([...(await next()).subarray(7)]).toEqual([3, 2, 0, 10]);
  });

  it('stays silent for another unit id and closes a stream that is not MBAP', async () => {
    server = await start();
    const { socket, next, closed } = await raw(server.port);
    socket.write(adu(1, 9, [3, 0, 0, 0, 1]));
    socket.write(adu(2, 3, [3, 0, 0, 0, 1]));
    const reply = await next();
    expect(reply.readUInt16BE(0)).toBe(2); // only the request to unit 3 was answered
    const bad = adu(3, 3, [3, 0, 0, 0, 1]);
    bad.writeUInt16BE(1, 2); // protocol id must be 0
    socket.write(bad);
    await closed;
    // The server still takes new connections.
    const again = await raw(server.port);
    again.socket.write(adu(4, 3, [3, 0, 0, 0, 1]));
    expect((await again.next()).readUInt16BE(0)).toBe(4);
  });
});
