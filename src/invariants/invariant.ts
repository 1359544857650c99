/**
 * The invariant interface: an algebraic constraint enforced at admission.
 *
 * `apply(payload, state)` checks the payload against the 64-byte state and, only if it is
 * acceptable, updates the state. It returns 0 (`InvariantCode.Ok`) or a non-zero
 * `InvariantCode`; it must not throw for bad input, allocate, or depend on anything but its
 * arguments (every replica must reach the same bytes).
 */

import { InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';

/**
 * How an invariant's operations compose, judged by their *acceptance* semantics: an operation
 * that can be rejected depending on what was admitted before (a bound, a uniqueness check) is
 * not coordination-free, whatever its arithmetic. Numbering is the wire/compat numbering.
 */
export const AlgebraicClass = {
  /** a ∘ b = b ∘ a; never rejects a well-formed payload. */
  Commutative: 0,
  /** Commutative and idempotent (sets). */
  CommutativeIdempotent: 1,
  /** Join-semilattice: commutative, associative, idempotent merges. */
  Lattice: 2,
  /** Commutative with inverses; never rejects a well-formed payload. */
  Group: 3,
  /** Commutative arithmetic whose acceptance depends on a bound: needs escrow to replicate. */
  BoundedCommutative: 4,
  /** Order matters: needs global coordination. */
  Ordered: 5,
} as const;
export type AlgebraicClass = (typeof AlgebraicClass)[keyof typeof AlgebraicClass];

/** True for the classes whose operations can be admitted on any replica without coordination. */
export function isCoordinationFree(algebraicClass: AlgebraicClass): boolean {
  checkAlgebraicClass(algebraicClass);
  return algebraicClass <= AlgebraicClass.Group;
}

/** @internal Throws InvalidArgumentError unless `c` is an AlgebraicClass (an integer 0..5). */
export function checkAlgebraicClass(c: unknown): asserts c is AlgebraicClass {
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > AlgebraicClass.Ordered) {
    throw new InvalidArgumentError(`not an AlgebraicClass (0..5): ${describeValue(c)}`);
  }
}

export interface Invariant {
  /** The class of this invariant's operations, by acceptance semantics. */
  readonly algebraicClass: AlgebraicClass;
  /**
   * Validates `payload` against `state` (64 bytes) and applies it on success.
   * Returns 0 on success, otherwise an `InvariantCode` or a custom code in 6..254 (255 is `Threw`;
   * anything else a kernel also treats as `Threw`).
   * `state` must be left untouched when the result is non-zero.
   */
  apply(payload: Uint8Array, state: Uint8Array): number;
  /**
   * Declare `true` only if `apply` never writes `state` before it has decided to succeed.
   * Kernels then apply in place; otherwise they apply to a scratch copy and commit it on success,
   * so a rejection can never leave partial writes behind.
   */
  readonly mutatesOnlyOnSuccess?: boolean;
  /**
   * The 64-byte state a kernel starts from when none is given (default: 64 zero bytes, which for
   * some invariants is valid but restrictive).
   */
  initialState?(): Uint8Array;
}

/** @internal Throws InvalidArgumentError unless `invariant` has the shape of an Invariant. */
export function checkInvariant(invariant: Invariant): void {
  if (invariant === null || typeof invariant !== 'object' || typeof invariant.apply !== 'function') {
    throw new InvalidArgumentError('invariant must be an object with an apply(payload, state) method');
  }
  checkAlgebraicClass(invariant.algebraicClass);
}
