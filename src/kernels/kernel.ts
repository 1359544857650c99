/**
 * Kernel and TwoLaneKernel: single-domain kernels with exact causality.
 *
 * Both check every dependency with the Bloom clock (a clear bit is a certain miss) and then with
 * the exact index, so a fact whose dependency was never admitted is always rejected, however
 * full the Bloom filter is. `TwoLaneKernel` is the same kernel and also exposes its exact index,
 * keeping the upstream name for the "Bloom lane + exact lane" design.
 */
import type { ReadonlyExactIndex } from '../causal/exact-index.js';
import type { Invariant } from '../invariants/invariant.js';
import { KernelBase } from './kernel-base.js';

/** The kernel; `Kernel.withState` and `Kernel.attach` come from `KernelBase`. */
export class Kernel<I extends Invariant = Invariant> extends KernelBase<I> {}

export class TwoLaneKernel<I extends Invariant = Invariant> extends KernelBase<I> {
  /** The exact lane: the set of admitted ids, read-only (admit through the kernel). */
  get exactIndex(): ReadonlyExactIndex {
    return this.domain.index;
  }
}
