/**
 * CausalDomain: one causal domain (a kernel, or one tenant of a TenantKernel) and its admission
 * hot path. Internal; kernels wrap it.
 *
 * Memory: a small control SharedArrayBuffer (header, state cell, Bloom clock, frontier, and the
 * published snapshot) and the exact index's own buffer. Layout in docs/FORMATS.md §5.
 *
 * Admission order (nothing is written before step 6, so every rejection leaves the domain
 * exactly as it was):
 *   1. shape of the id, the deps array, every dep and the payload
 *   2. the id: one probe that finds it (DuplicateFact) or yields its insert slot
 *   3. every dep: the recent-admissions cache, else Bloom pre-filter then the exact index
 *   4. capacity
 *   5. the invariant, in place or on a scratch copy
 *   6. commit: index insert, clock, recent cache, frontier
 */
import { AdmitCode, InvariantCode } from '../core/codes.js';
import { MAX_DEPS, MAX_PAYLOAD_BYTES } from '../core/fact.js';
import { STATE_CELL_BYTES, StateCell, stateView, type StateView } from '../core/state-cell.js';
import { CausalClock } from '../causal/causal-clock.js';
import { ExactCausalIndex, type ExactIndexOptions } from '../causal/exact-index.js';
import { IdHasher } from '../causal/id-hash.js';
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import type { Invariant } from '../invariants/invariant.js';

/** "CTKD" little-endian: marks a buffer as a kernel domain's control block. */
const MAGIC = 0x444b5443;
const LAYOUT_VERSION = 2;
/**
 * Control block, in bytes. The live state, written on every admission: header line, counters
 * line, state cell, clock, frontier ring. Then, 128 bytes past the frontier, the published
 * snapshot: a seqlock word on its own line and a copy of state, clock, frontier and counters,
 * written only by `publish()`.
 */
const OFF_HEADER = 0;
const OFF_COUNTERS = 64;
const OFF_STATE = 128;
const OFF_CLOCK = 192;
const OFF_FRONTIER = 256;
const OFF_SEQLOCK = 384;
const OFF_SNAPSHOT = 448;
const CONTROL_BYTES = 640;
/** Header words: magic, version, and the id of the exact index this block belongs to. */
const W_DOMAIN_ID = 2;
/** Counter words (u32 index into the control block). */
const W_POPCOUNT = OFF_COUNTERS / 4;
const W_HEAD_COUNT = OFF_COUNTERS / 4 + 1;
const W_MODE = OFF_COUNTERS / 4 + 2;
const W_HEAD_START = OFF_COUNTERS / 4 + 3;
/** The snapshot: state (16 words), clock (16), frontier (8), start, count, popcount, size. */
const W_SNAP = OFF_SNAPSHOT / 4;
const SNAP_WORDS = 44;
/** A reader spins this many times on a snapshot being written, then sleeps in `Atomics.wait`. */
const SNAPSHOT_SPINS = 64;
/** A reader gives up on a snapshot that stays mid-write this long: the writer died mid-publish. */
const SNAPSHOT_DEADLINE_MS = 2_000;

/** The frontier keeps at most this many heads (the most recent facts nothing depends on); a power of two. */
export const FRONTIER_WIDTH = 8;
/** Entries in the per-thread cache of recently admitted ids consulted first for deps. */
const RECENT = 8;

/** The shared memory of one causal domain; hand it to another thread to attach. */
export interface SharedDomainMemory {
  readonly control: SharedArrayBuffer;
  readonly index: SharedArrayBuffer;
}

/** A consistent copy of the last published snapshot. */
export interface DomainSnapshot {
  state: StateCell;
  clock: CausalClock;
  frontier: Uint8Array[];
  size: number;
  popcount: number;
  /** How many times the writer has published; grows by one per `publish()`. */
  publication: number;
}

export class CausalDomain {
  readonly control: SharedArrayBuffer;
  readonly index: ExactCausalIndex;
  readonly clock: CausalClock;
  /** Live view of the state cell (carries its word view for invariants). */
  readonly state: StateView;
  readonly ctl: Uint32Array;
  private readonly seqlock: Int32Array;
  /** Key numbers of the frontier's heads: a ring (see advanceFrontier). */
  private readonly heads: Uint32Array;
  private readonly invariant: Invariant;
  private readonly inPlace: boolean;
  private readonly scratch: StateView;
  /** The id being admitted and the dep being looked up each have a hasher, so neither clobbers the other. */
  private readonly idHasher: IdHasher;
  private readonly depHasher: IdHasher;
  private readonly depKeys = new Int32Array(MAX_DEPS);
  private readonly survivors = new Uint32Array(FRONTIER_WIDTH);
  /** First word (bytes 0..4, little-endian) of each recent admission's id: the cache's filter. */
  private readonly recentWord = new Int32Array(RECENT);
  private readonly recentKey = new Int32Array(RECENT).fill(-1);
  private recentNext = 0;
  /** True while the invariant runs: an admission from inside `apply` is refused. */
  private applying = false;
  /** The invariant's code for the last rejection it caused; 0 after a rejection it did not cause. */
  lastInvariantError = 0;
  /** Index in `deps` of the dep behind the last CausalityViolation or MalformedFact; -1 otherwise. */
  lastFailedDep = -1;

  constructor(invariant: Invariant, options: ExactIndexOptions, shared?: SharedDomainMemory) {
    this.invariant = invariant;
    this.inPlace = invariant.mutatesOnlyOnSuccess === true;
    if (shared === undefined) {
      this.index = new ExactCausalIndex(options);
      this.control = new SharedArrayBuffer(CONTROL_BYTES);
      const header = new Uint32Array(this.control, OFF_HEADER, 3);
      header[0] = MAGIC;
      header[1] = LAYOUT_VERSION;
      header[W_DOMAIN_ID] = this.index.domainId;
    } else {
      const control = shared.control;
      if (!(control instanceof SharedArrayBuffer) || control.byteLength !== CONTROL_BYTES) {
        throw new SharedMemoryError(`kernel control block must be a SharedArrayBuffer of ${CONTROL_BYTES} bytes`);
      }
      const header = new Uint32Array(control, OFF_HEADER, 3);
      if (header[0] !== MAGIC || header[1] !== LAYOUT_VERSION) {
        throw new SharedMemoryError(`buffer does not hold a kernel control block of layout version ${LAYOUT_VERSION}`);
      }
      this.index = ExactCausalIndex.attach(shared.index);
      if (header[W_DOMAIN_ID] !== this.index.domainId) {
        throw new SharedMemoryError('the control block and the exact index belong to different kernels');
      }
      this.control = control;
    }
    this.ctl = new Uint32Array(this.control);
    this.seqlock = new Int32Array(this.control, OFF_SEQLOCK, 1);
    this.state = stateView(this.control, OFF_STATE);
    this.scratch = stateView(new ArrayBuffer(STATE_CELL_BYTES), 0);
    this.clock = new CausalClock(this.control, OFF_CLOCK);
    this.heads = new Uint32Array(this.control, OFF_FRONTIER, FRONTIER_WIDTH);
    this.idHasher = new IdHasher(this.index.seed);
    this.depHasher = new IdHasher(this.index.seed);
    if (shared === undefined) this.publish();
    else this.sync();
  }

  get shared(): SharedDomainMemory {
    return { control: this.control, index: this.index.buffer };
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

  /** Admits one fact; returns an AdmitCode. Allocates nothing. */
  tryAdmit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
    if (!(id instanceof Uint8Array) || id.length !== 32 || !Array.isArray(deps) || !(payload instanceof Uint8Array)) {
      return this.rejectShape(-1);
    }
    if (this.applying) throw new InvalidArgumentError('an invariant must not admit facts from inside apply()');
    if (payload.length > MAX_PAYLOAD_BYTES) return this.rejectShape(-1, AdmitCode.PayloadTooLarge);
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
    const probe = index.probe(idHasher);
    if (probe >= 0) return this.rejectShape(-1, AdmitCode.DuplicateFact);

    const bloomFilter = this.ctl[W_MODE] === 0;
    for (let d = 0; d < nDeps; d++) {
      const dep = deps[d]!;
      let k = this.findRecent(dep);
      if (k < 0) {
        const depHasher = this.depHasher;
        depHasher.load(dep);
        // Bloom: a clear bit proves the dep was never admitted; a set bit proves nothing.
        if (bloomFilter && !this.clock.hasHash(depHasher.bloomHash)) return this.rejectDep(d);
        k = index.find(depHasher);
        if (k < 0) return this.rejectDep(d);
      }
      this.depKeys[d] = k;
    }
    if (index.size >= index.capacity) return this.rejectShape(-1, AdmitCode.CausalHorizonExceeded);

    const code = this.applyInvariant(payload);
    if (code !== 0) {
      this.lastInvariantError = code;
      this.lastFailedDep = -1;
      return code === InvariantCode.MalformedPayload ? AdmitCode.MalformedFact : AdmitCode.InvariantViolation;
    }

    const key = index.insertAt(~probe, idHasher);
    const added = this.clock.observeHash(idHasher.bloomHash);
    if (added !== 0) this.ctl[W_POPCOUNT] = this.ctl[W_POPCOUNT]! + added;
    this.recentWord[this.recentNext] = idHasher.words[0]! | 0;
    this.recentKey[this.recentNext] = key;
    this.recentNext = (this.recentNext + 1) & (RECENT - 1);
    this.advanceFrontier(key, nDeps);
    return AdmitCode.Ok;
  }

  /** A rejection the invariant did not cause (shape, duplicate, horizon): records why. */
  private rejectShape(dep: number, code: number = AdmitCode.MalformedFact): number {
    this.lastInvariantError = 0;
    this.lastFailedDep = dep;
    return code;
  }

  private rejectDep(dep: number): number {
    this.lastInvariantError = 0;
    this.lastFailedDep = dep;
    return AdmitCode.CausalityViolation;
  }

  /**
   * Runs the invariant; a throw counts as a rejection (code `Threw`). In scratch mode the state is
   * then untouched; an invariant that declares `mutatesOnlyOnSuccess` and throws after writing
   * has broken its contract.
   */
  private applyInvariant(payload: Uint8Array): number {
    this.applying = true;
    try {
      if (this.inPlace) return this.invariant.apply(payload, this.state);
      const scratch = this.scratch;
      scratch.set(this.state);
      const code = this.invariant.apply(payload, scratch);
      if (code === 0) this.state.set(scratch);
      return code;
    } catch {
      return InvariantCode.Threw;
    } finally {
      this.applying = false;
    }
  }

  /**
   * Key number of `id` if it is one of the last RECENT admissions, else -1 (the caller then asks
   * the index). A chain's dep is usually the previous fact, so this skips hashing the dep and a
   * random table read; the first-word filter is confirmed by a full 32-byte compare, so exactness
   * never depends on the cache.
   */
  private findRecent(id: Uint8Array): number {
    const word = id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24);
    const size = this.index.size;
    for (let r = 0; r < RECENT; r++) {
      if (this.recentWord[r] !== word) continue;
      const k = this.recentKey[r]!;
      if (k >= 0 && k < size && this.index.keyEquals(k, id)) return k;
    }
    return -1;
  }

  /**
   * The new fact becomes a head and its deps stop being heads; when all FRONTIER_WIDTH heads are
   * taken the oldest falls off. Heads are a ring of key numbers, so a root fact costs one store.
   */
  private advanceFrontier(key: number, nDeps: number): void {
    const heads = this.heads;
    const ctl = this.ctl;
    let start = ctl[W_HEAD_START]!;
    let n = ctl[W_HEAD_COUNT]!;
    if (nDeps > 0 && n > 0) {
      // Rewrite the surviving heads in order at the front of the ring.
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const h = heads[(start + i) & (FRONTIER_WIDTH - 1)]!;
        let isDep = false;
        for (let d = 0; d < nDeps; d++) {
          if (this.depKeys[d] === h) {
            isDep = true;
            break;
          }
        }
        if (!isDep) this.survivors[kept++] = h;
      }
      for (let i = 0; i < kept; i++) heads[i] = this.survivors[i]!;
      start = 0;
      n = kept;
    }
    if (n === FRONTIER_WIDTH) {
      heads[start] = key;
      ctl[W_HEAD_START] = (start + 1) & (FRONTIER_WIDTH - 1);
    } else {
      heads[(start + n) & (FRONTIER_WIDTH - 1)] = key;
      ctl[W_HEAD_START] = start;
      ctl[W_HEAD_COUNT] = n + 1;
    }
  }

  /**
   * Ids of the frontier's heads, oldest first. A head whose fact this instance cannot see yet (an
   * attached reader, with the writer ahead of its last publish) is left out rather than read.
   */
  frontier(): Uint8Array[] {
    return this.idsOfHeads(this.heads, this.ctl[W_HEAD_START]!, this.ctl[W_HEAD_COUNT]!);
  }

  private idsOfHeads(heads: ArrayLike<number>, start: number, n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const visible = this.index.size;
    for (let i = 0; i < n; i++) {
      const k = heads[(start + i) & (FRONTIER_WIDTH - 1)]!;
      if (k < visible) out.push(this.index.idAt(k));
    }
    return out;
  }

  contains(id: Uint8Array): boolean {
    return this.index.contains(id);
  }

  /** Sets the state cell to `cell` on a domain with no facts, and publishes it. */
  setInitialState(cell: Uint8Array): void {
    this.state.set(cell);
    this.publish();
  }

  /** Forgets every fact and sets the state to `cell` (default zeros), reusing the memory; publishes. */
  reset(cell: Uint8Array | undefined): void {
    this.index.clear();
    this.clock.clear();
    this.ctl[W_POPCOUNT] = 0;
    this.ctl[W_HEAD_COUNT] = 0;
    this.ctl[W_HEAD_START] = 0;
    this.ctl[W_MODE] = 0;
    this.recentKey.fill(-1);
    if (cell === undefined) this.state.fill(0);
    else this.state.set(cell);
    this.lastInvariantError = 0;
    this.lastFailedDep = -1;
    this.publish();
  }

  /**
   * Publishes a snapshot of everything admitted so far (state, clock, frontier, size) for threads
   * that call `sync()`: buffered index writes are flushed first, then the snapshot is copied under
   * a seqlock with atomic stores (~50 of them: per batch or on demand, never per fact).
   */
  publish(): number {
    const c = this.ctl;
    const size = this.index.publish();
    Atomics.add(this.seqlock, 0, 1); // odd: snapshot being written
    for (let i = 0; i < 16; i++) Atomics.store(c, W_SNAP + i, c[OFF_STATE / 4 + i]!);
    for (let i = 0; i < 16; i++) Atomics.store(c, W_SNAP + 16 + i, c[OFF_CLOCK / 4 + i]!);
    for (let i = 0; i < FRONTIER_WIDTH; i++) Atomics.store(c, W_SNAP + 32 + i, c[OFF_FRONTIER / 4 + i]!);
    Atomics.store(c, W_SNAP + 40, c[W_HEAD_START]!);
    Atomics.store(c, W_SNAP + 41, c[W_HEAD_COUNT]!);
    Atomics.store(c, W_SNAP + 42, c[W_POPCOUNT]!);
    Atomics.store(c, W_SNAP + 43, size);
    Atomics.add(this.seqlock, 0, 1); // even: snapshot complete
    Atomics.notify(this.seqlock, 0);
    return size;
  }

  /**
   * Reads the last published snapshot consistently — spinning briefly, then sleeping in
   * `Atomics.wait`, while a publish is in progress — and makes exactly the facts it covers visible
   * to this instance's lookups (an admission through this instance sees everything again).
   */
  sync(): DomainSnapshot {
    const c = this.ctl;
    const words = new Uint32Array(SNAP_WORDS);
    let seq = 0;
    let deadline = 0;
    for (let attempt = 0; ; attempt++) {
      seq = Atomics.load(this.seqlock, 0);
      if ((seq & 1) === 0) {
        for (let i = 0; i < SNAP_WORDS; i++) words[i] = Atomics.load(c, W_SNAP + i);
        if (Atomics.load(this.seqlock, 0) === seq) break;
      } else if (attempt >= SNAPSHOT_SPINS) {
        if (deadline === 0) deadline = Date.now() + SNAPSHOT_DEADLINE_MS;
        else if (Date.now() > deadline) throw new SharedMemoryError('kernel snapshot stayed mid-publish for 2 s; did the writer die?');
        Atomics.wait(this.seqlock, 0, seq, 1);
      }
    }
    const size = words[43]!;
    this.index.showUpTo(size);
    const state = new StateCell();
    new Uint32Array(state.bytes.buffer).set(words.subarray(0, 16));
    const clock = new CausalClock();
    clock.words.set(words.subarray(16, 32));
    return {
      state,
      clock,
      frontier: this.idsOfHeads(words.subarray(32, 40), words[40]!, words[41]!),
      size,
      popcount: words[42]!,
      publication: seq >>> 1,
    };
  }
}
