/**
 * A thread of the lock benchmark: waits for the start signal, then `ops` times takes lock
 * `shard`, increments a plain (non-atomic) counter word — shard 0's at word 0, shard 1's at word
 * 32, a cache line apart — and releases. Posts its elapsed milliseconds.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardLocks } from 'ctfs';

const { buffer, counter, shard, ops, start } = workerData as {
  buffer: SharedArrayBuffer;
  counter: SharedArrayBuffer;
  shard: number;
  ops: number;
  start: SharedArrayBuffer;
};
const locks = ShardLocks.attach(buffer);
const words = new Int32Array(counter);
const word = shard * 32;
// Word 1 counts the threads that are ready (module loaded, code about to run); word 0 is the go signal.
const gate = new Int32Array(start);
Atomics.add(gate, 1, 1);
Atomics.wait(gate, 0, 0);
const started = performance.now();
for (let i = 0; i < ops; i++) {
  locks.acquire(shard);
  words[word]!++;
  locks.release(shard);
}
parentPort!.postMessage(performance.now() - started);
