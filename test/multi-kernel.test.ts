/**
 * MultiKernel and DualKernel: several invariants over one causal domain, all or nothing.
 *
 * - registration (limit of 8, before the first admission, initial cells), payload shapes;
 * - upstream's composition tests (algebra/composition.rs: TotalSupply +50 with Uniqueness 42 →
 *   150; an underflow leaves the whole composite unchanged) run through both kernels;
 * - all or nothing: whichever member refuses or throws, wherever it sits (including the last,
 *   which may run in place), every cell, the size, the clock and the frontier stay as they were,
 *   and a member that scribbles before refusing cannot leak the scribble;
 * - exact causality and deduplication (upstream's MultiKernel/DualKernel had neither, §12.1);
 * - algebraicClass is the composition of the members' classes; reset; state bounds;
 * - the upstream bench trap (benches/multi_invariant.rs): after 512 Uniqueness claims the kernel
 *   really refuses, and applies nothing;
 * - a fast-check model: each member run alone on its own copy, committed only when all accept;
 * - the seed README's custom MonotonicInvariant in every kernel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AdmitError,
  AlgebraicClass,
  ConservationState,
  DualKernel,
  EscalatingKernel,
  GCounterInvariant,
  I128_MIN,
  I128_MAX,
  InvariantCode,
  Kernel,
  LWWInvariant,
  MAX_DEPS,
  MAX_INVARIANTS,
  MAX_PAYLOAD_BYTES,
  MaxInvariant,
  MaxState,
  MultiKernel,
  STATE_CELL_BYTES,
  StateCell,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  UNIQUENESS_ELEMENTS,
  UniquenessInvariant,
  UniquenessState,
  composeAll,
  composeClasses,
  readI128le,
  readU64le,
  toHex,
  u64le,
  type Invariant,
} from './helpers/lib.js';
import { expectError, expectInvalid, thrown } from './helpers/errors.js';
import { fill, seq } from './helpers/ids.js';

// ---------------------------------------------------------------------------------------------
// helpers

const SMALL = { indexCapacity: 4096 };

function supplyCell(balance: bigint, min: bigint = I128_MIN, max: bigint = I128_MAX): Uint8Array {
  return new ConservationState(balance, min, max).toBytes();
}

function delta(n: number | bigint): Uint8Array {
  return TotalSupplyInvariant.payload(BigInt(n));
}

function balanceOf(cell: StateCell | Uint8Array): bigint {
  return readI128le(cell instanceof StateCell ? cell.bytes : cell, 0);
}

function uniq(element: number): Uint8Array {
  return new Uint8Array([element & 0xff, element >>> 8]);
}

/** Scripted member payloads: `[op, arg]`. */
const OP_OK = 0;
const OP_REFUSE = 1;
const OP_THROW = 2;
const ok = (arg = 1): Uint8Array => new Uint8Array([OP_OK, arg]);
const refuse = (code: number = InvariantCode.BoundsViolation): Uint8Array => new Uint8Array([OP_REFUSE, code]);
const boom = (): Uint8Array => new Uint8Array([OP_THROW, 0]);

type ScriptMode = 'scratch' | 'inPlace' | 'scribbler';

/**
 * A test invariant driven by its payload `[op, arg]`: OK adds `arg` to byte 0 and counts the
 * application in byte 1; REFUSE returns `arg` (a non-zero code); THROW throws.
 * - 'scratch': honest, does not declare mutatesOnlyOnSuccess (the kernel uses a scratch copy);
 * - 'inPlace': honest and declares mutatesOnlyOnSuccess (may be run on the live cell);
 * - 'scribbler': does NOT declare it, and overwrites the whole cell before refusing or throwing.
 */
class ScriptedInvariant implements Invariant {
  readonly algebraicClass: AlgebraicClass;
  readonly mutatesOnlyOnSuccess: boolean;
  calls = 0;

  constructor(
    readonly mode: ScriptMode = 'scratch',
    algebraicClass: AlgebraicClass = AlgebraicClass.Commutative,
  ) {
    this.algebraicClass = algebraicClass;
    this.mutatesOnlyOnSuccess = mode === 'inPlace';
  }

  apply(payload: Uint8Array, state: Uint8Array): number {
    this.calls++;
    if (payload.length < 2) return InvariantCode.MalformedPayload;
    const op = payload[0]!;
    const arg = payload[1]!;
    if (op !== OP_OK && this.mode === 'scribbler') state.fill(0xa5);
    if (op === OP_THROW) throw new Error('scripted invariant throws');
    if (op === OP_REFUSE) return arg === 0 ? InvariantCode.BoundsViolation : arg;
    state[0] = (state[0]! + arg) & 0xff;
    state[1] = (state[1]! + 1) & 0xff;
    return InvariantCode.Ok;
  }
}

/** Byte 0 (sum of args) and byte 1 (applications) of a scripted member's cell. */
function scripted(cell: StateCell): [number, number] {
  return [cell.bytes[0]!, cell.bytes[1]!];
}

/**
 * The seed README's "Custom Invariant", in TypeScript: a u64 at bytes 0..8 of payload and state;
 * proposed < current → Underflow, else the state becomes proposed.
 *
 * Its class: whether a value is accepted depends on what was admitted before (5 then 3 refuses 3;
 * 3 then 5 accepts both), so replicas admitting the same facts in different orders accept
 * different facts. A Lattice (or any coordination-free class) promises the opposite — a join
 * never refuses — so Lattice would be WRONG even though the *surviving* value is a max. The only
 * "bound" is the current value itself, which escrow cannot split into local shares, so it is not
 * BoundedCommutative either in any useful sense: the order of admissions matters → Ordered.
 *
 * Upstream's `payload[0..8].try_into().unwrap()` panics on a short payload; here that is a
 * MalformedPayload refusal instead. It writes only once it has decided, so it declares
 * mutatesOnlyOnSuccess.
 */
class MonotonicInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Ordered;
  readonly mutatesOnlyOnSuccess = true;

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 8 || state.length < 8) return InvariantCode.MalformedPayload;
    const proposed = readU64le(payload, 0);
    const current = readU64le(state, 0);
    if (proposed < current) return InvariantCode.Underflow;
    state.set(payload.subarray(0, 8), 0);
    return InvariantCode.Ok;
  }
}

const mono = (v: number | bigint): Uint8Array => u64le(v);
const monoOf = (cell: StateCell | Uint8Array): bigint => readU64le(cell instanceof StateCell ? cell.bytes : cell, 0);

interface DomainSnapshot {
  cells: string[];
  size: number;
  clock: string;
  frontier: string[];
  saturation: number;
}

function snapMulti(k: MultiKernel): DomainSnapshot {
  const cells: string[] = [];
  for (let i = 0; i < k.invariantCount; i++) cells.push(toHex(k.state(i).bytes));
  return { cells, size: k.size, clock: toHex(k.clock.toBytes()), frontier: k.frontier().map(toHex), saturation: k.saturation };
}

function snapDual(k: DualKernel): DomainSnapshot {
  return {
    cells: k.states.map((c) => toHex(c.bytes)),
    size: k.size,
    clock: toHex(k.clock.toBytes()),
    frontier: k.frontier().map(toHex),
    saturation: k.saturation,
  };
}


/** Two-member composite of upstream's composition tests: balance 100 in [0, 1000] and an empty set. */
function upstreamMulti(): MultiKernel {
  const k = new MultiKernel(SMALL);
  k.register(new TotalSupplyInvariant(), supplyCell(100n, 0n, 1000n));
  k.register(new UniquenessInvariant());
  return k;
}

// ---------------------------------------------------------------------------------------------
// 1. MultiKernel

describe('MultiKernel: registration', () => {
  it('registers up to 8 invariants at positions 0..7; the 9th is InvalidArgument and changes nothing', () => {
    expect(MAX_INVARIANTS).toBe(8);
    const k = new MultiKernel(SMALL);
    const members: ScriptedInvariant[] = [];
    for (let i = 0; i < MAX_INVARIANTS; i++) {
      const inv = new ScriptedInvariant(i % 2 === 0 ? 'scratch' : 'inPlace');
      members.push(inv);
      expect(k.register(inv)).toBe(i);
      expect(k.invariantCount).toBe(i + 1);
    }
    const extra = new ScriptedInvariant();
    expectInvalid(() => k.register(extra));
    expect(k.invariantCount).toBe(8);
    expectInvalid(() => k.state(8));
    // The 8-member kernel admits one payload per member, each applied to its own cell.
    const payloads = members.map((_, i) => ok(i + 1));
    expect(k.tryAdmit(seq(1), [], payloads)).toBe(AdmitCode.Ok);
    for (let i = 0; i < 8; i++) expect(scripted(k.state(i))).toEqual([i + 1, 1]);
    expect(members.every((m) => m.calls === 1)).toBe(true);
    expect(extra.calls).toBe(0);
    // 9 payloads are not accepted for 8 members.
    expect(k.tryAdmit(seq(2), [], [...payloads, ok()])).toBe(AdmitCode.MalformedFact);
  });

  it('registration after the first admitted fact is InvalidArgument (and the kernel keeps its members)', () => {
    const k = new MultiKernel(SMALL);
    k.register(new ScriptedInvariant());
    k.admit(seq(1), [], [ok()]);
    const late = new ScriptedInvariant();
    expectInvalid(() => k.register(late));
    expectInvalid(() => k.register(late, new Uint8Array(64)));
    expect(k.invariantCount).toBe(1);
    expect(k.tryAdmit(seq(2), [seq(1)], [ok()])).toBe(AdmitCode.Ok);
    expect(k.tryAdmit(seq(3), [], [ok(), ok()])).toBe(AdmitCode.MalformedFact);
    expect(late.calls).toBe(0);
  });

  it('a fact that was refused is not "admitted": registration is still open after it', () => {
    const k = new MultiKernel(SMALL);
    k.register(new ScriptedInvariant());
    expect(k.tryAdmit(seq(1), [seq(99)], [ok()])).toBe(AdmitCode.CausalityViolation);
    expect(k.tryAdmit(seq(1), [], [refuse()])).toBe(AdmitCode.InvariantViolation);
    expect(k.register(new ScriptedInvariant())).toBe(1);
    expect(k.tryAdmit(seq(1), [], [ok(2), ok(3)])).toBe(AdmitCode.Ok);
    expect(scripted(k.state(1))).toEqual([3, 1]);
  });

  it("uses the given cell (StateCell or bytes, copied), else the invariant's initialState(), else zeros", () => {
    const k = new MultiKernel(SMALL);
    const given = supplyCell(77n, -5n, 500n);
    expect(k.register(new TotalSupplyInvariant(), given)).toBe(0);
    given.fill(0); // the kernel holds a copy
    const max = new MaxState(9n).toCell();
    expect(k.register(new MaxInvariant(), max)).toBe(1);
    max.bytes.fill(0xff);
    expect(k.register(new TotalSupplyInvariant())).toBe(2); // initialState: 0 in [I128_MIN, I128_MAX]
    expect(k.register(new ScriptedInvariant())).toBe(3); // no initialState: zeros

    expect(k.state(0).bytes).toEqual(supplyCell(77n, -5n, 500n));
    expect(MaxState.fromCell(k.state(1)).value).toBe(9n);
    expect(k.state(2).bytes).toEqual(new TotalSupplyInvariant().initialState());
    const c2 = ConservationState.fromCell(k.state(2));
    expect([c2.balance, c2.min, c2.max]).toEqual([0n, I128_MIN, I128_MAX]);
    expect(k.state(3).bytes).toEqual(new Uint8Array(STATE_CELL_BYTES));

    // The given bounds are the ones enforced: -83 takes 77 below -5; -82 reaches it exactly.
    expect(k.tryAdmit(seq(1), [], [delta(-83), u64le(1), delta(-82), ok()])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(0);
    expect(k.lastInvariantError).toBe(InvariantCode.Underflow);
    expect(k.tryAdmit(seq(1), [], [delta(-82), u64le(1), delta(-82), ok()])).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state(0))).toBe(-5n);
    expect(balanceOf(k.state(2))).toBe(-82n);
  });

  it('rejects a malformed invariant or cell with InvalidArgument and registers nothing', () => {
    const k = new MultiKernel(SMALL);
    expectInvalid(() => k.register(null as unknown as Invariant));
    expectInvalid(() => k.register({ algebraicClass: AlgebraicClass.Lattice } as unknown as Invariant));
    expectInvalid(() => k.register({ algebraicClass: 9, apply: () => 0 } as unknown as Invariant));
    expectInvalid(() => k.register(new MaxInvariant(), new Uint8Array(63)));
    expectInvalid(() => k.register(new MaxInvariant(), new Uint8Array(65)));
    expect(k.invariantCount).toBe(0);
    expect(k.register(new MaxInvariant())).toBe(0);
  });

  /** An invariant whose initialState() is not a 64-byte cell (or throws). */
  function badInitialState(make: () => Uint8Array): Invariant {
    return { algebraicClass: AlgebraicClass.Commutative, apply: () => InvariantCode.Ok, initialState: make };
  }

  for (const n of [8, 63, 65]) {
    it(`an initialState() of ${n} bytes is InvalidArgument, as in Kernel, and registers nothing`, () => {
      const bad = badInitialState(() => new Uint8Array(n).fill(7));
      expectInvalid(() => new Kernel(bad, SMALL)); // the single-invariant kernels check it
      const k = new MultiKernel(SMALL);
      expectInvalid(() => k.register(bad));
      expect(k.invariantCount).toBe(0);
      // Nothing half-registered: a one-payload fact has no member to go to.
      expect(k.tryAdmit(seq(1), [], [new Uint8Array(1)])).toBe(AdmitCode.MalformedFact);
      expect(k.size).toBe(0);
      expect(k.register(new MaxInvariant())).toBe(0);
    });
  }

  it('an initialState() that throws registers nothing (the kernel stays consistent)', () => {
    const k = new MultiKernel(SMALL);
    const bad = badInitialState(() => {
      throw new Error('no initial state');
    });
    expect(() => k.register(bad)).toThrow();
    expect(k.invariantCount).toBe(0);
    expect(k.tryAdmit(seq(1), [], [new Uint8Array(1)])).toBe(AdmitCode.MalformedFact);
    expect(k.size).toBe(0);
    expect(k.register(new MaxInvariant())).toBe(0);
    expect(k.tryAdmit(seq(1), [], [u64le(3)])).toBe(AdmitCode.Ok);
    expect(MaxState.fromCell(k.state(0)).value).toBe(3n);
  });

  it('state(i) is a copy, and out of range or non-integer i is InvalidArgument', () => {
    const k = upstreamMulti();
    const s = k.state(0);
    s.bytes.fill(0);
    expect(balanceOf(k.state(0))).toBe(100n);
    for (const i of [-1, 2, 8, 1.5, Number.NaN, Infinity]) expectInvalid(() => k.state(i));
    expectInvalid(() => new MultiKernel(SMALL).state(0));
  });
});

describe('MultiKernel: payload and fact shapes', () => {
  function threeMembers(): { k: MultiKernel; members: ScriptedInvariant[] } {
    const k = new MultiKernel(SMALL);
    const members = [new ScriptedInvariant('scratch'), new ScriptedInvariant('scribbler'), new ScriptedInvariant('inPlace')];
    for (const m of members) k.register(m);
    k.admit(seq(1), [], [ok(1), ok(2), ok(3)]);
    for (const m of members) m.calls = 0;
    return { k, members };
  }

  function expectUnchanged(k: MultiKernel, before: DomainSnapshot, members: ScriptedInvariant[]): void {
    expect(snapMulti(k)).toEqual(before);
    expect(members.map((m) => m.calls)).toEqual([0, 0, 0]);
    expect(k.lastInvariantError).toBe(0);
    expect(k.lastFailedInvariant).toBe(-1);
  }

  it('a wrong payload count or a non-array is MalformedFact; nothing is applied', () => {
    const { k, members } = threeMembers();
    const before = snapMulti(k);
    const bad: unknown[] = [[], [ok()], [ok(), ok()], [ok(), ok(), ok(), ok()], ok(), null, undefined, 'abc', { length: 3, 0: ok(), 1: ok(), 2: ok() }];
    for (const payloads of bad) {
      expect(k.tryAdmit(seq(2), [], payloads as Uint8Array[])).toBe(AdmitCode.MalformedFact);
      expectUnchanged(k, before, members);
      expect(k.contains(seq(2))).toBe(false);
    }
  });

  it('a payload that is not a Uint8Array, at any position, is MalformedFact', () => {
    const { k, members } = threeMembers();
    const before = snapMulti(k);
    const notBytes: unknown[] = [[0, 1], new Uint16Array(2), new DataView(new ArrayBuffer(2)), 'ab', null, undefined, new ArrayBuffer(2)];
    for (let pos = 0; pos < 3; pos++) {
      for (const p of notBytes) {
        const payloads: unknown[] = [ok(), ok(), ok()];
        payloads[pos] = p;
        expect(k.tryAdmit(seq(2), [], payloads as Uint8Array[])).toBe(AdmitCode.MalformedFact);
        expectUnchanged(k, before, members);
      }
    }
    // A Buffer is a Uint8Array.
    expect(k.tryAdmit(seq(2), [seq(1)], [Buffer.from([0, 1]), ok(), ok()])).toBe(AdmitCode.Ok);
  });

  it('a payload longer than 65536 bytes, at any position, is PayloadTooLarge; 65536 is accepted', () => {
    const { k, members } = threeMembers();
    const before = snapMulti(k);
    const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
    for (let pos = 0; pos < 3; pos++) {
      const payloads = [ok(), ok(), ok()];
      payloads[pos] = big;
      expect(k.tryAdmit(seq(2), [], payloads)).toBe(AdmitCode.PayloadTooLarge);
      expectUnchanged(k, before, members);
    }
    const limit = new Uint8Array(MAX_PAYLOAD_BYTES); // [OP_OK, 0, …]: applies with arg 0
    expect(k.tryAdmit(seq(2), [], [limit, limit, limit])).toBe(AdmitCode.Ok);
    expect(k.size).toBe(2);
  });

  it('a MultiKernel with no invariants admits nothing (MalformedFact)', () => {
    const k = new MultiKernel(SMALL);
    expect(k.tryAdmit(seq(1), [], [])).toBe(AdmitCode.MalformedFact);
    expect(k.size).toBe(0);
  });

  it('a malformed id or dep is MalformedFact (lastFailedDep names the dep); too many deps too', () => {
    const { k, members } = threeMembers();
    const before = snapMulti(k);
    const p = [ok(), ok(), ok()];
    expect(k.tryAdmit(new Uint8Array(31), [], p)).toBe(AdmitCode.MalformedFact);
    expectUnchanged(k, before, members);
    expect(k.tryAdmit(seq(2), [seq(1), new Uint8Array(33)], p)).toBe(AdmitCode.MalformedFact);
    expect(k.lastFailedDep).toBe(1);
    expectUnchanged(k, before, members);
    expect(k.tryAdmit(seq(2), 'x' as unknown as Uint8Array[], p)).toBe(AdmitCode.MalformedFact);
    const many = Array.from({ length: MAX_DEPS + 1 }, () => seq(1));
    expect(k.tryAdmit(seq(2), many, p)).toBe(AdmitCode.MalformedFact);
    expectUnchanged(k, before, members);
    expect(k.tryAdmit(seq(2), many.slice(0, MAX_DEPS), p)).toBe(AdmitCode.Ok);
  });

  it('a member returning MalformedPayload makes the fact MalformedFact with its code and position', () => {
    const k = upstreamMulti();
    const before = snapMulti(k);
    expect(k.tryAdmit(seq(1), [], [delta(5), new Uint8Array(1)])).toBe(AdmitCode.MalformedFact);
    expect(k.lastInvariantError).toBe(InvariantCode.MalformedPayload);
    expect(k.lastFailedInvariant).toBe(1);
    expect(snapMulti(k)).toEqual(before);
    const e = thrown(() => k.admit(seq(1), [], [new Uint8Array(15), uniq(1)]));
    expect(e).toBeInstanceOf(AdmitError);
    expect((e as AdmitError).code).toBe('MalformedFact');
    expect((e as AdmitError).invariantError).toBe('MalformedPayload');
    expect((e as AdmitError).message).toContain('invariant 0');
    expect(snapMulti(k)).toEqual(before);
  });
});

describe('MultiKernel: upstream composition tests (algebra/composition.rs)', () => {
  it('test_composed_invariant_both_succeed: TotalSupply +50 and Uniqueness 42 → balance 150, 42 claimed', () => {
    const k = upstreamMulti();
    expect(k.tryAdmit(seq(1), [], [delta(50), uniq(42)])).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state(0))).toBe(150n);
    expect(UniquenessState.fromCell(k.state(1)).elements).toEqual([42]);
    expect(k.size).toBe(1);
    expect(k.contains(seq(1))).toBe(true);
  });

  it('test_composed_invariant_first_fails: −200 underflows; the whole composite is unchanged', () => {
    const k = upstreamMulti();
    const before = snapMulti(k);
    expect(k.tryAdmit(seq(1), [], [delta(-200), uniq(42)])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(0);
    expect(k.lastInvariantError).toBe(InvariantCode.Underflow);
    expect(snapMulti(k)).toEqual(before);
    expect(balanceOf(k.state(0))).toBe(100n);
    expect(UniquenessState.fromCell(k.state(1)).elements).toEqual([]);
    // 42 was not claimed by the refused fact: it can still be claimed.
    expect(k.tryAdmit(seq(2), [], [delta(-100), uniq(42)])).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state(0))).toBe(0n);
  });

  it('second fails: a repeated element leaves the balance where it was', () => {
    const k = upstreamMulti();
    k.admit(seq(1), [], [delta(50), uniq(42)]);
    const before = snapMulti(k);
    expect(k.tryAdmit(seq(2), [seq(1)], [delta(50), uniq(42)])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(1);
    expect(k.lastInvariantError).toBe(InvariantCode.DuplicateElement);
    expect(snapMulti(k)).toEqual(before);
    expect(balanceOf(k.state(0))).toBe(150n);
  });
});

describe('MultiKernel: all or nothing', () => {
  type FailKind = ScriptMode | 'totalSupply';
  const FAIL_KINDS: readonly FailKind[] = ['scratch', 'inPlace', 'scribbler', 'totalSupply'];
  const N = 4;

  /**
   * N members: position `k` holds the member under test, the others are (in order) a
   * TotalSupply, an honest scratch member and an in-place member. A first fact makes every cell
   * non-trivial.
   */
  function build(k: number, kind: FailKind): { kernel: MultiKernel; okPayloads: Uint8Array[]; badPayload: (how: 'refuse' | 'throw') => Uint8Array } {
    const kernel = new MultiKernel(SMALL);
    const fillers: Array<() => [Invariant, Uint8Array | undefined, Uint8Array]> = [
      () => [new TotalSupplyInvariant(), supplyCell(1000n, 0n, 10_000n), delta(7)],
      () => [new ScriptedInvariant('scratch'), undefined, ok(3)],
      () => [new ScriptedInvariant('inPlace'), undefined, ok(5)],
    ];
    const okPayloads: Uint8Array[] = [];
    let f = 0;
    for (let i = 0; i < N; i++) {
      if (i === k) {
        if (kind === 'totalSupply') {
          kernel.register(new TotalSupplyInvariant(), supplyCell(10n, 0n, 100n));
          okPayloads.push(delta(1));
        } else {
          kernel.register(new ScriptedInvariant(kind));
          okPayloads.push(ok(11));
        }
      } else {
        const [inv, cell, payload] = fillers[f++]!();
        kernel.register(inv, cell);
        okPayloads.push(payload);
      }
    }
    kernel.admit(seq(1), [], okPayloads);
    const badPayload = (how: 'refuse' | 'throw'): Uint8Array => {
      if (kind === 'totalSupply') return delta(-1000); // underflow
      return how === 'refuse' ? refuse(InvariantCode.BoundsViolation) : boom();
    };
    return { kernel, okPayloads, badPayload };
  }

  for (const kind of FAIL_KINDS) {
    for (const how of kind === 'totalSupply' ? (['refuse'] as const) : (['refuse', 'throw'] as const)) {
      it(`a ${kind} member that ${how === 'refuse' ? 'refuses' : 'throws'} at any position 0..${N - 1} changes nothing`, () => {
        for (let k = 0; k < N; k++) {
          const { kernel, okPayloads, badPayload } = build(k, kind);
          const before = snapMulti(kernel);
          const payloads = okPayloads.slice();
          payloads[k] = badPayload(how);
          const code = kernel.tryAdmit(seq(2), [seq(1)], payloads);
          expect(code, `position ${k}`).toBe(AdmitCode.InvariantViolation);
          expect(kernel.lastFailedInvariant, `position ${k}`).toBe(k);
          const expected = kind === 'totalSupply' ? InvariantCode.Underflow : how === 'throw' ? InvariantCode.Threw : InvariantCode.BoundsViolation;
          expect(kernel.lastInvariantError, `position ${k}`).toBe(expected);
          expect(kernel.lastFailedDep).toBe(-1);
          expect(snapMulti(kernel), `position ${k}`).toEqual(before);
          expect(kernel.contains(seq(2))).toBe(false);
          // The throwing wrapper says the same, names the member, and changes nothing either.
          const e = thrown(() => kernel.admit(seq(2), [seq(1)], payloads));
          expect(e).toBeInstanceOf(AdmitError);
          expect((e as AdmitError).code).toBe('InvariantViolation');
          expect((e as AdmitError).admitCode).toBe(AdmitCode.InvariantViolation);
          expect((e as AdmitError).invariantError).toBe(kind === 'totalSupply' ? 'Underflow' : how === 'throw' ? 'Threw' : 'BoundsViolation');
          expect((e as AdmitError).message).toContain(`(invariant ${k})`);
          expect(snapMulti(kernel)).toEqual(before);
          // Nothing was recorded: the same id is admitted afterwards, and every cell moves from
          // its pre-refusal value (a scribble would show here).
          expect(kernel.tryAdmit(seq(2), [seq(1)], okPayloads)).toBe(AdmitCode.Ok);
          const twin = build(k, kind); // the same two facts, without the refusal in between
          twin.kernel.admit(seq(2), [seq(1)], twin.okPayloads);
          expect(snapMulti(kernel), `position ${k}`).toEqual(snapMulti(twin.kernel));
          if (kind === 'totalSupply') expect(balanceOf(kernel.state(k))).toBe(12n);
          else expect(scripted(kernel.state(k))).toEqual([22, 2]);
          expect(kernel.size).toBe(2);
        }
      });
    }
  }

  it('when several members would refuse, the first in registration order is reported', () => {
    const k = new MultiKernel(SMALL);
    const members = [new ScriptedInvariant(), new ScriptedInvariant('scribbler'), new ScriptedInvariant(), new ScriptedInvariant('inPlace')];
    for (const m of members) k.register(m);
    const before = snapMulti(k);
    expect(k.tryAdmit(seq(1), [], [ok(), refuse(9), refuse(InvariantCode.Overflow), boom()])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(1);
    expect(k.lastInvariantError).toBe(9);
    expect(snapMulti(k)).toEqual(before);
    expect(k.tryAdmit(seq(1), [], [ok(), ok(), refuse(InvariantCode.Overflow), boom()])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(2);
    expect(k.lastInvariantError).toBe(InvariantCode.Overflow);
    expect(snapMulti(k)).toEqual(before);
    const e = thrown(() => k.admit(seq(1), [], [ok(), refuse(9), ok(), ok()]));
    expect((e as AdmitError).invariantError).toBe('Custom');
  });

  it('a scribbler without mutatesOnlyOnSuccess cannot leak its scribble, first, middle or last', () => {
    for (let pos = 0; pos < 3; pos++) {
      const k = new MultiKernel(SMALL);
      for (let i = 0; i < 3; i++) k.register(new ScriptedInvariant(i === pos ? 'scribbler' : 'inPlace'));
      k.admit(seq(1), [], [ok(4), ok(4), ok(4)]);
      for (const [n, bad] of [refuse(), boom(), refuse(InvariantCode.MalformedPayload)].entries()) {
        const payloads = [ok(1), ok(1), ok(1)];
        payloads[pos] = bad;
        expect(k.tryAdmit(seq(10 + n), [seq(1)], payloads)).not.toBe(AdmitCode.Ok);
        expect(k.lastFailedInvariant).toBe(pos);
        for (let i = 0; i < 3; i++) expect(scripted(k.state(i)), `scribbler at ${pos}, cell ${i}`).toEqual([4, 1]);
        for (let i = 0; i < 3; i++) expect(k.state(i).bytes.subarray(2)).toEqual(new Uint8Array(62));
      }
      expect(k.tryAdmit(seq(2), [seq(1)], [ok(1), ok(1), ok(1)])).toBe(AdmitCode.Ok);
      for (let i = 0; i < 3; i++) expect(scripted(k.state(i))).toEqual([5, 2]);
    }
  });

  it('an invariant that admits into its own kernel from apply() is refused (Threw), nothing changes', () => {
    const k = new MultiKernel(SMALL);
    let nested: number | undefined;
    const reentrant: Invariant = {
      algebraicClass: AlgebraicClass.Commutative,
      mutatesOnlyOnSuccess: true,
      apply(_payload, state) {
        nested = k.tryAdmit(seq(50), [], [ok(), ok()]);
        state[0] = 1;
        return 0;
      },
    };
    k.register(new ScriptedInvariant('inPlace'));
    k.register(reentrant);
    const before = snapMulti(k);
    expect(k.tryAdmit(seq(1), [], [ok(), ok()])).toBe(AdmitCode.InvariantViolation);
    expect(nested).toBeUndefined(); // the nested call threw
    expect(k.lastInvariantError).toBe(InvariantCode.Threw);
    expect(k.lastFailedInvariant).toBe(1);
    expect(snapMulti(k)).toEqual(before);
    expect(k.contains(seq(50))).toBe(false);
  });
});

describe('MultiKernel: exact causality and deduplication', () => {
  it('a never-admitted dep is CausalityViolation with lastFailedDep; nothing is applied', () => {
    const k = upstreamMulti();
    const a = new ScriptedInvariant();
    const m = new MultiKernel(SMALL);
    m.register(a);
    for (const kernel of [k, m]) {
      const payloads = kernel === k ? [delta(1), uniq(1)] : [ok()];
      kernel.admit(seq(1), [], payloads);
      kernel.admit(seq(2), [seq(1)], kernel === k ? [delta(1), uniq(2)] : [ok()]);
    }
    a.calls = 0;
    for (const kernel of [k, m]) {
      const before = snapMulti(kernel);
      const payloads = kernel === k ? [delta(1), uniq(3)] : [ok()];
      expect(kernel.tryAdmit(seq(3), [seq(1), seq(2), seq(77), seq(78)], payloads)).toBe(AdmitCode.CausalityViolation);
      expect(kernel.lastFailedDep).toBe(2);
      expect(kernel.lastFailedInvariant).toBe(-1);
      expect(kernel.lastInvariantError).toBe(0);
      expect(snapMulti(kernel)).toEqual(before);
      expect(kernel.tryAdmit(seq(3), [fill(0xee)], payloads)).toBe(AdmitCode.CausalityViolation);
      expect(kernel.lastFailedDep).toBe(0);
      expect(snapMulti(kernel)).toEqual(before);
      const e = thrown(() => kernel.admit(seq(3), [seq(2), seq(77)], payloads));
      expect((e as AdmitError).code).toBe('CausalityViolation');
      expect((e as AdmitError).invariantError).toBeUndefined();
    }
    expect(a.calls).toBe(0);
  });

  it('a dep on a refused fact is CausalityViolation; deps on admitted facts leave the frontier', () => {
    const k = upstreamMulti();
    k.admit(seq(1), [], [delta(1), uniq(1)]);
    expect(k.tryAdmit(seq(2), [seq(1)], [delta(-5000), uniq(2)])).toBe(AdmitCode.InvariantViolation);
    expect(k.tryAdmit(seq(3), [seq(2)], [delta(1), uniq(3)])).toBe(AdmitCode.CausalityViolation);
    k.admit(seq(4), [], [delta(1), uniq(4)]);
    expect(k.frontier().map(toHex)).toEqual([toHex(seq(1)), toHex(seq(4))]);
    k.admit(seq(5), [seq(1), seq(4)], [delta(1), uniq(5)]);
    expect(k.frontier().map(toHex)).toEqual([toHex(seq(5))]);
    expect(balanceOf(k.state(0))).toBe(103n);
  });

  it('deps stay exact when the Bloom clock is saturated (Bloom-positive phantoms are refused)', () => {
    const k = new MultiKernel(SMALL);
    k.register(new GCounterInvariant());
    k.register(new MaxInvariant());
    for (let i = 1; i <= 600; i++) k.admit(seq(i), i > 1 ? [seq(i - 1)] : [], [u64le(1), u64le(i)]);
    const clock = k.clock;
    expect(clock.popcount()).toBeGreaterThan(400);
    let phantoms = 0;
    for (let i = 0; i < 5000 && phantoms < 20; i++) {
      const id = seq(1_000_000 + i);
      if (!clock.mightContain(id)) continue;
      phantoms++;
      const before = snapMulti(k);
      expect(k.tryAdmit(seq(2_000_000 + i), [seq(600), id], [u64le(1), u64le(1)])).toBe(AdmitCode.CausalityViolation);
      expect(k.lastFailedDep).toBe(1);
      expect(snapMulti(k)).toEqual(before);
    }
    expect(phantoms).toBe(20);
    expect(readU64le(k.state(0).bytes)).toBe(600n);
  });

  it('a repeated id is DuplicateFact whatever its payloads; upstream re-applied it (+50 twice → 200)', () => {
    const k = upstreamMulti();
    k.admit(seq(1), [], [delta(50), uniq(42)]);
    const before = snapMulti(k);
    // Upstream's MultiKernel/DualKernel had no dedup: the same fact again credited +50 again.
    expect(k.tryAdmit(seq(1), [], [delta(50), uniq(43)])).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmit(seq(1), [seq(1)], [delta(50), uniq(42)])).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmit(seq(1), [], [delta(-5000), uniq(42)])).toBe(AdmitCode.DuplicateFact);
    expect(k.lastFailedInvariant).toBe(-1);
    expect(k.lastInvariantError).toBe(0);
    expect(snapMulti(k)).toEqual(before);
    expect(balanceOf(k.state(0))).toBe(150n);
    expect(UniquenessState.fromCell(k.state(1)).elements).toEqual([42]);
    expect((thrown(() => k.admit(seq(1), [], [delta(50), uniq(43)])) as AdmitError).code).toBe('DuplicateFact');
    // Also long after, past any recent-admissions cache.
    for (let i = 2; i <= 40; i++) k.admit(seq(i), [], [delta(1), uniq(i + 100)]);
    expect(k.tryAdmit(seq(1), [], [delta(50), uniq(1)])).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(k.state(0))).toBe(189n);
  });

  it('a full exact index is CausalHorizonExceeded and changes nothing', () => {
    const k = new MultiKernel({ indexCapacity: 2 });
    const m = new ScriptedInvariant();
    k.register(m);
    k.admit(seq(1), [], [ok()]);
    k.admit(seq(2), [], [ok()]);
    const before = snapMulti(k);
    m.calls = 0;
    expect(k.tryAdmit(seq(3), [seq(2)], [ok()])).toBe(AdmitCode.CausalHorizonExceeded);
    expect(k.tryAdmit(seq(2), [], [ok()])).toBe(AdmitCode.DuplicateFact);
    expect(snapMulti(k)).toEqual(before);
    expect(m.calls).toBe(0);
    expect(k.indexCapacity).toBe(2);
  });
});

describe('MultiKernel: algebraicClass', () => {
  function multiOf(...members: Invariant[]): MultiKernel {
    const k = new MultiKernel(SMALL);
    for (const m of members) k.register(m);
    return k;
  }

  it('is the composition of the members: the examples', () => {
    expect(multiOf(new TotalSupplyInvariant(), new UniquenessInvariant()).algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    expect(multiOf(new MaxInvariant(), new LWWInvariant()).algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(multiOf(new GCounterInvariant(), new MaxInvariant()).algebraicClass).toBe(AlgebraicClass.Commutative);
    expect(multiOf(new MaxInvariant()).algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(multiOf(new MaxInvariant(), new LWWInvariant(), new MonotonicInvariant()).algebraicClass).toBe(AlgebraicClass.Ordered);
    const k = multiOf(new MaxInvariant());
    expect(k.algebraicClass).toBe(AlgebraicClass.Lattice);
    k.register(new GCounterInvariant());
    expect(k.algebraicClass).toBe(AlgebraicClass.Commutative); // weakens as members are added
  });

  it('equals composeAll of the member classes for every combination of up to 3 classes', () => {
    const classes = Object.values(AlgebraicClass);
    for (const a of classes) {
      for (const b of classes) {
        for (const c of classes) {
          const k = multiOf(new ScriptedInvariant('scratch', a), new ScriptedInvariant('scratch', b), new ScriptedInvariant('scratch', c));
          expect(k.algebraicClass).toBe(composeAll([a, b, c]));
          expect(k.algebraicClass).toBe(composeClasses(composeClasses(a, b), c));
        }
      }
    }
  });
});

describe('MultiKernel: reset', () => {
  it('reset() forgets every fact and restores initialState() or zeros (not the registered cell)', () => {
    const k = new MultiKernel(SMALL);
    k.register(new TotalSupplyInvariant(), supplyCell(100n, 0n, 1000n));
    k.register(new UniquenessInvariant());
    k.register(new ScriptedInvariant());
    const fresh = snapMulti(new MultiKernel(SMALL));
    for (let i = 1; i <= 10; i++) k.admit(seq(i), i > 1 ? [seq(i - 1)] : [], [delta(i), uniq(i), ok(i)]);
    k.tryAdmit(seq(99), [], [delta(-9999), uniq(1), ok()]); // leaves last* set
    k.reset();
    expect(k.size).toBe(0);
    expect(k.contains(seq(1))).toBe(false);
    expect(k.frontier()).toEqual([]);
    expect(toHex(k.clock.toBytes())).toBe(fresh.clock);
    expect(k.saturation).toBe(0);
    expect(k.state(0).bytes).toEqual(new TotalSupplyInvariant().initialState());
    expect(k.state(1).bytes).toEqual(new Uint8Array(64));
    expect(k.state(2).bytes).toEqual(new Uint8Array(64));
    expect(k.lastFailedInvariant).toBe(-1);
    expect(k.lastInvariantError).toBe(0);
    expect(k.lastFailedDep).toBe(-1);
    expect(k.invariantCount).toBe(3);
    // Old ids are unknown (as deps) and new again (as ids).
    expect(k.tryAdmit(seq(11), [seq(10)], [delta(1), uniq(1), ok()])).toBe(AdmitCode.CausalityViolation);
    expect(k.tryAdmit(seq(1), [], [delta(-1), uniq(1), ok()])).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state(0))).toBe(-1n);
  });

  it('reset(cells) takes a cell per position (StateCell, bytes or undefined) and copies them', () => {
    const k = upstreamMulti();
    k.register(new MaxInvariant());
    k.admit(seq(1), [], [delta(1), uniq(1), u64le(5)]);
    const c0 = supplyCell(7n, 0n, 10n);
    k.reset([c0, undefined, new MaxState(3n).toCell()]);
    c0.fill(0);
    expect(ConservationState.fromCell(k.state(0))).toEqual(new ConservationState(7n, 0n, 10n));
    expect(k.state(1).bytes).toEqual(new Uint8Array(64));
    expect(MaxState.fromCell(k.state(2)).value).toBe(3n);
    expect(k.size).toBe(0);
    k.reset([supplyCell(1n)]); // shorter array: the rest from initialState / zeros
    expect(balanceOf(k.state(0))).toBe(1n);
    expect(MaxState.fromCell(k.state(2)).value).toBe(0n);
    // The bound of the reset cell applies.
    k.reset([supplyCell(7n, 0n, 10n)]);
    expect(k.tryAdmit(seq(1), [], [delta(4), uniq(1), u64le(0)])).toBe(AdmitCode.InvariantViolation);
    expect(k.lastInvariantError).toBe(InvariantCode.Overflow);
  });

  it('reset with too many cells, a non-array or a malformed cell is InvalidArgument and changes nothing', () => {
    const k = upstreamMulti();
    k.admit(seq(1), [], [delta(1), uniq(1)]);
    const before = snapMulti(k);
    expectInvalid(() => k.reset([undefined, undefined, undefined]));
    expectInvalid(() => k.reset('ab' as unknown as Uint8Array[]));
    expectInvalid(() => k.reset([new Uint8Array(63)]));
    expectInvalid(() => k.reset([undefined, new Uint8Array(65)]));
    expect(snapMulti(k)).toEqual(before);
    expect(k.contains(seq(1))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. DualKernel

describe('DualKernel', () => {
  function upstreamDual(): DualKernel<TotalSupplyInvariant, UniquenessInvariant> {
    return new DualKernel(new TotalSupplyInvariant(), supplyCell(100n, 0n, 1000n), new UniquenessInvariant(), undefined, SMALL);
  }

  it('is typed by its invariants and starts from the given cells, else initialState(), else zeros', () => {
    const k = upstreamDual();
    const first: TotalSupplyInvariant = k.first;
    const second: UniquenessInvariant = k.second;
    expect(first).toBeInstanceOf(TotalSupplyInvariant);
    expect(second).toBeInstanceOf(UniquenessInvariant);
    expect(ConservationState.fromCell(k.states[0])).toEqual(new ConservationState(100n, 0n, 1000n));
    expect(k.states[1].bytes).toEqual(new Uint8Array(64));

    const given = new MaxState(4n).toCell();
    const d = new DualKernel(new ScriptedInvariant(), undefined, new MaxInvariant(), given, SMALL);
    given.bytes.fill(0);
    expect(d.states[0].bytes).toEqual(new Uint8Array(64));
    expect(MaxState.fromCell(d.states[1]).value).toBe(4n);
    const t = new DualKernel(new MaxInvariant(), undefined, new TotalSupplyInvariant(), undefined, SMALL);
    expect(t.states[1].bytes).toEqual(new TotalSupplyInvariant().initialState());
    // states are copies
    k.states[0].bytes.fill(0);
    expect(balanceOf(k.states[0])).toBe(100n);
  });

  it('rejects a malformed invariant or cell with InvalidArgument', () => {
    expectInvalid(() => new DualKernel(null as unknown as Invariant, undefined, new MaxInvariant(), undefined));
    expectInvalid(() => new DualKernel(new MaxInvariant(), undefined, { apply: 1 } as unknown as Invariant, undefined));
    expectInvalid(() => new DualKernel(new MaxInvariant(), new Uint8Array(10), new MaxInvariant(), undefined));
    expectInvalid(() => new DualKernel(new MaxInvariant(), undefined, new MaxInvariant(), new Uint8Array(65)));
  });

  for (const n of [8, 65]) {
    it(`an initialState() of ${n} bytes is InvalidArgument, as in Kernel`, () => {
      const bad: Invariant = { algebraicClass: AlgebraicClass.Commutative, apply: () => 0, initialState: () => new Uint8Array(n).fill(7) };
      expectInvalid(() => new Kernel(bad, SMALL));
      expectInvalid(() => new DualKernel(bad, undefined, new MaxInvariant(), undefined, SMALL));
      expectInvalid(() => new DualKernel(new MaxInvariant(), undefined, bad, undefined, SMALL));
    });
  }

  it('both succeed: TotalSupply +50 and Uniqueness 42 → balance 150', () => {
    const k = upstreamDual();
    expect(k.tryAdmit(seq(1), [], delta(50), uniq(42))).toBe(AdmitCode.Ok);
    expect(balanceOf(k.states[0])).toBe(150n);
    expect(UniquenessState.fromCell(k.states[1]).elements).toEqual([42]);
    expect(k.size).toBe(1);
    expect(k.frontier().map(toHex)).toEqual([toHex(seq(1))]);
  });

  it('first fails (underflow): nothing changes, lastFailedInvariant 0, AdmitError names invariant 0', () => {
    const k = upstreamDual();
    k.admit(seq(1), [], delta(1), uniq(1));
    const before = snapDual(k);
    expect(k.tryAdmit(seq(2), [seq(1)], delta(-200), uniq(42))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(0);
    expect(k.lastInvariantError).toBe(InvariantCode.Underflow);
    expect(snapDual(k)).toEqual(before);
    const e = thrown(() => k.admit(seq(2), [seq(1)], delta(-200), uniq(42)));
    expect(e).toBeInstanceOf(AdmitError);
    expect((e as AdmitError).code).toBe('InvariantViolation');
    expect((e as AdmitError).invariantError).toBe('Underflow');
    expect((e as AdmitError).message).toContain('(invariant 0)');
    expect(snapDual(k)).toEqual(before);
    expect(k.tryAdmit(seq(2), [seq(1)], delta(-101), uniq(42))).toBe(AdmitCode.Ok);
    expect(balanceOf(k.states[0])).toBe(0n);
  });

  it('second fails, applied in place (Uniqueness declares mutatesOnlyOnSuccess): the first cell is untouched', () => {
    const k = upstreamDual();
    expect(k.second.mutatesOnlyOnSuccess).toBe(true);
    k.admit(seq(1), [], delta(50), uniq(42));
    const before = snapDual(k);
    expect(k.tryAdmit(seq(2), [seq(1)], delta(50), uniq(42))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(1);
    expect(k.lastInvariantError).toBe(InvariantCode.DuplicateElement);
    expect(snapDual(k)).toEqual(before);
    expect(k.tryAdmit(seq(2), [seq(1)], delta(50), uniq(600))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastInvariantError).toBe(InvariantCode.BoundsViolation);
    expect(snapDual(k)).toEqual(before);
    const e = thrown(() => k.admit(seq(2), [seq(1)], delta(50), uniq(42)));
    expect((e as AdmitError).invariantError).toBe('DuplicateElement');
    expect((e as AdmitError).message).toContain('(invariant 1)');
    expect(balanceOf(k.states[0])).toBe(150n);
  });

  it('second fails when it is a TotalSupply (in place) after a first that succeeded on its scratch', () => {
    const k = new DualKernel(new UniquenessInvariant(), undefined, new TotalSupplyInvariant(), supplyCell(0n, 0n, 10n), SMALL);
    const before = snapDual(k);
    expect(k.tryAdmit(seq(1), [], uniq(7), delta(11))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastFailedInvariant).toBe(1);
    expect(k.lastInvariantError).toBe(InvariantCode.Overflow);
    expect(snapDual(k)).toEqual(before);
    expect(k.tryAdmit(seq(1), [], uniq(7), delta(10))).toBe(AdmitCode.Ok);
    expect(UniquenessState.fromCell(k.states[0]).elements).toEqual([7]);
  });

  const MODES: readonly ScriptMode[] = ['scratch', 'inPlace', 'scribbler'];
  for (const mode of MODES) {
    for (const pos of [0, 1] as const) {
      it(`a ${mode} member at position ${pos} that refuses or throws changes nothing; admit names it`, () => {
        const a = new ScriptedInvariant(pos === 0 ? mode : 'inPlace');
        const b = new ScriptedInvariant(pos === 1 ? mode : 'scratch');
        const k = new DualKernel(a, undefined, b, undefined, SMALL);
        k.admit(seq(1), [], ok(3), ok(4));
        const before = snapDual(k);
        for (const [bad, code, name] of [
          [refuse(), InvariantCode.BoundsViolation, 'BoundsViolation'],
          [refuse(12), 12, 'Custom'],
          [boom(), InvariantCode.Threw, 'Threw'],
        ] as const) {
          const p0 = pos === 0 ? bad : ok(1);
          const p1 = pos === 1 ? bad : ok(1);
          expect(k.tryAdmit(seq(2), [seq(1)], p0, p1)).toBe(AdmitCode.InvariantViolation);
          expect(k.lastFailedInvariant).toBe(pos);
          expect(k.lastInvariantError).toBe(code);
          expect(snapDual(k)).toEqual(before);
          const e = thrown(() => k.admit(seq(2), [seq(1)], p0, p1));
          expect(e).toBeInstanceOf(AdmitError);
          expect((e as AdmitError).code).toBe('InvariantViolation');
          expect((e as AdmitError).invariantError).toBe(name);
          expect((e as AdmitError).message).toContain(`(invariant ${pos})`);
          expect(snapDual(k)).toEqual(before);
        }
        expect(k.tryAdmit(seq(2), [seq(1)], ok(1), ok(1))).toBe(AdmitCode.Ok);
        expect(k.states.map(scripted)).toEqual([
          [4, 2],
          [5, 2],
        ]);
      });
    }
  }

  it('payload shapes: non-Uint8Array is MalformedFact, > 65536 bytes PayloadTooLarge, for either payload', () => {
    const a = new ScriptedInvariant();
    const b = new ScriptedInvariant('inPlace');
    const k = new DualKernel(a, undefined, b, undefined, SMALL);
    k.admit(seq(1), [], ok(), ok());
    a.calls = 0;
    b.calls = 0;
    const before = snapDual(k);
    const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
    for (const bad of [[1, 2], 'ab', null, undefined, new Uint16Array(2)] as unknown[]) {
      expect(k.tryAdmit(seq(2), [], bad as Uint8Array, ok())).toBe(AdmitCode.MalformedFact);
      expect(k.tryAdmit(seq(2), [], ok(), bad as Uint8Array)).toBe(AdmitCode.MalformedFact);
    }
    expect(k.tryAdmit(seq(2), [], big, ok())).toBe(AdmitCode.PayloadTooLarge);
    expect(k.tryAdmit(seq(2), [], ok(), big)).toBe(AdmitCode.PayloadTooLarge);
    expect(snapDual(k)).toEqual(before);
    expect([a.calls, b.calls]).toEqual([0, 0]);
    expect(k.lastFailedInvariant).toBe(-1);
  });

  it('deduplicates exactly: a repeated id is DuplicateFact (upstream double-credited)', () => {
    const k = upstreamDual();
    k.admit(seq(1), [], delta(50), uniq(1));
    const before = snapDual(k);
    expect(k.tryAdmit(seq(1), [], delta(50), uniq(2))).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmit(seq(1), [seq(1)], delta(50), uniq(1))).toBe(AdmitCode.DuplicateFact);
    expect(snapDual(k)).toEqual(before);
    expect(balanceOf(k.states[0])).toBe(150n);
    expectError(() => k.admit(seq(1), [], delta(50), uniq(3)), AdmitError, 'DuplicateFact');
    for (let i = 2; i <= 30; i++) k.admit(seq(i), [], delta(1), uniq(i));
    expect(k.tryAdmit(seq(1), [], delta(50), uniq(100))).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(k.states[0])).toBe(179n);
  });

  it('causality is exact: a never-admitted dep is CausalityViolation with lastFailedDep', () => {
    const a = new ScriptedInvariant();
    const k = new DualKernel(a, undefined, new UniquenessInvariant(), undefined, SMALL);
    k.admit(seq(1), [], ok(), uniq(1));
    a.calls = 0;
    const before = snapDual(k);
    expect(k.tryAdmit(seq(2), [seq(1), seq(9)], ok(), uniq(2))).toBe(AdmitCode.CausalityViolation);
    expect(k.lastFailedDep).toBe(1);
    expect(k.lastFailedInvariant).toBe(-1);
    expect(snapDual(k)).toEqual(before);
    expect(a.calls).toBe(0);
    const e = thrown(() => k.admit(seq(2), [seq(9)], ok(), uniq(2)));
    expect((e as AdmitError).code).toBe('CausalityViolation');
    expect((e as AdmitError).message).not.toContain('(invariant');
    expect(k.tryAdmit(seq(2), [seq(1)], ok(), uniq(2))).toBe(AdmitCode.Ok);
    expect(k.contains(seq(2))).toBe(true);
  });

  it('algebraicClass is composeClasses of the pair', () => {
    expect(upstreamDual().algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    expect(new DualKernel(new MaxInvariant(), undefined, new LWWInvariant(), undefined, SMALL).algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(new DualKernel(new GCounterInvariant(), undefined, new MaxInvariant(), undefined, SMALL).algebraicClass).toBe(AlgebraicClass.Commutative);
    for (const a of Object.values(AlgebraicClass)) {
      for (const b of Object.values(AlgebraicClass)) {
        const k = new DualKernel(new ScriptedInvariant('scratch', a), undefined, new ScriptedInvariant('scratch', b), undefined, { indexCapacity: 1 });
        expect(k.algebraicClass).toBe(composeClasses(a, b));
      }
    }
  });

  it('reset() and reset(first, second)', () => {
    const k = upstreamDual();
    for (let i = 1; i <= 5; i++) k.admit(seq(i), [], delta(10), uniq(i));
    k.reset();
    expect(k.size).toBe(0);
    expect(k.frontier()).toEqual([]);
    expect(k.saturation).toBe(0);
    expect(k.contains(seq(1))).toBe(false);
    expect(k.states[0].bytes).toEqual(new TotalSupplyInvariant().initialState());
    expect(k.states[1].bytes).toEqual(new Uint8Array(64));
    expect(k.tryAdmit(seq(2), [seq(1)], delta(1), uniq(1))).toBe(AdmitCode.CausalityViolation);
    expect(k.tryAdmit(seq(1), [], delta(-1), uniq(1))).toBe(AdmitCode.Ok);

    k.reset(supplyCell(5n, 0n, 5n), new UniquenessState([3]).toCell());
    expect(ConservationState.fromCell(k.states[0])).toEqual(new ConservationState(5n, 0n, 5n));
    expect(UniquenessState.fromCell(k.states[1]).elements).toEqual([3]);
    expect(k.tryAdmit(seq(1), [], delta(0), uniq(3))).toBe(AdmitCode.InvariantViolation);
    expect(k.tryAdmit(seq(1), [], delta(1), uniq(4))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastInvariantError).toBe(InvariantCode.Overflow);

    k.reset(undefined, new UniquenessState([9]).toCell());
    expect(balanceOf(k.states[0])).toBe(0n);
    expect(UniquenessState.fromCell(k.states[1]).elements).toEqual([9]);
    const before = snapDual(k);
    expectInvalid(() => k.reset(new Uint8Array(3)));
    expectInvalid(() => k.reset(undefined, new Uint8Array(3)));
    expect(snapDual(k)).toEqual(before);
  });

  it('upstream bench trap (multi_invariant.rs): after 512 claims every further admission is refused and applies nothing', () => {
    // dual_kernel_admit_no_deps: seq id, element counter & 0x1FF, +1 each.
    const k = new DualKernel(new TotalSupplyInvariant(), undefined, new UniquenessInvariant(), undefined, SMALL);
    for (let i = 0; i < 700; i++) {
      const code = k.tryAdmit(seq(i + 1), [], delta(1), uniq(i & 0x1ff));
      if (i < UNIQUENESS_ELEMENTS) {
        expect(code).toBe(AdmitCode.Ok);
      } else {
        expect(code, `admission ${i}`).toBe(AdmitCode.InvariantViolation);
        expect(k.lastFailedInvariant).toBe(1);
        expect(k.lastInvariantError).toBe(InvariantCode.DuplicateElement);
      }
    }
    expect(k.size).toBe(512);
    expect(balanceOf(k.states[0])).toBe(512n);
    expect(k.states[1].bytes).toEqual(new Uint8Array(64).fill(0xff));
    expect(k.contains(seq(513))).toBe(false);
    expect(k.contains(seq(512))).toBe(true);

    // dual_kernel_admit_with_1_dep: chained on the previous id. Fact 513 is refused by the
    // invariant; from then on the dep (a refused fact) was never admitted: CausalityViolation.
    const c = new DualKernel(new TotalSupplyInvariant(), undefined, new UniquenessInvariant(), undefined, SMALL);
    for (let i = 0; i < 600; i++) {
      const code = c.tryAdmit(seq(i + 1), i > 0 ? [seq(i)] : [], delta(1), uniq(i & 0x1ff));
      const expected = i < 512 ? AdmitCode.Ok : i === 512 ? AdmitCode.InvariantViolation : AdmitCode.CausalityViolation;
      expect(code, `admission ${i}`).toBe(expected);
    }
    expect(c.size).toBe(512);
    expect(balanceOf(c.states[0])).toBe(512n);
    expect(c.frontier().map(toHex)).toEqual([toHex(seq(512))]);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. fast-check: MultiKernel against an all-or-nothing model

describe('MultiKernel matches an all-or-nothing model (fast-check)', () => {
  type Kind = 'supply' | 'uniq' | 'max' | 'gcounter' | 'mono' | 'scratch' | 'inPlace' | 'scribbler';
  const KINDS: readonly Kind[] = ['supply', 'uniq', 'max', 'gcounter', 'mono', 'scratch', 'inPlace', 'scribbler'];

  function make(kind: Kind): { inv: Invariant; cell: Uint8Array | undefined } {
    switch (kind) {
      case 'supply':
        return { inv: new TotalSupplyInvariant(), cell: supplyCell(100n, 0n, 400n) };
      case 'uniq':
        return { inv: new UniquenessInvariant(), cell: undefined };
      case 'max':
        return { inv: new MaxInvariant(), cell: undefined };
      case 'gcounter':
        return { inv: new GCounterInvariant(), cell: undefined };
      case 'mono':
        return { inv: new MonotonicInvariant(), cell: undefined };
      default:
        return { inv: new ScriptedInvariant(kind), cell: undefined };
    }
  }

  function initialCell(kind: Kind): Uint8Array {
    const { inv, cell } = make(kind);
    return (cell ?? inv.initialState?.() ?? new Uint8Array(64)).slice();
  }

  /** A member's payload from two random numbers (and the fact's position, for mono). */
  function payloadFor(kind: Kind, a: number, b: number, j: number): Uint8Array {
    switch (kind) {
      case 'supply':
        return delta((a % 301) - 150);
      case 'uniq':
        return b < 3 ? uniq(600) : b < 5 ? new Uint8Array(1) : uniq(a % 40);
      case 'max':
        return u64le(a);
      case 'gcounter':
        return u64le(a);
      case 'mono':
        return mono(Math.max(0, 3 * j - (b < 25 ? 10 : 0)));
      default:
        if (b < 6) return refuse([InvariantCode.BoundsViolation, InvariantCode.MalformedPayload, 9][a % 3]!);
        if (b < 11) return boom();
        return ok(a & 0xff);
    }
  }

  /**
   * A never-admitted id whose Bloom bits are all set in the kernel's clock, when one is found
   * among a few hundred candidates (else a plain phantom): only the exact index can refuse it.
   */
  function bloomPositivePhantom(kernel: MultiKernel, x: number): Uint8Array {
    const clock = kernel.clock;
    for (let t = 0; t < 400; t++) {
      const id = seq(5_000_000 + ((x + t) % 100_000));
      if (clock.mightContain(id)) return id;
    }
    return seq(900_000 + (x % 50));
  }

  /** A payload every member accepts, for background fact `b` (elements 100.. stay clear of 0..39). */
  function backgroundPayload(kind: Kind, b: number): Uint8Array {
    switch (kind) {
      case 'supply':
        return delta(0);
      case 'uniq':
        return uniq(100 + b);
      case 'max':
      case 'gcounter':
      case 'mono':
        return u64le(0);
      default:
        return ok(0);
    }
  }

  interface Outcome {
    code: number;
    failedInvariant: number;
    invariantError: number;
    failedDep: number;
  }

  /** The reference: exact sets for causality and dedup; each member alone on a copy of its cell; commit only if all accept. */
  class Model {
    readonly invs: Invariant[];
    readonly cells: Uint8Array[];
    readonly admitted = new Set<string>();
    readonly admittedIds: Uint8Array[] = [];

    constructor(readonly kinds: readonly Kind[]) {
      this.invs = kinds.map((kind) => make(kind).inv);
      this.cells = kinds.map(initialCell);
    }

    admit(id: Uint8Array, deps: readonly Uint8Array[], payloads: readonly Uint8Array[]): Outcome {
      const out: Outcome = { code: AdmitCode.Ok, failedInvariant: -1, invariantError: 0, failedDep: -1 };
      if (payloads.length !== this.kinds.length) return { ...out, code: AdmitCode.MalformedFact };
      if (this.admitted.has(toHex(id))) return { ...out, code: AdmitCode.DuplicateFact };
      const failedDep = deps.findIndex((d) => !this.admitted.has(toHex(d)));
      if (failedDep >= 0) return { ...out, code: AdmitCode.CausalityViolation, failedDep };
      const next: Uint8Array[] = [];
      for (let i = 0; i < this.kinds.length; i++) {
        const copy = this.cells[i]!.slice();
        let c: number;
        try {
          c = this.invs[i]!.apply(payloads[i]!, copy);
        } catch {
          c = InvariantCode.Threw;
        }
        if (c !== 0) {
          const code = c === InvariantCode.MalformedPayload ? AdmitCode.MalformedFact : AdmitCode.InvariantViolation;
          return { ...out, code, failedInvariant: i, invariantError: c };
        }
        next.push(copy);
      }
      next.forEach((c, i) => (this.cells[i] = c));
      this.admitted.add(toHex(id));
      this.admittedIds.push(id);
      return out;
    }
  }

  const factArb = fc.record({
    idPick: fc.integer({ min: 0, max: 99 }),
    idAt: fc.nat(),
    deps: fc.array(fc.tuple(fc.integer({ min: 0, max: 99 }), fc.nat()), { maxLength: 3 }),
    shape: fc.integer({ min: 0, max: 99 }),
    seeds: fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 99 })), { minLength: 8, maxLength: 8 }),
  });

  it('codes, last* fields, every cell and the size agree after every fact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...KINDS), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.array(factArb, { minLength: 1, maxLength: 40 }),
        (kinds, withBackground, facts) => {
          const kernel = new MultiKernel({ indexCapacity: 512 });
          for (const kind of kinds) {
            const { inv, cell } = make(kind);
            kernel.register(inv, cell);
          }
          const model = new Model(kinds);
          // Half the runs start from 150 admitted root facts, so the Bloom clock is well filled
          // and Bloom-positive phantoms exist: only the exact index can refuse those.
          if (withBackground) {
            for (let b = 0; b < 150; b++) {
              const id = seq(10_000_000 + b);
              const payloads = kinds.map((kind) => backgroundPayload(kind, b));
              expect(model.admit(id, [], payloads).code).toBe(AdmitCode.Ok);
              expect(kernel.tryAdmit(id, [], payloads)).toBe(AdmitCode.Ok);
            }
          }
          const used: Uint8Array[] = [];

          facts.forEach((f, j) => {
            const id = f.idPick < 12 && used.length > 0 ? used[f.idAt % used.length]! : seq(1000 + j);
            const deps = f.deps.map(([t, x]) => {
              if (t < 5) return bloomPositivePhantom(kernel, x); // the Bloom clock cannot refuse it
              if (t < 10) return seq(900_000 + (x % 50));
              if (t < 30 && used.length > 0) return used[x % used.length]!; // admitted or refused
              const ids = model.admittedIds;
              return ids.length > 0 ? ids[ids.length - 1 - (x % Math.min(ids.length, 12))]! : seq(900_000 + (x % 50));
            });
            const payloads = kinds.map((kind, i) => payloadFor(kind, f.seeds[i]![0], f.seeds[i]![1], j));
            if (f.shape < 4) payloads.pop();
            used.push(id);
            const before = snapMulti(kernel);

            const want = model.admit(id, deps, payloads);
            const got = kernel.tryAdmit(id, deps, payloads);
            expect(got, `fact ${j}`).toBe(want.code);
            if (want.code !== AdmitCode.Ok) {
              expect(kernel.lastFailedInvariant, `fact ${j}`).toBe(want.failedInvariant);
              expect(kernel.lastInvariantError, `fact ${j}`).toBe(want.invariantError);
              expect(kernel.lastFailedDep, `fact ${j}`).toBe(want.failedDep);
              expect(snapMulti(kernel), `fact ${j}`).toEqual(before);
            }
            expect(snapMulti(kernel).cells, `fact ${j}`).toEqual(model.cells.map(toHex));
            expect(kernel.size).toBe(model.admitted.size);
            expect(kernel.contains(id)).toBe(model.admitted.has(toHex(id)));
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 4. The seed README's custom MonotonicInvariant in every kernel

describe('the seed README\'s custom MonotonicInvariant', () => {
  it('on its own: equal or greater is stored, smaller is Underflow and writes nothing; short is MalformedPayload', () => {
    const inv = new MonotonicInvariant();
    const s = new Uint8Array(64);
    expect(inv.apply(mono(5), s)).toBe(InvariantCode.Ok);
    expect(monoOf(s)).toBe(5n);
    expect(inv.apply(mono(5), s)).toBe(InvariantCode.Ok);
    expect(inv.apply(mono(4), s)).toBe(InvariantCode.Underflow);
    expect(monoOf(s)).toBe(5n);
    expect(inv.apply(mono(2n ** 64n - 1n), s)).toBe(InvariantCode.Ok);
    expect(monoOf(s)).toBe(2n ** 64n - 1n);
    expect(inv.apply(new Uint8Array(7), s)).toBe(InvariantCode.MalformedPayload);
    expect(s.subarray(8)).toEqual(new Uint8Array(56));
    // Acceptance depends on order, which is why it is not a Lattice.
    const x = new Uint8Array(64);
    const y = new Uint8Array(64);
    const accepted = (cell: Uint8Array, order: number[]): number => order.filter((v) => inv.apply(mono(v), cell) === 0).length;
    expect(accepted(x, [5, 3])).toBe(1);
    expect(accepted(y, [3, 5])).toBe(2);
    expect(inv.algebraicClass).not.toBe(AlgebraicClass.Lattice);
  });

  interface MonoSubject {
    tryAdmit(id: Uint8Array, deps: Uint8Array[], v: number): number;
    admit(id: Uint8Array, deps: Uint8Array[], v: number): void;
    value(): bigint;
    size(): number;
    snapshot(): string;
    lastInvariantError(): number;
    /** The other cell: Multi/Dual's TotalSupply (+1 per admitted fact), or the TenantKernel's other tenant. */
    companion(): bigint | undefined;
    /** What `companion()` must read after the five admissions of the test. */
    readonly expectedCompanion: bigint | undefined;
  }

  const subjects: Record<string, () => MonoSubject> = {
    Kernel: () => single(new Kernel(new MonotonicInvariant(), SMALL)),
    TwoLaneKernel: () => single(new TwoLaneKernel(new MonotonicInvariant(), SMALL)),
    EscalatingKernel: () => single(new EscalatingKernel(new MonotonicInvariant(), SMALL)),
    'TenantKernel tenant': () => {
      const tk = new TenantKernel(new MonotonicInvariant(), { indexCapacity: 1024, maxTenants: 2 });
      tk.registerTenant(1);
      tk.registerTenant(2, StateCell.from(new MaxState(1000n).toBytes()));
      const t = 1;
      return {
        tryAdmit: (id, deps, v) => tk.tryAdmit(t, id, deps, mono(v)),
        admit: (id, deps, v) => tk.admit(t, id, deps, mono(v)),
        value: () => monoOf(tk.state(t)),
        size: () => tk.size(t),
        snapshot: () => JSON.stringify([toHex(tk.state(t).bytes), tk.size(t), toHex(tk.clock(t).toBytes()), tk.frontier(t).map(toHex), monoOf(tk.state(2)).toString(), tk.size(2)]),
        lastInvariantError: () => tk.lastInvariantError(t),
        companion: () => monoOf(tk.state(2)),
        expectedCompanion: 1000n, // the other tenant is untouched
      };
    },
    'MultiKernel (Monotonic, TotalSupply)': () => multi(0),
    'MultiKernel (TotalSupply, Monotonic)': () => multi(1),
    'DualKernel (Monotonic, TotalSupply)': () => dual(0),
    'DualKernel (TotalSupply, Monotonic)': () => dual(1),
  };

  function single(k: Kernel | TwoLaneKernel | EscalatingKernel): MonoSubject {
    return {
      tryAdmit: (id, deps, v) => k.tryAdmitRaw(id, deps, mono(v)),
      admit: (id, deps, v) => k.admitRaw(id, deps, mono(v)),
      value: () => monoOf(k.state),
      size: () => k.size,
      snapshot: () => JSON.stringify([toHex(k.state.bytes), k.size, toHex(k.clock.toBytes()), k.frontier().map(toHex)]),
      lastInvariantError: () => k.lastInvariantError,
      companion: () => undefined,
      expectedCompanion: undefined,
    };
  }

  function multi(monoAt: 0 | 1): MonoSubject {
    const k = new MultiKernel(SMALL);
    if (monoAt === 0) k.register(new MonotonicInvariant());
    k.register(new TotalSupplyInvariant());
    if (monoAt === 1) k.register(new MonotonicInvariant());
    const payloads = (v: number): Uint8Array[] => (monoAt === 0 ? [mono(v), delta(1)] : [delta(1), mono(v)]);
    return {
      tryAdmit: (id, deps, v) => k.tryAdmit(id, deps, payloads(v)),
      admit: (id, deps, v) => k.admit(id, deps, payloads(v)),
      value: () => monoOf(k.state(monoAt)),
      size: () => k.size,
      snapshot: () => JSON.stringify(snapMulti(k)),
      lastInvariantError: () => k.lastInvariantError,
      companion: () => balanceOf(k.state(1 - monoAt)),
      expectedCompanion: 5n,
    };
  }

  function dual(monoAt: 0 | 1): MonoSubject {
    const k =
      monoAt === 0
        ? new DualKernel(new MonotonicInvariant(), undefined, new TotalSupplyInvariant(), undefined, SMALL)
        : new DualKernel(new TotalSupplyInvariant(), undefined, new MonotonicInvariant(), undefined, SMALL);
    const pair = (v: number): [Uint8Array, Uint8Array] => (monoAt === 0 ? [mono(v), delta(1)] : [delta(1), mono(v)]);
    return {
      tryAdmit: (id, deps, v) => k.tryAdmit(id, deps, ...pair(v)),
      admit: (id, deps, v) => k.admit(id, deps, ...pair(v)),
      value: () => monoOf(k.states[monoAt]),
      size: () => k.size,
      snapshot: () => JSON.stringify(snapDual(k)),
      lastInvariantError: () => k.lastInvariantError,
      companion: () => balanceOf(k.states[1 - monoAt]!),
      expectedCompanion: 5n,
    };
  }

  for (const [name, build] of Object.entries(subjects)) {
    it(`works in ${name}: increasing values admitted, a decrease refused (Underflow) with nothing changed, duplicates refused`, () => {
      const s = build();
      expect(s.tryAdmit(seq(1), [], 1)).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(2), [seq(1)], 5)).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(3), [seq(2)], 5)).toBe(AdmitCode.Ok); // equal is not a decrease
      s.admit(seq(4), [seq(3)], 9);
      expect(s.value()).toBe(9n);
      expect(s.size()).toBe(4);

      const before = s.snapshot();
      expect(s.tryAdmit(seq(5), [seq(4)], 7)).toBe(AdmitCode.InvariantViolation);
      expect(s.lastInvariantError()).toBe(InvariantCode.Underflow);
      expect(s.snapshot()).toBe(before);
      const e = thrown(() => s.admit(seq(5), [seq(4)], 0));
      expect(e).toBeInstanceOf(AdmitError);
      expect((e as AdmitError).code).toBe('InvariantViolation');
      expect((e as AdmitError).invariantError).toBe('Underflow');
      expect(s.snapshot()).toBe(before);

      // Duplicates: a repeated id is refused even with a larger value.
      expect(s.tryAdmit(seq(4), [], 100)).toBe(AdmitCode.DuplicateFact);
      expect(s.tryAdmit(seq(1), [], 100)).toBe(AdmitCode.DuplicateFact);
      expectError(() => s.admit(seq(2), [], 100), AdmitError, 'DuplicateFact');
      expect(s.snapshot()).toBe(before);
      // Causality: a dep on the refused fact.
      expect(s.tryAdmit(seq(6), [seq(5)], 100)).toBe(AdmitCode.CausalityViolation);
      expect(s.snapshot()).toBe(before);

      expect(s.tryAdmit(seq(5), [seq(4)], 12)).toBe(AdmitCode.Ok);
      expect(s.value()).toBe(12n);
      expect(s.size()).toBe(5);
      expect(s.companion()).toBe(s.expectedCompanion);
    });
  }

  it('its composition with TotalSupply is Ordered; alone in a kernel it is not coordination-free', () => {
    const k = new MultiKernel(SMALL);
    k.register(new MonotonicInvariant());
    k.register(new TotalSupplyInvariant());
    expect(k.algebraicClass).toBe(AlgebraicClass.Ordered);
    expect(new DualKernel(new TotalSupplyInvariant(), undefined, new MonotonicInvariant(), undefined, SMALL).algebraicClass).toBe(AlgebraicClass.Ordered);
    const single = new Kernel(new MonotonicInvariant(), SMALL);
    expect(single.tryAdmitReplicatedRaw(seq(1), [], mono(1))).toBe(AdmitCode.RequiresCoordination);
    expect(single.size).toBe(0);
  });
});
