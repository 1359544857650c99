/**
 * `ctfs node`: one durable replicating node from a config (node-config.ts), with /metrics if
 * asked for, until SIGINT or SIGTERM — then replication stops, everything admitted is made
 * durable and the log is closed cleanly before the process exits.
 */
import { LatencyHistogram } from '../metrics/latency-histogram.js';
import { MetricsServer } from '../metrics/metrics-server.js';
import { DurableKernel } from '../kernels/durable-kernel.js';
import { NetworkingKernel } from '../network/networking-kernel.js';
import type { NodeConfig } from './node-config.js';

export interface RunningNode {
  readonly net: NetworkingKernel;
  readonly metrics: MetricsServer | undefined;
  /** Stops replication, closes the kernel (everything admitted becomes durable) and the metrics server. */
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  const kernel = await DurableKernel.open(config.dir, config.invariant(), config.initialState === undefined ? {} : { initialState: config.initialState });
  let net: NetworkingKernel;
  try {
    net = await NetworkingKernel.start(kernel, {
      nodeId: config.nodeId,
      listen: config.listen,
      ...(config.advertise === undefined ? {} : { advertise: config.advertise }),
      peers: config.peers,
      ...(config.cluster === undefined ? {} : { cluster: config.cluster }),
      ...(config.plaintext ? { plaintext: true } : { secret: config.secret! }),
      ...(config.escrow === undefined ? {} : { escrow: config.escrow }),
    });
  } catch (error) {
    await kernel.close();
    throw error;
  }
  let metrics: MetricsServer | undefined;
  if (config.metrics !== undefined) {
    try {
      metrics = await MetricsServer.spawn(config.metrics, new LatencyHistogram(), kernel.persistenceLatency, { kernels: { [config.nodeId]: kernel }, replication: { [config.nodeId]: net } });
    } catch (error) {
      await net.close();
      await kernel.close();
      throw error;
    }
  }
  return {
    net,
    metrics,
    async stop() {
      await net.close();
      await kernel.close();
      await metrics?.close();
    },
  };
}
