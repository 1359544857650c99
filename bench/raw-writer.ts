// Baseline for the durable benchmarks: the raw disk limit of group commit on this machine. A
// worker thread writes `records` records of `recordBytes` from a SharedArrayBuffer to a fresh
// file in batches of `batchRecords`, each batch one write + fdatasync, through the same backends
// the persistence worker uses — no staging, no checksums, no kernel. Posts the elapsed ms.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { openBackend, type BackendChoice } from '../src/persistence/io-backend.js';

interface RawJob {
  file: string;
  records: number;
  recordBytes: number;
  batchRecords: number;
  backend: BackendChoice;
}

const job = workerData as RawJob;
const { backend } = openBackend(job.backend);
const arena = new Uint8Array(new SharedArrayBuffer(job.batchRecords * job.recordBytes));
for (let i = 0; i < arena.length; i++) arena[i] = (i * 131) & 0xff;
const ranges = new Uint32Array(2);
const fd = fs.openSync(job.file, 'w');
const started = performance.now();
let offset = 0;
for (let done = 0; done < job.records; ) {
  const n = Math.min(job.batchRecords, job.records - done);
  ranges[0] = 0;
  ranges[1] = n * job.recordBytes;
  offset += backend.writeAndSync(fd, arena, ranges, 1, offset, () => undefined);
  done += n;
}
const ms = performance.now() - started;
fs.closeSync(fd);
backend.close();
parentPort!.postMessage({ ms, backend: backend.name });
