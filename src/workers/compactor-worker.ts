/** Entry point of the history compactor thread: builds and merges the runs of tiered exact indexes. */
import { parentPort } from 'node:worker_threads';
import { runCompactor } from '../causal/compactor-loop.js';

if (parentPort !== null) runCompactor(parentPort);
