/**
 * The pool thread: attaches every shard's kernel once (from `workerData`), builds the invariant,
 * then runs tasks — batches of facts under the shard's lock, history digests, log verification
 * and compaction. Loaded by piscina; the default export is the task handler.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { admitShared } from '../core/fact-batch.js';
import { asStorageError, CtfsError, DurableDataLostError, LogFormatError, ManifestError, StorageError, WalCorruptionError } from '../errors.js';
import { Kernel } from '../kernels/kernel.js';
import { historyDigest } from '../kernels/history-digest.js';
import { statSync } from 'node:fs';
import type { CheckpointJob } from '../kernels/durable-kernel.js';
import { writeCheckpoint } from '../persistence/checkpoint.js';
import { compactLog, type CompactionResult } from '../persistence/recovery.js';
import { verifyLog } from '../persistence/verify.js';
import { buildInvariant } from './invariant-spec.js';
import { POOL_PROTOCOL, POOL_READY, type PoolResult, type PoolTask, type PoolWorkerData } from './protocol.js';
import { ShardAdmitter } from './shard-admitter.js';
import { LOCK_ACQUIRED, ShardLocks } from './shard-locks.js';

const data = workerData as PoolWorkerData;
if (data?.protocol !== POOL_PROTOCOL) throw new Error(`pool thread started without ${POOL_PROTOCOL} workerData`);

const invariant = await buildInvariant(data.invariant);
const locks = ShardLocks.attach(data.locks);
// A shard whose snapshot stays mid-publish (its writer died there; the main thread poisons it)
// cannot be attached: this thread then refuses that shard's tasks instead of failing to start,
// so the other shards go on.
const kernels = data.shards.map((shared) => {
  try {
    return Kernel.attach(shared, invariant);
  } catch {
    return undefined;
  }
});
const admitters = kernels.map((kernel, shard) => (kernel === undefined ? undefined : new ShardAdmitter(kernel, kernels, shard, data.peers[shard] ?? [])));
// Tells the pool this thread is ready (piscina relays it as a 'message' event); a failure above
// ends the module, which piscina reports as an 'error' event instead.
parentPort?.postMessage({ [POOL_READY]: threadId });

function poisoned(shard: number): PoolResult<never> {
  return { ok: false, code: 'ShardPoisoned', message: `shard ${shard} is poisoned: a pool thread died while admitting into it` };
}

/** Admits each batch in order under the shard's lock, publishes once, returns the admitted counts. */
function admit(task: Extract<PoolTask, { op: 'admit' }>): PoolResult<number[]> {
  const { shard, batches } = task;
  const admitter = admitters[shard];
  if (admitter === undefined || locks.acquire(shard) !== LOCK_ACQUIRED) return poisoned(shard);
  try {
    const admitted = batches.map((batch) => admitShared(batch, admitter));
    admitter.kernel.publish();
    return { ok: true, value: admitted };
  } finally {
    locks.release(shard);
  }
}

/** The shard's history digest: the image is taken under the lock, hashed after releasing it. */
function digest(shard: number): PoolResult<{ digest: Uint8Array; size: number }> {
  const kernel = kernels[shard];
  if (kernel === undefined || locks.acquire(shard) !== LOCK_ACQUIRED) return poisoned(shard);
  let image;
  try {
    image = kernel.historyImage();
  } finally {
    locks.release(shard);
  }
  // The ids are a view of the key store: the prefix hashed here never changes while admission
  // appends after it, so hashing needs neither the lock nor a copy.
  return { ok: true, value: { digest: historyDigest(image), size: image.ids.length / 32 } };
}

/** A durable kernel's checkpoint: hashed (ids read in place), written, fsynced, renamed; then compaction. */
function writeAndCompact(job: CheckpointJob): { file: string; bytes: number; compaction: CompactionResult } {
  const file = writeCheckpoint(job.dir, job.sequence, job.logId, job.image);
  const compaction = compactLog(job.dir, job.keep);
  return { file, bytes: statSync(file).size, compaction };
}

function failure(thrown: unknown): PoolResult<never> {
  const error = asStorageError(thrown, 'pool task');
  if (error instanceof WalCorruptionError) return { ok: false, code: 'WalCorrupted', message: error.detail, position: error.position };
  if (error instanceof DurableDataLostError) {
    const { file, offset, fromSequence, toSequence } = error;
    return { ok: false, code: 'DurableDataLost', message: error.detail, details: { file, offset, fromSequence, toSequence } };
  }
  if (error instanceof ManifestError) return { ok: false, code: 'ManifestInvalid', message: error.detail, details: { file: error.file } };
  if (error instanceof LogFormatError) return { ok: false, code: 'UnsupportedLogFormat', message: error.detail, details: { file: error.file } };
  if (error instanceof StorageError) return { ok: false, code: 'StorageFailed', message: error.message, details: { ioCode: error.ioCode, path: error.path } };
  if (error instanceof CtfsError) {
    const code = error.code === 'CheckpointCorrupted' || error.code === 'InvalidArgument' || error.code === 'InvalidSharedMemory' ? error.code : 'Error';
    return { ok: false, code, message: error.message };
  }
  return { ok: false, code: 'Error', message: error instanceof Error ? error.message : String(error) };
}

export default function run(task: PoolTask): PoolResult<unknown> {
  try {
    switch (task.op) {
      case 'admit':
        return admit(task);
      case 'digest':
        return digest(task.shard);
      case 'verifyLog':
        return { ok: true, value: verifyLog(task.dir) };
      case 'compactLog':
        return { ok: true, value: compactLog(task.dir, task.keep) };
      case 'writeCheckpoint':
        return { ok: true, value: writeAndCompact(task) };
      default:
        return { ok: false, code: 'Error', message: `unknown pool task ${String((task as { op?: unknown }).op)}` };
    }
  } catch (error) {
    return failure(error);
  }
}
