// NMEA 0183 sentences: checksum verification and named fields for the sentences GPS receivers send.
// Every field is offered three ways: by name ("latitude"), qualified by sentence ("GGA.latitude",
// for when two sentences carry the same quantity) and raw by 1-based position ("GSV.3").

export type NmeaValue = string | number | boolean;

export type NmeaParseResult =
  | { ok: true; talker: string; sentence: string; fields: Record<string, NmeaValue> }
  | { ok: false; reason: 'checksum' | 'no-checksum' | 'malformed'; detail: string };

/** XOR of every character between the leading "$" or "!" and the "*". */
export function nmeaChecksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return sum;
}

const namedFieldsBySentence: Record<string, readonly string[]> = {
  GGA: ['utcTime', 'latitude', 'longitude', 'fixQuality', 'satellites', 'hdop', 'altitude', 'geoidSeparation', 'dgpsAgeSeconds', 'dgpsStationId'],
  RMC: ['utcTime', 'dataValid', 'latitude', 'longitude', 'speedKnots', 'speedKmh', 'courseDegrees', 'date', 'dateTime', 'magneticVariation', 'modeIndicator'],
  GLL: ['latitude', 'longitude', 'utcTime', 'dataValid', 'modeIndicator'],
  VTG: ['courseDegrees', 'courseMagneticDegrees', 'speedKnots', 'speedKmh', 'modeIndicator'],
  GSA: ['selectionMode', 'fixType', 'satellitesUsed', 'pdop', 'hdop', 'vdop'],
  GSV: ['satellitesInView'],
  ZDA: ['utcTime', 'date', 'dateTime'],
};

/** Every name the parser can produce, plain and sentence-qualified. */
export const nmeaFieldNames: ReadonlySet<string> = new Set(
  Object.entries(namedFieldsBySentence).flatMap(([sentence, names]) => [...names, ...names.map((n) => `${sentence}.${n}`)]),
);

/** "GSV.3", "PUBX.2": a raw field by sentence and 1-based position. */
export function isNmeaRawFieldName(name: string): boolean {
  return /^[A-Z][A-Z0-9]{2,7}\.[1-9][0-9]*$/.test(name);
}

const addressPattern = /^[A-Z][A-Z0-9]{2,7}$/;

export function parseNmeaSentence(line: string, requireChecksum = true): NmeaParseResult {
  const start = line.search(/[$!]/);
  if (start < 0) return { ok: false, reason: 'malformed', detail: 'no "$" or "!" start character' };
  const text = line.slice(start);
  if (!/^[\x20-\x7e]*$/.test(text)) return { ok: false, reason: 'malformed', detail: 'non-printable characters' };

  const star = text.lastIndexOf('*');
  let body: string;
  if (star >= 0) {
    body = text.slice(1, star);
    const given = text.slice(star + 1);
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, reason: 'malformed', detail: `checksum "${given}" is not two hex digits` };
    const expected = nmeaChecksum(body);
    if (parseInt(given, 16) !== expected) {
      return { ok: false, reason: 'checksum', detail: `checksum ${given.toUpperCase()} does not match ${expected.toString(16).toUpperCase().padStart(2, '0')}` };
    }
  } else {
    if (requireChecksum) return { ok: false, reason: 'no-checksum', detail: 'no "*hh" checksum' };
    body = text.slice(1);
  }

  const parts = body.split(',');
  const address = parts[0];
  if (!addressPattern.test(address)) return { ok: false, reason: 'malformed', detail: `"${address}" is not a sentence address` };
  const proprietary = address.startsWith('P');
  const talker = proprietary ? 'P' : address.slice(0, 2);
  const sentence = proprietary || address.length !== 5 ? address : address.slice(2);
  const values = parts.slice(1);

  const fields: Record<string, NmeaValue> = {};
  values.forEach((v, i) => {
    if (v !== '') fields[`${sentence}.${i + 1}`] = v;
  });
  const named = decodeSentence(sentence, values);
  for (const [name, value] of Object.entries(named)) {
    if (value === undefined) continue;
    fields[name] = value;
    fields[`${sentence}.${name}`] = value;
  }
  return { ok: true, talker, sentence, fields };
}

type Named = Record<string, NmeaValue | undefined>;

function decodeSentence(sentence: string, f: string[]): Named {
  switch (sentence) {
    case 'GGA':
      return {
        utcTime: time(f[0]),
        latitude: coordinate(f[1], f[2]),
        longitude: coordinate(f[3], f[4]),
        fixQuality: integer(f[5]),
        satellites: integer(f[6]),
        hdop: decimal(f[7]),
        altitude: decimal(f[8]),
        geoidSeparation: decimal(f[10]),
        dgpsAgeSeconds: decimal(f[12]),
        dgpsStationId: nonEmpty(f[13]),
      };
    case 'RMC': {
      const speedKnots = decimal(f[6]);
      const date = ddmmyy(f[8]);
      const utcTime = time(f[0]);
      return {
        utcTime,
        dataValid: status(f[1]),
        latitude: coordinate(f[2], f[3]),
        longitude: coordinate(f[4], f[5]),
        speedKnots,
        speedKmh: speedKnots === undefined ? undefined : speedKnots * 1.852,
        courseDegrees: decimal(f[7]),
        date,
        dateTime: date !== undefined && utcTime !== undefined ? `${date}T${utcTime}Z` : undefined,
        magneticVariation: signed(decimal(f[9]), f[10], 'W'),
        modeIndicator: nonEmpty(f[11]),
      };
    }
    case 'GLL':
      return {
        latitude: coordinate(f[0], f[1]),
        longitude: coordinate(f[2], f[3]),
        utcTime: time(f[4]),
        dataValid: status(f[5]),
        modeIndicator: nonEmpty(f[6]),
      };
    case 'VTG':
      return {
        courseDegrees: decimal(f[0]),
        courseMagneticDegrees: decimal(f[2]),
        speedKnots: decimal(f[4]),
        speedKmh: decimal(f[6]),
        modeIndicator: nonEmpty(f[8]),
      };
    case 'GSA':
      return {
        selectionMode: nonEmpty(f[0]),
        fixType: integer(f[1]),
        satellitesUsed: f.length >= 14 ? f.slice(2, 14).filter((s) => s !== '').length : undefined,
        pdop: decimal(f[14]),
        hdop: decimal(f[15]),
        vdop: decimal(f[16]),
      };
    case 'GSV':
      return { satellitesInView: integer(f[2]) };
    case 'ZDA': {
      const utcTime = time(f[0]);
      const day = integer(f[1]);
      const month = integer(f[2]);
      const year = integer(f[3]);
      const date = day !== undefined && month !== undefined && year !== undefined ? `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}` : undefined;
      return { utcTime, date, dateTime: date !== undefined && utcTime !== undefined ? `${date}T${utcTime}Z` : undefined };
    }
    default:
      return {};
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

function decimal(s: string | undefined): number | undefined {
  if (s === undefined || !/^[-+]?(\d+\.?\d*|\.\d+)$/.test(s)) return undefined;
  return Number(s);
}

function integer(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return Number(s);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** "ddmm.mmmm" / "dddmm.mmmm" with a hemisphere letter → signed decimal degrees. */
function coordinate(value: string | undefined, hemisphere: string | undefined): number | undefined {
  if (value === undefined || hemisphere === undefined || !/^\d{4,5}(\.\d+)?$/.test(value)) return undefined;
  if (!['N', 'S', 'E', 'W'].includes(hemisphere)) return undefined;
  const dot = value.indexOf('.');
  const minutesStart = (dot < 0 ? value.length : dot) - 2;
  const degrees = Number(value.slice(0, minutesStart));
  const minutes = Number(value.slice(minutesStart));
  if (minutes >= 60) return undefined;
  const magnitude = degrees + minutes / 60;
  if (magnitude > (hemisphere === 'N' || hemisphere === 'S' ? 90 : 180)) return undefined;
  return hemisphere === 'S' || hemisphere === 'W' ? -magnitude : magnitude;
}

function signed(value: number | undefined, direction: string | undefined, negative: string): number | undefined {
  if (value === undefined) return undefined;
  return direction === negative ? -value : value;
}

/** "hhmmss" or "hhmmss.sss" → "hh:mm:ss" / "hh:mm:ss.sss". */
function time(s: string | undefined): string | undefined {
  const m = s === undefined ? null : /^(\d{2})(\d{2})(\d{2})(\.\d+)?$/.exec(s);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3]) > 60) return undefined;
  return `${m[1]}:${m[2]}:${m[3]}${m[4] ?? ''}`;
}

/** RMC "ddmmyy" → "20yy-mm-dd" (years 80–99 are 19yy, as receivers of that era meant). */
function ddmmyy(s: string | undefined): string | undefined {
  const m = s === undefined ? null : /^(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const yy = Number(m[3]);
  const year = yy >= 80 ? 1900 + yy : 2000 + yy;
  if (Number(m[2]) < 1 || Number(m[2]) > 12 || Number(m[1]) < 1 || Number(m[1]) > 31) return undefined;
  return `${year}-${m[2]}-${m[1]}`;
}

function status(s: string | undefined): boolean | undefined {
  if (s === 'A') return true;
  if (s === 'V') return false;
  return undefined;
}
