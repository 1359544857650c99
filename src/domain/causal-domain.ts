/**
 * CausalDomain: one causal domain (a kernel, or one tenant of a TenantKernel) and its admission
 * hot path. Internal; kernels wrap it.
 *
 * Memory: a small control SharedArrayBuffer (header, Bloom clock, frontier, up to 8 state cells —
 * one per invariant — and the published snapshot; `control-block.ts`, docs/FORMATS.md §5) and the
 * exact index's own buffer. This file is the hot path only: the layout, the snapshot seqlock
 * (`snapshot.ts`), images (`image.ts`) and the record log (`record-log.ts`) live beside it.
 *
 * Admission order (nothing is written before step 6, so every rejection leaves the domain
 * exactly as it was):
 *   1. shape of the id, the deps array, every dep and the payload
 *   2. the id: one probe that finds it (DuplicateFact) or yields its insert slot
 *   3. every dep: the recent-admissions cache, else Bloom pre-filter then the exact index
 *   4. capacity
 *   5. the invariant(s): each on a scratch copy of its cell, committed only if all succeed (the
 *      last may run in place when it only writes on success)
 *   6. commit: index insert, clock, recent cache, frontier; then the record log, if any, stages
 *      the fact (it reserved room between steps 4 and 5)
 *
 * Nothing here refers to an id by its key number (its position in the index): the recent cache
 * and the frontier ring hold ids, so the index is free to move ids around.
 *
 * Steps 1–4 are `prepare`, step 6 is `commit`; single-invariant kernels use the fused `tryAdmit`,
 * MultiKernel and DualKernel their own step 5 in between.
 */
import { AdmitCode, InvariantCode } from '../codes.js';
import { MAX_DEPS, MAX_PAYLOAD_BYTES } from '../core/fact.js';
import { STATE_CELL_BYTES, StateCell, stateView, type StateView } from '../core/state-cell.js';
import { CausalClock } from '../causal/causal-clock.js';
import { TieredExactIndex, type SharedTieredMemory, type TieredIndexOptions } from '../causal/tiered-index.js';
import { afterFreeze, type HistoryCompaction } from '../causal/history-compactor.js';
import { IdHasher } from '../causal/id-hash.js';
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import type { Invariant } from '../invariants/invariant.js';
import {
  FRONTIER_BYTES,
  FRONTIER_WIDTH,
  HEAD_WORDS,
  MAX_CELLS,
  OFF_CELLS,
  OFF_CLOCK,
  OFF_FRONTIER,
  OFF_SEQLOCK,
  W_CELLS,
  W_HEAD_COUNT,
  W_HEAD_START,
  W_MODE,
  W_POPCOUNT,
  W_RESETS,
  checkControlBlock,
  checkHeads,
  checkSnapshotSize,
  createControlBlock,
} from './control-block.js';
import { imageOf, writeImageState, type DomainImage } from './image.js';
import type { RecordLog } from './record-log.js';
import { SNAPSHOT_WORDS, publishSnapshot, readSnapshot } from './snapshot.js';

export { FRONTIER_WIDTH, MAX_CELLS } from './control-block.js';
export type { DomainImage } from './image.js';
export type { RecordLog } from './record-log.js';

/** Entries in the per-thread cache of recently admitted ids consulted first for deps; a power of two. */
const RECENT = 8;

/**
 * True if words 1..7 of the id at `words[at..at + 8)` are bytes 4..32 of `id` (little-endian):
 * the confirmation after a first-word match, so a match is always exact.
 */
function restEquals(words: Int32Array, at: number, id: Uint8Array): boolean {
  return (
    words[at + 1] === (id[4]! | (id[5]! << 8) | (id[6]! << 16) | (id[7]! << 24)) &&
    words[at + 2] === (id[8]! | (id[9]! << 8) | (id[10]! << 16) | (id[11]! << 24)) &&
    words[at + 3] === (id[12]! | (id[13]! << 8) | (id[14]! << 16) | (id[15]! << 24)) &&
    words[at + 4] === (id[16]! | (id[17]! << 8) | (id[18]! << 16) | (id[19]! << 24)) &&
    words[at + 5] === (id[20]! | (id[21]! << 8) | (id[22]! << 16) | (id[23]! << 24)) &&
    words[at + 6] === (id[24]! | (id[25]! << 8) | (id[26]! << 16) | (id[27]! << 24)) &&
    words[at + 7] === (id[28]! | (id[29]! << 8) | (id[30]! << 16) | (id[31]! << 24))
  );
}

/** Copies the eight words of an id from `from[src..]` to `to[dst..]`. */
function copyId(to: Int32Array, dst: number, from: Int32Array, src: number): void {
  to[dst] = from[src]!;
  to[dst + 1] = from[src + 1]!;
  to[dst + 2] = from[src + 2]!;
  to[dst + 3] = from[src + 3]!;
  to[dst + 4] = from[src + 4]!;
  to[dst + 5] = from[src + 5]!;
  to[dst + 6] = from[src + 6]!;
  to[dst + 7] = from[src + 7]!;
}

/** Copies of the `n` heads of a frontier ring (slot s at bytes 32·s of `ring`) from slot `start` on, oldest first. */
function headsOf(ring: Uint8Array, start: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const at = 32 * ((start + i) & (FRONTIER_WIDTH - 1));
    out.push(ring.slice(at, at + 32));
  }
  return out;
}

/** The shared memory of one causal domain; hand it to another thread to attach. */
export interface SharedDomainMemory {
  readonly control: SharedArrayBuffer;
  /** The exact history: its tier directory and arenas. */
  readonly history: SharedTieredMemory;
}

/** How a domain keeps its exact history: the tiered index's options and who compacts it. */
export interface HistoryOptions extends TieredIndexOptions {
  /** 'background' (default): a compactor thread; 'inline': the admitting thread, right after a freeze. */
  readonly compaction?: HistoryCompaction;
}

/** The cell an invariant starts from: `cell`, else its `initialState()`, else zeros — checked to be 64 bytes. */
function initialCell(invariant: Invariant, cell: Uint8Array | undefined): Uint8Array {
  const bytes = cell ?? invariant.initialState?.() ?? new Uint8Array(STATE_CELL_BYTES);
  if (!(bytes instanceof Uint8Array) || bytes.length !== STATE_CELL_BYTES) {
    throw new InvalidArgumentError(`a state cell is exactly ${STATE_CELL_BYTES} bytes (initialState() or the given cell)`);
  }
  return bytes;
}

/** A consistent copy of the last published snapshot. */
export interface DomainSnapshot {
  /** One per cell (invariant). */
  cells: StateCell[];
  clock: CausalClock;
  frontier: Uint8Array[];
  size: number;
  popcount: number;
  /** How many times the writer has published; grows by one per `publish()`. */
  publication: number;
}

export class CausalDomain {
  readonly control: SharedArrayBuffer;
  readonly index: TieredExactIndex;
  private readonly compaction: HistoryCompaction;
  readonly clock: CausalClock;
  /** Live views of all MAX_CELLS state cells; the first `cellCount` are in use (each carries its word view). */
  private readonly cellViews: StateView[] = [];
  /** The first cell: the state of single-invariant kernels. */
  readonly state: StateView;
  readonly ctl: Uint32Array;
  private readonly seqlock: Int32Array;
  /** The frontier ring in the control block: FRONTIER_WIDTH ids of HEAD_WORDS words (see advanceFrontier). */
  private readonly ring: Int32Array;
  private readonly invariants: Invariant[] = [];
  private readonly inPlace: boolean[] = [];
  private readonly scratch: StateView[] = [];
  /** The id being admitted and the dep being looked up each have a hasher, so neither clobbers the other. */
  private readonly idHasher: IdHasher;
  private readonly depHasher: IdHasher;
  /** The id being admitted as int32 words (a view of `idHasher.words`), to copy into the cache and ring. */
  private readonly idWords: Int32Array;
  /** Set by `prepare` for `commit`: each dep's first word (bytes 0..4, little-endian), the heads' filter. */
  private readonly depWord = new Int32Array(MAX_DEPS);
  /**
   * The ids of this thread's last RECENT admissions, HEAD_WORDS words each, filled from entry 0
   * and then overwritten oldest first; entries at and past `recentCount` are empty.
   */
  private readonly recent = new Int32Array(RECENT * HEAD_WORDS);
  private recentCount = 0;
  private recentNext = 0;
  /** The control block's reset count when the cache was last emptied (see W_RESETS). */
  private recentResets = 0;
  /** True while an invariant runs: an admission from inside `apply` is refused. */
  private applying = false;
  /** The invariant's code for the last rejection it caused; 0 after a rejection it did not cause. */
  lastInvariantError = 0;
  /** Index in `deps` of the dep behind the last CausalityViolation or MalformedFact; -1 otherwise. */
  lastFailedDep = -1;
  /** Which invariant (cell) refused the last fact an invariant refused; -1 otherwise. */
  lastFailedInvariant = -1;
  /**
   * Asked about a dep this domain never admitted, before it is rejected: true if another domain
   * admitted it and this one accepts that (pool shards that share causality). Null: reject.
   * Consulted on the rejection path only.
   */
  foreignDep: ((dep: Uint8Array) => boolean) | null = null;
  /**
   * Where single-invariant admissions are logged (a durable kernel's WAL arena, perhaps teed with
   * a replication ring); null: not logged. See `RecordLog` for when it is called.
   */
  private recordLog: RecordLog | null = null;
  /** Set by `prepare` for `commit`: the id's dep count (the index remembers where the id goes). */
  private preparedDeps = 0;

  /** A domain with one cell per invariant (at most 8; MultiKernel may start with none and `addInvariant`). */
  constructor(invariants: readonly Invariant[], options: HistoryOptions, shared?: SharedDomainMemory) {
    if (invariants.length > MAX_CELLS) throw new InvalidArgumentError(`at most ${MAX_CELLS} invariants per kernel`);
    const { compaction = 'background', ...indexOptions } = options;
    if (compaction !== 'background' && compaction !== 'inline') throw new InvalidArgumentError(`history compaction is 'background' or 'inline', got ${String(compaction)}`);
    this.compaction = compaction;
    if (shared === undefined) {
      this.index = new TieredExactIndex(indexOptions);
      this.control = createControlBlock(this.index.domainId, invariants.length);
    } else {
      if (shared === null || typeof shared !== 'object') throw new SharedMemoryError('shared memory of a kernel is { control, history }');
      this.index = TieredExactIndex.attach(shared.history);
      this.control = checkControlBlock(shared.control, this.index, invariants.length);
    }
    this.ctl = new Uint32Array(this.control);
    this.seqlock = new Int32Array(this.control, OFF_SEQLOCK, 1);
    for (let i = 0; i < MAX_CELLS; i++) {
      this.cellViews.push(stateView(this.control, OFF_CELLS + i * STATE_CELL_BYTES));
      this.scratch.push(stateView(new ArrayBuffer(STATE_CELL_BYTES), 0));
    }
    this.state = this.cellViews[0]!;
    for (const invariant of invariants) this.pushInvariant(invariant);
    this.clock = new CausalClock(this.control, OFF_CLOCK);
    this.ring = new Int32Array(this.control, OFF_FRONTIER, FRONTIER_BYTES / 4);
    this.idHasher = new IdHasher(this.index.seed);
    this.depHasher = new IdHasher(this.index.seed);
    this.idWords = new Int32Array(this.idHasher.words.buffer, this.idHasher.words.byteOffset, HEAD_WORDS);
    this.recentResets = this.ctl[W_RESETS]!;
    if (shared === undefined) this.publish();
    else this.sync();
  }

  private pushInvariant(invariant: Invariant): void {
    this.invariants.push(invariant);
    this.inPlace.push(invariant.mutatesOnlyOnSuccess === true);
  }

  /** Number of state cells (invariants). */
  get cellCount(): number {
    return this.invariants.length;
  }

  /** Live view of cell `i`. */
  cell(i: number): StateView {
    if (!Number.isInteger(i) || i < 0 || i >= this.invariants.length) {
      throw new InvalidArgumentError(`cell ${String(i)} is not in [0, ${this.invariants.length})`);
    }
    return this.cellViews[i]!;
  }

  /** Adds an invariant and its cell (MultiKernel registration: only while no fact was admitted). */
  addInvariant(invariant: Invariant, cell: Uint8Array | undefined): number {
    this.notFromApply();
    if (this.invariants.length >= MAX_CELLS) throw new InvalidArgumentError(`at most ${MAX_CELLS} invariants per kernel`);
    if (this.index.size > 0) {
      throw new InvalidArgumentError('invariants are registered before the first fact is admitted');
    }
    // Everything that can fail happens before anything changes.
    const initial = initialCell(invariant, cell);
    const i = this.invariants.length;
    this.pushInvariant(invariant);
    this.ctl[W_CELLS] = this.invariants.length;
    this.cellViews[i]!.set(initial);
    this.publish();
    return i;
  }

  get shared(): SharedDomainMemory {
    return { control: this.control, history: this.index.memory };
  }

  get popcount(): number {
    return this.ctl[W_POPCOUNT]!;
  }

  /** Escalation mode (0 Fast: Bloom pre-filter on; 1 Precise: off), shared by every attached thread. */
  get mode(): number {
    return this.ctl[W_MODE]!;
  }

  set mode(value: number) {
    this.ctl[W_MODE] = value;
  }

  /**
   * Admits one fact into a single-invariant domain; returns an AdmitCode. With a record log, room
   * is reserved after the checks and before the invariant, and the fact staged after the commit.
   * Allocates nothing.
   */
  tryAdmit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
    const shape = this.checkPayload(payload);
    if (shape !== 0) return shape;
    const code = this.prepare(id, deps);
    if (code !== 0) return code;
    const log = this.recordLog;
    if (log !== null) {
      const room = log.reserve(deps.length, payload.length);
      if (room !== 0) return this.rejectShape(-1, room);
    }
    const applied = this.applyOne(payload);
    if (applied !== 0) return this.rejectInvariant(applied, 0);
    this.commit(deps);
    if (log !== null) log.stage(this.idHasher.words, deps, payload);
    return AdmitCode.Ok;
  }

  /** The record log single-invariant admissions go through (null: none). */
  get log(): RecordLog | null {
    return this.recordLog;
  }

  /** Sets the record log; only a single-invariant domain logs (a record carries one payload). */
  set log(log: RecordLog | null) {
    if (log !== null && this.invariants.length !== 1) throw new InvalidArgumentError('only a single-invariant kernel can log its admissions');
    this.recordLog = log;
  }

  /** Admits one fact into a two-invariant domain: both payloads apply, or neither. */
  tryAdmitDual(id: Uint8Array, deps: readonly Uint8Array[], first: Uint8Array, second: Uint8Array): number {
    const shape = this.checkPayload(first) || this.checkPayload(second);
    if (shape !== 0) return shape;
    const code = this.prepare(id, deps);
    if (code !== 0) return code;
    this.applying = true;
    try {
      const a = this.applyToScratch(0, first);
      if (a !== 0) return this.rejectInvariant(a, 0);
      const b = this.applyLast(1, second);
      if (b !== 0) return this.rejectInvariant(b, 1);
    } finally {
      this.applying = false;
    }
    this.cellViews[0]!.set(this.scratch[0]!);
    this.commit(deps);
    return AdmitCode.Ok;
  }

  /** Admits one fact into a multi-invariant domain: one payload per invariant, all or nothing. */
  tryAdmitMulti(id: Uint8Array, deps: readonly Uint8Array[], payloads: readonly Uint8Array[]): number {
    const n = this.invariants.length;
    if (!Array.isArray(payloads) || payloads.length !== n || n === 0) return this.rejectShape(-1);
    for (let i = 0; i < n; i++) {
      const shape = this.checkPayload(payloads[i]!);
      if (shape !== 0) return shape;
    }
    const code = this.prepare(id, deps);
    if (code !== 0) return code;
    this.applying = true;
    try {
      for (let i = 0; i < n - 1; i++) {
        const c = this.applyToScratch(i, payloads[i]!);
        if (c !== 0) return this.rejectInvariant(c, i);
      }
      const last = this.applyLast(n - 1, payloads[n - 1]!);
      if (last !== 0) return this.rejectInvariant(last, n - 1);
    } finally {
      this.applying = false;
    }
    for (let i = 0; i < n - 1; i++) this.cellViews[i]!.set(this.scratch[i]!);
    this.commit(deps);
    return AdmitCode.Ok;
  }

  private checkPayload(payload: Uint8Array): number {
    if (!(payload instanceof Uint8Array)) return this.rejectShape(-1);
    if (payload.length > MAX_PAYLOAD_BYTES) return this.rejectShape(-1, AdmitCode.PayloadTooLarge);
    return 0;
  }

  /**
   * Steps 1–4: shape of id and deps, duplicate, deps, capacity. Returns 0 (and remembers the
   * insert slot for `commit`) or a rejection code. Writes nothing.
   */
  private prepare(id: Uint8Array, deps: readonly Uint8Array[]): number {
    if (!(id instanceof Uint8Array) || id.length !== 32 || !Array.isArray(deps)) return this.rejectShape(-1);
    this.notFromApply();
    const nDeps = deps.length;
    if (nDeps > MAX_DEPS) return this.rejectShape(-1);
    for (let d = 0; d < nDeps; d++) {
      const dep = deps[d];
      if (!(dep instanceof Uint8Array) || dep.length !== 32) return this.rejectShape(d);
    }

    const index = this.index;
    index.beginWrite();
    const idHasher = this.idHasher;
    idHasher.load(id);
    if (index.findForInsert(idHasher, id, 0)) return this.rejectShape(-1, AdmitCode.DuplicateFact);

    // Another thread's reset (a writer that took over, then reset) may have dropped ids this
    // thread's cache still holds.
    const resets = this.ctl[W_RESETS]!;
    if (resets !== this.recentResets) this.forgetRecent(resets);
    const bloomFilter = this.ctl[W_MODE] === 0;
    for (let d = 0; d < nDeps; d++) {
      const dep = deps[d]!;
      const word = dep[0]! | (dep[1]! << 8) | (dep[2]! << 16) | (dep[3]! << 24);
      this.depWord[d] = word;
      if (this.isRecent(dep, word)) continue;
      const depHasher = this.depHasher;
      depHasher.load(dep);
      // Bloom: a clear bit proves the dep was never admitted; a set bit proves nothing.
      if ((bloomFilter && !this.clock.hasHash(depHasher.bloomHash)) || !index.find(depHasher, dep, 0)) {
        // A dep another domain admitted (a pool shard that shares causality) is satisfied. It is
        // no head here, and needs no mark: never admitted here, it equals no id in the ring.
        if (this.foreignDep === null || !this.foreignDep(dep)) return this.rejectDep(d);
      }
    }
    if (!index.roomForOne()) return this.rejectShape(-1, AdmitCode.CausalHorizonExceeded);
    this.preparedDeps = nDeps;
    return 0;
  }

  /** Step 6, after a successful `prepare` (of these `deps`) and invariant step. */
  private commit(deps: readonly Uint8Array[]): void {
    const idHasher = this.idHasher;
    // A freeze (one admission in 2^16) hands the frozen table to compaction.
    if (this.index.insertPrepared(idHasher)) afterFreeze(this.index, this.compaction);
    const added = this.clock.observeHash(idHasher.bloomHash);
    if (added !== 0) this.ctl[W_POPCOUNT] = this.ctl[W_POPCOUNT]! + added;
    copyId(this.recent, this.recentNext * HEAD_WORDS, this.idWords, 0);
    this.recentNext = (this.recentNext + 1) & (RECENT - 1);
    if (this.recentCount < RECENT) this.recentCount++;
    this.advanceFrontier(deps, this.preparedDeps);
  }

  /** A rejection no invariant caused (shape, duplicate, horizon): records why. */
  private rejectShape(dep: number, code: number = AdmitCode.MalformedFact): number {
    this.lastInvariantError = 0;
    this.lastFailedDep = dep;
    this.lastFailedInvariant = -1;
    return code;
  }

  private rejectDep(dep: number): number {
    this.lastInvariantError = 0;
    this.lastFailedDep = dep;
    this.lastFailedInvariant = -1;
    return AdmitCode.CausalityViolation;
  }

  /**
   * Only reads (contains, frontier, …) are allowed from inside an invariant's `apply`: an admission,
   * reset, registration, publish or sync there would change the domain under the admission in
   * progress. Throws, which the admission turns into a `Threw` rejection.
   */
  private notFromApply(): void {
    if (this.applying) throw new InvalidArgumentError('an invariant must not admit, reset, register, publish or sync from inside apply()');
  }

  private rejectInvariant(returned: number, invariant: number): number {
    // Anything but an integer code 1..254 (undefined, NaN, 2.5, 300) counts as a broken invariant.
    const code = Number.isInteger(returned) && returned > 0 && returned < InvariantCode.Threw ? returned : InvariantCode.Threw;
    this.lastInvariantError = code;
    this.lastFailedDep = -1;
    this.lastFailedInvariant = invariant;
    return code === InvariantCode.MalformedPayload ? AdmitCode.MalformedFact : AdmitCode.InvariantViolation;
  }

  /**
   * The single-invariant step: in place when the invariant only writes on success, else on a
   * scratch copy. A throw counts as a rejection (code `Threw`); in scratch mode the state is then
   * untouched, while an invariant that declares `mutatesOnlyOnSuccess` and throws after writing
   * has broken its contract.
   */
  private applyOne(payload: Uint8Array): number {
    this.applying = true;
    try {
      return this.applyLast(0, payload);
    } finally {
      this.applying = false;
    }
  }

  /** Applies invariant `i` to a scratch copy of its cell; the caller commits the copy. */
  private applyToScratch(i: number, payload: Uint8Array): number {
    const scratch = this.scratch[i]!;
    scratch.set(this.cellViews[i]!);
    try {
      return this.invariants[i]!.apply(payload, scratch);
    } catch {
      return InvariantCode.Threw;
    }
  }

  /** Applies the last invariant of an admission and commits its cell: nothing after it can fail. */
  private applyLast(i: number, payload: Uint8Array): number {
    const cell = this.cellViews[i]!;
    if (this.inPlace[i]) {
      try {
        return this.invariants[i]!.apply(payload, cell);
      } catch {
        return InvariantCode.Threw;
      }
    }
    const code = this.applyToScratch(i, payload);
    if (code === 0) cell.set(this.scratch[i]!);
    return code;
  }

  /**
   * True if `id` (whose first word is `word`) is one of this thread's last RECENT admissions (else
   * the caller asks the index). A chain's dep is usually the previous fact, so this skips hashing
   * the dep and a random table read; the first-word filter is confirmed by a full 32-byte compare,
   * so exactness never depends on the cache.
   */
  private isRecent(id: Uint8Array, word: number): boolean {
    const recent = this.recent;
    const n = this.recentCount;
    for (let r = 0; r < n; r++) {
      const at = r * HEAD_WORDS;
      if (recent[at] === word && restEquals(recent, at, id)) return true;
    }
    return false;
  }

  /** Empties the recent cache (a reset or restore, here or in another thread, at reset count `resets`). */
  private forgetRecent(resets: number): void {
    this.recentCount = 0;
    this.recentNext = 0;
    this.recentResets = resets;
  }

  /**
   * The new fact becomes a head and its deps stop being heads; when all FRONTIER_WIDTH heads are
   * taken the oldest falls off. A head is compared with each dep by first word (from `prepare`),
   * confirmed by a full compare. Survivors close up over the removed heads, oldest first, from the
   * ring's start; so a root fact costs one id copy, and a chain's fact (its one dep the one head)
   * one id copy too.
   */
  private advanceFrontier(deps: readonly Uint8Array[], nDeps: number): void {
    const ring = this.ring;
    const ctl = this.ctl;
    const start = ctl[W_HEAD_START]!;
    let n = ctl[W_HEAD_COUNT]!;
    if (nDeps > 0 && n > 0) {
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const at = ((start + i) & (FRONTIER_WIDTH - 1)) * HEAD_WORDS;
        const first = ring[at];
        let isDep = false;
        for (let d = 0; d < nDeps; d++) {
          if (this.depWord[d] === first && restEquals(ring, at, deps[d]!)) {
            isDep = true;
            break;
          }
        }
        if (isDep) continue;
        if (kept !== i) copyId(ring, ((start + kept) & (FRONTIER_WIDTH - 1)) * HEAD_WORDS, ring, at);
        kept++;
      }
      n = kept;
    }
    if (n === FRONTIER_WIDTH) {
      copyId(ring, start * HEAD_WORDS, this.idWords, 0);
      ctl[W_HEAD_START] = (start + 1) & (FRONTIER_WIDTH - 1);
    } else {
      copyId(ring, ((start + n) & (FRONTIER_WIDTH - 1)) * HEAD_WORDS, this.idWords, 0);
      ctl[W_HEAD_COUNT] = n + 1;
    }
  }

  /**
   * Ids of the frontier's heads, oldest first, copied from the live ring. For the writer (or
   * whoever holds its lock): an attached reader sees the writer's live ring, which may name facts
   * it cannot see yet, or be mid-write; `sync()` is its consistent read.
   */
  frontier(): Uint8Array[] {
    return headsOf(new Uint8Array(this.control, OFF_FRONTIER, FRONTIER_BYTES), this.ctl[W_HEAD_START]!, this.ctl[W_HEAD_COUNT]!);
  }

  contains(id: Uint8Array): boolean {
    return this.index.contains(id);
  }

  /** Sets cell `i` (default the first) on a domain with no facts, and publishes it. */
  setInitialState(cell: Uint8Array, i = 0): void {
    this.notFromApply();
    this.cell(i).set(cell);
    this.publish();
  }

  /**
   * Forgets every fact and sets each cell to `cells[i]` — or, where none is given, to its
   * invariant's `initialState()`, else zeros — reusing the memory; publishes.
   */
  reset(cells: readonly (Uint8Array | undefined)[]): void {
    this.notFromApply();
    // Everything that can fail happens before anything changes.
    const initial = this.invariants.map((invariant, i) => initialCell(invariant, cells[i]));
    this.index.clear();
    this.clock.clear();
    this.ctl[W_POPCOUNT] = 0;
    this.ctl[W_HEAD_COUNT] = 0;
    this.ctl[W_HEAD_START] = 0;
    // The unused ring slots too: digests and checkpoints hash the whole ring, so a reset kernel
    // must hold exactly the bytes of a fresh one.
    this.ring.fill(0);
    this.ctl[W_MODE] = 0;
    const resets = (this.ctl[W_RESETS]! + 1) >>> 0;
    this.ctl[W_RESETS] = resets;
    this.forgetRecent(resets);
    for (let i = 0; i < initial.length; i++) this.cellViews[i]!.set(initial[i]!);
    this.lastInvariantError = 0;
    this.lastFailedDep = -1;
    this.lastFailedInvariant = -1;
    this.publish();
  }

  /**
   * @internal A copy of the domain's history (writer only): its ids in memcmp order (the
   * canonical order of the set: two domains that admitted the same facts give the same bytes,
   * however their tiers stand), or none if `withIds` is false (the cells alone).
   */
  exportImage(withIds = true): DomainImage {
    return imageOf(this.control, this.invariants.length, withIds ? this.index.sortedIds() : new Uint8Array(0));
  }

  /**
   * True if `id` is among the facts this domain's writer has published (readable from any thread
   * at any time: published ids never move). Makes the published ids visible to this instance.
   */
  containsPublished(id: Uint8Array): boolean {
    return this.index.containsPublished(id);
  }

  /**
   * @internal Replaces everything with `image` (checked by the caller: cell count, id count within
   * capacity, no duplicate ids, the frontier's heads among the ids) and publishes. Writer only.
   * The frontier ring is copied as it is: it holds ids, so it does not depend on where the index
   * puts them.
   */
  restoreImage(image: DomainImage): void {
    this.reset([]);
    const count = image.ids.length / 32;
    for (let k = 0; k < count; k++) {
      if (!this.index.insert(image.ids.subarray(32 * k, 32 * k + 32))) {
        throw new InvalidArgumentError(`id ${k} of the image is a duplicate`);
      }
    }
    writeImageState(this.control, image);
    this.publish();
  }

  /**
   * Publishes a snapshot of everything admitted so far (cells, clock, frontier, size) for threads
   * that call `sync()`: buffered index writes are flushed first, then the snapshot is copied under
   * a seqlock with atomic stores (20, plus 8 per head and 16 per cell: per batch or on demand,
   * never per fact).
   */
  publish(): number {
    this.notFromApply();
    const size = this.index.publish();
    publishSnapshot(this.ctl, this.seqlock, size, this.invariants.length);
    return size;
  }

  /**
   * Reads the last published snapshot consistently — spinning briefly, then sleeping in
   * `Atomics.wait`, while a publish is in progress — and makes exactly the facts it covers visible
   * to this instance's lookups (an admission through this instance sees everything again).
   */
  sync(): DomainSnapshot {
    this.notFromApply();
    const { words, sequence } = readSnapshot(this.ctl, this.seqlock, this.invariants.length);
    const size = words[SNAPSHOT_WORDS.size]!;
    const headStart = words[SNAPSHOT_WORDS.headStart]!;
    const headCount = words[SNAPSHOT_WORDS.headCount]!;
    // Counts a loop runs to, read from memory another thread writes: checked, never trusted.
    checkHeads(headStart, headCount, 'published');
    checkSnapshotSize(size, this.index);
    this.index.showUpTo(size);
    const cells: StateCell[] = [];
    for (let i = 0; i < this.invariants.length; i++) {
      const cell = new StateCell();
      const at = SNAPSHOT_WORDS.cells + (STATE_CELL_BYTES / 4) * i;
      new Uint32Array(cell.bytes.buffer).set(words.subarray(at, at + STATE_CELL_BYTES / 4));
      cells.push(cell);
    }
    const clock = new CausalClock();
    clock.words.set(words.subarray(0, SNAPSHOT_WORDS.frontier));
    return {
      cells,
      clock,
      frontier: headsOf(new Uint8Array(words.buffer, words.byteOffset + 4 * SNAPSHOT_WORDS.frontier, FRONTIER_BYTES), headStart, headCount),
      size,
      popcount: words[SNAPSHOT_WORDS.popcount]!,
      publication: sequence >>> 1,
    };
  }
}
