// Register codec: turns 16-bit Modbus registers into typed values and back, for every
// supported type and byte/word order.
//
// Order names describe where the bytes of the big-endian value land on the wire, for a 32-bit value
// A B C D (A = most significant): ABCD = registers in order, high byte first (the Modbus standard);
// CDAB = word swap; BADC = byte swap inside each register; DCBA = both. For 64-bit values the word
// swap reverses all four registers. 16-bit types and strings only honour the byte swap.

export const registerTypes = ['bool', 'bit', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export type PointType = (typeof registerTypes)[number];

export const byteOrders = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const;
export type ByteOrder = (typeof byteOrders)[number];

export type RawValue = number | bigint | boolean | string;

/** Number of registers a value of this type occupies (strings: their declared length). */
export function registerCount(type: PointType, stringLength = 0): number {
  switch (type) {
    case 'bool':
    case 'bit':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return stringLength;
  }
}

function swapsWords(order: ByteOrder): boolean {
  return order === 'CDAB' || order === 'DCBA';
}

function swapsBytes(order: ByteOrder): boolean {
  return order === 'BADC' || order === 'DCBA';
}

/** Registers as they came off the wire → bytes in big-endian value order. */
export function registersToBytes(registers: ArrayLike<number>, order: ByteOrder, allowWordSwap = true): Buffer {
  const n = registers.length;
  const out = Buffer.alloc(n * 2);
  const reverse = allowWordSwap && swapsWords(order);
  const byteSwap = swapsBytes(order);
  for (let i = 0; i < n; i++) {
    const word = registers[reverse ? n - 1 - i : i] & 0xffff;
    if (byteSwap) out.writeUInt16LE(word, i * 2);
    else out.writeUInt16BE(word, i * 2);
  }
  return out;
}

/** Inverse of registersToBytes. */
export function bytesToRegisters(bytes: Buffer, order: ByteOrder, allowWordSwap = true): number[] {
  const n = bytes.length >> 1;
  const words = new Array<number>(n);
  const reverse = allowWordSwap && swapsWords(order);
  const byteSwap = swapsBytes(order);
  for (let i = 0; i < n; i++) {
    const word = byteSwap ? bytes.readUInt16LE(i * 2) : bytes.readUInt16BE(i * 2);
    words[reverse ? n - 1 - i : i] = word;
  }
  return words;
}

/**
 * Decodes a value from the registers it occupies. `bit` selects one bit (0 = least significant)
 * of a register for the `bit` type. Strings stop at the first NUL and lose trailing spaces.
 */
export function decodeRegisters(registers: ArrayLike<number>, type: PointType, order: ByteOrder = 'ABCD', bit = 0): RawValue {
  const expected = registerCount(type, registers.length);
  if (registers.length < expected) throw new RangeError(`${type} needs ${expected} registers, got ${registers.length}`);
  const isString = type === 'string';
  const wide = expected > 1 && !isString;
  const bytes = registersToBytes(Array.from({ length: expected }, (_, i) => registers[i]), order, wide);
  switch (type) {
    case 'bool':
      return bytes.readUInt16BE(0) !== 0;
    case 'bit':
      return ((bytes.readUInt16BE(0) >> bit) & 1) === 1;
    case 'int16':
      return bytes.readInt16BE(0);
    case 'uint16':
      return bytes.readUInt16BE(0);
    case 'int32':
      return bytes.readInt32BE(0);
    case 'uint32':
      return bytes.readUInt32BE(0);
    case 'float32':
      return bytes.readFloatBE(0);
    case 'int64':
      return bytes.readBigInt64BE(0);
    case 'uint64':
      return bytes.readBigUInt64BE(0);
    case 'float64':
      return bytes.readDoubleBE(0);
    case 'string': {
      const end = bytes.indexOf(0);
      return bytes.subarray(0, end === -1 ? bytes.length : end).toString('latin1').replace(/ +$/, '');
    }
  }
}

/**
 * Encodes a value into registers. Throws RangeError when the value does not fit the type
 * (the caller turns that into a `set/result` rejection). The `bit` type is not encoded here:
 * writing one bit needs the register's current value (see setBit).
 */
export function encodeRegisters(value: RawValue, type: PointType, order: ByteOrder = 'ABCD', stringLength = 0): number[] {
  const count = registerCount(type, stringLength);
  const bytes = Buffer.alloc(count * 2);
  switch (type) {
    case 'bool':
      bytes.writeUInt16BE(value === true || value === 1 ? 1 : 0, 0);
      break;
    case 'bit':
      throw new RangeError('a bit of a register is written with setBit');
    case 'int16':
      bytes.writeInt16BE(checkedInteger(value, -0x8000, 0x7fff, type), 0);
      break;
    case 'uint16':
      bytes.writeUInt16BE(checkedInteger(value, 0, 0xffff, type), 0);
      break;
    case 'int32':
      bytes.writeInt32BE(checkedInteger(value, -0x80000000, 0x7fffffff, type), 0);
      break;
    case 'uint32':
      bytes.writeUInt32BE(checkedInteger(value, 0, 0xffffffff, type), 0);
      break;
    case 'float32':
      bytes.writeFloatBE(checkedNumber(value, type), 0);
      break;
    case 'float64':
      bytes.writeDoubleBE(checkedNumber(value, type), 0);
      break;
    case 'int64':
      bytes.writeBigInt64BE(checkedBigInt(value, -(1n << 63n), (1n << 63n) - 1n, type), 0);
      break;
    case 'uint64':
      bytes.writeBigUInt64BE(checkedBigInt(value, 0n, (1n << 64n) - 1n, type), 0);
      break;
    case 'string': {
      const text = Buffer.from(String(value), 'latin1');
      if (text.length > bytes.length) throw new RangeError(`string longer than ${bytes.length} characters`);
      text.copy(bytes);
      break;
    }
  }
  return bytesToRegisters(bytes, order, count > 1 && type !== 'string');
}

/** Returns `register` with bit `bit` set to `on`. */
export function setBit(register: number, bit: number, on: boolean): number {
  return on ? (register | (1 << bit)) & 0xffff : register & ~(1 << bit) & 0xffff;
}

function checkedNumber(value: RawValue, type: string): number {
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'boolean' ? Number(value) : Number(value);
  if (typeof value === 'string' && value.trim() === '') throw new RangeError(`${type} needs a number`);
  if (Number.isNaN(n) && !(typeof value === 'string' && value.trim() === 'NaN') && !(typeof value === 'number')) {
    throw new RangeError(`${type} needs a number (got ${JSON.stringify(String(value))})`);
  }
  return n;
}

function checkedInteger(value: RawValue, min: number, max: number, type: string): number {
  const n = checkedNumber(value, type);
  if (!Number.isInteger(n)) throw new RangeError(`${type} needs an integer (got ${String(value)})`);
  if (n < min || n > max) throw new RangeError(`${type} holds ${min}…${max} (got ${n})`);
  return n;
}

function checkedBigInt(value: RawValue, min: bigint, max: bigint, type: string): bigint {
  let n: bigint;
  try {
    if (typeof value === 'number' && !Number.isInteger(value)) throw new Error();
    n = typeof value === 'bigint' ? value : BigInt(typeof value === 'boolean' ? Number(value) : value);
  } catch {
    throw new RangeError(`${type} needs an integer (got ${String(value)})`);
  }
  if (n < min || n > max) throw new RangeError(`${type} holds ${min}…${max} (got ${n})`);
  return n;
}
