/**
 * EscalatingKernel: adapts its Bloom lane to the filter's saturation.
 *
 * In `Fast` mode each dependency is first tested against the Bloom clock, whose clear bits reject
 * never-admitted deps cheaply. Once 40% of the clock's bits are set (popcount ≥ 205) the filter
 * passes most unknown ids anyway, so the kernel escalates to `Precise` mode and sends deps
 * straight to the exact index. Either way the exact index decides: the mode changes cost, never
 * the outcome.
 */
import { ESCALATION_POPCOUNT } from '../causal/causal-clock.js';
import type { FactId } from '../core/fact.js';
import type { Invariant } from '../invariants/invariant.js';
import { KernelBase } from './kernel-base.js';

export const CausalMode = {
  /** Bloom pre-filter, then the exact index. */
  Fast: 0,
  /** Exact index only (the Bloom filter is too saturated to help). */
  Precise: 1,
} as const;
export type CausalMode = (typeof CausalMode)[keyof typeof CausalMode];

export class EscalatingKernel<I extends Invariant = Invariant> extends KernelBase<I> {
  override tryAdmitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    const domain = this.domain;
    if (domain.mode === CausalMode.Fast && domain.popcount >= ESCALATION_POPCOUNT) domain.mode = CausalMode.Precise;
    return domain.tryAdmit(id, deps, payload);
  }

  /** The current mode. */
  get mode(): CausalMode {
    return this.domain.mode as CausalMode;
  }

  /** Switches to `Precise` now. */
  escalate(): void {
    this.domain.mode = CausalMode.Precise;
  }

  /** Back to `Fast`; the next admission escalates again if the clock is still saturated. */
  resetMode(): void {
    this.domain.mode = CausalMode.Fast;
  }
}
