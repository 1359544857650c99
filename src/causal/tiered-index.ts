/**
 * TieredExactIndex: an exact set of 32-byte fact ids with no capacity limit — a small hot table
 * that takes every insert, frozen tables waiting to be compacted, and immutable sorted runs —
 * all in shared memory, so every thread that holds the index's memory sees one index.
 *
 * Tiers, in the order a lookup consults them:
 *
 *   1. **hot**: an ExactCausalIndex of `hotCapacity` ids (default 2^16). Every insert lands
 *      here. A new id is proven absent from it by its tag array alone.
 *   2. **frozen**: hot tables that filled up, still consulted until compaction turns each into
 *      a run. A freeze is O(1): the spare table (allocated ahead, pages committed) takes over
 *      and two directory entries change; no allocation, no copy on the admitting path.
 *   3. **runs**: SortedRuns (sorted-run.ts): the ids sorted, a fence per 128 ids, a binary fuse
 *      filter. A lookup asks every run's filter first (~1 in 256 absent ids passes one) and
 *      confirms a pass against the run's ids, so exactness never rests on a filter.
 *
 * Every id lives in exactly one tier, and an insert checks all of them before it writes, so a
 * duplicate from any age is refused and a refusal changes nothing. The common case, an id never
 * seen, costs one hot-table probe (tags only), one probe per frozen table and one filter lookup
 * per run.
 *
 * **Memory.** Tables and runs are carved out of a few growable SharedArrayBuffers (arenas,
 * history-arenas.ts); which pages hold what is written in the tier directory (tier-directory.ts),
 * a small SharedArrayBuffer with a lock and a generation seqlock. The directory and the arenas
 * are handed to another thread once (`memory`, `attach`): they keep their identity as they grow.
 * A run costs 32 bytes per id for its keys, ~1.13 for its filter, 0.0625 for its fences and
 * its header and page padding; a table 39.2 bytes per id at capacity. Two tables (hot and spare)
 * are held at all times (4.9 MiB at the default capacity); freed pages stay committed and are
 * reused. `memoryBytes()` gives the figures per tier.
 *
 * **Why 2^16 ids per hot table** (2.45 MiB: 91 KiB of tags, 366 KiB of slot words, 2 MiB of
 * keys): measured on this 2-core machine (1 MiB L2 per core), a full ExactCausalIndex answered
 * an absent id in 84–126 ns at 2^13–2^16 ids, 105–131 at 2^17–2^18 and 179 at 2^20, and a
 * present one in 100–316 ns at 2^13–2^16 against 298–368 at 2^17 and 600–650 at 2^20. At 2^16
 * the randomly read part (tags and slot words, 457 KiB) fits half the L2 beside the newest
 * runs' filters; 2^15 froze twice as often and rewrote each id 3.65 times in merges at 10M ids
 * against 2.77, and 2^17 doubles the fixed memory every kernel (and tenant) pays.
 *
 * **Compaction** is claimed, run and installed in three steps, so the expensive one runs
 * anywhere: `claimCompaction` (any thread; under the lock: marks a frozen table or some runs
 * as taken and allocates the output), `runCompaction` (no lock: builds the table's run, or
 * merges the runs, straight into the arena), `completeCompaction` (reports it in a job slot).
 * The writer installs finished jobs at its next `beginWrite`/`publish` — the run replaces its
 * table or inputs for lookups in one generation — so lookups on the admitting thread never race
 * a change. Kernels hand their indexes to a compactor thread (history-compactor.ts);
 * `compact()` does it all in the calling thread. Until an install, a table or input runs stay
 * consulted, so no lookup misses an id in between.
 *
 * **Merge policy** (size-tiered): a run's level is ⌊log_F(ids / hotCapacity)⌋ with F =
 * `mergeFactor` (default 4); when a level holds F unclaimed runs, its F oldest merge (lowest
 * level first). So at most F − 1 runs stay per level and a lookup consults about
 * (F − 1)·(⌊log_F(n / hotCapacity)⌋ + 1) runs: 12 at 10M ids. Runs of 2^24 ids or more
 * (`MAX_RUN_IDS`) are final: a merge holds its inputs and output at once and rewrites every
 * id, so the largest runs are left alone. Each id is rewritten about log_F(n / hotCapacity)
 * times (2.75 per id at 10M ids, measured).
 *
 * **Limits**: no id-count limit by default; `idLimit` sets one, and `budgetBytes` refuses new
 * ids once the arenas hold more than the budget (CausalHorizonExceededError, nothing changed;
 * `horizonMessage` gives the figures). A duplicate is refused as such whatever the limits.
 *
 * **Threads**: one writer at a time (the owner, or whoever holds a pool shard's lock) inserts;
 * any thread may look up. A writer that finds the generation changed (another writer froze or
 * installed) re-reads the directory. A reader re-checks the generation after each lookup and
 * retries, since memory an install freed may be reused under it. Readers see the hot table up
 * to the writer's last `publish()`, and frozen tables and runs whole (a freeze publishes the
 * table it freezes).
 *
 * **Order of `ids()`**: runs oldest first (each in memcmp order), then frozen tables oldest
 * first and the hot table, each in insertion order. Insertion order is not kept across runs;
 * `sortedIds()` gives the canonical order of the set (images, digests).
 */
import { CausalHorizonExceededError, InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';
import { prefaultRange } from '../native/shim.js';
import { ExactCausalIndex, MAX_INDEX_CAPACITY, exactIndexByteLength, type ReadonlyExactIndex } from './exact-index.js';
import { IdFilterHash, type IdFilter } from './id-filter.js';
import { IdHasher, splitmix32 } from './id-hash.js';
import { SortedRun, sortedIds, sortedRunByteLength } from './sorted-run.js';
import { ARENA_PAGE, HistoryArenas, MAX_ARENAS, MAX_ARENA_BYTES, arenaStateWords, createArenas, pagesFor } from './history-arenas.js';
import {
  DIRECTORY_MAGIC,
  DIRECTORY_VERSION,
  D_ARENAS,
  D_COMPACTOR,
  D_DOMAIN_ID,
  D_DONE,
  D_EPOCH,
  D_FILTER_SEED,
  D_FINAL_LEVEL,
  D_FREEZES,
  D_GEN,
  D_HOT_CAPACITY,
  D_MERGE_FACTOR,
  D_NEXT_SERIAL,
  D_SEED,
  D_TABLE_BYTES,
  D_WORK,
  F_BUDGET,
  F_COLD,
  F_ID_LIMIT,
  F_PUBLISHED,
  JOB_CLAIMED,
  JOB_DONE,
  JOB_FREE,
  J_EPOCH,
  J_INPUT,
  J_INPUTS,
  J_KIND,
  J_OUT_BYTES,
  J_OUT_COUNT,
  J_OUT_LOCATION,
  J_STATE,
  J_WORDS,
  KIND_BUILD,
  KIND_MERGE,
  MAX_JOBS,
  MAX_JOB_INPUTS,
  MAX_RUNS,
  MAX_TABLES,
  OFF_ARENAS,
  OFF_JOBS,
  OFF_RUNS,
  OFF_TABLES,
  RUN_FREE,
  RUN_LIVE,
  RUN_MERGING,
  RUN_ORPHAN,
  R_AGE,
  R_BYTES,
  R_COUNT,
  R_LEVEL,
  R_LOCATION,
  R_SERIAL,
  R_STATE,
  R_WORDS,
  TABLE_BUILDING,
  TABLE_FREE,
  TABLE_FROZEN,
  TABLE_HOT,
  TABLE_ORPHAN,
  TABLE_SPARE,
  T_COUNT,
  T_LOCATION,
  T_SEQUENCE,
  T_SERIAL,
  T_STATE,
  T_WORDS,
  checkDirectory,
  directoryWords,
  changeTiers,
  underLock,
} from './tier-directory.js';

/** Ids per hot table by default: 2^16 (see the module comment for the measurements). */
export const DEFAULT_HOT_CAPACITY = 1 << 16;
/** Runs of one level merged at a time by default. */
export const DEFAULT_MERGE_FACTOR = 4;
/** Largest merge factor (a job slot's room for inputs). */
export const MAX_MERGE_FACTOR = MAX_JOB_INPUTS;
/**
 * Runs stop merging once a merge would pass this many ids (16.7M; a run of them is 557 MB): a
 * merge holds its inputs and its output at once and rewrites every id it holds, so the largest
 * runs are left as they are — at 100M ids that is ~3–6 final runs besides up to F − 1 per lower
 * level. A merge of runs just below the line holds up to F times this (2.2 GB at F = 4).
 */
const MAX_RUN_IDS = 1 << 24;
/** Most ids one merge writes (67M, a 2.2 GB image: within one arena and one Uint8Array). */
const MAX_MERGE_IDS = 1 << 26;
/**
 * Builds stop being claimed when this few run entries are left, so that merges (which free
 * entries) go first; with a tiny hot table and a large merge factor, runs could otherwise fill
 * every entry with no level holding enough runs to merge.
 */
const RUN_ENTRIES_SLACK = 2;
/**
 * How long an insert that found every table entry taken (MAX_TABLES: compaction ~30 tables
 * behind) waits for a compaction job another thread is running before it is refused.
 */
const COMPACTION_WAIT_MS = 2_000;
/** Arenas by default: 4 × 4 GiB of address space, ~480M ids in runs. */
const DEFAULT_ARENAS = 4;

/** The shared memory of a tiered index: hand it to another thread to attach. */
export interface SharedTieredMemory {
  readonly directory: SharedArrayBuffer;
  readonly arenas: readonly SharedArrayBuffer[];
}

export interface TieredIndexOptions {
  /** Ids per hot table, in [1, 2^27] (default 2^16). Small values freeze often (tests). */
  readonly hotCapacity?: number;
  /** How many runs of one level merge into one, in [2, 16] (default 4). */
  readonly mergeFactor?: number;
  /** Most bytes of memory the index may hold; beyond it, new ids are refused (CausalHorizonExceeded). Default: no limit. */
  readonly budgetBytes?: number;
  /** Most ids the index may hold; beyond it, new ids are refused. Default: no limit. */
  readonly idLimit?: number;
  /** Seed of the hot tables' hash (default: random); the runs' filters derive theirs from it. */
  readonly seed?: number;
  /** Commit the first two hot tables' pages when they are allocated (default true): no page faults while inserting. */
  readonly prefault?: boolean;
  /** Arenas (growable buffers of address space) to carve tables and runs from, in [1, 8] (default 4). */
  readonly arenas?: number;
  /** Largest size of one arena, a multiple of 4 KiB up to 2^32 (default 2^32). */
  readonly arenaBytes?: number;
}

/** Bytes held per tier (all figures in bytes, ids in ids). */
export interface TieredMemory {
  /** The hot table, and the ids in it. */
  readonly hot: { readonly bytes: number; readonly ids: number };
  /** The spare hot table ready for the next freeze. */
  readonly spare: { readonly bytes: number; readonly tables: number };
  /** Frozen tables waiting for their run. */
  readonly frozen: { readonly bytes: number; readonly ids: number; readonly tables: number };
  /** Runs: their images' bytes split into keys (32 per id), filters, fences (8 per 128 ids) and the rest (headers, padding to pages). */
  readonly runs: {
    readonly bytes: number;
    readonly ids: number;
    readonly count: number;
    readonly keys: number;
    readonly filters: number;
    readonly fences: number;
    readonly other: number;
  };
  /** Everything the arenas have allocated: the tiers above, merge outputs being written, orphans. */
  readonly total: number;
  /** What the arenas have grown to (freed pages stay committed and are reused). */
  readonly arenaBytes: number;
}

/** How long the writer was held up by tier changes, as this instance saw it (ms). */
export interface WriterPauses {
  readonly freezes: number;
  readonly longestFreezeMs: number;
  readonly installs: number;
  readonly longestInstallMs: number;
  /** Compaction the writer did itself because every table entry was taken (the compactor far behind). */
  readonly catchUps: number;
  readonly longestCatchUpMs: number;
}

/** Compaction work claimed from an index: run it anywhere with `runCompaction`, then `completeCompaction` (or `abandonCompaction`). */
export interface CompactionJob {
  readonly slot: number;
  readonly kind: 'build' | 'merge';
  readonly epoch: number;
  /** Ids the output will hold at most (the table's, or the inputs' sum). */
  readonly count: number;
  readonly outLocation: number;
  readonly outBytes: number;
  /** Where the inputs are: a table (location, count) or runs (location, bytes). */
  readonly inputs: readonly { readonly location: number; readonly bytes: number; readonly count: number }[];
}

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! || 1;
}

/** Builds a table's run (anywhere): sorted ids, fences, filter seeded with `filterSeed`, no checksum. */
export function buildRun(ids: Uint8Array, filterSeed: number, into?: Uint8Array): SortedRun {
  return SortedRun.build(ids, { seed: filterSeed, checksum: false, ...(into === undefined ? {} : { into }) });
}

/** Merges runs into one (anywhere), as compaction does. */
export function mergeRuns(runs: readonly SortedRun[], filterSeed: number, into?: Uint8Array): SortedRun {
  return SortedRun.merge(runs, { seed: filterSeed, checksum: false, ...(into === undefined ? {} : { into }) });
}

/** The creation option `attach` passes its validated memory in (not exported: no unchecked memory reaches the constructor). */
const ATTACHED = Symbol('ctfs.tieredIndex.attached');
interface AttachOptions extends TieredIndexOptions {
  readonly [ATTACHED]?: SharedTieredMemory;
}

export class TieredExactIndex implements ReadonlyExactIndex {
  /** Pass it to `TieredExactIndex.attach` in another thread. */
  readonly memory: SharedTieredMemory;
  readonly hotCapacity: number;
  readonly mergeFactor: number;
  /** Seed of every hot table's hash (one hasher serves them all). */
  readonly seed: number;
  /** The first seed every run's filter is built with. */
  readonly filterSeed: number;
  /** Random id tying the index to the control block of its domain. */
  readonly domainId: number;
  /** Bytes of one hot table in its arena (whole pages). */
  readonly tableBytes: number;

  private readonly words: Uint32Array;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly arenas: HistoryArenas;
  private readonly budget: number;
  private readonly idLimit: number;
  private readonly finalLevel: number;
  /** Hasher of the public lookup methods; admission paths bring their own. */
  private readonly queryHasher: IdHasher;
  /** The id being looked up, hashed for filters seeded with `filterSeed` (nearly all of them). */
  private readonly filterHash: IdFilterHash;

  // This thread's picture of the directory, as of generation `gen`.
  private gen = -1;
  private hot!: ExactCausalIndex;
  /** Entry numbers of the hot table and the spare (-1: none). */
  private hotEntry = -1;
  private spareEntry = -1;
  /** Frozen tables, newest first. */
  private frozen: ExactCausalIndex[] = [];
  /** Runs and their filters, newest first (the lookup loop reads only these). */
  private runs: SortedRun[] = [];
  private filters: IdFilter[] = [];
  /** Ids in frozen tables and runs. */
  private cold = 0;
  /** True when the arenas hold more than the budget (refreshed on every change this thread sees). */
  private overBudget = false;
  private readonly tableCache = new Map<number, ExactCausalIndex>();
  private readonly runCache = new Map<number, SortedRun>();
  /** Set by `findForInsert`: the hot table's empty slot for the id, or -1 when a freeze must come first. */
  private slot = -1;
  /** Freezes and installs this instance made, and the longest of each (timed: they are rare). */
  private readonly pauses = { freezes: 0, longestFreezeMs: 0, installs: 0, longestInstallMs: 0, catchUps: 0, longestCatchUpMs: 0 };

  constructor(options: TieredIndexOptions = {}) {
    const attached = (options as AttachOptions | null | undefined)?.[ATTACHED];
    let directory: SharedArrayBuffer;
    let arenaBuffers: readonly SharedArrayBuffer[];
    let fresh = false;
    let prefaultTables = false;
    if (attached !== undefined) {
      directory = attached.directory;
      arenaBuffers = attached.arenas;
    } else {
      const o = checkTieredIndexOptions(options);
      prefaultTables = o.prefault;
      const words = new Uint32Array(directoryWords(o.arenas));
      directory = new SharedArrayBuffer(words.byteLength);
      arenaBuffers = createArenas(o.arenas, o.arenaBytes);
      const w = new Uint32Array(directory);
      w[0] = DIRECTORY_MAGIC;
      w[1] = DIRECTORY_VERSION;
      w[D_HOT_CAPACITY] = o.hotCapacity;
      w[D_MERGE_FACTOR] = o.mergeFactor;
      w[D_SEED] = o.seed;
      w[D_FILTER_SEED] = splitmix32(o.seed) >>> 0;
      w[D_DOMAIN_ID] = randomU32();
      w[D_ARENAS] = o.arenas;
      w[D_TABLE_BYTES] = pagesFor(exactIndexByteLength(o.hotCapacity)) * ARENA_PAGE;
      let finalLevel = 0;
      for (let ids = o.hotCapacity * o.mergeFactor; ids <= MAX_RUN_IDS; ids *= o.mergeFactor) finalLevel++;
      w[D_FINAL_LEVEL] = finalLevel;
      w[D_NEXT_SERIAL] = 1;
      const f = new Float64Array(directory);
      f[F_BUDGET] = o.budgetBytes;
      f[F_ID_LIMIT] = o.idLimit;
      fresh = true;
    }
    this.memory = { directory, arenas: arenaBuffers };
    this.words = new Uint32Array(directory);
    this.i32 = new Int32Array(directory);
    this.f64 = new Float64Array(directory);
    const w = this.words;
    this.hotCapacity = w[D_HOT_CAPACITY]!;
    this.mergeFactor = w[D_MERGE_FACTOR]!;
    this.seed = w[D_SEED]!;
    this.filterSeed = w[D_FILTER_SEED]!;
    this.domainId = w[D_DOMAIN_ID]!;
    this.tableBytes = w[D_TABLE_BYTES]!;
    this.finalLevel = w[D_FINAL_LEVEL]!;
    this.budget = this.f64[F_BUDGET]!;
    this.idLimit = this.f64[F_ID_LIMIT]!;
    this.arenas = new HistoryArenas(arenaBuffers, new Uint32Array(directory, 4 * OFF_ARENAS, arenaStateWords(arenaBuffers.length)));
    this.queryHasher = new IdHasher(this.seed);
    this.filterHash = new IdFilterHash(this.filterSeed);
    if (fresh) {
      // The hot table and its spare, ready before the first insert.
      if (this.addTable(TABLE_HOT, prefaultTables) < 0 || this.addTable(TABLE_SPARE, prefaultTables) < 0) {
        throw new InvalidArgumentError(`the arenas cannot hold two hot tables of ${this.hotCapacity} ids (${2 * this.tableBytes} bytes)`);
      }
      if (this.arenas.heldBytes() > this.budget) {
        throw new InvalidArgumentError(`budgetBytes (${this.budget}) is below the two hot tables of ${this.hotCapacity} ids (${2 * this.tableBytes} bytes)`);
      }
    }
    this.refresh();
  }

  /** A tiered index over memory another one created (usually in another thread): it sees what was published. */
  static attach(memory: SharedTieredMemory): TieredExactIndex {
    if (memory === null || typeof memory !== 'object') throw new SharedMemoryError('a tiered index memory is { directory, arenas }');
    const words = checkDirectory(memory.directory);
    if (!Array.isArray(memory.arenas) || memory.arenas.length !== words[D_ARENAS]) {
      throw new SharedMemoryError(`the tier directory names ${words[D_ARENAS]} arenas, ${Array.isArray(memory.arenas) ? memory.arenas.length : 'no array'} were given`);
    }
    const hot = words[D_HOT_CAPACITY]!;
    const factor = words[D_MERGE_FACTOR]!;
    if (hot < 1 || hot > MAX_INDEX_CAPACITY || factor < 2 || factor > MAX_MERGE_FACTOR || words[D_TABLE_BYTES] !== pagesFor(exactIndexByteLength(hot)) * ARENA_PAGE) {
      throw new SharedMemoryError('tier directory: parameters out of range');
    }
    const options: AttachOptions = { [ATTACHED]: { directory: memory.directory, arenas: memory.arenas } };
    return new TieredExactIndex(options);
  }

  // ---- sizes ----

  /** Ids this instance sees: all of them on the writer (after `beginWrite`), the published ones on a reader (after `sync`). */
  get size(): number {
    return this.cold + this.hot.size;
  }

  /**
   * @internal Ids inserted so far, whoever inserted them: the cold count and the hot table's
   * live count read in one generation (a freeze moves ids from one to the other).
   */
  get liveCount(): number {
    for (;;) {
      const g = this.stableGeneration();
      const count = this.cold + this.hot.liveCount;
      if (Atomics.load(this.i32, D_GEN) === g) return count;
    }
  }

  /** Frozen tables waiting for their run. */
  get frozenCount(): number {
    this.refreshIfStale();
    return this.frozen.length;
  }

  /** Runs consulted by lookups. */
  get runCount(): number {
    this.refreshIfStale();
    return this.runs.length;
  }

  /** Ids per run, newest first (metrics and tests). */
  runSizes(): number[] {
    this.refreshIfStale();
    return this.runs.map((r) => r.count);
  }

  /** The memory budget in bytes (Infinity: none). */
  get budgetBytes(): number {
    return this.budget;
  }

  /** The id limit (Infinity: none). */
  get idCountLimit(): number {
    return this.idLimit;
  }

  /** The most ids the index takes: its id limit (Infinity: none). */
  get capacity(): number {
    return this.idLimit;
  }

  /** Bytes of memory the index holds (every tier; see `memoryBytes`). */
  get byteLength(): number {
    return this.arenas.heldBytes();
  }

  /** True if every id in `ids` is present. */
  containsAll(ids: readonly Uint8Array[]): boolean {
    if (!Array.isArray(ids)) throw new InvalidArgumentError('ids must be an array of 32-byte ids');
    for (let i = 0; i < ids.length; i++) if (!this.contains(ids[i]!)) return false;
    return true;
  }

  // ---- the writer's path ----

  /**
   * @internal Called before a write (an insert, an admission): takes any change another writer
   * or compaction made, and makes every id visible to this instance.
   */
  beginWrite(): void {
    // Plain loads: a change of writer comes with a lock handover (which orders the previous
    // writer's stores before these loads), and the compactor's note in D_DONE is read again on
    // the next admission if this one misses it.
    const words = this.words;
    if (words[D_GEN] !== this.gen || words[D_DONE] !== 0) this.catchUp();
    this.hot.beginWrite();
  }

  /** Takes another writer's changes and installs finished compaction (rare: off the inlined path). */
  private catchUp(): void {
    if (Atomics.load(this.i32, D_GEN) !== this.gen) this.refresh();
    if (Atomics.load(this.i32, D_DONE) !== 0) this.installDone();
  }

  /**
   * @internal True if the id loaded into `h` (its bytes at `ids[offset..]`) is in the index;
   * else remembers where `insertPrepared` puts it. After `beginWrite`. Writes nothing.
   */
  findForInsert(h: IdHasher, ids: Uint8Array, offset: number): boolean {
    const hot = this.hot;
    const p = hot.probe(h);
    if (p >= 0) return true;
    const frozen = this.frozen;
    for (let i = 0; i < frozen.length; i++) if (frozen[i]!.probe(h) >= 0) return true;
    if (this.filters.length !== 0 && this.inRuns(h, ids, offset)) return true;
    this.slot = hot.size >= this.hotCapacity ? -1 : ~p;
    return false;
  }

  /** @internal True if the id loaded into `h` (its bytes at `ids[offset..]`) is in the index. After `beginWrite`. */
  find(h: IdHasher, ids: Uint8Array, offset: number): boolean {
    if (this.hot.probe(h) >= 0) return true;
    const frozen = this.frozen;
    for (let i = 0; i < frozen.length; i++) if (frozen[i]!.probe(h) >= 0) return true;
    return this.filters.length !== 0 && this.inRuns(h, ids, offset);
  }

  /**
   * @internal After `findForInsert` said absent: true if one more id may be inserted (the id
   * limit, the budget, and — when the hot table is full — a spare table to freeze into, which is
   * allocated here if compaction left none). False: refuse it (`horizonMessage` says why).
   * Changes no id.
   */
  roomForOne(): boolean {
    if (this.cold + this.hot.size >= this.idLimit || this.overBudget) return false;
    if (this.slot === -1 && this.spareEntry < 0) return this.makeSpare();
    return true;
  }

  /**
   * @internal Inserts the id loaded into `h`, after `findForInsert` (absent) and `roomForOne`
   * (true). Freezes first if the hot table is full, and then returns true: the caller sees to
   * compaction (`afterFreeze`).
   */
  insertPrepared(h: IdHasher): boolean {
    if (this.slot === -1) {
      this.freeze();
      this.hot.insertAt(~this.hot.probe(h), h);
      return true;
    }
    this.hot.insertAt(this.slot, h);
    return false;
  }

  /** Why the last `roomForOne` said no, with the figures (the CausalHorizonExceeded message). */
  horizonMessage(): string {
    const size = this.cold + this.hot.size;
    if (size >= this.idLimit) return `exact history is at its id limit (${this.idLimit} ids)`;
    const m = this.memoryBytes();
    if (this.spareEntry < 0 && m.total + this.tableBytes <= this.budget) {
      return `exact history compaction is behind: ${m.frozen.tables} frozen tables wait for their runs and no compaction job finished within ${COMPACTION_WAIT_MS} ms`;
    }
    return (
      `exact history over its memory budget: ${size} ids held in ${m.total} bytes ` +
      `(hot ${m.hot.bytes + m.spare.bytes}, frozen ${m.frozen.bytes} in ${m.frozen.tables} tables, runs ${m.runs.bytes} in ${m.runs.count})` +
      `${this.spareEntry < 0 ? `, and a freeze needs a new hot table of ${this.tableBytes} bytes` : ''}; budget ${this.budget} bytes`
    );
  }

  /**
   * Adds the id at `ids[offset..offset + 32)`; false if it is already in the index, in any tier.
   * Throws CausalHorizonExceededError at the id limit or over the budget (nothing changed).
   * Writer only (kernels insert through their admission path).
   */
  insert(ids: Uint8Array, offset = 0): boolean {
    checkId(ids, offset);
    const h = this.queryHasher;
    h.loadAt(ids, offset);
    this.beginWrite();
    if (this.findForInsert(h, ids, offset)) return false;
    if (!this.roomForOne()) throw new CausalHorizonExceededError(this.horizonMessage());
    this.insertPrepared(h);
    return true;
  }

  /**
   * True if the id at `ids[offset..offset + 32)` is among the ids this instance sees (all on
   * the writer; the published ones on a reader). Exact. Safe from any thread while the writer
   * keeps inserting: a lookup that overlapped a change of tiers is retried.
   */
  contains(ids: Uint8Array, offset = 0): boolean {
    checkId(ids, offset);
    const h = this.queryHasher;
    h.loadAt(ids, offset);
    for (;;) {
      const g = this.stableGeneration();
      let found = this.hot.probe(h) >= 0;
      for (let i = 0; !found && i < this.frozen.length; i++) found = this.frozen[i]!.probe(h) >= 0;
      if (!found && this.filters.length !== 0) found = this.inRuns(h, ids, offset);
      if (Atomics.load(this.i32, D_GEN) === g) return found;
    }
  }

  /**
   * True if `id` is among the ids the writer has published, from any thread at any time (the
   * hot table is read through its flushed slot words only; other tiers are read whole).
   * Makes the published ids visible to this instance.
   */
  containsPublished(id: Uint8Array): boolean {
    checkId(id, 0);
    for (;;) {
      const g = this.stableGeneration();
      let found = this.hot.containsPublished(id);
      for (let i = 0; !found && i < this.frozen.length; i++) found = this.frozen[i]!.containsPublished(id);
      if (!found && this.filters.length !== 0) {
        const h = this.queryHasher;
        h.load(id);
        found = this.inRuns(h, id, 0);
      }
      if (Atomics.load(this.i32, D_GEN) === g) return found;
    }
  }

  /** The current generation once no change is in progress, with this thread's picture refreshed to it. */
  private stableGeneration(): number {
    for (let spins = 0; ; spins++) {
      const g = Atomics.load(this.i32, D_GEN);
      if ((g & 1) !== 0) {
        if (spins > 1000) Atomics.wait(this.i32, D_GEN, g, 1);
        continue;
      }
      if (g === this.gen) return g;
      this.tryRefresh();
    }
  }

  /**
   * True if the id loaded into `h` (bytes at `ids[offset..]`) is in a run. First every run's
   * filter, with one hash (runs share the filter seed, bar a filter whose construction needed
   * another) and no branch on the answers, so the filters' cache misses overlap; then the runs
   * whose filter let the id pass, newest first, confirm against their ids.
   */
  private inRuns(h: IdHasher, ids: Uint8Array, offset: number): boolean {
    const filters = this.filters;
    const n = filters.length;
    const fh = this.filterHash;
    fh.loadWords(h.words);
    const a = fh.a;
    const b = fh.b;
    const c = fh.c;
    const seed = fh.seed;
    // 32 runs per pass: a pass's answers are the bits of one int.
    for (let from = 0; from < n; from += 32) {
      const to = Math.min(n, from + 32);
      let maybe = 0;
      for (let i = from; i < to; i++) {
        const f = filters[i]!;
        const miss = f.seed === seed ? f.missHashed(a, b, c) : f.mayContain(ids, offset) ? 0 : 1;
        // miss is a byte: 0 → bit set.
        maybe |= ((miss - 1) >>> 31) << (i - from);
      }
      while (maybe !== 0) {
        const bit = 31 - Math.clz32(maybe & -maybe);
        if (this.runs[from + bit]!.indexOf(ids, offset) >= 0) return true;
        maybe &= maybe - 1;
      }
    }
    return false;
  }

  /** Makes every insert so far visible to threads that call `sync()`; installs finished compaction. Returns the size. Writer only. */
  publish(): number {
    this.beginWrite();
    this.hot.publish();
    const size = this.cold + this.hot.liveCount;
    this.f64[F_PUBLISHED] = size;
    return size;
  }

  /** Sees everything the writer has published. Returns the published size. */
  sync(): number {
    this.refreshIfStale();
    this.hot.sync();
    return this.f64[F_PUBLISHED]!;
  }

  /**
   * @internal Makes exactly the first `count` ids visible to this instance, as far as the hot
   * table goes (older tiers are read whole). Call `beginWrite()` before inserting again.
   */
  showUpTo(count: number): void {
    this.refreshIfStale();
    this.hot.showUpTo(Math.max(0, count - this.cold));
  }

  // ---- freezing and spares ----

  private makeSpare(): boolean {
    if (this.arenas.heldBytes() + this.tableBytes > this.budget) return false;
    for (let attempt = 0; attempt < 2; attempt++) {
      const entry = this.addTable(TABLE_SPARE, false);
      if (entry >= 0) {
        this.spareEntry = entry;
        return true;
      }
      // Every table entry is taken: compaction is far behind. Catch up in this thread (a pause),
      // or wait for a job another thread is running, rather than refuse the fact.
      const started = performance.now();
      if (this.compactOneInline() === 0) this.awaitCompaction();
      this.pauses.catchUps++;
      this.pauses.longestCatchUpMs = Math.max(this.pauses.longestCatchUpMs, performance.now() - started);
      if (this.spareEntry >= 0) return true;
    }
    return false;
  }

  /** Waits (up to COMPACTION_WAIT_MS) for a job another thread runs to finish, and installs it. */
  private awaitCompaction(): void {
    const deadline = Date.now() + COMPACTION_WAIT_MS;
    while (this.words[D_DONE] === 0 && Date.now() < deadline) Atomics.wait(this.i32, D_DONE, 0, 10);
    if (this.words[D_DONE] !== 0) this.installDone();
  }

  /** Allocates a table in state `state`: its entry number, or -1 (no entry or no room). */
  private addTable(state: number, commit: boolean): number {
    return underLock(this.i32, () => {
      let entry = -1;
      const w = this.words;
      for (let t = 0; t < MAX_TABLES; t++) {
        if (w[OFF_TABLES + t * T_WORDS + T_STATE] === TABLE_FREE) {
          entry = t;
          break;
        }
      }
      if (entry < 0) return -1;
      const location = this.arenas.allocate(this.tableBytes, false);
      if (location < 0) return -1;
      this.tableCache.set(location, ExactCausalIndex.placeIn(this.arenas.bufferOf(location), this.arenas.offsetOf(location), this.hotCapacity, this.seed));
      const at = OFF_TABLES + entry * T_WORDS;
      w[at + T_SERIAL] = w[D_NEXT_SERIAL]!;
      w[D_NEXT_SERIAL] = w[D_NEXT_SERIAL]! + 1;
      w[at + T_LOCATION] = location;
      w[at + T_SEQUENCE] = 0;
      w[at + T_COUNT] = 0;
      w[at + T_STATE] = state;
      if (commit) prefaultRange(this.arenas.view(location, this.tableBytes));
      return entry;
    });
  }

  /**
   * The hot table becomes frozen and the spare takes over (`roomForOne` made sure there is
   * one): O(1). This thread made the change under the lock, so it patches its own picture
   * instead of re-reading the directory (a refresh is cold code here: ~0.1–0.4 ms measured).
   */
  private freeze(): void {
    const started = performance.now();
    const w = this.words;
    const hot = this.hot;
    const spareEntry = this.spareEntry;
    const spare = this.tableAt(w[OFF_TABLES + spareEntry * T_WORDS + T_LOCATION]!);
    const count = hot.liveCount;
    const gen = changeTiers(this.i32, () => {
      // Frozen tables are read whole by readers and the compactor: no pending slot writes.
      hot.publish();
      const at = OFF_TABLES + this.hotEntry * T_WORDS;
      w[at + T_STATE] = TABLE_FROZEN;
      w[at + T_SEQUENCE] = w[D_FREEZES]!;
      w[at + T_COUNT] = count;
      w[D_FREEZES] = w[D_FREEZES]! + 1;
      w[OFF_TABLES + spareEntry * T_WORDS + T_STATE] = TABLE_HOT;
      this.f64[F_COLD] = this.f64[F_COLD]! + count;
    });
    hot.sync();
    this.frozen.unshift(hot);
    this.hot = spare;
    this.hotEntry = spareEntry;
    this.spareEntry = -1;
    this.cold += count;
    this.gen = gen;
    spare.beginWrite();
    this.signalWork();
    this.pauses.freezes++;
    this.pauses.longestFreezeMs = Math.max(this.pauses.longestFreezeMs, performance.now() - started);
  }

  /** The freezes and installs this instance (the writer) made, and the longest of each. */
  writerPauses(): WriterPauses {
    return { ...this.pauses };
  }

  private signalWork(): void {
    Atomics.add(this.i32, D_WORK, 1);
    Atomics.notify(this.i32, D_WORK);
  }

  // ---- this thread's picture ----

  private refreshIfStale(): void {
    if (Atomics.load(this.i32, D_GEN) !== this.gen) this.refresh();
  }

  /** Rebuilds this thread's picture from the directory, retrying while a change is in progress. */
  private refresh(): void {
    for (;;) {
      const g = Atomics.load(this.i32, D_GEN);
      if ((g & 1) !== 0) {
        Atomics.wait(this.i32, D_GEN, g, 1);
        continue;
      }
      if (this.tryRefresh()) return;
    }
  }

  /**
   * One attempt at rebuilding the picture: false if the directory changed meanwhile (the caller
   * tries again). What is read is checked: a location outside the arenas or a run image that
   * does not parse is a SharedMemoryError — unless a change raced the read.
   */
  private tryRefresh(): boolean {
    const i32 = this.i32;
    const g = Atomics.load(i32, D_GEN);
    if ((g & 1) !== 0) return false;
    try {
      const w = this.words;
      let hotEntry = -1;
      let spareEntry = -1;
      const frozen: { table: ExactCausalIndex; sequence: number }[] = [];
      const seenTables = new Set<number>();
      for (let t = 0; t < MAX_TABLES; t++) {
        const at = OFF_TABLES + t * T_WORDS;
        const state = w[at + T_STATE]!;
        if (state === TABLE_FREE || state === TABLE_ORPHAN) continue;
        const location = w[at + T_LOCATION]!;
        seenTables.add(location);
        if (state === TABLE_SPARE) {
          spareEntry = t;
          continue;
        }
        const table = this.tableAt(location);
        if (state === TABLE_HOT) {
          hotEntry = t;
          this.hot = table;
        } else if (state === TABLE_FROZEN || state === TABLE_BUILDING) {
          table.sync();
          frozen.push({ table, sequence: w[at + T_SEQUENCE]! });
        } else {
          throw new SharedMemoryError(`tier directory: table ${t} in unknown state ${state}`);
        }
      }
      if (hotEntry < 0) throw new SharedMemoryError('tier directory names no hot table');
      const runs: { run: SortedRun; age: number }[] = [];
      const seenRuns = new Set<number>();
      for (let r = 0; r < MAX_RUNS; r++) {
        const at = OFF_RUNS + r * R_WORDS;
        const state = w[at + R_STATE]!;
        if (state !== RUN_LIVE && state !== RUN_MERGING) continue;
        const serial = w[at + R_SERIAL]!;
        let run = this.runCache.get(serial);
        if (run === undefined) {
          const location = w[at + R_LOCATION]!;
          const bytes = w[at + R_BYTES]!;
          if (!this.arenas.holds(location, bytes)) throw new SharedMemoryError(`tier directory: run ${r} lies outside the arenas`);
          run = SortedRun.attach(this.arenas.view(location, bytes));
          if (run.count !== w[at + R_COUNT]) throw new SharedMemoryError(`tier directory: run ${r} holds ${run.count} ids, its entry says ${w[at + R_COUNT]}`);
          this.runCache.set(serial, run);
        }
        seenRuns.add(serial);
        runs.push({ run, age: w[at + R_AGE]! });
      }
      const cold = this.f64[F_COLD]!;
      if (Atomics.load(i32, D_GEN) !== g) return false;
      frozen.sort((x, y) => y.sequence - x.sequence);
      runs.sort((x, y) => y.age - x.age);
      this.frozen = frozen.map((f) => f.table);
      this.runs = runs.map((r) => r.run);
      this.filters = this.runs.map((r) => r.filter);
      this.hotEntry = hotEntry;
      this.spareEntry = spareEntry;
      this.cold = cold;
      this.overBudget = this.budget !== Infinity && this.arenas.heldBytes() > this.budget;
      for (const location of this.tableCache.keys()) if (!seenTables.has(location)) this.tableCache.delete(location);
      for (const serial of this.runCache.keys()) if (!seenRuns.has(serial)) this.runCache.delete(serial);
      this.gen = g;
      return true;
    } catch (error) {
      if (Atomics.load(i32, D_GEN) !== g) return false;
      throw error;
    }
  }

  private tableAt(location: number): ExactCausalIndex {
    let table = this.tableCache.get(location);
    if (table === undefined) {
      if (!this.arenas.holds(location, this.tableBytes)) throw new SharedMemoryError('tier directory: a table lies outside the arenas');
      table = ExactCausalIndex.attachAt(this.arenas.bufferOf(location), this.arenas.offsetOf(location), true);
      if (table.capacity !== this.hotCapacity) throw new SharedMemoryError(`tier directory: a table of ${table.capacity} ids in an index of ${this.hotCapacity}`);
      this.tableCache.set(location, table);
    }
    return table;
  }

  // ---- compaction ----

  /**
   * Claims the next piece of compaction work, if any: the oldest frozen table not claimed
   * (build its run), else the merge the policy asks for (the mergeFactor oldest unclaimed runs
   * of the lowest level that has that many, below the final level). The output's memory is
   * allocated now. From any thread holding the memory. Undefined: nothing to do, no job slot
   * free, or no room for the output.
   */
  claimCompaction(): CompactionJob | undefined {
    const w = this.words;
    return underLock(this.i32, () => {
      let slot = -1;
      for (let j = 0; j < MAX_JOBS; j++) {
        if (w[OFF_JOBS + j * J_WORDS + J_STATE] === JOB_FREE) {
          slot = j;
          break;
        }
      }
      if (slot < 0) return undefined;
      const job = OFF_JOBS + slot * J_WORDS;
      // Run entries in use or promised to a build in flight: a build is claimed only with an
      // entry left for its run, so a finished build can always be installed.
      let entries = 0;
      let oldest = -1;
      for (let t = 0; t < MAX_TABLES; t++) {
        const at = OFF_TABLES + t * T_WORDS;
        if (w[at + T_STATE] === TABLE_BUILDING || w[at + T_STATE] === TABLE_ORPHAN) entries++;
        if (w[at + T_STATE] === TABLE_FROZEN && (oldest < 0 || w[at + T_SEQUENCE]! < w[OFF_TABLES + oldest * T_WORDS + T_SEQUENCE]!)) oldest = t;
      }
      for (let r = 0; r < MAX_RUNS; r++) if (w[OFF_RUNS + r * R_WORDS + R_STATE] !== RUN_FREE) entries++;
      const crowded = entries >= MAX_RUNS - RUN_ENTRIES_SLACK;
      if (oldest >= 0 && !crowded) {
        const at = OFF_TABLES + oldest * T_WORDS;
        const count = w[at + T_COUNT]!;
        const outBytes = sortedRunByteLength(count);
        const outLocation = this.arenas.allocate(outBytes, false);
        if (outLocation < 0) return undefined;
        w[at + T_STATE] = TABLE_BUILDING;
        return this.fillJob(slot, job, KIND_BUILD, count, outLocation, outBytes, [w[at + T_SERIAL]!], [{ location: w[at + T_LOCATION]!, bytes: this.tableBytes, count }]);
      }
      const chosen = this.mergeCandidates(crowded);
      if (chosen === undefined) return undefined;
      let count = 0;
      for (const r of chosen) count += w[OFF_RUNS + r * R_WORDS + R_COUNT]!;
      const outBytes = sortedRunByteLength(count);
      const outLocation = this.arenas.allocate(outBytes, false);
      if (outLocation < 0) return undefined;
      const inputs = chosen.map((r) => {
        const at = OFF_RUNS + r * R_WORDS;
        w[at + R_STATE] = RUN_MERGING;
        return { location: w[at + R_LOCATION]!, bytes: w[at + R_BYTES]!, count: w[at + R_COUNT]! };
      });
      const serials = chosen.map((r) => w[OFF_RUNS + r * R_WORDS + R_SERIAL]!);
      return this.fillJob(slot, job, KIND_MERGE, count, outLocation, outBytes, serials, inputs);
    });
  }

  /**
   * The runs the merge policy says to merge now (entry numbers, oldest first), or undefined:
   * the lowest level below the final one holding mergeFactor unclaimed runs gives its
   * mergeFactor oldest; when run entries are `crowded`, any level with two or more will do
   * (lowest first), so entries are freed even if no level is full. Inputs are cut to stay
   * within MAX_MERGE_IDS.
   */
  private mergeCandidates(crowded: boolean): number[] | undefined {
    const w = this.words;
    const byLevel = new Map<number, number[]>();
    for (let r = 0; r < MAX_RUNS; r++) {
      const at = OFF_RUNS + r * R_WORDS;
      if (w[at + R_STATE] !== RUN_LIVE) continue;
      const level = w[at + R_LEVEL]!;
      if (level >= this.finalLevel) continue;
      const list = byLevel.get(level) ?? [];
      list.push(r);
      byLevel.set(level, list);
    }
    const levels = [...byLevel.keys()].sort((x, y) => x - y);
    for (const least of crowded ? [this.mergeFactor, 2] : [this.mergeFactor]) {
      for (const level of levels) {
        const list = byLevel.get(level)!;
        if (list.length < least) continue;
        list.sort((x, y) => w[OFF_RUNS + x * R_WORDS + R_AGE]! - w[OFF_RUNS + y * R_WORDS + R_AGE]!);
        const chosen: number[] = [];
        let ids = 0;
        for (const r of list) {
          const n = w[OFF_RUNS + r * R_WORDS + R_COUNT]!;
          if (chosen.length === this.mergeFactor || ids + n > MAX_MERGE_IDS) break;
          chosen.push(r);
          ids += n;
        }
        if (chosen.length >= 2) return chosen;
      }
    }
    return undefined;
  }

  private fillJob(
    slot: number,
    job: number,
    kind: number,
    count: number,
    outLocation: number,
    outBytes: number,
    serials: readonly number[],
    inputs: CompactionJob['inputs'],
  ): CompactionJob {
    const w = this.words;
    w[job + J_KIND] = kind;
    w[job + J_EPOCH] = w[D_EPOCH]!;
    w[job + J_OUT_LOCATION] = outLocation;
    w[job + J_OUT_BYTES] = outBytes;
    w[job + J_OUT_COUNT] = 0;
    w[job + J_INPUTS] = serials.length;
    for (let i = 0; i < serials.length; i++) w[job + J_INPUT + i] = serials[i]!;
    w[job + J_STATE] = JOB_CLAIMED;
    return { slot, kind: kind === KIND_BUILD ? 'build' : 'merge', epoch: w[D_EPOCH]!, count, outLocation, outBytes, inputs };
  }

  /**
   * Does a claimed job's work (anywhere, no lock: seconds for large merges). Returns the ids
   * written. `filterSeed` is for tests (a filter whose construction needed another seed).
   */
  runCompaction(job: CompactionJob, filterSeed = this.filterSeed): number {
    const out = this.arenas.view(job.outLocation, job.outBytes);
    if (job.kind === 'build') {
      const input = job.inputs[0]!;
      const table = ExactCausalIndex.attachAt(this.arenas.bufferOf(input.location), this.arenas.offsetOf(input.location), true);
      return buildRun(table.idsView(input.count), filterSeed, out).count;
    }
    const runs = job.inputs.map((i) => SortedRun.attach(this.arenas.view(i.location, i.bytes)));
    return mergeRuns(runs, filterSeed, out).count;
  }

  /** Reports a job done (from the thread that ran it); the writer installs it on its next admission or publish. */
  completeCompaction(job: CompactionJob, count: number): void {
    const w = this.words;
    underLock(this.i32, () => {
      const at = OFF_JOBS + job.slot * J_WORDS;
      if (w[at + J_STATE] !== JOB_CLAIMED || w[at + J_OUT_LOCATION] !== job.outLocation) throw new InvalidArgumentError('completeCompaction takes a job this index handed out and has not finished');
      w[at + J_OUT_COUNT] = count;
      w[at + J_STATE] = JOB_DONE;
    });
    Atomics.add(this.i32, D_DONE, 1);
  }

  /** Gives a claimed job back (its thread failed): the inputs can be claimed again, the output's memory is freed. */
  abandonCompaction(job: CompactionJob): void {
    const w = this.words;
    underLock(this.i32, () => {
      const at = OFF_JOBS + job.slot * J_WORDS;
      if (w[at + J_STATE] === JOB_CLAIMED && w[at + J_OUT_LOCATION] === job.outLocation) this.releaseJob(at, false);
    });
  }

  /**
   * Frees a job slot: its inputs go back to being claimable (or, orphaned by a clear, freed),
   * and its output is freed unless `installed`. Under the lock.
   */
  private releaseJob(at: number, installed: boolean): void {
    const w = this.words;
    if (!installed) this.arenas.free(w[at + J_OUT_LOCATION]!, w[at + J_OUT_BYTES]!);
    const n = w[at + J_INPUTS]!;
    for (let i = 0; i < n; i++) {
      const serial = w[at + J_INPUT + i]!;
      if (w[at + J_KIND] === KIND_BUILD) {
        const t = this.entryOf(OFF_TABLES, T_WORDS, MAX_TABLES, serial);
        if (t < 0) continue;
        const e = OFF_TABLES + t * T_WORDS;
        if (w[e + T_STATE] === TABLE_ORPHAN) {
          this.arenas.free(w[e + T_LOCATION]!, this.tableBytes);
          w[e + T_STATE] = TABLE_FREE;
        } else if (w[e + T_STATE] === TABLE_BUILDING) w[e + T_STATE] = TABLE_FROZEN;
      } else {
        const r = this.entryOf(OFF_RUNS, R_WORDS, MAX_RUNS, serial);
        if (r < 0) continue;
        const e = OFF_RUNS + r * R_WORDS;
        if (w[e + R_STATE] === RUN_ORPHAN) {
          this.arenas.free(w[e + R_LOCATION]!, w[e + R_BYTES]!);
          w[e + R_STATE] = RUN_FREE;
        } else if (w[e + R_STATE] === RUN_MERGING) w[e + R_STATE] = RUN_LIVE;
      }
    }
    w[at + J_STATE] = JOB_FREE;
  }

  /** The entry (table or run: both keep serial and state in their first two words) named `serial`, in use; -1 if none. */
  private entryOf(offset: number, words: number, max: number, serial: number): number {
    for (let e = 0; e < max; e++) {
      const at = offset + e * words;
      if (this.words[at + T_STATE] !== TABLE_FREE && this.words[at + T_SERIAL] === serial) return e;
    }
    return -1;
  }

  /**
   * Installs every finished job (writer only): a table's run replaces the table, a merge's run
   * replaces its inputs, each in one step for lookups (the generation seqlock). A replaced table
   * becomes the spare if there is none, else its memory is freed; replaced runs are freed.
   */
  private installDone(): void {
    const started = performance.now();
    const w = this.words;
    const i32 = this.i32;
    let installed = 0;
    changeTiers(i32, () => {
      for (let j = 0; j < MAX_JOBS; j++) {
        const at = OFF_JOBS + j * J_WORDS;
        if (w[at + J_STATE] !== JOB_DONE) continue;
        if (w[at + J_EPOCH] !== w[D_EPOCH]) {
          this.releaseJob(at, false);
          Atomics.sub(i32, D_DONE, 1);
          continue;
        }
        const run = this.freeRunEntry();
        if (run < 0) break; // every run entry taken: merges must free some first
        const count = w[at + J_OUT_COUNT]!;
        let age = 0;
        if (w[at + J_KIND] === KIND_BUILD) {
          const t = this.entryOf(OFF_TABLES, T_WORDS, MAX_TABLES, w[at + J_INPUT]!);
          const e = OFF_TABLES + t * T_WORDS;
          age = w[e + T_SEQUENCE]!;
          if (this.spareEntryOf() >= 0) {
            this.arenas.free(w[e + T_LOCATION]!, this.tableBytes);
            w[e + T_STATE] = TABLE_FREE;
          } else {
            this.tableAt(w[e + T_LOCATION]!).clear();
            w[e + T_STATE] = TABLE_SPARE;
          }
        } else {
          for (let i = 0; i < w[at + J_INPUTS]!; i++) {
            const r = this.entryOf(OFF_RUNS, R_WORDS, MAX_RUNS, w[at + J_INPUT + i]!);
            const e = OFF_RUNS + r * R_WORDS;
            age = Math.max(age, w[e + R_AGE]!);
            this.arenas.free(w[e + R_LOCATION]!, w[e + R_BYTES]!);
            w[e + R_STATE] = RUN_FREE;
          }
        }
        const e = OFF_RUNS + run * R_WORDS;
        w[e + R_SERIAL] = w[D_NEXT_SERIAL]!;
        w[D_NEXT_SERIAL] = w[D_NEXT_SERIAL]! + 1;
        w[e + R_LOCATION] = w[at + J_OUT_LOCATION]!;
        w[e + R_BYTES] = w[at + J_OUT_BYTES]!;
        w[e + R_COUNT] = count;
        w[e + R_AGE] = age;
        w[e + R_LEVEL] = this.levelOf(count);
        w[e + R_STATE] = RUN_LIVE;
        w[at + J_STATE] = JOB_FREE;
        Atomics.sub(i32, D_DONE, 1);
        installed++;
      }
    });
    this.refresh();
    if (installed > 0) this.signalWork();
    this.pauses.installs += installed;
    this.pauses.longestInstallMs = Math.max(this.pauses.longestInstallMs, performance.now() - started);
  }

  private spareEntryOf(): number {
    for (let t = 0; t < MAX_TABLES; t++) if (this.words[OFF_TABLES + t * T_WORDS + T_STATE] === TABLE_SPARE) return t;
    return -1;
  }

  private freeRunEntry(): number {
    for (let r = 0; r < MAX_RUNS; r++) if (this.words[OFF_RUNS + r * R_WORDS + R_STATE] === RUN_FREE) return r;
    return -1;
  }

  /** ⌊log_F(count / hotCapacity)⌋, at least 0. */
  private levelOf(count: number): number {
    let level = 0;
    let bound = this.hotCapacity * this.mergeFactor;
    while (count >= bound) {
      level++;
      bound *= this.mergeFactor;
    }
    return level;
  }

  /** One claim, run and install in this thread: the ids the job read, or 0 if there was nothing to claim. Writer only. */
  private compactOneInline(): number {
    const job = this.claimCompaction();
    if (job === undefined) return 0;
    let count: number;
    try {
      count = this.runCompaction(job);
    } catch (error) {
      this.abandonCompaction(job);
      throw error;
    }
    this.completeCompaction(job, count);
    this.installDone();
    return job.count;
  }

  /**
   * Compaction in the calling thread (writer only): builds the run of every frozen table, then
   * the merges the policy asks for, installing each, until `budget` ids have been read (a step
   * that starts below the budget finishes; default: all there is). Returns the ids read.
   */
  compact(budget = Infinity): number {
    if (!(typeof budget === 'number' && budget >= 0)) throw new InvalidArgumentError(`compact's budget is a number of ids ≥ 0, got ${describeValue(budget)}`);
    this.beginWrite();
    let done = 0;
    while (done < budget) {
      const read = this.compactOneInline();
      if (read === 0) break;
      done += read;
    }
    this.hot.beginWrite();
    return done;
  }

  /** True while a frozen table, a mergeable level or a finished job waits (for compactors and tests). */
  hasCompactionWork(): boolean {
    const w = this.words;
    if (w[D_DONE] !== 0) return true;
    for (let t = 0; t < MAX_TABLES; t++) if (w[OFF_TABLES + t * T_WORDS + T_STATE] === TABLE_FROZEN) return true;
    const counts = new Map<number, number>();
    for (let r = 0; r < MAX_RUNS; r++) {
      const at = OFF_RUNS + r * R_WORDS;
      if (w[at + R_STATE] !== RUN_LIVE || w[at + R_LEVEL]! >= this.finalLevel) continue;
      const n = (counts.get(w[at + R_LEVEL]!) ?? 0) + 1;
      if (n >= this.mergeFactor) return true;
      counts.set(w[at + R_LEVEL]!, n);
    }
    return false;
  }

  /** @internal The compactor serving this index (0: none). */
  get compactorId(): number {
    return Atomics.load(this.i32, D_COMPACTOR);
  }

  /** @internal Claims this index for compactor `id`; false if another compactor has it. */
  adoptBy(id: number): boolean {
    return Atomics.compareExchange(this.i32, D_COMPACTOR, 0, id) === 0;
  }

  /** @internal The directory word a compactor may `Atomics.wait` on (bumped when work appears). */
  get workSignal(): { words: Int32Array; index: number } {
    return { words: this.i32, index: D_WORK };
  }

  // ---- reading it all ----

  /** Bytes held, per tier. */
  memoryBytes(): TieredMemory {
    this.refreshIfStale();
    let frozenIds = 0;
    for (const t of this.frozen) frozenIds += t.liveCount;
    let bytes = 0;
    let ids = 0;
    let filters = 0;
    let fences = 0;
    for (const r of this.runs) {
      bytes += pagesFor(r.byteLength) * ARENA_PAGE;
      ids += r.count;
      filters += r.filter.byteLength;
      fences += 8 * Math.ceil(r.count / 128);
    }
    const spare = this.spareEntry < 0 ? 0 : 1;
    return {
      hot: { bytes: this.tableBytes, ids: this.hot.liveCount },
      spare: { bytes: spare * this.tableBytes, tables: spare },
      frozen: { bytes: this.frozen.length * this.tableBytes, ids: frozenIds, tables: this.frozen.length },
      runs: { bytes, ids, count: this.runs.length, keys: 32 * ids, filters, fences, other: bytes - 32 * ids - filters - fences },
      total: this.arenas.heldBytes(),
      arenaBytes: this.arenas.grownBytes(),
    };
  }

  /**
   * The ids as blocks of 32-byte ids end to end, views with no copy (valid until the next
   * insert, install or clear): runs oldest first (each sorted), then frozen tables oldest first
   * and the hot table (each in insertion order). Writer only.
   */
  *idBlocks(): IterableIterator<Uint8Array> {
    this.beginWrite();
    for (let i = this.runs.length - 1; i >= 0; i--) yield this.runs[i]!.keys;
    for (let i = this.frozen.length - 1; i >= 0; i--) yield this.frozen[i]!.idsView(this.frozen[i]!.liveCount);
    yield this.hot.idsView(this.hot.liveCount);
  }

  /** Every id in memcmp order, end to end (a new array): the canonical order of the set, for digests and images. Writer only. */
  sortedIds(): Uint8Array {
    const blocks = [...this.idBlocks()];
    const runs = this.runs.length;
    return sortedIds(blocks, blocks.map((_, i) => i < runs));
  }

  /** Every id (a copy each), in `idBlocks` order: NOT insertion order once runs exist. */
  *ids(): IterableIterator<Uint8Array> {
    for (const block of this.idBlocks()) {
      for (let o = 0; o < block.length; o += 32) yield block.slice(o, o + 32);
    }
  }

  /**
   * Forgets every id (writer only): frozen tables and runs are freed, the hot table cleared, the
   * spare kept. Work a compactor claimed before is discarded when it comes back (its inputs and
   * output are freed then, not now: it may still be reading and writing them).
   */
  clear(): void {
    const w = this.words;
    this.beginWrite();
    changeTiers(this.i32, () => {
      w[D_EPOCH] = w[D_EPOCH]! + 1;
      for (let t = 0; t < MAX_TABLES; t++) {
        const at = OFF_TABLES + t * T_WORDS;
        const state = w[at + T_STATE]!;
        if (state === TABLE_FROZEN) {
          this.arenas.free(w[at + T_LOCATION]!, this.tableBytes);
          w[at + T_STATE] = TABLE_FREE;
        } else if (state === TABLE_BUILDING) w[at + T_STATE] = TABLE_ORPHAN;
      }
      for (let r = 0; r < MAX_RUNS; r++) {
        const at = OFF_RUNS + r * R_WORDS;
        const state = w[at + R_STATE]!;
        if (state === RUN_LIVE) {
          this.arenas.free(w[at + R_LOCATION]!, w[at + R_BYTES]!);
          w[at + R_STATE] = RUN_FREE;
        } else if (state === RUN_MERGING) w[at + R_STATE] = RUN_ORPHAN;
      }
      this.hot.clear();
      w[D_FREEZES] = 0;
      this.f64[F_COLD] = 0;
      this.f64[F_PUBLISHED] = 0;
    });
    this.refresh();
    this.hot.beginWrite();
  }
}

export interface CheckedOptions {
  hotCapacity: number;
  mergeFactor: number;
  budgetBytes: number;
  idLimit: number;
  seed: number;
  prefault: boolean;
  arenas: number;
  arenaBytes: number;
}

/** @internal Throws InvalidArgumentError unless `options` are valid; the options with defaults filled in. */
export function checkTieredIndexOptions(options: TieredIndexOptions): CheckedOptions {
  const {
    hotCapacity = DEFAULT_HOT_CAPACITY,
    mergeFactor = DEFAULT_MERGE_FACTOR,
    budgetBytes,
    idLimit,
    seed,
    prefault = true,
    arenas = DEFAULT_ARENAS,
    arenaBytes = MAX_ARENA_BYTES,
  } = optionsObject(options);
  if (!Number.isInteger(hotCapacity) || hotCapacity < 1 || hotCapacity > MAX_INDEX_CAPACITY) {
    throw new InvalidArgumentError(`hotCapacity must be an integer in [1, ${MAX_INDEX_CAPACITY}], got ${describeValue(hotCapacity)}`);
  }
  if (!Number.isInteger(mergeFactor) || mergeFactor < 2 || mergeFactor > MAX_MERGE_FACTOR) {
    throw new InvalidArgumentError(`mergeFactor must be an integer in [2, ${MAX_MERGE_FACTOR}], got ${describeValue(mergeFactor)}`);
  }
  if (budgetBytes !== undefined && !(typeof budgetBytes === 'number' && budgetBytes > 0)) {
    throw new InvalidArgumentError(`budgetBytes must be a positive number of bytes, got ${describeValue(budgetBytes)}`);
  }
  if (idLimit !== undefined && !(Number.isInteger(idLimit) && idLimit >= 1)) {
    throw new InvalidArgumentError(`idLimit must be a positive integer, got ${describeValue(idLimit)}`);
  }
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
    throw new InvalidArgumentError(`seed must be a u32, got ${describeValue(seed)}`);
  }
  if (typeof prefault !== 'boolean') throw new InvalidArgumentError(`prefault must be a boolean, got ${describeValue(prefault)}`);
  if (!Number.isInteger(arenas) || arenas < 1 || arenas > MAX_ARENAS) throw new InvalidArgumentError(`arenas must be an integer in [1, ${MAX_ARENAS}], got ${describeValue(arenas)}`);
  if (!Number.isInteger(arenaBytes) || arenaBytes < ARENA_PAGE || arenaBytes > MAX_ARENA_BYTES || arenaBytes % ARENA_PAGE !== 0) {
    throw new InvalidArgumentError(`arenaBytes must be a multiple of 4096 in [4096, 2^32], got ${describeValue(arenaBytes)}`);
  }
  return {
    hotCapacity,
    mergeFactor,
    budgetBytes: budgetBytes ?? Infinity,
    idLimit: idLimit ?? Infinity,
    seed: seed ?? randomU32(),
    prefault,
    arenas,
    arenaBytes,
  };
}

function checkId(ids: Uint8Array, offset: number): void {
  if (!(ids instanceof Uint8Array) || !(offset >= 0 && offset + 32 <= ids.length) || offset !== (offset | 0)) {
    throw new InvalidArgumentError(`no 32-byte id at offset ${describeValue(offset)} of ${describeValue(ids)}`);
  }
}
