/**
 * What an algebraic class promises, how much coordination it needs, and how classes compose.
 *
 * Classes are judged by *acceptance* semantics (src/invariants/invariant.ts). A class stands for a
 * set of properties: every coordination-free class commutes and never refuses a well-formed
 * payload; CommutativeIdempotent adds idempotence; Lattice adds a join (and so idempotence); Group
 * adds inverses. BoundedCommutative commutes only while a bound does not bind; Ordered promises
 * nothing. Composing invariants (applying several to each fact, all or nothing) keeps exactly the
 * properties every member has: a composition is as weak as its weakest member.
 */
import { InvalidArgumentError } from '../errors.js';
import { AlgebraicClass, checkAlgebraicClass, isCoordinationFree } from '../invariants/invariant.js';

export { AlgebraicClass, isCoordinationFree };

/** How far coordination must reach before a fact of this class can be admitted. */
export const CoordinationScope = {
  /** None: admit locally, replicate freely. */
  None: 0,
  /** Scoped: local within an escrowed share; beyond it, ask the peers holding quota. */
  Scoped: 1,
  /** Global: a total order (consensus) is needed. */
  Global: 2,
} as const;
export type CoordinationScope = (typeof CoordinationScope)[keyof typeof CoordinationScope];

export function coordinationScope(algebraicClass: AlgebraicClass): CoordinationScope {
  checkClass(algebraicClass);
  if (isCoordinationFree(algebraicClass)) return CoordinationScope.None;
  return algebraicClass === AlgebraicClass.BoundedCommutative ? CoordinationScope.Scoped : CoordinationScope.Global;
}

/**
 * Strong eventual consistency without coordination: replicas that admitted the same facts, in any
 * order, hold the same state and accepted the same facts. True exactly for coordination-free
 * classes; BoundedCommutative gets it through escrow, Ordered through consensus.
 */
export function convergesWithoutCoordination(algebraicClass: AlgebraicClass): boolean {
  checkClass(algebraicClass);
  return isCoordinationFree(algebraicClass);
}

/** Idempotence: applying a payload twice leaves the state as applying it once. */
export function isIdempotent(algebraicClass: AlgebraicClass): boolean {
  checkClass(algebraicClass);
  return algebraicClass === AlgebraicClass.CommutativeIdempotent || algebraicClass === AlgebraicClass.Lattice;
}

const COMMUTES = 1;
const IDEMPOTENT = 2;
const JOIN = 4;
const INVERSES = 8;

const PROPERTIES: Record<number, number> = {
  [AlgebraicClass.Commutative]: COMMUTES,
  [AlgebraicClass.CommutativeIdempotent]: COMMUTES | IDEMPOTENT,
  [AlgebraicClass.Lattice]: COMMUTES | IDEMPOTENT | JOIN,
  [AlgebraicClass.Group]: COMMUTES | INVERSES,
};

/** The class of two invariants applied together: the properties both have. */
export function composeClasses(a: AlgebraicClass, b: AlgebraicClass): AlgebraicClass {
  checkClass(a);
  checkClass(b);
  if (a === AlgebraicClass.Ordered || b === AlgebraicClass.Ordered) return AlgebraicClass.Ordered;
  if (a === AlgebraicClass.BoundedCommutative || b === AlgebraicClass.BoundedCommutative) return AlgebraicClass.BoundedCommutative;
  const common = PROPERTIES[a]! & PROPERTIES[b]!;
  if ((common & JOIN) !== 0) return AlgebraicClass.Lattice;
  if ((common & IDEMPOTENT) !== 0) return AlgebraicClass.CommutativeIdempotent;
  if ((common & INVERSES) !== 0) return AlgebraicClass.Group;
  return AlgebraicClass.Commutative;
}

/** The class of several invariants applied together (at least one). */
export function composeAll(classes: readonly AlgebraicClass[]): AlgebraicClass {
  if (!Array.isArray(classes) || classes.length === 0) throw new InvalidArgumentError('compose at least one class');
  classes.forEach(checkAlgebraicClass);
  return classes.reduce(composeClasses);
}

const checkClass: (c: AlgebraicClass) => void = checkAlgebraicClass;
