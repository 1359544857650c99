/**
 * Entry point of a pool thread (loaded by piscina): starts the thread's work over its start data,
 * tells the pool it is ready, and exports the task handler. A failure to start ends the module,
 * which piscina reports to the pool as an 'error' event.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { startPoolThread } from '../pool/pool-thread.js';
import { POOL_READY } from '../pool/protocol.js';

const handler = await startPoolThread(workerData, threadId);
// Relayed by piscina to the pool as a 'message' event.
parentPort?.postMessage({ [POOL_READY]: threadId });
export default handler;
