// Modules MQTT.js names but the browser transport never calls (ws, url, net, tls).
export default {};
