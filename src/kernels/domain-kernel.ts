/**
 * What every kernel over one causal domain shares, whatever its invariants: the causal reads
 * (clock, frontier, membership) and what the last rejection was about. Internal base class.
 */
import type { CausalClock } from '../causal/causal-clock.js';
import { CLOCK_BITS } from '../causal/causal-clock.js';
import type { FactId } from '../core/fact.js';
import type { CausalDomain } from './causal-domain.js';

export abstract class DomainKernel {
  /** @internal */
  protected readonly domain: CausalDomain;

  protected constructor(domain: CausalDomain) {
    this.domain = domain;
  }

  /** A copy of the Bloom clock. */
  get clock(): CausalClock {
    return this.domain.clock.clone();
  }

  /** Fraction of the Bloom clock's bits set. */
  get saturation(): number {
    return this.domain.popcount / CLOCK_BITS;
  }

  /** Number of facts admitted. */
  get size(): number {
    return this.domain.index.size;
  }

  /** The most facts this kernel can admit (its exact-index capacity). */
  get indexCapacity(): number {
    return this.domain.index.capacity;
  }

  /** True if a fact with this id was admitted (exact). */
  contains(id: FactId): boolean {
    return this.domain.contains(id);
  }

  /**
   * The frontier: a window of at most 8 heads, oldest first. Every fact shown has no admitted
   * fact depending on it; a head pushed out by 8 newer heads is not shown again.
   */
  frontier(): FactId[] {
    return this.domain.frontier();
  }

  /**
   * After a rejection: the invariant's own code if an invariant caused it (see `InvariantCode`),
   * else 0 — so a `MalformedFact` with a non-zero value is a payload an invariant refused.
   */
  get lastInvariantError(): number {
    return this.domain.lastInvariantError;
  }

  /**
   * After a rejection: the position in `deps` of the dependency that caused it (never admitted,
   * or not a 32-byte id), else -1.
   */
  get lastFailedDep(): number {
    return this.domain.lastFailedDep;
  }
}
