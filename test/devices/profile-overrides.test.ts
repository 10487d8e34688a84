// Including a profile and changing one point, or adding one, without copying its point list.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDeviceMapping } from '../../src/devices/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fieldgate-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(include: Record<string, unknown>, name: string) {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1' }], include: [{ profile: 'eastron-sdm120', id: 'meter', bus: 'lan', unitId: 1, ...include }] }));
  return { file, result: loadDeviceMapping(file) };
}

describe('profile overrides by point name', () => {
  const plain = load({}, 'plain');
  if (!plain.result.ok) throw new Error(plain.result.errors.join('\n'));
  const profilePoints = plain.result.mapping.modbusDevices[0]!.points;

  it('one point changed, one added: every other profile point stays as the profile has it', () => {
    const { result } = load({ points: [{ name: 'voltage', decimals: 0, unit: 'volt' }, { name: 'thd', address: 30235, type: 'float32', unit: '%' }] }, 'override');
    if (!result.ok) throw new Error(result.errors.join('\n'));
    const points = result.mapping.modbusDevices[0]!.points;
    expect(points).toHaveLength(profilePoints.length + 1);
    const voltage = points.find((p) => p.name === 'voltage')!;
    const original = profilePoints.find((p) => p.name === 'voltage')!;
    expect(voltage).toEqual({ ...original, decimals: 0, unit: 'volt' });
    expect(points.find((p) => p.name === 'thd')).toMatchObject({ table: 'input', address: 234, type: 'float32', topic: 'fieldgate/meter/thd' });
    for (const p of profilePoints.filter((q) => q.name !== 'voltage')) expect(points.find((q) => q.name === p.name)).toEqual(p);
  });

  it('an error in an override names its place in the include', () => {
    const { file, result } = load({ points: [{ name: 'current', type: 'flot' }] }, 'bad');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([`${file}: include[0].points[0].type: expected one of bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string (got "flot")`]);
  });

  it('an added point that overlaps a profile point is refused', () => {
    const { result } = load({ points: [{ name: 'clash', address: 30002, type: 'uint16' }] }, 'clash');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join('\n')).toMatch(/"clash" \(input 1\) overlaps "voltage" \(input 0–1\)|"voltage" \(input 0–1\) overlaps "clash"/);
  });
});
