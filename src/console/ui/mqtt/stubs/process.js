// The `process` global MQTT.js and readable-stream expect in a browser.
export { default as process } from 'process/browser.js';
