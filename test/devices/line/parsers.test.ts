import { describe, expect, it } from 'vitest';
import { createLineParser } from '../../../src/devices/line/parsers.js';

describe('regex parser', () => {
  const parse = createLineParser({ type: 'regex', pattern: '^T=(?<temperature>-?[\\d.]+) H=(?<humidity>[\\d.]+)(?: B=(?<battery>\\d+))?$', flags: '' });

  it('returns the named groups that matched', () => {
    expect(parse('T=-3.5 H=41.2')).toEqual({ ok: true, fields: { temperature: '-3.5', humidity: '41.2' } });
    expect(parse('T=20 H=40 B=87')).toEqual({ ok: true, fields: { temperature: '20', humidity: '40', battery: '87' } });
  });

  it('rejects a line that does not match', () => {
    expect(parse('ERR 17')).toMatchObject({ ok: false, reason: 'no-match' });
  });

  it('works with flags, repeatedly (no lastIndex state)', () => {
    const p = createLineParser({ type: 'regex', pattern: 'temp:(?<t>\\d+)', flags: 'i' });
    expect(p('TEMP:5')).toEqual({ ok: true, fields: { t: '5' } });
    expect(p('TEMP:6')).toEqual({ ok: true, fields: { t: '6' } });
  });
});

describe('JSON lines parser', () => {
  const parse = createLineParser({ type: 'json' });

  it('flattens nested objects and arrays into dotted names', () => {
    expect(parse('{"t":21.5,"ok":true,"env":{"rh":40,"name":"lab"},"v":[1,2],"n":null}')).toEqual({
      ok: true,
      fields: { t: 21.5, ok: true, 'env.rh': 40, 'env.name': 'lab', 'v.0': 1, 'v.1': 2 },
    });
  });

  it('rejects invalid JSON and non-objects', () => {
    expect(parse('{"t":21.5')).toMatchObject({ ok: false, reason: 'invalid-json' });
    expect(parse('[1,2]')).toMatchObject({ ok: false, reason: 'invalid-json' });
    expect(parse('42')).toMatchObject({ ok: false, reason: 'invalid-json' });
  });
});

describe('key=value parser', () => {
  it('splits on whitespace, "," or ";" by default', () => {
    const parse = createLineParser({ type: 'key-value', keyValueSeparator: '=' });
    expect(parse('T=21.5, H=40;P=1013 junk')).toEqual({ ok: true, fields: { T: '21.5', H: '40', P: '1013' } });
  });

  it('honours explicit separators and keeps spaces inside values', () => {
    const parse = createLineParser({ type: 'key-value', pairSeparator: '|', keyValueSeparator: ':' });
    expect(parse('mode: auto run|temp:5|url:http://x')).toEqual({ ok: true, fields: { mode: 'auto run', temp: '5', url: 'http://x' } });
  });

  it('rejects a line without pairs', () => {
    const parse = createLineParser({ type: 'key-value', keyValueSeparator: '=' });
    expect(parse('hello world')).toMatchObject({ ok: false, reason: 'no-match' });
    expect(parse('=5')).toMatchObject({ ok: false, reason: 'no-match' });
  });
});

describe('NMEA parser', () => {
  it('passes checksum failures through as their own reason', () => {
    const parse = createLineParser({ type: 'nmea0183', requireChecksum: true });
    expect(parse('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00')).toMatchObject({ ok: false, reason: 'checksum' });
    expect(parse('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47')).toMatchObject({ ok: true, fields: { satellites: 8 } });
  });
});
