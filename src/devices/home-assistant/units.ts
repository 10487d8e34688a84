// From a point's unit (and, for a few unit-less quantities, its name) to Home Assistant's device
// class and state class. Device classes fix the units Home Assistant accepts, so a unit spelt the
// industrial way ("%RH") is given in Home Assistant's spelling ("%").

export type StateClass = 'measurement' | 'total' | 'total_increasing';

export interface SensorSemantics {
  deviceClass?: string;
  stateClass: StateClass;
  /** The unit as Home Assistant expects it; undefined for none. */
  unit?: string;
}

interface UnitRule {
  deviceClass: string;
  /** Counters that only grow (energy meters' registers); Home Assistant handles a reset to zero. */
  counter?: boolean;
  /** Home Assistant's spelling when it differs. */
  haUnit?: string;
}

const rules = new Map<string, UnitRule>();
const add = (deviceClass: string, units: string[], extra: Omit<UnitRule, 'deviceClass'> = {}) => {
  for (const unit of units) rules.set(unit, { deviceClass, ...extra });
};
add('voltage', ['V', 'mV', 'kV']);
add('current', ['A', 'mA']);
add('power', ['W', 'kW', 'MW']);
add('energy', ['Wh', 'kWh', 'MWh'], { counter: true });
add('apparent_power', ['VA', 'kVA']);
add('reactive_power', ['var', 'kvar']);
add('reactive_energy', ['varh', 'kvarh'], { counter: true });
add('frequency', ['Hz', 'kHz']);
add('temperature', ['°C', '°F', 'K']);
add('humidity', ['%RH', '% RH', '%rH'], { haUnit: '%' });
add('pressure', ['Pa', 'hPa', 'kPa', 'bar', 'mbar', 'psi', 'mmHg', 'inHg']);
add('illuminance', ['lx']);
add('speed', ['km/h', 'm/s', 'mph', 'kn']);
add('distance', ['mm', 'cm', 'm', 'km']);
add('duration', ['s', 'min', 'h', 'd']);
add('weight', ['g', 'kg']);
add('signal_strength', ['dBm']);

/** Device class and state class of a numeric sensor. */
export function numericSemantics(unit: string | undefined, pointName: string): SensorSemantics {
  const trimmed = unit?.trim() || undefined;
  const rule = trimmed === undefined ? undefined : rules.get(trimmed);
  if (rule) return { deviceClass: rule.deviceClass, stateClass: rule.counter ? 'total_increasing' : 'measurement', unit: rule.haUnit ?? trimmed };
  const name = pointName.toLowerCase();
  if (trimmed === '%' && /humid/.test(name)) return { deviceClass: 'humidity', stateClass: 'measurement', unit: '%' };
  if ((trimmed === undefined || trimmed === '%') && /power[\s_/-]*factor|(^|[^a-z])cos[\s_-]*phi/.test(name)) {
    return { deviceClass: 'power_factor', stateClass: 'measurement', unit: trimmed };
  }
  return { stateClass: 'measurement', unit: trimmed };
}
