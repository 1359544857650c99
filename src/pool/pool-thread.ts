/**
 * What a pool thread does: attaches every shard's kernel once (from its start data), builds the
 * invariant, then runs tasks — batches of facts under the shard's lock, history digests, log
 * verification, compaction and offloaded checkpoints. The thread's entry point
 * (`src/workers/pool-worker.ts`) starts one and hands piscina its task handler.
 */
import { statSync } from 'node:fs';
import { admitShared } from '../core/fact-batch.js';
import { toWire } from '../error-wire.js';
import { asStorageError, InvalidArgumentError, PoolError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { Kernel } from '../kernels/kernel.js';
import { historyDigest } from '../domain/history-digest.js';
import { writeCheckpoint, type CheckpointJob } from '../persistence/checkpoint.js';
import { compactLog, type CompactionResult } from '../persistence/recovery.js';
import { verifyLog } from '../persistence/verify.js';
import { buildInvariant } from './invariant-spec.js';
import {
  POOL_PROTOCOL,
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

/** A pool task handler: one task in, its result out (never throws). */
export type PoolTaskHandler = (task: PoolTask) => PoolResult<unknown>;

/**
 * Builds the invariant and attaches the shards for one pool thread, and returns its task handler.
 * Throws if the start data is not a pool's or the invariant cannot be built: the thread then fails
 * to start, which the pool reports.
 */
export async function startPoolThread(data: unknown, threadId: number): Promise<PoolTaskHandler> {
  const d = data as PoolWorkerData | null | undefined;
  if (d?.protocol !== POOL_PROTOCOL) throw new Error(`pool thread started without ${POOL_PROTOCOL} workerData`);
  const invariant = await buildInvariant(d.invariant);
  const thread = new PoolThread(d, invariant, threadId);
  return (task) => thread.run(task);
}

class PoolThread {
  private readonly locks: ShardLocks;
  private readonly kernels: (Kernel | undefined)[];
  private readonly admitters: (ShardAdmitter | undefined)[];
  private readonly taskClock: BigInt64Array;

  constructor(
    data: PoolWorkerData,
    invariant: Awaited<ReturnType<typeof buildInvariant>>,
    private readonly threadId: number,
  ) {
    this.locks = ShardLocks.attach(data.locks);
    // A shard whose snapshot stays mid-publish (its writer died there; the main thread poisons it)
    // cannot be attached: this thread then refuses that shard's tasks instead of failing to start,
    // so the other shards go on.
    this.kernels = data.shards.map((shared) => {
      try {
        return Kernel.attach(shared, invariant);
      } catch {
        return undefined;
      }
    });
    const kernels = this.kernels;
    this.admitters = kernels.map((kernel, shard) => (kernel === undefined ? undefined : new ShardAdmitter(kernel, kernels, shard, data.peers[shard] ?? [])));
    this.taskClock = new BigInt64Array(data.taskClock);
  }

  run(task: PoolTask): PoolResult<unknown> {
    const clock = this.clockOf(task);
    markTaskStarted(clock.words, clock.at, task.seq, this.threadId);
    try {
      return this.perform(task);
    } finally {
      markTaskFinished(clock.words, clock.at, task.seq);
    }
  }

  /** Where `task`'s clock is: its own buffer, or its shard's entry of the shared one. */
  private clockOf(task: PoolTask): { words: BigInt64Array; at: number } {
    if (task.clock !== undefined) return { words: new BigInt64Array(task.clock), at: 0 };
    return { words: this.taskClock, at: TASK_CLOCK_WORDS * (task as { shard: number }).shard };
  }

  private perform(task: PoolTask): PoolResult<unknown> {
    try {
      switch (task.op) {
        case 'admit':
          return this.admit(task);
        case 'digest':
          return this.digest(task.shard);
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

  /**
   * Admits each batch in order under the shard's lock, publishes once, returns each batch's
   * outcome. A batch that fails (its buffers do not hold a batch) fails alone: the batches after it
   * are still admitted, as they would be had each been its own task, and every caller learns its
   * own outcome.
   */
  private admit(task: Extract<PoolTask, { op: 'admit' }>): PoolResult<AdmitOutcome[]> {
    const { shard, batches } = task;
    const admitter = this.admitters[shard];
    if (admitter === undefined || this.locks.acquire(shard) !== LOCK_ACQUIRED) return poisoned(shard);
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
      this.locks.release(shard);
    }
  }

  /** The shard's history digest: the image is taken under the lock, hashed after releasing it. */
  private digest(shard: number): PoolResult<{ digest: Uint8Array; size: number }> {
    const kernel = this.kernels[shard];
    if (kernel === undefined || this.locks.acquire(shard) !== LOCK_ACQUIRED) return poisoned(shard);
    let image;
    try {
      image = kernel.historyImage();
    } finally {
      this.locks.release(shard);
    }
    // The image is a copy taken under the lock: hashing it needs the lock no more.
    return { ok: true, value: { digest: historyDigest(image), size: image.ids.length / 32 } };
  }
}

function poisoned(shard: number): PoolResult<never> {
  return failure(new PoolError('ShardPoisoned', `shard ${shard} is poisoned: a pool thread died or was stopped while admitting into it`, shard));
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
