import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { I128_MAX, I128_MIN, addI128, compareI128, i128le, loadLimbs, readI128le } from './helpers/lib.js';

/** Four little-endian u32 limbs of an i128 (via the byte encoding, an independent path). */
function limbs(v: bigint): Uint32Array {
  return new Uint32Array(i128le(v).buffer);
}

function value(l: Uint32Array, o = 0): bigint {
  return readI128le(new Uint8Array(l.buffer, l.byteOffset + 4 * o, 16));
}

const EDGES = [
  I128_MIN,
  I128_MIN + 1n,
  -(1n << 96n),
  -(1n << 64n),
  -(1n << 32n),
  -0xffff_ffffn,
  -2n,
  -1n,
  0n,
  1n,
  0xffff_ffffn,
  1n << 32n,
  (1n << 64n) - 1n,
  1n << 64n,
  (1n << 96n) - 1n,
  1n << 96n,
  I128_MAX - 1n,
  I128_MAX,
];

// Random values, edges, and values whose limbs are all 0 or 0xffffffff (maximal carry chains).
const i128 = fc.oneof(
  fc.bigInt({ min: I128_MIN, max: I128_MAX }),
  fc.constantFrom(...EDGES),
  fc.tuple(fc.constantFrom(0n, 0xffff_ffffn, 1n, 0x8000_0000n), fc.constantFrom(0n, 0xffff_ffffn), fc.constantFrom(0n, 0xffff_ffffn), fc.constantFrom(0n, 0xffff_ffffn)).map(
    ([a, b, c, d]) => BigInt.asIntN(128, (a << 96n) | (b << 64n) | (c << 32n) | d),
  ),
);

const fits = (v: bigint): boolean => v >= I128_MIN && v <= I128_MAX;

describe('addI128', () => {
  it('adds known values', () => {
    const out = new Uint32Array(4);
    expect(addI128(limbs(2n), 0, limbs(3n), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(5n);
    expect(addI128(limbs(0xffff_ffffn), 0, limbs(1n), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(1n << 32n);
    expect(addI128(limbs(-1n), 0, limbs(1n), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(0n);
    expect(addI128(limbs(I128_MAX), 0, limbs(I128_MIN), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(-1n);
  });

  it('detects overflow at both ends and leaves out untouched', () => {
    const cases: [bigint, bigint][] = [
      [I128_MAX, 1n],
      [1n, I128_MAX],
      [I128_MAX, I128_MAX],
      [I128_MIN, -1n],
      [-1n, I128_MIN],
      [I128_MIN, I128_MIN],
      [1n << 126n, 1n << 126n],
      [-(1n << 126n), -(1n << 126n) - 1n],
    ];
    for (const [a, b] of cases) {
      const out = new Uint32Array([11, 22, 33, 44]);
      expect(addI128(limbs(a), 0, limbs(b), 0, out, 0)).toBe(false);
      expect(Array.from(out)).toEqual([11, 22, 33, 44]);
    }
    // Just inside the range.
    const out = new Uint32Array(4);
    expect(addI128(limbs(1n << 126n), 0, limbs((1n << 126n) - 1n), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(I128_MAX);
    expect(addI128(limbs(-(1n << 126n)), 0, limbs(-(1n << 126n)), 0, out, 0)).toBe(true);
    expect(value(out)).toBe(I128_MIN);
  });

  it('matches BigInt: exact sum when it fits, false (out untouched) exactly when it does not', () => {
    fc.assert(
      fc.property(i128, i128, fc.array(fc.nat({ max: 0xffff_ffff }), { minLength: 4, maxLength: 4 }), (a, b, junk) => {
        const out = new Uint32Array(junk);
        const ok = addI128(limbs(a), 0, limbs(b), 0, out, 0);
        const sum = a + b;
        expect(ok).toBe(fits(sum));
        if (ok) expect(value(out)).toBe(sum);
        else expect(Array.from(out)).toEqual(junk);
      }),
      { numRuns: 3000 },
    );
  });

  it('is commutative in its result', () => {
    fc.assert(
      fc.property(i128, i128, (a, b) => {
        const x = new Uint32Array(4);
        const y = new Uint32Array(4);
        expect(addI128(limbs(a), 0, limbs(b), 0, x, 0)).toBe(addI128(limbs(b), 0, limbs(a), 0, y, 0));
        expect(Array.from(x)).toEqual(Array.from(y));
      }),
      { numRuns: 500 },
    );
  });

  it('honours limb offsets and may write in place over an operand', () => {
    fc.assert(
      fc.property(i128, i128, (a, b) => {
        // a at limb 4, b at limb 8, result at limb 0 of a shared 12-limb array.
        const mem = new Uint32Array(12);
        mem.set(limbs(a), 4);
        mem.set(limbs(b), 8);
        const before = Array.from(mem);
        const ok = addI128(mem, 4, mem, 8, mem, 0);
        expect(ok).toBe(fits(a + b));
        if (ok) expect(value(mem, 0)).toBe(a + b);
        else expect(Array.from(mem)).toEqual(before);
        expect(value(mem, 4)).toBe(a);
        expect(value(mem, 8)).toBe(b);
        // In place: out aliases a.
        const inPlace = limbs(a).slice();
        const ok2 = addI128(inPlace, 0, limbs(b), 0, inPlace, 0);
        expect(ok2).toBe(ok);
        expect(value(inPlace)).toBe(ok ? a + b : a);
      }),
      { numRuns: 500 },
    );
  });
});

describe('compareI128', () => {
  it('orders known values', () => {
    expect(compareI128(limbs(I128_MIN), 0, limbs(I128_MAX), 0)).toBe(-1);
    expect(compareI128(limbs(I128_MAX), 0, limbs(I128_MIN), 0)).toBe(1);
    expect(compareI128(limbs(-1n), 0, limbs(0n), 0)).toBe(-1);
    expect(compareI128(limbs(0n), 0, limbs(-1n), 0)).toBe(1);
    expect(compareI128(limbs(1n << 32n), 0, limbs(0xffff_ffffn), 0)).toBe(1); // unsigned low limbs
    expect(compareI128(limbs(-(1n << 32n)), 0, limbs(-1n), 0)).toBe(-1);
    expect(compareI128(limbs(42n), 0, limbs(42n), 0)).toBe(0);
  });

  it('matches BigInt comparison', () => {
    fc.assert(
      fc.property(i128, i128, (a, b) => {
        expect(compareI128(limbs(a), 0, limbs(b), 0)).toBe(a < b ? -1 : a > b ? 1 : 0);
        expect(compareI128(limbs(a), 0, limbs(a), 0)).toBe(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('honours limb offsets', () => {
    fc.assert(
      fc.property(i128, i128, (a, b) => {
        const mem = new Uint32Array(8);
        mem.set(limbs(a), 4);
        mem.set(limbs(b), 0);
        expect(compareI128(mem, 4, mem, 0)).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('loadLimbs', () => {
  it('loads 16 LE bytes at any byte alignment', () => {
    fc.assert(
      fc.property(i128, fc.integer({ min: 0, max: 7 }), (v, off) => {
        const bytes = new Uint8Array(32).fill(0xaa);
        bytes.set(i128le(v), off);
        const out = new Uint32Array(6);
        loadLimbs(bytes, off, out, 1);
        expect(value(out, 1)).toBe(v);
        expect(out[0]).toBe(0);
        expect(out[5]).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
