/**
 * Kernels: upstream's kernel.rs unit tests (§10.1) for every kernel class, every rejection code
 * (each proven to change nothing), the throwing variants, frontier, query, reset, capacity,
 * TenantKernel registration, EscalatingKernel escalation, replicated admission and the scratch
 * copy that protects state from invariants that write before they decide.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AdmitError,
  AlgebraicClass,
  CLOCK_BITS,
  CausalMode,
  ConservationState,
  CtfsError,
  DEFAULT_MAX_TENANTS,
  ESCALATION_POPCOUNT,
  EscalatingKernel,
  FRONTIER_WIDTH,
  I128_MAX,
  InvalidArgumentError,
  InvariantCode,
  Kernel,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  StateCell,
  TenantError,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  UnknownTenantError,
  createFact,
  factId,
  i128le,
  toHex,
  u64le,
  type Fact,
  type Invariant,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import {
  CounterInvariant,
  KERNEL_KINDS,
  SINGLE_KINDS,
  ScribblingInvariant,
  balanceOf,
  bloomPositivePhantoms,
  counterOf,
  delta,
  hashId,
  hex,
  makeSubject,
  prng,
  randInt,
  randomId,
  singleKernel,
  snapshot,
  supplyCell,
  totalSupply,
  type KernelKind,
  type Subject,
} from './helpers/kernels.js';
import { thrown } from './helpers/errors.js';

/** Upstream's test state: balance 100 in [0, 1000]. */
const CELL_100 = supplyCell(100n, 0n, 1000n);

function subject(kind: KernelKind, cell: Uint8Array = CELL_100, indexCapacity?: number): Subject {
  return makeSubject(kind, totalSupply(), { cell, ...(indexCapacity === undefined ? {} : { indexCapacity }) });
}

/** Asserts `s` looks exactly as it did in `before` (state, clock, size, frontier, membership of `probes`). */
function expectUnchanged(s: Subject, before: ReturnType<typeof snapshot>, probes: readonly Uint8Array[]): void {
  expect(snapshot(s, probes)).toEqual(before);
}

function admitError(fn: () => unknown): AdmitError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(AdmitError);
  expect(e).toBeInstanceOf(CtfsError);
  expect(e).toBeInstanceOf(Error);
  return e as AdmitError;
}

const asId = (v: unknown): Uint8Array => v as Uint8Array;
const asDeps = (v: unknown): Uint8Array[] => v as Uint8Array[];

describe.each(KERNEL_KINDS)('%s', (kind) => {
  describe('upstream kernel.rs tests', () => {
    it('test_kernel_admit_no_deps: (100, 0, 1000) + 50 → 150', () => {
      const s = subject(kind);
      expect(s.tryAdmit(fill(1), [], delta(50))).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(150n);
      expect(s.size()).toBe(1);
      expect(s.contains(fill(1))).toBe(true);
    });

    it('test_kernel_admit_with_deps: +50, then +25 depending on it → 175', () => {
      const s = subject(kind);
      expect(s.tryAdmit(fill(1), [], delta(50))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(fill(2), [fill(1)], delta(25))).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(175n);
      expect(s.size()).toBe(2);
    });

    it('test_kernel_causality_violation: dep [99;32] never admitted → CausalityViolation, nothing changed', () => {
      const s = subject(kind);
      expect(s.tryAdmit(fill(1), [], delta(50))).toBe(AdmitCode.Ok);
      const before = snapshot(s, [fill(1), fill(2), fill(99)]);
      expect(s.tryAdmit(fill(2), [fill(99)], delta(25))).toBe(AdmitCode.CausalityViolation);
      expectUnchanged(s, before, [fill(1), fill(2), fill(99)]);
      expect(balanceOf(s.state())).toBe(150n);
    });

    it('test_kernel_invariant_violation: −200 on balance 100 (min 0) → InvariantViolation / Underflow', () => {
      const s = subject(kind);
      const before = snapshot(s, [fill(1)]);
      expect(s.tryAdmit(fill(1), [], delta(-200))).toBe(AdmitCode.InvariantViolation);
      expect(s.lastInvariantError()).toBe(InvariantCode.Underflow);
      expectUnchanged(s, before, [fill(1)]);
      expect(balanceOf(s.state())).toBe(100n);
    });
  });

  describe('causality', () => {
    it('every dep must have been admitted: [f1, phantom, f2] is rejected', () => {
      const s = subject(kind);
      expect(s.tryAdmit(seq(1), [], delta(1))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(2), [], delta(1))).toBe(AdmitCode.Ok);
      const probes = [seq(1), seq(2), seq(3), fill(0xff)];
      const before = snapshot(s, probes);
      expect(s.tryAdmit(seq(3), [seq(1), fill(0xff), seq(2)], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.tryAdmit(seq(3), [seq(1), seq(2), fill(0xff)], delta(1))).toBe(AdmitCode.CausalityViolation);
      expectUnchanged(s, before, probes);
      expect(s.tryAdmit(seq(3), [seq(1), seq(2)], delta(1))).toBe(AdmitCode.Ok);
    });

    it('a fact cannot depend on itself', () => {
      const s = subject(kind);
      expect(s.tryAdmit(seq(1), [seq(1)], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.size()).toBe(0);
    });

    it('a dep admitted later does not make an earlier rejection stick: the fact can be retried', () => {
      const s = subject(kind);
      expect(s.tryAdmit(seq(2), [seq(1)], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.tryAdmit(seq(1), [], delta(1))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(2), [seq(1)], delta(1))).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(102n);
    });

    it(`accepts exactly ${MAX_DEPS} admitted deps, and repeated deps`, () => {
      const s = subject(kind);
      const roots = Array.from({ length: MAX_DEPS }, (_, i) => seq(i + 1));
      for (const r of roots) expect(s.tryAdmit(r, [], delta(0))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(fill(0xaa), roots, delta(1))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(fill(0xbb), [fill(0xaa), fill(0xaa)], delta(1))).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(102n);
    });

    it('a phantom dep is rejected even when its Bloom bits are all set (saturated clock)', () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < 700; i++) expect(s.tryAdmit(hashId(i), [], delta(1))).toBe(AdmitCode.Ok);
      const phantoms = bloomPositivePhantoms(s.clock(), 20);
      expect(phantoms.length).toBe(20);
      const before = snapshot(s, [hashId(0), hashId(699)]);
      for (const p of phantoms) {
        expect(s.clock().mightContain(p)).toBe(true);
        expect(s.tryAdmit(randomId(), [p], delta(1))).toBe(AdmitCode.CausalityViolation);
        expect(s.tryAdmit(randomId(), [hashId(5), p], delta(1))).toBe(AdmitCode.CausalityViolation);
      }
      expectUnchanged(s, before, [hashId(0), hashId(699)]);
      expect(balanceOf(s.state())).toBe(700n);
    });

    it('the kernel keeps its own copy of an admitted id (mutating the caller\'s array changes nothing)', () => {
      const s = subject(kind);
      const id = seq(42);
      expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
      id.fill(0x77);
      expect(s.contains(seq(42))).toBe(true);
      expect(s.contains(fill(0x77))).toBe(false);
      expect(s.tryAdmit(fill(0x78), [seq(42)], delta(1))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(42), [], delta(1))).toBe(AdmitCode.DuplicateFact);
    });
  });

  describe('duplicates', () => {
    it('a repeated id is DuplicateFact with nothing changed, whatever its deps and payload', () => {
      const s = subject(kind);
      expect(s.tryAdmit(seq(1), [], delta(100))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(seq(2), [seq(1)], delta(1))).toBe(AdmitCode.Ok);
      const probes = [seq(1), seq(2)];
      const before = snapshot(s, probes);
      expect(s.tryAdmit(seq(1), [], delta(100))).toBe(AdmitCode.DuplicateFact);
      expect(s.tryAdmit(seq(1), [seq(2)], delta(5))).toBe(AdmitCode.DuplicateFact);
      expect(s.tryAdmit(seq(2), [seq(1)], delta(1))).toBe(AdmitCode.DuplicateFact);
      // A duplicate whose payload would violate the invariant, or is malformed, is still a duplicate.
      expect(s.tryAdmit(seq(1), [], delta(-5000))).toBe(AdmitCode.DuplicateFact);
      expect(s.tryAdmit(seq(1), [], new Uint8Array(3))).toBe(AdmitCode.DuplicateFact);
      expectUnchanged(s, before, probes);
      expect(balanceOf(s.state())).toBe(201n);
    });
  });

  describe('malformed input → MalformedFact, nothing changed', () => {
    const roots = Array.from({ length: MAX_DEPS + 1 }, (_, i) => seq(i + 1));
    const cases: [string, () => [Uint8Array, Uint8Array[], Uint8Array], number][] = [
      ['31-byte id', () => [new Uint8Array(31), [], delta(1)], 0],
      ['33-byte id', () => [new Uint8Array(33).fill(3), [], delta(1)], 0],
      ['empty id', () => [new Uint8Array(0), [], delta(1)], 0],
      ['id as a number[]', () => [asId(Array.from(fill(5))), [], delta(1)], 0],
      ['id as an ArrayBuffer', () => [asId(fill(5).buffer), [], delta(1)], 0],
      ['id as a hex string', () => [asId(toHex(fill(5))), [], delta(1)], 0],
      ['id undefined', () => [asId(undefined), [], delta(1)], 0],
      ['id as a Uint32Array of 8 words', () => [asId(new Uint32Array(8)), [], delta(1)], 0],
      ['deps undefined', () => [fill(5), asDeps(undefined), delta(1)], 0],
      ['deps as a Set', () => [fill(5), asDeps(new Set([seq(1)])), delta(1)], 0],
      ['deps as a bare id', () => [fill(5), asDeps(seq(1)), delta(1)], 0],
      [`${MAX_DEPS + 1} admitted deps`, () => [fill(5), roots, delta(1)], 0],
      ['a 31-byte dep', () => [fill(5), [seq(1), new Uint8Array(31)], delta(1)], 0],
      ['a 33-byte dep', () => [fill(5), [new Uint8Array(33)], delta(1)], 0],
      ['a dep as a number[]', () => [fill(5), asDeps([Array.from(seq(1))]), delta(1)], 0],
      ['a null dep', () => [fill(5), asDeps([seq(1), null]), delta(1)], 0],
      ['payload as a number[]', () => [fill(5), [], asId(Array.from(delta(1)))], 0],
      ['payload as an ArrayBuffer', () => [fill(5), [], asId(delta(1).buffer)], 0],
      ['payload undefined', () => [fill(5), [], asId(undefined)], 0],
      ['15-byte payload', () => [fill(5), [], new Uint8Array(15)], InvariantCode.MalformedPayload],
      ['1-byte payload', () => [fill(5), [], new Uint8Array(1)], InvariantCode.MalformedPayload],
      ['empty payload', () => [fill(5), [seq(1)], new Uint8Array(0)], InvariantCode.MalformedPayload],
    ];

    it.each(cases)('%s', (_name, make, invariantCode) => {
      const s = subject(kind);
      for (const r of roots) expect(s.tryAdmit(r, [], delta(0))).toBe(AdmitCode.Ok);
      const probes = [...roots, fill(5)];
      const before = snapshot(s, probes);
      const [id, deps, payload] = make();
      expect(s.tryAdmit(id, deps, payload)).toBe(AdmitCode.MalformedFact);
      expectUnchanged(s, before, probes);
      if (invariantCode !== 0) expect(s.lastInvariantError()).toBe(invariantCode);

      const err = admitError(() => s.admit(id, deps, payload));
      expect(err.code).toBe('MalformedFact');
      expect(err.admitCode).toBe(AdmitCode.MalformedFact);
      expect(err.invariantError).toBe(invariantCode === 0 ? undefined : 'MalformedPayload');
      expectUnchanged(s, before, probes);
    });

    it('a Buffer (a Uint8Array subclass) is accepted as id, dep and payload', () => {
      const s = subject(kind);
      expect(s.tryAdmit(Buffer.from(seq(1)), [], Buffer.from(delta(1)))).toBe(AdmitCode.Ok);
      expect(s.tryAdmit(Buffer.from(seq(2)), [Buffer.from(seq(1))], Buffer.from(delta(2)))).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(103n);
    });
  });

  describe('payload size', () => {
    it('TotalSupply reads the 16-byte delta and ignores application bytes after it (up to the fact limit)', () => {
      const s = subject(kind);
      const withNonce = new Uint8Array(24);
      withNonce.set(delta(7), 0);
      withNonce.set(u64le(123), 16);
      expect(s.tryAdmit(seq(1), [], withNonce)).toBe(AdmitCode.Ok);
      const max = new Uint8Array(MAX_PAYLOAD_BYTES).fill(0xcc);
      max.set(delta(-3), 0);
      expect(s.tryAdmit(seq(2), [seq(1)], max)).toBe(AdmitCode.Ok);
      expect(balanceOf(s.state())).toBe(104n);
      // The app bytes never reach the state.
      expect(s.state().slice(48)).toEqual(new Uint8Array(16));
    });

    it(`a payload over ${MAX_PAYLOAD_BYTES} bytes → PayloadTooLarge, nothing changed`, () => {
      const s = subject(kind);
      expect(s.tryAdmit(seq(1), [], delta(1))).toBe(AdmitCode.Ok);
      const before = snapshot(s, [seq(1), seq(2)]);
      const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
      expect(s.tryAdmit(seq(2), [seq(1)], big)).toBe(AdmitCode.PayloadTooLarge);
      const err = admitError(() => s.admit(seq(2), [seq(1)], big));
      expect(err.code).toBe('PayloadTooLarge');
      expect(err.admitCode).toBe(AdmitCode.PayloadTooLarge);
      expect(err.invariantError).toBeUndefined();
      expectUnchanged(s, before, [seq(1), seq(2)]);
    });
  });

  describe('capacity (the explicit causal horizon)', () => {
    it('admission beyond indexCapacity → CausalHorizonExceeded, nothing changed; duplicates still detected', () => {
      const cap = 8;
      const s = subject(kind, supplyCell(0n), cap);
      for (let i = 0; i < cap; i++) expect(s.tryAdmit(seq(i), i > 0 ? [seq(i - 1)] : [], delta(1))).toBe(AdmitCode.Ok);
      const probes = [seq(0), seq(cap - 1), seq(cap)];
      const before = snapshot(s, probes);
      expect(s.tryAdmit(seq(cap), [], delta(1))).toBe(AdmitCode.CausalHorizonExceeded);
      expect(s.tryAdmit(seq(cap), [seq(0)], delta(1))).toBe(AdmitCode.CausalHorizonExceeded);
      // A duplicate of a tracked fact is still a duplicate, and a phantom dep still a violation.
      expect(s.tryAdmit(seq(0), [], delta(1))).toBe(AdmitCode.DuplicateFact);
      expect(s.tryAdmit(seq(cap), [fill(0xee)], delta(1))).toBe(AdmitCode.CausalityViolation);
      const err = admitError(() => s.admit(seq(cap), [], delta(1)));
      expect(err.code).toBe('CausalHorizonExceeded');
      expect(err.admitCode).toBe(AdmitCode.CausalHorizonExceeded);
      expectUnchanged(s, before, probes);
      expect(balanceOf(s.state())).toBe(BigInt(cap));
      // Every tracked fact is still a valid dep (the test above only looked; nothing was evicted).
      for (let i = 0; i < cap; i++) expect(s.contains(seq(i))).toBe(true);
    });
  });

  describe('throwing variant', () => {
    it('throws AdmitError with the string code, the numeric code and the invariant reason', () => {
      const s = subject(kind);
      s.admit(seq(1), [], delta(50));
      const probes = [seq(1), seq(2)];
      const before = snapshot(s, probes);

      let err = admitError(() => s.admit(seq(2), [fill(99)], delta(1)));
      expect(err.code).toBe('CausalityViolation');
      expect(err.admitCode).toBe(AdmitCode.CausalityViolation);
      expect(err.invariantError).toBeUndefined();

      err = admitError(() => s.admit(seq(1), [], delta(1)));
      expect(err.code).toBe('DuplicateFact');
      expect(err.admitCode).toBe(AdmitCode.DuplicateFact);

      err = admitError(() => s.admit(seq(2), [seq(1)], delta(-151)));
      expect(err.code).toBe('InvariantViolation');
      expect(err.admitCode).toBe(AdmitCode.InvariantViolation);
      expect(err.invariantError).toBe('Underflow');
      expect(s.lastInvariantError()).toBe(InvariantCode.Underflow);

      err = admitError(() => s.admit(seq(2), [seq(1)], delta(851)));
      expect(err.code).toBe('InvariantViolation');
      expect(err.invariantError).toBe('Overflow');
      expect(s.lastInvariantError()).toBe(InvariantCode.Overflow);

      // A shape error after an invariant rejection does not inherit the stale invariant reason.
      err = admitError(() => s.admit(new Uint8Array(5), [], delta(1)));
      expect(err.code).toBe('MalformedFact');
      expect(err.invariantError).toBeUndefined();

      expectUnchanged(s, before, probes);
      expect(balanceOf(s.state())).toBe(150n);
      // The limits are inclusive: 150 − 150 = 0 and then 0 + 1000 = 1000 are accepted.
      s.admit(seq(2), [seq(1)], delta(-150));
      s.admit(seq(3), [seq(2)], delta(1000));
      expect(balanceOf(s.state())).toBe(1000n);
    });
  });

  describe('frontier', () => {
    it('is empty for a new kernel', () => {
      expect(subject(kind).frontier()).toEqual([]);
    });

    it('a chain has a single head: its last fact', () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < 20; i++) {
        expect(s.tryAdmit(seq(i), i > 0 ? [seq(i - 1)] : [], delta(1))).toBe(AdmitCode.Ok);
        expect(s.frontier().map(hex)).toEqual([hex(seq(i))]);
      }
    });

    it(`10 roots → the last ${FRONTIER_WIDTH}, oldest first`, () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < 10; i++) {
        expect(s.tryAdmit(seq(i), [], delta(1))).toBe(AdmitCode.Ok);
        const expected = Array.from({ length: i + 1 }, (_, j) => hex(seq(j))).slice(-FRONTIER_WIDTH);
        expect(s.frontier().map(hex)).toEqual(expected);
      }
      expect(s.frontier().map(hex)).toEqual([2, 3, 4, 5, 6, 7, 8, 9].map((i) => hex(seq(i))));
    });

    it('a fact depending on two heads removes both and becomes the newest head', () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < 5; i++) s.admit(seq(i), [], delta(1));
      s.admit(fill(0xd0), [seq(1), seq(3)], delta(1));
      expect(s.frontier().map(hex)).toEqual([seq(0), seq(2), seq(4), fill(0xd0)].map(hex));
      // Depending on a fact that is no longer a head (seq(1)) removes nothing else.
      s.admit(fill(0xd1), [seq(1)], delta(1));
      expect(s.frontier().map(hex)).toEqual([seq(0), seq(2), seq(4), fill(0xd0), fill(0xd1)].map(hex));
      // A diamond closes into one head.
      s.admit(fill(0xd2), [seq(0), seq(2), seq(4), fill(0xd0), fill(0xd1)], delta(1));
      expect(s.frontier().map(hex)).toEqual([hex(fill(0xd2))]);
    });

    it('a full frontier: depending on one head frees its slot; depending on none drops the oldest', () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < FRONTIER_WIDTH; i++) s.admit(seq(i), [], delta(1));
      s.admit(fill(0xe0), [seq(3)], delta(1));
      expect(s.frontier().map(hex)).toEqual([0, 1, 2, 4, 5, 6, 7].map((i) => hex(seq(i))).concat(hex(fill(0xe0))));
      s.admit(fill(0xe1), [], delta(1));
      expect(s.frontier().map(hex)).toEqual([1, 2, 4, 5, 6, 7].map((i) => hex(seq(i))).concat([fill(0xe0), fill(0xe1)].map(hex)));
      s.admit(fill(0xe2), [seq(0)], delta(1)); // seq(0) already fell off: the oldest head goes
      expect(s.frontier().map(hex)).toEqual(
        [2, 4, 5, 6, 7].map((i) => hex(seq(i))).concat([fill(0xe0), fill(0xe1), fill(0xe2)].map(hex)),
      );
    });

    it('returns copies', () => {
      const s = subject(kind);
      s.admit(seq(1), [], delta(1));
      s.frontier()[0]!.fill(0);
      expect(s.frontier().map(hex)).toEqual([hex(seq(1))]);
    });
  });

  describe('query', () => {
    it('returns a view exactly when every required id was admitted', () => {
      const s = subject(kind, supplyCell(0n));
      for (let i = 0; i < 600; i++) s.admit(hashId(i), [], delta(1));
      const empty = s.query([]);
      expect(empty).not.toBeNull();
      const view = s.query([hashId(0), hashId(599), hashId(300)]);
      expect(view).not.toBeNull();
      expect(view!.size).toBe(600);
      expect(ConservationState.fromCell(view!.state).balance).toBe(600n);
      expect(view!.frontier.map(hex)).toEqual(s.frontier().map(hex));
      expect(view!.clock.equals(s.clock())).toBe(true);
      // The view is a snapshot: later admissions do not change it.
      s.admit(hashId(600), [], delta(1));
      expect(ConservationState.fromCell(view!.state).balance).toBe(600n);
      expect(view!.size).toBe(600);

      // Exact: ids that the saturated Bloom clock "might contain" are still unknown.
      const phantoms = bloomPositivePhantoms(s.clock(), 10);
      expect(phantoms.length).toBe(10);
      for (const p of phantoms) {
        expect(s.query([p])).toBeNull();
        expect(s.query([hashId(1), p])).toBeNull();
        expect(s.contains(p)).toBe(false);
      }
    });
  });
});

describe.each(SINGLE_KINDS)('%s (single domain)', (kind) => {
  const Ctor = kind === 'Kernel' ? Kernel : kind === 'TwoLaneKernel' ? TwoLaneKernel : EscalatingKernel;

  it("new kernel: the invariant's initial state (TotalSupply: 0 within the full i128 range), empty clock, size 0", () => {
    const k = new Ctor(totalSupply(), { indexCapacity: 64 });
    expect(k.state.toBytes()).toEqual(new ConservationState(0n).toBytes());
    expect(k.clock.popcount()).toBe(0);
    expect(k.saturation).toBe(0);
    expect(k.size).toBe(0);
    expect(k.indexCapacity).toBe(64);
    expect(k.tryAdmitRaw(seq(1), [], delta(1))).toBe(AdmitCode.Ok);
    expect(k.tryAdmitRaw(seq(2), [], delta(-5))).toBe(AdmitCode.Ok);
    expect(ConservationState.fromCell(k.state).balance).toBe(-4n);
  });

  it('new kernel: 64 zero bytes for an invariant without initialState()', () => {
    const k = new Ctor(new CounterInvariant(), { indexCapacity: 64 });
    expect(k.state.toBytes()).toEqual(new Uint8Array(64));
  });

  it('withState accepts a StateCell or 64 bytes, and copies it', () => {
    const bytes = supplyCell(100n, 0n, 1000n);
    const a = Ctor.withState(totalSupply(), bytes, { indexCapacity: 16 });
    const b = Ctor.withState(totalSupply(), StateCell.from(bytes), { indexCapacity: 16 });
    bytes.fill(0);
    expect(balanceOf(a.state.toBytes())).toBe(100n);
    expect(b.state.equals(a.state)).toBe(true);
    expect(a.indexCapacity).toBe(16);
    expect(a).toBeInstanceOf(Ctor);
    expect(() => Ctor.withState(totalSupply(), new Uint8Array(63))).toThrow(InvalidArgumentError);
  });

  it('rejects a non-invariant and invalid index capacities', () => {
    expect(() => new Ctor(null as unknown as Invariant)).toThrow(InvalidArgumentError);
    expect(() => new Ctor({} as Invariant)).toThrow(InvalidArgumentError);
    for (const indexCapacity of [0, -1, 1.5, Number.NaN, '64' as unknown as number]) {
      const e = thrown(() => new Ctor(totalSupply(), { indexCapacity }));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).code).toBe('InvalidArgument');
    }
  });

  it('state and clock are copies; saturation is popcount / 512', () => {
    const k = Ctor.withState(totalSupply(), CELL_100, { indexCapacity: 256 });
    for (let i = 0; i < 40; i++) k.admitRaw(hashId(i), [], delta(1));
    const state = k.state;
    state.bytes.fill(0xff);
    expect(balanceOf(k.state.toBytes())).toBe(140n);
    const clock = k.clock;
    const pop = clock.popcount();
    expect(pop).toBeGreaterThan(0);
    expect(k.saturation).toBe(pop / CLOCK_BITS);
    clock.words.fill(0xffffffff);
    expect(k.clock.popcount()).toBe(pop);
    const out = new Uint8Array(64);
    k.readState(out);
    expect(out).toEqual(k.state.toBytes());
  });

  it('admit(fact) / tryAdmit(fact) take a Fact; a non-object is MalformedFact', () => {
    const k = Ctor.withState(totalSupply(), CELL_100, { indexCapacity: 16 });
    const a = createFact([], delta(10));
    const b = createFact([a.id], delta(20));
    expect(k.tryAdmit(a)).toBe(AdmitCode.Ok);
    k.admit(b);
    expect(balanceOf(k.state.toBytes())).toBe(130n);
    expect(k.tryAdmit(a)).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmit(null as unknown as Fact)).toBe(AdmitCode.MalformedFact);
    expect(k.tryAdmit({} as Fact)).toBe(AdmitCode.MalformedFact);
    expect(admitError(() => k.admit(null as unknown as Fact)).code).toBe('MalformedFact');
    expect(admitError(() => k.admit(a)).code).toBe('DuplicateFact');
    expect(k.size).toBe(2);
  });

  it("reset() forgets every fact and restores the invariant's initial state; reset(cell) sets it", () => {
    const k = Ctor.withState(totalSupply(), CELL_100, { indexCapacity: 64 });
    for (let i = 0; i < 30; i++) k.admitRaw(seq(i), i > 0 ? [seq(i - 1)] : [], delta(1));
    expect(k.size).toBe(30);
    k.reset();
    expect(k.size).toBe(0);
    expect(k.state.toBytes()).toEqual(new ConservationState(0n).toBytes()); // TotalSupply's initialState()
    expect(k.clock.popcount()).toBe(0);
    expect(k.saturation).toBe(0);
    expect(k.frontier()).toEqual([]);
    for (let i = 0; i < 30; i++) expect(k.contains(seq(i))).toBe(false);
    expect(k.query([seq(0)])).toBeNull();
    k.reset(StateCell.from(CELL_100));
    expect(balanceOf(k.state.toBytes())).toBe(100n);
    // Old facts are gone: a dep on one is a violation, and the same id can be admitted again.
    expect(k.tryAdmitRaw(seq(30), [seq(29)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(k.tryAdmitRaw(seq(5), [], delta(1))).toBe(AdmitCode.Ok);
    expect(k.tryAdmitRaw(seq(6), [seq(5)], delta(1))).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state.toBytes())).toBe(102n);
    expect(k.size).toBe(2);
    expect(k.frontier().map(hex)).toEqual([hex(seq(6))]);
    // The full capacity is available again.
    for (let i = 100; i < 162; i++) expect(k.tryAdmitRaw(seq(i), [], delta(0))).toBe(AdmitCode.Ok);
    expect(k.tryAdmitRaw(seq(999), [], delta(0))).toBe(AdmitCode.CausalHorizonExceeded);
  });

  it('reset with a bad cell throws and changes nothing', () => {
    const k = Ctor.withState(totalSupply(), CELL_100, { indexCapacity: 16 });
    k.admitRaw(seq(1), [], delta(1));
    expect(() => k.reset(new Uint8Array(10))).toThrow(InvalidArgumentError);
    expect(k.size).toBe(1);
    expect(balanceOf(k.state.toBytes())).toBe(101n);
    expect(k.contains(seq(1))).toBe(true);
  });

  it('query with a non-array throws InvalidArgumentError', () => {
    const k = new Ctor(totalSupply(), { indexCapacity: 16 });
    expect(() => k.query(seq(1) as unknown as Uint8Array[])).toThrow(InvalidArgumentError);
  });

  it('two kernels can share one TotalSupplyInvariant instance', () => {
    const inv = totalSupply();
    const a = Ctor.withState(inv, supplyCell(0n), { indexCapacity: 256 });
    const b = Ctor.withState(inv, supplyCell(1000n), { indexCapacity: 256 });
    for (let i = 0; i < 100; i++) {
      a.admitRaw(seq(i), [], delta(1));
      b.admitRaw(seq(i), [], delta(-2));
    }
    expect(balanceOf(a.state.toBytes())).toBe(100n);
    expect(balanceOf(b.state.toBytes())).toBe(800n);
  });

  describe('replicated admission', () => {
    it('is refused for TotalSupply (BoundedCommutative): RequiresCoordination, nothing changed', () => {
      const k = Ctor.withState(totalSupply(), CELL_100, { indexCapacity: 16 });
      expect(totalSupply().algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
      const f = createFact([], delta(1));
      const before = [k.state.toBytes(), k.clock.toBytes(), k.size] as const;
      expect(k.tryAdmitReplicated(f)).toBe(AdmitCode.RequiresCoordination);
      expect(k.tryAdmitReplicatedRaw(f.id, f.deps, f.payload)).toBe(AdmitCode.RequiresCoordination);
      let err = admitError(() => k.admitReplicated(f));
      expect(err.code).toBe('RequiresCoordination');
      expect(err.admitCode).toBe(AdmitCode.RequiresCoordination);
      err = admitError(() => k.admitReplicatedRaw(f.id, f.deps, f.payload));
      expect(err.code).toBe('RequiresCoordination');
      expect([k.state.toBytes(), k.clock.toBytes(), k.size]).toEqual(before);
      expect(k.contains(f.id)).toBe(false);
      // The same fact admitted locally is fine.
      expect(k.tryAdmit(f)).toBe(AdmitCode.Ok);
    });

    it('admits content-addressed facts of a coordination-free invariant, and verifies the id', () => {
      const k = new Ctor(new CounterInvariant(), { indexCapacity: 64 });
      const a = createFact([], u64le(5));
      const b = createFact([a.id], u64le(7));
      expect(k.tryAdmitReplicated(a)).toBe(AdmitCode.Ok);
      k.admitReplicatedRaw(b.id, b.deps, b.payload);
      expect(counterOf(k.state.toBytes())).toBe(12n);

      const c = createFact([b.id], u64le(1));
      const probes = [a.id, b.id, c.id];
      const before = { state: k.state.toBytes(), clock: k.clock.toBytes(), size: k.size, frontier: k.frontier().map(hex) };
      const same = () => ({ state: k.state.toBytes(), clock: k.clock.toBytes(), size: k.size, frontier: k.frontier().map(hex) });

      const forged = c.id.slice();
      forged[31] = forged[31]! ^ 1;
      expect(k.tryAdmitReplicatedRaw(forged, c.deps, c.payload)).toBe(AdmitCode.FactIdMismatch);
      expect(k.tryAdmitReplicated({ id: forged, deps: c.deps, payload: c.payload })).toBe(AdmitCode.FactIdMismatch);
      // c's id with another payload or other deps is not their content address either.
      expect(k.tryAdmitReplicatedRaw(c.id, c.deps, u64le(1000))).toBe(AdmitCode.FactIdMismatch);
      expect(k.tryAdmitReplicatedRaw(c.id, [a.id], c.payload)).toBe(AdmitCode.FactIdMismatch);
      expect(k.tryAdmitReplicatedRaw(c.id, [], c.payload)).toBe(AdmitCode.FactIdMismatch);
      const err = admitError(() => k.admitReplicated({ id: forged, deps: c.deps, payload: c.payload }));
      expect(err.code).toBe('FactIdMismatch');
      expect(err.admitCode).toBe(AdmitCode.FactIdMismatch);
      expect(same()).toEqual(before);
      for (const id of [forged]) expect(k.contains(id)).toBe(false);

      // Verified facts still go through causality, dedup and the invariant.
      expect(k.tryAdmitReplicated(a)).toBe(AdmitCode.DuplicateFact);
      const orphan = createFact([fill(0x99)], u64le(1));
      expect(k.tryAdmitReplicated(orphan)).toBe(AdmitCode.CausalityViolation);
      const short = createFact([], new Uint8Array(7));
      expect(k.tryAdmitReplicated(short)).toBe(AdmitCode.MalformedFact);
      expect(k.lastInvariantError).toBe(InvariantCode.MalformedPayload);
      expect(k.tryAdmitReplicatedRaw(new Uint8Array(31), [], u64le(1))).toBe(AdmitCode.MalformedFact);
      expect(k.tryAdmitReplicated(null as unknown as Fact)).toBe(AdmitCode.MalformedFact);
      expect(same()).toEqual(before);

      expect(k.tryAdmitReplicated(c)).toBe(AdmitCode.Ok);
      expect(counterOf(k.state.toBytes())).toBe(13n);
      for (const id of probes) expect(k.contains(id)).toBe(true);
    });

    it('accepts a content-addressed fact whose deps are given in another order (FORMATS §1: order does not matter)', () => {
      const k = new Ctor(new CounterInvariant(), { indexCapacity: 64 });
      const a = createFact([], u64le(1));
      const b = createFact([], u64le(2));
      k.admitReplicated(a);
      k.admitReplicated(b);
      const c = createFact([a.id, b.id], u64le(3)); // c.deps is sorted
      const reversed = [...c.deps].reverse();
      expect(factId(reversed, c.payload)).toEqual(c.id); // c.id is factId(reversed, payload)
      // The id IS the content address of these deps and payload, so this is not a FactIdMismatch.
      // (Admitting it, or refusing non-canonical deps as MalformedFact, would both be defensible.)
      const code = k.tryAdmitReplicatedRaw(c.id, reversed, c.payload);
      expect(code).not.toBe(AdmitCode.FactIdMismatch);
      expect([AdmitCode.Ok, AdmitCode.MalformedFact]).toContain(code);
      // Likewise a repeated dep, which factId collapses.
      const d = createFact([a.id], u64le(4));
      expect(factId([a.id, a.id], d.payload)).toEqual(d.id);
      const code2 = k.tryAdmitReplicatedRaw(d.id, [a.id, a.id], d.payload);
      expect(code2).not.toBe(AdmitCode.FactIdMismatch);
      expect([AdmitCode.Ok, AdmitCode.MalformedFact]).toContain(code2);
    });

    it('reports an oversized payload as PayloadTooLarge, like tryAdmitRaw', () => {
      const k = new Ctor(new CounterInvariant(), { indexCapacity: 64 });
      const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
      expect(k.tryAdmitRaw(fill(1), [], big)).toBe(AdmitCode.PayloadTooLarge);
      expect(k.tryAdmitReplicatedRaw(fill(1), [], big)).toBe(AdmitCode.PayloadTooLarge);
    });
  });

  describe('scratch copy for invariants that do not declare mutatesOnlyOnSuccess', () => {
    it('a rejecting invariant that scribbles over the state leaves it untouched', () => {
      const inv = new ScribblingInvariant();
      const k = new Ctor(inv, { indexCapacity: 64 });
      const op = (kind: number, amount = 0): Uint8Array => {
        const p = new Uint8Array(8);
        p[0] = kind;
        p[1] = amount;
        return p;
      };
      expect(k.tryAdmitRaw(seq(1), [], op(0, 5))).toBe(AdmitCode.Ok);
      expect(k.tryAdmitRaw(seq(2), [seq(1)], op(0, 7))).toBe(AdmitCode.Ok);
      const good = k.state.toBytes();
      expect(good[1]).toBe(12);
      expect(good[8]).toBe(2);
      const before = { state: hex(k.state.toBytes()), clock: hex(k.clock.toBytes()), size: k.size, frontier: k.frontier().map(hex) };
      const now = () => ({ state: hex(k.state.toBytes()), clock: hex(k.clock.toBytes()), size: k.size, frontier: k.frontier().map(hex) });

      const calls = inv.calls;
      expect(k.tryAdmitRaw(seq(3), [seq(2)], op(1))).toBe(AdmitCode.InvariantViolation);
      expect(k.lastInvariantError).toBe(InvariantCode.BoundsViolation);
      expect(now()).toEqual(before);
      expect(k.tryAdmitRaw(seq(3), [seq(2)], op(2))).toBe(AdmitCode.InvariantViolation);
      expect(k.lastInvariantError).toBe(9);
      expect(now()).toEqual(before);
      expect(k.tryAdmitRaw(seq(3), [], new Uint8Array(3))).toBe(AdmitCode.MalformedFact);
      expect(k.lastInvariantError).toBe(InvariantCode.MalformedPayload);
      expect(now()).toEqual(before);
      expect(inv.calls).toBe(calls + 3); // the invariant really ran (and really scribbled)

      let err = admitError(() => k.admitRaw(seq(3), [seq(2)], op(2)));
      expect(err.code).toBe('InvariantViolation');
      expect(err.invariantError).toBe('Custom');
      err = admitError(() => k.admitRaw(seq(3), [seq(2)], op(1)));
      expect(err.invariantError).toBe('BoundsViolation');
      expect(now()).toEqual(before);
      expect(k.contains(seq(3))).toBe(false);

      // And a later success applies on top of the intact state.
      expect(k.tryAdmitRaw(seq(3), [seq(2)], op(0, 1))).toBe(AdmitCode.Ok);
      expect(k.state.toBytes()[1]).toBe(13);
      expect(k.state.toBytes()[8]).toBe(3);
      expect(k.state.toBytes().slice(9)).toEqual(new Uint8Array(55));
    });
  });
});

describe('TwoLaneKernel.exactIndex', () => {
  it('is the exact lane: it holds exactly the admitted ids', () => {
    const k = TwoLaneKernel.withState(totalSupply(), CELL_100, { indexCapacity: 32 });
    k.admitRaw(seq(1), [], delta(1));
    expect(k.tryAdmitRaw(seq(2), [fill(9)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(k.exactIndex.size).toBe(1);
    expect(k.exactIndex.contains(seq(1))).toBe(true);
    expect(k.exactIndex.contains(seq(2))).toBe(false);
    expect(k.exactIndex.capacity).toBe(32);
  });
});

describe('EscalatingKernel', () => {
  it('escalates from Fast to Precise at the first admission that starts with popcount ≥ 205', () => {
    expect(ESCALATION_POPCOUNT).toBe(205);
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 1024 });
    expect(k.mode).toBe(CausalMode.Fast);
    let escalatedAt = -1;
    let popcountAtEscalation = -1;
    let lastFastPopcount = -1;
    for (let i = 0; i < 400; i++) {
      const before = k.clock.popcount();
      expect(k.tryAdmitRaw(hashId(i), i > 0 ? [hashId(i - 1)] : [], delta(1))).toBe(AdmitCode.Ok);
      if (escalatedAt < 0) {
        if (before >= ESCALATION_POPCOUNT) {
          expect(k.mode).toBe(CausalMode.Precise);
          escalatedAt = i;
          popcountAtEscalation = before;
        } else {
          expect(k.mode).toBe(CausalMode.Fast);
          lastFastPopcount = before;
        }
      } else {
        expect(k.mode).toBe(CausalMode.Precise);
      }
    }
    expect(escalatedAt).toBeGreaterThan(0);
    expect(lastFastPopcount).toBeLessThan(ESCALATION_POPCOUNT);
    expect(popcountAtEscalation).toBeGreaterThanOrEqual(ESCALATION_POPCOUNT);
    // The admission that crossed the threshold itself ran in Fast mode.
    expect(popcountAtEscalation / CLOCK_BITS).toBeGreaterThanOrEqual(0.4);
    expect(k.size).toBe(400);
    expect(balanceOf(k.state.toBytes())).toBe(400n);
    // Any earlier fact is still a valid dep in Precise mode.
    expect(k.tryAdmitRaw(fill(1), [hashId(0), hashId(escalatedAt - 1), hashId(399)], delta(1))).toBe(AdmitCode.Ok);
  });

  it('escalate() forces Precise; resetMode() returns to Fast and re-escalates when saturated', () => {
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 1024 });
    k.escalate();
    expect(k.mode).toBe(CausalMode.Precise);
    k.admitRaw(seq(1), [], delta(1));
    expect(k.mode).toBe(CausalMode.Precise);
    k.resetMode();
    expect(k.mode).toBe(CausalMode.Fast);
    k.admitRaw(seq(2), [seq(1)], delta(1));
    expect(k.mode).toBe(CausalMode.Fast); // popcount is tiny
    for (let i = 0; i < 300; i++) k.admitRaw(hashId(i), [], delta(1));
    expect(k.clock.popcount()).toBeGreaterThanOrEqual(ESCALATION_POPCOUNT);
    expect(k.mode).toBe(CausalMode.Precise);
    k.resetMode();
    expect(k.mode).toBe(CausalMode.Fast);
    expect(k.tryAdmitRaw(seq(3), [seq(2), hashId(0)], delta(1))).toBe(AdmitCode.Ok);
    expect(k.mode).toBe(CausalMode.Precise);
    // A phantom dep is rejected in either mode.
    k.resetMode();
    expect(k.tryAdmitRaw(seq(4), [fill(0x42)], delta(1))).toBe(AdmitCode.CausalityViolation);
    k.escalate();
    expect(k.tryAdmitRaw(seq(4), [fill(0x42)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(balanceOf(k.state.toBytes())).toBe(303n);
  });

  it('the mode lives in shared memory: an attached kernel sees it', () => {
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    const other = EscalatingKernel.attach(k.shared, totalSupply());
    expect(other.mode).toBe(CausalMode.Fast);
    k.escalate();
    expect(other.mode).toBe(CausalMode.Precise);
    expect(EscalatingKernel.attach(k.shared, totalSupply()).mode).toBe(CausalMode.Precise);
  });

  it('returns exactly the outcomes of a Kernel fed the same sequence, rejections included', () => {
    for (const forcePrecise of [false, true]) {
      const rng = prng(forcePrecise ? 7 : 11);
      const cell = supplyCell(500n, 0n, 1000n);
      const esc = EscalatingKernel.withState(totalSupply(), cell, { indexCapacity: 2048 });
      const ref = Kernel.withState(totalSupply(), cell, { indexCapacity: 2048 });
      if (forcePrecise) esc.escalate();
      const issued: Uint8Array[] = [];
      const codes: number[][] = [[], []];
      const modes = new Set<number>();
      for (let i = 0; i < 1500; i++) {
        const r = rng();
        let id: Uint8Array;
        const deps: Uint8Array[] = [];
        if (r < 0.1 && issued.length > 0) id = issued[randInt(rng, issued.length)]!; // repeat
        else id = hashId(i, 99);
        const nDeps = randInt(rng, 4);
        for (let d = 0; d < nDeps && issued.length > 0; d++) deps.push(issued[randInt(rng, issued.length)]!);
        if (rng() < 0.1) deps.push(hashId(i, 12345)); // phantom
        const payload = rng() < 0.05 ? new Uint8Array(8) : delta(randInt(rng, 301) - 150);
        codes[0]!.push(esc.tryAdmitRaw(id, deps, payload));
        codes[1]!.push(ref.tryAdmitRaw(id, deps, payload));
        modes.add(esc.mode);
        issued.push(id);
      }
      expect(codes[0]).toEqual(codes[1]);
      const distinct = new Set(codes[0]);
      for (const c of [AdmitCode.Ok, AdmitCode.CausalityViolation, AdmitCode.DuplicateFact, AdmitCode.InvariantViolation, AdmitCode.MalformedFact]) {
        expect(distinct.has(c)).toBe(true);
      }
      expect(esc.state.toBytes()).toEqual(ref.state.toBytes());
      expect(esc.clock.toBytes()).toEqual(ref.clock.toBytes());
      expect(esc.size).toBe(ref.size);
      expect(esc.frontier().map(hex)).toEqual(ref.frontier().map(hex));
      expect(modes.has(CausalMode.Precise)).toBe(true);
      if (!forcePrecise) expect(modes.has(CausalMode.Fast)).toBe(true);
    }
  });
});

describe('TenantKernel', () => {
  const cell = (b: bigint) => supplyCell(b, 0n, 1000n);

  it('test_tenant_kernel_isolation: balances 150 / 600; a cross-tenant dep is a CausalityViolation', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 64 });
    tk.registerTenant(1, cell(100n));
    tk.registerTenant(2, StateCell.from(cell(500n)));
    expect(tk.tryAdmit(1, fill(1), [], delta(50))).toBe(AdmitCode.Ok);
    expect(tk.tryAdmit(2, fill(2), [], delta(100))).toBe(AdmitCode.Ok);
    expect(ConservationState.fromCell(tk.state(1)).balance).toBe(150n);
    expect(ConservationState.fromCell(tk.state(2)).balance).toBe(600n);
    const before2 = [hex(tk.state(2).toBytes()), hex(tk.clock(2).toBytes()), tk.size(2)];
    const before1 = [hex(tk.state(1).toBytes()), hex(tk.clock(1).toBytes()), tk.size(1), tk.frontier(1).map(hex)];
    expect(tk.tryAdmit(1, fill(3), [fill(2)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(tk.tryAdmit(2, fill(3), [fill(1)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(tk.contains(1, fill(2))).toBe(false);
    expect(tk.query(1, [fill(2)])).toBeNull();
    expect([hex(tk.state(1).toBytes()), hex(tk.clock(1).toBytes()), tk.size(1), tk.frontier(1).map(hex)]).toEqual(before1);
    expect([hex(tk.state(2).toBytes()), hex(tk.clock(2).toBytes()), tk.size(2)]).toEqual(before2);
    expect(tk.tryAdmit(1, fill(3), [fill(1)], delta(1))).toBe(AdmitCode.Ok);
    expect(ConservationState.fromCell(tk.state(1)).balance).toBe(151n);
    expect(ConservationState.fromCell(tk.state(2)).balance).toBe(600n);
  });

  it('test_tenant_kernel_saturation_isolation: 200 facts in tenant 1, tenant 2 saturation exactly 0', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 512 });
    tk.registerTenant(1, supplyCell(0n));
    tk.registerTenant(2, supplyCell(0n));
    for (let i = 0; i < 200; i++) expect(tk.tryAdmit(1, seq(i), [], delta(1))).toBe(AdmitCode.Ok);
    expect(tk.saturation(1)).toBeGreaterThan(0.1);
    expect(tk.saturation(1)).toBe(tk.clock(1).popcount() / CLOCK_BITS);
    expect(tk.saturation(2)).toBe(0);
    expect(tk.clock(2).popcount()).toBe(0);
    expect(tk.size(2)).toBe(0);
    expect(tk.frontier(2)).toEqual([]);
    expect(tk.size(1)).toBe(200);
  });

  it('each tenant deduplicates on its own: the same id can be admitted once per tenant', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 64 });
    tk.registerTenant(0, cell(0n));
    tk.registerTenant(65535, cell(0n));
    expect(tk.tryAdmit(0, seq(1), [], delta(100))).toBe(AdmitCode.Ok);
    expect(tk.tryAdmit(65535, seq(1), [], delta(100))).toBe(AdmitCode.Ok);
    expect(tk.tryAdmit(0, seq(1), [], delta(100))).toBe(AdmitCode.DuplicateFact);
    expect(tk.tryAdmit(65535, seq(1), [], delta(100))).toBe(AdmitCode.DuplicateFact);
    expect(ConservationState.fromCell(tk.state(0)).balance).toBe(100n);
    expect(ConservationState.fromCell(tk.state(65535)).balance).toBe(100n);
  });

  it('interleaved admissions across tenants (one shared invariant) keep every state separate', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 512 });
    for (const t of [1, 2, 3]) tk.registerTenant(t, supplyCell(0n));
    for (let i = 0; i < 300; i++) {
      const t = (i % 3) + 1;
      expect(tk.tryAdmit(t, seq(i), [], delta(t))).toBe(AdmitCode.Ok);
    }
    expect([1, 2, 3].map((t) => ConservationState.fromCell(tk.state(t)).balance)).toEqual([100n, 200n, 300n]);
    expect([1, 2, 3].map((t) => tk.size(t))).toEqual([100, 100, 100]);
  });

  it('per-tenant index capacity → CausalHorizonExceeded in that tenant only', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 4 });
    tk.registerTenant(1, supplyCell(0n));
    tk.registerTenant(2, supplyCell(0n));
    for (let i = 0; i < 4; i++) expect(tk.tryAdmit(1, seq(i), [], delta(1))).toBe(AdmitCode.Ok);
    expect(tk.tryAdmit(1, seq(4), [], delta(1))).toBe(AdmitCode.CausalHorizonExceeded);
    expect(tk.tryAdmit(2, seq(4), [], delta(1))).toBe(AdmitCode.Ok);
    const err = admitError(() => tk.admit(1, seq(4), [], delta(1)));
    expect(err.code).toBe('CausalHorizonExceeded');
    expect(tk.size(1)).toBe(4);
    expect(ConservationState.fromCell(tk.state(1)).balance).toBe(4n);
  });

  it('registration: duplicate id → TenantAlreadyRegistered; beyond maxTenants → TenantLimitExceeded', () => {
    const tk = new TenantKernel(totalSupply(), { maxTenants: 2, indexCapacity: 16 });
    expect(tk.maxTenants).toBe(2);
    tk.registerTenant(10, cell(100n));
    tk.admit(10, seq(1), [], delta(5));
    let e = thrown(() => tk.registerTenant(10, cell(999n)));
    expect(e).toBeInstanceOf(TenantError);
    expect(e).toBeInstanceOf(CtfsError);
    expect((e as TenantError).code).toBe('TenantAlreadyRegistered');
    // The existing tenant is untouched.
    expect(ConservationState.fromCell(tk.state(10)).balance).toBe(105n);
    expect(tk.contains(10, seq(1))).toBe(true);
    tk.registerTenant(20);
    expect(tk.state(20).toBytes()).toEqual(new ConservationState(0n).toBytes()); // the invariant's initial state
    e = thrown(() => tk.registerTenant(30, cell(0n)));
    expect(e).toBeInstanceOf(TenantError);
    expect((e as TenantError).code).toBe('TenantLimitExceeded');
    expect(tk.hasTenant(30)).toBe(false);
    // Re-registering an existing id when full is still "already registered".
    expect((thrown(() => tk.registerTenant(20)) as TenantError).code).toBe('TenantAlreadyRegistered');
    expect(tk.tenants()).toEqual([10, 20]);
    expect(tk.tryAdmit(30, seq(1), [], delta(1))).toBe(AdmitCode.UnknownTenant);
  });

  it(`default maxTenants is ${DEFAULT_MAX_TENANTS}`, () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 4 });
    for (let t = 0; t < DEFAULT_MAX_TENANTS; t++) tk.registerTenant(t * 1000);
    expect(tk.tenants().length).toBe(DEFAULT_MAX_TENANTS);
    expect((thrown(() => tk.registerTenant(65535)) as TenantError).code).toBe('TenantLimitExceeded');
  });

  it('bad tenant ids (−1, 65536, 1.5, NaN, "1") → InvalidArgumentError on registration', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 4 });
    for (const bad of [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      const e = thrown(() => tk.registerTenant(bad));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).code).toBe('InvalidArgument');
      expect(tk.hasTenant(bad)).toBe(false);
    }
    expect(tk.tenants()).toEqual([]);
    expect(() => tk.registerTenant(1, new Uint8Array(63))).toThrow(InvalidArgumentError);
    expect(tk.hasTenant(1)).toBe(false);
    expect(tk.tenants()).toEqual([]);
  });

  it('invalid maxTenants → InvalidArgumentError', () => {
    for (const maxTenants of [0, -1, 1.5, 65537, Number.NaN]) {
      expect(() => new TenantKernel(totalSupply(), { maxTenants })).toThrow(InvalidArgumentError);
    }
    expect(new TenantKernel(totalSupply(), { maxTenants: 65536 }).maxTenants).toBe(65536);
    expect(() => new TenantKernel(null as unknown as Invariant)).toThrow(InvalidArgumentError);
  });

  it('unknown tenants: tryAdmit → UnknownTenant, admit → AdmitError, every read → UnknownTenantError', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 16 });
    tk.registerTenant(1, cell(100n));
    for (const t of [2, 0, -1, 65536, 1.5, Number.NaN]) {
      expect(tk.tryAdmit(t, seq(1), [], delta(1))).toBe(AdmitCode.UnknownTenant);
      const err = admitError(() => tk.admit(t, seq(1), [], delta(1)));
      expect(err.code).toBe('UnknownTenant');
      expect(err.admitCode).toBe(AdmitCode.UnknownTenant);
      const reads: (() => unknown)[] = [
        () => tk.state(t),
        () => tk.clock(t),
        () => tk.saturation(t),
        () => tk.size(t),
        () => tk.contains(t, seq(1)),
        () => tk.frontier(t),
        () => tk.lastInvariantError(t),
        () => tk.query(t, []),
      ];
      for (const read of reads) {
        const e = thrown(read);
        expect(e).toBeInstanceOf(UnknownTenantError);
        expect(e).toBeInstanceOf(CtfsError);
        expect((e as UnknownTenantError).code).toBe('UnknownTenant');
      }
      expect(tk.hasTenant(t)).toBe(false);
    }
    expect(tk.size(1)).toBe(0);
    expect(ConservationState.fromCell(tk.state(1)).balance).toBe(100n);
  });

  it('throwing admit reports the invariant reason per tenant', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 16 });
    tk.registerTenant(1, cell(100n));
    tk.registerTenant(2, cell(900n));
    let err = admitError(() => tk.admit(1, seq(1), [], delta(-101)));
    expect(err.invariantError).toBe('Underflow');
    expect(tk.lastInvariantError(1)).toBe(InvariantCode.Underflow);
    err = admitError(() => tk.admit(2, seq(1), [], delta(101)));
    expect(err.invariantError).toBe('Overflow');
    expect(tk.lastInvariantError(2)).toBe(InvariantCode.Overflow);
    expect(tk.lastInvariantError(1)).toBe(InvariantCode.Underflow);
    err = admitError(() => tk.admit(1, seq(1), [], new Uint8Array(4)));
    expect(err.code).toBe('MalformedFact');
    expect(err.invariantError).toBe('MalformedPayload');
    err = admitError(() => tk.admit(1, new Uint8Array(4), [], delta(1)));
    expect(err.code).toBe('MalformedFact');
    expect(err.invariantError).toBeUndefined();
    expect(tk.size(1) + tk.size(2)).toBe(0);
  });

  it('query returns a tenant view exactly when the tenant admitted every required id', () => {
    const tk = new TenantKernel(totalSupply(), { indexCapacity: 16 });
    tk.registerTenant(1, cell(100n));
    tk.admit(1, seq(1), [], delta(1));
    const v = tk.query(1, [seq(1)]);
    expect(v).not.toBeNull();
    expect(v!.size).toBe(1);
    expect(ConservationState.fromCell(v!.state).balance).toBe(101n);
    expect(v!.frontier.map(hex)).toEqual([hex(seq(1))]);
    expect(tk.query(1, [seq(2)])).toBeNull();
    expect(() => tk.query(1, seq(1) as unknown as Uint8Array[])).toThrow(InvalidArgumentError);
  });
});

describe('i128 bounds at kernel level', () => {
  it.each(KERNEL_KINDS)('%s: full-range state, I128_MAX + 1 → Overflow, balance unchanged', (kind) => {
    const s = makeSubject(kind, totalSupply(), { cell: supplyCell(I128_MAX) });
    expect(s.tryAdmit(seq(1), [], delta(1))).toBe(AdmitCode.InvariantViolation);
    expect(s.lastInvariantError()).toBe(InvariantCode.Overflow);
    expect(balanceOf(s.state())).toBe(I128_MAX);
    expect(s.tryAdmit(seq(1), [], delta(0))).toBe(AdmitCode.Ok);
  });
});

describe('sanity of the helpers', () => {
  it('hashId gives distinct 32-byte ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, (_, i) => hex(hashId(i))));
    expect(ids.size).toBe(1000);
    expect(hashId(1)).toHaveLength(32);
    expect(singleKernel('Kernel', totalSupply()).indexCapacity).toBe(4096);
  });
});

describe('TenantKernel.reset', () => {
  it('forgets one tenant and leaves the others untouched', () => {
    const kernel = new TenantKernel(new TotalSupplyInvariant(), { indexCapacity: 64 });
    kernel.registerTenant(1, new ConservationState(10n).toCell());
    kernel.registerTenant(2, new ConservationState(20n).toCell());
    kernel.admit(1, seq(1), [], i128le(5n));
    kernel.admit(2, seq(1), [], i128le(7n));
    kernel.reset(1, new ConservationState(100n).toCell());
    expect(kernel.size(1)).toBe(0);
    expect(kernel.contains(1, seq(1))).toBe(false);
    expect(ConservationState.fromCell(kernel.state(1)).balance).toBe(100n);
    expect(kernel.frontier(1)).toEqual([]);
    expect(kernel.saturation(1)).toBe(0);
    // tenant 2 is unchanged
    expect(kernel.size(2)).toBe(1);
    expect(ConservationState.fromCell(kernel.state(2)).balance).toBe(27n);
    // tenant 1 admits the same id again after the reset
    expect(kernel.tryAdmit(1, seq(1), [], i128le(1n))).toBe(AdmitCode.Ok);
    expect(() => kernel.reset(9)).toThrow(UnknownTenantError);
  });
});
