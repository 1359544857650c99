/**
 * Property tests: every kernel kind against a reference model over random fact DAGs with random
 * rejections; TotalSupply commutativity (upstream proptest_commutativity); convergence of replicas
 * fed the same facts in different causal orders (upstream distributed_convergence).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  CausalMode,
  EscalatingKernel,
  I128_MAX,
  I128_MIN,
  InvariantCode,
  Kernel,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  STATE_CELL_BYTES,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  factId,
  i128le,
  u64le,
} from './helpers/lib.js';
import {
  KERNEL_KINDS,
  NEIGHBOUR_TENANT,
  SINGLE_KINDS,
  balanceOf,
  delta,
  hashId,
  hex,
  makeSubject,
  prng,
  randomDag,
  randomTopologicalOrder,
  shuffled,
  singleKernel,
  snapshot,
  supplyCell,
  totalSupply,
  type Subject,
} from './helpers/kernels.js';

// ---------------------------------------------------------------------------------------------
// Reference model

const MIN = 0n;
const MAX = 1000n;

/** The admission rules, written from the spec, in the documented order of checks. */
class Model {
  readonly admitted = new Set<string>();
  constructor(
    public balance: bigint,
    readonly capacity: number,
  ) {}

  admit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
    if (id.length !== 32) return AdmitCode.MalformedFact;
    if (payload.length > MAX_PAYLOAD_BYTES) return AdmitCode.PayloadTooLarge;
    if (deps.length > MAX_DEPS) return AdmitCode.MalformedFact;
    for (const d of deps) if (d.length !== 32) return AdmitCode.MalformedFact;
    if (this.admitted.has(hex(id))) return AdmitCode.DuplicateFact;
    for (const d of deps) if (!this.admitted.has(hex(d))) return AdmitCode.CausalityViolation;
    if (this.admitted.size >= this.capacity) return AdmitCode.CausalHorizonExceeded;
    if (payload.length < 16) return AdmitCode.MalformedFact;
    const nb = this.balance + balanceOf(payload.subarray(0, 16));
    if (nb < MIN || nb > MAX) return AdmitCode.InvariantViolation;
    this.balance = nb;
    this.admitted.add(hex(id));
    return AdmitCode.Ok;
  }
}

// ---------------------------------------------------------------------------------------------
// Operations

type DepSpec =
  | { readonly t: 'earlier'; readonly i: number } // an id issued by an earlier op (admitted or not)
  | { readonly t: 'warm'; readonly i: number } // a warm-up fact (admitted)
  | { readonly t: 'phantom'; readonly i: number } // never admitted anywhere
  | { readonly t: 'neighbour'; readonly i: number } // admitted only in the neighbour tenant
  | { readonly t: 'malformed'; readonly len: number };

type PayloadSpec =
  | { readonly t: 'delta'; readonly v: number }
  | { readonly t: 'nonce'; readonly v: number; readonly extra: number }
  | { readonly t: 'short'; readonly len: number }
  | { readonly t: 'huge' };

interface Op {
  readonly repeat: number | null; // re-use the id of an earlier op
  readonly deps: readonly DepSpec[];
  readonly tooManyDeps: boolean;
  readonly payload: PayloadSpec;
}

const depArb: fc.Arbitrary<DepSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.nat().map((i) => ({ t: 'earlier' as const, i })) },
  { weight: 2, arbitrary: fc.nat().map((i) => ({ t: 'warm' as const, i })) },
  { weight: 2, arbitrary: fc.nat({ max: 40 }).map((i) => ({ t: 'phantom' as const, i })) },
  { weight: 1, arbitrary: fc.nat().map((i) => ({ t: 'neighbour' as const, i })) },
  { weight: 1, arbitrary: fc.constantFrom(0, 31, 33).map((len) => ({ t: 'malformed' as const, len })) },
);

const payloadArb: fc.Arbitrary<PayloadSpec> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: -400, max: 400 }).map((v) => ({ t: 'delta' as const, v })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ v: fc.integer({ min: -400, max: 400 }), extra: fc.integer({ min: 1, max: 40 }) })
      .map(({ v, extra }) => ({ t: 'nonce' as const, v, extra })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }).map((len) => ({ t: 'short' as const, len })) },
  { weight: 1, arbitrary: fc.constant({ t: 'huge' as const }) },
);

const opArb: fc.Arbitrary<Op> = fc.record({
  repeat: fc.option(fc.nat(), { freq: 5, nil: null }),
  deps: fc.array(depArb, { maxLength: 4 }),
  tooManyDeps: fc.integer({ min: 0, max: 40 }).map((x) => x === 0),
  payload: payloadArb,
});

const WARM = Array.from({ length: 300 }, (_, i) => hashId(i, 0xa11ce));
const NEIGHBOUR_IDS = Array.from({ length: 20 }, (_, i) => hashId(i, 0xbeef));
const HUGE = new Uint8Array(MAX_PAYLOAD_BYTES + 1);

function payloadBytes(p: PayloadSpec): Uint8Array {
  switch (p.t) {
    case 'delta':
      return delta(p.v);
    case 'nonce':
      return TotalSupplyInvariant.payload(BigInt(p.v), new Uint8Array(p.extra).fill(p.extra));
    case 'short':
      return new Uint8Array(p.len).fill(1);
    case 'huge':
      return HUGE;
  }
}

interface Scenario {
  readonly warmup: number;
  readonly slack: number;
  readonly start: number;
  readonly salt: number;
  readonly ops: readonly Op[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  warmup: fc.constantFrom(0, 0, 40, 300),
  slack: fc.constantFrom(2, 10, 4096),
  start: fc.integer({ min: 0, max: 1000 }),
  salt: fc.nat(),
  ops: fc.array(opArb, { minLength: 1, maxLength: 60 }),
});

/** The four kernels under test, with the scenario's warm-up facts already admitted. */
function subjects(sc: Scenario): Subject[] {
  const capacity = sc.warmup + sc.slack;
  const cell = supplyCell(BigInt(sc.start), MIN, MAX);
  const out = KERNEL_KINDS.map((kind) => makeSubject(kind, totalSupply(), { cell, indexCapacity: capacity }));
  for (const s of out) {
    for (let i = 0; i < sc.warmup; i++) expect(s.tryAdmit(WARM[i]!, [], delta(0))).toBe(AdmitCode.Ok);
    if (s.kind === 'TenantKernel') {
      const tk = s.raw as TenantKernel;
      NEIGHBOUR_IDS.forEach((id, i) =>
        expect(tk.tryAdmit(NEIGHBOUR_TENANT, id, [], delta(0))).toBe(i < capacity ? AdmitCode.Ok : AdmitCode.CausalHorizonExceeded),
      );
    }
  }
  return out;
}

function runScenario(sc: Scenario): { codes: Set<number>; kernels: Subject[] } {
  const kernels = subjects(sc);
  const model = new Model(BigInt(sc.start), sc.warmup + sc.slack);
  for (let i = 0; i < sc.warmup; i++) expect(model.admit(WARM[i]!, [], delta(0))).toBe(AdmitCode.Ok);

  const issued: Uint8Array[] = [];
  const phantoms: Uint8Array[] = [];
  const resolveDep = (d: DepSpec): Uint8Array => {
    switch (d.t) {
      case 'earlier':
        if (issued.length > 0) return issued[d.i % issued.length]!;
        return hashId(d.i, sc.salt + 2);
      case 'warm':
        if (sc.warmup > 0) return WARM[d.i % sc.warmup]!;
        return hashId(d.i, sc.salt + 2);
      case 'phantom': {
        const p = hashId(d.i, sc.salt + 2);
        phantoms.push(p);
        return p;
      }
      case 'neighbour':
        return NEIGHBOUR_IDS[d.i % NEIGHBOUR_IDS.length]!;
      case 'malformed':
        return new Uint8Array(d.len);
    }
  };

  const seen = new Set<number>();
  sc.ops.forEach((op, n) => {
    const id = op.repeat !== null && issued.length > 0 ? issued[op.repeat % issued.length]! : hashId(n, sc.salt + 1);
    let deps = op.deps.map(resolveDep);
    if (op.tooManyDeps) deps = Array.from({ length: MAX_DEPS + 1 }, (_, j) => (sc.warmup > 0 ? WARM[j % sc.warmup]! : resolveDep({ t: 'earlier', i: j })));
    const payload = payloadBytes(op.payload);

    const expected = model.admit(id, deps, payload);
    seen.add(expected);
    for (const k of kernels) {
      const before = snapshot(k, [id]);
      const code = k.tryAdmit(id, deps, payload);
      if (code !== expected) {
        throw new Error(`${k.kind}: op ${n} returned ${code}, the model says ${expected}`);
      }
      if (code !== AdmitCode.Ok) {
        expect(snapshot(k, [id]), `${k.kind}: rejection ${code} changed the kernel`).toEqual(before);
      }
      if (code === AdmitCode.InvariantViolation) {
        expect(k.lastInvariantError()).toBe(
          model.balance + balanceOf(payload.subarray(0, 16)) < MIN ? InvariantCode.Underflow : InvariantCode.Overflow,
        );
      }
      expect(k.size()).toBe(model.admitted.size);
      expect(balanceOf(k.state())).toBe(model.balance);
    }
    issued.push(id);
  });

  // Final state: identical across kernels and equal to the model.
  const first = snapshot(kernels[0]!, []);
  for (const k of kernels) {
    const s = snapshot(k, []);
    expect(s.state).toBe(first.state);
    expect(s.clock).toBe(first.clock);
    expect(s.frontier).toEqual(first.frontier);
    expect(s.size).toBe(model.admitted.size);
    for (const id of [...issued, ...phantoms, ...NEIGHBOUR_IDS]) expect(k.contains(id)).toBe(model.admitted.has(hex(id)));
    for (let i = 0; i < sc.warmup; i++) expect(k.contains(WARM[i]!)).toBe(true);
  }
  expect(balanceOf(kernels[0]!.state())).toBe(model.balance);
  return { codes: seen, kernels };
}

describe('random fact DAGs with random rejections: every kernel agrees with the reference model', () => {
  it('codes, balance, size and membership match the model; all kinds return identical sequences', () => {
    const codes = new Set<number>();
    const property = fc.property(scenarioArb, (sc) => {
      for (const c of runScenario(sc).codes) codes.add(c);
    });
    fc.assert(property, { numRuns: 150 });
    // Random runs can miss a rare outcome (filling the index takes several admissions in a row):
    // a fixed-seed batch tops the coverage up, so the check below never depends on luck.
    fc.assert(property, { numRuns: 150, seed: 20_261_124 });
    for (const c of [
      AdmitCode.Ok,
      AdmitCode.CausalityViolation,
      AdmitCode.InvariantViolation,
      AdmitCode.MalformedFact,
      AdmitCode.CausalHorizonExceeded,
      AdmitCode.PayloadTooLarge,
      AdmitCode.DuplicateFact,
    ]) {
      expect(codes.has(c), `generator never produced code ${c}`).toBe(true);
    }
  });

  it('a long deterministic run through a saturated clock (EscalatingKernel in Precise mode)', () => {
    const ops = fc.sample(opArb, { numRuns: 400, seed: 7 });
    const sc: Scenario = { warmup: 300, slack: 4096, start: 500, salt: 99, ops };
    const { codes, kernels } = runScenario(sc);
    const esc = kernels.find((k) => k.kind === 'EscalatingKernel')!;
    expect((esc.raw as EscalatingKernel).mode).toBe(CausalMode.Precise);
    expect(codes.has(AdmitCode.Ok)).toBe(true);
    expect(codes.has(AdmitCode.CausalityViolation)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Commutativity (upstream tests/proptest_commutativity.rs, algebraic_properties.rs)

describe('TotalSupply commutativity', () => {
  const base = supplyCell(100_000n, 0n, I128_MAX);
  const deltaArb = fc.integer({ min: -1000, max: 999 });

  it('total_supply_commutative: a∘b and b∘a give identical state bytes (invariant level, 1000 cases)', () => {
    const inv = new TotalSupplyInvariant();
    fc.assert(
      fc.property(deltaArb, deltaArb, (a, b) => {
        const ab = base.slice();
        const ba = base.slice();
        expect(inv.apply(delta(a), ab)).toBe(0);
        expect(inv.apply(delta(b), ab)).toBe(0);
        expect(inv.apply(delta(b), ba)).toBe(0);
        expect(inv.apply(delta(a), ba)).toBe(0);
        expect(ab).toEqual(ba);
        expect(balanceOf(ab)).toBe(100_000n + BigInt(a) + BigInt(b));
      }),
      { numRuns: 1000 },
    );
  });

  it('the same at kernel level, for every kernel kind', () => {
    fc.assert(
      fc.property(deltaArb, deltaArb, fc.constantFrom(...KERNEL_KINDS), (a, b, kind) => {
        const x = makeSubject(kind, totalSupply(), { cell: base, indexCapacity: 16 });
        const y = makeSubject(kind, totalSupply(), { cell: base, indexCapacity: 16 });
        const A = hashId(1);
        const B = hashId(2);
        expect(x.tryAdmit(A, [], delta(a))).toBe(AdmitCode.Ok);
        expect(x.tryAdmit(B, [], delta(b))).toBe(AdmitCode.Ok);
        expect(y.tryAdmit(B, [], delta(b))).toBe(AdmitCode.Ok);
        expect(y.tryAdmit(A, [], delta(a))).toBe(AdmitCode.Ok);
        expect(x.state()).toEqual(y.state());
        expect(x.clock().equals(y.clock())).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('over the whole i128 range: whenever both orders accept both deltas, the states are identical and exact', () => {
    const i128 = fc.bigInt({ min: I128_MIN, max: I128_MAX });
    const inv = new TotalSupplyInvariant();
    fc.assert(
      fc.property(i128, i128, i128, (start, a, b) => {
        const ab = supplyCell(start);
        const ba = supplyCell(start);
        const okAB = inv.apply(i128le(a), ab) === 0 && inv.apply(i128le(b), ab) === 0;
        const okBA = inv.apply(i128le(b), ba) === 0 && inv.apply(i128le(a), ba) === 0;
        const exact = start + a + b;
        if (okAB && okBA) {
          expect(ab).toEqual(ba);
          expect(balanceOf(ab)).toBe(exact);
        }
        // Never a wrapped result: an accepted pair is the exact sum, in range.
        if (okAB) expect(balanceOf(ab)).toBe(exact);
        if (exact >= I128_MIN && exact <= I128_MAX && start + a >= I128_MIN && start + a <= I128_MAX) expect(okAB).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('bounded acceptance depends on order (why TotalSupply is BoundedCommutative)', () => {
    const inv = new TotalSupplyInvariant();
    const ab = supplyCell(500n, 0n, 1000n);
    const ba = supplyCell(500n, 0n, 1000n);
    expect([inv.apply(delta(400), ab), inv.apply(delta(-800), ab)]).toEqual([0, 0]);
    expect([inv.apply(delta(-800), ba), inv.apply(delta(400), ba)]).toEqual([InvariantCode.Underflow, 0]);
    expect(balanceOf(ab)).toBe(100n);
    expect(balanceOf(ba)).toBe(900n);
  });

  it('test_high_volume_commutativity: 100 deltas forward vs reverse on (500000, 0, 1000000)', () => {
    const deltas = Array.from({ length: 100 }, (_, i) => ((17 * i) % 1000) - 500);
    for (const kind of KERNEL_KINDS) {
      const fwd = makeSubject(kind, totalSupply(), { cell: supplyCell(500_000n, 0n, 1_000_000n), indexCapacity: 128 });
      const rev = makeSubject(kind, totalSupply(), { cell: supplyCell(500_000n, 0n, 1_000_000n), indexCapacity: 128 });
      deltas.forEach((d, i) => expect(fwd.tryAdmit(hashId(i), [], delta(d))).toBe(AdmitCode.Ok));
      [...deltas.keys()].reverse().forEach((i) => expect(rev.tryAdmit(hashId(i), [], delta(deltas[i]!))).toBe(AdmitCode.Ok));
      expect(fwd.state()).toEqual(rev.state());
      expect(balanceOf(fwd.state())).toBe(500_000n + deltas.reduce((s, d) => s + BigInt(d), 0n));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Convergence (upstream tests/distributed_convergence.rs)

/** Three replicas, one of each single-domain kind. */
function replicas(capacity: number, cell: Uint8Array = supplyCell(0n)): (Kernel | TwoLaneKernel | EscalatingKernel)[] {
  return SINGLE_KINDS.map((kind) => singleKernel(kind, totalSupply(), { cell, indexCapacity: capacity }));
}

describe('distributed convergence', () => {
  it('three replicas admit the same random 1,000-fact DAG in three different topological orders', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const rng = prng(seed);
        const dag = randomDag(1000, 4, rng);
        // Content-addressed facts: payload = ±1 delta plus a nonce, id = factId(deps, payload).
        const ids: Uint8Array[] = [];
        const payloads: Uint8Array[] = [];
        const depIds: Uint8Array[][] = [];
        let sum = 0n;
        dag.forEach((node, i) => {
          const d = rng() < 0.5 ? -1n : 1n;
          sum += d;
          const payload = TotalSupplyInvariant.payload(d, u64le(i));
          const deps = node.deps.map((j) => ids[j]!);
          ids.push(factId(deps, payload));
          payloads.push(payload);
          depIds.push(deps);
        });
        expect(new Set(ids.map(hex)).size).toBe(1000);
        const reps = replicas(1024);
        const orders = reps.map(() => randomTopologicalOrder(dag, rng));
        // The orders really differ (and are permutations of all facts).
        for (const o of orders) expect(new Set(o).size).toBe(1000);
        expect(orders[0]).not.toEqual(orders[1]);
        expect(orders[1]).not.toEqual(orders[2]);
        reps.forEach((k, r) => {
          for (const i of orders[r]!) {
            const code = k.tryAdmitRaw(ids[i]!, depIds[i]!, payloads[i]!);
            if (code !== AdmitCode.Ok) throw new Error(`replica ${r}: fact ${i} rejected with ${code}`);
          }
        });
        const state = reps[0]!.state.toBytes();
        expect(balanceOf(state)).toBe(sum);
        for (const k of reps) {
          expect(k.state.toBytes()).toEqual(state);
          expect(k.size).toBe(1000);
          expect(k.clock.equals(reps[0]!.clock)).toBe(true);
          for (const id of ids) expect(k.contains(id)).toBe(true);
          // Re-delivering everything changes nothing (replication makes duplicates common).
          for (let i = 0; i < 1000; i += 7) expect(k.tryAdmitRaw(ids[i]!, depIds[i]!, payloads[i]!)).toBe(AdmitCode.DuplicateFact);
          expect(k.state.toBytes()).toEqual(state);
        }
        const exact = (reps[1] as TwoLaneKernel).exactIndex;
        expect(new Set([...exact.ids()].map(hex))).toEqual(new Set(ids.map(hex)));
      }),
      { numRuns: 4 },
    );
  });

  it('a random topological order is rejected nowhere, but a dependent delivered before its dep is', () => {
    const rng = prng(3);
    const dag = randomDag(200, 3, rng);
    const ids = dag.map((_, i) => hashId(i, 31));
    const k = singleKernel('TwoLaneKernel', totalSupply(), { cell: supplyCell(0n), indexCapacity: 256 });
    const order = randomTopologicalOrder(dag, rng);
    const pos = new Map(order.map((n, p) => [n, p]));
    for (const i of order) {
      const node = dag[i]!;
      for (const d of node.deps) expect(pos.get(d)!).toBeLessThan(pos.get(i)!);
    }
    // Deliver one dependent early: rejected; then in order, everything is admitted.
    const late = dag.findIndex((n) => n.deps.length > 0);
    expect(k.tryAdmitRaw(ids[late]!, dag[late]!.deps.map((d) => ids[d]!), delta(1))).toBe(AdmitCode.CausalityViolation);
    for (const i of order) expect(k.tryAdmitRaw(ids[i]!, dag[i]!.deps.map((d) => ids[d]!), delta(1))).toBe(AdmitCode.Ok);
    expect(k.size).toBe(200);
  });

  for (const n of [1_000, 10_000]) {
    it(`test_three_node_convergence_${n}_facts: ${n} independent ±1 facts in three shuffled orders`, () => {
      const ids = Array.from({ length: n }, (_, i) => hashId(i));
      const rng = prng(n);
      const deltas = ids.map(() => (rng() < 0.5 ? -1 : 1));
      const expected = deltas.reduce((s, d) => s + BigInt(d), 0n);
      const reps = replicas(n);
      const orders = reps.map(() => shuffled([...ids.keys()], rng));
      expect(orders[0]).not.toEqual(orders[1]);
      reps.forEach((k, r) => {
        for (const i of orders[r]!) if (k.tryAdmitRaw(ids[i]!, [], delta(deltas[i]!)) !== AdmitCode.Ok) throw new Error(`fact ${i} rejected`);
      });
      for (const k of reps) {
        expect(k.state.toBytes()).toEqual(reps[0]!.state.toBytes());
        expect(balanceOf(k.state.toBytes())).toBe(expected);
        expect(k.size).toBe(n);
      }
      for (let i = 0; i < n; i += 97) for (const k of reps) expect(k.contains(ids[i]!)).toBe(true);
    });
  }

  it('test_diamond_dependency_convergence: A→{B,C}→D in orders ABCD and ACBD', () => {
    const [A, B, C, D] = [hashId(1), hashId(2), hashId(3), hashId(4)] as const;
    const facts = new Map<string, [Uint8Array, Uint8Array[], Uint8Array]>([
      ['A', [A, [], delta(10)]],
      ['B', [B, [A], delta(20)]],
      ['C', [C, [A], delta(-5)]],
      ['D', [D, [B, C], delta(15)]],
    ]);
    for (const kind of KERNEL_KINDS) {
      const run = (order: string) => {
        const s = makeSubject(kind, totalSupply(), { cell: supplyCell(500n, 0n, 1000n), indexCapacity: 16 });
        for (const name of order) {
          const [id, deps, p] = facts.get(name)!;
          expect(s.tryAdmit(id, deps, p)).toBe(AdmitCode.Ok);
        }
        return s;
      };
      const x = run('ABCD');
      const y = run('ACBD');
      expect(x.state()).toEqual(y.state());
      expect(balanceOf(x.state())).toBe(540n);
      expect(x.frontier().map(hex)).toEqual([hex(D)]);
      expect(y.frontier().map(hex)).toEqual([hex(D)]);
      // D before either of its parents is refused.
      const z = makeSubject(kind, totalSupply(), { cell: supplyCell(500n, 0n, 1000n), indexCapacity: 16 });
      expect(z.tryAdmit(A, [], delta(10))).toBe(AdmitCode.Ok);
      expect(z.tryAdmit(B, [A], delta(20))).toBe(AdmitCode.Ok);
      expect(z.tryAdmit(D, [B, C], delta(15))).toBe(AdmitCode.CausalityViolation);
    }
  });

  it('test_concurrent_increments_convergence: 100 +1 facts forward, reverse and shuffled', () => {
    const ids = Array.from({ length: 100 }, (_, i) => hashId(i, 5));
    const rng = prng(100);
    const orders = [[...ids.keys()], [...ids.keys()].reverse(), shuffled([...ids.keys()], rng)];
    const states = orders.map((order) => {
      const k = new TwoLaneKernel(totalSupply(), { indexCapacity: 128 });
      k.reset(supplyCell(0n));
      for (const i of order) k.admitRaw(ids[i]!, [], delta(1));
      return k.state.toBytes();
    });
    expect(states[1]).toEqual(states[0]);
    expect(states[2]).toEqual(states[0]);
    expect(balanceOf(states[0]!)).toBe(100n);
    expect(states[0]!.length).toBe(STATE_CELL_BYTES);
  });

  it('a tenant converges like a kernel: the same DAG in two orders in two tenants', () => {
    const rng = prng(9);
    const dag = randomDag(500, 3, rng);
    const ids = dag.map((_, i) => hashId(i, 9));
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 512 });
    tk.registerTenant(1, supplyCell(0n));
    tk.registerTenant(2, supplyCell(0n));
    for (const [t, order] of [
      [1, randomTopologicalOrder(dag, rng)],
      [2, randomTopologicalOrder(dag, rng)],
    ] as const) {
      for (const i of order) expect(tk.tryAdmit(t, ids[i]!, dag[i]!.deps.map((d) => ids[d]!), delta(i % 3))).toBe(AdmitCode.Ok);
    }
    expect(tk.state(1).equals(tk.state(2))).toBe(true);
    expect(tk.clock(1).equals(tk.clock(2))).toBe(true);
  });
});
