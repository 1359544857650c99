/**
 * TieredExactIndex: an exact set of 32-byte fact ids with no capacity limit — a small hot table
 * that takes every insert, frozen tables waiting to be compacted, and immutable sorted runs.
 *
 * Tiers, in the order a lookup consults them:
 *
 *   1. **hot**: an ExactCausalIndex of `hotCapacity` ids (default 2^16) in one SharedArrayBuffer.
 *      Every insert lands here. A new id is proven absent from it by its tag array alone.
 *   2. **frozen**: a hot table that filled up, kept and still consulted until `compact` (or the
 *      owner's worker, below) turns it into a run. The swap is O(1): the next hot table was allocated (and its pages committed) ahead of
 *      time, so a freeze moves two references: no allocation, no copy, no fence, no page fault
 *      on the admitting path (the table's buffered slot writes are flushed, and it is published,
 *      when it is handed out for compaction).
 *   3. **runs**: SortedRuns (sorted-run.ts): the ids sorted, a fence per 128 ids, a binary fuse
 *      filter. A lookup asks the filter first (~1 in 256 absent ids passes it) and confirms a
 *      pass against the run's ids, so exactness never rests on a filter.
 *
 * Every id lives in exactly one tier: `insert` checks all of them (hot table, frozen tables
 * newest first, runs newest first) before it writes anything, so a duplicate from any age is
 * refused and a refusal changes nothing. The common case, an id never seen, costs one hot-table
 * probe (tags only), one probe per frozen table, and one filter lookup per run.
 *
 * Why 2^16 ids per hot table (2.45 MiB: 91 KiB of tags, 366 KiB of slot words, 2 MiB of keys):
 * measured on this 2-core machine (1 MiB L2 per core, a loaded machine, two runs), a full
 * ExactCausalIndex answered an absent id in 84–126 ns at 2^13–2^16 ids, 105–131 at 2^17–2^18
 * and 179 at 2^20, and a present one (a recent dep: tag, slot word and key) in 100–316 ns at
 * 2^13–2^16 against 298–368 at 2^17 and 600–650 at 2^20. At 2^16 the randomly read part (tags
 * and slot words, 457 KiB) fits half the L2 beside the newest runs' filters while keys are only
 * appended; 2^17 doubles it. Over the whole index (`npm run bench:tiered` with
 * CTFS_HOT_CAPACITY = 2^15, 2^16, 2^17, at 1M and 10M ids) lookups and inserts differed by
 * less than the run-to-run noise, so the rest decided: 2^15 freezes twice as often and rewrote
 * each id 3.65 times in merges at 10M ids against 2.77 at 2^16, and 2^17 doubles the fixed
 * 4.9 MiB of two hot tables (which every tenant of a TenantKernel would pay). A freeze is a run
 * to build: 17 ms at 2^16 ids alone, 23–45 ms amid inserts (1.4–2.9M ids/s).
 *
 * Measured against a plain ExactCausalIndex holding the same ids (`npm run bench:tiered`, two
 * runs, at 1M / 10M ids): insert of a new id 1.08–1.27× / 1.09–1.21× the plain index's time, an
 * absent id 1.4–1.6× / 1.3–1.5×, a recent id 0.5–0.7× / 0.6–0.7× (the hot table is small), an
 * old id or its duplicate ~2.2× / 1.6–2.2× (one run at 1M measured 6×): a filter pass over every
 * run, then a search of the run's ids, 0.8 µs / 0.9–1.4 µs. Compaction reads each id once to
 * build its run (2.4–2.9M ids/s) and ~2.8 times in merges (2.8–3.1M ids/s) at 10M ids: ~1.4 µs
 * of one core per id, so one compacting core keeps up with ~700k inserts/s; faster admission
 * for long stretches leaves frozen tables waiting (each one more probe per lookup).
 *
 * **Compaction** is explicit and off the admitting path. `compact(budget)` does it all in the
 * calling thread; the steps it is made of let an owner run the expensive part anywhere:
 *
 *   frozen = index.freezeReady()          // the oldest frozen table not handed out yet
 *   run    = buildRun(frozen.ids, index.filterSeed)       // O(n log n): here or in a worker
 *   index.installRun(frozen, run)         // O(1) swap: the run replaces the table for lookups
 *
 *   job    = index.mergeReady()           // runs the policy says to merge, or undefined
 *   run    = mergeRuns(job.runs, index.filterSeed)        // O(n): here or in a worker
 *   index.installMerge(job, run)          // O(runs) swap
 *
 * `frozen.ids` is a view of the table's SharedArrayBuffer and a run's image (`run.bytes`) is a
 * view of one too, so both cross to a worker without a copy; `installRun`/`installMerge` also
 * take the image a worker sends back (attached, header checked, id count compared). Until an
 * install, the table or input runs stay in place and are consulted, so a lookup never misses an
 * id in between. A handed-out job that will not come back (the worker died) is given back with
 * `abandon`. A table whose run is installed is cleared and kept as the next spare hot table
 * (its pages stay committed), so in steady state exactly two hot tables exist.
 *
 * **Merge policy** (size-tiered): a run's level is ⌊log_F(ids / hotCapacity)⌋ with F =
 * `mergeFactor` (default 4), so a run built from one frozen table is level 0 and F level-ℓ runs
 * merge into one level-(ℓ + 1) run. Whenever some level holds F runs not already being merged,
 * `mergeReady` offers its F oldest, lowest level first. A merge of F level-ℓ runs is at level
 * ℓ + 1 or above, so after `compact` at most F − 1 runs remain per level, and a lookup consults
 * at most (F − 1)·(⌊log_F(n / hotCapacity)⌋ + 1) runs: 12 at 10M ids, 18 at 100M (more while
 * compaction is behind). Each id is rewritten about log_F(n / hotCapacity) times (2.8 per id at
 * 10M ids, measured): the price of few runs; a larger F rewrites less and consults more. Runs are kept newest first, a merged
 * run taking the place of its newest input: old ids live in the large runs at the end.
 *
 * **Memory** (`memoryBytes()`, per tier): a run costs 32 bytes per id for its keys, ~1.13 for
 * its filter (9 bits per id at large counts, ~9.9 at 2^16 ids), 0.0625 for fences, and a header
 * plus padding to a 4 KiB page per run; the radix over the fences (≤ 0.03 bytes per id) lives in
 * the JavaScript heap and is not counted. Measured: 33.19–33.25 bytes per id in runs (32 +
 * 1.13–1.16 filter + 0.06 fences + ≤ 0.03 padding), plus two hot tables (4.9 MiB at the default
 * capacity) and any frozen tables not compacted yet (39.2 bytes per id): 36.4 bytes per id
 * overall at 1M ids, 33.7 at 10M. A merge holds its output beside its inputs until installed.
 *
 * **Budget**: no id-count limit; with `budgetBytes`, `insert` of a new id throws
 * CausalHorizonExceededError (nothing changed) when the index holds more than the budget, or
 * would after a freeze that has to allocate a hot table. Memory grows when a run is installed
 * (the table it replaces is kept as the spare) and when a freeze finds no spare, so the budget is
 * checked against what is held, never against an estimate. A duplicate is refused as such
 * whatever the budget.
 *
 * **Order of `ids()`**: runs oldest first (each in memcmp order), then frozen tables oldest
 * first and the hot table, each in insertion order. Insertion order is NOT preserved across
 * runs: sorting forgets it. A checkpoint written from `ids()` holds the set exactly, and the ids
 * of the frozen and hot tables (the newest 1–2 tables' worth) in the order they came; everything
 * older comes back sorted, so a restore that re-inserts the ids numbers them differently; nothing
 * outside the index may refer to ids by insertion number (the domain's frontier ring holds ids).
 *
 * Threads: one owner thread inserts, looks up and installs; builds and merges may run anywhere.
 * Other threads do not attach to a tiered index yet (see below).
 *
 * **Integration notes** (what CausalDomain needs beyond ExactCausalIndex, and how to get it):
 *  - *Key numbers*: none needed. Key numbers are per hot table and a run has none, so the
 *    domain's frontier ring and recent-admissions cache hold ids (the ring 8 × 32 bytes in the
 *    control block), compared by first word and confirmed by a full compare; CausalDomain uses
 *    neither `idAt`, `keyEquals` nor `insertAt`'s key number, and a checkpoint needs no
 *    insertion order at all.
 *  - *publish / sync / showUpTo / containsPublished* (attached threads, pool shards): every tier
 *    must be attachable. A SharedArrayBuffer cannot be stored in shared memory, so: a tier
 *    directory in the control block (a generation word, the tables' and runs' identities), the
 *    buffers posted to attached threads when it changes, each thread caching what it attached
 *    and re-reading the directory on `sync()`. `publish()` flushes the hot table and any frozen
 *    table not handed out yet (their slot words must be written before another thread probes);
 *    the published size stays the total count, and `showUpTo` limits the hot table only (older
 *    tiers are wholly published). A table or run that was replaced must not be reused or freed
 *    while a reader may still probe it: recycle a table as the spare only once every reader's
 *    generation has passed its retirement (an epoch per reader), or give up recycling there.
 *  - *Pending writes and the prepare/commit split*: today `prepare` probes and remembers the
 *    slot, `commit` writes. Here `prepare` would probe the hot table, then the frozen tables
 *    and the runs (`insert` shows the order), and check the budget including a freeze's growth
 *    (a pure query); `commit` freezes when the hot table is full and only then probes the new,
 *    empty table for the slot, so a rejected fact never freezes anything. Pending slot writes
 *    stay per hot table; `beginWrite` takes the hot table's live count, as today.
 *  - *Checkpoints and images* (`copyIds`, `idsView`, restore): `idBlocks()` gives views with
 *    no copy, in the order described above; a durable checkpoint should reference run files
 *    rather than copy their ids.
 *  - *reset*: `clear()` keeps two hot tables and drops everything else.
 */
import { CausalHorizonExceededError, InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';
import { prefault } from '../native/shim.js';
import { ExactCausalIndex, MAX_INDEX_CAPACITY } from './exact-index.js';
import { IdFilterHash, type IdFilter } from './id-filter.js';
import { IdHasher, splitmix32 } from './id-hash.js';
import { SortedRun } from './sorted-run.js';

/** Ids per hot table by default: 2^16 (see the module comment for the measurements). */
export const DEFAULT_HOT_CAPACITY = 1 << 16;
/** Runs of one level merged at a time by default. */
export const DEFAULT_MERGE_FACTOR = 4;
/** Largest merge factor: more inputs than this make one merge's heap and one level's lookups long. */
export const MAX_MERGE_FACTOR = 64;

export interface TieredIndexOptions {
  /** Ids per hot table, in [1, 2^27] (default 2^16). Small values freeze often (tests). */
  readonly hotCapacity?: number;
  /** How many runs of one level merge into one, in [2, 64] (default 4). */
  readonly mergeFactor?: number;
  /** Most bytes of memory the index may hold; beyond it, inserts of new ids throw CausalHorizonExceeded. Default: no limit. */
  readonly budgetBytes?: number;
  /** Seed of the hot tables' hash (default: random); the runs' filters derive theirs from it. */
  readonly seed?: number;
  /** Commit the hot tables' pages when they are allocated (default true): no page faults while inserting. */
  readonly prefault?: boolean;
}

/** Bytes held per tier (all figures in bytes, ids in ids). */
export interface TieredMemory {
  /** The hot table's buffer, and the ids in it. */
  readonly hot: { readonly bytes: number; readonly ids: number };
  /** The spare hot table(s) ready for the next freeze. */
  readonly spare: { readonly bytes: number; readonly tables: number };
  /** Frozen tables waiting for their run. */
  readonly frozen: { readonly bytes: number; readonly ids: number; readonly tables: number };
  /**
   * Runs: their images' bytes split into keys (32 per id), filters, fences (8 per 128 ids), and
   * the rest (headers, padding to the ids' 4 KiB page).
   */
  readonly runs: {
    readonly bytes: number;
    readonly ids: number;
    readonly count: number;
    readonly keys: number;
    readonly filters: number;
    readonly fences: number;
    readonly other: number;
  };
  /** Everything above. */
  readonly total: number;
}

/**
 * A frozen table handed out by `freezeReady`: still consulted by lookups until its run is
 * installed. `ids` is what the run is built from.
 */
export class FrozenTable {
  /** Ids in the table. */
  readonly count: number;

  /** @internal */
  constructor(
    /** @internal The table (the index's; not to be written). */
    readonly table: ExactCausalIndex,
    /** Freeze number, from 0: the order tables froze in. */
    readonly sequence: number,
  ) {
    this.count = table.size;
  }

  /** The table's SharedArrayBuffer (to hand a worker; `ExactCausalIndex.attach` reads it, `count` ids published). */
  get buffer(): SharedArrayBuffer {
    return this.table.buffer;
  }

  /** The ids in insertion order, a view of the table's shared key store (valid until the run is installed: the table is then reused). */
  get ids(): Uint8Array {
    return this.table.idsView(this.count);
  }
}

/** Runs to merge into one, as `mergeReady` offers them. */
export interface MergeJob {
  /** The inputs (all distinct ids: a merge of them has `count` ids). */
  readonly runs: readonly SortedRun[];
  /** Ids in all the inputs. */
  readonly count: number;
  /** Their level; the output's is usually one more. */
  readonly level: number;
}

interface RunEntry {
  readonly run: SortedRun;
  /** Recency of its ids: a table's freeze number; a merged run takes its newest input's. */
  readonly age: number;
  readonly level: number;
  merging: boolean;
}

interface Job extends MergeJob {
  readonly entries: readonly RunEntry[];
}

/** Builds a frozen table's run (anywhere: this thread or a worker): sorted ids, fences, filter seeded with `filterSeed`, no checksum. */
export function buildRun(ids: Uint8Array, filterSeed: number): SortedRun {
  return SortedRun.build(ids, { seed: filterSeed, checksum: false });
}

/** Merges a job's runs into one (anywhere), as `compact` does. */
export function mergeRuns(runs: readonly SortedRun[], filterSeed: number): SortedRun {
  return SortedRun.merge(runs, { seed: filterSeed, checksum: false });
}

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

export class TieredExactIndex {
  /** Ids per hot table. */
  readonly hotCapacity: number;
  /** Runs of one level merged at a time. */
  readonly mergeFactor: number;
  /** The memory budget in bytes (Infinity: none). */
  readonly budgetBytes: number;
  /** Seed of every hot table's hash (one hasher serves them all). */
  readonly seed: number;
  /** The first seed every run's filter is built with. */
  readonly filterSeed: number;

  private readonly prefaultTables: boolean;
  private readonly hasher: IdHasher;
  private hot: ExactCausalIndex;
  private spare: ExactCausalIndex | undefined;
  /** Frozen tables, oldest first; lookups walk it from the end. */
  private frozenTables: ExactCausalIndex[] = [];
  /** Their freeze numbers, in the same order. */
  private frozenSequences: number[] = [];
  /** The frozen tables handed out by `freezeReady` and not installed yet, with their handles. */
  private readonly handedOut = new Map<ExactCausalIndex, FrozenTable>();
  /** Newest first. */
  private entries: RunEntry[] = [];
  /** The runs of `entries`, in the same order, and their filters (the lookup loop reads only these). */
  private runs: SortedRun[] = [];
  private filters: IdFilter[] = [];
  /** The id being looked up, hashed for filters seeded with `filterSeed` (nearly all of them). */
  private readonly filterHash: IdFilterHash;
  /** Merge jobs handed out and not installed or abandoned yet. */
  private readonly jobs = new Set<Job>();
  private count = 0;
  private freezes = 0;
  /** Bytes held by every buffer above: compared with the budget on every insert of a new id. */
  private held = 0;
  /** One hot table's buffer length (all have the same). */
  private readonly tableBytes: number;

  constructor(options: TieredIndexOptions = {}) {
    const { hotCapacity = DEFAULT_HOT_CAPACITY, mergeFactor = DEFAULT_MERGE_FACTOR, budgetBytes, seed, prefault: prefaultTables = true } = optionsObject(options);
    if (!Number.isInteger(hotCapacity) || hotCapacity < 1 || hotCapacity > MAX_INDEX_CAPACITY) {
      throw new InvalidArgumentError(`hotCapacity must be an integer in [1, ${MAX_INDEX_CAPACITY}], got ${describeValue(hotCapacity)}`);
    }
    if (!Number.isInteger(mergeFactor) || mergeFactor < 2 || mergeFactor > MAX_MERGE_FACTOR) {
      throw new InvalidArgumentError(`mergeFactor must be an integer in [2, ${MAX_MERGE_FACTOR}], got ${describeValue(mergeFactor)}`);
    }
    if (budgetBytes !== undefined && !(typeof budgetBytes === 'number' && budgetBytes > 0)) {
      throw new InvalidArgumentError(`budgetBytes must be a positive number of bytes, got ${describeValue(budgetBytes)}`);
    }
    if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
      throw new InvalidArgumentError(`seed must be a u32, got ${describeValue(seed)}`);
    }
    if (typeof prefaultTables !== 'boolean') throw new InvalidArgumentError(`prefault must be a boolean, got ${describeValue(prefaultTables)}`);
    this.hotCapacity = hotCapacity;
    this.mergeFactor = mergeFactor;
    this.budgetBytes = budgetBytes ?? Infinity;
    this.seed = seed ?? (randomU32() || 1);
    this.filterSeed = splitmix32(this.seed) >>> 0;
    this.prefaultTables = prefaultTables;
    this.hasher = new IdHasher(this.seed);
    this.filterHash = new IdFilterHash(this.filterSeed);
    this.hot = this.newTable(prefaultTables);
    this.spare = this.newTable(prefaultTables);
    this.tableBytes = this.hot.byteLength;
    this.held = 2 * this.tableBytes;
    if (this.held > this.budgetBytes) {
      throw new InvalidArgumentError(`budgetBytes (${this.budgetBytes}) is below the two hot tables of ${hotCapacity} ids (${this.held} bytes)`);
    }
  }

  private newTable(commit: boolean): ExactCausalIndex {
    const table = new ExactCausalIndex({ capacity: this.hotCapacity, seed: this.seed });
    if (commit) prefault(table.buffer);
    return table;
  }

  /** Ids in the index. */
  get size(): number {
    return this.count;
  }

  /** Frozen tables waiting for their run. */
  get frozenCount(): number {
    return this.frozenTables.length;
  }

  /** Runs consulted by lookups. */
  get runCount(): number {
    return this.runs.length;
  }

  /** Ids per run, newest first (for metrics and tests). */
  runSizes(): number[] {
    return this.runs.map((r) => r.count);
  }

  /** True if the id at `ids[offset..offset + 32)` is in the index. Exact. */
  contains(ids: Uint8Array, offset = 0): boolean {
    checkId(ids, offset);
    const h = this.hasher;
    h.loadAt(ids, offset);
    if (this.hot.probe(h) >= 0) return true;
    const frozen = this.frozenTables;
    for (let i = frozen.length - 1; i >= 0; i--) if (frozen[i]!.probe(h) >= 0) return true;
    return this.inRuns(ids, offset);
  }

  /**
   * True if the id loaded into the hasher (at `ids[offset..]`) is in a run. First every run's
   * filter, with one hash (runs share the filter seed, bar a filter whose construction needed
   * another) and no branch on the answers, so the filters' cache misses overlap; then the runs
   * whose filter let the id pass, newest first, confirm against their ids.
   */
  private inRuns(ids: Uint8Array, offset: number): boolean {
    const filters = this.filters;
    const n = filters.length;
    if (n === 0) return false;
    const fh = this.filterHash;
    fh.loadWords(this.hasher.words);
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

  /**
   * Adds the id at `ids[offset..offset + 32)`; false if it is already in the index, in any tier.
   * Throws CausalHorizonExceededError when `budgetBytes` is set and reached (see the module
   * comment); a refusal or a throw changes nothing. When the hot table is full it is frozen
   * first (O(1)).
   */
  insert(ids: Uint8Array, offset = 0): boolean {
    checkId(ids, offset);
    const h = this.hasher;
    h.loadAt(ids, offset);
    let hot = this.hot;
    let probe = hot.probe(h);
    if (probe >= 0) return false;
    const frozen = this.frozenTables;
    for (let i = frozen.length - 1; i >= 0; i--) if (frozen[i]!.probe(h) >= 0) return false;
    if (this.inRuns(ids, offset)) return false;
    if (hot.size >= this.hotCapacity) {
      const growth = this.spare === undefined ? this.tableBytes : 0;
      if (this.held + growth > this.budgetBytes) this.overBudget(growth);
      this.freeze();
      hot = this.hot;
      probe = hot.probe(h);
    } else if (this.held > this.budgetBytes) {
      this.overBudget(0);
    }
    hot.insertAt(~probe, h);
    this.count++;
    return true;
  }

  private overBudget(growth: number): never {
    const m = this.memoryBytes();
    throw new CausalHorizonExceededError(
      `exact history over its memory budget: ${this.count} ids held in ${m.total} bytes ` +
        `(hot ${m.hot.bytes + m.spare.bytes}, frozen ${m.frozen.bytes} in ${m.frozen.tables} tables, runs ${m.runs.bytes} in ${m.runs.count})` +
        `${growth > 0 ? `, and a freeze needs a new hot table of ${growth} bytes` : ''}; budget ${this.budgetBytes} bytes`,
    );
  }

  /**
   * The hot table becomes frozen and the spare takes over (allocated here only if compaction
   * left none). Nothing else: no allocation, no fence (publishing waits for `freezeReady`).
   */
  private freeze(): void {
    const spare = this.spare;
    this.frozenTables.push(this.hot);
    this.frozenSequences.push(this.freezes++);
    if (spare === undefined) {
      this.hot = this.newTable(false);
      this.held += this.tableBytes;
    } else {
      this.hot = spare;
      this.spare = undefined;
    }
  }

  /**
   * The oldest frozen table not handed out yet, now handed out (build its run, then
   * `installRun`, or `abandon` it); undefined if there is none. The table's pending slot writes
   * are flushed and its ids published (`ExactCausalIndex.attach` in another thread sees them).
   */
  freezeReady(): FrozenTable | undefined {
    const tables = this.frozenTables;
    for (let i = 0; i < tables.length; i++) {
      const table = tables[i]!;
      if (this.handedOut.has(table)) continue;
      table.publish();
      const handle = new FrozenTable(table, this.frozenSequences[i]!);
      this.handedOut.set(table, handle);
      return handle;
    }
    return undefined;
  }

  /**
   * Replaces frozen table `frozen` with `run` (a SortedRun, or the image a worker built) in one
   * step: lookups consult the run from now on, never neither. The run must hold the table's
   * ids (its count is checked; build it with `buildRun`). The table is cleared and kept as the
   * spare if there is none.
   */
  installRun(frozen: FrozenTable, run: SortedRun | Uint8Array | SharedArrayBuffer): void {
    if (!(frozen instanceof FrozenTable) || this.handedOut.get(frozen.table) !== frozen) {
      throw new InvalidArgumentError(`installRun takes a frozen table this index handed out that has no run yet, got ${describeValue(frozen)}`);
    }
    const attached = run instanceof SortedRun ? run : SortedRun.attach(run);
    if (attached.count !== frozen.count) {
      throw new InvalidArgumentError(`the run holds ${attached.count} ids, the frozen table ${frozen.count}: it was not built from this table`);
    }
    const at = this.frozenTables.indexOf(frozen.table);
    this.handedOut.delete(frozen.table);
    this.frozenTables.splice(at, 1);
    this.frozenSequences.splice(at, 1);
    // Runs are ordered by when their ids came (the freeze number), whatever order installs come in.
    this.addEntry({ run: attached, age: frozen.sequence, level: this.levelOf(attached.count), merging: false });
    this.held += attached.byteLength;
    if (this.spare === undefined) {
      frozen.table.clear();
      this.spare = frozen.table;
    } else {
      this.held -= this.tableBytes;
    }
  }

  /**
   * The runs the merge policy says to merge now (see the module comment), marked as being
   * merged; undefined if no level holds `mergeFactor` runs that are not. Merge them with
   * `mergeRuns`, then `installMerge` (or `abandon`).
   */
  mergeReady(): MergeJob | undefined {
    const F = this.mergeFactor;
    let best = -1;
    const counts = new Map<number, number>();
    for (const e of this.entries) {
      if (e.merging) continue;
      const n = (counts.get(e.level) ?? 0) + 1;
      counts.set(e.level, n);
      if (n >= F && (best < 0 || e.level < best)) best = e.level;
    }
    if (best < 0) return undefined;
    // The F oldest of the level: entries are newest first, so take from the end.
    const chosen: RunEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0 && chosen.length < F; i--) {
      const e = this.entries[i]!;
      if (!e.merging && e.level === best) chosen.push(e);
    }
    let total = 0;
    for (const e of chosen) {
      e.merging = true;
      total += e.run.count;
    }
    const job: Job = { runs: chosen.map((e) => e.run), count: total, level: best, entries: chosen };
    this.jobs.add(job);
    return job;
  }

  /**
   * Replaces a merge job's runs with `run` (their merge: a SortedRun or the image a worker
   * built) in one step. Its count must be the job's (the inputs hold distinct ids).
   */
  installMerge(job: MergeJob, run: SortedRun | Uint8Array | SharedArrayBuffer): void {
    const j = job as Job;
    if (!this.jobs.has(j)) {
      throw new InvalidArgumentError(`installMerge takes a merge job of this index that is not installed yet, got ${describeValue(job)}`);
    }
    const attached = run instanceof SortedRun ? run : SortedRun.attach(run);
    if (attached.count !== j.count) {
      throw new InvalidArgumentError(`the merged run holds ${attached.count} ids, its inputs ${j.count}: it is not their merge`);
    }
    this.jobs.delete(j);
    let age = -1;
    for (const e of j.entries) {
      age = Math.max(age, e.age);
      this.held -= e.run.byteLength;
    }
    const gone = new Set(j.entries);
    this.entries = this.entries.filter((e) => !gone.has(e));
    // addEntry below rebuilds the lookup arrays.
    this.addEntry({ run: attached, age, level: this.levelOf(attached.count), merging: false });
    this.held += attached.byteLength;
  }

  /** Gives back a frozen table or merge job that was handed out and will not be installed: it is offered again. */
  abandon(work: FrozenTable | MergeJob): void {
    if (work instanceof FrozenTable) {
      if (this.handedOut.get(work.table) === work) this.handedOut.delete(work.table);
      return;
    }
    const j = work as Job;
    if (!this.jobs.delete(j)) return;
    for (const e of j.entries) e.merging = false;
  }

  /** Inserts `entry` among the runs, newest (highest age) first. */
  private addEntry(entry: RunEntry): void {
    let at = 0;
    while (at < this.entries.length && this.entries[at]!.age > entry.age) at++;
    this.entries.splice(at, 0, entry);
    this.runs = this.entries.map((e) => e.run);
    this.filters = this.runs.map((r) => r.filter);
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

  /**
   * Compaction in the calling thread: builds the run of every frozen table not handed out
   * (oldest first), then performs the merges the policy asks for, until `budget` ids have been
   * read (a step that starts below the budget finishes; default: all there is). Then makes sure
   * a spare hot table is ready. Returns the ids read (0: nothing to do). Call it off the
   * admitting path: a step takes ~0.3 µs per id it reads.
   */
  compact(budget = Infinity): number {
    if (!(typeof budget === 'number' && budget >= 0)) throw new InvalidArgumentError(`compact's budget is a number of ids ≥ 0, got ${describeValue(budget)}`);
    let done = 0;
    while (done < budget) {
      const frozen = this.freezeReady();
      if (frozen !== undefined) {
        this.installRun(frozen, buildRun(frozen.ids, this.filterSeed));
        done += frozen.count;
        continue;
      }
      const job = this.mergeReady();
      if (job === undefined) break;
      this.installMerge(job, mergeRuns(job.runs, this.filterSeed));
      done += job.count;
    }
    this.ensureSpare();
    return done;
  }

  /** Allocates a spare hot table if there is none and the budget allows it (off the admitting path). */
  ensureSpare(): void {
    if (this.spare !== undefined || this.held + this.tableBytes > this.budgetBytes) return;
    this.spare = this.newTable(this.prefaultTables);
    this.held += this.tableBytes;
  }

  /** Bytes held, per tier. */
  memoryBytes(): TieredMemory {
    let frozenBytes = 0;
    let frozenIds = 0;
    for (const t of this.frozenTables) {
      frozenBytes += t.byteLength;
      frozenIds += t.size;
    }
    let bytes = 0;
    let ids = 0;
    let filters = 0;
    let fences = 0;
    for (const r of this.runs) {
      bytes += r.byteLength;
      ids += r.count;
      filters += r.filter.byteLength;
      fences += 8 * Math.ceil(r.count / 128);
    }
    const spareBytes = this.spare === undefined ? 0 : this.spare.byteLength;
    const runs = { bytes, ids, count: this.runs.length, keys: 32 * ids, filters, fences, other: bytes - 32 * ids - filters - fences };
    return {
      hot: { bytes: this.hot.byteLength, ids: this.hot.size },
      spare: { bytes: spareBytes, tables: this.spare === undefined ? 0 : 1 },
      frozen: { bytes: frozenBytes, ids: frozenIds, tables: this.frozenTables.length },
      runs,
      total: this.hot.byteLength + spareBytes + frozenBytes + bytes,
    };
  }

  /**
   * The ids as blocks of 32-byte ids end to end, views with no copy (valid until the next
   * insert, install or clear): runs oldest first (each sorted), then frozen tables oldest first
   * and the hot table (each in insertion order). See the module comment on order.
   */
  *idBlocks(): IterableIterator<Uint8Array> {
    for (let i = this.runs.length - 1; i >= 0; i--) yield this.runs[i]!.keys;
    for (const t of this.frozenTables) yield t.idsView(t.size);
    yield this.hot.idsView(this.hot.size);
  }

  /** Every id (a copy each), in `idBlocks` order: NOT insertion order once runs exist. */
  *ids(): IterableIterator<Uint8Array> {
    for (const block of this.idBlocks()) {
      for (let o = 0; o < block.length; o += 32) yield block.slice(o, o + 32);
    }
  }

  /**
   * Forgets every id: runs and frozen tables are dropped, the hot table cleared (the spare is
   * kept). Work handed out before cannot be installed any more.
   */
  clear(): void {
    this.jobs.clear();
    this.handedOut.clear();
    if (this.spare === undefined && this.frozenTables.length > 0) {
      this.spare = this.frozenTables[0]!;
      this.spare.clear();
    }
    this.frozenTables = [];
    this.frozenSequences = [];
    this.entries = [];
    this.runs = [];
    this.filters = [];
    this.hot.clear();
    this.count = 0;
    this.held = this.tableBytes * (this.spare === undefined ? 1 : 2);
  }
}

function checkId(ids: Uint8Array, offset: number): void {
  if (!(ids instanceof Uint8Array) || !(offset >= 0 && offset + 32 <= ids.length) || offset !== (offset | 0)) {
    throw new InvalidArgumentError(`no 32-byte id at offset ${describeValue(offset)} of ${describeValue(ids)}`);
  }
}
