// Which Home Assistant component (entity platform) a point becomes, and which overrides make sense.
import type { HomeAssistantComponent } from './schema.js';

export interface PointKind {
  writable: boolean;
  /** Published as "true"/"false". */
  bool: boolean;
  /** Published as free text. */
  text: boolean;
}

/** The component a point gets without an override. */
export function defaultComponent(kind: PointKind): HomeAssistantComponent {
  if (kind.bool) return kind.writable ? 'switch' : 'binary_sensor';
  if (kind.text) return 'sensor';
  return kind.writable ? 'number' : 'sensor';
}

/** Why `component` cannot announce this point, or undefined when it can. */
export function homeAssistantComponentIssue(component: HomeAssistantComponent | undefined, kind: PointKind): string | undefined {
  switch (component) {
    case undefined:
    case 'sensor':
      return undefined;
    case 'binary_sensor':
      return kind.bool ? undefined : 'a binary_sensor needs a boolean (type bool or bit); use "sensor"';
    case 'switch':
      if (!kind.bool) return 'a switch needs a boolean (type bool or bit); use "number" for a writable number';
      return kind.writable ? undefined : 'a switch needs a writable point: add "writable": true, or use "binary_sensor"';
    case 'number':
      if (kind.bool || kind.text) return `a number needs a numeric point (this one is ${kind.bool ? 'a boolean' : 'text'})`;
      return kind.writable ? undefined : 'a number needs a writable point: add "writable": true, or use "sensor"';
  }
}
