/**
 * What every single-domain kernel shares: construction over fresh or attached shared memory,
 * the throwing and replicated admission wrappers, and read access. Internal; the public kernels
 * extend it.
 */
import { AdmitCode } from '../codes.js';
import { MAX_DEPS, MAX_PAYLOAD_BYTES, factId, isFactId, type Fact, type FactId } from '../core/fact.js';
import { bytesEqual, copyBytes } from '../core/bytes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { CLOCK_BITS } from '../causal/causal-clock.js';
import { AdmitError, InvalidArgumentError } from '../errors.js';
import { checkInvariant, isCoordinationFree, type Invariant } from '../invariants/invariant.js';
import { CausalDomain, type DomainImage, type SharedDomainMemory } from '../domain/causal-domain.js';
import { DomainKernel, rejectionError } from './domain-kernel.js';
import { historyOptionsOf, type KernelOptions } from './kernel-options.js';
import { ATTACH_MEMORY, RESTORE_IMAGE, SET_INITIAL_STATE } from './internal.js';
import type { Snapshot, View } from './view.js';
import { checkHistogram, recordAdmission, type LatencyHistogram } from '../metrics/latency-histogram.js';
import { FactBatch, admitShared, type BatchResult } from '../core/fact-batch.js';
import { historyDigest } from '../domain/history-digest.js';

export type { KernelOptions } from './kernel-options.js';

/** Shared memory of a kernel: pass it (e.g. in `workerData`) to `attach` in another thread. */
export type SharedKernelMemory = SharedDomainMemory;

/** The constructor options of a kernel built over existing shared memory. */
interface AttachOptions extends KernelOptions {
  readonly [ATTACH_MEMORY]?: SharedKernelMemory;
}

/**
 * What the `withState` and `attach` factories return: the kernel class they were called on,
 * typed with the invariant they were given (a static cannot name `K<I>` directly).
 */
export type WithInvariant<K, I extends Invariant> = K & { readonly invariant: I };

/** A kernel class whose constructor the factories can call (not an abstract or open-only one). */
type KernelClass<K extends KernelBase> = new (invariant: Invariant, options?: KernelOptions) => K;

export abstract class KernelBase<I extends Invariant = Invariant> extends DomainKernel {
  readonly invariant: I;
  private readonly coordinationFree: boolean;

  /**
   * A kernel whose state starts as `invariant.initialState()` if the invariant provides one, else
   * 64 zero bytes. Use the class's `withState` to start from a given state.
   */
  constructor(invariant: I, options: KernelOptions = {}) {
    const shared = (options as AttachOptions | null | undefined)?.[ATTACH_MEMORY];
    checkInvariant(invariant);
    super(new CausalDomain([invariant], historyOptionsOf(options), shared));
    this.invariant = invariant;
    this.coordinationFree = isCoordinationFree(invariant.algebraicClass);
    if (shared === undefined && typeof invariant.initialState === 'function') {
      this[SET_INITIAL_STATE](cellBytes(invariant.initialState()));
    }
  }

  /** A kernel of this class whose state starts as a copy of `cell`. */
  static withState<K extends KernelBase, I extends Invariant>(
    this: KernelClass<K>,
    invariant: I,
    cell: StateCell | Uint8Array,
    options?: KernelOptions,
  ): WithInvariant<K, I> {
    const bytes = cellBytes(cell);
    const kernel = new this(invariant, options);
    kernel[SET_INITIAL_STATE](bytes);
    return kernel as WithInvariant<K, I>;
  }

  /**
   * A kernel of this class over the shared memory of another one of the same class (usually
   * created in another thread). Admission is single-writer: the creating thread, or whoever holds
   * a lock around the kernel. Call `sync()` to see what the writer has `publish()`ed.
   */
  static attach<K extends KernelBase, I extends Invariant>(this: KernelClass<K>, shared: SharedKernelMemory, invariant: I): WithInvariant<K, I> {
    if (shared === null || typeof shared !== 'object') throw new InvalidArgumentError('shared must be a SharedKernelMemory');
    const options: AttachOptions = { [ATTACH_MEMORY]: shared };
    return new this(invariant, options) as WithInvariant<K, I>;
  }

  /** @internal */
  [SET_INITIAL_STATE](cell: Uint8Array): void {
    this.domain.setInitialState(cell);
  }

  [RESTORE_IMAGE](image: DomainImage): void {
    this.domain.restoreImage(image);
  }

  /** Admits a fact given as id, deps and payload. Returns an `AdmitCode` (0 = Ok); never throws. */
  tryAdmitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    return this.domain.tryAdmit(id, deps, payload);
  }

  /** Admits a fact given as id, deps and payload; throws `AdmitError` if it is rejected. */
  admitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): void {
    const code = this.tryAdmitRaw(id, deps, payload);
    if (code !== AdmitCode.Ok) throw this.rejection(code, id);
  }

  /**
   * `tryAdmitRaw`, timed: records the latency (ns) and the outcome code in `histogram` (the
   * Prometheus `ctfs_admission_latency` and `ctfs_admissions_total`). Returns the code.
   */
  tryAdmitRawInstrumented(id: FactId, deps: readonly FactId[], payload: Uint8Array, histogram: LatencyHistogram): number {
    checkHistogram(histogram);
    const started = performance.now();
    return recordAdmission(histogram, started, this.tryAdmitRaw(id, deps, payload));
  }

  /**
   * Admits every fact of `batch` in order, in this thread. A rejected fact is a code in the
   * result, never an exception; the batch can be cleared and reused as soon as this returns.
   */
  admitBatch(batch: FactBatch): BatchResult {
    if (!(batch instanceof FactBatch)) throw new InvalidArgumentError('admitBatch takes a FactBatch');
    if (batch.inFlight) throw new InvalidArgumentError('the batch is being admitted by a pool thread; await KernelPool.admitBatchAsync first');
    const admitted = admitShared(batch.shared, this);
    return { codes: batch.codes.slice(), admitted };
  }

  tryAdmit(fact: Fact): number {
    if (fact === null || typeof fact !== 'object') return AdmitCode.MalformedFact;
    return this.tryAdmitRaw(fact.id, fact.deps, fact.payload);
  }

  admit(fact: Fact): void {
    if (fact === null || typeof fact !== 'object') throw new AdmitError(AdmitCode.MalformedFact, 0, 'not a fact');
    this.admitRaw(fact.id, fact.deps, fact.payload);
  }

  /**
   * Admits a fact received from another replica: only for coordination-free invariants
   * (`RequiresCoordination` otherwise), and only if its id is the content address of its deps
   * and payload (`FactIdMismatch` otherwise).
   */
  tryAdmitReplicated(fact: Fact): number {
    if (!this.coordinationFree) return AdmitCode.RequiresCoordination;
    if (fact === null || typeof fact !== 'object') return AdmitCode.MalformedFact;
    return this.tryAdmitReplicatedRaw(fact.id, fact.deps, fact.payload);
  }

  admitReplicated(fact: Fact): void {
    const code = this.tryAdmitReplicated(fact);
    if (code !== AdmitCode.Ok) throw this.rejection(code, fact?.id);
  }

  tryAdmitReplicatedRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    if (!this.coordinationFree) return AdmitCode.RequiresCoordination;
    // Shape first, so bad input gets the same code as on the local path.
    if (!isFactId(id) || !Array.isArray(deps) || !(payload instanceof Uint8Array)) return AdmitCode.MalformedFact;
    if (payload.length > MAX_PAYLOAD_BYTES) return AdmitCode.PayloadTooLarge;
    if (deps.length > MAX_DEPS) return AdmitCode.MalformedFact;
    for (let i = 0; i < deps.length; i++) if (!isFactId(deps[i])) return AdmitCode.MalformedFact;
    // Verify and admit the same bytes: copies, so nothing can change between the two.
    const ownId = copyBytes(id);
    const ownDeps = deps.map((d) => copyBytes(d));
    const ownPayload = copyBytes(payload);
    // The content address does not depend on the order in which deps are listed.
    if (!bytesEqual(factId(ownDeps, ownPayload), ownId)) return AdmitCode.FactIdMismatch;
    return this.tryAdmitRaw(ownId, ownDeps, ownPayload);
  }

  admitReplicatedRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): void {
    const code = this.tryAdmitReplicatedRaw(id, deps, payload);
    if (code !== AdmitCode.Ok) throw this.rejection(code, id);
  }

  /** A copy of the state cell. */
  get state(): StateCell {
    return StateCell.from(this.domain.state);
  }

  /** Copies the 64-byte state into `out` (exactly 64 bytes) without allocating. */
  readState(out: Uint8Array): void {
    if (!(out instanceof Uint8Array) || out.length !== STATE_CELL_BYTES) {
      throw new InvalidArgumentError(`readState needs a ${STATE_CELL_BYTES}-byte Uint8Array`);
    }
    out.set(this.domain.state);
  }

  /** A snapshot if every id in `required` was admitted (exact), else null. */
  query(required: readonly FactId[]): View | null {
    if (!Array.isArray(required)) throw new InvalidArgumentError('required must be an array of fact ids');
    for (const id of required) if (!this.domain.contains(id)) return null;
    return { state: this.state, frontier: this.frontier(), clock: this.clock, size: this.size, saturation: this.saturation };
  }

  /**
   * Forgets every admitted fact and sets the state to a copy of `cell` (default: the invariant's
   * `initialState()`, else zeros). The
   * memory is reused, so pages already touched stay resident. Single-writer, like admission.
   */
  reset(cell?: StateCell | Uint8Array): void {
    this.domain.reset([cell === undefined ? undefined : cellBytes(cell)]);
  }

  /**
   * BLAKE3 digest of everything admitted: state, clock, frontier and every id (in memcmp order)
   * (docs/FORMATS.md §7). Equal digests mean equal histories. Writer only, like admission.
   */
  digest(): Uint8Array {
    return historyDigest(this.historyImage());
  }

  /** @internal The history as `digest` hashes it (ids in their canonical order). Writer only. */
  historyImage(): DomainImage {
    return this.domain.exportImage();
  }

  /** The kernel's shared memory, for `attach` in another thread. */
  get shared(): SharedKernelMemory {
    return this.domain.shared;
  }

  /**
   * Publishes a consistent snapshot of everything admitted so far for kernels attached in other
   * threads. Costs 20 atomic stores plus 8 per frontier head and 16 per state cell (44 for a
   * chain): call it per batch or on demand, not per fact. Returns the size.
   */
  publish(): number {
    return this.domain.publish();
  }

  /**
   * The last snapshot the writer published, read consistently; from now on `contains` and `size`
   * on this instance cover exactly the facts in it (until this instance admits a fact itself, when
   * it sees everything again). Use it to read a kernel whose writer is another thread; the live
   * getters (`state`, `frontier()`, `query`, …) are for the writer, or whoever holds its lock.
   */
  sync(): Snapshot {
    const { cells, clock, frontier, size, popcount, publication } = this.domain.sync();
    return { state: cells[0]!, clock, frontier, size, saturation: popcount / CLOCK_BITS, publication };
  }

  /** @internal The exception for a rejection code. */
  protected rejection(code: number, id: FactId | undefined): AdmitError {
    return rejectionError(this.domain, code, id);
  }

  /** @deprecated Renamed `tryAdmitRawInstrumented` (it returns a code, like every `try…`); this name goes in 0.3. */
  admitInstrumented(id: FactId, deps: readonly FactId[], payload: Uint8Array, histogram: LatencyHistogram): number {
    return this.tryAdmitRawInstrumented(id, deps, payload, histogram);
  }
}

