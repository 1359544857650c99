/** Entry point of a durable kernel's persistence worker: runs the WAL writer on its start data. */
import { parentPort, workerData } from 'node:worker_threads';
import type { PersistenceWorkerData } from '../persistence/protocol.js';
import { runWalWriter } from '../persistence/wal-writer.js';

if (parentPort !== null && workerData !== null && typeof workerData === 'object') {
  const port = parentPort;
  runWalWriter(workerData as PersistenceWorkerData, (message) => port.postMessage(message));
}
