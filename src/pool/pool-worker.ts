/**
 * The pool thread: attaches every shard's kernel once (from `workerData`), builds the invariant,
 * then runs tasks — batches of facts under the shard's lock, history digests, log verification
 * and compaction. Loaded by piscina; the default export is the task handler.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { admitShared } from '../core/fact-batch.js';
import { toWire } from '../error-wire.js';
import { asStorageError, InvalidArgumentError, PoolError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { Kernel } from '../kernels/kernel.js';
import { historyDigest } from '../domain/history-digest.js';
import { statSync } from 'node:fs';
import type { CheckpointJob } from '../kernels/durable-kernel.js';
import { writeCheckpoint } from '../persistence/checkpoint.js';
import { compactLog, type CompactionResult } from '../persistence/recovery.js';
import { verifyLog } from '../persistence/verify.js';
import { buildInvariant } from './invariant-spec.js';
import {
  POOL_PROTOCOL,
  POOL_READY,
  markTaskFinished,
  markTaskStarted,
  TASK_CLOCK_WORDS,
  type AdmitOutcome,
  type PoolResult,
  type PoolTask,
  type PoolWorkerData,
} from './protocol.js';
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
  return failure(new PoolError('ShardPoisoned', `shard ${shard} is poisoned: a pool thread died or was stopped while admitting into it`, shard));
}

/**
 * Admits each batch in order under the shard's lock, publishes once, returns each batch's outcome.
 * A batch that fails (its buffers do not hold a batch) fails alone: the batches after it are still
 * admitted, as they would be had each been its own task, and every caller learns its own outcome.
 */
function admit(task: Extract<PoolTask, { op: 'admit' }>): PoolResult<AdmitOutcome[]> {
  const { shard, batches } = task;
  const admitter = admitters[shard];
  if (admitter === undefined || locks.acquire(shard) !== LOCK_ACQUIRED) return poisoned(shard);
  try {
    const outcomes = batches.map((batch): AdmitOutcome => {
      try {
        return admitShared(batch, admitter);
      } catch (error) {
        return toWire(error);
      }
    });
    admitter.kernel.publish();
    return { ok: true, value: outcomes };
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

function failure(error: unknown): PoolResult<never> {
  // A system error (ENOSPC, EROFS…) becomes the StorageError it means before it crosses.
  return { ok: false, error: toWire(asStorageError(error, 'pool task')) };
}

const taskClock = new BigInt64Array(data.taskClock);

/** Where `task`'s clock is: its own buffer, or its shard's entry of the shared one. */
function clockOf(task: PoolTask): { words: BigInt64Array; at: number } {
  if (task.clock !== undefined) return { words: new BigInt64Array(task.clock), at: 0 };
  return { words: taskClock, at: TASK_CLOCK_WORDS * (task as { shard: number }).shard };
}

export default function run(task: PoolTask): PoolResult<unknown> {
  const clock = clockOf(task);
  markTaskStarted(clock.words, clock.at, task.seq, threadId);
  try {
    return perform(task);
  } finally {
    markTaskFinished(clock.words, clock.at, task.seq);
  }
}

function perform(task: PoolTask): PoolResult<unknown> {
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
        return failure(new InvalidArgumentError(`unknown pool task ${describeValue((task as { op?: unknown }).op)}`));
    }
  } catch (error) {
    return failure(error);
  }
}
