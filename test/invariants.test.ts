import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AlgebraicClass,
  ConservationState,
  I128_MAX,
  I128_MIN,
  InvalidArgumentError,
  InvariantCode,
  StateCell,
  TOTAL_SUPPLY_PAYLOAD_BYTES,
  TotalSupplyInvariant,
  ValueOutOfRangeError,
  i128le,
  isCoordinationFree,
  readI128le,
  toHex,
} from './helpers/lib.js';
import { expectError } from './helpers/errors.js';


/** A raw 64-byte state (balance, min, max, padding), written independently of ConservationState. */
function rawState(balance: bigint, min: bigint, max: bigint, padding?: Uint8Array): Uint8Array {
  const s = new Uint8Array(64);
  s.set(i128le(balance), 0);
  s.set(i128le(min), 16);
  s.set(i128le(max), 32);
  if (padding) s.set(padding, 48);
  return s;
}

const delta = (d: bigint): Uint8Array => TotalSupplyInvariant.payload(d);

/** The reference rule: exact sum; outside i128 or below min → Underflow/Overflow; else Ok. */
function model(balance: bigint, min: bigint, max: bigint, d: bigint): { code: number; balance: bigint } {
  const nb = balance + d;
  if (nb > I128_MAX) return { code: InvariantCode.Overflow, balance };
  if (nb < I128_MIN) return { code: InvariantCode.Underflow, balance };
  if (nb < min) return { code: InvariantCode.Underflow, balance };
  if (nb > max) return { code: InvariantCode.Overflow, balance };
  return { code: InvariantCode.Ok, balance: nb };
}

const EDGES = [I128_MIN, I128_MIN + 1n, -(1n << 64n), -1n, 0n, 1n, (1n << 64n) - 1n, 1n << 64n, (1n << 96n), I128_MAX - 1n, I128_MAX];
const i128 = fc.oneof(
  fc.bigInt({ min: I128_MIN, max: I128_MAX }),
  fc.constantFrom(...EDGES),
  fc.bigInt({ min: -2000n, max: 2000n }),
  fc.bigInt({ min: I128_MAX - 2000n, max: I128_MAX }),
  fc.bigInt({ min: I128_MIN, max: I128_MIN + 2000n }),
);

describe('TotalSupplyInvariant: upstream invariants/total_supply.rs tests', () => {
  const inv = new TotalSupplyInvariant();

  it('test_conservation_add: +50 on (100, 0, 1000) → 150', () => {
    const s = new ConservationState(100n, 0n, 1000n).toBytes();
    expect(inv.apply(delta(50n), s)).toBe(InvariantCode.Ok);
    expect(toHex(s)).toBe(toHex(rawState(150n, 0n, 1000n)));
    expect(ConservationState.fromCell(s).balance).toBe(150n);
  });

  it('test_conservation_subtract: −50 on (100, 0, 1000) → 50', () => {
    const s = new ConservationState(100n, 0n, 1000n).toBytes();
    expect(inv.apply(delta(-50n), s)).toBe(InvariantCode.Ok);
    expect(ConservationState.fromCell(s).balance).toBe(50n);
  });

  it('test_conservation_underflow: −200 on (100, 0, 1000) → Underflow (2), state unchanged', () => {
    const s = new ConservationState(100n, 0n, 1000n).toBytes();
    const before = toHex(s);
    expect(inv.apply(delta(-200n), s)).toBe(InvariantCode.Underflow);
    expect(InvariantCode.Underflow).toBe(2);
    expect(toHex(s)).toBe(before);
  });

  it('test_conservation_overflow: +200 on (900, 0, 1000) → Overflow (1), state unchanged', () => {
    const s = new ConservationState(900n, 0n, 1000n).toBytes();
    const before = toHex(s);
    expect(inv.apply(delta(200n), s)).toBe(InvariantCode.Overflow);
    expect(InvariantCode.Overflow).toBe(1);
    expect(toHex(s)).toBe(before);
  });

  it('accepts landing exactly on min and on max', () => {
    const s = new ConservationState(100n, 0n, 1000n).toBytes();
    expect(inv.apply(delta(-100n), s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(0n);
    expect(inv.apply(delta(1000n), s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(1000n);
    expect(inv.apply(delta(1n), s)).toBe(InvariantCode.Overflow);
    expect(inv.apply(delta(0n), s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(1000n);
  });
});

describe('REGRESSION upstream §12.2 item 9: no i128 wrap-around', () => {
  const inv = new TotalSupplyInvariant();

  it('balance 2^127−1 with default bounds, delta +1 → Overflow (upstream wrapped to −2^127 and accepted)', () => {
    const s = new ConservationState(I128_MAX).toBytes();
    const before = toHex(s);
    expect(inv.apply(delta(1n), s)).toBe(InvariantCode.Overflow);
    expect(toHex(s)).toBe(before);
    expect(readI128le(s, 0)).toBe(I128_MAX);
  });

  it('balance −2^127 with default bounds, delta −1 → Underflow', () => {
    const s = new ConservationState(I128_MIN).toBytes();
    const before = toHex(s);
    expect(inv.apply(delta(-1n), s)).toBe(InvariantCode.Underflow);
    expect(toHex(s)).toBe(before);
  });

  it('the largest deltas at the extremes', () => {
    const s = new ConservationState(I128_MAX).toBytes();
    expect(inv.apply(delta(I128_MAX), s)).toBe(InvariantCode.Overflow);
    expect(inv.apply(delta(I128_MIN), s)).toBe(InvariantCode.Ok); // MAX + MIN = −1
    expect(readI128le(s, 0)).toBe(-1n);
    const t = new ConservationState(I128_MIN).toBytes();
    expect(inv.apply(delta(I128_MIN), t)).toBe(InvariantCode.Underflow);
    expect(inv.apply(delta(I128_MAX), t)).toBe(InvariantCode.Ok); // MIN + MAX = −1
    expect(readI128le(t, 0)).toBe(-1n);
  });

  it('wrapping sums that would land inside tight bounds are still rejected', () => {
    // Upstream: MAX + MAX wraps to −2, inside [−10, 10], and was accepted.
    const s = rawState(I128_MAX, -10n, I128_MAX);
    expect(inv.apply(delta(I128_MAX), s)).toBe(InvariantCode.Overflow);
    expect(readI128le(s, 0)).toBe(I128_MAX);
    // MIN + MIN wraps to 0.
    const t = rawState(I128_MIN, I128_MIN, 10n);
    expect(inv.apply(delta(I128_MIN), t)).toBe(InvariantCode.Underflow);
    expect(readI128le(t, 0)).toBe(I128_MIN);
  });
});

describe('malformed input', () => {
  const inv = new TotalSupplyInvariant();

  it('a payload shorter than 16 bytes → MalformedPayload, state unchanged', () => {
    expect(TOTAL_SUPPLY_PAYLOAD_BYTES).toBe(16);
    for (const n of [0, 1, 8, 15]) {
      const s = new ConservationState(100n, 0n, 1000n).toBytes();
      const before = toHex(s);
      const payload = new Uint8Array(n);
      if (n > 0) payload[0] = 1;
      expect(inv.apply(payload, s)).toBe(InvariantCode.MalformedPayload);
      expect(toHex(s)).toBe(before);
    }
  });

  // The documented contract (src/invariants/total-supply.ts) is "at least 16 bytes": the delta,
  // then application bytes (a nonce, a memo) that the invariant ignores.
  it('bytes after the 16-byte delta are ignored', () => {
    for (const n of [17, 32, 64]) {
      const s = new ConservationState(100n, 0n, 1000n).toBytes();
      const payload = new Uint8Array(n).fill(0xff); // trailing 0xff must not be read as part of the delta
      payload.set(i128le(7n), 0);
      expect(inv.apply(payload, s)).toBe(InvariantCode.Ok);
      expect(readI128le(s, 0)).toBe(107n);
      const t = new ConservationState(100n, 0n, 1000n).toBytes();
      payload.set(i128le(-200n), 0);
      expect(inv.apply(payload, t)).toBe(InvariantCode.Underflow);
      expect(readI128le(t, 0)).toBe(100n);
    }
  });

  it('payload(delta, appData) is the delta followed by appData', () => {
    const p = TotalSupplyInvariant.payload(-5n, new Uint8Array([1, 2, 3]));
    expect(toHex(p)).toBe(toHex(i128le(-5n)) + '010203');
    expect(toHex(TotalSupplyInvariant.payload(9n))).toBe(toHex(i128le(9n)));
    const s = new ConservationState(10n, 0n, 100n).toBytes();
    expect(inv.apply(p, s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(5n);
    expectError(() => TotalSupplyInvariant.payload(1n, [1] as unknown as Uint8Array), InvalidArgumentError, 'InvalidArgument');
    expectError(() => TotalSupplyInvariant.payload(I128_MAX + 1n), ValueOutOfRangeError, 'ValueOutOfRange');
  });

  it('a state of length ≠ 64 → MalformedPayload, state unchanged', () => {
    for (const n of [0, 16, 48, 63, 65, 128]) {
      const s = new Uint8Array(n).fill(0);
      const before = toHex(s);
      expect(inv.apply(delta(1n), s)).toBe(InvariantCode.MalformedPayload);
      expect(toHex(s)).toBe(before);
    }
  });

  it('a payload view of 16 bytes inside a larger buffer is read in place', () => {
    const backing = new Uint8Array(40);
    backing.set(i128le(7n), 3);
    const s = new ConservationState(0n, 0n, 100n).toBytes();
    expect(inv.apply(backing.subarray(3, 19), s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(7n);
  });
});

describe('matches a BigInt model (fast-check)', () => {
  it('code and state bytes match; state untouched on rejection; payload untouched', () => {
    const inv = new TotalSupplyInvariant();
    fc.assert(
      fc.property(i128, i128, i128, i128, fc.uint8Array({ minLength: 16, maxLength: 16 }), (balance, a, b, d, padding) => {
        // Raw states are allowed any balance/min/max, including balance outside bounds and min > max.
        const s = rawState(balance, a, b, padding);
        const before = s.slice();
        const payload = delta(d);
        const payloadBefore = toHex(payload);
        const expected = model(balance, a, b, d);
        expect(inv.apply(payload, s)).toBe(expected.code);
        expect(toHex(payload)).toBe(payloadBefore);
        if (expected.code === InvariantCode.Ok) {
          expect(toHex(s)).toBe(toHex(rawState(expected.balance, a, b, padding)));
        } else {
          expect(toHex(s)).toBe(toHex(before));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('valid ConservationStates with ordered bounds; sequences of deltas', () => {
    const stateArb = fc.tuple(i128, i128, i128).map(([x, y, z]) => {
      const [min, balance, max] = [x, y, z].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0)) as [bigint, bigint, bigint];
      return new ConservationState(balance, min, max);
    });
    fc.assert(
      fc.property(stateArb, fc.array(i128, { minLength: 1, maxLength: 20 }), (st, deltas) => {
        const inv = new TotalSupplyInvariant();
        const s = st.toBytes();
        let balance = st.balance;
        for (const d of deltas) {
          const expected = model(balance, st.min, st.max, d);
          expect(inv.apply(delta(d), s)).toBe(expected.code);
          balance = expected.balance;
          expect(readI128le(s, 0)).toBe(balance);
          // An accepted state always stays within its bounds.
          expect(balance >= st.min && balance <= st.max).toBe(true);
        }
        const back = ConservationState.fromCell(s);
        expect(back.balance).toBe(balance);
        expect(back.min).toBe(st.min);
        expect(back.max).toBe(st.max);
      }),
      { numRuns: 500 },
    );
  });
});

describe('state memory placement', () => {
  /** Runs the same deltas on a plain state, a SharedArrayBuffer view at offset 64, and an unaligned view. */
  function runEverywhere(balance: bigint, min: bigint, max: bigint, deltas: bigint[]): { codes: number[][]; states: string[] } {
    const initial = rawState(balance, min, max, new Uint8Array(16).fill(0x5a));

    const plain = initial.slice();

    const sab = new SharedArrayBuffer(256);
    new Uint8Array(sab).fill(0xee);
    const shared = new Uint8Array(sab, 64, 64);
    shared.set(initial);

    const backing = new Uint8Array(66).fill(0xcc);
    const unaligned = backing.subarray(1, 65);
    unaligned.set(initial);
    expect(unaligned.byteOffset).toBe(1);

    const inv = new TotalSupplyInvariant();
    const codes: number[][] = [[], [], []];
    // Interleave the three states on one invariant instance (it caches the last state's word view).
    for (const d of deltas) {
      codes[0]!.push(inv.apply(delta(d), plain));
      codes[1]!.push(inv.apply(delta(d), shared));
      codes[2]!.push(inv.apply(delta(d), unaligned));
    }
    // Nothing outside the 64 bytes was touched.
    const sabBytes = new Uint8Array(sab);
    expect(sabBytes.subarray(0, 64).every((x) => x === 0xee)).toBe(true);
    expect(sabBytes.subarray(128).every((x) => x === 0xee)).toBe(true);
    expect(backing[0]).toBe(0xcc);
    expect(backing[65]).toBe(0xcc);
    return { codes, states: [toHex(plain), toHex(shared), toHex(unaligned)] };
  }

  it('a SharedArrayBuffer view at a 64-byte offset and an unaligned view give identical results', () => {
    const { codes, states } = runEverywhere(100n, 0n, 1000n, [50n, -200n, 900n, -1050n, 1n, -1n, 1000n]);
    expect(codes[0]).toEqual([0, 2, 1, 2, 0, 0, 1]);
    expect(codes[1]).toEqual(codes[0]);
    expect(codes[2]).toEqual(codes[0]);
    expect(states[1]).toBe(states[0]);
    expect(states[2]).toBe(states[0]);
    expect(readI128le(Buffer.from(states[0]!, 'hex'), 0)).toBe(150n);
  });

  it('placements agree with the model on random inputs', () => {
    fc.assert(
      fc.property(i128, i128, i128, fc.array(i128, { minLength: 1, maxLength: 8 }), (x, y, z, deltas) => {
        const [min, balance, max] = [x, y, z].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0)) as [bigint, bigint, bigint];
        const { codes, states } = runEverywhere(balance, min, max, deltas);
        let b = balance;
        const expectedCodes = deltas.map((d) => {
          const r = model(b, min, max, d);
          b = r.balance;
          return r.code;
        });
        expect(codes[0]).toEqual(expectedCodes);
        expect(codes[1]).toEqual(expectedCodes);
        expect(codes[2]).toEqual(expectedCodes);
        const expectedState = toHex(rawState(b, min, max, new Uint8Array(16).fill(0x5a)));
        expect(states).toEqual([expectedState, expectedState, expectedState]);
      }),
      { numRuns: 300 },
    );
  });

  it('works on the bytes of a StateCell over shared memory', () => {
    const sab = new SharedArrayBuffer(128);
    const cell = new StateCell(sab, 64);
    cell.copyFrom(new ConservationState(10n, 0n, 20n).toBytes());
    const inv = new TotalSupplyInvariant();
    expect(inv.apply(delta(5n), cell.bytes)).toBe(InvariantCode.Ok);
    expect(readI128le(new Uint8Array(sab), 64)).toBe(15n);
    expect(inv.apply(delta(6n), cell.bytes)).toBe(InvariantCode.Overflow);
    expect(ConservationState.fromCell(cell).balance).toBe(15n);
  });

  it('sees writes made to the state between calls (no stale cached value)', () => {
    const inv = new TotalSupplyInvariant();
    const s = new ConservationState(0n, 0n, 100n).toBytes();
    expect(inv.apply(delta(10n), s)).toBe(InvariantCode.Ok);
    s.set(i128le(95n), 0); // external write to the same array
    expect(inv.apply(delta(10n), s)).toBe(InvariantCode.Overflow);
    expect(inv.apply(delta(5n), s)).toBe(InvariantCode.Ok);
    expect(readI128le(s, 0)).toBe(100n);
  });
});

describe('algebraic class', () => {
  it('is BoundedCommutative, hence not coordination-free (upstream wrongly said Group)', () => {
    const inv = new TotalSupplyInvariant();
    expect(inv.algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    expect(AlgebraicClass.BoundedCommutative).toBe(4);
    expect(isCoordinationFree(inv.algebraicClass)).toBe(false);
  });

  it('isCoordinationFree follows the upstream table', () => {
    expect(isCoordinationFree(AlgebraicClass.Commutative)).toBe(true);
    expect(isCoordinationFree(AlgebraicClass.CommutativeIdempotent)).toBe(true);
    expect(isCoordinationFree(AlgebraicClass.Lattice)).toBe(true);
    expect(isCoordinationFree(AlgebraicClass.Group)).toBe(true);
    expect(isCoordinationFree(AlgebraicClass.BoundedCommutative)).toBe(false);
    expect(isCoordinationFree(AlgebraicClass.Ordered)).toBe(false);
  });
});

describe('ConservationState', () => {
  it('encodes (100, 0, 1000) as in upstream Appendix A', () => {
    const b = new ConservationState(100n, 0n, 1000n).toBytes();
    expect(toHex(b)).toBe('64' + '00'.repeat(15) + '00'.repeat(16) + 'e803' + '00'.repeat(14) + '00'.repeat(16));
  });

  it('defaults to the full i128 range', () => {
    const st = new ConservationState(0n);
    expect(st.min).toBe(I128_MIN);
    expect(st.max).toBe(I128_MAX);
    expect(toHex(st.toBytes())).toBe(toHex(rawState(0n, I128_MIN, I128_MAX)));
  });

  it('round trips through toBytes / toCell / fromCell', () => {
    fc.assert(
      fc.property(i128, i128, i128, (x, y, z) => {
        const [min, balance, max] = [x, y, z].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0)) as [bigint, bigint, bigint];
        const st = new ConservationState(balance, min, max);
        const bytes = st.toBytes();
        expect(bytes.length).toBe(64);
        expect(bytes.subarray(48).every((v) => v === 0)).toBe(true);
        expect(toHex(bytes)).toBe(toHex(rawState(balance, min, max)));
        for (const back of [ConservationState.fromCell(bytes), ConservationState.fromCell(st.toCell())]) {
          expect(back.balance).toBe(balance);
          expect(back.min).toBe(min);
          expect(back.max).toBe(max);
        }
        expect(st.toCell()).toBeInstanceOf(StateCell);
        expect(toHex(st.toCell().bytes)).toBe(toHex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects min > max, a balance outside [min, max], and non-bigints', () => {
    expectError(() => new ConservationState(0n, 1n, 0n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => new ConservationState(5n, 0n, 4n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => new ConservationState(-1n, 0n, 4n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => new ConservationState(100 as unknown as bigint, 0n, 1000n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => new ConservationState(100n, 0 as unknown as bigint, 1000n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => new ConservationState(100n, 0n, '1000' as unknown as bigint), InvalidArgumentError, 'InvalidArgument');
    // Boundary values are accepted.
    expect(new ConservationState(0n, 0n, 0n).balance).toBe(0n);
    expect(new ConservationState(I128_MAX, I128_MIN, I128_MAX).balance).toBe(I128_MAX);
  });

  it('values outside i128 → ValueOutOfRange on toBytes', () => {
    // The constructor checks ordering only; the i128 width is checked when encoding.
    expectError(() => new ConservationState(I128_MAX + 1n, 0n, I128_MAX + 1n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => new ConservationState(0n, I128_MIN - 1n, 0n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => new ConservationState(0n, 0n, 1n << 200n).toBytes(), ValueOutOfRangeError, 'ValueOutOfRange');
    expectError(() => new ConservationState(0n, 0n, 1n << 200n).toCell(), ValueOutOfRangeError, 'ValueOutOfRange');
  });

  it('fromCell rejects anything but 64 bytes', () => {
    for (const n of [0, 48, 63, 65]) expectError(() => ConservationState.fromCell(new Uint8Array(n)), InvalidArgumentError, 'InvalidArgument');
  });

  it('fromCell of a zeroed cell is (0, 0, 0): valid but restrictive (upstream §4.1 note)', () => {
    const st = ConservationState.fromCell(new StateCell());
    expect([st.balance, st.min, st.max]).toEqual([0n, 0n, 0n]);
    const inv = new TotalSupplyInvariant();
    const cell = new StateCell();
    expect(inv.apply(delta(1n), cell.bytes)).toBe(InvariantCode.Overflow);
    expect(inv.apply(delta(-1n), cell.bytes)).toBe(InvariantCode.Underflow);
    expect(inv.apply(delta(0n), cell.bytes)).toBe(InvariantCode.Ok);
  });
});
