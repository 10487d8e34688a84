// Modbus application PDUs (function code + data): building requests and checking replies against them.

export const FC = {
  readCoils: 1,
  readDiscreteInputs: 2,
  readHoldingRegisters: 3,
  readInputRegisters: 4,
  writeSingleCoil: 5,
  writeSingleRegister: 6,
  writeMultipleCoils: 15,
  writeMultipleRegisters: 16,
} as const;

const exceptionNames: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** The device answered with a Modbus exception: it is alive, the request was refused. */
export class ModbusException extends Error {
  constructor(readonly functionCode: number, readonly exceptionCode: number) {
    super(`${exceptionNames[exceptionCode] ?? 'exception'} (exception ${exceptionCode} to function ${functionCode})`);
    this.name = 'ModbusException';
  }
}

/** No valid reply within the timeout. */
export class ModbusTimeout extends Error {
  constructor(readonly unitId: number, readonly timeoutMs: number) {
    super(`unit ${unitId} did not answer within ${timeoutMs} ms`);
    this.name = 'ModbusTimeout';
  }
}

/** The serial port or TCP connection is gone. */
export class LinkDown extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LinkDown';
  }
}

/** A reply that does not fit the request (wrong length, echo mismatch). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export function readRequest(functionCode: 1 | 2 | 3 | 4, address: number, count: number): Buffer {
  const pdu = Buffer.alloc(5);
  pdu[0] = functionCode;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(count, 3);
  return pdu;
}

export function writeSingleCoilRequest(address: number, on: boolean): Buffer {
  const pdu = Buffer.alloc(5);
  pdu[0] = FC.writeSingleCoil;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(on ? 0xff00 : 0x0000, 3);
  return pdu;
}

export function writeSingleRegisterRequest(address: number, value: number): Buffer {
  const pdu = Buffer.alloc(5);
  pdu[0] = FC.writeSingleRegister;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(value & 0xffff, 3);
  return pdu;
}

export function writeMultipleCoilsRequest(address: number, bits: boolean[]): Buffer {
  const byteCount = Math.ceil(bits.length / 8);
  const pdu = Buffer.alloc(6 + byteCount);
  pdu[0] = FC.writeMultipleCoils;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(bits.length, 3);
  pdu[5] = byteCount;
  bits.forEach((on, i) => {
    if (on) pdu[6 + (i >> 3)] |= 1 << (i & 7);
  });
  return pdu;
}

export function writeMultipleRegistersRequest(address: number, registers: number[]): Buffer {
  const pdu = Buffer.alloc(6 + registers.length * 2);
  pdu[0] = FC.writeMultipleRegisters;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(registers.length, 3);
  pdu[5] = registers.length * 2;
  registers.forEach((r, i) => pdu.writeUInt16BE(r & 0xffff, 6 + i * 2));
  return pdu;
}

/** Length of a normal reply PDU to this request, or undefined for function codes we do not send. */
export function expectedReplyLength(request: Buffer): number | undefined {
  const fc = request[0];
  const count = request.readUInt16BE(3);
  if (fc === 1 || fc === 2) return 2 + Math.ceil(count / 8);
  if (fc === 3 || fc === 4) return 2 + count * 2;
  if (fc === 5 || fc === 6 || fc === 15 || fc === 16) return 5;
  return undefined;
}

export interface Reply {
  registers?: number[];
  bits?: boolean[];
}

/** Checks a reply PDU against its request; throws ModbusException or ProtocolError. */
export function parseReply(request: Buffer, reply: Buffer): Reply {
  const fc = request[0];
  if (reply.length >= 2 && reply[0] === (fc | 0x80)) throw new ModbusException(fc, reply[1]);
  if (reply[0] !== fc) throw new ProtocolError(`reply to function ${fc} has function ${reply[0]}`);
  const expected = expectedReplyLength(request);
  if (expected !== undefined && reply.length !== expected) throw new ProtocolError(`reply to function ${fc} has ${reply.length} bytes, expected ${expected}`);
  const count = request.readUInt16BE(3);
  if (fc === 1 || fc === 2) {
    if (reply[1] !== Math.ceil(count / 8)) throw new ProtocolError(`byte count ${reply[1]} for ${count} bits`);
    const bits = new Array<boolean>(count);
    for (let i = 0; i < count; i++) bits[i] = ((reply[2 + (i >> 3)] >> (i & 7)) & 1) === 1;
    return { bits };
  }
  if (fc === 3 || fc === 4) {
    if (reply[1] !== count * 2) throw new ProtocolError(`byte count ${reply[1]} for ${count} registers`);
    const registers = new Array<number>(count);
    for (let i = 0; i < count; i++) registers[i] = reply.readUInt16BE(2 + i * 2);
    return { registers };
  }
  if (!reply.subarray(1, 5).equals(request.subarray(1, 5))) throw new ProtocolError(`write reply does not echo the request`);
  return {};
}

/** Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF), sent low byte first. */
export function crc16(data: Uint8Array): number {
  let crc = 0xffff;
  for (let i = 0; i < data.length; i++) {
    crc ^= data[i];
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}
