/**
 * What the main thread and pool threads say to each other: the start-up data every pool thread
 * gets in `workerData`, the tasks, and their results. Everything here is structured-clone data;
 * the large parts are SharedArrayBuffer handles, never copies.
 */
import type { SharedBatch } from '../core/fact-batch.js';
import type { SharedKernelMemory } from '../kernels/kernel-base.js';
import type { WireError } from '../error-wire.js';
import type { PortableInvariantSpec } from './invariant-spec.js';
import type { CheckpointJob } from '../persistence/checkpoint.js';

/** Marks a `workerData` as a ctfs pool's, and its layout version. */
export const POOL_PROTOCOL = 'ctfs-pool/1';
/** Key of the message a pool thread posts once its shards and invariant are set up. */
export const POOL_READY = 'ctfsPoolReady';

export interface PoolWorkerData {
  readonly protocol: typeof POOL_PROTOCOL;
  readonly shards: readonly SharedKernelMemory[];
  readonly locks: SharedArrayBuffer;
  readonly invariant: PortableInvariantSpec;
  /** For each shard, the shards it shares causality with (empty: none). */
  readonly peers: readonly (readonly number[])[];
  /**
   * The task clock of shard tasks: a BigInt64Array with three words per shard — the mark (2·seq
   * once the task numbered `seq` started, 2·seq + 1 once it finished), the start time
   * (`process.hrtime.bigint()`, one monotonic clock for every thread of the process) and the
   * threadId running it. The pool times a task from its start, not from its submission, so time
   * spent queued never counts, and knows which thread to stop.
   */
  readonly taskClock: SharedArrayBuffer;
}

/** The work of a task. */
export type PoolTaskBody =
  | { readonly op: 'admit'; readonly shard: number; readonly batches: readonly SharedBatch[] }
  | { readonly op: 'digest'; readonly shard: number }
  | { readonly op: 'verifyLog'; readonly dir: string }
  | { readonly op: 'compactLog'; readonly dir: string; readonly keep: number }
  | ({ readonly op: 'writeCheckpoint' } & CheckpointJob);

/**
 * A task: its work, its number, and for tasks without a shard a clock of their own (laid out like
 * one shard's entry in `taskClock`).
 */
export type PoolTask = PoolTaskBody & { readonly seq: number; readonly clock?: SharedArrayBuffer };

/** Words of one task clock entry: the mark, the start time and the thread. */
export const TASK_CLOCK_WORDS = 3;
export const TASK_CLOCK_BYTES = 8 * TASK_CLOCK_WORDS;

/** Records in `words` at `at` that thread `thread` started task `seq` (the mark last). */
export function markTaskStarted(words: BigInt64Array, at: number, seq: number, thread: number): void {
  Atomics.store(words, at + 1, process.hrtime.bigint());
  Atomics.store(words, at + 2, BigInt(thread));
  Atomics.store(words, at, BigInt(seq) * 2n);
}

/** Records that task `seq` finished: its result is on its way to the pool. */
export function markTaskFinished(words: BigInt64Array, at: number, seq: number): void {
  Atomics.store(words, at, BigInt(seq) * 2n + 1n);
}

/**
 * A task's outcome. A failure travels in the error wire form (`error-wire.ts`), because an Error
 * crossing a thread keeps only its message; the main thread rebuilds the typed error.
 */
/** One batch's outcome in an admit task: the number of facts admitted, or why the batch failed. */
export type AdmitOutcome = number | WireError;

export type PoolResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WireError };
