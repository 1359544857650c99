/**
 * The WAL writer: the loop of the persistence worker (a worker_thread per durable kernel, started
 * from `src/workers/persistence-worker.ts`). It drains the WAL arena (an
 * SpscRing the kernel stages records into), seals each record with its CRC, writes everything
 * available as one batch straight from the arena, fdatasyncs, advances the durable watermark,
 * and only then frees the arena space. It starts a new segment when one grows past its limit,
 * and records each segment start and a clean close in the log's manifest (manifest.ts).
 *
 * Any write or sync error poisons the log: the worker records it in the control block (waking
 * every waiter), stops consuming and exits. It never reports a sequence durable that a sync did
 * not cover, and it never retries a failed fsync (after one, the page cache may have dropped the
 * data; only a reopen with recovery can say what the file holds).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpscRing } from '../core/spsc-ring.js';
import { LatencyHistogram } from '../metrics/latency-histogram.js';
import { DurabilityControl, LogStatus, Stat } from './durability-control.js';
import { toWire } from '../error-wire.js';
import { IoFailure, logFailure, openBackend, type WalBackend } from './io-backend.js';
import { fsyncDirectory } from './data-dir.js';
import { writeManifest } from './manifest.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader, segmentFileName } from './segment.js';
import { recordSequence, sealWalRecord } from './wal-record.js';
import { BatchTrace, traceNow } from './batch-trace.js';
import type { FaultPlan, PersistenceWorkerData, WorkerMessage } from './protocol.js';

/** The worker checks for close this often while idle. */
const IDLE_WAIT_MS = 100;

/** Wraps a backend to fail on purpose (tests). */
function withFaults(backend: WalBackend, plan: FaultPlan | undefined): WalBackend {
  if (plan === undefined) return backend;
  let batch = 0;
  return {
    id: backend.id,
    name: backend.name,
    writeSmall: (fd, bytes, at) => backend.writeSmall(fd, bytes, at),
    close: () => backend.close(),
    writeAndSync(fd, data, ranges, n, at, onWritten) {
      batch++;
      if (batch === plan.failWriteAt) throw new IoFailure(plan.ioCode ?? 'EIO', `write failed (injected at batch ${batch})`);
      const written = backend.writeAndSync(fd, data, ranges, n, at, onWritten);
      if (plan.syncDelayMs !== undefined) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, plan.syncDelayMs);
      if (batch === plan.failSyncAt) throw new IoFailure(plan.ioCode ?? 'EIO', `fdatasync failed (injected at batch ${batch})`);
      return written;
    },
  };
}

/** Poisons the log with the typed error for `error` and tells the kernel. */
function fail(control: DurabilityControl, error: unknown, post: (message: WorkerMessage) => void): void {
  const failure = logFailure(error);
  control.fail(failure);
  post({ type: 'failed', error: toWire(failure) });
}

/** Runs the writer until the ring closes or the log fails; `post` tells the kernel's thread. */
export function runWalWriter(data: PersistenceWorkerData, post: (message: WorkerMessage) => void): void {
  const control = new DurabilityControl(data.control);
  const ring = SpscRing.attach(data.ring);
  const latency = LatencyHistogram.attach(data.latency);
  const trace = data.trace === undefined ? undefined : BatchTrace.attach(data.trace);
  let opened: ReturnType<typeof openBackend>;
  try {
    opened = openBackend(data.backend);
  } catch (error) {
    fail(control, error, post);
    return;
  }
  const backend = withFaults(opened.backend, data.faults);
  control.setBackend(backend.id);
  control.setStatus(LogStatus.Running);
  post({ type: 'ready', backend: backend.name, note: opened.note });

  const bytes = ring.bytes;
  const words = ring.words;
  const capacity = ring.capacity;
  const maxBatchBytes = capacity / 2;
  /** [start, length] pairs of the batch: at most two runs (before and after the ring's wrap). */
  const ranges = new Uint32Array(4);
  let fd = fs.openSync(data.segmentFile, 'r+');
  let fileOffset = Math.max(fs.fstatSync(fd).size, SEGMENT_HEADER_BYTES);
  let tail = ring.tail();
  let manifest = data.manifest;
  try {
    for (;;) {
      if (!ring.waitForData(tail, IDLE_WAIT_MS)) {
        if (ring.closed && ring.head() === tail) break;
        continue;
      }
      const pickedUp = trace === undefined ? 0 : traceNow();
      const head = ring.head();
      // Walk the batch: seal every record, note the contiguous runs and the last sequence. A batch
      // takes at most half the arena, so the kernel keeps staging into the other half while this
      // one is written and synced (taking everything would stall it for a whole fsync).
      let n = 0;
      let batchBytes = 0;
      let pos = tail;
      let runStart = -1;
      let runEnd = -1;
      let lastOffset = -1;
      let records = 0;
      while (pos !== head && batchBytes < maxBatchBytes) {
        const start = ring.messageStart(pos);
        const offset = start & (capacity - 1);
        if (offset !== runEnd) {
          if (runStart >= 0) {
            ranges[2 * n] = runStart;
            ranges[2 * n + 1] = runEnd - runStart;
            n++;
          }
          runStart = offset;
        }
        const length = sealWalRecord(words, offset, records);
        lastOffset = offset;
        runEnd = offset + length;
        batchBytes += ((start + length) | 0) - pos;
        pos = (start + length) | 0;
        records++;
      }
      ranges[2 * n] = runStart;
      ranges[2 * n + 1] = runEnd - runStart;
      n++;
      const lastSequence = recordSequence(words, lastOffset >>> 2);

      const submitted = trace === undefined ? 0 : traceNow();
      let writtenAt = 0;
      const started = performance.now();
      const written = backend.writeAndSync(fd, bytes, ranges, n, fileOffset, () => {
        if (trace !== undefined) writtenAt = traceNow();
        control.markWritten(lastSequence);
      });
      const elapsedMs = performance.now() - started;
      const synced = trace === undefined ? 0 : traceNow();
      control.setLastSyncMicros(Math.round(elapsedMs * 1000));
      latency.record(Math.round(elapsedMs * 1e6));
      fileOffset += written;
      control.add(Stat.Batches, 1);
      control.add(Stat.Records, records);
      control.add(Stat.Bytes, written);
      control.add(Stat.Fsyncs, 1);
      ring.release(pos);
      tail = pos;
      // Last: whoever wakes on the watermark finds the arena space and the counters already there.
      // The stamp goes in first, so whoever sees the watermark finds the batch's stamp there too.
      if (trace !== undefined) trace.stamp(lastSequence, records, pickedUp, submitted, writtenAt, synced, traceNow());
      control.markDurable(lastSequence);

      if (fileOffset >= data.segmentBytes) {
        fd = startSegment(data, backend, fd, lastSequence + 1, capacity);
        fileOffset = SEGMENT_HEADER_BYTES;
        control.add(Stat.Segments, 1);
        // Everything before the new segment is fsynced; from now on recovery insists on it.
        manifest = { ...manifest, generation: manifest.generation + 1, durable: lastSequence, segment: lastSequence + 1 };
        writeManifest(data.dir, manifest);
      }
    }
    // Closed cleanly: every staged record is durable, and recovery may insist on all of them.
    writeManifest(data.dir, { ...manifest, generation: manifest.generation + 1, closed: true, durable: control.durable });
    fs.closeSync(fd);
    backend.close();
    control.setStatus(LogStatus.Closed);
    post({ type: 'closed' });
  } catch (error) {
    fail(control, error, post);
    try {
      fs.closeSync(fd);
    } catch {
      // the log is failed already; nothing more to report
    }
  }
}

/** Creates the next segment (header written and synced, directory synced) and closes the old one. */
function startSegment(data: PersistenceWorkerData, backend: WalBackend, oldFd: number, firstSequence: number, maxBatchBytes: number): number {
  const file = path.join(data.dir, segmentFileName(firstSequence));
  const fd = fs.openSync(file, 'wx');
  const header = encodeSegmentHeader({ firstSequence, logId: data.logId, maxBatchBytes });
  backend.writeSmall(fd, header, 0);
  fsyncDirectory(data.dir);
  fs.closeSync(oldFd);
  return fd;
}

