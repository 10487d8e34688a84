// Home Assistant MQTT discovery for the devices of a mapping.
export { buildDiscoveryConfigs, gatewayDiscoveryConfig, gatewayStateTopic, gatewayIdentifier, humanName, numberRange, boolPayloads, availabilityPayloads, type DiscoveryConfig, type DiscoveryOptions } from './discovery.js';
export { clearHomeAssistantDiscovery, startHomeAssistantDiscovery, type HomeAssistantDiscovery } from './publisher.js';
export { numericSemantics, type SensorSemantics } from './units.js';
