/**
 * What every kernel over one causal domain shares, whatever its invariants: the causal reads
 * (clock, frontier, membership) and what the last rejection was about. Internal base class.
 */
import type { CausalClock } from '../causal/causal-clock.js';
import { CLOCK_BITS } from '../causal/causal-clock.js';
import type { FactId } from '../core/fact.js';
import { AdmitCode } from '../codes.js';
import { toHex } from '../core/bytes.js';
import { AdmitError } from '../errors.js';
import type { CausalDomain } from '../domain/causal-domain.js';
import type { TieredMemory, WriterPauses } from '../causal/tiered-index.js';
import { ACCEPT_FOREIGN_DEPS, RECORD_LOG } from './internal.js';
import type { RecordLog } from '../domain/record-log.js';

/**
 * @internal The `AdmitError` for a rejection `code` the domain just returned: the reason in words,
 * the invariant's own code where an invariant refused, which invariant (MultiKernel, DualKernel),
 * and any `context` (a tenant).
 */
export function rejectionError(domain: CausalDomain, code: number, id: FactId | undefined, context?: string): AdmitError {
  const invariantCode = code === AdmitCode.InvariantViolation || code === AdmitCode.MalformedFact ? domain.lastInvariantError : 0;
  const which = domain.lastFailedInvariant >= 0 && domain.cellCount > 1 ? ` (invariant ${domain.lastFailedInvariant})` : '';
  const where = context === undefined ? '' : `, ${context}`;
  return new AdmitError(code, invariantCode, `${describe(code, id, domain)}${which}${where}`);
}

function describe(code: number, id: FactId | undefined, domain: CausalDomain): string {
  const fact = id instanceof Uint8Array && id.length === 32 ? `fact ${toHex(id).slice(0, 16)}…` : 'fact';
  switch (code) {
    case AdmitCode.CausalityViolation:
      return `${fact} depends on a fact that was never admitted`;
    case AdmitCode.DuplicateFact:
      return `${fact} was already admitted`;
    case AdmitCode.CausalHorizonExceeded:
      return `${domain.index.horizonMessage()}; ${fact} cannot be tracked`;
    case AdmitCode.RequiresCoordination:
      return 'the invariant is not coordination-free; replicate it through escrow';
    case AdmitCode.FactIdMismatch:
      return `${fact}: id is not the BLAKE3 content address of its deps and payload`;
    case AdmitCode.MalformedFact:
      return `${fact}: id and deps must be 32-byte Uint8Arrays (at most 16 deps) and the payload must suit the invariant`;
    case AdmitCode.InvariantViolation:
      return `${fact} rejected by the invariant`;
    default:
      return fact;
  }
}


export abstract class DomainKernel {
  /** @internal */
  protected readonly domain: CausalDomain;

  protected constructor(domain: CausalDomain) {
    this.domain = domain;
  }

  /** @internal The record log every admission is staged in (see RECORD_LOG). */
  get [RECORD_LOG](): RecordLog | null {
    return this.domain.log;
  }

  set [RECORD_LOG](log: RecordLog | null) {
    this.domain.log = log;
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

  /** The most facts this kernel admits (its `indexCapacity` option; Infinity: no limit). */
  get indexCapacity(): number {
    return this.domain.index.capacity;
  }

  /** Ids and bytes per tier of the exact history (hot table, spare, frozen tables, runs); what `ctfs_exact_index_*` exports. */
  historyMemory(): TieredMemory {
    return this.domain.index.memoryBytes();
  }

  /** How long this instance's admissions were held up by its history's freezes and installs of compacted runs (ms). */
  historyPauses(): WriterPauses {
    return this.domain.index.writerPauses();
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
   * @internal True if `id` is among the facts this kernel's writer has published; safe from any
   * thread at any time (published ids never move). Pool threads use it to name cross-shard deps.
   */
  containsPublished(id: FactId): boolean {
    return this.domain.containsPublished(id);
  }

  /**
   * @internal Deps this kernel never admitted that `lookup` vouches for are accepted (pool shards
   * that share causality); null restores plain rejection.
   */
  [ACCEPT_FOREIGN_DEPS](lookup: ((dep: FactId) => boolean) | null): void {
    this.domain.foreignDep = lookup;
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
