// The default maxGap: bridge a gap of unused registers when reading them costs less time on the wire
// than one more request. On RS-485 a request costs its frames (8 bytes out, 5 bytes of reply
// overhead), two silent intervals and the slave's turnaround (tens of milliseconds for a typical
// meter), and an unused register costs 2 bytes; over TCP the registers ride in the same segment, so
// any gap within the per-request cap is worth bridging. A read the device refuses (exception 02) is
// split and the split remembered, so a hole in the device's map costs one extra request, once.
import type { ModbusBus } from './schema.js';

/** What a typical RTU slave takes to start answering (SDM120, XY-MD02 and similar: 20–150 ms). */
export const TYPICAL_TURNAROUND_MS = 100;

export function defaultMaxGap(bus: ModbusBus, options: { maxRegistersPerRequest: number; interRequestDelayMs: number }): number {
  if (bus.type !== 'modbus-rtu') return options.maxRegistersPerRequest;
  const bitsPerChar = 1 + bus.dataBits + (bus.parity === 'none' ? 0 : 1) + bus.stopBits;
  const byteMs = (bitsPerChar * 1000) / bus.baudRate;
  const silentMs = bus.baudRate > 19200 ? 1.75 : 3.5 * byteMs;
  const requestMs = 13 * byteMs + 2 * silentMs + TYPICAL_TURNAROUND_MS + options.interRequestDelayMs;
  return Math.min(options.maxRegistersPerRequest, Math.floor(requestMs / (2 * byteMs)));
}
