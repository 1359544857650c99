/**
 * MultiKernel: up to 8 invariants over shared causality. Each fact carries one payload per
 * invariant; it is admitted only if every invariant accepts its payload (all or nothing), and each
 * invariant keeps its own 64-byte state cell. Exact and deduplicating like every kernel.
 *
 * DualKernel is the two-invariant case with typed invariants and no payload array.
 *
 * Replicated admission and cross-thread attach are not offered for these kernels yet.
 */
import { composeAll, composeClasses } from '../algebra/classes.js';
import { AdmitCode } from '../codes.js';
import type { FactId } from '../core/fact.js';
import { StateCell, cellBytes } from '../core/state-cell.js';
import { InvalidArgumentError } from '../errors.js';
import { checkInvariant, type AlgebraicClass, type Invariant } from '../invariants/invariant.js';
import { CausalDomain, MAX_CELLS } from '../domain/causal-domain.js';
import { DomainKernel, rejectionError } from './domain-kernel.js';
import { historyOptionsOf, type KernelOptions } from './kernel-options.js';
import { checkHistogram, recordAdmission, type LatencyHistogram } from '../metrics/latency-histogram.js';

/** MultiKernel's invariant limit. */
export const MAX_INVARIANTS = MAX_CELLS;

export class MultiKernel extends DomainKernel {
  private readonly invariants: Invariant[] = [];

  constructor(options?: KernelOptions) {
    super(new CausalDomain([], historyOptionsOf(options)));
  }

  /**
   * Adds an invariant with its initial state (default: its `initialState()`, else zeros) and
   * returns its position, which is also the position of its payload in every fact. Invariants are
   * registered before the first fact is admitted; at most 8.
   */
  register(invariant: Invariant, cell?: StateCell | Uint8Array): number {
    checkInvariant(invariant);
    const bytes = cell === undefined ? undefined : cellBytes(cell);
    const i = this.domain.addInvariant(invariant, bytes);
    this.invariants.push(invariant);
    return i;
  }

  get invariantCount(): number {
    return this.invariants.length;
  }

  /** The class of the composition: only the properties every invariant has. */
  get algebraicClass(): AlgebraicClass {
    return composeAll(this.invariants.map((i) => i.algebraicClass));
  }

  /** Admits a fact with one payload per registered invariant. Returns an `AdmitCode`; never throws. */
  tryAdmitRaw(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[]): number {
    return this.domain.tryAdmitMulti(id, deps, payloads);
  }

  /** `tryAdmitRaw`, timed: records the latency (ns) and the outcome in `histogram`. */
  tryAdmitRawInstrumented(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[], histogram: LatencyHistogram): number {
    checkHistogram(histogram);
    const started = performance.now();
    return recordAdmission(histogram, started, this.tryAdmitRaw(id, deps, payloads));
  }

  /** Like `tryAdmitRaw`, but throws `AdmitError` on rejection. */
  admitRaw(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[]): void {
    const code = this.tryAdmitRaw(id, deps, payloads);
    if (code !== AdmitCode.Ok) throw rejectionError(this.domain, code, id);
  }

  /** After an invariant rejection: which invariant (its position) refused, else -1. */
  get lastFailedInvariant(): number {
    return this.domain.lastFailedInvariant;
  }

  /** A copy of invariant `i`'s state cell. */
  stateOf(i: number): StateCell {
    return StateCell.from(this.domain.cell(i));
  }

  /** Copies of every state cell, in registration order. */
  get states(): StateCell[] {
    return this.invariants.map((_, i) => this.stateOf(i));
  }

  /** Forgets every fact; each cell becomes `cells[i]`, else its invariant's initial state, else zeros. */
  reset(cells: readonly (StateCell | Uint8Array | undefined)[] = []): void {
    if (!Array.isArray(cells) || cells.length > this.invariants.length) {
      throw new InvalidArgumentError(`reset takes at most ${this.invariants.length} cells`);
    }
    this.domain.reset(cells.map((c) => (c === undefined ? undefined : cellBytes(c))));
  }

  // Names before the admission vocabulary (README, "Naming"); they go in 0.3.

  /** @deprecated Renamed `tryAdmitRaw` (it takes the fact's parts). */
  tryAdmit(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[]): number {
    return this.tryAdmitRaw(id, deps, payloads);
  }

  /** @deprecated Renamed `admitRaw` (it takes the fact's parts). */
  admit(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[]): void {
    this.admitRaw(id, deps, payloads);
  }

  /** @deprecated Renamed `tryAdmitRawInstrumented` (it returns a code, like every `try…`). */
  admitInstrumented(id: FactId, deps: readonly FactId[], payloads: readonly Uint8Array[], histogram: LatencyHistogram): number {
    return this.tryAdmitRawInstrumented(id, deps, payloads, histogram);
  }

  /** @deprecated Renamed `stateOf`. */
  state(i: number): StateCell {
    return this.stateOf(i);
  }
}

export class DualKernel<I1 extends Invariant = Invariant, I2 extends Invariant = Invariant> extends DomainKernel {
  readonly first: I1;
  readonly second: I2;

  /** Two invariants and their initial states (default: each one's `initialState()`, else zeros). */
  constructor(first: I1, firstCell: StateCell | Uint8Array | undefined, second: I2, secondCell: StateCell | Uint8Array | undefined, options?: KernelOptions) {
    checkInvariant(first);
    checkInvariant(second);
    const a = firstCell === undefined ? undefined : cellBytes(firstCell);
    const b = secondCell === undefined ? undefined : cellBytes(secondCell);
    super(new CausalDomain([first, second], historyOptionsOf(options)));
    this.first = first;
    this.second = second;
    this.domain.reset([a, b]);
  }

  /** The class of the pair: only the properties both invariants have. */
  get algebraicClass(): AlgebraicClass {
    return composeClasses(this.first.algebraicClass, this.second.algebraicClass);
  }

  /** Admits a fact whose payloads are applied to both invariants, or to neither. Never throws. */
  tryAdmitRaw(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array): number {
    return this.domain.tryAdmitDual(id, deps, firstPayload, secondPayload);
  }

  /** `tryAdmitRaw`, timed: records the latency (ns) and the outcome in `histogram`. */
  tryAdmitRawInstrumented(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array, histogram: LatencyHistogram): number {
    checkHistogram(histogram);
    const started = performance.now();
    return recordAdmission(histogram, started, this.tryAdmitRaw(id, deps, firstPayload, secondPayload));
  }

  /** Like `tryAdmitRaw`, but throws `AdmitError` on rejection. */
  admitRaw(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array): void {
    const code = this.tryAdmitRaw(id, deps, firstPayload, secondPayload);
    if (code !== AdmitCode.Ok) throw rejectionError(this.domain, code, id);
  }

  /** After an invariant rejection: 0 if the first invariant refused, 1 if the second, else -1. */
  get lastFailedInvariant(): number {
    return this.domain.lastFailedInvariant;
  }

  /** A copy of the first (0) or second (1) invariant's state cell. */
  stateOf(i: 0 | 1): StateCell {
    return StateCell.from(this.domain.cell(i));
  }

  /** Copies of both state cells. */
  get states(): [StateCell, StateCell] {
    return [this.stateOf(0), this.stateOf(1)];
  }

  /** Forgets every fact; the cells become the given ones, else each invariant's initial state. */
  reset(firstCell?: StateCell | Uint8Array, secondCell?: StateCell | Uint8Array): void {
    this.domain.reset([firstCell === undefined ? undefined : cellBytes(firstCell), secondCell === undefined ? undefined : cellBytes(secondCell)]);
  }

  // Names before the admission vocabulary (README, "Naming"); they go in 0.3.

  /** @deprecated Renamed `tryAdmitRaw` (it takes the fact's parts). */
  tryAdmit(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array): number {
    return this.tryAdmitRaw(id, deps, firstPayload, secondPayload);
  }

  /** @deprecated Renamed `admitRaw` (it takes the fact's parts). */
  admit(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array): void {
    this.admitRaw(id, deps, firstPayload, secondPayload);
  }

  /** @deprecated Renamed `tryAdmitRawInstrumented` (it returns a code, like every `try…`). */
  admitInstrumented(id: FactId, deps: readonly FactId[], firstPayload: Uint8Array, secondPayload: Uint8Array, histogram: LatencyHistogram): number {
    return this.tryAdmitRawInstrumented(id, deps, firstPayload, secondPayload, histogram);
  }
}
