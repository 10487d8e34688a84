// A minimal Modbus TCP server (MBAP framing, Modbus Application Protocol v1.1b3) for the demo meter:
// reads and writes of bits and registers are handed to a data model, anything else is refused with
// a Modbus exception. Written here instead of using modbus-serial's ServerTCP because that package
// loads serialport, its native bindings and parsers even for TCP: ~8 MiB RSS the demo does not need.
import net from 'node:net';

/** A data model refuses a request by throwing this (exception 2, illegal data address, as a rule). */
export class ModbusServerException extends Error {
  constructor(readonly exceptionCode: number, message: string) {
    super(message);
    this.name = 'ModbusServerException';
  }
}

export interface ModbusDataModel {
  readCoils?(address: number, count: number): boolean[];
  readDiscreteInputs?(address: number, count: number): boolean[];
  readHoldingRegisters?(address: number, count: number): number[];
  readInputRegisters?(address: number, count: number): number[];
  writeCoil?(address: number, value: boolean): void;
  writeRegister?(address: number, value: number): void;
}

export interface ModbusTcpServerOptions {
  host: string;
  port: number;
  unitId: number;
  model: ModbusDataModel;
  /** A model that threw something other than ModbusServerException (answered with exception 4). */
  onError?(err: unknown): void;
}

const MBAP_LENGTH = 7;
/** The largest ADU: 7 bytes of MBAP + 253 of PDU. A longer length field cannot be Modbus TCP. */
const MAX_PDU = 253;
const MAX_READ_BITS = 2000;
const MAX_READ_REGISTERS = 125;
const MAX_WRITE_BITS = 1968;
const MAX_WRITE_REGISTERS = 123;

function exception(functionCode: number, code: number): Buffer {
  return Buffer.from([functionCode | 0x80, code]);
}

function bitsReply(functionCode: number, bits: boolean[]): Buffer {
  const bytes = Math.ceil(bits.length / 8);
  const reply = Buffer.alloc(2 + bytes);
  reply[0] = functionCode;
  reply[1] = bytes;
  bits.forEach((bit, i) => {
    if (bit) reply[2 + (i >> 3)]! |= 1 << (i & 7);
  });
  return reply;
}

function registersReply(functionCode: number, registers: number[]): Buffer {
  const reply = Buffer.alloc(2 + registers.length * 2);
  reply[0] = functionCode;
  reply[1] = registers.length * 2;
  registers.forEach((value, i) => reply.writeUInt16BE(value & 0xffff, 2 + i * 2));
  return reply;
}

/** Answers one request PDU: a reply PDU or an exception PDU. */
export function answerPdu(model: ModbusDataModel, pdu: Buffer): Buffer {
  const fc = pdu[0]!;
  const illegalValue = () => exception(fc, 0x03);
  const unsupported = () => exception(fc, 0x01);
  const word = (offset: number) => pdu.readUInt16BE(offset);
  switch (fc) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04: {
      if (pdu.length !== 5) return illegalValue();
      const address = word(1);
      const count = word(3);
      if (count < 1 || count > (fc <= 0x02 ? MAX_READ_BITS : MAX_READ_REGISTERS) || address + count > 0x10000) return illegalValue();
      if (fc <= 0x02) {
        const read = fc === 0x01 ? model.readCoils : model.readDiscreteInputs;
        return read ? bitsReply(fc, read.call(model, address, count)) : exception(fc, 0x02);
      }
      const read = fc === 0x03 ? model.readHoldingRegisters : model.readInputRegisters;
      return read ? registersReply(fc, read.call(model, address, count)) : exception(fc, 0x02);
    }
    case 0x05: {
      if (pdu.length !== 5) return illegalValue();
      const value = word(3);
      if (value !== 0xff00 && value !== 0x0000) return illegalValue();
      if (!model.writeCoil) return exception(fc, 0x02);
      model.writeCoil(word(1), value === 0xff00);
      return Buffer.from(pdu);
    }
    case 0x06: {
      if (pdu.length !== 5) return illegalValue();
      if (!model.writeRegister) return exception(fc, 0x02);
      model.writeRegister(word(1), word(3));
      return Buffer.from(pdu);
    }
    case 0x0f: {
      if (pdu.length < 6) return illegalValue();
      const address = word(1);
      const count = word(3);
      const bytes = pdu[5]!;
      if (count < 1 || count > MAX_WRITE_BITS || bytes !== Math.ceil(count / 8) || pdu.length !== 6 + bytes || address + count > 0x10000) return illegalValue();
      if (!model.writeCoil) return exception(fc, 0x02);
      for (let i = 0; i < count; i++) model.writeCoil(address + i, ((pdu[6 + (i >> 3)]! >> (i & 7)) & 1) === 1);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 0x10: {
      if (pdu.length < 6) return illegalValue();
      const address = word(1);
      const count = word(3);
      const bytes = pdu[5]!;
      if (count < 1 || count > MAX_WRITE_REGISTERS || bytes !== count * 2 || pdu.length !== 6 + bytes || address + count > 0x10000) return illegalValue();
      if (!model.writeRegister) return exception(fc, 0x02);
      for (let i = 0; i < count; i++) model.writeRegister(address + i, pdu.readUInt16BE(6 + i * 2));
      return Buffer.from(pdu.subarray(0, 5));
    }
    default:
      return unsupported();
  }
}

function safeAnswer(options: ModbusTcpServerOptions, pdu: Buffer): Buffer {
  try {
    return answerPdu(options.model, pdu);
  } catch (err) {
    if (err instanceof ModbusServerException) return exception(pdu[0]!, err.exceptionCode);
    options.onError?.(err);
    return exception(pdu[0]!, 0x04);
  }
}

function serve(socket: net.Socket, options: ModbusTcpServerOptions): void {
  let buffer: Buffer = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= MBAP_LENGTH) {
      const length = buffer.readUInt16BE(4);
      if (buffer.readUInt16BE(2) !== 0 || length < 2 || length > MAX_PDU + 1) {
        // Not MBAP: nothing later on this stream can be framed.
        socket.destroy();
        return;
      }
      if (buffer.length < 6 + length) return;
      const transaction = buffer.readUInt16BE(0);
      const unitId = buffer[6]!;
      const pdu = buffer.subarray(MBAP_LENGTH, 6 + length);
      buffer = buffer.subarray(6 + length);
      // Another unit id gets no reply at all, as a device on a bus behind a gateway would.
      if (unitId !== options.unitId) continue;
      const reply = safeAnswer(options, pdu);
      const header = Buffer.alloc(MBAP_LENGTH);
      header.writeUInt16BE(transaction, 0);
      header.writeUInt16BE(0, 2);
      header.writeUInt16BE(reply.length + 1, 4);
      header[6] = unitId;
      socket.write(Buffer.concat([header, reply]));
    }
  });
}

export interface ModbusTcpServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens; rejects with the listen error (EADDRINUSE…). Port 0 picks a free port. */
export function startModbusTcpServer(options: ModbusTcpServerOptions): Promise<ModbusTcpServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serve(socket, options);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      let closing: Promise<void> | undefined;
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close() {
          closing ??= new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          });
          return closing;
        },
      });
    });
  });
}
