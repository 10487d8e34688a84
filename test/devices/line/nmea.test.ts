import { describe, expect, it } from 'vitest';
import { isNmeaRawFieldName, nmeaChecksum, parseNmeaSentence } from '../../../src/devices/line/nmea.js';

// Sentences from receiver manuals and the NMEA reference examples, checksums verified independently.
const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
const vtg = '$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48';
const gsa = '$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39';
const gll = '$GPGLL,4916.45,N,12311.12,W,225444,A,*1D';
const gsv = '$GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45*75';
const gnGga = '$GNGGA,001043.00,4404.14036,N,12118.85961,W,1,12,0.98,1113.0,M,-21.3,M,,*47';
const zda = '$GPZDA,201530.00,04,07,2002,00,00*60';

function fieldsOf(sentence: string): Record<string, unknown> {
  const r = parseNmeaSentence(sentence);
  if (!r.ok) throw new Error(`${sentence}: ${r.reason} ${r.detail}`);
  return r.fields;
}

describe('NMEA 0183 checksum', () => {
  it('is the XOR of the characters between "$" and "*"', () => {
    expect(nmeaChecksum('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')).toBe(0x47);
    expect(nmeaChecksum('')).toBe(0);
  });

  it('rejects a sentence whose checksum does not match', () => {
    const r = parseNmeaSentence(gga.replace('*47', '*48'));
    expect(r).toMatchObject({ ok: false, reason: 'checksum' });
  });

  it('rejects a sentence with one corrupted character', () => {
    const r = parseNmeaSentence(gga.replace('545.4', '545.5'));
    expect(r).toMatchObject({ ok: false, reason: 'checksum' });
  });

  it('accepts lowercase hex digits', () => {
    expect(parseNmeaSentence(rmc.replace('*6A', '*6a')).ok).toBe(true);
  });

  it('requires a checksum unless told otherwise', () => {
    const bare = gga.slice(0, gga.indexOf('*'));
    expect(parseNmeaSentence(bare)).toMatchObject({ ok: false, reason: 'no-checksum' });
    expect(parseNmeaSentence(bare, false).ok).toBe(true);
  });

  it('rejects garbage, truncated checksums and binary noise as malformed', () => {
    expect(parseNmeaSentence('hello world')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(parseNmeaSentence('$GPGGA,1*4')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(parseNmeaSentence('$GP\u0001GGA,1*00')).toMatchObject({ ok: false, reason: 'malformed' });
    expect(parseNmeaSentence('$*00')).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('skips line noise before the "$"', () => {
    expect(fieldsOf('\u00ff\u00fe' + gga).latitude).toBeCloseTo(48.1173, 4);
  });
});

describe('NMEA 0183 sentences', () => {
  it('GGA: position, fix quality, satellites, altitude', () => {
    const f = fieldsOf(gga);
    expect(f.latitude).toBeCloseTo(48 + 7.038 / 60, 9);
    expect(f.longitude).toBeCloseTo(11 + 31 / 60, 9);
    expect(f).toMatchObject({ utcTime: '12:35:19', fixQuality: 1, satellites: 8, hdop: 0.9, altitude: 545.4, geoidSeparation: 46.9 });
    expect(f['GGA.altitude']).toBe(545.4);
    expect(f['GGA.9']).toBe('545.4');
    expect(f.dgpsAgeSeconds).toBeUndefined();
  });

  it('GGA from a multi-constellation (GN) receiver: southern/western hemispheres are negative', () => {
    const f = fieldsOf(gnGga);
    expect(f.latitude).toBeCloseTo(44 + 4.14036 / 60, 9);
    expect(f.longitude).toBeCloseTo(-(121 + 18.85961 / 60), 9);
    expect(f).toMatchObject({ satellites: 12, altitude: 1113, geoidSeparation: -21.3, utcTime: '00:10:43.00' });
  });

  it('GGA without a fix publishes the fix quality but no position', () => {
    const body = 'GPGGA,235959.00,,,,,0,00,,,M,,M,,';
    const f = fieldsOf(`$${body}*${nmeaChecksum(body).toString(16).padStart(2, '0')}`);
    expect(f.fixQuality).toBe(0);
    expect(f.satellites).toBe(0);
    expect(f).not.toHaveProperty('latitude');
    expect(f).not.toHaveProperty('altitude');
  });

  it('RMC: validity, speed in knots and km/h, course, date, magnetic variation', () => {
    const f = fieldsOf(rmc);
    expect(f).toMatchObject({ dataValid: true, speedKnots: 22.4, courseDegrees: 84.4, date: '1994-03-23', dateTime: '1994-03-23T12:35:19Z', magneticVariation: -3.1 });
    expect(f.speedKmh).toBeCloseTo(22.4 * 1.852, 9);
    expect(f.latitude).toBeCloseTo(48.1173, 4);
  });

  it('VTG, GSA, GLL, GSV, ZDA', () => {
    expect(fieldsOf(vtg)).toMatchObject({ courseDegrees: 54.7, courseMagneticDegrees: 34.4, speedKnots: 5.5, speedKmh: 10.2 });
    expect(fieldsOf(gsa)).toMatchObject({ selectionMode: 'A', fixType: 3, satellitesUsed: 5, pdop: 2.5, hdop: 1.3, vdop: 2.1 });
    const gllFields = fieldsOf(gll);
    expect(gllFields.latitude).toBeCloseTo(49 + 16.45 / 60, 9);
    expect(gllFields.longitude).toBeCloseTo(-(123 + 11.12 / 60), 9);
    expect(gllFields).toMatchObject({ utcTime: '22:54:44', dataValid: true });
    expect(fieldsOf(gsv)).toMatchObject({ satellitesInView: 8, 'GSV.1': '2' });
    expect(fieldsOf(zda)).toMatchObject({ date: '2002-07-04', dateTime: '2002-07-04T20:15:30.00Z' });
  });

  it('reports talker and sentence type; proprietary sentences keep their whole address', () => {
    expect(parseNmeaSentence(gnGga)).toMatchObject({ ok: true, talker: 'GN', sentence: 'GGA' });
    const body = 'PUBX,00,081350.00,4717.113210,N';
    const r = parseNmeaSentence(`$${body}*${nmeaChecksum(body).toString(16).padStart(2, '0')}`);
    expect(r).toMatchObject({ ok: true, talker: 'P', sentence: 'PUBX', fields: { 'PUBX.1': '00', 'PUBX.2': '081350.00' } });
  });

  it('ignores impossible coordinates instead of publishing them', () => {
    const body = 'GPGLL,9116.45,N,18111.12,W,225444,A,';
    const f = fieldsOf(`$${body}*${nmeaChecksum(body).toString(16).padStart(2, '0')}`);
    expect(f).not.toHaveProperty('latitude');
    expect(f).not.toHaveProperty('longitude');
  });

  it('names raw fields "<sentence>.<position>"', () => {
    expect(isNmeaRawFieldName('GSV.3')).toBe(true);
    expect(isNmeaRawFieldName('PUBX.12')).toBe(true);
    expect(isNmeaRawFieldName('GSV.0')).toBe(false);
    expect(isNmeaRawFieldName('latitude')).toBe(false);
  });
});
