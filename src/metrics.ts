/**
 * The `ctfs/metrics` entry: the Prometheus export (a prom-client registry over the shared-memory
 * histograms, and a `/metrics` server). The histograms themselves are in the root entry, which
 * also re-exports this one.
 */
export { createMetricsRegistry } from './metrics/prometheus.js';
export type { MetricsKernel, MetricsReplica, MetricsSources } from './metrics/prometheus.js';
export { MetricsServer } from './metrics/metrics-server.js';
export type { MetricsAddress, MetricsServerOptions } from './metrics/metrics-server.js';
