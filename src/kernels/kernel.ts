/**
 * Kernel and TwoLaneKernel: single-domain kernels with exact causality.
 *
 * Both check every dependency with the Bloom clock (a clear bit is a certain miss) and then with
 * the exact index, so a fact whose dependency was never admitted is always rejected, however
 * full the Bloom filter is. `TwoLaneKernel` is the same kernel and also exposes its exact index,
 * keeping the upstream name for the "Bloom lane + exact lane" design.
 */
import type { ReadonlyExactIndex } from '../causal/exact-index.js';
import type { StateCell } from '../core/state-cell.js';
import type { Invariant } from '../invariants/invariant.js';
import { KernelBase, attachOptions, withInitialState, type KernelOptions, type SharedKernelMemory } from './kernel-base.js';

export class Kernel<I extends Invariant = Invariant> extends KernelBase<I> {
  /** A kernel whose state starts as a copy of `cell`. */
  static withState<I extends Invariant>(invariant: I, cell: StateCell | Uint8Array, options?: KernelOptions): Kernel<I> {
    return withInitialState(new Kernel(invariant, options), cell);
  }

  /**
   * A kernel over the shared memory of another `Kernel` (usually created in another thread).
   * Admission is single-writer: the creating thread, or whoever holds a lock around the kernel.
   * Call `sync()` to see what the writer has `publish()`ed.
   */
  static attach<I extends Invariant>(shared: SharedKernelMemory, invariant: I): Kernel<I> {
    return new Kernel(invariant, attachOptions(shared));
  }
}

export class TwoLaneKernel<I extends Invariant = Invariant> extends KernelBase<I> {
  /** A kernel whose state starts as a copy of `cell`. */
  static withState<I extends Invariant>(invariant: I, cell: StateCell | Uint8Array, options?: KernelOptions): TwoLaneKernel<I> {
    return withInitialState(new TwoLaneKernel(invariant, options), cell);
  }

  /** A kernel over the shared memory of another `TwoLaneKernel`; see `Kernel.attach`. */
  static attach<I extends Invariant>(shared: SharedKernelMemory, invariant: I): TwoLaneKernel<I> {
    return new TwoLaneKernel(invariant, attachOptions(shared));
  }

  /** The exact lane: the set of admitted ids, read-only (admit through the kernel). */
  get exactIndex(): ReadonlyExactIndex {
    return this.domain.index;
  }
}
