/**
 * The built-in invariants other than TotalSupply: Max, GCounter, BoundedGCounter, LWW, Uniqueness
 * and GGraph, with their state classes and payload builders.
 *
 * - upstream unit tests (§10.1 invariants/monotonic.rs, uniqueness.rs, graph.rs, and the
 *   algebraic_properties / proptest_commutativity integration tests), adapted;
 * - exact byte layouts of states and payloads, written by hand here (DataView / BigInt), not with
 *   the library's own encoders;
 * - malformed input, rejections that leave the state untouched, and state memory placement;
 * - regressions against the upstream weak spots of §12.2;
 * - fast-check properties against BigInt reference models;
 * - algebraic classes judged by acceptance semantics (order-independence, idempotence, and
 *   counterexamples for the bounded ones);
 * - every invariant through every kernel kind.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AlgebraicClass,
  BoundedCounterState,
  BoundedGCounterInvariant,
  CtfsError,
  EscalatingKernel,
  GCounterInvariant,
  GCounterState,
  GGraphInvariant,
  GraphState,
  InvariantCode,
  Kernel,
  LWW_PAYLOAD_BYTES,
  LWWInvariant,
  LWWState,
  MAX_VERTICES,
  MaxInvariant,
  MaxState,
  STATE_CELL_BYTES,
  StateCell,
  TenantKernel,
  TwoLaneKernel,
  U64_MAX,
  UNIQUENESS_ELEMENTS,
  UniquenessInvariant,
  UniquenessState,
  ValueOutOfRangeError,
  factId,
  isCoordinationFree,
  toHex,
  type Invariant,
} from './helpers/lib.js';
import { expectError, expectInvalid } from './helpers/errors.js';
import { fill, seq } from './helpers/ids.js';

// ---------------------------------------------------------------------------------------------
// Independent byte helpers (DataView / BigInt; deliberately not the library's encoders)

const U64 = (1n << 64n) - 1n;
const { Ok, Overflow, BoundsViolation, MalformedPayload, DuplicateElement } = InvariantCode;

function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function rd64(b: Uint8Array, offset: number): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(offset, true);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A 64-byte state: zeros, with `chunks` ([offset, bytes]) written in. */
function cell64(...chunks: [number, Uint8Array | number[]][]): Uint8Array {
  const s = new Uint8Array(64);
  for (const [o, b] of chunks) s.set(b, o);
  return s;
}

/** Little-endian bytes → bigint. */
function leBig(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/** bigint → `n` little-endian bytes. */
function bigLe(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Big-endian bytes → bigint (so numeric order = bytewise lexicographic order, equal lengths). */
function beBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

const hex = toHex;
const zeros = (n: number): string => '00'.repeat(n);

// ---------------------------------------------------------------------------------------------
// Reference models: (state, payload) → (code, new state bytes). They read only the payload prefix.

interface Step {
  readonly code: number;
  readonly state: Uint8Array;
}
type Model = (state: Uint8Array, payload: Uint8Array) => Step;

const unchanged = (s: Uint8Array, code: number): Step => ({ code, state: s.slice() });

const maxModel: Model = (s, p) => {
  const out = s.slice();
  const q = rd64(p, 0);
  if (q > rd64(s, 0)) out.set(le64(q), 0);
  return { code: Ok, state: out };
};

const gcounterModel: Model = (s, p) => {
  const sum = rd64(s, 0) + rd64(p, 0);
  const out = s.slice();
  out.set(le64(sum > U64 ? U64 : sum), 0);
  return { code: Ok, state: out };
};

const boundedModel: Model = (s, p) => {
  const nv = rd64(s, 0) + rd64(p, 0);
  if (nv > U64 || nv > rd64(s, 8)) return unchanged(s, Overflow);
  const out = s.slice();
  out.set(le64(nv), 0);
  return { code: Ok, state: out };
};

const lwwKey = (b: Uint8Array): [bigint, bigint, bigint] => [rd64(b, 32), rd64(b, 40), beBig(b.subarray(0, 32))];
const lwwModel: Model = (s, p) => {
  const [pt, pn, pv] = lwwKey(p);
  const [st, sn, sv] = lwwKey(s);
  const newer = pt !== st ? pt > st : pn !== sn ? pn > sn : pv > sv;
  const out = s.slice();
  if (newer) out.set(p.subarray(0, 48), 0);
  return { code: Ok, state: out };
};

const uniquenessModel: Model = (s, p) => {
  const e = p[0]! + 256 * p[1]!;
  if (e >= 512) return unchanged(s, BoundsViolation);
  const set = leBig(s);
  const bit = 1n << BigInt(e);
  if ((set & bit) !== 0n) return unchanged(s, DuplicateElement);
  return { code: Ok, state: bigLe(set | bit, 64) };
};

/**
 * Upstream §4.3 rules 1–6, plus the TS state validation (vertex count ≤ 16, flags, degree limits
 * opt-in) and one correction: an undirected edge is checked against the limits at both endpoints.
 */
function ggraphModel(degreeLimits: boolean): Model {
  return (s, p) => {
    const n = s[32]!;
    const maxOut = s[33]!;
    const maxIn = s[34]!;
    const flags = s[35]!;
    if (n > 16 || flags > 3) return unchanged(s, BoundsViolation);
    if (!degreeLimits && (maxOut !== 0 || maxIn !== 0)) return unchanged(s, BoundsViolation);
    const f = p[0]!;
    const t = p[1]!;
    if (f >= n || t >= n) return unchanged(s, BoundsViolation);
    if (f === t && (flags & 2) === 0) return unchanged(s, BoundsViolation);
    let adj = leBig(s.subarray(0, 32));
    const bit = (a: number, b: number): bigint => 1n << BigInt(a * 16 + b);
    const has = (a: number, b: number): boolean => (adj & bit(a, b)) !== 0n;
    if (has(f, t)) return unchanged(s, Ok);
    const outDeg = (v: number): number => {
      let d = 0;
      for (let x = 0; x < n; x++) if (has(v, x)) d++;
      return d;
    };
    const inDeg = (v: number): number => {
      let d = 0;
      for (let x = 0; x < n; x++) if (has(x, v)) d++;
      return d;
    };
    if (maxOut !== 0 && outDeg(f) >= maxOut) return unchanged(s, Overflow);
    if (maxIn !== 0 && inDeg(t) >= maxIn) return unchanged(s, Overflow);
    // Undirected: the mirrored edge t → f counts against t's out-degree and f's in-degree too.
    if ((flags & 1) === 0 && f !== t) {
      if (maxOut !== 0 && outDeg(t) >= maxOut) return unchanged(s, Overflow);
      if (maxIn !== 0 && inDeg(f) >= maxIn) return unchanged(s, Overflow);
    }
    adj |= bit(f, t);
    if ((flags & 1) === 0) adj |= bit(t, f);
    const out = s.slice();
    out.set(bigLe(adj, 32), 0);
    return { code: Ok, state: out };
  };
}

function runModel(model: Model, initial: Uint8Array, payloads: readonly Uint8Array[]): { codes: number[]; state: Uint8Array } {
  let s: Uint8Array = initial.slice();
  const codes: number[] = [];
  for (const p of payloads) {
    const r = model(s, p);
    codes.push(r.code);
    s = r.state;
  }
  return { codes, state: s };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const U64_EDGES = [
  0n,
  1n,
  2n,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x1_0000_0001n,
  0xffff_ffff_0000_0000n,
  (1n << 63n) - 1n,
  1n << 63n,
  U64 - 20n,
  U64 - 10n,
  U64 - 1n,
  U64,
];
const u64Arb: fc.Arbitrary<bigint> = fc.oneof(
  fc.bigInt({ min: 0n, max: U64 }),
  fc.constantFrom(...U64_EDGES),
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: U64 - 1000n, max: U64 }),
  fc.bigInt({ min: 0xffff_ff00n, max: 0x1_0000_0100n }),
);
const bytesArb = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
/** Padding: zeros or random bytes. */
const padArb = (n: number): fc.Arbitrary<Uint8Array> => fc.oneof(fc.constant(new Uint8Array(n)), bytesArb(n));
const extraArb = fc.uint8Array({ maxLength: 9 });

const u64StateArb = fc.tuple(u64Arb, padArb(56)).map(([v, pad]) => concat(le64(v), pad));
const u64PayloadArb = u64Arb.map(le64);

const boundedStateArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(u64Arb, u64Arb, padArb(48)).map(([a, b, pad]) => concat(le64(a < b ? a : b), le64(a < b ? b : a), pad)),
  fc
    .tuple(u64Arb, fc.bigInt({ min: 0n, max: 100n }), padArb(48))
    .map(([v, h, pad]) => concat(le64(v), le64(v + h > U64 ? U64 : v + h), pad)),
  bytesArb(64), // anything, including value > capacity
);
const boundedPayloadArb: fc.Arbitrary<Uint8Array> = fc.oneof(u64Arb, fc.bigInt({ min: 0n, max: 100n })).map(le64);

const lwwValueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  bytesArb(32),
  fc.integer({ min: 0, max: 3 }).map(fill),
  fc.integer({ min: 0, max: 3 }).map((x) => {
    const v = fill(1);
    v[31] = x;
    return v;
  }),
);
const lwwSmallArb: fc.Arbitrary<bigint> = fc.oneof(u64Arb, fc.bigInt({ min: 0n, max: 3n }));
const lwwPayloadArb = fc
  .tuple(lwwValueArb, lwwSmallArb, lwwSmallArb)
  .map(([v, t, n]) => concat(v, le64(t), le64(n)));
const lwwStateArb = fc.tuple(lwwPayloadArb, padArb(16)).map(([p, pad]) => concat(p, pad));

const elementsToSet = (es: readonly number[]): Uint8Array => {
  const s = new Uint8Array(64);
  for (const e of es) s[e >> 3] = s[e >> 3]! | (1 << (e & 7));
  return s;
};
const uniquenessStateArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  bytesArb(64),
  fc.constant(new Uint8Array(64)),
  fc.array(fc.integer({ min: 0, max: 511 }), { maxLength: 40 }).map(elementsToSet),
);
const elementArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 511 }),
  fc.integer({ min: 0, max: 0xffff }),
  fc.constantFrom(0, 42, 255, 256, 511, 512, 554, 0xffff),
);
const uniquenessPayloadArb = elementArb.map((e) => new Uint8Array([e & 0xff, e >>> 8]));

const adjacencyArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  bytesArb(32),
  fc.constant(new Uint8Array(32)),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 12 }).map((bits) => elementsToSet(bits).subarray(0, 32)),
);
const degreeArb: fc.Arbitrary<number> = fc.oneof(
  { arbitrary: fc.constant(0), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 2 },
  { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
);
const graphStateArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    adjacencyArb,
    fc.oneof({ arbitrary: fc.integer({ min: 0, max: 16 }), weight: 5 }, { arbitrary: fc.integer({ min: 17, max: 255 }), weight: 1 }),
    degreeArb,
    degreeArb,
    fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 5 }, { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 }),
    padArb(28),
  )
  .map(([adj, n, mo, mi, flags, pad]) => concat(adj, new Uint8Array([n, mo, mi, flags]), pad));
/** Well-formed states for GGraphInvariant(): vertex count ≤ 16, known flags, no degree limits. */
const latticeGraphStateArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(adjacencyArb, fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 3 }), padArb(28))
  .map(([adj, n, flags, pad]) => concat(adj, new Uint8Array([n, 0, 0, flags]), pad));
const vertexArb: fc.Arbitrary<number> = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 17 }), weight: 5 },
  { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
);
const edgePayloadArb = fc.tuple(vertexArb, vertexArb).map(([f, t]) => new Uint8Array([f, t]));

// ---------------------------------------------------------------------------------------------
// One description per invariant, for the generic tests

interface Spec {
  readonly name: string;
  readonly make: () => Invariant;
  readonly minPayload: number;
  readonly model: Model;
  readonly stateArb: fc.Arbitrary<Uint8Array>;
  readonly payloadArb: fc.Arbitrary<Uint8Array>;
  /** A state with a payload it accepts with a change. */
  readonly sample: { readonly state: Uint8Array; readonly ok: Uint8Array };
}

const SPECS: readonly Spec[] = [
  {
    name: 'MaxInvariant',
    make: () => new MaxInvariant(),
    minPayload: 8,
    model: maxModel,
    stateArb: u64StateArb,
    payloadArb: u64PayloadArb,
    sample: { state: cell64([0, le64(100n)]), ok: le64(200n) },
  },
  {
    name: 'GCounterInvariant',
    make: () => new GCounterInvariant(),
    minPayload: 8,
    model: gcounterModel,
    stateArb: u64StateArb,
    payloadArb: u64PayloadArb,
    sample: { state: cell64([0, le64(10n)]), ok: le64(20n) },
  },
  {
    name: 'BoundedGCounterInvariant',
    make: () => new BoundedGCounterInvariant(),
    minPayload: 8,
    model: boundedModel,
    stateArb: boundedStateArb,
    payloadArb: boundedPayloadArb,
    sample: { state: cell64([0, le64(50n)], [8, le64(100n)]), ok: le64(40n) },
  },
  {
    name: 'LWWInvariant',
    make: () => new LWWInvariant(),
    minPayload: 48,
    model: lwwModel,
    stateArb: lwwStateArb,
    payloadArb: lwwPayloadArb,
    sample: { state: cell64([0, fill(1)], [32, le64(10n)], [40, le64(1n)]), ok: concat(fill(5), le64(10n), le64(5n)) },
  },
  {
    name: 'UniquenessInvariant',
    make: () => new UniquenessInvariant(),
    minPayload: 2,
    model: uniquenessModel,
    stateArb: uniquenessStateArb,
    payloadArb: uniquenessPayloadArb,
    sample: { state: cell64([5, [0x04]]), ok: new Uint8Array([43, 0]) },
  },
  {
    name: 'GGraphInvariant()',
    make: () => new GGraphInvariant(),
    minPayload: 2,
    model: ggraphModel(false),
    stateArb: graphStateArb,
    payloadArb: edgePayloadArb,
    sample: { state: cell64([32, [4, 0, 0, 0]]), ok: new Uint8Array([0, 1]) },
  },
  {
    name: 'GGraphInvariant({ degreeLimits: true })',
    make: () => new GGraphInvariant({ degreeLimits: true }),
    minPayload: 2,
    model: ggraphModel(true),
    stateArb: graphStateArb,
    payloadArb: edgePayloadArb,
    sample: { state: cell64([32, [4, 1, 1, 1]]), ok: new Uint8Array([0, 1]) },
  },
];

/** Runs `payloads` on a plain state, a SharedArrayBuffer view at offset 64 and an unaligned view. */
function runPlacements(inv: Invariant, initial: Uint8Array, payloads: readonly Uint8Array[]): { codes: number[][]; states: string[] } {
  const plain = initial.slice();

  const sab = new SharedArrayBuffer(192);
  const sabAll = new Uint8Array(sab);
  sabAll.fill(0xee);
  const shared = new Uint8Array(sab, 64, 64);
  shared.set(initial);

  const backing = new Uint8Array(66).fill(0xcc);
  const unaligned = backing.subarray(1, 65);
  unaligned.set(initial);
  expect(unaligned.byteOffset).toBe(1);

  const codes: number[][] = [[], [], []];
  // Interleaved on one invariant instance (it caches the word view of the last state it saw).
  for (const p of payloads) {
    // The shared state gets its payload as a view at an odd offset of a larger buffer.
    const pb = new Uint8Array(p.length + 3).fill(0x77);
    pb.set(p, 3);
    codes[0]!.push(inv.apply(p, plain));
    codes[1]!.push(inv.apply(pb.subarray(3), shared));
    codes[2]!.push(inv.apply(p, unaligned));
  }
  expect(sabAll.subarray(0, 64).every((x) => x === 0xee)).toBe(true);
  expect(sabAll.subarray(128).every((x) => x === 0xee)).toBe(true);
  expect(backing[0]).toBe(0xcc);
  expect(backing[65]).toBe(0xcc);
  return { codes, states: [hex(plain), hex(shared), hex(unaligned)] };
}

// ---------------------------------------------------------------------------------------------
// 1. Upstream unit tests, adapted

describe('upstream invariants/monotonic.rs', () => {
  it('test_max_invariant: 100 → 200, then 50 keeps 200', () => {
    const inv = new MaxInvariant();
    const s = new MaxState(100n).toBytes();
    expect(inv.apply(MaxInvariant.payload(200n), s)).toBe(Ok);
    expect(MaxState.fromCell(s).value).toBe(200n);
    expect(inv.apply(MaxInvariant.payload(50n), s)).toBe(Ok);
    expect(MaxState.fromCell(s).value).toBe(200n);
    expect(hex(s)).toBe(hex(cell64([0, le64(200n)])));
  });

  it('test_max_invariant_idempotent: applying 150 twice = once', () => {
    const inv = new MaxInvariant();
    const once = new MaxState(100n).toBytes();
    const twice = new MaxState(100n).toBytes();
    expect(inv.apply(MaxInvariant.payload(150), once)).toBe(Ok);
    expect(inv.apply(MaxInvariant.payload(150), twice)).toBe(Ok);
    expect(inv.apply(MaxInvariant.payload(150), twice)).toBe(Ok);
    expect(hex(twice)).toBe(hex(once));
    expect(MaxState.fromCell(once).value).toBe(150n);
  });

  it('test_max_invariant_commutative: 50 and 100 in either order → 100', () => {
    const inv = new MaxInvariant();
    const a = new Uint8Array(64);
    const b = new Uint8Array(64);
    inv.apply(MaxInvariant.payload(50), a);
    inv.apply(MaxInvariant.payload(100), a);
    inv.apply(MaxInvariant.payload(100), b);
    inv.apply(MaxInvariant.payload(50), b);
    expect(hex(a)).toBe(hex(b));
    expect(MaxState.fromCell(a).value).toBe(100n);
  });

  it('test_gcounter_invariant: 10 + 20 = 30', () => {
    const inv = new GCounterInvariant();
    const s = new GCounterState().toBytes();
    expect(inv.apply(GCounterInvariant.payload(10), s)).toBe(Ok);
    expect(inv.apply(GCounterInvariant.payload(20n), s)).toBe(Ok);
    expect(GCounterState.fromCell(s).count).toBe(30n);
    expect(hex(s)).toBe(hex(cell64([0, le64(30n)])));
  });

  it('test_lww_invariant: (ts10, n1) set; (ts5, n2) ignored; (ts10, n5) wins', () => {
    const inv = new LWWInvariant();
    const s = new LWWState().toBytes();
    expect(inv.apply(LWWInvariant.payload(fill(1), 10, 1), s)).toBe(Ok);
    let st = LWWState.fromCell(s);
    expect([hex(st.value), st.timestamp, st.nodeId]).toEqual([hex(fill(1)), 10n, 1n]);

    expect(inv.apply(LWWInvariant.payload(fill(2), 5, 2), s)).toBe(Ok); // older: ignored, not rejected
    st = LWWState.fromCell(s);
    expect([hex(st.value), st.timestamp, st.nodeId]).toEqual([hex(fill(1)), 10n, 1n]);

    expect(inv.apply(LWWInvariant.payload(fill(3), 10n, 5n), s)).toBe(Ok); // same ts, higher node
    st = LWWState.fromCell(s);
    expect([hex(st.value), st.timestamp, st.nodeId]).toEqual([hex(fill(3)), 10n, 5n]);
    expect(hex(s)).toBe(hex(cell64([0, fill(3)], [32, le64(10n)], [40, le64(5n)])));
  });

  it('test_bounded_gcounter: capacity 100: +50, +40 ok, +20 → Overflow, value 90', () => {
    const inv = new BoundedGCounterInvariant();
    const s = new BoundedCounterState(0n, 100n).toBytes();
    expect(inv.apply(BoundedGCounterInvariant.payload(50), s)).toBe(Ok);
    expect(inv.apply(BoundedGCounterInvariant.payload(40), s)).toBe(Ok);
    const before = hex(s);
    expect(inv.apply(BoundedGCounterInvariant.payload(20), s)).toBe(Overflow);
    expect(hex(s)).toBe(before);
    const st = BoundedCounterState.fromCell(s);
    expect(st.value).toBe(90n);
    expect(st.capacity).toBe(100n);
    expect(st.headroom).toBe(10n);
    // exactly up to the capacity is fine
    expect(inv.apply(BoundedGCounterInvariant.payload(10), s)).toBe(Ok);
    expect(BoundedCounterState.fromCell(s).value).toBe(100n);
    expect(inv.apply(BoundedGCounterInvariant.payload(1), s)).toBe(Overflow);
    expect(inv.apply(BoundedGCounterInvariant.payload(0), s)).toBe(Ok);
  });

  it('test_algebraic_classes: Max/LWW Lattice, GCounter Commutative (coordination-free); BoundedGCounter BoundedCommutative (not)', () => {
    expect(new MaxInvariant().algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(new LWWInvariant().algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(new GCounterInvariant().algebraicClass).toBe(AlgebraicClass.Commutative);
    expect(new BoundedGCounterInvariant().algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    expect(isCoordinationFree(new MaxInvariant().algebraicClass)).toBe(true);
    expect(isCoordinationFree(new LWWInvariant().algebraicClass)).toBe(true);
    expect(isCoordinationFree(new GCounterInvariant().algebraicClass)).toBe(true);
    expect(isCoordinationFree(new BoundedGCounterInvariant().algebraicClass)).toBe(false);
  });
});

describe('upstream invariants/uniqueness.rs', () => {
  it('test_uniqueness_first_use: sets bit 42 (byte 5, mask 0x04)', () => {
    const inv = new UniquenessInvariant();
    const s = new UniquenessState().toBytes();
    expect(inv.apply(UniquenessInvariant.payload(42), s)).toBe(Ok);
    expect(hex(s)).toBe(hex(cell64([5, [0x04]])));
    expect(UniquenessState.fromCell(s).has(42)).toBe(true);
  });

  it('test_uniqueness_duplicate: 42 then 42 → DuplicateElement, state unchanged', () => {
    const inv = new UniquenessInvariant();
    const s = new Uint8Array(64);
    expect(inv.apply(UniquenessInvariant.payload(42), s)).toBe(Ok);
    const before = hex(s);
    expect(inv.apply(UniquenessInvariant.payload(42), s)).toBe(DuplicateElement);
    expect(hex(s)).toBe(before);
  });

  it('test_uniqueness_different_ids: 10 and 20 both set', () => {
    const inv = new UniquenessInvariant();
    const s = new Uint8Array(64);
    expect(inv.apply(UniquenessInvariant.payload(10), s)).toBe(Ok);
    expect(inv.apply(UniquenessInvariant.payload(20), s)).toBe(Ok);
    expect(UniquenessState.fromCell(s).elements).toEqual([10, 20]);
    expect(hex(s)).toBe(hex(cell64([1, [0x04]], [2, [0x10]])));
  });

  it('test_uniqueness_idempotence (algebraic_properties): a second claim of 0, 42, 100, 511 leaves the state unchanged', () => {
    const inv = new UniquenessInvariant();
    const s = new Uint8Array(64);
    for (const e of [0, 42, 100, 511]) {
      expect(inv.apply(UniquenessInvariant.payload(e), s)).toBe(Ok);
      const before = hex(s);
      expect(inv.apply(UniquenessInvariant.payload(e), s)).toBe(DuplicateElement);
      expect(hex(s)).toBe(before);
    }
    expect(UniquenessState.fromCell(s).elements).toEqual([0, 42, 100, 511]);
  });
});

describe('upstream invariants/graph.rs', () => {
  it('test_graph_state_basic: an undirected add mirrors the edge', () => {
    const inv = new GGraphInvariant();
    const s = new GraphState(4).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
    const g = GraphState.fromCell(s);
    expect(g.hasEdge(0, 1)).toBe(true);
    expect(g.hasEdge(1, 0)).toBe(true);
    expect(g.hasEdge(0, 2)).toBe(false);
    expect(g.edges()).toEqual([[0, 1]]);
  });

  it('test_graph_state_directed: a directed add does not mirror', () => {
    const inv = new GGraphInvariant();
    const s = new GraphState(4, { directed: true }).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
    const g = GraphState.fromCell(s);
    expect(g.hasEdge(0, 1)).toBe(true);
    expect(g.hasEdge(1, 0)).toBe(false);
    expect(g.edges()).toEqual([[0, 1]]);
  });

  it('test_ggraph_invariant: (0,1) sets bit 1 of word 0 (and bit 16 for the mirror); re-adding is Ok and changes nothing', () => {
    const inv = new GGraphInvariant();
    const s = new GraphState(4).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
    expect(rd64(s, 0)).toBe((1n << 1n) | (1n << 16n));
    const before = hex(s);
    expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
    expect(hex(s)).toBe(before);
    expect(inv.apply(GGraphInvariant.payload(1, 0), s)).toBe(Ok); // the mirror is present too
    expect(hex(s)).toBe(before);
  });

  it('test_ggraph_degree_constraint: max out-degree 1: (0,1) ok, (0,2) → Overflow (with degree limits enabled)', () => {
    const inv = new GGraphInvariant({ degreeLimits: true });
    for (const directed of [true, false]) {
      const s = new GraphState(4, { directed, maxOutDegree: 1 }).toBytes();
      expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
      const before = hex(s);
      expect(inv.apply(GGraphInvariant.payload(0, 2), s)).toBe(Overflow);
      expect(hex(s)).toBe(before);
      // re-adding an existing edge is no degree check: still Ok
      expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(Ok);
      expect(hex(s)).toBe(before);
    }
  });

  it('test_ggraph_commutative: (0,1), (1,2) in either order → the same adjacency', () => {
    const inv = new GGraphInvariant();
    const a = new GraphState(4).toBytes();
    const b = new GraphState(4).toBytes();
    inv.apply(GGraphInvariant.payload(0, 1), a);
    inv.apply(GGraphInvariant.payload(1, 2), a);
    inv.apply(GGraphInvariant.payload(1, 2), b);
    inv.apply(GGraphInvariant.payload(0, 1), b);
    expect(hex(a)).toBe(hex(b));
    expect(GraphState.fromCell(a).edges()).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });

  it('test_ggraph_commutativity (algebraic_properties): edge pairs on an 8-vertex undirected graph commute', () => {
    const inv = new GGraphInvariant();
    const pairs: [[number, number], [number, number]][] = [
      [
        [0, 1],
        [2, 3],
      ],
      [
        [0, 7],
        [7, 1],
      ],
      [
        [3, 4],
        [4, 3],
      ],
      [
        [5, 6],
        [5, 6],
      ],
    ];
    for (const [[a, b], [c, d]] of pairs) {
      const x = new GraphState(8).toBytes();
      const y = new GraphState(8).toBytes();
      expect(inv.apply(GGraphInvariant.payload(a, b), x)).toBe(Ok);
      expect(inv.apply(GGraphInvariant.payload(c, d), x)).toBe(Ok);
      expect(inv.apply(GGraphInvariant.payload(c, d), y)).toBe(Ok);
      expect(inv.apply(GGraphInvariant.payload(a, b), y)).toBe(Ok);
      expect(hex(x)).toBe(hex(y));
    }
  });

  it('test_ggraph_idempotence (algebraic_properties): 4 edges, each applied twice = once', () => {
    const inv = new GGraphInvariant();
    for (const [f, t] of [
      [0, 1],
      [2, 5],
      [7, 3],
      [6, 6],
    ] as const) {
      const once = new GraphState(8, { selfLoops: true }).toBytes();
      const twice = once.slice();
      expect(inv.apply(GGraphInvariant.payload(f, t), once)).toBe(Ok);
      expect(inv.apply(GGraphInvariant.payload(f, t), twice)).toBe(Ok);
      expect(inv.apply(GGraphInvariant.payload(f, t), twice)).toBe(Ok);
      expect(hex(twice)).toBe(hex(once));
    }
  });
});

describe('upstream tests/algebraic_properties.rs and proptest_commutativity.rs (Max, GCounter, LWW)', () => {
  it('test_max_invariant_commutativity / test_gcounter_commutativity: 4 pairs each', () => {
    const pairs: [bigint, bigint][] = [
      [10n, 20n],
      [0n, 1000n],
      [U64, 5n],
      [123_456_789n, 987_654_321n],
    ];
    for (const inv of [new MaxInvariant(), new GCounterInvariant()]) {
      for (const [a, b] of pairs) {
        const x = new Uint8Array(64);
        const y = new Uint8Array(64);
        expect(inv.apply(le64(a), x)).toBe(Ok);
        expect(inv.apply(le64(b), x)).toBe(Ok);
        expect(inv.apply(le64(b), y)).toBe(Ok);
        expect(inv.apply(le64(a), y)).toBe(Ok);
        expect(hex(x)).toBe(hex(y));
      }
    }
  });

  it('test_max_invariant_idempotence: 100, 25, 50, 0 from 50', () => {
    const inv = new MaxInvariant();
    for (const v of [100n, 25n, 50n, 0n]) {
      const once = new MaxState(50n).toBytes();
      const twice = once.slice();
      inv.apply(le64(v), once);
      inv.apply(le64(v), twice);
      inv.apply(le64(v), twice);
      expect(hex(twice)).toBe(hex(once));
      expect(rd64(once, 0)).toBe(v > 50n ? v : 50n);
    }
  });

  it('proptest gcounter_associative: three orders of a, b, c (< 1e6) agree', () => {
    const inv = new GCounterInvariant();
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: 999_999n }), { minLength: 3, maxLength: 3 }), (abc) => {
        const [a, b, c] = abc as [bigint, bigint, bigint];
        const results = [
          [a, b, c],
          [c, a, b],
          [b, c, a],
        ].map((order) => {
          const s = new Uint8Array(64);
          for (const x of order) expect(inv.apply(le64(x), s)).toBe(Ok);
          return hex(s);
        });
        expect(new Set(results).size).toBe(1);
        expect(rd64(Buffer.from(results[0]!, 'hex'), 0)).toBe(a + b + c);
      }),
      { numRuns: 100 },
    );
  });

  it('proptest lww_commutative_same_timestamp: same ts and value, any node ids', () => {
    const inv = new LWWInvariant();
    fc.assert(
      fc.property(u64Arb, u64Arb, u64Arb, bytesArb(32), (ts, n1, n2, v) => {
        const x = new Uint8Array(64);
        const y = new Uint8Array(64);
        inv.apply(LWWInvariant.payload(v, ts, n1), x);
        inv.apply(LWWInvariant.payload(v, ts, n2), x);
        inv.apply(LWWInvariant.payload(v, ts, n2), y);
        inv.apply(LWWInvariant.payload(v, ts, n1), y);
        expect(hex(x)).toBe(hex(y));
      }),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Exact byte layouts

describe('byte layouts: MaxState / MaxInvariant.payload', () => {
  it('value u64 LE at 0..8, zeros after; round trips', () => {
    const st = new MaxState(0x0102030405060708n);
    expect(hex(st.toBytes())).toBe('0807060504030201' + zeros(56));
    expect(hex(new MaxState().toBytes())).toBe(zeros(64));
    expect(MaxState.fromCell(st.toBytes()).value).toBe(0x0102030405060708n);
    expect(MaxState.fromCell(st.toCell()).value).toBe(0x0102030405060708n);
    expect(st.toCell()).toBeInstanceOf(StateCell);
    expect(hex(st.toCell().bytes)).toBe(hex(st.toBytes()));
    expect(MaxState.fromCell(cell64([0, le64(U64)], [8, fill(0xab)])).value).toBe(U64);
  });

  it('payload is the u64 LE (8 bytes), from a bigint or a safe integer', () => {
    expect(hex(MaxInvariant.payload(0x0102030405060708n))).toBe('0807060504030201');
    expect(hex(MaxInvariant.payload(5))).toBe('0500000000000000');
    expect(hex(MaxInvariant.payload(U64_MAX))).toBe('ff'.repeat(8));
  });

  it('apply on hand-built bytes compares the high word first and keeps bytes 8..64', () => {
    const inv = new MaxInvariant();
    const s = cell64([0, le64(0x1_0000_0000n)], [8, new Uint8Array(56).fill(0xab)]);
    expect(inv.apply(le64(0xffff_ffffn), s)).toBe(Ok); // larger low word, smaller high word: no change
    expect(rd64(s, 0)).toBe(0x1_0000_0000n);
    expect(inv.apply(le64(0x1_0000_0001n), s)).toBe(Ok);
    expect(hex(s)).toBe('0100000001000000' + 'ab'.repeat(56));
    expect(inv.apply(le64(0x2_0000_0000n), s)).toBe(Ok);
    expect(hex(s)).toBe('0000000002000000' + 'ab'.repeat(56));
  });

  it('range and type errors', () => {
    expectError(() => new MaxState(-1n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => new MaxState(1n << 64n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
    expectInvalid(() => new MaxState(1 as unknown as bigint));
    expectError(() => MaxInvariant.payload(-1), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => MaxInvariant.payload(1n << 64n), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => MaxInvariant.payload(1.5), ValueOutOfRangeError, 'ValueOutOfRange');
    expectInvalid(() => MaxState.fromCell(new Uint8Array(63)));
  });
});

describe('byte layouts: GCounterState / GCounterInvariant.payload', () => {
  it('count u64 LE at 0..8, zeros after; round trips', () => {
    const st = new GCounterState(0xa1a2a3a4b1b2b3b4n);
    expect(hex(st.toBytes())).toBe('b4b3b2b1a4a3a2a1' + zeros(56));
    expect(GCounterState.fromCell(st.toBytes()).count).toBe(0xa1a2a3a4b1b2b3b4n);
    expect(GCounterState.fromCell(st.toCell()).count).toBe(0xa1a2a3a4b1b2b3b4n);
    expect(hex(new GCounterState().toBytes())).toBe(zeros(64));
    expect(hex(GCounterInvariant.payload(0x0102n))).toBe('0201000000000000');
    expectInvalid(() => new GCounterState(3 as unknown as bigint));
    expectError(() => GCounterInvariant.payload(-5), ValueOutOfRangeError, 'ValueOutOfRange');
  });

  it('apply on hand-built bytes carries from the low word into the high word and keeps bytes 8..64', () => {
    const inv = new GCounterInvariant();
    const s = cell64([0, le64(0xffff_ffffn)], [8, new Uint8Array(56).fill(0x5c)]);
    expect(inv.apply(le64(1n), s)).toBe(Ok);
    expect(hex(s)).toBe('0000000001000000' + '5c'.repeat(56));
    expect(inv.apply(le64(0xffff_ffff_ffff_ffffn - 0x1_0000_0000n), s)).toBe(Ok);
    expect(hex(s)).toBe('ffffffffffffffff' + '5c'.repeat(56));
  });
});

describe('byte layouts: BoundedCounterState / BoundedGCounterInvariant', () => {
  it('value u64 at 0..8, capacity u64 at 8..16, zeros after; round trips; headroom', () => {
    const st = new BoundedCounterState(0x11n, 0x2233n);
    expect(hex(st.toBytes())).toBe('1100000000000000' + '3322000000000000' + zeros(48));
    const back = BoundedCounterState.fromCell(st.toCell());
    expect([back.value, back.capacity, back.headroom]).toEqual([0x11n, 0x2233n, 0x2222n]);
    expect(hex(BoundedGCounterInvariant.payload(7))).toBe('0700000000000000');
  });

  it('initialState() is value 0, capacity 2^64 − 1, and a fresh array each time', () => {
    const inv = new BoundedGCounterInvariant();
    const a = inv.initialState();
    expect(hex(a)).toBe(zeros(8) + 'ff'.repeat(8) + zeros(48));
    a[0] = 9;
    expect(hex(inv.initialState())).toBe(zeros(8) + 'ff'.repeat(8) + zeros(48));
  });

  it('a zeroed cell is capacity 0: valid but restrictive (only +0 fits)', () => {
    const inv = new BoundedGCounterInvariant();
    const s = new Uint8Array(64);
    const st = BoundedCounterState.fromCell(s);
    expect([st.value, st.capacity]).toEqual([0n, 0n]);
    expect(inv.apply(le64(1n), s)).toBe(Overflow);
    expect(inv.apply(le64(0n), s)).toBe(Ok);
    expect(hex(s)).toBe(zeros(64));
  });

  it('apply on hand-built bytes: compares against the capacity word by word', () => {
    const inv = new BoundedGCounterInvariant();
    // capacity 2^32: the high words are equal after the carry, then the low words decide
    const s = cell64([0, le64(0xffff_ffffn)], [8, le64(0x1_0000_0000n)], [16, new Uint8Array(48).fill(0x3d)]);
    expect(inv.apply(le64(1n), s)).toBe(Ok);
    expect(hex(s)).toBe('0000000001000000' + '0000000001000000' + '3d'.repeat(48));
    const before = hex(s);
    expect(inv.apply(le64(1n), s)).toBe(Overflow);
    expect(hex(s)).toBe(before);
    // capacity 2^32 − 1 with value 0: a high-word increment overflows even with low word 0
    const t = cell64([8, le64(0xffff_ffffn)]);
    expect(inv.apply(le64(0x1_0000_0000n), t)).toBe(Overflow);
    expect(inv.apply(le64(0xffff_ffffn), t)).toBe(Ok);
    expect(rd64(t, 0)).toBe(0xffff_ffffn);
  });

  it('constructor and fromCell refuse value > capacity and non-bigints', () => {
    expectInvalid(() => new BoundedCounterState(101n, 100n));
    expectInvalid(() => BoundedCounterState.fromCell(cell64([0, le64(2n)], [8, le64(1n)])));
    expectInvalid(() => new BoundedCounterState(1 as unknown as bigint, 5n));
    expectError(() => new BoundedCounterState(0n, 1n << 64n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
  });
});

describe('byte layouts: LWWState / LWWInvariant.payload', () => {
  const value = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

  it('value 0..32, timestamp u64 32..40, node u64 40..48, zeros 48..64; payload = first 48 bytes', () => {
    const st = new LWWState(value, 0x0102030405060708n, 0x1112131415161718n);
    const b = st.toBytes();
    expect(hex(b)).toBe(hex(value) + '0807060504030201' + '1817161514131211' + zeros(16));
    expect(LWW_PAYLOAD_BYTES).toBe(48);
    const p = LWWInvariant.payload(value, 0x0102030405060708n, 0x1112131415161718n);
    expect(p.length).toBe(48);
    expect(hex(p)).toBe(hex(b.subarray(0, 48)));
    const back = LWWState.fromCell(st.toCell());
    expect([hex(back.value), back.timestamp, back.nodeId]).toEqual([hex(value), 0x0102030405060708n, 0x1112131415161718n]);
    expect(hex(new LWWState().toBytes())).toBe(zeros(64));
    expect(hex(LWWInvariant.payload(fill(9), 3, 4))).toBe(hex(fill(9)) + '0300000000000000' + '0400000000000000');
  });

  it('fromCell ignores bytes 48..64; the value is a copy', () => {
    const raw = cell64([0, value], [32, le64(5n)], [40, le64(6n)], [48, new Uint8Array(16).fill(0x99)]);
    const st = LWWState.fromCell(raw);
    raw[0] = 0xff;
    expect(st.value[0]).toBe(1);
    expect(hex(st.toBytes())).toBe(hex(value) + hex(le64(5n)) + hex(le64(6n)) + zeros(16));
  });

  it('apply on hand-built bytes copies bytes 0..48 and keeps 48..64; high words compare first', () => {
    const inv = new LWWInvariant();
    const s = cell64([0, fill(1)], [32, le64(0x1_0000_0000n)], [40, le64(0n)], [48, new Uint8Array(16).fill(0x99)]);
    // a larger low timestamp word but a smaller high word: older
    expect(inv.apply(concat(fill(2), le64(0xffff_ffffn), le64(U64)), s)).toBe(Ok);
    expect(hex(s.subarray(0, 32))).toBe(hex(fill(1)));
    // equal timestamp, node differs only in its high word
    const newer = concat(fill(3), le64(0x1_0000_0000n), le64(0x1_0000_0000n));
    expect(inv.apply(concat(newer, new Uint8Array(5).fill(0x42)), s)).toBe(Ok);
    expect(hex(s)).toBe(hex(newer) + '99'.repeat(16));
    // node with a larger low word but smaller high word: older
    expect(inv.apply(concat(fill(4), le64(0x1_0000_0000n), le64(0xffff_ffffn)), s)).toBe(Ok);
    expect(hex(s)).toBe(hex(newer) + '99'.repeat(16));
  });

  it('argument errors', () => {
    expectInvalid(() => new LWWState(new Uint8Array(31)));
    expectInvalid(() => LWWInvariant.payload(new Uint8Array(33), 1, 1));
    expectInvalid(() => new LWWState(new Uint8Array(32), 1 as unknown as bigint, 0n));
    expectError(() => LWWInvariant.payload(fill(1), -1, 0), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => LWWInvariant.payload(fill(1), 0, 1n << 64n), ValueOutOfRangeError, 'ValueOutOfRange');
  });

  it('a non-integer number timestamp or node id is refused with a CtfsError (like MaxInvariant.payload), not a native RangeError', () => {
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      for (const make of [() => LWWInvariant.payload(fill(1), bad, 0), () => LWWInvariant.payload(fill(1), 0, bad)]) {
        let caught: unknown;
        try {
          make();
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(CtfsError);
        expect(['ValueOutOfRange', 'InvalidArgument']).toContain((caught as CtfsError).code);
      }
    }
  });
});

describe('byte layouts: UniquenessState / UniquenessInvariant.payload', () => {
  it('element e is bit e & 7 of byte e >> 3; elements are deduplicated and sorted', () => {
    const st = new UniquenessState([511, 0, 9, 42, 9]);
    expect(st.elements).toEqual([0, 9, 42, 511]);
    expect(hex(st.toBytes())).toBe(hex(cell64([0, [0x01]], [1, [0x02]], [5, [0x04]], [63, [0x80]])));
    expect(UniquenessState.fromCell(st.toCell()).elements).toEqual([0, 9, 42, 511]);
    expect(st.has(42)).toBe(true);
    expect(st.has(43)).toBe(false);
    expect(hex(new UniquenessState().toBytes())).toBe(zeros(64));
    expect(UniquenessState.fromCell(new Uint8Array(64).fill(0xff)).elements.length).toBe(UNIQUENESS_ELEMENTS);
    expect(UNIQUENESS_ELEMENTS).toBe(512);
  });

  it('payload is the element as u16 LE (2 bytes)', () => {
    expect(Array.from(UniquenessInvariant.payload(300))).toEqual([0x2c, 0x01]);
    expect(Array.from(UniquenessInvariant.payload(511))).toEqual([0xff, 0x01]);
    expect(Array.from(UniquenessInvariant.payload(0))).toEqual([0, 0]);
  });

  it('apply on hand-built bytes sets exactly one bit and keeps the others', () => {
    const inv = new UniquenessInvariant();
    const s = new Uint8Array(64).fill(0x00);
    s[37] = 0x0f;
    s[10] = 0xaa;
    expect(inv.apply(new Uint8Array([0x2c, 0x01]), s)).toBe(Ok); // 300 = byte 37, mask 0x10
    expect(hex(s)).toBe(hex(cell64([10, [0xaa]], [37, [0x1f]])));
    expect(inv.apply(new Uint8Array([0x28, 0x01]), s)).toBe(DuplicateElement); // 296 = byte 37, mask 0x01 (already set)
    expect(inv.apply(new Uint8Array([0x2f, 0x01]), s)).toBe(Ok); // 303 = byte 37, mask 0x80
    expect(hex(s)).toBe(hex(cell64([10, [0xaa]], [37, [0x9f]])));
  });

  it('argument errors: elements outside [0, 512)', () => {
    for (const bad of [-1, 512, 554, 1.5, Number.NaN]) {
      expectInvalid(() => UniquenessInvariant.payload(bad));
      expectInvalid(() => new UniquenessState([bad]));
    }
  });
});

describe('byte layouts: GraphState / GGraphInvariant.payload', () => {
  it('vertex count at 32, max out at 33, max in at 34, flags at 35 (bit 0 directed, bit 1 self-loops)', () => {
    expect(hex(new GraphState(5, { directed: true, selfLoops: true, maxOutDegree: 3, maxInDegree: 2 }).toBytes())).toBe(
      zeros(32) + '05030203' + zeros(28),
    );
    expect(hex(new GraphState(16).toBytes())).toBe(zeros(32) + '10000000' + zeros(28));
    expect(hex(new GraphState(2, { selfLoops: true }).toBytes())).toBe(zeros(32) + '02000002' + zeros(28));
    expect(hex(new GraphState(2, { directed: true }).toBytes())).toBe(zeros(32) + '02000001' + zeros(28));
    expect(MAX_VERTICES).toBe(16);
  });

  it('edge (f, t) is bit f·16 + t: hand-built checks and round trips', () => {
    const inv = new GGraphInvariant();
    const s = new GraphState(16, { directed: true, selfLoops: true }).toBytes();
    expect(inv.apply(new Uint8Array([2, 3]), s)).toBe(Ok); // bit 35: byte 4, mask 0x08
    expect(inv.apply(new Uint8Array([15, 14]), s)).toBe(Ok); // bit 254: byte 31, mask 0x40
    expect(inv.apply(new Uint8Array([15, 15]), s)).toBe(Ok); // bit 255: byte 31, mask 0x80
    expect(inv.apply(new Uint8Array([0, 15, 0xee]), s)).toBe(Ok); // bit 15: byte 1, mask 0x80
    expect(hex(s)).toBe(hex(cell64([1, [0x80]], [4, [0x08]], [31, [0xc0]], [32, [16, 0, 0, 3]])));
    const g = GraphState.fromCell(s);
    expect([g.vertexCount, g.directed, g.selfLoops, g.maxOutDegree, g.maxInDegree]).toEqual([16, true, true, 0, 0]);
    expect(g.edges()).toEqual([
      [0, 15],
      [2, 3],
      [15, 14],
      [15, 15],
    ]);
    expect(g.hasEdge(2, 3)).toBe(true);
    expect(g.hasEdge(3, 2)).toBe(false);
    expect(hex(g.toBytes())).toBe(hex(s));
    expect(hex(GraphState.fromCell(g.toCell()).toBytes())).toBe(hex(s));
    expect(hex(new GraphState(16, { directed: true, selfLoops: true }, s.subarray(0, 32)).toBytes())).toBe(hex(s));
  });

  it('undirected: (1, 3) sets bits 19 and 49; edges() lists it once with from ≤ to', () => {
    const inv = new GGraphInvariant();
    const s = new GraphState(4).toBytes();
    expect(inv.apply(GGraphInvariant.payload(3, 1), s)).toBe(Ok);
    expect(leBig(s.subarray(0, 32))).toBe((1n << 19n) | (1n << 49n));
    expect(GraphState.fromCell(s).edges()).toEqual([[1, 3]]);
  });

  it('payload is [from, to]; argument errors', () => {
    expect(Array.from(GGraphInvariant.payload(3, 15))).toEqual([3, 15]);
    for (const [f, t] of [
      [16, 0],
      [0, 16],
      [-1, 0],
      [0.5, 1],
    ] as const) {
      expectInvalid(() => GGraphInvariant.payload(f, t));
    }
    expectInvalid(() => new GraphState(-1));
    expectInvalid(() => new GraphState(2.5));
    expectInvalid(() => new GraphState(4, { maxOutDegree: 256 }));
    expectInvalid(() => new GraphState(4, { maxInDegree: -1 }));
    expectInvalid(() => new GraphState(4).hasEdge(4, 0));
    expectInvalid(() => GraphState.fromCell(new Uint8Array(32)));
  });
});

// ---------------------------------------------------------------------------------------------
// 3 + 5. Generic: malformed input, rejections, placements, and the BigInt models

for (const spec of SPECS) {
  describe(`${spec.name}: malformed input and rejections`, () => {
    it(`payloads shorter than ${spec.minPayload} bytes → MalformedPayload, state unchanged`, () => {
      const inv = spec.make();
      fc.assert(
        fc.property(spec.stateArb, fc.uint8Array({ maxLength: spec.minPayload - 1 }), (state, payload) => {
          const s = state.slice();
          expect(inv.apply(payload, s)).toBe(MalformedPayload);
          expect(hex(s)).toBe(hex(state));
        }),
        { numRuns: 100 },
      );
      for (let n = 0; n < spec.minPayload; n++) {
        const s = spec.sample.state.slice();
        expect(inv.apply(spec.sample.ok.subarray(0, n), s)).toBe(MalformedPayload);
        expect(hex(s)).toBe(hex(spec.sample.state));
      }
    });

    it('a state of length ≠ 64 → MalformedPayload, untouched', () => {
      const inv = spec.make();
      // sanity: the sample payload is accepted and changes the 64-byte sample state
      const ok = spec.sample.state.slice();
      expect(inv.apply(spec.sample.ok, ok)).toBe(Ok);
      expect(hex(ok)).not.toBe(hex(spec.sample.state));
      for (const len of [0, 1, 16, 48, 63, 65, 128]) {
        const s = new Uint8Array(len);
        s.set(spec.sample.state.subarray(0, Math.min(len, 64)));
        const before = hex(s);
        expect(inv.apply(spec.sample.ok, s)).toBe(MalformedPayload);
        expect(hex(s)).toBe(before);
      }
    });

    it('bytes after the minimum payload are ignored', () => {
      const inv = spec.make();
      fc.assert(
        fc.property(spec.stateArb, spec.payloadArb, fc.uint8Array({ minLength: 1, maxLength: 40 }), (state, payload, extra) => {
          const a = state.slice();
          const b = state.slice();
          const ca = inv.apply(payload, a);
          const cb = inv.apply(concat(payload, extra), b);
          expect(cb).toBe(ca);
          expect(hex(b)).toBe(hex(a));
        }),
        { numRuns: 150 },
      );
    });

    it('every rejection leaves the state bytes unchanged; apply never touches the payload', () => {
      const inv = spec.make();
      let rejections = 0;
      fc.assert(
        fc.property(spec.stateArb, spec.payloadArb, extraArb, (state, payload, extra) => {
          const p = concat(payload, extra);
          const pBefore = hex(p);
          const s = state.slice();
          const code = inv.apply(p, s);
          expect(hex(p)).toBe(pBefore);
          if (code !== Ok) {
            rejections++;
            expect(hex(s)).toBe(hex(state));
          }
        }),
        { numRuns: 300 },
      );
      // Max, GCounter and LWW never reject a well-formed payload; the others must have been exercised.
      const neverRejects = spec.model === maxModel || spec.model === gcounterModel || spec.model === lwwModel;
      if (neverRejects) expect(rejections).toBe(0);
      else expect(rejections).toBeGreaterThan(0);
    });
  });

  describe(`${spec.name}: matches its BigInt reference model (fast-check)`, () => {
    it('one step: result code and resulting state bytes', () => {
      const inv = spec.make();
      fc.assert(
        fc.property(spec.stateArb, spec.payloadArb, extraArb, (state, payload, extra) => {
          const s = state.slice();
          const code = inv.apply(concat(payload, extra), s);
          const m = spec.model(state, payload);
          expect(code).toBe(m.code);
          expect(hex(s)).toBe(hex(m.state));
        }),
        { numRuns: 500 },
      );
    });

    it('sequences of payloads on one state', () => {
      const inv = spec.make();
      fc.assert(
        fc.property(spec.stateArb, fc.array(spec.payloadArb, { maxLength: 12 }), (state, payloads) => {
          const s = state.slice();
          const codes = payloads.map((p) => inv.apply(p, s));
          const m = runModel(spec.model, state, payloads);
          expect(codes).toEqual(m.codes);
          expect(hex(s)).toBe(hex(m.state));
        }),
        { numRuns: 200 },
      );
    });
  });

  describe(`${spec.name}: state memory placement`, () => {
    it('plain array, SharedArrayBuffer view at offset 64 and unaligned view (byteOffset 1) agree with each other and the model', () => {
      const inv = spec.make();
      fc.assert(
        fc.property(spec.stateArb, fc.array(spec.payloadArb, { minLength: 1, maxLength: 10 }), (state, payloads) => {
          const { codes, states } = runPlacements(inv, state, payloads);
          const m = runModel(spec.model, state, payloads);
          expect(codes).toEqual([m.codes, m.codes, m.codes]);
          expect(states).toEqual([hex(m.state), hex(m.state), hex(m.state)]);
        }),
        { numRuns: 100 },
      );
    });

    it('the sample through all three placements, and through a StateCell over shared memory', () => {
      const inv = spec.make();
      const { codes, states } = runPlacements(inv, spec.sample.state, [spec.sample.ok]);
      expect(codes).toEqual([[Ok], [Ok], [Ok]]);
      expect(states[0]).not.toBe(hex(spec.sample.state));
      expect(states[1]).toBe(states[0]);
      expect(states[2]).toBe(states[0]);

      const sab = new SharedArrayBuffer(128);
      const c = new StateCell(sab, 64);
      c.copyFrom(spec.sample.state);
      expect(inv.apply(spec.sample.ok, c.bytes)).toBe(Ok);
      expect(hex(new Uint8Array(sab, 64, 64))).toBe(states[0]);
    });

    it('sees writes made to a state between calls (no stale cached view)', () => {
      const inv = spec.make();
      const s = spec.sample.state.slice();
      expect(inv.apply(spec.sample.ok, s)).toBe(Ok);
      s.set(spec.sample.state); // external reset of the same array
      const expected = spec.model(spec.sample.state, spec.sample.ok);
      expect(inv.apply(spec.sample.ok, s)).toBe(expected.code);
      expect(hex(s)).toBe(hex(expected.state));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 4. Regressions against upstream §12.2

describe('REGRESSION §12.2 item 10: LWW ties on (timestamp, node) no longer keep the first writer', () => {
  const inv = new LWWInvariant();

  it('equal (ts, node), different values → the same winner (higher value bytes) in both orders', () => {
    const cases: [Uint8Array, Uint8Array][] = [
      [fill(1), fill(2)],
      [fill(0x80), fill(0x7f)],
      [concat(fill(5).subarray(0, 31), new Uint8Array([1])), concat(fill(5).subarray(0, 31), new Uint8Array([2]))],
    ];
    for (const [v1, v2] of cases) {
      const winner = beBig(v1) > beBig(v2) ? v1 : v2;
      const a = new Uint8Array(64);
      const b = new Uint8Array(64);
      expect(inv.apply(LWWInvariant.payload(v1, 10, 3), a)).toBe(Ok);
      expect(inv.apply(LWWInvariant.payload(v2, 10, 3), a)).toBe(Ok);
      expect(inv.apply(LWWInvariant.payload(v2, 10, 3), b)).toBe(Ok);
      expect(inv.apply(LWWInvariant.payload(v1, 10, 3), b)).toBe(Ok);
      expect(hex(a)).toBe(hex(b));
      expect(hex(LWWState.fromCell(a).value)).toBe(hex(winner));
    }
  });

  it('an identical write is Ok and changes nothing; a zero state takes (0, 0, non-zero value) but not (0, 0, zeros)', () => {
    const s = new Uint8Array(64);
    expect(inv.apply(LWWInvariant.payload(new Uint8Array(32), 0, 0), s)).toBe(Ok);
    expect(hex(s)).toBe(zeros(64));
    expect(inv.apply(LWWInvariant.payload(fill(7), 0, 0), s)).toBe(Ok);
    expect(hex(s)).toBe(hex(fill(7)) + zeros(32));
    expect(inv.apply(LWWInvariant.payload(fill(7), 0, 0), s)).toBe(Ok);
    expect(hex(s)).toBe(hex(fill(7)) + zeros(32));
  });
});

describe('REGRESSION §12.2 item 12: Uniqueness elements ≥ 512 are refused, not aliased', () => {
  const inv = new UniquenessInvariant();
  const raw = (e: number): Uint8Array => new Uint8Array([e & 0xff, e >>> 8]);

  it('512, 554, 1023, 65535 → BoundsViolation, state unchanged', () => {
    const s = new UniquenessState([1, 2, 3]).toBytes();
    const before = hex(s);
    for (const e of [512, 554, 1023, 0xffff]) {
      expect(inv.apply(raw(e), s)).toBe(BoundsViolation);
      expect(hex(s)).toBe(before);
    }
  });

  it('42 and 554 do not alias, in either order', () => {
    const a = new Uint8Array(64);
    expect(inv.apply(raw(42), a)).toBe(Ok);
    expect(inv.apply(raw(554), a)).toBe(BoundsViolation); // upstream: DuplicateElement (554 & 0x1ff = 42)
    expect(UniquenessState.fromCell(a).elements).toEqual([42]);

    const b = new Uint8Array(64);
    expect(inv.apply(raw(554), b)).toBe(BoundsViolation); // upstream: claimed 42
    expect(hex(b)).toBe(zeros(64));
    expect(inv.apply(raw(42), b)).toBe(Ok);
    expect(hex(b)).toBe(hex(a));
  });

  it('511 is the last element (byte 63, mask 0x80)', () => {
    const s = new Uint8Array(64);
    expect(inv.apply(raw(511), s)).toBe(Ok);
    expect(hex(s)).toBe(zeros(63) + '80');
  });
});

describe('REGRESSION §12.2 item 11: GGraph validates the vertex count and vertex range', () => {
  const inv = new GGraphInvariant();

  it('a state with vertex count > 16 → BoundsViolation (no crash), state unchanged', () => {
    for (const n of [17, 32, 255]) {
      const s = cell64([0, new Uint8Array(32).fill(0x11)], [32, [n, 0, 0, 0]]);
      const before = hex(s);
      for (const [f, t] of [
        [0, 1],
        [16, 16],
        [16, 0],
        [0, 16],
        [n - 1, n - 1],
        [255, 254],
      ] as const) {
        expect(inv.apply(new Uint8Array([f, t]), s)).toBe(BoundsViolation);
        expect(hex(s)).toBe(before);
      }
    }
    expect(new GGraphInvariant({ degreeLimits: true }).apply(new Uint8Array([16, 16]), cell64([32, [17, 0, 0, 3]]))).toBe(
      BoundsViolation,
    );
  });

  it('from or to ≥ vertex count → BoundsViolation; the top vertex 15 of a 16-vertex graph works', () => {
    const s = new GraphState(5).toBytes();
    const before = hex(s);
    for (const [f, t] of [
      [5, 0],
      [0, 5],
      [5, 5],
      [200, 1],
      [1, 200],
    ] as const) {
      expect(inv.apply(new Uint8Array([f, t]), s)).toBe(BoundsViolation);
      expect(hex(s)).toBe(before);
    }
    const full = new GraphState(16).toBytes();
    expect(inv.apply(GGraphInvariant.payload(15, 14), full)).toBe(Ok);
    expect(GraphState.fromCell(full).edges()).toEqual([[14, 15]]);
    // a zero-vertex graph (a zeroed cell) accepts nothing
    expect(inv.apply(new Uint8Array([0, 0]), new Uint8Array(64))).toBe(BoundsViolation);
  });

  it('a self-loop where not allowed → BoundsViolation; unknown flag bits → BoundsViolation', () => {
    const s = new GraphState(4).toBytes();
    expect(inv.apply(GGraphInvariant.payload(2, 2), s)).toBe(BoundsViolation);
    expect(hex(s)).toBe(hex(new GraphState(4).toBytes()));
    for (const flags of [4, 0x80, 0xff]) {
      const t = cell64([32, [4, 0, 0, flags]]);
      expect(inv.apply(GGraphInvariant.payload(0, 1), t)).toBe(BoundsViolation);
      expect(hex(t)).toBe(hex(cell64([32, [4, 0, 0, flags]])));
    }
  });

  it('GraphState refuses vertexCount 17 (and fromCell of such a cell) with InvalidArgument', () => {
    expectInvalid(() => new GraphState(17));
    expectInvalid(() => new GraphState(MAX_VERTICES + 1, { directed: true }));
    expectInvalid(() => GraphState.fromCell(cell64([32, [17]])));
    expect(new GraphState(16).vertexCount).toBe(16);
  });
});

describe('REGRESSION §12.2 item 10: GGraph degree limits are opt-in and make it BoundedCommutative', () => {
  it('a default GGraphInvariant() refuses states with degree limits: BoundsViolation, unchanged', () => {
    const inv = new GGraphInvariant();
    expect(inv.degreeLimits).toBe(false);
    expect(inv.algebraicClass).toBe(AlgebraicClass.Lattice);
    for (const opts of [{ maxOutDegree: 1 }, { maxInDegree: 1 }, { maxOutDegree: 255, maxInDegree: 255 }]) {
      const s = new GraphState(4, opts).toBytes();
      const before = hex(s);
      expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(BoundsViolation);
      expect(hex(s)).toBe(before);
    }
  });

  it('GGraphInvariant({ degreeLimits: true }) enforces them with Overflow and reports BoundedCommutative', () => {
    const inv = new GGraphInvariant({ degreeLimits: true });
    expect(inv.degreeLimits).toBe(true);
    expect(inv.algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    expect(isCoordinationFree(inv.algebraicClass)).toBe(false);
    // max in-degree 1, directed
    const s = new GraphState(4, { directed: true, maxInDegree: 1 }).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 3), s)).toBe(Ok);
    const before = hex(s);
    expect(inv.apply(GGraphInvariant.payload(1, 3), s)).toBe(Overflow);
    expect(hex(s)).toBe(before);
    expect(inv.apply(GGraphInvariant.payload(3, 1), s)).toBe(Ok);
    // without limits in the state it behaves like the lattice version
    const t = new GraphState(4).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 1), t)).toBe(Ok);
    expect(inv.apply(GGraphInvariant.payload(0, 2), t)).toBe(Ok);
    expect(GraphState.fromCell(t).edges()).toEqual([
      [0, 1],
      [0, 2],
    ]);
  });

  it('options other than degreeLimits: true leave it a Lattice', () => {
    expect(new GGraphInvariant({}).algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(new GGraphInvariant({ degreeLimits: false }).algebraicClass).toBe(AlgebraicClass.Lattice);
    expect(new GGraphInvariant(undefined).algebraicClass).toBe(AlgebraicClass.Lattice);
  });
});

describe('GCounter saturates at 2^64 − 1 (documented; order-independent)', () => {
  const inv = new GCounterInvariant();

  it('(2^64 − 10) + 20 → 2^64 − 1, and it stays there', () => {
    const s = new GCounterState(U64 - 10n).toBytes();
    expect(inv.apply(GCounterInvariant.payload(20), s)).toBe(Ok);
    expect(GCounterState.fromCell(s).count).toBe(U64);
    expect(hex(s)).toBe('ff'.repeat(8) + zeros(56));
    for (const d of [0n, 1n, 0xffff_ffffn, U64]) {
      expect(inv.apply(le64(d), s)).toBe(Ok);
      expect(GCounterState.fromCell(s).count).toBe(U64);
    }
  });

  it('exactly reaching 2^64 − 1 and crossing by one', () => {
    const s = new GCounterState(U64 - 1n).toBytes();
    expect(inv.apply(le64(1n), s)).toBe(Ok);
    expect(rd64(s, 0)).toBe(U64);
    const t = new GCounterState(0xffff_ffffn).toBytes();
    expect(inv.apply(le64(0xffff_ffff_0000_0001n), t)).toBe(Ok); // sum = 2^64 exactly
    expect(rd64(t, 0)).toBe(U64);
  });

  it('any permutation of increments (incl. huge ones) gives the same count, min(sum, 2^64 − 1)', () => {
    fc.assert(
      fc.property(
        fc.array(u64Arb, { maxLength: 12 }).chain((ds) => {
          const idx = ds.map((_, i) => i);
          return fc.tuple(
            fc.constant(ds),
            fc.shuffledSubarray(idx, { minLength: idx.length, maxLength: idx.length }),
            fc.shuffledSubarray(idx, { minLength: idx.length, maxLength: idx.length }),
          );
        }),
        ([ds, o1, o2]) => {
          const a = new Uint8Array(64);
          const b = new Uint8Array(64);
          for (const i of o1) expect(inv.apply(le64(ds[i]!), a)).toBe(Ok);
          for (const i of o2) expect(inv.apply(le64(ds[i]!), b)).toBe(Ok);
          const sum = ds.reduce((x, y) => x + y, 0n);
          expect(rd64(a, 0)).toBe(sum > U64 ? U64 : sum);
          expect(hex(b)).toBe(hex(a));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('upstream order-dependence would have shown here: saturation at the end vs in the middle agree', () => {
    const a = new GCounterState(U64 - 5n).toBytes();
    const b = new GCounterState(U64 - 5n).toBytes();
    inv.apply(le64(10n), a); // saturates
    inv.apply(le64(3n), a);
    inv.apply(le64(3n), b);
    inv.apply(le64(10n), b);
    expect(hex(a)).toBe(hex(b));
  });
});

describe('BoundedGCounter rejects sums beyond u64 (no saturating accept)', () => {
  const inv = new BoundedGCounterInvariant();

  it('(2^64 − 5, cap 2^64 − 1) + 10 → Overflow, unchanged (upstream saturated to 2^64 − 1 ≤ cap and accepted)', () => {
    const s = new BoundedCounterState(U64 - 5n, U64).toBytes();
    const before = hex(s);
    expect(inv.apply(le64(10n), s)).toBe(Overflow);
    expect(hex(s)).toBe(before);
    expect(inv.apply(le64(U64), s)).toBe(Overflow);
    expect(hex(s)).toBe(before);
    expect(inv.apply(le64(5n), s)).toBe(Ok);
    expect(rd64(s, 0)).toBe(U64);
    expect(inv.apply(le64(1n), s)).toBe(Overflow);
    expect(rd64(s, 0)).toBe(U64);
  });

  it('a sum that would wrap to something under the capacity is still Overflow', () => {
    const s = new BoundedCounterState(1n << 63n, U64).toBytes();
    expect(inv.apply(le64((1n << 63n) + 5n), s)).toBe(Overflow); // wraps to 5
    expect(rd64(s, 0)).toBe(1n << 63n);
    const t = new BoundedCounterState(1n, U64).toBytes();
    expect(inv.apply(le64(U64), t)).toBe(Overflow); // 2^64 exactly
    expect(rd64(t, 0)).toBe(1n);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Algebraic classes by acceptance semantics

/** Applies `payloads` in `order` from `initial`; codes are indexed by payload, not by position. */
function runOrder(inv: Invariant, initial: Uint8Array, payloads: readonly Uint8Array[], order: readonly number[]): { codes: number[]; state: string } {
  const s = initial.slice();
  const codes = new Array<number>(payloads.length).fill(-1);
  for (const i of order) codes[i] = inv.apply(payloads[i]!, s);
  return { codes, state: hex(s) };
}

/** A multiset of payloads (some repeated) and two random orders of it. */
function multisetAndTwoOrders(payloadArb: fc.Arbitrary<Uint8Array>): fc.Arbitrary<[Uint8Array[], number[], number[]]> {
  return fc.tuple(fc.array(payloadArb, { maxLength: 10 }), fc.nat({ max: 4 })).chain(([items, dups]) => {
    const ps = [...items, ...items.slice(0, dups)];
    const idx = ps.map((_, i) => i);
    return fc.tuple(
      fc.constant(ps),
      fc.shuffledSubarray(idx, { minLength: idx.length, maxLength: idx.length }),
      fc.shuffledSubarray(idx, { minLength: idx.length, maxLength: idx.length }),
    );
  });
}

interface FreeCase {
  readonly name: string;
  readonly make: () => Invariant;
  readonly cls: AlgebraicClass;
  readonly stateArb: fc.Arbitrary<Uint8Array>;
  readonly payloadArb: fc.Arbitrary<Uint8Array>;
  readonly idempotent: boolean;
}

const FREE: readonly FreeCase[] = [
  { name: 'MaxInvariant', make: () => new MaxInvariant(), cls: AlgebraicClass.Lattice, stateArb: u64StateArb, payloadArb: u64PayloadArb, idempotent: true },
  { name: 'LWWInvariant', make: () => new LWWInvariant(), cls: AlgebraicClass.Lattice, stateArb: lwwStateArb, payloadArb: lwwPayloadArb, idempotent: true },
  {
    name: 'GGraphInvariant()',
    make: () => new GGraphInvariant(),
    cls: AlgebraicClass.Lattice,
    stateArb: latticeGraphStateArb,
    payloadArb: edgePayloadArb,
    idempotent: true,
  },
  {
    name: 'GCounterInvariant',
    make: () => new GCounterInvariant(),
    cls: AlgebraicClass.Commutative,
    stateArb: u64StateArb,
    payloadArb: u64PayloadArb,
    idempotent: false,
  },
];

describe('algebraic classes', () => {
  it('Max, LWW, GGraph() are Lattice; GCounter Commutative; BoundedGCounter, Uniqueness, GGraph({ degreeLimits: true }) BoundedCommutative', () => {
    const table: [Invariant, AlgebraicClass, boolean][] = [
      [new MaxInvariant(), AlgebraicClass.Lattice, true],
      [new LWWInvariant(), AlgebraicClass.Lattice, true],
      [new GGraphInvariant(), AlgebraicClass.Lattice, true],
      [new GCounterInvariant(), AlgebraicClass.Commutative, true],
      [new BoundedGCounterInvariant(), AlgebraicClass.BoundedCommutative, false],
      [new UniquenessInvariant(), AlgebraicClass.BoundedCommutative, false],
      [new GGraphInvariant({ degreeLimits: true }), AlgebraicClass.BoundedCommutative, false],
    ];
    for (const [inv, cls, free] of table) {
      expect(inv.algebraicClass).toBe(cls);
      expect(isCoordinationFree(inv.algebraicClass)).toBe(free);
      expect(inv.mutatesOnlyOnSuccess).toBe(true);
    }
    expect([AlgebraicClass.Commutative, AlgebraicClass.Lattice, AlgebraicClass.BoundedCommutative]).toEqual([0, 2, 4]);
  });

  for (const c of FREE) {
    it(`${c.name} (${c.cls === AlgebraicClass.Lattice ? 'Lattice' : 'Commutative'}): a multiset of payloads in two random orders → identical state bytes and identical acceptance`, () => {
      const inv = c.make();
      expect(inv.algebraicClass).toBe(c.cls);
      fc.assert(
        fc.property(c.stateArb, multisetAndTwoOrders(c.payloadArb), (state, [ps, o1, o2]) => {
          const a = runOrder(inv, state, ps, o1);
          const b = runOrder(inv, state, ps, o2);
          expect(b.state).toBe(a.state);
          expect(b.codes).toEqual(a.codes);
        }),
        { numRuns: 300 },
      );
    });

    if (c.idempotent) {
      it(`${c.name}: idempotent — applying a payload twice = once (same code, same bytes)`, () => {
        const inv = c.make();
        fc.assert(
          fc.property(c.stateArb, c.payloadArb, (state, p) => {
            const once = state.slice();
            const twice = state.slice();
            const c1 = inv.apply(p, once);
            expect(inv.apply(p, twice)).toBe(c1);
            expect(inv.apply(p, twice)).toBe(c1);
            expect(hex(twice)).toBe(hex(once));
          }),
          { numRuns: 300 },
        );
      });
    }
  }

  it('GCounter is not idempotent (why it is Commutative, not Lattice): 5 twice counts 10', () => {
    const inv = new GCounterInvariant();
    const s = new Uint8Array(64);
    inv.apply(le64(5n), s);
    inv.apply(le64(5n), s);
    expect(rd64(s, 0)).toBe(10n);
  });

  it('GGraph(): rejections depend only on the fixed vertex count and flags, never on earlier edges', () => {
    const inv = new GGraphInvariant();
    fc.assert(
      fc.property(latticeGraphStateArb, fc.array(edgePayloadArb, { maxLength: 8 }), edgePayloadArb, (state, before, p) => {
        const fresh = state.slice();
        const expected = inv.apply(p, fresh) === Ok;
        const s = state.slice();
        for (const q of before) inv.apply(q, s);
        expect(inv.apply(p, s) === Ok).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  describe('BoundedCommutative: acceptance depends on order (concrete counterexamples)', () => {
    it('BoundedGCounter capacity 100, increments 60 and 50: whichever comes first is accepted', () => {
      const inv = new BoundedGCounterInvariant();
      const initial = new BoundedCounterState(0n, 100n).toBytes();
      const ps = [le64(60n), le64(50n)];
      const a = runOrder(inv, initial, ps, [0, 1]);
      const b = runOrder(inv, initial, ps, [1, 0]);
      expect(a.codes).toEqual([Ok, Overflow]);
      expect(b.codes).toEqual([Overflow, Ok]);
      expect(a.state).not.toBe(b.state); // 60 vs 50
    });

    it('Uniqueness: two facts claiming element 42 (different application bytes): the first one wins', () => {
      const inv = new UniquenessInvariant();
      const initial = new Uint8Array(64);
      const ps = [new Uint8Array([42, 0, 0x41]), new Uint8Array([42, 0, 0x42])];
      const a = runOrder(inv, initial, ps, [0, 1]);
      const b = runOrder(inv, initial, ps, [1, 0]);
      expect(a.codes).toEqual([Ok, DuplicateElement]);
      expect(b.codes).toEqual([DuplicateElement, Ok]);
      expect(a.state).toBe(b.state); // the state converges, the admitted facts do not
    });

    it('GGraph({ degreeLimits: true }), directed, max out-degree 1: (0,1) vs (0,2)', () => {
      const inv = new GGraphInvariant({ degreeLimits: true });
      const initial = new GraphState(4, { directed: true, maxOutDegree: 1 }).toBytes();
      const ps = [GGraphInvariant.payload(0, 1), GGraphInvariant.payload(0, 2)];
      const a = runOrder(inv, initial, ps, [0, 1]);
      const b = runOrder(inv, initial, ps, [1, 0]);
      expect(a.codes).toEqual([Ok, Overflow]);
      expect(b.codes).toEqual([Overflow, Ok]);
      expect(a.state).not.toBe(b.state);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 7. Through every kernel kind

type Kind = 'Kernel' | 'TwoLaneKernel' | 'EscalatingKernel' | 'TenantKernel';
const KINDS: readonly Kind[] = ['Kernel', 'TwoLaneKernel', 'EscalatingKernel', 'TenantKernel'];
const TENANT = 7;
const NEIGHBOUR = 3;

interface Subject {
  admit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number;
  state(): Uint8Array;
  lastInvariantError(): number;
  contains(id: Uint8Array): boolean;
  size(): number;
  /** TenantKernel only: the neighbour tenant's state. */
  neighbourState?(): Uint8Array;
}

function subject(kind: Kind, inv: Invariant, initial: Uint8Array | undefined): Subject {
  const indexCapacity = 64;
  if (kind === 'TenantKernel') {
    const tk = new TenantKernel(inv, { indexCapacity, maxTenants: 4 });
    tk.registerTenant(NEIGHBOUR, initial);
    tk.registerTenant(TENANT, initial);
    return {
      admit: (id, deps, payload) => tk.tryAdmit(TENANT, id, deps, payload),
      state: () => tk.state(TENANT).toBytes(),
      lastInvariantError: () => tk.lastInvariantError(TENANT),
      contains: (id) => tk.contains(TENANT, id),
      size: () => tk.size(TENANT),
      neighbourState: () => tk.state(NEIGHBOUR).toBytes(),
    };
  }
  const Ctor = kind === 'Kernel' ? Kernel : kind === 'TwoLaneKernel' ? TwoLaneKernel : EscalatingKernel;
  const k = initial === undefined ? new Ctor(inv, { indexCapacity }) : Ctor.withState(inv, initial, { indexCapacity });
  return {
    admit: (id, deps, payload) => k.tryAdmitRaw(id, deps, payload),
    state: () => k.state.toBytes(),
    lastInvariantError: () => k.lastInvariantError,
    contains: (id) => k.contains(id),
    size: () => k.size,
  };
}

interface KStep {
  readonly payload: Uint8Array;
  readonly admit: number;
  /** The invariant's code when rejected. */
  readonly inv?: number;
}

interface Scenario {
  readonly name: string;
  readonly make: () => Invariant;
  readonly model: Model;
  /** undefined: the kernel's default (initialState() or zeros). */
  readonly initial: Uint8Array | undefined;
  /** The state the kernel is expected to start from. */
  readonly start: Uint8Array;
  readonly steps: readonly KStep[];
  readonly final: Uint8Array;
}

const ok = (payload: Uint8Array): KStep => ({ payload, admit: AdmitCode.Ok });
const violation = (payload: Uint8Array, inv: number): KStep => ({ payload, admit: AdmitCode.InvariantViolation, inv });
const malformed = (payload: Uint8Array): KStep => ({ payload, admit: AdmitCode.MalformedFact, inv: MalformedPayload });

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'MaxInvariant (never rejects a well-formed payload; a short one is MalformedFact)',
    make: () => new MaxInvariant(),
    model: maxModel,
    initial: new MaxState(100n).toBytes(),
    start: new MaxState(100n).toBytes(),
    steps: [ok(MaxInvariant.payload(200)), ok(MaxInvariant.payload(50)), malformed(new Uint8Array(7)), ok(concat(MaxInvariant.payload(300), fill(9)))],
    final: new MaxState(300n).toBytes(),
  },
  {
    name: 'MaxInvariant from the default (zero) state',
    make: () => new MaxInvariant(),
    model: maxModel,
    initial: undefined,
    start: new Uint8Array(64),
    steps: [ok(MaxInvariant.payload(7)), ok(MaxInvariant.payload(3))],
    final: new MaxState(7n).toBytes(),
  },
  {
    name: 'GCounterInvariant (saturating)',
    make: () => new GCounterInvariant(),
    model: gcounterModel,
    initial: undefined,
    start: new Uint8Array(64),
    steps: [ok(GCounterInvariant.payload(10)), ok(GCounterInvariant.payload(20)), malformed(new Uint8Array(3)), ok(GCounterInvariant.payload(U64_MAX)), ok(GCounterInvariant.payload(1))],
    final: new GCounterState(U64).toBytes(),
  },
  {
    name: 'BoundedGCounterInvariant with capacity 100',
    make: () => new BoundedGCounterInvariant(),
    model: boundedModel,
    initial: new BoundedCounterState(0n, 100n).toBytes(),
    start: new BoundedCounterState(0n, 100n).toBytes(),
    steps: [
      ok(BoundedGCounterInvariant.payload(50)),
      ok(BoundedGCounterInvariant.payload(40)),
      violation(BoundedGCounterInvariant.payload(20), Overflow),
      malformed(new Uint8Array(0)),
      ok(BoundedGCounterInvariant.payload(10)),
      violation(BoundedGCounterInvariant.payload(1), Overflow),
    ],
    final: new BoundedCounterState(100n, 100n).toBytes(),
  },
  {
    name: 'BoundedGCounterInvariant from initialState() (capacity 2^64 − 1)',
    make: () => new BoundedGCounterInvariant(),
    model: boundedModel,
    initial: undefined,
    start: new BoundedCounterState(0n, U64).toBytes(),
    steps: [ok(BoundedGCounterInvariant.payload(U64 - 1n)), violation(BoundedGCounterInvariant.payload(2), Overflow), ok(BoundedGCounterInvariant.payload(1))],
    final: new BoundedCounterState(U64, U64).toBytes(),
  },
  {
    name: 'LWWInvariant',
    make: () => new LWWInvariant(),
    model: lwwModel,
    initial: undefined,
    start: new Uint8Array(64),
    steps: [
      ok(LWWInvariant.payload(fill(1), 10, 1)),
      ok(LWWInvariant.payload(fill(2), 5, 2)),
      malformed(new Uint8Array(47)),
      ok(LWWInvariant.payload(fill(3), 10, 5)),
      ok(LWWInvariant.payload(fill(2), 10, 5)),
    ],
    final: new LWWState(fill(3), 10n, 5n).toBytes(),
  },
  {
    name: 'UniquenessInvariant',
    make: () => new UniquenessInvariant(),
    model: uniquenessModel,
    initial: undefined,
    start: new Uint8Array(64),
    steps: [
      ok(UniquenessInvariant.payload(42)),
      violation(UniquenessInvariant.payload(42), DuplicateElement),
      violation(new Uint8Array([554 & 0xff, 554 >> 8]), BoundsViolation),
      malformed(new Uint8Array(1)),
      ok(UniquenessInvariant.payload(511)),
    ],
    final: new UniquenessState([42, 511]).toBytes(),
  },
  {
    name: 'GGraphInvariant() on 4 undirected vertices',
    make: () => new GGraphInvariant(),
    model: ggraphModel(false),
    initial: new GraphState(4).toBytes(),
    start: new GraphState(4).toBytes(),
    steps: [
      ok(GGraphInvariant.payload(0, 1)),
      ok(GGraphInvariant.payload(1, 0)),
      violation(new Uint8Array([0, 9]), BoundsViolation),
      violation(GGraphInvariant.payload(2, 2), BoundsViolation),
      ok(GGraphInvariant.payload(2, 3)),
    ],
    final: GraphStateWith(4, {}, [
      [0, 1],
      [1, 0],
      [2, 3],
      [3, 2],
    ]),
  },
  {
    name: 'GGraphInvariant() from the default (zero-vertex) state',
    make: () => new GGraphInvariant(),
    model: ggraphModel(false),
    initial: undefined,
    start: new Uint8Array(64),
    steps: [violation(new Uint8Array([0, 0]), BoundsViolation), violation(new Uint8Array([0, 1]), BoundsViolation)],
    final: new Uint8Array(64),
  },
  {
    name: 'GGraphInvariant() refuses a degree-limited state',
    make: () => new GGraphInvariant(),
    model: ggraphModel(false),
    initial: new GraphState(4, { maxOutDegree: 2 }).toBytes(),
    start: new GraphState(4, { maxOutDegree: 2 }).toBytes(),
    steps: [violation(GGraphInvariant.payload(0, 1), BoundsViolation), malformed(new Uint8Array([0]))],
    final: new GraphState(4, { maxOutDegree: 2 }).toBytes(),
  },
  {
    name: 'GGraphInvariant() on a state with vertex count 17',
    make: () => new GGraphInvariant(),
    model: ggraphModel(false),
    initial: cell64([32, [17, 0, 0, 0]]),
    start: cell64([32, [17, 0, 0, 0]]),
    steps: [violation(new Uint8Array([16, 16]), BoundsViolation), violation(new Uint8Array([0, 1]), BoundsViolation)],
    final: cell64([32, [17, 0, 0, 0]]),
  },
  {
    name: 'GGraphInvariant({ degreeLimits: true }), directed, max out-degree 1',
    make: () => new GGraphInvariant({ degreeLimits: true }),
    model: ggraphModel(true),
    initial: new GraphState(4, { directed: true, maxOutDegree: 1 }).toBytes(),
    start: new GraphState(4, { directed: true, maxOutDegree: 1 }).toBytes(),
    steps: [ok(GGraphInvariant.payload(0, 1)), violation(GGraphInvariant.payload(0, 2), Overflow), ok(GGraphInvariant.payload(1, 2)), ok(GGraphInvariant.payload(0, 1))],
    final: GraphStateWith(4, { directed: true, maxOutDegree: 1 }, [
      [0, 1],
      [1, 2],
    ]),
  },
];

/** GraphState bytes with the given directed edge bits set (hand-built adjacency). */
function GraphStateWith(n: number, opts: { directed?: boolean; maxOutDegree?: number }, edges: [number, number][]): Uint8Array {
  const s = new GraphState(n, opts).toBytes();
  for (const [f, t] of edges) s[(f * 16 + t) >> 3] = s[(f * 16 + t) >> 3]! | (1 << ((f * 16 + t) & 7));
  return s;
}

describe('through every kernel kind', () => {
  for (const sc of SCENARIOS) {
    for (const kind of KINDS) {
      it(`${kind}: ${sc.name}`, () => {
        const s = subject(kind, sc.make(), sc.initial);
        expect(hex(s.state())).toBe(hex(sc.start));
        let expected: Uint8Array = sc.start.slice();
        let last: Uint8Array | undefined;
        let admitted = 0;
        sc.steps.forEach((step, i) => {
          const id = seq(i + 1);
          const before = hex(s.state());
          const m = step.admit === AdmitCode.MalformedFact ? undefined : sc.model(expected, step.payload);
          const code = s.admit(id, last === undefined ? [] : [last], step.payload);
          expect(code).toBe(step.admit);
          if (code === AdmitCode.Ok) {
            expect(m?.code).toBe(Ok);
            expected = m!.state;
            last = id;
            admitted++;
            expect(s.contains(id)).toBe(true);
          } else {
            if (step.admit === AdmitCode.InvariantViolation) expect(m?.code).toBe(step.inv);
            expect(s.lastInvariantError()).toBe(step.inv);
            expect(hex(s.state())).toBe(before);
            expect(s.contains(id)).toBe(false);
          }
          expect(hex(s.state())).toBe(hex(expected));
          expect(s.size()).toBe(admitted);
        });
        expect(hex(s.state())).toBe(hex(sc.final));
        if (s.neighbourState) expect(hex(s.neighbourState())).toBe(hex(sc.start));
      });
    }
  }

  it('one invariant instance serves several tenant cells independently (cached word views)', () => {
    for (const inv of [new MaxInvariant(), new GCounterInvariant(), new BoundedGCounterInvariant(), new LWWInvariant(), new UniquenessInvariant()]) {
      const tk = new TenantKernel(inv, { indexCapacity: 16, maxTenants: 3 });
      tk.registerTenant(1);
      tk.registerTenant(2);
      const pay = (k: number): Uint8Array =>
        inv instanceof LWWInvariant ? LWWInvariant.payload(fill(k), k, k) : inv instanceof UniquenessInvariant ? UniquenessInvariant.payload(k) : le64(BigInt(k));
      const model = inv instanceof MaxInvariant ? maxModel : inv instanceof GCounterInvariant ? gcounterModel : inv instanceof BoundedGCounterInvariant ? boundedModel : inv instanceof LWWInvariant ? lwwModel : uniquenessModel;
      let e1 = tk.state(1).toBytes();
      let e2 = tk.state(2).toBytes();
      for (let i = 1; i <= 4; i++) {
        expect(tk.tryAdmit(1, seq(i), [], pay(i))).toBe(AdmitCode.Ok);
        e1 = model(e1, pay(i)).state;
        expect(tk.tryAdmit(2, seq(i), [], pay(10 * i))).toBe(AdmitCode.Ok);
        e2 = model(e2, pay(10 * i)).state;
      }
      expect(hex(tk.state(1).toBytes())).toBe(hex(e1));
      expect(hex(tk.state(2).toBytes())).toBe(hex(e2));
      expect(hex(e1)).not.toBe(hex(e2));
    }
  });

  it('replicated admission: coordination-free invariants accept it, BoundedCommutative ones need coordination', () => {
    const cases: [Invariant, Uint8Array, Uint8Array | undefined, boolean][] = [
      [new MaxInvariant(), MaxInvariant.payload(5), undefined, true],
      [new GCounterInvariant(), GCounterInvariant.payload(5), undefined, true],
      [new LWWInvariant(), LWWInvariant.payload(fill(1), 1, 1), undefined, true],
      [new GGraphInvariant(), GGraphInvariant.payload(0, 1), new GraphState(2).toBytes(), true],
      [new BoundedGCounterInvariant(), BoundedGCounterInvariant.payload(5), undefined, false],
      [new UniquenessInvariant(), UniquenessInvariant.payload(5), undefined, false],
      [new GGraphInvariant({ degreeLimits: true }), GGraphInvariant.payload(0, 1), new GraphState(2).toBytes(), false],
    ];
    for (const [inv, payload, initial, free] of cases) {
      const k = initial === undefined ? new Kernel(inv, { indexCapacity: 8 }) : Kernel.withState(inv, initial, { indexCapacity: 8 });
      const before = hex(k.state.toBytes());
      const code = k.tryAdmitReplicatedRaw(factId([], payload), [], payload);
      if (free) {
        expect(code).toBe(AdmitCode.Ok);
        expect(hex(k.state.toBytes())).not.toBe(before);
      } else {
        expect(code).toBe(AdmitCode.RequiresCoordination);
        expect(hex(k.state.toBytes())).toBe(before);
        // the local path still works
        expect(k.tryAdmitRaw(factId([], payload), [], payload)).toBe(AdmitCode.Ok);
      }
    }
  });

  it('withState accepts a StateCell too, and copies it', () => {
    const cell = new BoundedCounterState(0n, 10n).toCell();
    const k = TwoLaneKernel.withState(new BoundedGCounterInvariant(), cell, { indexCapacity: 8 });
    expect(k.tryAdmitRaw(seq(1), [], BoundedGCounterInvariant.payload(10))).toBe(AdmitCode.Ok);
    expect(k.tryAdmitRaw(seq(2), [seq(1)], BoundedGCounterInvariant.payload(1))).toBe(AdmitCode.InvariantViolation);
    expect(k.lastInvariantError).toBe(Overflow);
    expect(BoundedCounterState.fromCell(k.state).value).toBe(10n);
    expect(BoundedCounterState.fromCell(cell).value).toBe(0n);
    expect(STATE_CELL_BYTES).toBe(64);
  });
});

describe('GGraph degree limits in an undirected graph count both endpoints', () => {
  it('refuses an edge whose mirror would exceed the other endpoint’s limit', () => {
    const inv = new GGraphInvariant({ degreeLimits: true });
    const s = new GraphState(4, { maxOutDegree: 1 }).toBytes();
    expect(inv.apply(GGraphInvariant.payload(0, 1), s)).toBe(InvariantCode.Ok);
    const before = s.slice();
    // (2, 1) would give vertex 1 a second edge: 1–0 and 1–2.
    expect(inv.apply(GGraphInvariant.payload(2, 1), s)).toBe(InvariantCode.Overflow);
    expect(s).toEqual(before);
    expect(inv.apply(GGraphInvariant.payload(2, 3), s)).toBe(InvariantCode.Ok);
  });
});
