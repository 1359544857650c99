/**
 * TenantKernel: isolated causal domains, one per tenant, sharing one invariant.
 *
 * Each tenant has its own state cell, Bloom clock, frontier and exact index, so a fact can only
 * depend on facts of its own tenant: a dependency admitted under another tenant is unknown here
 * and rejected as `CausalityViolation`.
 *
 * Limits: tenant ids are integers in [0, 65535]; at most `maxTenants` tenants (default 64, at most
 * 65,536) may be registered, beyond which registration throws `TenantLimitExceeded`. Each tenant's
 * exact index holds `indexCapacity` facts (default 65,536, ~39 bytes each).
 */
import { AdmitCode } from '../codes.js';
import type { FactId } from '../core/fact.js';
import { StateCell, cellBytes } from '../core/state-cell.js';
import { CLOCK_BITS, type CausalClock } from '../causal/causal-clock.js';
import { AdmitError, InvalidArgumentError, TenantError, UnknownTenantError } from '../errors.js';
import { checkIndexOptions } from '../causal/exact-index.js';
import { prefault } from '../native/shim.js';
import { prefaultOf } from './kernel-options.js';
import { checkInvariant, type Invariant } from '../invariants/invariant.js';
import { CausalDomain } from '../domain/causal-domain.js';
import { rejectionError } from './domain-kernel.js';
import type { View } from './view.js';
import { checkHistogram, recordAdmission, type LatencyHistogram } from '../metrics/latency-histogram.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';

export const MAX_TENANT_ID = 0xffff;
export const DEFAULT_MAX_TENANTS = 64;
export const DEFAULT_TENANT_INDEX_CAPACITY = 65_536;

export interface TenantKernelOptions {
  /** Most tenants that may be registered (default 64, at most 65,536). */
  readonly maxTenants?: number;
  /** Exact-index capacity of each tenant (default 65,536 facts). */
  readonly indexCapacity?: number;
  /** Seed of the exact indexes' hash (default random per tenant). */
  readonly indexSeed?: number;
  /** Commit each tenant's index memory when it is registered (see `KernelOptions.prefault`; default false). */
  readonly prefault?: boolean;
}

export class TenantKernel<I extends Invariant = Invariant> {
  readonly invariant: I;
  readonly maxTenants: number;
  private readonly indexOptions: { capacity: number; seed: number | undefined };
  private readonly prefault: boolean;
  /** Tenant id → position in `domains` + 1 (0: not registered). Dense, so lookups stay one load. */
  private readonly slotOf = new Int32Array(MAX_TENANT_ID + 1);
  private readonly domains: CausalDomain[] = [];
  private readonly registered: number[] = [];

  constructor(invariant: I, options: TenantKernelOptions = {}) {
    checkInvariant(invariant);
    const { maxTenants = DEFAULT_MAX_TENANTS, indexCapacity = DEFAULT_TENANT_INDEX_CAPACITY, indexSeed } = optionsObject(options);
    if (!Number.isInteger(maxTenants) || maxTenants < 1 || maxTenants > MAX_TENANT_ID + 1) {
      throw new InvalidArgumentError(`maxTenants must be an integer in [1, ${MAX_TENANT_ID + 1}]`);
    }
    this.invariant = invariant;
    this.maxTenants = maxTenants;
    this.indexOptions = checkIndexOptions({ capacity: indexCapacity, seed: indexSeed });
    this.prefault = prefaultOf(options);
  }

  /** Registers `tenantId` with an initial state (default: the invariant's `initialState()`, else zeros). */
  registerTenant(tenantId: number, cell?: StateCell | Uint8Array): void {
    if (!isTenantId(tenantId)) throw new InvalidArgumentError(`tenant id must be an integer in [0, ${MAX_TENANT_ID}]`);
    const bytes = cell !== undefined ? cellBytes(cell) : this.invariant.initialState?.();
    if (this.slotOf[tenantId] !== 0) {
      throw new TenantError('TenantAlreadyRegistered', `tenant ${tenantId} is already registered`);
    }
    if (this.registered.length >= this.maxTenants) {
      throw new TenantError('TenantLimitExceeded', `at most ${this.maxTenants} tenants can be registered`);
    }
    const domain = new CausalDomain([this.invariant], this.indexOptions);
    if (this.prefault) prefault(domain.index.buffer);
    if (bytes !== undefined) domain.setInitialState(cellBytes(bytes));
    this.domains.push(domain);
    this.slotOf[tenantId] = this.domains.length;
    this.registered.push(tenantId);
  }

  hasTenant(tenantId: number): boolean {
    return isTenantId(tenantId) && this.slotOf[tenantId] !== 0;
  }

  /** Registered tenant ids, in registration order. */
  tenants(): number[] {
    return [...this.registered];
  }

  /** Admits a fact into one tenant. Returns an `AdmitCode` (`UnknownTenant` for an unregistered id); never throws. */
  tryAdmitRaw(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    const slot = isTenantId(tenantId) ? this.slotOf[tenantId]! : 0;
    if (slot === 0) return AdmitCode.UnknownTenant;
    return this.domains[slot - 1]!.tryAdmit(id, deps, payload);
  }

  /** `tryAdmitRaw`, timed: records the latency (ns) and the outcome in `histogram`. */
  tryAdmitRawInstrumented(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array, histogram: LatencyHistogram): number {
    checkHistogram(histogram);
    const started = performance.now();
    return recordAdmission(histogram, started, this.tryAdmitRaw(tenantId, id, deps, payload));
  }

  /** Admits a fact into one tenant; throws `AdmitError` if it is rejected. */
  admitRaw(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array): void {
    const slot = isTenantId(tenantId) ? this.slotOf[tenantId]! : 0;
    if (slot === 0) throw new AdmitError(AdmitCode.UnknownTenant, 0, `tenant ${describeValue(tenantId)} is not registered`);
    const domain = this.domains[slot - 1]!;
    const code = domain.tryAdmit(id, deps, payload);
    if (code !== AdmitCode.Ok) throw rejectionError(domain, code, id, `tenant ${tenantId}`);
  }

  /**
   * Forgets every fact of one tenant and sets its state to a copy of `cell` (default zeros),
   * reusing its memory. Other tenants are untouched.
   */
  reset(tenantId: number, cell?: StateCell | Uint8Array): void {
    this.domain(tenantId).reset([cell === undefined ? undefined : cellBytes(cell)]);
  }

  /** A copy of the tenant's state cell. */
  stateOf(tenantId: number): StateCell {
    return StateCell.from(this.domain(tenantId).state);
  }

  /** A copy of the tenant's Bloom clock. */
  clock(tenantId: number): CausalClock {
    return this.domain(tenantId).clock.clone();
  }

  saturation(tenantId: number): number {
    return this.domain(tenantId).popcount / CLOCK_BITS;
  }

  /** Number of facts admitted by the tenant. */
  size(tenantId: number): number {
    return this.domain(tenantId).index.size;
  }

  contains(tenantId: number, id: FactId): boolean {
    return this.domain(tenantId).contains(id);
  }

  frontier(tenantId: number): FactId[] {
    return this.domain(tenantId).frontier();
  }

  /** After a rejection in this tenant: the invariant's own code if it caused it, else 0. */
  lastInvariantError(tenantId: number): number {
    return this.domain(tenantId).lastInvariantError;
  }

  /** After a rejection in this tenant: the position in `deps` of the dep that caused it, else -1. */
  lastFailedDep(tenantId: number): number {
    return this.domain(tenantId).lastFailedDep;
  }

  /** A snapshot of the tenant if every id in `required` was admitted by it, else null. */
  query(tenantId: number, required: readonly FactId[]): View | null {
    const domain = this.domain(tenantId);
    if (!Array.isArray(required)) throw new InvalidArgumentError('required must be an array of fact ids');
    for (const id of required) if (!domain.contains(id)) return null;
    return {
      state: StateCell.from(domain.state),
      frontier: domain.frontier(),
      clock: domain.clock.clone(),
      size: domain.index.size,
      saturation: domain.popcount / CLOCK_BITS,
    };
  }

  private domain(tenantId: number): CausalDomain {
    const slot = isTenantId(tenantId) ? this.slotOf[tenantId]! : 0;
    if (slot === 0) throw new UnknownTenantError(tenantId);
    return this.domains[slot - 1]!;
  }

  // Names before the admission vocabulary (README, "Naming"); they go in 0.3.

  /** @deprecated Renamed `tryAdmitRaw` (it takes the fact's parts). */
  tryAdmit(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    return this.tryAdmitRaw(tenantId, id, deps, payload);
  }

  /** @deprecated Renamed `admitRaw` (it takes the fact's parts). */
  admit(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array): void {
    this.admitRaw(tenantId, id, deps, payload);
  }

  /** @deprecated Renamed `tryAdmitRawInstrumented` (it returns a code, like every `try…`). */
  admitInstrumented(tenantId: number, id: FactId, deps: readonly FactId[], payload: Uint8Array, histogram: LatencyHistogram): number {
    return this.tryAdmitRawInstrumented(tenantId, id, deps, payload, histogram);
  }

  /** @deprecated Renamed `stateOf`. */
  state(tenantId: number): StateCell {
    return this.stateOf(tenantId);
  }
}

function isTenantId(value: number): boolean {
  return typeof value === 'number' && (value & MAX_TENANT_ID) === value;
}
