/**
 * Value lattices: merge functions for replicated values that converge whatever the order.
 * Each has `join` (least upper bound: commutative, associative, idempotent) and `leq` (the order
 * join respects: a ≤ b ⇔ join(a, b) = b). Values are immutable; join returns a new value.
 */
import { InvalidArgumentError } from '../errors.js';
import type { NodeId } from './escrow.js';
import { describeValue } from '../describe-value.js';

export interface JoinSemilattice<T> {
  join(a: T, b: T): T;
  leq(a: T, b: T): boolean;
  readonly bottom: T;
}

/** Max of non-negative bigints. */
export const MaxLattice: JoinSemilattice<bigint> = {
  bottom: 0n,
  join: (a, b) => (checkNat(a), checkNat(b), a >= b ? a : b),
  leq: (a, b) => (checkNat(a), checkNat(b), a <= b),
};

/** Grow-only set: join is union, order is inclusion. */
export function gSetLattice<T>(): JoinSemilattice<ReadonlySet<T>> {
  return {
    bottom: new Set<T>(),
    join: (a, b) => new Set([...a, ...b]),
    leq: (a, b) => [...a].every((x) => b.has(x)),
  };
}

/**
 * A counter that can go up and down, replicated without coordination: one (increments,
 * decrements) pair per node, joined pointwise by max. A node only ever raises its own pair, so
 * concurrent increments on different nodes all survive the join (a single replica-agnostic pair
 * joined by max would keep 10 of "+10 here, +5 there" instead of 15).
 */
export class PNCounter {
  private constructor(private readonly counts: ReadonlyMap<NodeId, readonly [bigint, bigint]>) {}

  static readonly bottom = new PNCounter(new Map());

  /** `node` adds `amount` (> 0). */
  increment(node: NodeId, amount: bigint): PNCounter {
    return this.bump(node, amount, 0);
  }

  /** `node` subtracts `amount` (> 0). */
  decrement(node: NodeId, amount: bigint): PNCounter {
    return this.bump(node, amount, 1);
  }

  /** Σ increments − Σ decrements over all nodes. */
  get value(): bigint {
    let v = 0n;
    for (const [p, n] of this.counts.values()) v += p - n;
    return v;
  }

  join(other: PNCounter): PNCounter {
    checkCounter(other);
    const out = new Map(this.counts);
    for (const [node, [p, n]] of other.counts) {
      const mine = out.get(node) ?? [0n, 0n];
      out.set(node, [mine[0] >= p ? mine[0] : p, mine[1] >= n ? mine[1] : n]);
    }
    return new PNCounter(out);
  }

  leq(other: PNCounter): boolean {
    checkCounter(other);
    for (const [node, [p, n]] of this.counts) {
      const theirs = other.counts.get(node) ?? [0n, 0n];
      if (p > theirs[0] || n > theirs[1]) return false;
    }
    return true;
  }

  equals(other: PNCounter): boolean {
    return this.leq(other) && other.leq(this);
  }

  private bump(node: NodeId, amount: bigint, which: 0 | 1): PNCounter {
    if (typeof node !== 'string' || node.length === 0) throw new InvalidArgumentError('a node id is a non-empty string');
    if (typeof amount !== 'bigint' || amount <= 0n) throw new InvalidArgumentError('amount must be a positive bigint');
    const out = new Map(this.counts);
    const pair = [...(out.get(node) ?? [0n, 0n])] as [bigint, bigint];
    pair[which] += amount;
    out.set(node, pair);
    return new PNCounter(out);
  }
}

/** A value with a tiebreaker, ordered lexicographically: (value, tiebreaker); both non-negative. */
export interface LexPair {
  readonly value: bigint;
  readonly tiebreaker: bigint;
}

/** Lexicographic pairs: join keeps the larger value, ties going to the larger tiebreaker. */
export const LexPairLattice: JoinSemilattice<LexPair> = {
  bottom: { value: 0n, tiebreaker: 0n },
  join: (a, b) => (lexLeq(a, b) ? b : a),
  leq: lexLeq,
};

/** Fields are non-negative, so (0, 0) really is the bottom. */
function lexLeq(a: LexPair, b: LexPair): boolean {
  for (const p of [a, b]) {
    if (p === null || typeof p !== 'object') throw new InvalidArgumentError('a LexPair is { value, tiebreaker }');
    checkNat(p.value);
    checkNat(p.tiebreaker);
  }
  return a.value < b.value || (a.value === b.value && a.tiebreaker <= b.tiebreaker);
}

function checkNat(v: bigint): void {
  if (typeof v !== 'bigint' || v < 0n) throw new InvalidArgumentError('lattice values are non-negative bigints');
}

function checkCounter(other: unknown): void {
  if (!(other instanceof PNCounter)) throw new InvalidArgumentError(`expected a PNCounter, got ${describeValue(other)}`);
}
