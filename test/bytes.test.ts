import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  I128_MAX,
  I128_MIN,
  InvalidArgumentError,
  U64_MAX,
  ValueOutOfRangeError,
  bytesEqual,
  compareBytes,
  crc32c,
  fromHex,
  i128le,
  readI128le,
  readU64le,
  toHex,
  u64le,
  writeI128le,
  writeU64le,
} from './helpers/lib.js';
import { expectError } from './helpers/errors.js';

const I128_EDGES = [I128_MIN, I128_MIN + 1n, -(1n << 64n), -(1n << 63n), -1n, 0n, 1n, (1n << 63n), (1n << 64n) - 1n, 1n << 64n, I128_MAX - 1n, I128_MAX];
const U64_EDGES = [0n, 1n, 0xffn, 0x100n, 0xffff_ffffn, 0x1_0000_0000n, (1n << 63n) - 1n, 1n << 63n, U64_MAX - 1n, U64_MAX];

const i128Arb = fc.oneof(fc.bigInt({ min: I128_MIN, max: I128_MAX }), fc.constantFrom(...I128_EDGES), fc.bigInt({ min: -1000n, max: 1000n }));
const u64Arb = fc.oneof(fc.bigInt({ min: 0n, max: U64_MAX }), fc.constantFrom(...U64_EDGES));

/** Reference encoding: two's complement, little-endian, computed byte by byte with BigInt division. */
function refLe(value: bigint, width: number): number[] {
  let v = value < 0n ? (1n << BigInt(8 * width)) + value : value;
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    out.push(Number(v % 256n));
    v /= 256n;
  }
  return out;
}


describe('constants', () => {
  it('are the i128 and u64 bounds', () => {
    expect(I128_MIN).toBe(-(2n ** 127n));
    expect(I128_MAX).toBe(2n ** 127n - 1n);
    expect(U64_MAX).toBe(2n ** 64n - 1n);
  });
});

describe('i128le / readI128le', () => {
  it('encodes known values', () => {
    expect(toHex(i128le(0n))).toBe('00'.repeat(16));
    expect(toHex(i128le(-1n))).toBe('ff'.repeat(16));
    expect(toHex(i128le(1n))).toBe('01' + '00'.repeat(15));
    expect(toHex(i128le(1000n))).toBe('e803' + '00'.repeat(14));
    expect(toHex(i128le(I128_MAX))).toBe('ff'.repeat(15) + '7f');
    expect(toHex(i128le(I128_MIN))).toBe('00'.repeat(15) + '80');
    expect(toHex(i128le(-2n))).toBe('fe' + 'ff'.repeat(15));
  });

  it('round trips every edge value', () => {
    for (const v of I128_EDGES) {
      const b = i128le(v);
      expect(b.length).toBe(16);
      expect(readI128le(b)).toBe(v);
    }
  });

  it('matches a BigInt reference encoding and round trips (random)', () => {
    fc.assert(
      fc.property(i128Arb, (v) => {
        const b = i128le(v);
        expect(Array.from(b)).toEqual(refLe(v, 16));
        expect(readI128le(b)).toBe(v);
      }),
      { numRuns: 1000 },
    );
  });

  it('writeI128le writes at an offset and touches only its 16 bytes', () => {
    fc.assert(
      fc.property(i128Arb, fc.integer({ min: 0, max: 16 }), fc.uint8Array({ minLength: 40, maxLength: 40 }), (v, off, init) => {
        const buf = init.slice();
        writeI128le(buf, off, v);
        expect(readI128le(buf, off)).toBe(v);
        expect(Array.from(buf.subarray(0, off))).toEqual(Array.from(init.subarray(0, off)));
        expect(Array.from(buf.subarray(off + 16))).toEqual(Array.from(init.subarray(off + 16)));
      }),
      { numRuns: 300 },
    );
  });

  it('reads from a view with a non-zero byteOffset', () => {
    const backing = new Uint8Array(33);
    backing.set(i128le(-123456789n), 17);
    expect(readI128le(backing.subarray(1), 16)).toBe(-123456789n);
  });

  it('rejects values outside i128 with ValueOutOfRange', () => {
    for (const v of [I128_MAX + 1n, I128_MIN - 1n, 1n << 128n, -(1n << 200n)]) {
      expectError(() => i128le(v), ValueOutOfRangeError, 'ValueOutOfRange');
      const out = new Uint8Array(16).fill(7);
      expectError(() => writeI128le(out, 0, v), ValueOutOfRangeError, 'ValueOutOfRange');
      expect(Array.from(out)).toEqual(new Array(16).fill(7));
    }
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: I128_MAX + 1n, max: 1n << 300n }), fc.bigInt({ min: -(1n << 300n), max: I128_MIN - 1n })), (v) => {
        expectError(() => i128le(v), ValueOutOfRangeError, 'ValueOutOfRange');
      }),
      { numRuns: 200 },
    );
  });

  it('rejects non-bigint values with InvalidArgument', () => {
    for (const v of [0, 1, 1.5, '1', null, undefined, {}] as unknown[]) {
      expectError(() => i128le(v as bigint), InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('rejects fields that do not fit', () => {
    expectError(() => readI128le(new Uint8Array(15)), InvalidArgumentError, 'InvalidArgument');
    expectError(() => readI128le(new Uint8Array(16), 1), InvalidArgumentError, 'InvalidArgument');
    expectError(() => readI128le(new Uint8Array(16), -1), InvalidArgumentError, 'InvalidArgument');
    expectError(() => writeI128le(new Uint8Array(20), 5, 0n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => writeI128le(new Uint8Array(20), 0.5, 0n), InvalidArgumentError, 'InvalidArgument');
    expectError(() => readI128le([1, 2] as unknown as Uint8Array), InvalidArgumentError, 'InvalidArgument');
  });
});

describe('u64le / readU64le', () => {
  it('encodes known values', () => {
    expect(toHex(u64le(0n))).toBe('0000000000000000');
    expect(toHex(u64le(1n))).toBe('0100000000000000');
    expect(toHex(u64le(0x0123456789abcdefn))).toBe('efcdab8967452301');
    expect(toHex(u64le(U64_MAX))).toBe('ffffffffffffffff');
    expect(toHex(u64le(4096))).toBe('0010000000000000');
  });

  it('matches a BigInt reference and round trips (random and edges)', () => {
    fc.assert(
      fc.property(u64Arb, (v) => {
        const b = u64le(v);
        expect(Array.from(b)).toEqual(refLe(v, 8));
        expect(readU64le(b)).toBe(v);
      }),
      { numRuns: 1000 },
    );
    for (const v of U64_EDGES) expect(readU64le(u64le(v))).toBe(v);
  });

  it('accepts safe non-negative integers as numbers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(readU64le(u64le(n))).toBe(BigInt(n));
        expect(Array.from(u64le(n))).toEqual(Array.from(u64le(BigInt(n))));
      }),
      { numRuns: 300 },
    );
  });

  it('writeU64le writes at an offset and touches only its 8 bytes', () => {
    fc.assert(
      fc.property(u64Arb, fc.integer({ min: 0, max: 12 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), (v, off, init) => {
        const buf = init.slice();
        writeU64le(buf, off, v);
        expect(readU64le(buf, off)).toBe(v);
        expect(Array.from(buf.subarray(0, off))).toEqual(Array.from(init.subarray(0, off)));
        expect(Array.from(buf.subarray(off + 8))).toEqual(Array.from(init.subarray(off + 8)));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects values outside [0, 2^64) with ValueOutOfRange', () => {
    for (const v of [-1n, U64_MAX + 1n, 1n << 100n, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Infinity] as (bigint | number)[]) {
      expectError(() => u64le(v), ValueOutOfRangeError, 'ValueOutOfRange');
    }
    const out = new Uint8Array(8).fill(9);
    expectError(() => writeU64le(out, 0, U64_MAX + 1n), ValueOutOfRangeError, 'ValueOutOfRange');
    expect(Array.from(out)).toEqual(new Array(8).fill(9));
  });

  it('rejects non-numeric values with InvalidArgument', () => {
    for (const v of ['1', null, undefined, {}] as unknown[]) {
      expectError(() => u64le(v as bigint), InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('rejects fields that do not fit', () => {
    expectError(() => readU64le(new Uint8Array(7)), InvalidArgumentError, 'InvalidArgument');
    expectError(() => readU64le(new Uint8Array(8), 1), InvalidArgumentError, 'InvalidArgument');
    expectError(() => writeU64le(new Uint8Array(8), 1, 0n), InvalidArgumentError, 'InvalidArgument');
  });
});

describe('toHex / fromHex', () => {
  it('converts known values', () => {
    expect(toHex(new Uint8Array([]))).toBe('');
    expect(toHex(new Uint8Array([0, 1, 0x0f, 0x10, 0xab, 0xff]))).toBe('00010f10abff');
    expect(Array.from(fromHex('00010f10abff'))).toEqual([0, 1, 0x0f, 0x10, 0xab, 0xff]);
    expect(Array.from(fromHex('ABcd'))).toEqual([0xab, 0xcd]);
    expect(fromHex('').length).toBe(0);
  });

  it('round trips random bytes; hex is lower case and twice as long', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const h = toHex(b);
        expect(h).toMatch(/^[0-9a-f]*$/);
        expect(h.length).toBe(2 * b.length);
        expect(Array.from(fromHex(h))).toEqual(Array.from(b));
        expect(Array.from(fromHex(h.toUpperCase()))).toEqual(Array.from(b));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects odd-length, non-hex and non-string input', () => {
    for (const h of ['0', 'abc', 'zz', '0x00', ' 00', '00 ', 'g0'] as const) {
      expectError(() => fromHex(h), InvalidArgumentError, 'InvalidArgument');
    }
    expectError(() => fromHex(42 as unknown as string), InvalidArgumentError, 'InvalidArgument');
  });
});

describe('compareBytes / bytesEqual', () => {
  it('orders bytewise unsigned from byte 0, shorter prefix first', () => {
    const b = (...xs: number[]): Uint8Array => new Uint8Array(xs);
    expect(compareBytes(b(), b())).toBe(0);
    expect(compareBytes(b(1, 2), b(1, 2))).toBe(0);
    expect(compareBytes(b(1, 2), b(1, 3))).toBeLessThan(0);
    expect(compareBytes(b(1, 3), b(1, 2))).toBeGreaterThan(0);
    expect(compareBytes(b(0x7f), b(0x80))).toBeLessThan(0); // unsigned, not signed
    expect(compareBytes(b(0xff), b(0x00, 0xff))).toBeGreaterThan(0); // first byte decides
    expect(compareBytes(b(1), b(1, 0))).toBeLessThan(0);
    expect(compareBytes(b(1, 0), b(1))).toBeGreaterThan(0);
    expect(bytesEqual(b(1, 2), b(1, 2))).toBe(true);
    expect(bytesEqual(b(1, 2), b(1, 2, 0))).toBe(false);
    expect(bytesEqual(b(1, 2), b(2, 1))).toBe(false);
    expect(bytesEqual(b(), b())).toBe(true);
  });

  it('agrees with hex string order, is antisymmetric, and bytesEqual iff compare is 0', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (x, y) => {
        const c = compareBytes(x, y);
        const hx = toHex(x);
        const hy = toHex(y);
        expect(Math.sign(c)).toBe(hx < hy ? -1 : hx > hy ? 1 : 0);
        expect(Math.sign(compareBytes(y, x)) + Math.sign(c)).toBe(0);
        expect(bytesEqual(x, y)).toBe(hx === hy);
        expect(compareBytes(x, x)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it('compares views by content, not by buffer', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    expect(bytesEqual(backing.subarray(1, 4), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(compareBytes(backing.subarray(1, 4), new Uint8Array([1, 2, 3]))).toBe(0);
  });
});

describe('crc32c checks its range', () => {
  const bytes = new TextEncoder().encode('123456789');

  it('computes the standard value over any valid range, and chains', () => {
    expect(crc32c(bytes)).toBe(0xe3069283);
    expect(crc32c(bytes, 4, 9, crc32c(bytes, 0, 4))).toBe(0xe3069283);
    expect(crc32c(bytes, 9, 9)).toBe(0);
    expect(crc32c(Buffer.from(bytes))).toBe(0xe3069283);
  });

  it('refuses a range outside the bytes (never reads past the end as zeros, never loops forever)', () => {
    for (const [from, to] of [
      [0, bytes.length + 4],
      [0, Infinity],
      [-1, 4],
      [5, 4],
      [NaN, 4],
      [0, NaN],
      [0.5, 4],
      [0, 2 ** 53],
      ['0', 4],
      [0, 4n],
    ] as unknown as [number, number][]) {
      expectError(() => crc32c(bytes, from, to), InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('refuses what is not bytes, and a running CRC that is not a u32', () => {
    for (const bad of [null, undefined, 'abc', [1, 2, 3], new Uint32Array(4), {}]) {
      expectError(() => crc32c(bad as unknown as Uint8Array), InvalidArgumentError, 'InvalidArgument');
    }
    for (const crc of [-1, 2 ** 32, 1.5, NaN, Infinity, 5n, '5']) {
      expectError(() => crc32c(bytes, 0, 9, crc as number), InvalidArgumentError, 'InvalidArgument');
    }
  });
});
