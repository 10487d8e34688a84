import { describe, expect, it } from 'vitest';
import { setCommandSchema } from '../../../src/devices/line/schema.js';
import { buildSetCommand, convertFieldValue, renderTemplate } from '../../../src/devices/line/values.js';

const number = { type: 'number' as const, scale: 1, offset: 0, decimals: undefined };

describe('field conversion', () => {
  it('applies scale, offset and decimals', () => {
    expect(convertFieldValue('215', { ...number, scale: 0.1 })).toEqual({ ok: true, value: 21.5 });
    expect(convertFieldValue('-12.345', { ...number, decimals: 2 })).toEqual({ ok: true, value: -12.35 });
    expect(convertFieldValue('100', { ...number, scale: 1.8, offset: 32 })).toEqual({ ok: true, value: 212 });
    expect(convertFieldValue(3, { ...number, scale: 1 / 3, decimals: 3 })).toEqual({ ok: true, value: 1 });
    expect(convertFieldValue('1e3', number)).toEqual({ ok: true, value: 1000 });
    expect(convertFieldValue('0x1F', number)).toEqual({ ok: true, value: 31 });
  });

  it('rounds integers after scaling', () => {
    expect(convertFieldValue('12.6', { ...number, type: 'integer' })).toEqual({ ok: true, value: 13 });
    expect(convertFieldValue('-7', { ...number, type: 'integer', scale: 2 })).toEqual({ ok: true, value: -14 });
  });

  it('reports text that is not a number instead of publishing NaN', () => {
    expect(convertFieldValue('abc', number)).toMatchObject({ ok: false });
    expect(convertFieldValue('', number)).toMatchObject({ ok: false });
    expect(convertFieldValue('12abc', number)).toMatchObject({ ok: false });
    expect(convertFieldValue('1e999', number)).toMatchObject({ ok: false });
  });

  it('understands the usual boolean spellings', () => {
    for (const t of ['1', 'true', 'ON', 'yes', true, 5]) expect(convertFieldValue(t, { ...number, type: 'boolean' })).toEqual({ ok: true, value: true });
    for (const f of ['0', 'false', 'off', 'No', false, 0]) expect(convertFieldValue(f, { ...number, type: 'boolean' })).toEqual({ ok: true, value: false });
    expect(convertFieldValue('maybe', { ...number, type: 'boolean' })).toMatchObject({ ok: false });
  });

  it('keeps strings as they are', () => {
    expect(convertFieldValue(' A ', { ...number, type: 'string' })).toEqual({ ok: true, value: ' A ' });
    expect(convertFieldValue(12, { ...number, type: 'string' })).toEqual({ ok: true, value: '12' });
  });
});

describe('set commands', () => {
  const setpoint = setCommandSchema.parse({ template: 'SET {value}\r\n', type: 'number', min: 5, max: 30, decimals: 1 });

  it('validates and renders the template', () => {
    expect(buildSetCommand('21.25', setpoint)).toEqual({ ok: true, value: 21.25, text: 'SET 21.3\r\n' });
    expect(buildSetCommand(' 5 ', setpoint)).toEqual({ ok: true, value: 5, text: 'SET 5.0\r\n' });
  });

  it('rejects values out of range or of the wrong type with a reason', () => {
    expect(buildSetCommand('31', setpoint)).toEqual({ ok: false, error: '31 is above the maximum 30' });
    expect(buildSetCommand('4.9', setpoint)).toEqual({ ok: false, error: '4.9 is below the minimum 5' });
    expect(buildSetCommand('warm', setpoint)).toMatchObject({ ok: false, error: expect.stringContaining('expected a number') });
    expect(buildSetCommand('NaN', setpoint)).toMatchObject({ ok: false });
    const int = setCommandSchema.parse({ template: 'N{value}\n', type: 'integer' });
    expect(buildSetCommand('2.5', int)).toMatchObject({ ok: false, error: expect.stringContaining('integer') });
  });

  it('writes configured words for booleans', () => {
    const relay = setCommandSchema.parse({ template: 'RELAY {value}\n', type: 'boolean', trueText: 'ON', falseText: 'OFF' });
    expect(buildSetCommand('true', relay)).toMatchObject({ ok: true, value: true, text: 'RELAY ON\n' });
    expect(buildSetCommand('0', relay)).toMatchObject({ ok: true, value: false, text: 'RELAY OFF\n' });
    expect(buildSetCommand('perhaps', relay)).toMatchObject({ ok: false });
  });

  it('refuses string values that would inject extra lines', () => {
    const label = setCommandSchema.parse({ template: 'LABEL {value}\n', type: 'string', maxLength: 8 });
    expect(buildSetCommand('pump', label)).toMatchObject({ ok: true, text: 'LABEL pump\n' });
    expect(buildSetCommand('x\nRESET', label)).toMatchObject({ ok: false, error: expect.stringContaining('control characters') });
    expect(buildSetCommand('123456789', label)).toMatchObject({ ok: false, error: expect.stringContaining('longer than 8') });
  });

  it('templates support literal braces', () => {
    expect(renderTemplate('{{"v":{value}}}\n', '5')).toBe('{"v":5}\n');
    expect(renderTemplate('PING\n', '5')).toBe('PING\n');
  });
});
