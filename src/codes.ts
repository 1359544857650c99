/**
 * Numeric result codes used on hot paths. Admission methods named `tryAdmit…` return one of
 * {@link AdmitCode}; invariants return one of {@link InvariantCode}. The throwing wrappers map
 * them to the string codes of `errors.ts`.
 *
 * Numbers follow the upstream crate where a condition exists there, so logs stay comparable.
 * 5 (BufferFull) is reserved for the replication ring; 4 and 11 stay unused (upstream codes that
 * were never produced).
 */
export const AdmitCode = {
  Ok: 0,
  CausalityViolation: 1,
  InvariantViolation: 2,
  MalformedFact: 3,
  CausalHorizonExceeded: 6,
  /**
   * Durable kernels: the WAL arena has no room for the record (the disk is behind the producer).
   * Nothing was applied; retry once the persistence worker has caught up.
   */
  ArenaFull: 7,
  PayloadTooLarge: 8,
  RequiresCoordination: 9,
  DuplicateFact: 10,
  UnknownTenant: 12,
  FactIdMismatch: 13,
  /**
   * Durable kernels: the log cannot take the fact (an I/O or fsync error poisoned it, or it is
   * closed), so nothing was applied. From a `Durable` admission: the fact was applied in memory
   * but its durability could not be confirmed (see `DurabilityError`).
   */
  DurabilityFailed: 14,
  /**
   * Worker pool: a dep was admitted, but into another shard, and this shard does not share
   * causality with it. Route facts that depend on each other to the same shard.
   */
  CrossShardDependency: 15,
  /**
   * Escrow (a `NetworkingKernel` with a bounded invariant): this node's own rights fall short of
   * the fact's delta. Nothing was applied; a request for more was started in the background.
   */
  EscrowExhausted: 16,
} as const;
export type AdmitCode = (typeof AdmitCode)[keyof typeof AdmitCode];
export type AdmitCodeName = Exclude<keyof typeof AdmitCode, 'Ok'>;

/** Code → name for every non-zero entry of a code table. */
function namesByCode<N extends string>(table: Record<string, number>): (N | undefined)[] {
  const names: (N | undefined)[] = [];
  for (const [name, code] of Object.entries(table)) if (code !== 0) names[code] = name as N;
  return names;
}

const ADMIT_NAMES = namesByCode<AdmitCodeName>(AdmitCode);

/** The string name of a non-zero admission code, or undefined for anything else. */
export function lookupAdmitCodeName(code: number): AdmitCodeName | undefined {
  return Number.isInteger(code) ? ADMIT_NAMES[code] : undefined;
}

/** Reasons an invariant rejects a payload. 0 is success. */
export const InvariantCode = {
  Ok: 0,
  Overflow: 1,
  Underflow: 2,
  BoundsViolation: 3,
  MalformedPayload: 4,
  DuplicateElement: 5,
  /** The invariant threw instead of returning a code; the kernel treats it as a rejection. */
  Threw: 255,
} as const;
export type InvariantCode = (typeof InvariantCode)[keyof typeof InvariantCode];
export type InvariantCodeName = Exclude<keyof typeof InvariantCode, 'Ok'>;

const INVARIANT_NAMES = namesByCode<InvariantCodeName>(InvariantCode);

/**
 * The string name of a non-zero invariant code. Custom invariants may return other codes (6..254);
 * those, and anything that is not a named code, are reported as `'Custom'`.
 */
export function invariantCodeName(code: number): InvariantCodeName | 'Custom' {
  return (Number.isInteger(code) ? INVARIANT_NAMES[code] : undefined) ?? 'Custom';
}
