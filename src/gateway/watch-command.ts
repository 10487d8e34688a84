// The start-up hint's mosquitto_sub line: built from the devices' real topic prefixes (src/watch-hint.ts).
export { devicePrefixes, watchCommand, watchFilters } from '../watch-hint.js';
