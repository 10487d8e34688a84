// Commissioning through the running gateway's bus schedulers: `bus/scan`, `bus/read` and `bus/point`.
// Every request is one more job in the bus's queue (ModbusBusRunner.transact), so it waits its turn
// behind the polls: one transaction at a time on a serial line, with the silent interval and the
// late-reply quarantine, never a second master on the wire.
import type { ModbusBusRunner } from '../devices/index.js';
import { formatMappingError, issuesToErrors } from '../devices/mapping-errors.js';
import { LinkDown, ModbusException, ModbusTimeout, parseReply, readRequest } from '../devices/modbus/pdu.js';
import { decodeAll, nearValue } from '../devices/modbus/probe.js';
import { modbusPointSchema } from '../devices/modbus/schema.js';
import type { ActionResult, Handlers } from './actions.js';
import type { MappingFiles } from './mapping-files.js';
import { requestError, type RequestBody } from './requests.js';

export interface CommissioningSources {
  modbusBus(busId: string): ModbusBusRunner | undefined;
  /** Bus ids of the running mappings, for the error that names them. */
  busIds(): string[];
  /** The mapping file a running device comes from. */
  fileOfDevice(deviceId: string): string | undefined;
  mappingFiles: MappingFiles;
}

const fail = (source: string, path: string, message: string): ActionResult => ({ ok: false, errors: [requestError(source, path, message)] });

/** Exceptions 10 and 11 are a TCP gateway saying the unit behind it is not there. */
const absent = (err: unknown) => err instanceof ModbusTimeout || (err instanceof ModbusException && (err.exceptionCode === 10 || err.exceptionCode === 11));

export function commissioningHandlers(s: CommissioningSources): Pick<Handlers, 'bus/scan' | 'bus/read' | 'bus/point'> {
  const scanning = new Set<string>();

  const busOf = (id: string, source: string): ModbusBusRunner | ActionResult => {
    const bus = s.modbusBus(id);
    if (bus) return bus;
    return fail(source, 'bus', `no running Modbus bus has this id (got ${JSON.stringify(id)}; buses: ${s.busIds().join(', ') || 'none'})`);
  };

  return {
    'bus/scan': async (body, source) => {
      const bus = busOf(body.bus, source);
      if (!('transact' in bus)) return bus;
      if (bus.bus.type !== 'modbus-tcp' && body.from < 1) return fail(source, 'from', `expected 1…247 on a serial line: unit 0 is the broadcast address, it never answers (got ${body.from})`);
      if (bus.bus.type !== 'modbus-tcp' && body.to > 247) return fail(source, 'to', `expected 1…247 on a serial line (got ${body.to})`);
      if (scanning.has(body.bus)) return fail(source, 'bus', 'a scan of this bus is already running; ask again when it has answered');
      scanning.add(body.bus);
      const began = Date.now();
      try {
        const answered: Array<{ unitId: number; answer: string }> = [];
        let silent = 0;
        const request = readRequest(body.table === 'holding' ? 3 : 4, body.address, 1);
        for (let unit = body.from; unit <= body.to; unit++) {
          try {
            parseReply(request, await bus.transact(unit, request, { timeoutMs: body.timeoutMs }));
            answered.push({ unitId: unit, answer: 'registers' });
          } catch (err) {
            if (err instanceof LinkDown) return fail(source, 'bus', `the bus went offline during the scan, at unit ${unit}: ${err.message}`);
            if (absent(err)) silent++;
            else answered.push({ unitId: unit, answer: err instanceof ModbusException ? err.message : `an invalid reply: ${(err as Error).message}` });
          }
        }
        return { ok: true, data: { bus: body.bus, from: body.from, to: body.to, table: body.table, address: body.address, answered, silent, ms: Date.now() - began } };
      } finally {
        scanning.delete(body.bus);
      }
    },

    'bus/read': async (body, source) => {
      const bus = busOf(body.bus, source);
      if (!('transact' in bus)) return bus;
      const request = readRequest(body.table === 'holding' ? 3 : 4, body.address, body.count);
      let registers: number[];
      try {
        registers = parseReply(request, await bus.transact(body.unitId, request, { timeoutMs: body.timeoutMs })).registers ?? [];
      } catch (err) {
        if (err instanceof ModbusException) return fail(source, 'address', `unit ${body.unitId} refused the read: ${err.message}`);
        if (err instanceof ModbusTimeout) return fail(source, 'unitId', err.message);
        return fail(source, 'bus', (err as Error).message);
      }
      const all = decodeAll(registers, body.address);
      const decodings = body.expect === undefined ? all.map((d) => ({ ...d, scale: 1 })) : nearValue(all, body.expect, body.tolerance);
      return { ok: true, data: { bus: body.bus, unitId: body.unitId, table: body.table, address: body.address, registers, decodings } };
    },

    'bus/point': (body, source) => {
      const point = pointOf(body);
      const parsed = modbusPointSchema.safeParse(point, { reportInput: true });
      const errors = parsed.success ? [] : issuesToErrors(source, 'point', parsed.error.issues, () => Object.keys(modbusPointSchema.shape)).map(formatMappingError);
      if (errors.length === 0 && body.device !== undefined) {
        const file = s.fileOfDevice(body.device);
        if (file === undefined) return fail(source, 'device', `no running device has this id (got ${JSON.stringify(body.device)})`);
        errors.push(...checkInMapping(s.mappingFiles, file, body.device, point));
      }
      return { ok: true, data: { point, valid: errors.length === 0, errors } };
    },
  };
}

/** The point JSON for a mapping's `points`, without what is the default anyway. */
export function pointOf(body: RequestBody<'bus/point'>): Record<string, unknown> {
  return {
    name: body.name, table: body.table, address: body.address, type: body.type,
    byteOrder: body.byteOrder,
    ...(body.scale !== undefined && body.scale !== 1 ? { scale: body.scale } : {}),
    ...(body.unit !== undefined ? { unit: body.unit } : {}),
    ...(body.decimals !== undefined ? { decimals: body.decimals } : {}),
  };
}

/** The point added to its device in the mapping file, checked as `check` would; nothing is written. */
function checkInMapping(files: MappingFiles, file: string, deviceId: string, point: Record<string, unknown>): string[] {
  let json: { devices?: Array<Record<string, unknown>> };
  try {
    json = JSON.parse(files.read(file)) as typeof json;
  } catch (err) {
    return [`${file}: cannot be read to check the point in it: ${(err as Error).message}`];
  }
  const device = json.devices?.find((d) => d.id === deviceId);
  if (!device) return [`${file}: device "${deviceId}" is not written in this file (it may come from an include): the point was checked on its own only`];
  device.points = [...(Array.isArray(device.points) ? device.points : []), point];
  const checked = files.validate(file, JSON.stringify(json, null, 2));
  return checked.ok ? [] : checked.errors.map(formatMappingError);
}
