// Prometheus metrics and the /metrics + /healthz endpoint.
export { createMetrics, type FieldgateMetrics, type MetricsCollector, type MetricsSnapshot, type MetricsOptions } from './registry.js';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './http.js';
export { brokerCollector, bridgesCollector, devicesCollector, gatewayHealth, listenersCollector, sqliteSizeBytes, type HealthOptions } from './collectors.js';
