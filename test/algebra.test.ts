/**
 * Algebra: what each class promises (scope, convergence, idempotence), how classes compose (the
 * whole 6×6 table from first principles, plus the upstream composition-fold regressions), the value
 * lattices (max, g-set, lexicographic pair, per-node PN counter) under fast-check, and the
 * `ctfs/properties` checkers against every built-in invariant and against deliberately broken ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AlgebraicClass,
  AlgebraicPropertyError,
  BoundedCounterState,
  BoundedGCounterInvariant,
  ConservationState,
  CoordinationScope,
  CtfsError,
  GCounterInvariant,
  GCounterState,
  GGraphInvariant,
  GraphState,
  I128_MAX,
  I128_MIN,
  LWWInvariant,
  LWWState,
  LexPairLattice,
  MaxInvariant,
  MaxLattice,
  MaxState,
  PNCounter,
  STATE_CELL_BYTES,
  TotalSupplyInvariant,
  U64_MAX,
  UniquenessInvariant,
  UniquenessState,
  assertAlgebraicClass,
  checkAlgebraicClass,
  composeAll,
  composeClasses,
  convergesWithoutCoordination,
  coordinationScope,
  fromHex,
  gSetLattice,
  isCoordinationFree,
  isIdempotent,
  toHex,
  u64le,
  type AlgebraReport,
  type AlgebraicProperty,
  type Invariant,
  type LexPair,
  type PropertyResult,
} from './helpers/lib.js';
import { expectError, expectInvalid } from './helpers/errors.js';

const RUNS = 150;

const { Commutative: C, CommutativeIdempotent: CI, Lattice: L, Group: G, BoundedCommutative: B, Ordered: O } = AlgebraicClass;
const CLASSES: readonly AlgebraicClass[] = [C, CI, L, G, B, O];
const NAME: Record<AlgebraicClass, string> = {
  [C]: 'Commutative',
  [CI]: 'CommutativeIdempotent',
  [L]: 'Lattice',
  [G]: 'Group',
  [B]: 'BoundedCommutative',
  [O]: 'Ordered',
};
const INVALID_CLASSES: readonly unknown[] = ['0', 6, -1, 1.5];
const asClass = (v: unknown): AlgebraicClass => v as AlgebraicClass;

// =============================================================================================
// 1. Classes

describe('class properties', () => {
  const TABLE: readonly [AlgebraicClass, CoordinationScope, boolean, boolean, boolean][] = [
    // class, scope, convergesWithoutCoordination, isIdempotent, isCoordinationFree
    [C, CoordinationScope.None, true, false, true],
    [CI, CoordinationScope.None, true, true, true],
    [L, CoordinationScope.None, true, true, true],
    [G, CoordinationScope.None, true, false, true],
    [B, CoordinationScope.Scoped, false, false, false],
    [O, CoordinationScope.Global, false, false, false],
  ];

  it('the table covers every class exactly once, with the wire numbering', () => {
    expect(TABLE.map((r) => r[0])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Object.values(AlgebraicClass).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(CoordinationScope).toEqual({ None: 0, Scoped: 1, Global: 2 });
  });

  for (const [cls, scope, converges, idempotent, free] of TABLE) {
    it(`${NAME[cls]}: scope ${scope}, converges ${converges}, idempotent ${idempotent}, coordination-free ${free}`, () => {
      expect(coordinationScope(cls)).toBe(scope);
      expect(convergesWithoutCoordination(cls)).toBe(converges);
      expect(isIdempotent(cls)).toBe(idempotent);
      expect(isCoordinationFree(cls)).toBe(free);
    });
  }

  it('coordinationScope, convergesWithoutCoordination and isIdempotent refuse non-classes', () => {
    for (const bad of INVALID_CLASSES) {
      expectInvalid(() => coordinationScope(asClass(bad)));
      expectInvalid(() => convergesWithoutCoordination(asClass(bad)));
      expectInvalid(() => isIdempotent(asClass(bad)));
    }
    for (const bad of [undefined, null, NaN, Infinity, 2n]) {
      expectInvalid(() => coordinationScope(asClass(bad)));
      expectInvalid(() => isIdempotent(asClass(bad)));
    }
  });

  it('isCoordinationFree refuses non-classes too (it must not call -1, 1.5 or "0" coordination-free)', () => {
    for (const bad of INVALID_CLASSES) expectInvalid(() => isCoordinationFree(asClass(bad)));
  });
});

// =============================================================================================
// 2. Composition

describe('composeClasses', () => {
  // From first principles: a composition keeps the properties both members have.
  const COMMUTES = 'commutes';
  const IDEMPOTENT = 'idempotent';
  const JOIN = 'join';
  const INVERSES = 'inverses';
  const PROPS: Partial<Record<AlgebraicClass, ReadonlySet<string>>> = {
    [C]: new Set([COMMUTES]),
    [CI]: new Set([COMMUTES, IDEMPOTENT]),
    [L]: new Set([COMMUTES, IDEMPOTENT, JOIN]),
    [G]: new Set([COMMUTES, INVERSES]),
  };
  const classOfProps = (props: ReadonlySet<string>): AlgebraicClass => {
    for (const cls of [C, CI, L, G]) {
      const p = PROPS[cls]!;
      if (p.size === props.size && [...p].every((x) => props.has(x))) return cls;
    }
    throw new Error(`no class has exactly ${[...props].join(',')}`);
  };
  const expected = (a: AlgebraicClass, b: AlgebraicClass): AlgebraicClass => {
    if (a === O || b === O) return O;
    if (a === B || b === B) return B;
    const pa = PROPS[a]!;
    const pb = PROPS[b]!;
    return classOfProps(new Set([...pa].filter((x) => pb.has(x))));
  };

  // The same table, written out entry by entry (rows a, columns b: C CI L G B O).
  const WRITTEN: readonly (readonly AlgebraicClass[])[] = [
    /* C  */ [C, C, C, C, B, O],
    /* CI */ [C, CI, CI, C, B, O],
    /* L  */ [C, CI, L, C, B, O],
    /* G  */ [C, C, C, G, B, O],
    /* B  */ [B, B, B, B, B, O],
    /* O  */ [O, O, O, O, O, O],
  ];

  it('the written table agrees with the common-properties rule', () => {
    for (const a of CLASSES) for (const b of CLASSES) expect(WRITTEN[a]![b], `${NAME[a]} ⊕ ${NAME[b]}`).toBe(expected(a, b));
  });

  for (const a of CLASSES) {
    it(`row ${NAME[a]}: every entry`, () => {
      for (const b of CLASSES) {
        expect(composeClasses(a, b), `${NAME[a]} ⊕ ${NAME[b]}`).toBe(WRITTEN[a]![b]);
      }
    });
  }

  it('is symmetric: a ⊕ b = b ⊕ a', () => {
    for (const a of CLASSES) for (const b of CLASSES) expect(composeClasses(a, b)).toBe(composeClasses(b, a));
  });

  it('is associative over all 216 triples', () => {
    for (const a of CLASSES) {
      for (const b of CLASSES) {
        for (const c of CLASSES) {
          expect(composeClasses(composeClasses(a, b), c), `${a},${b},${c}`).toBe(composeClasses(a, composeClasses(b, c)));
        }
      }
    }
  });

  it('is idempotent: a ⊕ a = a', () => {
    for (const a of CLASSES) expect(composeClasses(a, a)).toBe(a);
  });

  it('a composition is as weak as its weakest member: promises are the conjunction, scope the maximum', () => {
    for (const a of CLASSES) {
      for (const b of CLASSES) {
        const ab = composeClasses(a, b);
        expect(isIdempotent(ab)).toBe(isIdempotent(a) && isIdempotent(b));
        expect(convergesWithoutCoordination(ab)).toBe(convergesWithoutCoordination(a) && convergesWithoutCoordination(b));
        expect(isCoordinationFree(ab)).toBe(isCoordinationFree(a) && isCoordinationFree(b));
        expect(coordinationScope(ab)).toBe(Math.max(coordinationScope(a), coordinationScope(b)));
      }
    }
  });

  describe('regressions against the upstream fold', () => {
    it('Commutative ⊕ Group = Commutative (upstream: Group, though commutative ops have no inverses)', () => {
      expect(composeClasses(C, G)).toBe(C);
      expect(composeClasses(G, C)).toBe(C);
    });

    it('Lattice ⊕ Group = Commutative (upstream: Group)', () => {
      expect(composeClasses(L, G)).toBe(C);
      expect(composeClasses(G, L)).toBe(C);
    });

    it('a pure-Lattice composition is Lattice (upstream started the fold at Commutative)', () => {
      expect(composeAll([L])).toBe(L);
      expect(composeAll([L, L])).toBe(L);
      expect(composeAll([L, L, L, L])).toBe(L);
      expect(composeAll([CI, CI, CI])).toBe(CI);
      expect(composeAll([G, G])).toBe(G);
    });
  });

  it('refuses non-classes on either side', () => {
    for (const bad of INVALID_CLASSES) {
      for (const good of CLASSES) {
        expectInvalid(() => composeClasses(asClass(bad), good));
        expectInvalid(() => composeClasses(good, asClass(bad)));
      }
    }
  });

  it('composeAll([]) and composeAll of a non-array are InvalidArgument', () => {
    expectInvalid(() => composeAll([]));
    expectInvalid(() => composeAll(undefined as unknown as AlgebraicClass[]));
    expectInvalid(() => composeAll(L as unknown as AlgebraicClass[]));
    expectInvalid(() => composeAll([L, asClass(7)]));
  });

  it('composeAll refuses a non-class even when it is the only element', () => {
    for (const bad of INVALID_CLASSES) expectInvalid(() => composeAll([asClass(bad)]));
  });

  it('composeAll over random arrays equals a left fold, and does not depend on the order', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CLASSES), { minLength: 1, maxLength: 12 }), fc.integer(), (classes, salt) => {
        let fold = classes[0]!;
        for (let i = 1; i < classes.length; i++) fold = composeClasses(fold, classes[i]!);
        expect(composeAll(classes)).toBe(fold);
        // rotate: same multiset, different order
        const k = Math.abs(salt) % classes.length;
        expect(composeAll([...classes.slice(k), ...classes.slice(0, k)])).toBe(fold);
        expect(composeAll([...classes].reverse())).toBe(fold);
      }),
      { numRuns: 300 },
    );
  });

  it('composeAll does not mutate its input', () => {
    const input = [L, G, CI];
    composeAll(input);
    expect(input).toEqual([L, G, CI]);
  });
});

// =============================================================================================
// 3. Lattices

/** join laws, bottom, and leq(a,b) ⇔ join(a,b) = b, with `eq` the value equality. */
function latticeLaws<T>(
  name: string,
  lat: { join(a: T, b: T): T; leq(a: T, b: T): boolean; readonly bottom: T },
  arb: fc.Arbitrary<T>,
  eq: (a: T, b: T) => boolean,
): void {
  describe(`${name}: join-semilattice laws`, () => {
    it('join is commutative', () => {
      fc.assert(fc.property(arb, arb, (a, b) => eq(lat.join(a, b), lat.join(b, a))), { numRuns: RUNS });
    });
    it('join is associative', () => {
      fc.assert(
        fc.property(arb, arb, arb, (a, b, c) => eq(lat.join(lat.join(a, b), c), lat.join(a, lat.join(b, c)))),
        { numRuns: RUNS },
      );
    });
    it('join is idempotent', () => {
      fc.assert(fc.property(arb, (a) => eq(lat.join(a, a), a)), { numRuns: RUNS });
    });
    it('bottom is the identity of join and below everything', () => {
      fc.assert(
        fc.property(arb, (a) => eq(lat.join(lat.bottom, a), a) && eq(lat.join(a, lat.bottom), a) && lat.leq(lat.bottom, a)),
        { numRuns: RUNS },
      );
    });
    it('leq(a, b) ⇔ join(a, b) = b; join is an upper bound', () => {
      fc.assert(
        fc.property(arb, arb, (a, b) => {
          const j = lat.join(a, b);
          expect(lat.leq(a, b)).toBe(eq(j, b));
          expect(lat.leq(a, j)).toBe(true);
          expect(lat.leq(b, j)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    });
    it('leq(a, b) holds sometimes and fails sometimes over the generated values (the law above is not vacuous)', () => {
      const samples = fc.sample(fc.tuple(arb, arb), { numRuns: 300, seed: 7 });
      const verdicts = new Set(samples.map(([a, b]) => lat.leq(a, b)));
      expect(verdicts).toEqual(new Set([true, false]));
    });
  });
}

latticeLaws('MaxLattice', MaxLattice, fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 1n << 130n })), (a, b) => a === b);

const setEq = (a: ReadonlySet<number>, b: ReadonlySet<number>): boolean => a.size === b.size && [...a].every((x) => b.has(x));
latticeLaws(
  'gSetLattice',
  gSetLattice<number>(),
  fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 8 }).map((xs) => new Set(xs) as ReadonlySet<number>),
  setEq,
);

const lexPairArb: fc.Arbitrary<LexPair> = fc.record({
  value: fc.oneof(fc.bigInt({ min: 0n, max: 4n }), fc.bigInt({ min: 0n, max: 1n << 70n })),
  tiebreaker: fc.bigInt({ min: 0n, max: 4n }),
});
latticeLaws('LexPairLattice', LexPairLattice, lexPairArb, (a, b) => a.value === b.value && a.tiebreaker === b.tiebreaker);

describe('MaxLattice', () => {
  it('joins to the max and orders by ≤', () => {
    expect(MaxLattice.join(3n, 9n)).toBe(9n);
    expect(MaxLattice.join(9n, 3n)).toBe(9n);
    expect(MaxLattice.leq(3n, 9n)).toBe(true);
    expect(MaxLattice.leq(9n, 3n)).toBe(false);
    expect(MaxLattice.bottom).toBe(0n);
  });

  it('rejects negative values (and non-bigints) with InvalidArgument', () => {
    expectInvalid(() => MaxLattice.join(-1n, 0n));
    expectInvalid(() => MaxLattice.join(5n, -1n));
    expectInvalid(() => MaxLattice.leq(-1n, 5n));
    expectInvalid(() => MaxLattice.leq(5n, -5n));
    expectInvalid(() => MaxLattice.join(1 as unknown as bigint, 2n));
  });
});

describe('gSetLattice', () => {
  it('join is union, does not mutate its inputs, and leq is inclusion', () => {
    const lat = gSetLattice<string>();
    const a = new Set(['x', 'y']);
    const b = new Set(['y', 'z']);
    const j = lat.join(a, b);
    expect([...j].sort()).toEqual(['x', 'y', 'z']);
    expect([...a]).toEqual(['x', 'y']);
    expect([...b]).toEqual(['y', 'z']);
    expect(lat.leq(a, j)).toBe(true);
    expect(lat.leq(a, b)).toBe(false);
    expect(lat.bottom.size).toBe(0);
  });
});

describe('LexPairLattice', () => {
  it('keeps the larger value; ties go to the larger tiebreaker', () => {
    expect(LexPairLattice.join({ value: 5n, tiebreaker: 0n }, { value: 4n, tiebreaker: 9n })).toEqual({ value: 5n, tiebreaker: 0n });
    expect(LexPairLattice.join({ value: 5n, tiebreaker: 1n }, { value: 5n, tiebreaker: 2n })).toEqual({ value: 5n, tiebreaker: 2n });
    expect(LexPairLattice.join({ value: 5n, tiebreaker: 2n }, { value: 5n, tiebreaker: 1n })).toEqual({ value: 5n, tiebreaker: 2n });
  });

  it('its bottom is below every pair it accepts: a negative field is refused or bottom is still the identity', () => {
    for (const p of [
      { value: -1n, tiebreaker: 0n },
      { value: 0n, tiebreaker: -1n },
    ]) {
      let joined: LexPair | undefined;
      try {
        joined = LexPairLattice.join(LexPairLattice.bottom, p);
      } catch (e) {
        expect(e).toBeInstanceOf(CtfsError);
        expect((e as CtfsError).code).toBe('InvalidArgument');
        continue;
      }
      expect(joined, `bottom ⊔ (${p.value}, ${p.tiebreaker})`).toEqual(p);
    }
  });
});

// --- PNCounter ---------------------------------------------------------------------------------

type Pairs = Map<string, [bigint, bigint]>;
interface PNSample {
  readonly counter: PNCounter;
  readonly model: Pairs;
}
const modelValue = (m: Pairs): bigint => [...m.values()].reduce((s, [p, n]) => s + p - n, 0n);
const modelJoin = (a: Pairs, b: Pairs): Pairs => {
  const out: Pairs = new Map([...a].map(([k, v]) => [k, [v[0], v[1]]]));
  for (const [k, [p, n]] of b) {
    const m = out.get(k) ?? [0n, 0n];
    out.set(k, [m[0] > p ? m[0] : p, m[1] > n ? m[1] : n]);
  }
  return out;
};
const modelLeq = (a: Pairs, b: Pairs): boolean =>
  [...a].every(([k, [p, n]]) => {
    const t = b.get(k) ?? [0n, 0n];
    return p <= t[0] && n <= t[1];
  });

const pnOp = fc.record({ node: fc.constantFrom('a', 'b', 'c'), dec: fc.boolean(), amount: fc.bigInt({ min: 1n, max: 1000n }) });
const pnArb: fc.Arbitrary<PNSample> = fc.array(pnOp, { maxLength: 8 }).map((ops) => {
  let counter = PNCounter.bottom;
  const model: Pairs = new Map();
  for (const { node, dec, amount } of ops) {
    counter = dec ? counter.decrement(node, amount) : counter.increment(node, amount);
    const m = model.get(node) ?? [0n, 0n];
    model.set(node, dec ? [m[0], m[1] + amount] : [m[0] + amount, m[1]]);
  }
  return { counter, model };
});

describe('PNCounter: join-semilattice laws', () => {
  it('join is commutative and matches the per-node max model', () => {
    fc.assert(
      fc.property(pnArb, pnArb, (a, b) => {
        const ab = a.counter.join(b.counter);
        const ba = b.counter.join(a.counter);
        expect(ab.equals(ba)).toBe(true);
        expect(ab.value).toBe(modelValue(modelJoin(a.model, b.model)));
        expect(ba.value).toBe(ab.value);
      }),
      { numRuns: RUNS },
    );
  });

  it('join is associative', () => {
    fc.assert(
      fc.property(pnArb, pnArb, pnArb, (a, b, c) => {
        const l = a.counter.join(b.counter).join(c.counter);
        const r = a.counter.join(b.counter.join(c.counter));
        expect(l.equals(r)).toBe(true);
        expect(l.value).toBe(r.value);
        expect(l.value).toBe(modelValue(modelJoin(modelJoin(a.model, b.model), c.model)));
      }),
      { numRuns: RUNS },
    );
  });

  it('join is idempotent', () => {
    fc.assert(
      fc.property(pnArb, (a) => {
        const aa = a.counter.join(a.counter);
        expect(aa.equals(a.counter)).toBe(true);
        expect(aa.value).toBe(a.counter.value);
        expect(a.counter.value).toBe(modelValue(a.model));
      }),
      { numRuns: RUNS },
    );
  });

  it('bottom is the identity and below everything', () => {
    fc.assert(
      fc.property(pnArb, (a) => {
        expect(PNCounter.bottom.join(a.counter).equals(a.counter)).toBe(true);
        expect(a.counter.join(PNCounter.bottom).equals(a.counter)).toBe(true);
        expect(PNCounter.bottom.join(a.counter).value).toBe(a.counter.value);
        expect(PNCounter.bottom.leq(a.counter)).toBe(true);
      }),
      { numRuns: RUNS },
    );
    expect(PNCounter.bottom.value).toBe(0n);
  });

  it('leq(a, b) ⇔ join(a, b) = b, and leq agrees with the pointwise model order', () => {
    let sawTrue = false;
    let sawFalse = false;
    fc.assert(
      fc.property(pnArb, pnArb, (a, b) => {
        const leq = a.counter.leq(b.counter);
        expect(leq).toBe(modelLeq(a.model, b.model));
        expect(leq).toBe(a.counter.join(b.counter).equals(b.counter));
        if (leq) sawTrue = true;
        else sawFalse = true;
      }),
      { numRuns: RUNS, seed: 11 },
    );
    expect(sawTrue && sawFalse).toBe(true);
  });
});

describe('PNCounter: replication', () => {
  it('per-node increments on different replicas all survive the join (A +10, B +5 → 15; upstream kept 10)', () => {
    const a = PNCounter.bottom.increment('A', 10n);
    const b = PNCounter.bottom.increment('B', 5n);
    expect(a.join(b).value).toBe(15n);
    expect(b.join(a).value).toBe(15n);
    expect(a.value).toBe(10n); // immutable
    expect(b.value).toBe(5n);
  });

  it('decrements subtract, per node, and the value may go negative', () => {
    const a = PNCounter.bottom.increment('A', 10n).decrement('A', 4n);
    const b = PNCounter.bottom.decrement('B', 3n);
    expect(a.value).toBe(6n);
    expect(b.value).toBe(-3n);
    expect(a.join(b).value).toBe(3n);
    expect(PNCounter.bottom.decrement('C', 7n).join(b).value).toBe(-10n);
  });

  it('re-joining a replica’s own older history does not double-count', () => {
    const a1 = PNCounter.bottom.increment('A', 10n);
    const a2 = a1.increment('A', 5n).decrement('A', 1n);
    expect(a1.join(a2).value).toBe(14n);
    expect(a2.join(a1).value).toBe(14n);
    expect(a1.leq(a2)).toBe(true);
    expect(a2.leq(a1)).toBe(false);
  });

  it('random operations on 3 replicas (own node each), with gossip, converge to Σinc − Σdec in any join order', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('op' as const), replica: fc.integer({ min: 0, max: 2 }), dec: fc.boolean(), amount: fc.bigInt({ min: 1n, max: 1n << 70n }) }),
      fc.record({ kind: fc.constant('merge' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }) }),
    );
    const PERMS = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ] as const;
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const replicas = [PNCounter.bottom, PNCounter.bottom, PNCounter.bottom];
        let expected = 0n;
        for (const s of steps) {
          if (s.kind === 'op') {
            const r = replicas[s.replica]!;
            replicas[s.replica] = s.dec ? r.decrement(`node-${s.replica}`, s.amount) : r.increment(`node-${s.replica}`, s.amount);
            expected += s.dec ? -s.amount : s.amount;
          } else {
            replicas[s.to] = replicas[s.to]!.join(replicas[s.from]!);
          }
        }
        const results = PERMS.map(([i, j, k]) => replicas[i]!.join(replicas[j]!).join(replicas[k]!));
        results.push(replicas[0]!.join(replicas[1]!.join(replicas[2]!)));
        results.push(replicas[2]!.join(replicas[2]!).join(replicas[0]!).join(replicas[1]!).join(replicas[0]!));
        for (const r of results) {
          expect(r.value).toBe(expected);
          expect(r.equals(results[0]!)).toBe(true);
        }
        // every replica is below the joined state
        for (const r of replicas) expect(r.leq(results[0]!)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses invalid node ids and amounts with InvalidArgument', () => {
    const c = PNCounter.bottom;
    for (const node of ['', 5, undefined, null, {}] as unknown[]) {
      expectInvalid(() => c.increment(node as string, 1n));
      expectInvalid(() => c.decrement(node as string, 1n));
    }
    for (const amount of [0n, -1n, 1, 1.5, '1', undefined] as unknown[]) {
      expectInvalid(() => c.increment('A', amount as bigint));
      expectInvalid(() => c.decrement('A', amount as bigint));
    }
    expect(c.value).toBe(0n);
  });
});

// =============================================================================================
// 4. Property checkers

const PROMISED: Record<AlgebraicClass, readonly AlgebraicProperty[]> = {
  [C]: ['rejections-leave-state', 'commutativity', 'convergence'],
  [CI]: ['rejections-leave-state', 'commutativity', 'convergence', 'idempotence'],
  [L]: ['rejections-leave-state', 'commutativity', 'convergence', 'idempotence'],
  [G]: ['rejections-leave-state', 'commutativity', 'convergence'],
  [B]: ['rejections-leave-state', 'commutativity', 'convergence'],
  [O]: ['rejections-leave-state'],
};

const propertiesOf = (report: AlgebraReport): AlgebraicProperty[] => report.results.map((r) => r.property).sort();
const promisedBy = (cls: AlgebraicClass): AlgebraicProperty[] => [...PROMISED[cls]].sort();

function resultOf(report: AlgebraReport, property: AlgebraicProperty): PropertyResult {
  const r = report.results.find((x) => x.property === property);
  if (r === undefined) throw new Error(`no ${property} result in ${JSON.stringify(report.results.map((x) => x.property))}`);
  return r;
}

/** Expects the report to hold, naming the failures otherwise. */
function expectHolds(report: AlgebraReport, cls: AlgebraicClass): void {
  const failures = report.results.filter((r) => !r.holds).map((r) => `${r.property}: ${r.message} ${JSON.stringify(r.counterexample)}`);
  expect(failures).toEqual([]);
  expect(report.holds).toBe(true);
  expect(report.algebraicClass).toBe(cls);
  expect(propertiesOf(report)).toEqual(promisedBy(cls));
}

interface Replayed {
  readonly bytes: string;
  readonly accepted: readonly boolean[];
}
/** Applies hex payloads in `order` to a copy of the hex state. */
function replay(inv: Invariant, stateHex: string, payloadHexes: readonly string[], order: readonly number[]): Replayed {
  const cell = fromHex(stateHex);
  const accepted = payloadHexes.map(() => false);
  for (const i of order) accepted[i] = inv.apply(fromHex(payloadHexes[i]!), cell) === 0;
  return { bytes: toHex(cell), accepted };
}
const sameReplay = (a: Replayed, b: Replayed): boolean => a.bytes === b.bytes && a.accepted.every((x, i) => x === b.accepted[i]);
const isHex = (v: unknown): v is string => typeof v === 'string' && /^([0-9a-f]{2})*$/.test(v);

/** A commutativity counterexample is [state, a, b] in hex; checks it really breaks the promise. */
function expectCommutativityCounterexample(inv: Invariant, r: PropertyResult, bounded = false): void {
  expect(r.holds).toBe(false);
  const ce = r.counterexample as unknown[];
  expect(Array.isArray(ce) && ce.length === 3 && ce.every(isHex)).toBe(true);
  const [s, a, b] = ce as [string, string, string];
  const ab = replay(inv, s, [a, b], [0, 1]);
  const ba = replay(inv, s, [a, b], [1, 0]);
  if (bounded) expect(ab.accepted.every(Boolean) && ba.accepted.every(Boolean) && ab.bytes !== ba.bytes).toBe(true);
  else expect(sameReplay(ab, ba)).toBe(false);
}

/** A convergence counterexample is [state, [payloads, order]]; checks the two orders differ. */
function expectConvergenceCounterexample(inv: Invariant, r: PropertyResult): void {
  expect(r.holds).toBe(false);
  const ce = r.counterexample as [unknown, [unknown, unknown]];
  expect(isHex(ce[0])).toBe(true);
  const [payloads, order] = ce[1] as [string[], number[]];
  expect(payloads.every(isHex)).toBe(true);
  expect([...order].sort((x, y) => x - y)).toEqual(payloads.map((_, i) => i));
  const forward = replay(
    inv,
    ce[0] as string,
    payloads,
    payloads.map((_, i) => i),
  );
  const shuffled = replay(inv, ce[0] as string, payloads, order);
  expect(sameReplay(forward, shuffled)).toBe(false);
}

// --- payload and state arbitraries for the built-ins ------------------------------------------

const appData = fc.uint8Array({ maxLength: 4 });
const u64Arb = fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: 0n, max: U64_MAX }), fc.bigInt({ min: U64_MAX - 100n, max: U64_MAX }));
const withApp = (p: Uint8Array, extra: Uint8Array): Uint8Array => {
  const out = new Uint8Array(p.length + extra.length);
  out.set(p);
  out.set(extra, p.length);
  return out;
};
/** A u64 payload, sometimes with trailing application bytes, sometimes malformed (too short). */
const u64Payload = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(u64Arb, appData).map(([v, extra]) => withApp(u64le(v), extra)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 7 }) },
);

describe('checkAlgebraicClass: every built-in invariant keeps its promises', () => {
  it('TotalSupplyInvariant (BoundedCommutative) over bounded states, deltas that hit the bounds and i128 edges', () => {
    const bounded = fc
      .tuple(fc.bigInt({ min: -1000n, max: 0n }), fc.bigInt({ min: 0n, max: 1000n }))
      .chain(([lo, hi]) => fc.bigInt({ min: lo, max: hi }).map((b) => new ConservationState(b, lo, hi).toBytes()));
    const edges = fc.constantFrom(
      new ConservationState(I128_MAX - 5n).toBytes(),
      new ConservationState(I128_MIN + 5n).toBytes(),
      new ConservationState(0n).toBytes(),
    );
    const delta = fc.oneof(
      { weight: 6, arbitrary: fc.bigInt({ min: -700n, max: 700n }) },
      { weight: 1, arbitrary: fc.bigInt({ min: I128_MIN, max: I128_MAX }) },
      { weight: 1, arbitrary: fc.constantFrom(I128_MAX, I128_MIN, 1n, -1n) },
    );
    const payload = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(delta, appData).map(([d, extra]) => TotalSupplyInvariant.payload(d, extra)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 15 }) },
    );
    const inv = new TotalSupplyInvariant();
    expectHolds(checkAlgebraicClass(inv, { payload, state: fc.oneof(bounded, edges), numRuns: RUNS }), B);
  });

  it('MaxInvariant (Lattice)', () => {
    const inv = new MaxInvariant();
    const state = u64Arb.map((v) => new MaxState(v).toBytes());
    expectHolds(checkAlgebraicClass(inv, { payload: u64Payload, state, numRuns: RUNS }), L);
  });

  it('GCounterInvariant (Commutative), saturation included', () => {
    const inv = new GCounterInvariant();
    const state = u64Arb.map((v) => new GCounterState(v).toBytes());
    expectHolds(checkAlgebraicClass(inv, { payload: u64Payload, state, numRuns: RUNS }), C);
  });

  it('BoundedGCounterInvariant (BoundedCommutative) over states with small and huge capacities', () => {
    const inv = new BoundedGCounterInvariant();
    const state = fc
      .oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.constant(U64_MAX))
      .chain((cap) => fc.bigInt({ min: 0n, max: cap }).map((v) => new BoundedCounterState(v, cap).toBytes()));
    const payload = fc.oneof(
      { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 600n }).map((v) => BoundedGCounterInvariant.payload(v)) },
      { weight: 2, arbitrary: u64Payload },
    );
    expectHolds(checkAlgebraicClass(inv, { payload, state, numRuns: RUNS }), B);
  });

  it('LWWInvariant (Lattice), with (timestamp, node) ties on different values', () => {
    const inv = new LWWInvariant();
    const value = fc.constantFrom(0, 1, 2, 255).map((b) => new Uint8Array(32).fill(b));
    const write = fc
      .tuple(value, fc.bigInt({ min: 0n, max: 3n }), fc.bigInt({ min: 0n, max: 2n }), appData)
      .map(([v, ts, node, extra]) => withApp(LWWInvariant.payload(v, ts, node), extra));
    const payload = fc.oneof(
      { weight: 6, arbitrary: write },
      { weight: 2, arbitrary: fc.uint8Array({ minLength: 48, maxLength: 52 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 47 }) },
    );
    const state = fc.oneof(
      fc.constant(new LWWState().toBytes()),
      fc.tuple(value, fc.bigInt({ min: 0n, max: 3n }), fc.bigInt({ min: 0n, max: 2n })).map(([v, ts, n]) => new LWWState(v, ts, n).toBytes()),
    );
    expectHolds(checkAlgebraicClass(inv, { payload, state, numRuns: RUNS }), L);
  });

  it('UniquenessInvariant (BoundedCommutative), out-of-range elements included', () => {
    const inv = new UniquenessInvariant();
    const element = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 15 }) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 511 }) },
      { weight: 2, arbitrary: fc.integer({ min: 512, max: 0xffff }) },
      { weight: 1, arbitrary: fc.constantFrom(42, 554, 511, 512, 1023) },
    );
    const payload = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(element, appData).map(([e, extra]) => withApp(new Uint8Array([e & 0xff, e >>> 8]), extra)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1 }) },
    );
    const state = fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 6 }).map((es) => new UniquenessState(es).toBytes());
    expectHolds(checkAlgebraicClass(inv, { payload, state, numRuns: RUNS }), B);
  });

  const vertexPayload = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 0, max: 11 }), fc.integer({ min: 0, max: 11 }), appData).map(([f, t, x]) => withApp(new Uint8Array([f, t]), x)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 2, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1 }) },
  );

  it('GGraphInvariant (Lattice) on GraphState(8), vertices ≥ 8 in the arbitrary', () => {
    const inv = new GGraphInvariant();
    expectHolds(checkAlgebraicClass(inv, { payload: vertexPayload, state: new GraphState(8).toBytes(), numRuns: RUNS }), L);
    expectHolds(
      checkAlgebraicClass(inv, { payload: vertexPayload, state: new GraphState(8, { directed: true, selfLoops: true }).toBytes(), numRuns: RUNS }),
      L,
    );
  });

  it('GGraphInvariant (Lattice) over arbitrary adjacency, vertex counts up to 20, unknown flags and stray degree limits', () => {
    const inv = new GGraphInvariant();
    const state = fc
      .tuple(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 20 }),
        fc.constantFrom(0, 0, 0, 0, 1, 2),
        fc.constantFrom(0, 0, 0, 0, 1, 2, 3, 4, 8),
      )
      .map(([adj, n, degree, flags]) => {
        const s = new Uint8Array(STATE_CELL_BYTES);
        s.set(adj);
        s[32] = n;
        s[33] = degree;
        s[35] = flags;
        return s;
      });
    expectHolds(checkAlgebraicClass(inv, { payload: vertexPayload, state, numRuns: RUNS }), L);
  });

  it('GGraphInvariant({ degreeLimits: true }) (BoundedCommutative) on degree-limited states', () => {
    const inv = new GGraphInvariant({ degreeLimits: true });
    const state = fc.constantFrom(
      new GraphState(8, { maxOutDegree: 2, maxInDegree: 2 }).toBytes(),
      new GraphState(8, { directed: true, maxOutDegree: 1 }).toBytes(),
      new GraphState(6, { directed: true, selfLoops: true, maxInDegree: 2 }).toBytes(),
    );
    expectHolds(checkAlgebraicClass(inv, { payload: vertexPayload, state, numRuns: RUNS }), B);
  });

  it('defaults: initialState() when there is one, else 64 zero bytes', () => {
    // TotalSupply's initial state accepts small deltas; the check runs against it.
    const supply = checkAlgebraicClass(new TotalSupplyInvariant(), {
      payload: fc.bigInt({ min: -5n, max: 5n }).map((d) => TotalSupplyInvariant.payload(d)),
      numRuns: 50,
    });
    expectHolds(supply, B);
    // GGraph on zeros: vertex count 0 refuses every edge, so nothing is ever accepted and the
    // check would prove nothing: it is reported as failing (vacuous), not as passing.
    const vacuous = checkAlgebraicClass(new GGraphInvariant(), { payload: vertexPayload, numRuns: 50 });
    expect(vacuous.holds).toBe(false);
    expect(vacuous.results.some((r) => !r.holds && /vacuous/.test(r.message ?? ''))).toBe(true);
  });

  it('refuses a fixed start state that is not 64 bytes', () => {
    expectInvalid(() => checkAlgebraicClass(new MaxInvariant(), { payload: fc.constant(new Uint8Array(8)), state: new Uint8Array(10) }));
  });
});

// --- custom invariants -------------------------------------------------------------------------

const byte = fc.integer({ min: 0, max: 255 }).map((b) => new Uint8Array([b]));

/** Accepts everything, changes nothing: lawful for every class. */
class NoOp implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(): number {
    return 0;
  }
}

/** state[0] := payload[0]: the last write wins, by arrival order. */
class Overwrite implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array, s: Uint8Array): number {
    if (p.length < 1) return 4;
    s[0] = p[0]!;
    return 0;
  }
}

/** state[0] += payload[0] mod 256: a group (commutative, inverses), not idempotent. */
class AddMod256 implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array, s: Uint8Array): number {
    if (p.length < 1) return 4;
    s[0] = (s[0]! + p[0]!) & 0xff;
    return 0;
  }
}

/** state[0] |= payload[0]: a set of 8 bits (commutative, idempotent). */
class OrBits implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array, s: Uint8Array): number {
    if (p.length < 1) return 4;
    s[0] = s[0]! | p[0]!;
    return 0;
  }
}

/** state[0] += payload[0] while the sum stays ≤ 10, else Overflow: acceptance depends on the state. */
class CappedCounter implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array, s: Uint8Array): number {
    if (p.length < 1) return 4;
    const next = s[0]! + p[0]!;
    if (next > 10) return 1;
    s[0] = next;
    return 0;
  }
}

/** Writes state[63] before deciding, then rejects odd payloads: a rejection leaves a partial write. */
class Scribbler implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array, s: Uint8Array): number {
    s[63] = 0xaa;
    return (p[0] ?? 0) & 1 ? 3 : 0;
  }
}

/** Throws on payload bytes above 200. */
class Thrower implements Invariant {
  constructor(readonly algebraicClass: AlgebraicClass) {}
  apply(p: Uint8Array): number {
    if ((p[0] ?? 0) > 200) throw new RangeError('boom');
    return 0;
  }
}

describe('checkAlgebraicClass: lists exactly what each class promises', () => {
  for (const cls of CLASSES) {
    it(`${NAME[cls]}: ${PROMISED[cls].join(', ')}`, () => {
      const report = checkAlgebraicClass(new NoOp(cls), { payload: byte, numRuns: 20 });
      expectHolds(report, cls);
      expect(report.results.every((r) => r.counterexample === undefined)).toBe(true);
    });
  }

  it('idempotence is checked only for CommutativeIdempotent and Lattice; only rejections-leave-state for Ordered', () => {
    const idem = CLASSES.filter((cls) => propertiesOf(checkAlgebraicClass(new NoOp(cls), { payload: byte, numRuns: 5 })).includes('idempotence'));
    expect(idem).toEqual([CI, L]);
    expect(propertiesOf(checkAlgebraicClass(new NoOp(O), { payload: byte, numRuns: 5 }))).toEqual(['rejections-leave-state']);
  });

  it('honest custom invariants hold: a group labelled Group, a bit-set labelled CommutativeIdempotent, a bound labelled BoundedCommutative', () => {
    expectHolds(checkAlgebraicClass(new AddMod256(G), { payload: byte, numRuns: RUNS }), G);
    expectHolds(checkAlgebraicClass(new OrBits(CI), { payload: byte, numRuns: RUNS }), CI);
    expectHolds(checkAlgebraicClass(new OrBits(L), { payload: byte, numRuns: RUNS }), L);
    const small = fc.integer({ min: 0, max: 8 }).map((b) => new Uint8Array([b]));
    expectHolds(checkAlgebraicClass(new CappedCounter(B), { payload: small, numRuns: RUNS }), B);
  });

  it('an order-dependent invariant labelled Ordered holds: Ordered promises nothing about order', () => {
    expectHolds(checkAlgebraicClass(new Overwrite(O), { payload: byte, numRuns: RUNS }), O);
  });
});

describe('checkAlgebraicClass: broken invariants are caught with a concrete counterexample', () => {
  it('non-commutative labelled Commutative: commutativity and convergence fail', () => {
    const inv = new Overwrite(C);
    const report = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS });
    expect(report.holds).toBe(false);
    expect(resultOf(report, 'rejections-leave-state').holds).toBe(true);
    const comm = resultOf(report, 'commutativity');
    expectCommutativityCounterexample(inv, comm);
    const [, a, b] = comm.counterexample as [string, string, string];
    expect(a).not.toBe(b);
    expectConvergenceCounterexample(inv, resultOf(report, 'convergence'));
  });

  it('non-idempotent labelled Lattice: only idempotence fails', () => {
    const inv = new AddMod256(L);
    const report = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS });
    expect(report.holds).toBe(false);
    expect(resultOf(report, 'rejections-leave-state').holds).toBe(true);
    expect(resultOf(report, 'commutativity').holds).toBe(true);
    expect(resultOf(report, 'convergence').holds).toBe(true);
    const idem = resultOf(report, 'idempotence');
    expect(idem.holds).toBe(false);
    const ce = idem.counterexample as [string, string];
    expect(ce.length === 2 && ce.every(isHex)).toBe(true);
    const once = replay(inv, ce[0], [ce[1]], [0]);
    const twice = replay(inv, ce[0], [ce[1], ce[1]], [0, 1]);
    expect(once.bytes).not.toBe(twice.bytes);
    // the same invariant, honestly labelled Group, holds
    expectHolds(checkAlgebraicClass(new AddMod256(G), { payload: byte, numRuns: RUNS }), G);
  });

  it('acceptance depending on a bound, labelled Commutative: commutativity and convergence fail', () => {
    const inv = new CappedCounter(C);
    const payload = fc.integer({ min: 0, max: 10 }).map((b) => new Uint8Array([b]));
    const report = checkAlgebraicClass(inv, { payload, numRuns: RUNS });
    expect(report.holds).toBe(false);
    const comm = resultOf(report, 'commutativity');
    expectCommutativityCounterexample(inv, comm);
    // the orders disagree on what was accepted: one of the two is refused somewhere
    const [s, a, b] = comm.counterexample as [string, string, string];
    const ab = replay(inv, s, [a, b], [0, 1]);
    const ba = replay(inv, s, [a, b], [1, 0]);
    expect(ab.accepted).not.toEqual(ba.accepted);
    expectConvergenceCounterexample(inv, resultOf(report, 'convergence'));
  });

  it('reject-on-duplicate labelled CommutativeIdempotent (upstream Uniqueness) is caught: bytes converge, accepted sets do not', () => {
    const uniq = new UniquenessInvariant();
    const inv: Invariant = { algebraicClass: CI, apply: (p, s) => uniq.apply(p, s) };
    const payload = fc.integer({ min: 0, max: 3 }).map((e) => UniquenessInvariant.payload(e));
    const report = checkAlgebraicClass(inv, { payload, numRuns: RUNS });
    expect(report.holds).toBe(false);
    const comm = resultOf(report, 'commutativity');
    expectCommutativityCounterexample(inv, comm);
    const [s, a, b] = comm.counterexample as [string, string, string];
    expect(a).toBe(b); // the only way two claims disagree: the same element twice
    const ab = replay(inv, s, [a, b], [0, 1]);
    const ba = replay(inv, s, [a, b], [1, 0]);
    expect(ab.bytes).toBe(ba.bytes);
    expect(ab.accepted).not.toEqual(ba.accepted);
    expectConvergenceCounterexample(inv, resultOf(report, 'convergence'));
    expect(resultOf(report, 'idempotence').holds).toBe(false);
  });

  it('a bounded invariant whose accepted-everywhere outcome depends on order is caught even as BoundedCommutative', () => {
    // Overwrite never rejects, so "every payload accepted in both orders" always holds and bytes must agree.
    const inv = new Overwrite(B);
    const report = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS });
    expect(report.holds).toBe(false);
    expectCommutativityCounterexample(inv, resultOf(report, 'commutativity'), true);
  });

  for (const cls of CLASSES) {
    it(`a scribble before rejecting is caught by rejections-leave-state (${NAME[cls]})`, () => {
      const inv = new Scribbler(cls);
      const report = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS });
      expect(report.holds).toBe(false);
      expect(propertiesOf(report)).toEqual(promisedBy(cls));
      const r = resultOf(report, 'rejections-leave-state');
      expect(r.holds).toBe(false);
      expect(r.message).toMatch(/changed the state/);
      const [stateHex, payloads] = r.counterexample as [string, string[]];
      expect(isHex(stateHex)).toBe(true);
      // replay: some rejection changes the bytes
      const cell = fromHex(stateHex);
      let caught = false;
      for (const p of payloads) {
        const before = toHex(cell);
        if (inv.apply(fromHex(p), cell) !== 0 && toHex(cell) !== before) caught = true;
      }
      expect(caught).toBe(true);
    });
  }

  it('an invariant that throws is caught by every property, never thrown out of the checker', () => {
    for (const cls of CLASSES) {
      const inv = new Thrower(cls);
      const report = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS });
      expect(report.holds).toBe(false);
      expect(propertiesOf(report)).toEqual(promisedBy(cls));
      for (const r of report.results) {
        expect(r.holds, `${NAME[cls]} ${r.property}`).toBe(false);
        expect(r.message).toMatch(/apply threw/);
        expect(r.message).toMatch(/boom/);
        expect(JSON.stringify(r.counterexample)).toMatch(/"(c9|[d-f][0-9a-f])"/); // a byte > 200
      }
    }
  });
});

describe('assertAlgebraicClass', () => {
  it('throws AlgebraicPropertyError (AlgebraicPropertyViolated) carrying the counterexample', () => {
    const inv = new Overwrite(C);
    expectError(() => assertAlgebraicClass(inv, { payload: byte, numRuns: RUNS, seed: 5 }), AlgebraicPropertyError, 'AlgebraicPropertyViolated');
    let caught: unknown;
    try {
      assertAlgebraicClass(inv, { payload: byte, numRuns: RUNS, seed: 5 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AlgebraicPropertyError);
    const err = caught as AlgebraicPropertyError;
    const firstFailure = checkAlgebraicClass(inv, { payload: byte, numRuns: RUNS, seed: 5 }).results.find((r) => !r.holds)!;
    expect(firstFailure).toBeDefined();
    expect(err.counterexample).toEqual(firstFailure.counterexample);
    expect(err.counterexample).toBeDefined();
    expect(err.message).toMatch(new RegExp(`breaks ${firstFailure.property}`));
    expect(err.message).toMatch(/Overwrite/);
    expectCommutativityCounterexample(inv, { property: 'commutativity', holds: false, counterexample: err.counterexample });
  });

  it('returns the report when every property holds', () => {
    const inv = new MaxInvariant();
    const report = assertAlgebraicClass(inv, { payload: u64Payload, numRuns: 50, seed: 3 });
    expect(report.holds).toBe(true);
    expect(report.algebraicClass).toBe(L);
    expect(report).toEqual(checkAlgebraicClass(inv, { payload: u64Payload, numRuns: 50, seed: 3 }));
    expect(propertiesOf(report)).toEqual(promisedBy(L));
  });

  it('throws for the idempotence failure of a mislabelled Lattice too', () => {
    let caught: unknown;
    try {
      assertAlgebraicClass(new AddMod256(L), { payload: byte, numRuns: RUNS });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AlgebraicPropertyError);
    expect((caught as AlgebraicPropertyError).message).toMatch(/idempotence/);
    expect((caught as AlgebraicPropertyError).counterexample).toBeDefined();
  });
});

describe('seeds', () => {
  // Without shrinking, the counterexample is the first failing random input: it depends on the seed.
  const rawPayload = fc.noShrink(fc.uint8Array({ minLength: 8, maxLength: 8 }));

  it('a fixed seed reproduces the same counterexample', () => {
    const inv = new Overwrite(C);
    const one = checkAlgebraicClass(inv, { payload: rawPayload, numRuns: RUNS, seed: 424242 });
    const two = checkAlgebraicClass(inv, { payload: rawPayload, numRuns: RUNS, seed: 424242 });
    expect(one.holds).toBe(false);
    expect(resultOf(one, 'commutativity').counterexample).toBeDefined();
    expect(two).toEqual(one);
    // with shrinking too
    const s1 = checkAlgebraicClass(new CappedCounter(C), { payload: byte, numRuns: RUNS, seed: 99 });
    const s2 = checkAlgebraicClass(new CappedCounter(C), { payload: byte, numRuns: RUNS, seed: 99 });
    expect(s2).toEqual(s1);
  });

  it('the seed is honoured: different seeds find different raw counterexamples', () => {
    const inv = new Overwrite(C);
    const one = checkAlgebraicClass(inv, { payload: rawPayload, numRuns: RUNS, seed: 1 });
    const two = checkAlgebraicClass(inv, { payload: rawPayload, numRuns: RUNS, seed: 2 });
    expect(resultOf(one, 'commutativity').counterexample).not.toEqual(resultOf(two, 'commutativity').counterexample);
  });
});

describe('checkAlgebraicClass / assertAlgebraicClass: argument checks', () => {
  it('missing options.payload is InvalidArgument', () => {
    const inv = new MaxInvariant();
    for (const fn of [checkAlgebraicClass, assertAlgebraicClass]) {
      expectInvalid(() => fn(inv, {} as unknown as { payload: fc.Arbitrary<Uint8Array> }));
      expectInvalid(() => fn(inv, undefined as unknown as { payload: fc.Arbitrary<Uint8Array> }));
    }
  });

  it('a non-invariant is InvalidArgument', () => {
    for (const fn of [checkAlgebraicClass, assertAlgebraicClass]) {
      for (const bad of [null, undefined, 42, 'inv', {}, { algebraicClass: L }, { algebraicClass: L, apply: 1 }] as unknown[]) {
        expectInvalid(() => fn(bad as Invariant, { payload: byte, numRuns: 5 }));
      }
    }
  });

  it('an invariant with a class outside 0..5 is InvalidArgument', () => {
    for (const cls of [6, -1, '2', undefined] as unknown[]) {
      expectInvalid(() => checkAlgebraicClass({ algebraicClass: cls as AlgebraicClass, apply: () => 0 }, { payload: byte, numRuns: 5 }));
    }
  });
});
