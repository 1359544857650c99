/** Entry point of the replication worker thread: one ReplicationHost per NetworkingKernel. */
import { parentPort, workerData } from 'node:worker_threads';
import { ReplicationHost } from '../network/replication-host.js';
import type { FromWorker, ReplicationWorkerData, ToWorker } from '../network/worker-protocol.js';

if (parentPort !== null) {
  const port = parentPort;
  const post = (message: FromWorker): void => port.postMessage(message);
  const host = new ReplicationHost(workerData as ReplicationWorkerData, post);
  port.on('message', (message: ToWorker) => host.handle(message));
  host.start().then(
    (address) => post({ type: 'ready', address }),
    (error: NodeJS.ErrnoException) => post({ type: 'failed', message: error.message, code: error.code ?? 'ESTART' }),
  );
}
