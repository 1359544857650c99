/**
 * Writer/reader hand-offs, misbehaving invariants and hostile arguments: each case here was a way
 * to corrupt a kernel or crash it with an untyped error.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AlgebraicClass,
  CausalClock,
  ConservationState,
  InvariantCode,
  Kernel,
  STATE_WORDS,
  SharedMemoryError,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  UnknownTenantError,
  admitCodeName,
  bloomPositions,
  createFact,
  decodeFact,
  encodeFact,
  factId,
  i128le,
  verifyFactId,
  type Invariant,
  type SharedKernelMemory,
  type StateView,
} from './helpers/lib.js';
import { expectError, expectInvalid } from './helpers/errors.js';
import { seq } from './helpers/ids.js';

const balance = (k: { state: { bytes: Uint8Array } }): bigint => ConservationState.fromCell(k.state.bytes).balance;

describe('writer and reader hand-offs', () => {
  it('a writer that syncs and then re-submits an unpublished fact gets DuplicateFact (no double apply)', () => {
    const k = Kernel.withState(new TotalSupplyInvariant(), new ConservationState(0n).toCell(), { indexCapacity: 64 });
    k.admitRaw(seq(1), [], i128le(10n));
    k.publish();
    k.admitRaw(seq(2), [], i128le(20n)); // not published
    expect(k.sync().size).toBe(1); // the snapshot the writer published
    expect(k.tryAdmitRaw(seq(2), [], i128le(20n))).toBe(AdmitCode.DuplicateFact);
    expect(balance(k)).toBe(30n);
    k.admitRaw(seq(3), [seq(2)], i128le(1n)); // numbered after seq(2): nothing overwritten
    expect(k.size).toBe(3);
    for (const i of [1, 2, 3]) expect(k.contains(seq(i))).toBe(true);
  });

  it('an attached instance that takes over as writer continues from the true count', () => {
    const a = Kernel.withState(new TotalSupplyInvariant(), new ConservationState(0n).toCell(), { indexCapacity: 64 });
    const b = Kernel.attach(a.shared, new TotalSupplyInvariant());
    a.admitRaw(seq(1), [], i128le(1n)); // a never publishes before b writes
    expect(b.tryAdmitRaw(seq(1), [], i128le(1n))).toBe(AdmitCode.DuplicateFact);
    expect(b.tryAdmitRaw(seq(2), [seq(1)], i128le(1n))).toBe(AdmitCode.Ok);
    expect(a.tryAdmitRaw(seq(3), [seq(2)], i128le(1n))).toBe(AdmitCode.Ok);
    expect(balance(a)).toBe(3n);
    expect(b.contains(seq(3))).toBe(false); // b sees what it saw at its own last write…
    a.publish();
    expect(b.sync().size).toBe(3); // …until the writer publishes and b syncs
    for (const i of [1, 2, 3]) expect(b.contains(seq(i))).toBe(true);
  });

  it('reset() publishes, so readers see the reset instead of the old snapshot', () => {
    const w = Kernel.withState(new TotalSupplyInvariant(), new ConservationState(0n).toCell(), { indexCapacity: 64 });
    const r = Kernel.attach(w.shared, new TotalSupplyInvariant());
    for (let i = 0; i < 5; i++) w.admitRaw(seq(i), [], i128le(1n));
    w.publish();
    expect(r.sync().size).toBe(5);
    w.reset(new ConservationState(42n).toCell());
    const view = r.sync();
    expect(view.size).toBe(0);
    expect(view.frontier).toEqual([]);
    expect(ConservationState.fromCell(view.state).balance).toBe(42n);
    expect(r.contains(seq(0))).toBe(false);
  });

  it('publications are counted', () => {
    const w = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    const r = Kernel.attach(w.shared, new TotalSupplyInvariant());
    const first = r.sync().publication;
    expect(r.sync().publication).toBe(first);
    w.publish();
    expect(r.sync().publication).toBe(first + 1);
  });

  it('sync() gives up with a typed error on a snapshot left mid-publish (a writer that died)', () => {
    const w = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    const seqlock = new Int32Array(w.shared.control, 1088, 1); // docs/FORMATS.md §5
    Atomics.add(seqlock, 0, 1); // odd: as if the writer died inside publish()
    const started = Date.now();
    expectError(() => w.sync(), SharedMemoryError, 'InvalidSharedMemory');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it('refuses to attach a control block to another kernel’s index', () => {
    const a = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    const b = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    const mixed: SharedKernelMemory = { control: a.shared.control, history: b.shared.history };
    expectError(() => Kernel.attach(mixed, new TotalSupplyInvariant()), SharedMemoryError, 'InvalidSharedMemory');
  });
});

describe('misbehaving invariants', () => {
  class Throwing implements Invariant {
    readonly algebraicClass = AlgebraicClass.Commutative;
    apply(_payload: Uint8Array, state: Uint8Array): number {
      state[0] = 0xee; // scribbles first…
      throw new Error('boom'); // …then throws
    }
  }

  it('a throwing invariant is a rejection (Threw) and, on the scratch path, leaves state untouched', () => {
    const k = new Kernel(new Throwing(), { indexCapacity: 16 });
    const before = k.state.toBytes();
    expect(k.tryAdmitRaw(seq(1), [], new Uint8Array(8))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastInvariantError).toBe(InvariantCode.Threw);
    expect(k.state.toBytes()).toEqual(before);
    expect(k.size).toBe(0);
    expect(() => k.admitRaw(seq(1), [], new Uint8Array(8))).toThrow(expect.objectContaining({ invariantError: 'Threw' }));
  });

  it('an invariant that queries or admits into its own kernel cannot corrupt the admission', () => {
    let kernel: TwoLaneKernel<Invariant> | undefined;
    const reentrant: Invariant = {
      algebraicClass: AlgebraicClass.Commutative,
      mutatesOnlyOnSuccess: true,
      apply(payload, state) {
        // Lookups reload a hasher; they must not disturb the id being admitted.
        kernel!.contains(seq(99));
        kernel!.contains(seq(1));
        if (payload[0] === 1) kernel!.tryAdmitRaw(seq(50), [], new Uint8Array(1)); // refused: throws
        state[0] = (state[0]! + 1) & 0xff;
        return 0;
      },
    };
    kernel = new TwoLaneKernel(reentrant, { indexCapacity: 64 });
    expect(kernel.tryAdmitRaw(seq(1), [], new Uint8Array([0]))).toBe(AdmitCode.Ok);
    expect(kernel.tryAdmitRaw(seq(2), [seq(1)], new Uint8Array([0]))).toBe(AdmitCode.Ok);
    expect(kernel.contains(seq(1))).toBe(true);
    expect(kernel.contains(seq(2))).toBe(true);
    expect(kernel.exactIndex.size).toBe(2);
    expect(kernel.tryAdmitRaw(seq(3), [], new Uint8Array([1]))).toBe(AdmitCode.InvariantViolation);
    expect(kernel.lastInvariantError).toBe(InvariantCode.Threw);
    expect(kernel.contains(seq(50))).toBe(false);
    expect(kernel.size).toBe(2);
  });

  it('kernels hand the invariant a state that carries its word view (no view built per call)', () => {
    const seen: (Uint32Array | undefined)[] = [];
    const spy: Invariant = {
      algebraicClass: AlgebraicClass.Commutative,
      mutatesOnlyOnSuccess: true,
      apply(_payload, state) {
        seen.push((state as StateView)[STATE_WORDS]);
        return 0;
      },
    };
    const tenants = new TenantKernel(spy, { indexCapacity: 16 });
    tenants.registerTenant(1);
    tenants.registerTenant(2);
    tenants.admit(1, seq(1), [], new Uint8Array(0));
    tenants.admit(2, seq(1), [], new Uint8Array(0));
    tenants.admit(1, seq(2), [], new Uint8Array(0));
    expect(seen.every((w) => w instanceof Uint32Array && w.length === 16)).toBe(true);
    expect(seen[0]).toBe(seen[2]);
    expect(seen[0]).not.toBe(seen[1]);
  });
});

describe('the order of checks and what a rejection reports', () => {
  it('a repeated id is DuplicateFact even when it also names an unknown dep', () => {
    const k = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    k.admitRaw(seq(1), [], i128le(1n));
    expect(k.tryAdmitRaw(seq(1), [seq(77)], i128le(1n))).toBe(AdmitCode.DuplicateFact);
  });

  it('every dep is shape-checked before any lookup, and lastFailedDep names the culprit', () => {
    const k = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    k.admitRaw(seq(1), [], i128le(1n));
    expect(k.tryAdmitRaw(seq(2), [seq(77), new Uint8Array(3)], i128le(1n))).toBe(AdmitCode.MalformedFact);
    expect(k.lastFailedDep).toBe(1);
    expect(k.lastInvariantError).toBe(0);
    expect(k.tryAdmitRaw(seq(2), [seq(1), seq(77)], i128le(1n))).toBe(AdmitCode.CausalityViolation);
    expect(k.lastFailedDep).toBe(1);
    expect(k.tryAdmitRaw(seq(2), [seq(1)], new Uint8Array(3))).toBe(AdmitCode.MalformedFact);
    expect(k.lastInvariantError).toBe(InvariantCode.MalformedPayload);
    expect(k.lastFailedDep).toBe(-1);
  });

  it('the replicated path gives the same codes for malformed deps, including sparse arrays', () => {
    const counter: Invariant = { algebraicClass: AlgebraicClass.Commutative, apply: () => 0 };
    const k = new Kernel(counter, { indexCapacity: 16 });
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [, seq(1)] as unknown as Uint8Array[];
    expect(k.tryAdmitReplicatedRaw(seq(5), sparse, new Uint8Array(0))).toBe(AdmitCode.MalformedFact);
    expect(k.tryAdmitRaw(seq(5), sparse, new Uint8Array(0))).toBe(AdmitCode.MalformedFact);
    expectInvalid(() => factId(sparse, new Uint8Array(0)));
    const fact = createFact([], new Uint8Array([1]));
    expect(k.tryAdmitReplicatedRaw(fact.id, [], fact.payload)).toBe(AdmitCode.Ok);
  });
});

describe('hostile arguments get typed errors', () => {
  it('tenant ids of the wrong type are unknown tenants, not crashes', () => {
    const t = new TenantKernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    t.registerTenant(5);
    for (const bad of [5n, '5', NaN, -1, 1.5, 65_536, null, undefined, {}] as unknown[]) {
      expect(t.tryAdmit(bad as number, seq(1), [], i128le(1n))).toBe(AdmitCode.UnknownTenant);
      expectError(() => t.state(bad as number), UnknownTenantError, 'UnknownTenant');
      expect(t.hasTenant(bad as number)).toBe(false);
    }
    expect(t.tryAdmit(5, seq(1), [], i128le(1n))).toBe(AdmitCode.Ok);
  });

  it('TenantKernel validates its options when constructed', () => {
    const inv = new TotalSupplyInvariant();
    for (const options of [{ indexCapacity: 0 }, { indexCapacity: 1.5 }, { indexSeed: -1 }, { maxTenants: 0 }, { historyBudgetBytes: -1 }, { historyHotCapacity: 0 }, { historyCompaction: 'never' as never }]) {
      expectInvalid(() => new TenantKernel(inv, options));
    }
  });

  it('invariants must declare an AlgebraicClass 0..5', () => {
    for (const algebraicClass of ['0', 6, -1, 1.5, undefined]) {
      expectInvalid(() => new Kernel({ algebraicClass, apply: () => 0 } as unknown as Invariant));
    }
  });

  it('readState, clocks, bloomPositions and codes check their arguments', () => {
    const k = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    expectInvalid(() => k.readState(new Uint8Array(10)));
    expectInvalid(() => k.readState(new Uint8Array(65)));
    const out = new Uint8Array(64);
    k.readState(out);
    expect(out).toEqual(k.state.toBytes());
    expectInvalid(() => new CausalClock(5 as unknown as ArrayBuffer));
    expectInvalid(() => new CausalClock(new Uint8Array(64) as unknown as ArrayBuffer));
    expectInvalid(() => new CausalClock().merge(null as unknown as CausalClock));
    expectInvalid(() => new CausalClock().dominates({} as CausalClock));
    expectInvalid(() => bloomPositions(new Uint8Array(4)));
    expectInvalid(() => admitCodeName(99));
    expectInvalid(() => admitCodeName(0));
    expect(admitCodeName(10)).toBe('DuplicateFact');
  });

  it('null facts and options are rejected or defaulted, never a TypeError', () => {
    expectInvalid(() => verifyFactId(null as never));
    expectInvalid(() => encodeFact(null as never));
    const fact = createFact([], new Uint8Array([7]));
    expect(decodeFact(encodeFact(fact), null as never).payload).toEqual(new Uint8Array([7]));
    expect(new Kernel(new TotalSupplyInvariant(), null as never).indexCapacity).toBe(Infinity);
  });
});

describe('only reads are allowed from inside apply()', () => {
  it('reset, publish, sync and registration from an invariant are refused and change nothing', () => {
    for (const call of ['reset', 'publish', 'sync', 'register'] as const) {
      let kernel: TwoLaneKernel<Invariant> | undefined;
      let multi: import('./helpers/lib.js').MultiKernel | undefined;
      const meddling: Invariant = {
        algebraicClass: AlgebraicClass.Commutative,
        mutatesOnlyOnSuccess: true,
        apply(_payload, state) {
          if (call === 'reset') kernel!.reset();
          else if (call === 'publish') kernel!.publish();
          else if (call === 'sync') kernel!.sync();
          else multi!.register(new TotalSupplyInvariant());
          state[0] = 1;
          return 0;
        },
      };
      kernel = new TwoLaneKernel(meddling, { indexCapacity: 16 });
      const before = kernel.state.toBytes();
      expect(kernel.tryAdmitRaw(seq(1), [], new Uint8Array(0))).toBe(AdmitCode.InvariantViolation);
      expect(kernel.lastInvariantError).toBe(InvariantCode.Threw);
      expect(kernel.state.toBytes()).toEqual(before);
      expect(kernel.size).toBe(0);
    }
  });

  it('a return value that is not a code 0..254 is treated as Threw', () => {
    for (const bad of [undefined, NaN, 2.5, 300, -1, '1']) {
      const k = new Kernel({ algebraicClass: AlgebraicClass.Commutative, apply: () => bad as number }, { indexCapacity: 16 });
      expect(k.tryAdmitRaw(seq(1), [], new Uint8Array(0))).toBe(AdmitCode.InvariantViolation);
      expect(k.lastInvariantError).toBe(InvariantCode.Threw);
    }
  });
});

describe('state helpers refuse what the invariant would refuse', () => {
  it('GraphState.fromCell throws on unknown flag bits; state constructors check their ranges', async () => {
    const { GraphState, MaxState, GCounterState, BoundedCounterState, LWWState, ValueOutOfRangeError, ExactCausalIndex } = await import('./helpers/lib.js');
    const cell = new GraphState(4).toBytes();
    cell[35] = 0x80;
    expectInvalid(() => GraphState.fromCell(cell));
    for (const make of [() => new MaxState(-1n), () => new GCounterState(1n << 64n), () => new BoundedCounterState(-1n, 5n), () => new BoundedCounterState(0n, 1n << 64n), () => new LWWState(new Uint8Array(32), -1n, 0n), () => new LWWState(new Uint8Array(32), 0n, 1n << 64n)]) {
      expectError(make, ValueOutOfRangeError, 'ValueOutOfRange');
    }
    // ⌈capacity / 0.7⌉ exactly: 672 / 0.7 is 960.0000000000001 in floating point.
    expect(new ExactCausalIndex({ capacity: 672, seed: 1 }).tableSlots).toBe(960);
  });
});
