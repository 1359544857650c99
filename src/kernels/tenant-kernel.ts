/**
 * TenantKernel: isolated causal domains, one per tenant, sharing one invariant.
 *
 * Each tenant has its own state cell, Bloom clock, frontier and exact index, so a fact can only
 * depend on facts of its own tenant: a dependency admitted under another tenant is unknown here
 * and rejected as `CausalityViolation`.
 *
 * Limits: tenant ids are integers in [0, 65535]; at most `maxTenants` tenants (default 64, at most
 * 65,536) may be registered, beyond which registration throws `TenantLimitExceeded`. Each tenant's
 * exact history is unbounded by default (`indexCapacity` sets a limit), in small hot tables
 * (DEFAULT_TENANT_HOT_CAPACITY ids, 160 KiB each) and runs in one arena of its own.
 */
import { AdmitCode } from '../codes.js';
import type { FactId } from '../core/fact.js';
import { StateCell, cellBytes } from '../core/state-cell.js';
import { CLOCK_BITS, type CausalClock } from '../causal/causal-clock.js';
import { AdmitError, InvalidArgumentError, TenantError, UnknownTenantError } from '../errors.js';
import { historyOptionsOf, type KernelOptions } from './kernel-options.js';
import { checkInvariant, type Invariant } from '../invariants/invariant.js';
import { CausalDomain, type HistoryOptions } from '../domain/causal-domain.js';
import { rejectionError } from './domain-kernel.js';
import type { View } from './view.js';
import { checkHistogram, recordAdmission, type LatencyHistogram } from '../metrics/latency-histogram.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';

export const MAX_TENANT_ID = 0xffff;
export const DEFAULT_MAX_TENANTS = 64;
/**
 * Ids per hot table of a tenant by default: 4,096 (160 KiB per table, two per tenant), so 64
 * tenants hold 20 MiB of tables rather than 314 MiB at a kernel's 2^16.
 */
export const DEFAULT_TENANT_HOT_CAPACITY = 4_096;
/** Largest arena of a tenant's history: 1 GiB of address space (~30M ids in runs). */
const TENANT_ARENA_BYTES = 2 ** 30;

/**
 * A TenantKernel's options: the kernel options, applied to each tenant's history
 * (`indexCapacity` is per tenant; `historyHotCapacity` defaults to DEFAULT_TENANT_HOT_CAPACITY),
 * and the tenant limit.
 */
export interface TenantKernelOptions extends KernelOptions {
  /** Most tenants that may be registered (default 64, at most 65,536). */
  readonly maxTenants?: number;
}

export class TenantKernel<I extends Invariant = Invariant> {
  readonly invariant: I;
  readonly maxTenants: number;
  private readonly historyOptions: HistoryOptions;
  /** Tenant id → position in `domains` + 1 (0: not registered). Dense, so lookups stay one load. */
  private readonly slotOf = new Int32Array(MAX_TENANT_ID + 1);
  private readonly domains: CausalDomain[] = [];
  private readonly registered: number[] = [];

  constructor(invariant: I, options: TenantKernelOptions = {}) {
    checkInvariant(invariant);
    const { maxTenants = DEFAULT_MAX_TENANTS } = optionsObject(options);
    if (!Number.isInteger(maxTenants) || maxTenants < 1 || maxTenants > MAX_TENANT_ID + 1) {
      throw new InvalidArgumentError(`maxTenants must be an integer in [1, ${MAX_TENANT_ID + 1}]`);
    }
    this.invariant = invariant;
    this.maxTenants = maxTenants;
    // A tenant's history lives in one arena of at most 1 GiB (~30M ids in runs): many tenants
    // must not reserve 16 GiB of address space each.
    this.historyOptions = { ...historyOptionsOf(options, DEFAULT_TENANT_HOT_CAPACITY), arenas: 1, arenaBytes: TENANT_ARENA_BYTES };
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
    const domain = new CausalDomain([this.invariant], this.historyOptions);
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
