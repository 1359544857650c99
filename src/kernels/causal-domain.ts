/**
 * CausalDomain: one causal domain (a kernel, or one tenant of a TenantKernel) and its admission
 * hot path. Internal; kernels wrap it.
 *
 * Memory: a small control SharedArrayBuffer (header, state cell, Bloom clock, frontier) and the
 * exact index's own buffer. Layout in docs/ARCHITECTURE.md §3.
 *
 * Admission order (nothing is written before step 5, so every rejection leaves the domain
 * exactly as it was):
 *   1. shape checks (id, deps, payload)
 *   2. every dep: Bloom pre-filter (optional; a miss is a certain miss), then the exact index
 *   3. the id: one probe that either finds it (DuplicateFact) or yields its insert slot
 *   4. the invariant, in place or on a scratch copy
 *   5. commit: index insert, clock, frontier
 */
import { AdmitCode, InvariantCode } from '../core/codes.js';
import { MAX_DEPS, MAX_PAYLOAD_BYTES } from '../core/fact.js';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { CausalClock } from '../causal/causal-clock.js';
import { ExactCausalIndex, type ExactIndexOptions } from '../causal/exact-index.js';
import { SharedMemoryError } from '../errors.js';
import { StateCell } from '../core/state-cell.js';
import type { Invariant } from '../invariants/invariant.js';

/** "CTKD" little-endian: marks a buffer as a kernel domain's control block. */
const MAGIC = 0x444b5443;
const LAYOUT_VERSION = 1;
/**
 * Control block, in bytes: header line, counters line, state cell, clock, frontier (the live
 * state, written on every admission); then the published snapshot: a seqlock word on its own
 * line and a copy of state, clock, frontier and counters, written only by `publish()`.
 */
const OFF_HEADER = 0;
const OFF_COUNTERS = 64;
const OFF_STATE = 128;
const OFF_CLOCK = 192;
const OFF_FRONTIER = 256;
const OFF_SEQLOCK = 320;
const OFF_SNAPSHOT = 384;
export const CONTROL_BYTES = 576;
/** Counter words (u32 index into the control block). */
const W_POPCOUNT = OFF_COUNTERS / 4;
const W_HEAD_COUNT = OFF_COUNTERS / 4 + 1;
const W_MODE = OFF_COUNTERS / 4 + 2;
const W_HEAD_START = OFF_COUNTERS / 4 + 3;
const W_SEQLOCK = OFF_SEQLOCK / 4;
/** The snapshot mirrors, in 48 words: state (16), clock (16), frontier (8), start, count, popcount, size. */
const W_SNAP = OFF_SNAPSHOT / 4;
const W_SNAP_META = W_SNAP + 40;
/** A reader gives up on a snapshot that stays mid-write this many attempts (a writer that died mid-publish). */
const SNAPSHOT_ATTEMPTS = 1_000_000;

/** The frontier keeps at most this many heads (the most recent facts nothing depends on); a power of two. */
export const FRONTIER_WIDTH = 8;
/** Entries in the per-thread cache of recently admitted ids consulted first for deps. */
const RECENT = 8;

/** The shared memory of one causal domain; hand it to another thread to attach. */
export interface SharedDomainMemory {
  readonly control: SharedArrayBuffer;
  readonly index: SharedArrayBuffer;
}

export class CausalDomain {
  readonly control: SharedArrayBuffer;
  readonly index: ExactCausalIndex;
  readonly clock: CausalClock;
  /** Live view of the state cell. */
  readonly state: Uint8Array;
  readonly ctl: Uint32Array;
  /** Key numbers of the frontier's heads, oldest first. */
  private readonly heads: Uint32Array;
  private readonly invariant: Invariant;
  private readonly inPlace: boolean;
  private readonly scratch = new Uint8Array(STATE_CELL_BYTES);
  private readonly depKeys = new Int32Array(MAX_DEPS);
  private readonly survivors = new Uint32Array(FRONTIER_WIDTH);
  /** First word (bytes 0..4, little-endian) of each recent admission's id: the cache's filter. */
  private readonly recentWord = new Int32Array(RECENT);
  private readonly recentKey = new Int32Array(RECENT).fill(-1);
  private recentNext = 0;
  /** When false, deps skip the Bloom pre-filter and go straight to the exact index. */
  bloomFilter = true;
  /** The invariant's code for the last InvariantViolation or MalformedFact it caused. */
  lastInvariantError = 0;

  constructor(invariant: Invariant, options: ExactIndexOptions, shared?: SharedDomainMemory) {
    this.invariant = invariant;
    this.inPlace = invariant.mutatesOnlyOnSuccess === true;
    if (shared === undefined) {
      this.control = new SharedArrayBuffer(CONTROL_BYTES);
      this.index = new ExactCausalIndex(options);
      const header = new Uint32Array(this.control, OFF_HEADER, 2);
      header[0] = MAGIC;
      header[1] = LAYOUT_VERSION;
    } else {
      const control = shared.control;
      if (!(control instanceof SharedArrayBuffer) || control.byteLength !== CONTROL_BYTES) {
        throw new SharedMemoryError(`kernel control block must be a SharedArrayBuffer of ${CONTROL_BYTES} bytes`);
      }
      const header = new Uint32Array(control, OFF_HEADER, 2);
      if (header[0] !== MAGIC || header[1] !== LAYOUT_VERSION) {
        throw new SharedMemoryError('buffer does not hold a kernel control block of layout version 1');
      }
      this.control = control;
      this.index = ExactCausalIndex.attach(shared.index);
    }
    this.ctl = new Uint32Array(this.control);
    this.state = new Uint8Array(this.control, OFF_STATE, STATE_CELL_BYTES);
    this.clock = new CausalClock(this.control, OFF_CLOCK);
    this.heads = new Uint32Array(this.control, OFF_FRONTIER, FRONTIER_WIDTH);
  }

  get shared(): SharedDomainMemory {
    return { control: this.control, index: this.index.buffer };
  }

  get popcount(): number {
    return this.ctl[W_POPCOUNT]!;
  }

  /** Escalation mode, stored in shared memory so every attached thread sees the same one. */
  get mode(): number {
    return this.ctl[W_MODE]!;
  }

  set mode(value: number) {
    this.ctl[W_MODE] = value;
  }

  /** Admits one fact; returns an AdmitCode. Allocates nothing. */
  tryAdmit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
    if (!(id instanceof Uint8Array) || id.length !== 32 || !Array.isArray(deps)) return AdmitCode.MalformedFact;
    if (!(payload instanceof Uint8Array)) return AdmitCode.MalformedFact;
    if (payload.length > MAX_PAYLOAD_BYTES) return AdmitCode.PayloadTooLarge;
    const nDeps = deps.length;
    if (nDeps > MAX_DEPS) return AdmitCode.MalformedFact;
    const index = this.index;
    const hasher = index.hasher;

    for (let d = 0; d < nDeps; d++) {
      const dep = deps[d];
      if (!(dep instanceof Uint8Array) || dep.length !== 32) return AdmitCode.MalformedFact;
      let k = this.findRecent(dep);
      if (k < 0) {
        hasher.load(dep);
        // Bloom: a clear bit proves the dep was never admitted; a set bit proves nothing.
        if (this.bloomFilter && !this.clock.hasHash(hasher.bloomHash)) return AdmitCode.CausalityViolation;
        k = index.findLoaded();
        if (k < 0) return AdmitCode.CausalityViolation;
      }
      this.depKeys[d] = k;
    }

    hasher.load(id);
    const probe = index.probeLoaded();
    if (probe >= 0) return AdmitCode.DuplicateFact;
    if (index.size >= index.capacity) return AdmitCode.CausalHorizonExceeded;

    const code = this.inPlace ? this.invariant.apply(payload, this.state) : this.applyScratch(payload);
    if (code !== 0) {
      this.lastInvariantError = code;
      return code === InvariantCode.MalformedPayload ? AdmitCode.MalformedFact : AdmitCode.InvariantViolation;
    }

    const key = index.insertLoaded(~probe);
    this.ctl[W_POPCOUNT] = this.ctl[W_POPCOUNT]! + this.clock.observeHash(hasher.bloomHash);
    this.recentWord[this.recentNext] = hasher.words[0]! | 0;
    this.recentKey[this.recentNext] = key;
    this.recentNext = (this.recentNext + 1) & (RECENT - 1);
    this.advanceFrontier(key, nDeps);
    return AdmitCode.Ok;
  }

  private applyScratch(payload: Uint8Array): number {
    const scratch = this.scratch;
    scratch.set(this.state);
    const code = this.invariant.apply(payload, scratch);
    if (code === 0) this.state.set(scratch);
    return code;
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
   * Ids of the frontier's heads, oldest first. A head whose fact this thread cannot see yet (an
   * attached reader, with the writer ahead of its last publish) is left out rather than read.
   */
  frontier(): Uint8Array[] {
    const start = this.ctl[W_HEAD_START]!;
    const n = this.ctl[W_HEAD_COUNT]!;
    return this.idsOfHeads(this.heads, start, n);
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

  /** Forgets every fact and sets the state to `cell` (default zeros), reusing the memory. */
  reset(cell: Uint8Array | undefined): void {
    this.index.clear();
    this.clock.clear();
    this.ctl[W_POPCOUNT] = 0;
    this.ctl[W_HEAD_COUNT] = 0;
    this.ctl[W_HEAD_START] = 0;
    this.recentKey.fill(-1);
    this.ctl[W_MODE] = 0;
    this.bloomFilter = true;
    if (cell === undefined) this.state.fill(0);
    else this.state.set(cell);
    this.lastInvariantError = 0;
  }

  /**
   * Publishes a snapshot of everything admitted so far (state, clock, frontier, size) for threads
   * that call `sync()`. Runs under a seqlock with atomic stores: ~50 stores, meant to be called
   * per batch or on demand, never per fact.
   */
  publish(): number {
    const c = this.ctl;
    const size = this.index.size;
    Atomics.add(c, W_SEQLOCK, 1); // odd: snapshot being written
    for (let i = 0; i < 16; i++) Atomics.store(c, W_SNAP + i, c[OFF_STATE / 4 + i]!);
    for (let i = 0; i < 16; i++) Atomics.store(c, W_SNAP + 16 + i, c[OFF_CLOCK / 4 + i]!);
    for (let i = 0; i < FRONTIER_WIDTH; i++) Atomics.store(c, W_SNAP + 32 + i, c[OFF_FRONTIER / 4 + i]!);
    Atomics.store(c, W_SNAP_META, c[W_HEAD_START]!);
    Atomics.store(c, W_SNAP_META + 1, c[W_HEAD_COUNT]!);
    Atomics.store(c, W_SNAP_META + 2, c[W_POPCOUNT]!);
    Atomics.store(c, W_SNAP_META + 3, size);
    Atomics.add(c, W_SEQLOCK, 1); // even: snapshot complete
    this.index.publish();
    return size;
  }

  /**
   * Reads the last published snapshot consistently (retrying while a publish is in progress) and
   * makes exactly the facts it covers visible to this thread's lookups.
   */
  sync(): { state: StateCell; clock: CausalClock; frontier: Uint8Array[]; size: number; popcount: number } {
    const c = this.ctl;
    const words = new Uint32Array(48);
    for (let attempt = 0; ; attempt++) {
      if (attempt === SNAPSHOT_ATTEMPTS) throw new SharedMemoryError('kernel snapshot stayed mid-publish; did the writer die?');
      const before = Atomics.load(c, W_SEQLOCK);
      if ((before & 1) === 1) continue;
      for (let i = 0; i < 48; i++) words[i] = Atomics.load(c, W_SNAP + i);
      if (Atomics.load(c, W_SEQLOCK) === before) break;
    }
    const size = words[43]!;
    this.index.showUpTo(size);
    const state = new StateCell();
    new Uint32Array(state.bytes.buffer).set(words.subarray(0, 16));
    const clock = new CausalClock();
    clock.words.set(words.subarray(16, 32));
    return { state, clock, frontier: this.idsOfHeads(words.subarray(32, 40), words[40]!, words[41]!), size, popcount: words[42]! };
  }
}
