/**
 * IdFilter (the cold tier's membership filter): never a false negative, whatever the ids (random,
 * structured, repeated); about 1 in 256 false positives at ~9 bits per id; every byte of an id
 * counts; the image attaches from any buffer and refuses damaged bytes with a typed error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ID_FILTER_HEADER_BYTES, IdFilter, IdFilterHash, MAX_FILTER_IDS, idFilterByteLength } from './helpers/lib.js';
import { expectBadMemory, expectInvalid } from './helpers/errors.js';
import { xorshift32 } from './helpers/kernels.js';

/** `n` pseudo-random ids end to end, from `seed`. */
function randomIds(n: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const words = new Uint32Array(8 * n);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer);
}

/** `n` ids equal in every byte but the two at `at` (a counter there). */
function idsDifferingAt(n: number, at: number, fill = 0x5a): Uint8Array {
  const ids = new Uint8Array(32 * n).fill(fill);
  for (let i = 0; i < n; i++) {
    ids[32 * i + at] = i & 0xff;
    if (at + 1 < 32) ids[32 * i + at + 1] = i >>> 8;
  }
  return ids;
}

function everyIdPasses(filter: IdFilter, ids: Uint8Array): boolean {
  for (let o = 0; o < ids.length; o += 32) if (!filter.mayContain(ids, o)) return false;
  return true;
}

/** Ids as a generator mixes them: random, repeated, sharing long prefixes, differing in one late byte. */
const idSet = fc
  .tuple(
    fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 300 }),
    fc.integer({ min: 0, max: 400 }),
    fc.integer({ min: 0, max: 31 }),
    fc.integer({ min: 0, max: 50 }),
  )
  .map(([random, structured, at, repeats]) => {
    const family = idsDifferingAt(structured, at);
    const parts = [...random, ...Array.from({ length: structured }, (_, i) => family.subarray(32 * i, 32 * i + 32))];
    for (let i = 0; i < repeats && parts.length > 0; i++) parts.push(parts[(i * 7919) % parts.length]!);
    const ids = new Uint8Array(32 * parts.length);
    parts.forEach((id, i) => ids.set(id, 32 * i));
    return ids;
  });

describe('IdFilter: membership', () => {
  it('an empty filter refuses everything', () => {
    const filter = IdFilter.build(new Uint8Array(0));
    expect(filter.count).toBe(0);
    expect(filter.bitsPerId).toBe(0);
    expect(filter.byteLength).toBe(idFilterByteLength(0));
    const probes = randomIds(1000, 3);
    for (let o = 0; o < probes.length; o += 32) expect(filter.mayContain(probes, o)).toBe(false);
  });

  it('one id, and ids read at any offset of a larger array', () => {
    const id = randomIds(1, 9);
    expect(IdFilter.build(id).mayContain(id, 0)).toBe(true);
    const ids = randomIds(500, 11);
    const filter = IdFilter.build(ids);
    const shifted = new Uint8Array(ids.length + 7);
    shifted.set(ids, 5);
    for (let i = 0; i < 500; i++) expect(filter.mayContain(shifted, 5 + 32 * i)).toBe(true);
  });

  it('never a false negative, for every count from 0 to 300 and for structured ids', () => {
    for (let n = 0; n <= 300; n++) {
      const ids = randomIds(n, n + 1);
      expect(everyIdPasses(IdFilter.build(ids, { seed: n }), ids)).toBe(true);
    }
    for (const at of [0, 7, 8, 16, 30, 31]) expect(everyIdPasses(IdFilter.build(idsDifferingAt(4000, at)), idsDifferingAt(4000, at))).toBe(true);
  });

  it('never a false negative (fast-check: random, repeated and structured ids, any seed)', () => {
    fc.assert(
      fc.property(idSet, fc.nat({ max: 0xffff_ffff }), (ids, seed) => {
        const filter = IdFilter.build(ids, { seed });
        expect(everyIdPasses(filter, ids)).toBe(true);
        const distinct = new Set<string>();
        for (let o = 0; o < ids.length; o += 32) distinct.add(Buffer.from(ids.subarray(o, o + 32)).toString('hex'));
        expect(filter.count).toBe(distinct.size);
      }),
      { numRuns: 200 },
    );
  });

  it('repeated ids are counted once: the same 1,000 ids three and a half times over', () => {
    const base = randomIds(1000, 21);
    const ids = new Uint8Array(32 * 3500);
    for (let i = 0; i < 3500; i++) ids.set(base.subarray(32 * (i % 1000), 32 * (i % 1000) + 32), 32 * i);
    const filter = IdFilter.build(ids);
    expect(filter.count).toBe(1000);
    expect(everyIdPasses(filter, base)).toBe(true);
    const same = IdFilter.build(new Uint8Array(32 * 5).fill(1));
    expect(same.count).toBe(1);
    expect(same.mayContain(new Uint8Array(32).fill(1), 0)).toBe(true);
  });

  it('every one of the 32 bytes feeds the hash: ids differing in one byte only stay distinct', () => {
    for (let at = 0; at < 32; at++) {
      const ids = new Uint8Array(32 * 256).fill(0xc3);
      for (let v = 0; v < 256; v++) ids[32 * v + at] = v;
      expect(IdFilter.build(ids).count).toBe(256);
    }
  });
});

describe('IdFilterHash: one hash for many filters', () => {
  it('missHashed is 0 exactly when mayContain is true, for filters of the hash seed (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.nat({ max: 0xffff_ffff }), fc.nat({ max: 0xffff_ffff }), (n, seed, salt) => {
        const ids = randomIds(n, salt);
        const filter = IdFilter.build(ids, { seed });
        const hash = new IdFilterHash(filter.seed);
        const probes = new Uint8Array(32 * (Math.min(n, 100) + 300));
        probes.set(ids.subarray(0, 32 * Math.min(n, 100)));
        probes.set(randomIds(300, salt ^ 1), 32 * Math.min(n, 100));
        const wrong: number[] = [];
        for (let o = 0; o < probes.length; o += 32) {
          hash.loadWords(new Uint32Array(probes.slice(o, o + 32).buffer));
          const miss = filter.missHashed(hash.a, hash.b, hash.c);
          if (filter.count > 0 && (miss === 0) !== filter.mayContain(probes, o)) wrong.push(o / 32);
          if (miss < 0 || miss > 255) wrong.push(-1);
        }
        expect(wrong).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses a seed that is not a u32', () => {
    for (const seed of [-1, 2 ** 32, 1.5, NaN]) expectInvalid(() => new IdFilterHash(seed));
  });
});

describe('IdFilter: size and false positives (statistical, generous bounds)', () => {
  it('~9 bits per id and ~0.39% false positives over 100,000 ids', () => {
    const n = 100_000;
    const filter = IdFilter.build(randomIds(n, 5));
    // Size factor max(1.125, 0.875 + 0.25 · ln 10^6 / ln n) = 1.175 at 10^5: 9.4 bits.
    expect(filter.bitsPerId).toBeGreaterThan(9);
    expect(filter.bitsPerId).toBeLessThan(9.8);
    const probes = randomIds(400_000, 77);
    let hits = 0;
    for (let o = 0; o < probes.length; o += 32) hits += filter.mayContain(probes, o) ? 1 : 0;
    // Expected 1/256 = 0.39%: 1,563 of 400,000, standard deviation ~39. The bounds are ±9σ.
    expect(hits).toBeGreaterThan(1_200);
    expect(hits).toBeLessThan(1_920);
  });

  it('different seeds give different fingerprints for the same ids; one seed gives the same bytes', () => {
    const ids = randomIds(5000, 8);
    const a = IdFilter.build(ids, { seed: 1 });
    const b = IdFilter.build(ids, { seed: 1 });
    const c = IdFilter.build(ids, { seed: 2 });
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(Buffer.from(a.bytes).equals(Buffer.from(c.bytes))).toBe(false);
    expect(a.seed).toBe(1);
  });

  it('a capacity larger than the ids sizes the filter for the capacity', () => {
    const ids = randomIds(1000, 4);
    const filter = IdFilter.build(ids, { capacity: 5000 });
    expect(filter.byteLength).toBe(idFilterByteLength(5000));
    expect(filter.count).toBe(1000);
    expect(everyIdPasses(filter, ids)).toBe(true);
  });
});

describe('IdFilter: images', () => {
  const ids = randomIds(3000, 31);
  const built = IdFilter.build(ids, { seed: 99 });

  it('builds into a SharedArrayBuffer by default, and into a given view', () => {
    expect(built.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    const sab = new SharedArrayBuffer(built.byteLength + 100);
    const into = new Uint8Array(sab, 3, built.byteLength + 50);
    into.fill(0xee);
    const filter = IdFilter.build(ids, { seed: 99, into });
    expect(filter.bytes.byteOffset).toBe(3);
    expect(Buffer.from(filter.bytes).equals(Buffer.from(built.bytes))).toBe(true);
  });

  it('attaches to the same bytes from a Uint8Array, an ArrayBuffer or a SharedArrayBuffer, with the same answers', () => {
    const copy = new ArrayBuffer(built.byteLength + 64);
    new Uint8Array(copy).set(built.bytes);
    const odd = new Uint8Array(built.byteLength + 9);
    odd.set(built.bytes, 9);
    const attached = [
      IdFilter.attach(built.bytes),
      IdFilter.attach(built.bytes.buffer as SharedArrayBuffer),
      IdFilter.attach(copy),
      IdFilter.attach(odd.subarray(9)),
    ];
    const probes = randomIds(2000, 32);
    for (const filter of attached) {
      expect(filter.byteLength).toBe(built.byteLength);
      expect(filter.seed).toBe(99);
      expect(everyIdPasses(filter, ids)).toBe(true);
      for (let o = 0; o < probes.length; o += 32) expect(filter.mayContain(probes, o)).toBe(built.mayContain(probes, o));
    }
    // Shared, not copied: the attached filter reads the builder's bytes.
    expect(attached[0]!.bytes.buffer).toBe(built.bytes.buffer);
  });

  it('refuses a wrong magic, version, width, segment geometry, reserved bytes or a short buffer', () => {
    const damaged = (at: number, value: number): Uint8Array => {
      const bytes = built.bytes.slice();
      new DataView(bytes.buffer).setUint32(at, value, true);
      return bytes;
    };
    const view = new DataView(built.bytes.buffer, built.bytes.byteOffset);
    const length = view.getUint32(16, true);
    const segments = view.getUint32(20, true);
    expectBadMemory(() => IdFilter.attach(new Uint8Array(10)));
    expectBadMemory(() => IdFilter.attach(damaged(0, 0x12345678)));
    expectBadMemory(() => IdFilter.attach(damaged(4, 2)));
    expectBadMemory(() => IdFilter.attach(damaged(28, 16)));
    expectBadMemory(() => IdFilter.attach(damaged(16, length + 1)));
    expectBadMemory(() => IdFilter.attach(damaged(16, 1 << 19)));
    expectBadMemory(() => IdFilter.attach(damaged(16, length * 2)));
    expectBadMemory(() => IdFilter.attach(damaged(20, segments + 1)));
    expectBadMemory(() => IdFilter.attach(damaged(20, 0)));
    expectBadMemory(() => IdFilter.attach(damaged(24, (segments + 2) * length + 1)));
    expectBadMemory(() => IdFilter.attach(damaged(12, MAX_FILTER_IDS + 1)));
    expectBadMemory(() => IdFilter.attach(damaged(40, 1)));
    expectBadMemory(() => IdFilter.attach(built.bytes.subarray(0, built.byteLength - 1)));
    expectBadMemory(() => IdFilter.attach(built.bytes.subarray(0, ID_FILTER_HEADER_BYTES)));
  });

  it('any damage to the header or any truncation: a typed error or a filter whose lookups never throw (fast-check)', () => {
    const probes = randomIds(64, 5);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: ID_FILTER_HEADER_BYTES - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat({ max: built.byteLength }), (flips, keep) => {
        const bytes = built.bytes.slice();
        for (const [at, v] of flips) bytes[at] = v;
        for (const image of [bytes, built.bytes.slice(0, keep)]) {
          let filter: IdFilter | undefined;
          try {
            filter = IdFilter.attach(image);
          } catch (error) {
            expectBadMemory(() => {
              throw error;
            });
            continue;
          }
          for (let o = 0; o < probes.length; o += 32) expect(typeof filter.mayContain(probes, o)).toBe('boolean');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what is not an image, ids or an option with InvalidArgument', () => {
    expectInvalid(() => IdFilter.attach([1, 2, 3] as unknown as Uint8Array));
    expectInvalid(() => IdFilter.build([] as unknown as Uint8Array));
    expectInvalid(() => IdFilter.build(new Uint8Array(33)));
    expectInvalid(() => IdFilter.build(ids, { seed: -1 }));
    expectInvalid(() => IdFilter.build(ids, { seed: 2 ** 32 }));
    expectInvalid(() => IdFilter.build(ids, { into: new Uint8Array(10) }));
    expectInvalid(() => IdFilter.build(ids, { capacity: 10 }));
    expectInvalid(() => idFilterByteLength(-1));
    expectInvalid(() => idFilterByteLength(MAX_FILTER_IDS + 1));
    for (const offset of [-1, 0.5, ids.length - 31, Number.NaN]) expectInvalid(() => built.mayContain(ids, offset));
    expectInvalid(() => built.mayContain([...ids] as unknown as Uint8Array, 0));
  });
});
