// The Home Assistant keys a device mapping may carry: on a device (announce it or not) and on a
// Modbus point or a line field (how its entity looks). Everything is optional: without them
// discovery infers component, device class and state class from the point itself.
import { z } from 'zod';

export const homeAssistantComponents = ['sensor', 'binary_sensor', 'switch', 'number'] as const;
export type HomeAssistantComponent = (typeof homeAssistantComponents)[number];

export const homeAssistantStateClasses = ['measurement', 'total', 'total_increasing', 'none'] as const;

const note = { description: z.string().optional(), _comment: z.string().optional() };

export const homeAssistantDeviceSchema = z.strictObject({
  ...note,
  announce: z.boolean().default(true).describe('false: leave this device out of Home Assistant MQTT discovery'),
});

export const homeAssistantDeviceOption = homeAssistantDeviceSchema
  .optional()
  .describe('Home Assistant MQTT discovery of this device (only with "homeAssistant": { "discovery": true } in the gateway config, which announces every device without "announce": false)');

export const deviceManufacturer = z.string().min(1).optional().describe('Maker of the device, shown on its Home Assistant device page');
export const deviceModel = z.string().min(1).optional().describe('Model of the device, shown on its Home Assistant device page');

export const homeAssistantEntitySchema = z.strictObject({
  ...note,
  announce: z.boolean().default(true).describe('false: no Home Assistant entity for this one (the device\'s other points are still announced)'),
  name: z.string().min(1).optional().describe('Entity name in Home Assistant; default: the point name with "_", "-" and "/" as spaces ("import_energy" → "Import energy")'),
  component: z
    .enum(homeAssistantComponents)
    .optional()
    .describe('Default: "sensor" for numbers and text, "binary_sensor" for read-only booleans, "switch" for writable booleans, "number" for writable numbers'),
  deviceClass: z
    .string()
    .regex(/^[a-z_]+$/, 'a Home Assistant device class like "temperature" or "energy", or "none"')
    .optional()
    .describe('Home Assistant device class, e.g. "temperature"; "none" for none. Default: from the unit (V voltage, A current, W power, kWh energy, Hz frequency, °C temperature, %RH humidity, VA apparent_power, var reactive_power …)'),
  stateClass: z
    .enum(homeAssistantStateClasses)
    .optional()
    .describe('Sensors only. Default: "total_increasing" for energy counters (Wh, kWh, varh …), "measurement" for other numbers, none for text'),
});

export type HomeAssistantEntityOptions = z.output<typeof homeAssistantEntitySchema>;

export const homeAssistantEntityOption = homeAssistantEntitySchema
  .optional()
  .describe('How Home Assistant MQTT discovery announces this one (only with "homeAssistant": { "discovery": true } in the gateway config)');
