import { hash } from 'blake3-jit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FACT_ENCODING_VERSION,
  FACT_HEADER_BYTES,
  FACT_ID_BYTES,
  FactIdMismatchError,
  InvalidArgumentError,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  MalformedFactError,
  canonicalDeps,
  compareBytes,
  createFact,
  decodeFact,
  encodeFact,
  encodedFactLength,
  factId,
  isFactId,
  toHex,
  verifyFactId,
  type Fact,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import { expectError } from './helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// Independent reference: the documented canonical id preimage, hashed with blake3-jit's one-shot
// `hash` (the implementation uses the incremental Hasher).

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function refCanonical(deps: readonly Uint8Array[]): Uint8Array[] {
  const byHex = new Map<string, Uint8Array>();
  for (const d of deps) byHex.set(toHex(d), d);
  return [...byHex.keys()].sort().map((h) => byHex.get(h)!);
}

function refFactId(deps: readonly Uint8Array[], payload: Uint8Array): Uint8Array {
  const sorted = refCanonical(deps);
  const parts: number[] = [...new TextEncoder().encode('ctfs/fact/v1\0'), ...u32le(sorted.length)];
  for (const d of sorted) parts.push(...d);
  parts.push(...u32le(payload.length), ...payload);
  return hash(new Uint8Array(parts));
}


const expectMalformed = (fn: () => unknown): void => expectError(fn, MalformedFactError, 'MalformedFact');
const expectMismatch = (fn: () => unknown): void => expectError(fn, FactIdMismatchError, 'FactIdMismatch');

const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const depsArb = fc.array(idArb, { minLength: 0, maxLength: MAX_DEPS });
const payloadArb = fc.uint8Array({ minLength: 0, maxLength: 1000 });

function isSortedUnique(deps: readonly Uint8Array[]): boolean {
  for (let i = 1; i < deps.length; i++) if (compareBytes(deps[i - 1]!, deps[i]!) >= 0) return false;
  return true;
}

/** A hand-built encoding (documented layout) with the given header fields and body. */
function rawEncoding(opts: { version?: number; flags?: number; depCount: number; payloadLength: number; id?: Uint8Array; body: Uint8Array }): Uint8Array {
  const out = new Uint8Array(FACT_HEADER_BYTES + opts.body.length);
  out[0] = opts.version ?? 1;
  out[1] = opts.flags ?? 0;
  out[2] = opts.depCount & 0xff;
  out[3] = opts.depCount >>> 8;
  out.set(u32le(opts.payloadLength), 4);
  out.set(opts.id ?? new Uint8Array(32), 8);
  out.set(opts.body, FACT_HEADER_BYTES);
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('constants', () => {
  it('have the documented values', () => {
    expect(FACT_ID_BYTES).toBe(32);
    expect(MAX_DEPS).toBe(16);
    expect(MAX_PAYLOAD_BYTES).toBe(65_536);
    expect(FACT_ENCODING_VERSION).toBe(1);
    expect(FACT_HEADER_BYTES).toBe(40);
    expect(encodedFactLength(0, 0)).toBe(40);
    expect(encodedFactLength(3, 16)).toBe(40 + 96 + 16);
  });

  it('the reference hash is standard BLAKE3 (sanity)', () => {
    expect(toHex(hash(new Uint8Array(0)))).toBe('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  });
});

describe('factId', () => {
  it('is BLAKE3 of the documented canonical preimage', () => {
    const cases: [Uint8Array[], Uint8Array][] = [
      [[], new Uint8Array(0)],
      [[], new Uint8Array([1, 2, 3])],
      [[seq(1)], new Uint8Array(16)],
      [[fill(0xff), fill(0x01), seq(7)], new Uint8Array([0xab, 0xcd])],
    ];
    for (const [deps, payload] of cases) expect(toHex(factId(deps, payload))).toBe(toHex(refFactId(deps, payload)));
    // The empty fact's preimage is exactly "ctfs/fact/v1\0" ‖ 0u32 ‖ 0u32.
    const empty = new Uint8Array([...new TextEncoder().encode('ctfs/fact/v1'), 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(empty.length).toBe(21);
    expect(toHex(factId([], new Uint8Array(0)))).toBe(toHex(hash(empty)));
  });

  it('matches the reference on random deps and payloads', () => {
    fc.assert(
      fc.property(depsArb, payloadArb, (deps, payload) => {
        expect(toHex(factId(deps, payload))).toBe(toHex(refFactId(deps, payload)));
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic, 32 bytes, and a fresh array each call', () => {
    const a = factId([seq(1), seq(2)], new Uint8Array([5]));
    const b = factId([seq(1), seq(2)], new Uint8Array([5]));
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(32);
    expect(isFactId(a)).toBe(true);
    expect(toHex(a)).toBe(toHex(b));
    expect(a).not.toBe(b);
    expect(a.buffer).not.toBe(b.buffer);
    a.fill(0); // mutating one result must not affect the next
    expect(toHex(factId([seq(1), seq(2)], new Uint8Array([5])))).toBe(toHex(b));
  });

  it('does not depend on dep order; duplicate deps collapse', () => {
    fc.assert(
      fc.property(fc.array(idArb, { minLength: 0, maxLength: 8 }), payloadArb, fc.nat(), (deps, payload, rot) => {
        const id = toHex(factId(deps, payload));
        const reversed = [...deps].reverse();
        const rotated = deps.length === 0 ? [] : [...deps.slice(rot % deps.length), ...deps.slice(0, rot % deps.length)];
        expect(toHex(factId(reversed, payload))).toBe(id);
        expect(toHex(factId(rotated, payload))).toBe(id);
        // Doubling every dep (≤ 16 in total) gives the same id as the unique set.
        expect(toHex(factId([...deps, ...deps.map((d) => d.slice())], payload))).toBe(id);
        expect(toHex(factId(refCanonical(deps), payload))).toBe(id);
      }),
      { numRuns: 200 },
    );
    expect(toHex(factId([seq(1), seq(1)], new Uint8Array(0)))).toBe(toHex(factId([seq(1)], new Uint8Array(0))));
  });

  it('does not mutate or reorder the caller deps array', () => {
    const deps = [seq(3), seq(1), seq(2)];
    factId(deps, new Uint8Array(0));
    expect(deps.map((d) => d[0])).toEqual([3, 1, 2]);
  });

  it('changes when any dep bit, payload bit, dep count or payload length changes', () => {
    fc.assert(
      fc.property(
        fc.array(idArb, { minLength: 1, maxLength: 8 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.nat({ max: 255 }),
        fc.nat({ max: 7 }),
        (deps, payload, pick, byte, bit) => {
          const id = toHex(factId(deps, payload));
          // Flip one bit of one dep. The flipped dep may now equal another dep; skip that case.
          const i = pick % deps.length;
          const flipped = deps.map((d) => d.slice());
          flipped[i]![byte % 32]! ^= 1 << bit;
          if (refCanonical(flipped).length === refCanonical(deps).length) expect(toHex(factId(flipped, payload))).not.toBe(id);
          // Flip one payload bit.
          const p2 = payload.slice();
          p2[pick % p2.length]! ^= 1 << bit;
          expect(toHex(factId(deps, p2))).not.toBe(id);
          // Drop a dep, add a dep, extend or truncate the payload.
          expect(toHex(factId(deps.slice(1), payload))).not.toBe(id);
          const extra = fill(0xee);
          if (!deps.some((d) => toHex(d) === toHex(extra))) expect(toHex(factId([...deps, extra], payload))).not.toBe(id);
          expect(toHex(factId(deps, new Uint8Array([...payload, 0])))).not.toBe(id);
          expect(toHex(factId(deps, payload.subarray(0, payload.length - 1)))).not.toBe(id);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('separates deps from payload (length prefixes)', () => {
    // Same concatenated bytes, split differently between deps and payload.
    const d = seq(9);
    expect(toHex(factId([d], new Uint8Array(0)))).not.toBe(toHex(factId([], d)));
  });

  it('rejects bad arguments with InvalidArgument', () => {
    const bad: [unknown, unknown][] = [
      [[new Uint8Array(31)], new Uint8Array(0)],
      [[new Uint8Array(33)], new Uint8Array(0)],
      [['x'.repeat(32)], new Uint8Array(0)],
      [Array.from({ length: 17 }, (_, i) => seq(i)), new Uint8Array(0)],
      [[], new Uint8Array(MAX_PAYLOAD_BYTES + 1)],
      [[], [1, 2, 3]],
      ['deps', new Uint8Array(0)],
    ];
    for (const [deps, payload] of bad) {
      expectError(() => factId(deps as Uint8Array[], payload as Uint8Array), InvalidArgumentError, 'InvalidArgument');
    }
    // The limits themselves are accepted.
    expect(factId(Array.from({ length: 16 }, (_, i) => seq(i)), new Uint8Array(MAX_PAYLOAD_BYTES)).length).toBe(32);
  });
});

describe('the dep limit applies to distinct deps', () => {
  it('accepts 17 copies of one dep (one distinct dep) and equals the single-dep id', () => {
    const many = Array.from({ length: 17 }, () => seq(3));
    expect(toHex(factId(many, new Uint8Array(16)))).toBe(toHex(factId([seq(3)], new Uint8Array(16))));
    expect(createFact(many, new Uint8Array(16)).deps).toHaveLength(1);
  });

  it('rejects 17 distinct deps', () => {
    const distinct = Array.from({ length: 17 }, (_, i) => seq(i));
    expect(() => factId(distinct, new Uint8Array(0))).toThrow(InvalidArgumentError);
  });
});

describe('canonicalDeps', () => {
  it('sorts ascending bytewise and removes duplicates', () => {
    const out = canonicalDeps([fill(3), fill(1), fill(3), fill(2), fill(1)]);
    expect(out.map((d) => d[0])).toEqual([1, 2, 3]);
    // Bytewise from byte 0: seq(256) = [0,1,0..] sorts before seq(1) = [1,0,..].
    expect(canonicalDeps([seq(1), seq(256)]).map(toHex)).toEqual([toHex(seq(256)), toHex(seq(1))]);
  });
});

describe('createFact', () => {
  it('canonicalises deps and computes the content address', () => {
    const payload = new Uint8Array([1, 2, 3]);
    const f = createFact([fill(9), fill(2), fill(9), fill(5)], payload);
    expect(f.deps.map((d) => d[0])).toEqual([2, 5, 9]);
    expect(toHex(f.id)).toBe(toHex(refFactId([fill(2), fill(5), fill(9)], payload)));
    expect(Array.from(f.payload)).toEqual([1, 2, 3]);
    expect(verifyFactId(f)).toBe(true);
  });

  it('copies the payload and deps, and is frozen', () => {
    const payload = new Uint8Array([1, 2, 3]);
    const dep = seq(1);
    const f = createFact([dep], payload);
    payload[0] = 99;
    dep[0] = 99;
    expect(Array.from(f.payload)).toEqual([1, 2, 3]);
    expect(f.deps[0]![0]).toBe(1);
    expect(f.payload).not.toBe(payload);
    expect(f.deps[0]).not.toBe(dep);
    expect(Object.isFrozen(f)).toBe(true);
    expect(Object.isFrozen(f.deps)).toBe(true);
    expect(() => {
      (f as { id: Uint8Array }).id = new Uint8Array(32);
    }).toThrow(TypeError);
    expect(() => (f.deps as Uint8Array[]).push(seq(2))).toThrow(TypeError);
    expect(verifyFactId(f)).toBe(true);
  });

  it('rejects bad arguments with InvalidArgument', () => {
    expectError(() => createFact([new Uint8Array(8)], new Uint8Array(0)), InvalidArgumentError, 'InvalidArgument');
    expectError(() => createFact([], new Uint8Array(MAX_PAYLOAD_BYTES + 1)), InvalidArgumentError, 'InvalidArgument');
    expectError(() => createFact(Array.from({ length: 17 }, (_, i) => seq(i)), new Uint8Array(0)), InvalidArgumentError, 'InvalidArgument');
  });
});

describe('verifyFactId', () => {
  it('is false for a wrong id or non-canonical deps', () => {
    const f = createFact([seq(1), seq(2)], new Uint8Array([7]));
    expect(verifyFactId({ ...f, id: fill(0) })).toBe(false);
    expect(verifyFactId({ ...f, payload: new Uint8Array([8]) })).toBe(false);
    expect(verifyFactId({ ...f, deps: [seq(2), seq(1)] })).toBe(false);
  });
});

describe('encodeFact layout', () => {
  it('writes version, flags, u16 dep count, u32 payload length, id, deps, payload', () => {
    const payload = new Uint8Array(300).map((_, i) => i & 0xff);
    const f = createFact([fill(0xcc), fill(0xaa), fill(0xbb)], payload);
    const b = encodeFact(f);
    expect(b.length).toBe(40 + 3 * 32 + 300);
    expect(b.length).toBe(encodedFactLength(3, 300));
    expect(b[0]).toBe(1);
    expect(b[1]).toBe(0);
    expect(Array.from(b.subarray(2, 4))).toEqual([3, 0]);
    expect(Array.from(b.subarray(4, 8))).toEqual([300 & 0xff, 300 >>> 8, 0, 0]);
    expect(toHex(b.subarray(8, 40))).toBe(toHex(f.id));
    expect(toHex(b.subarray(40, 72))).toBe('aa'.repeat(32));
    expect(toHex(b.subarray(72, 104))).toBe('bb'.repeat(32));
    expect(toHex(b.subarray(104, 136))).toBe('cc'.repeat(32));
    expect(Array.from(b.subarray(136))).toEqual(Array.from(payload));
  });

  it('encodes the empty fact as its 40-byte header', () => {
    const f = createFact([], new Uint8Array(0));
    const b = encodeFact(f);
    expect(toHex(b)).toBe('0100' + '0000' + '00000000' + toHex(f.id));
  });

  it('writes a large payload length little-endian', () => {
    const b = encodeFact(createFact([], new Uint8Array(MAX_PAYLOAD_BYTES)));
    expect(Array.from(b.subarray(4, 8))).toEqual([0, 0, 1, 0]);
    expect(b.length).toBe(40 + 65_536);
  });

  it('rejects non-canonical deps and bad ids with InvalidArgument', () => {
    const f = createFact([seq(1), seq(2)], new Uint8Array(0));
    expectError(() => encodeFact({ ...f, deps: [seq(2), seq(1)] }), InvalidArgumentError, 'InvalidArgument');
    expectError(() => encodeFact({ ...f, deps: [seq(1), seq(1)] }), InvalidArgumentError, 'InvalidArgument');
    expectError(() => encodeFact({ ...f, id: new Uint8Array(31) }), InvalidArgumentError, 'InvalidArgument');
  });
});

describe('encodeFact / decodeFact round trip', () => {
  it('round trips random facts', () => {
    fc.assert(
      fc.property(depsArb, payloadArb, (deps, payload) => {
        const f = createFact(deps, payload);
        const bytes = encodeFact(f);
        expect(bytes.length).toBe(encodedFactLength(f.deps.length, payload.length));
        const g = decodeFact(bytes);
        expect(toHex(g.id)).toBe(toHex(f.id));
        expect(g.deps.map(toHex)).toEqual(f.deps.map(toHex));
        expect(toHex(g.payload)).toBe(toHex(payload));
        expect(toHex(encodeFact(g))).toBe(toHex(bytes));
        expect(Object.isFrozen(g)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('the decoded fact owns its bytes', () => {
    const bytes = encodeFact(createFact([seq(1)], new Uint8Array([1, 2, 3])));
    const g = decodeFact(bytes);
    bytes.fill(0xff);
    expect(g.id.buffer).not.toBe(bytes.buffer);
    expect(g.deps[0]![0]).toBe(1);
    expect(Array.from(g.payload)).toEqual([1, 2, 3]);
  });

  it('decodes from a view at a non-zero byteOffset', () => {
    const f = createFact([seq(5), seq(6)], new Uint8Array([9, 8, 7]));
    const enc = encodeFact(f);
    const backing = new Uint8Array(enc.length + 13).fill(0x5a);
    backing.set(enc, 7);
    const g = decodeFact(backing.subarray(7, 7 + enc.length));
    expect(toHex(g.id)).toBe(toHex(f.id));
    expect(Array.from(g.payload)).toEqual([9, 8, 7]);
  });

  it('decodes the upstream-style fact: one header, 16 × 0xAB payload', () => {
    const payload = new Uint8Array(16).fill(0xab);
    const g = decodeFact(encodeFact(createFact([], payload)));
    expect(g.deps.length).toBe(0);
    expect(Array.from(g.payload)).toEqual(Array.from(payload));
  });
});

describe('decodeFact rejects malformed input with MalformedFact', () => {
  const valid = encodeFact(createFact([seq(1), seq(2), seq(3)], new Uint8Array([10, 20, 30, 40, 50])));

  it('rejects empty and short buffers', () => {
    expectMalformed(() => decodeFact(new Uint8Array(0)));
    for (let n = 1; n < 40; n++) expectMalformed(() => decodeFact(valid.subarray(0, n)));
    expectMalformed(() => decodeFact(new Uint8Array(39)));
  });

  it('rejects every truncation of a valid encoding', () => {
    for (let n = 0; n < valid.length; n++) expectMalformed(() => decodeFact(valid.slice(0, n)));
    expect(decodeFact(valid).payload.length).toBe(5);
  });

  it('rejects trailing bytes', () => {
    for (const extra of [1, 2, 31, 32, 100]) {
      const b = new Uint8Array(valid.length + extra);
      b.set(valid);
      expectMalformed(() => decodeFact(b));
    }
  });

  it('rejects a wrong version byte and nonzero flags', () => {
    for (const v of [0, 2, 0xff]) {
      const b = valid.slice();
      b[0] = v;
      expectMalformed(() => decodeFact(b));
    }
    for (const fl of [1, 0x80, 0xff]) {
      const b = valid.slice();
      b[1] = fl;
      expectMalformed(() => decodeFact(b));
    }
  });

  it('rejects more than 16 deps even when the length matches', () => {
    const deps = Array.from({ length: 17 }, (_, i) => seq(i + 1).reverse()); // ascending by byte 31
    const body = new Uint8Array(17 * 32);
    deps.forEach((d, i) => body.set(d, 32 * i));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 17, payloadLength: 0, body })));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 0xffff, payloadLength: 0, body })));
    // 16 is fine (with the right id).
    const sixteen = deps.slice(0, 16);
    const ok = rawEncoding({ depCount: 16, payloadLength: 0, id: refFactId(sixteen, new Uint8Array(0)), body: body.subarray(0, 16 * 32) });
    expect(decodeFact(ok).deps.length).toBe(16);
  });

  it('rejects a payload length above 65536 even when the length matches', () => {
    const body = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 0, payloadLength: MAX_PAYLOAD_BYTES + 1, body })));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 0, payloadLength: 0xffff_ffff, body: new Uint8Array(0) })));
    const max = new Uint8Array(MAX_PAYLOAD_BYTES);
    const ok = rawEncoding({ depCount: 0, payloadLength: MAX_PAYLOAD_BYTES, id: refFactId([], max), body: max });
    expect(decodeFact(ok).payload.length).toBe(MAX_PAYLOAD_BYTES);
  });

  it('rejects unsorted or duplicate deps (even with verifyId false)', () => {
    const unsorted = new Uint8Array([...seq(2), ...seq(1)]);
    const id = refFactId([seq(1), seq(2)], new Uint8Array(0)); // the id the canonical form would have
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 2, payloadLength: 0, id, body: unsorted })));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 2, payloadLength: 0, id, body: unsorted }), { verifyId: false }));
    const dup = new Uint8Array([...seq(1), ...seq(1)]);
    const idDup = refFactId([seq(1)], new Uint8Array(0));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 2, payloadLength: 0, id: idDup, body: dup })));
    expectMalformed(() => decodeFact(rawEncoding({ depCount: 2, payloadLength: 0, id: idDup, body: dup }), { verifyId: false }));
  });

  it('rejects values that are not a Uint8Array', () => {
    for (const v of [undefined, null, 'bytes', [1, 0, 0, 0], new ArrayBuffer(40), new Uint16Array(20), new DataView(new ArrayBuffer(40))] as unknown[]) {
      expectMalformed(() => decodeFact(v as Uint8Array));
    }
  });
});

describe('decodeFact verifies the content address', () => {
  const f = createFact([seq(10), seq(20), seq(30)], new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  const valid = encodeFact(f);

  it('a flipped bit in the id or the payload → FactIdMismatch, or decodes as-is with verifyId false', () => {
    const regions: [number, number][] = [
      [8, 40],
      [40 + 3 * 32, valid.length],
    ];
    for (const [from, to] of regions) {
      for (let byte = from; byte < to; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const b = valid.slice();
          b[byte]! ^= 1 << bit;
          expectMismatch(() => decodeFact(b));
          const g = decodeFact(b, { verifyId: false });
          expect(toHex(encodeFact(g))).toBe(toHex(b));
        }
      }
    }
  });

  it('a flipped bit in the deps → FactIdMismatch if still canonical, else MalformedFact', () => {
    let mismatches = 0;
    for (let byte = 40; byte < 40 + 3 * 32; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = valid.slice();
        b[byte]! ^= 1 << bit;
        const deps = [0, 1, 2].map((i) => b.subarray(40 + 32 * i, 72 + 32 * i));
        if (isSortedUnique(deps)) {
          mismatches++;
          expectMismatch(() => decodeFact(b));
          const g = decodeFact(b, { verifyId: false });
          expect(g.deps.map(toHex)).toEqual(deps.map(toHex));
        } else {
          expectMalformed(() => decodeFact(b));
        }
      }
    }
    expect(mismatches).toBeGreaterThan(600); // nearly every flip keeps seq ids sorted
  });

  it('a single-dep fact reports FactIdMismatch for every dep bit', () => {
    const one = encodeFact(createFact([fill(0x42)], new Uint8Array([1])));
    for (let byte = 40; byte < 72; byte++) {
      const b = one.slice();
      b[byte]! ^= 0x10;
      expectMismatch(() => decodeFact(b));
    }
  });

  it('a valid id with verifyId false still decodes identically', () => {
    const g = decodeFact(valid, { verifyId: false });
    expect(toHex(g.id)).toBe(toHex(f.id));
    expect(verifyFactId(g)).toBe(true);
  });
});

describe('decodeFact fuzz', () => {
  function onlyDecodeErrors(bytes: Uint8Array): void {
    try {
      const g: Fact = decodeFact(bytes);
      // If it decoded, it must re-encode to the same bytes and verify.
      expect(toHex(encodeFact(g))).toBe(toHex(bytes));
      expect(verifyFactId(g)).toBe(true);
    } catch (e) {
      if (!(e instanceof MalformedFactError) && !(e instanceof FactIdMismatchError)) throw e;
    }
  }

  it('random garbage throws only MalformedFact or FactIdMismatch', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), onlyDecodeErrors), { numRuns: 1000 });
  });

  it('garbage behind a plausible header throws only MalformedFact or FactIdMismatch', () => {
    // Version 1, flags 0, small counts, and a body whose length is near the declared one, so the
    // parser gets past the header checks.
    const arb = fc
      .record({
        depCount: fc.integer({ min: 0, max: 20 }),
        payloadLength: fc.integer({ min: 0, max: 200 }),
        slack: fc.integer({ min: -3, max: 3 }),
        seed: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        sortedDeps: fc.boolean(),
      })
      .map(({ depCount, payloadLength, slack, seed, sortedDeps }) => {
        const len = Math.max(0, depCount * 32 + payloadLength + slack);
        const body = new Uint8Array(len).map((_, i) => seed[i % seed.length]! ^ (i * 31));
        if (sortedDeps) for (let i = 0; i < depCount && 32 * i < len; i++) body[32 * i] = i; // ascending first bytes
        return rawEncoding({ depCount, payloadLength, body });
      });
    fc.assert(fc.property(arb, onlyDecodeErrors), { numRuns: 1000 });
  });

  it('bit flips anywhere in a valid encoding throw only MalformedFact or FactIdMismatch', () => {
    fc.assert(
      fc.property(depsArb, fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.nat({ max: 7 }), (deps, payload, pos, bit) => {
        const b = encodeFact(createFact(deps, payload));
        b[pos % b.length]! ^= 1 << bit;
        let threw = false;
        try {
          decodeFact(b);
        } catch (e) {
          threw = true;
          expect(e instanceof MalformedFactError || e instanceof FactIdMismatchError).toBe(true);
        }
        expect(threw).toBe(true); // no single flip yields another valid fact
      }),
      { numRuns: 500 },
    );
  });
});
