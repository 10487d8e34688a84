// serialport (and its native bindings, parsers and debug) is loaded only when a serial bus is opened:
// a gateway with Modbus TCP devices only, or the demo alone, never pays its memory.
import type { SerialPort } from 'serialport';

let loading: Promise<typeof SerialPort> | undefined;
let loaded: typeof SerialPort | undefined;

export function loadSerialPort(): Promise<typeof SerialPort> {
  loading ??= import('serialport').then((m) => (loaded = m.SerialPort));
  return loading;
}

/** The class once loadSerialPort() has resolved, else undefined. */
export function serialPortIfLoaded(): typeof SerialPort | undefined {
  return loaded;
}
