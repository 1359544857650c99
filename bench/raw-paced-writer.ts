// Baseline for the paced latency test: the disk's own stage → durable latency for the same
// arrival process, weighted per fact as ours is. The main thread counts records as it "stages"
// them (an atomic add to a shared word, nothing else); this worker thread, whenever the count is
// ahead of what it has synced, writes that many records of `recordBytes` in one write, fdatasyncs
// through the same backend as the persistence worker, and publishes the synced count. No arena,
// no checksums, no kernel: what is left is the disk and two threads handing a counter over.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { openBackend, type BackendChoice } from '../src/persistence/io-backend.js';

interface PacedJob {
  file: string;
  /** Int32 words: [0] records staged, [1] records synced, [2] 1 = stop. */
  words: SharedArrayBuffer;
  recordBytes: number;
  /** The most records one write takes (the same cap as half the kernel's arena). */
  maxBatchRecords: number;
  backend: BackendChoice;
  /** Bytes to write as zeros and fsync before the run, so the run's writes overwrite written blocks (no size or extent change for fdatasync to journal). */
  prezero?: number;
}

const STAGED = 0;
const SYNCED = 1;
const STOP = 2;
const job = workerData as PacedJob;
const words = new Int32Array(job.words);
const { backend } = openBackend(job.backend);
const arena = new Uint8Array(new SharedArrayBuffer(job.maxBatchRecords * job.recordBytes));
for (let i = 0; i < arena.length; i++) arena[i] = (i * 131) & 0xff;
const ranges = new Uint32Array(2);
const fd = fs.openSync(job.file, 'w');
if (job.prezero !== undefined) {
  const zeros = new Uint8Array(1 << 20);
  for (let at = 0; at < job.prezero; at += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, job.prezero - at), at);
  fs.fsyncSync(fd);
}
parentPort!.postMessage({ ready: true });
let offset = 0;
let synced = 0;
while (Atomics.load(words, STOP) === 0) {
  const staged = Atomics.load(words, STAGED);
  if (staged === synced) {
    // Sleep until the main thread stages more (it notifies on the staged word), as the
    // persistence worker parks on its ring.
    Atomics.wait(words, STAGED, staged, 100);
    continue;
  }
  const n = Math.min(job.maxBatchRecords, staged - synced);
  ranges[0] = 0;
  ranges[1] = n * job.recordBytes;
  offset += backend.writeAndSync(fd, arena, ranges, 1, offset, () => undefined);
  synced += n;
  Atomics.store(words, SYNCED, synced);
}
fs.closeSync(fd);
backend.close();
parentPort!.postMessage({ backend: backend.name });
