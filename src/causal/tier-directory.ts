/**
 * The tier directory: the small SharedArrayBuffer that says what a tiered exact index consists
 * of — which arena pages hold its hot table, its spare, its frozen tables and its sorted runs,
 * which of them compaction is working on, and what it finished — so that every thread holding
 * the index's memory (the writer, whichever pool thread holds the lock, readers, the compactor)
 * sees one index. docs/FORMATS.md §5 lists every word.
 *
 * Concurrency, in three rules:
 *  - Every change is made under `lock` (a spinlock word, held for microseconds, never across a
 *    build or merge).
 *  - A change to what lookups consult (a freeze, an install, a clear) is also wrapped in the
 *    generation seqlock `gen` (odd while it is made). A thread caches the tables and runs it
 *    attached, keyed by generation; a reader re-checks the generation after each lookup and
 *    retries, because memory an install freed may be reused while it reads.
 *  - Compaction claims work (a table, some runs) and reports it done in a job slot; only the
 *    writer installs the result (`done` counts the slots waiting), so lookups on the admitting
 *    thread never race a change.
 */
import { SharedMemoryError } from '../errors.js';
import { checkSharedHeader } from '../core/shared-header.js';
import { arenaStateWords } from './history-arenas.js';

/** "CTTD" little-endian. */
export const DIRECTORY_MAGIC = 0x44545443;
export const DIRECTORY_VERSION = 1;

/** Line 0: identity and parameters (written once). */
export const D_HOT_CAPACITY = 2;
export const D_MERGE_FACTOR = 3;
export const D_SEED = 4;
export const D_FILTER_SEED = 5;
export const D_DOMAIN_ID = 6;
export const D_ARENAS = 7;
/** Bytes of one table (a multiple of the arena page). */
export const D_TABLE_BYTES = 8;
/** Runs of this level or above are never merged (see MAX_RUN_IDS). */
export const D_FINAL_LEVEL = 9;
/** Line 1: the lock and the seqlock, written on changes only. */
export const D_LOCK = 16;
export const D_GEN = 17;
/** Bumped by `clear`: jobs claimed before it are discarded when they finish. */
export const D_EPOCH = 18;
export const D_NEXT_SERIAL = 19;
export const D_FREEZES = 20;
/** Bumped when there is work for a compactor (a freeze, an install that left runs to merge); it may `Atomics.wait` on it. */
export const D_WORK = 21;
/** Which compactor serves this index (0: none yet); claimed with compareExchange. */
export const D_COMPACTOR = 22;
/** Line 2: job slots finished and not installed (read by the writer on every admission: its own line). */
export const D_DONE = 32;
/** Line 3: f64 figures (word offsets of a Float64Array are these / 2). */
/** Ids in frozen tables and runs (the hot table counts its own). */
export const F_COLD = 24;
/** The total size at the writer's last publish. */
export const F_PUBLISHED = 25;
/** Budget in bytes (Infinity: none) and the id limit (Infinity: none). */
export const F_BUDGET = 26;
export const F_ID_LIMIT = 27;

/** Table entries: the hot table, the spare, frozen tables. */
export const MAX_TABLES = 32;
export const T_WORDS = 8;
export const T_SERIAL = 0;
export const T_STATE = 1;
export const T_LOCATION = 2;
/** Freeze number (frozen tables; the order their ids came in). */
export const T_SEQUENCE = 3;
export const T_COUNT = 4;
export const TABLE_FREE = 0;
export const TABLE_HOT = 1;
export const TABLE_SPARE = 2;
export const TABLE_FROZEN = 3;
/** Frozen, and claimed by a compaction job (still consulted). */
export const TABLE_BUILDING = 4;
/** Dropped by `clear` while a job read it: freed when the job comes back. */
export const TABLE_ORPHAN = 5;

/** Run entries. */
export const MAX_RUNS = 64;
export const R_WORDS = 8;
export const R_SERIAL = 0;
export const R_STATE = 1;
export const R_LOCATION = 2;
export const R_BYTES = 3;
export const R_COUNT = 4;
/** Recency of the run's ids: the freeze number of its newest table. */
export const R_AGE = 5;
export const R_LEVEL = 6;
export const RUN_FREE = 0;
export const RUN_LIVE = 1;
/** Live, and an input of a merge job (still consulted). */
export const RUN_MERGING = 2;
export const RUN_ORPHAN = 3;

/** Job slots: compaction work claimed and not installed yet. */
export const MAX_JOBS = 8;
/** Largest merge factor a job slot has room for. */
export const MAX_JOB_INPUTS = 16;
export const J_WORDS = 32;
export const J_STATE = 0;
export const J_KIND = 1;
export const J_EPOCH = 2;
export const J_OUT_LOCATION = 3;
export const J_OUT_BYTES = 4;
export const J_OUT_COUNT = 5;
export const J_INPUTS = 6;
/** Serials of the inputs (a table's, or the runs'). */
export const J_INPUT = 8;
export const JOB_FREE = 0;
export const JOB_CLAIMED = 1;
export const JOB_DONE = 2;
export const KIND_BUILD = 1;
export const KIND_MERGE = 2;

export const OFF_TABLES = 64;
export const OFF_RUNS = OFF_TABLES + MAX_TABLES * T_WORDS;
export const OFF_JOBS = OFF_RUNS + MAX_RUNS * R_WORDS;
export const OFF_ARENAS = OFF_JOBS + MAX_JOBS * J_WORDS;

/** Words of a directory for `arenas` arenas. */
export function directoryWords(arenas: number): number {
  return OFF_ARENAS + arenaStateWords(arenas);
}

/** A lock holder that keeps it this long died holding it (it is held for microseconds). */
const LOCK_DEADLINE_MS = 2_000;
/** Spins before a waiter starts sleeping 1 ms at a time. */
const LOCK_SPINS = 200;

/** Takes the directory lock; throws SharedMemoryError if it stays taken for 2 s. */
export function lockDirectory(words: Int32Array): void {
  if (Atomics.compareExchange(words, D_LOCK, 0, 1) === 0) return;
  let deadline = 0;
  for (let attempt = 0; ; attempt++) {
    if (Atomics.compareExchange(words, D_LOCK, 0, 1) === 0) return;
    if (attempt < LOCK_SPINS) continue;
    if (deadline === 0) deadline = Date.now() + LOCK_DEADLINE_MS;
    else if (Date.now() > deadline) throw new SharedMemoryError('tier directory stayed locked for 2 s; did a thread die holding it?');
    Atomics.wait(words, D_LOCK, 1, 1);
  }
}

export function unlockDirectory(words: Int32Array): void {
  Atomics.store(words, D_LOCK, 0);
  Atomics.notify(words, D_LOCK, 1);
}

/** Runs `change` holding the directory lock; returns what it returns. */
export function underLock<T>(words: Int32Array, change: () => T): T {
  lockDirectory(words);
  try {
    return change();
  } finally {
    unlockDirectory(words);
  }
}

/**
 * Runs `change` holding the lock with the generation odd — a change to what lookups consult, so
 * lookups on other threads that overlap it retry — and returns the new (even) generation.
 */
export function changeTiers(words: Int32Array, change: () => void): number {
  let generation = 0;
  lockDirectory(words);
  Atomics.add(words, D_GEN, 1);
  try {
    change();
  } finally {
    generation = Atomics.add(words, D_GEN, 1) + 1;
    unlockDirectory(words);
  }
  return generation;
}

/** Checks a directory handed over from another thread: identity and size. */
export function checkDirectory(buffer: unknown): Uint32Array {
  const header = checkSharedHeader(buffer, DIRECTORY_MAGIC, DIRECTORY_VERSION, 'a tier directory', 64);
  const arenas = header[D_ARENAS]!;
  if (arenas < 1 || arenas > 8 || (buffer as SharedArrayBuffer).byteLength !== 4 * directoryWords(arenas)) {
    throw new SharedMemoryError(`tier directory: ${arenas} arenas do not match its ${(buffer as SharedArrayBuffer).byteLength} bytes`);
  }
  return new Uint32Array(buffer as SharedArrayBuffer);
}
