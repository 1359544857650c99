/**
 * SortedRun (the cold tier's immutable id set): `contains` agrees exactly with a Set<string> model
 * for any ids — random, repeated, sharing long prefixes across fence blocks — built from unsorted
 * ids or merged from many runs; the image attaches from any buffer; damaged or truncated images
 * are refused with typed errors, and a checksummed image that verifies has not been changed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdFilter, RUN_FENCE_IDS, RUN_HEADER_BYTES, SortedRun, sortedRunByteLength, verifySortedRun } from './helpers/lib.js';
import { expectBadMemory, expectInvalid } from './helpers/errors.js';
import { xorshift32 } from './helpers/kernels.js';

const hex = (bytes: Uint8Array, at = 0): string => Buffer.from(bytes.subarray(at, at + 32)).toString('hex');
const fromHex = (key: string): Uint8Array => Uint8Array.from(Buffer.from(key, 'hex'));

function randomIds(n: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const words = new Uint32Array(8 * n);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `n` ids sharing their first `shared` bytes (then a counter, then random bytes). */
function prefixFamily(n: number, shared: number, seed: number): Uint8Array {
  const ids = randomIds(n, seed);
  for (let i = 0; i < n; i++) {
    ids.fill(0x42, 32 * i, 32 * i + shared);
    if (shared + 2 <= 32) {
      ids[32 * i + shared] = (i >>> 8) & 0xff;
      ids[32 * i + shared + 1] = i & 0xff;
    }
  }
  return ids;
}

function modelOf(ids: Uint8Array): Set<string> {
  const set = new Set<string>();
  for (let o = 0; o < ids.length; o += 32) set.add(hex(ids, o));
  return set;
}

/**
 * The run holds exactly `model`: count, order, every member found at its rank, `probes` answered
 * as the model does, and it verifies. Mismatches are collected, not asserted one by one (a
 * property checks thousands of ids per case).
 */
function expectRunIs(run: SortedRun, model: Set<string>, probes: Uint8Array): void {
  const sorted = [...model].sort(); // equal-length lowercase hex: string order is memcmp order
  const wrong: string[] = [];
  if (run.count !== sorted.length) wrong.push(`count ${run.count}, model ${sorted.length}`);
  sorted.forEach((key, i) => {
    if (hex(run.keys, 32 * i) !== key) wrong.push(`rank ${i} holds ${hex(run.keys, 32 * i)}, model ${key}`);
    const id = fromHex(key);
    if (!run.contains(id, 0)) wrong.push(`member ${key} not found`);
    if (run.indexOf(id, 0) !== i) wrong.push(`member ${key} at ${run.indexOf(id, 0)}, model ${i}`);
  });
  for (let o = 0; o < probes.length; o += 32) {
    const member = model.has(hex(probes, o));
    if (run.contains(probes, o) !== member || run.indexOf(probes, o) >= 0 !== member) wrong.push(`probe ${hex(probes, o)}: model says ${member}`);
  }
  expect(wrong.slice(0, 5)).toEqual([]);
  run.verify();
}

/**
 * Id sets as the properties draw them: random ids, a family sharing a long prefix (0..31 bytes,
 * 8 and more put many ids on one fence prefix across block boundaries), repeats.
 */
const idSets = fc
  .tuple(fc.nat({ max: 600 }), fc.nat({ max: 400 }), fc.integer({ min: 0, max: 30 }), fc.nat({ max: 60 }), fc.nat({ max: 0xffff_ffff }))
  .map(([random, family, shared, repeats, seed]) => {
    const base = concat([randomIds(random, seed), prefixFamily(family, shared, seed ^ 0x5bd1e995)]);
    const n = base.length / 32;
    const again = new Uint8Array(32 * (n === 0 ? 0 : repeats));
    for (let i = 0; i < again.length / 32; i++) again.set(base.subarray(32 * ((i * 7919) % n), 32 * ((i * 7919) % n) + 32), 32 * i);
    // Unsorted input: the family interleaved with the random ids and the repeats.
    const all = concat([base, again]);
    const order = Array.from({ length: all.length / 32 }, (_, i) => i).sort((a, b) => ((a * 2654435761) >>> 0) - ((b * 2654435761) >>> 0));
    return concat(order.map((i) => all.subarray(32 * i, 32 * i + 32)));
  });

/** Probes: members with one byte changed (near misses, same prefix) and random ids. */
function probesFor(ids: Uint8Array, seed: number): Uint8Array {
  const n = Math.min(ids.length / 32, 200);
  const near = ids.slice(0, 32 * n);
  for (let i = 0; i < n; i++) {
    const at = 32 * i + ((i * 13) % 32);
    near[at] = near[at]! ^ (1 << i % 8);
  }
  return concat([ids.subarray(0, 32 * n), near, randomIds(100, seed)]);
}

describe('SortedRun: exact membership', () => {
  it('an empty run, a run of one id, and runs at the fence block boundaries', () => {
    const empty = SortedRun.build(new Uint8Array(0));
    expectRunIs(empty, new Set(), randomIds(50, 1));
    expect(empty.byteLength).toBe(sortedRunByteLength(0));
    for (const n of [1, 2, RUN_FENCE_IDS - 1, RUN_FENCE_IDS, RUN_FENCE_IDS + 1, 2 * RUN_FENCE_IDS, 5 * RUN_FENCE_IDS + 3]) {
      const ids = randomIds(n, n);
      expectRunIs(SortedRun.build(ids), modelOf(ids), probesFor(ids, n));
    }
  });

  it('ids sharing their first 8, 16 and 31 bytes across many fence blocks', () => {
    for (const shared of [4, 8, 9, 16, 30, 31]) {
      const ids = concat([prefixFamily(1000, shared, shared), randomIds(700, shared + 100)]);
      expectRunIs(SortedRun.build(ids), modelOf(ids), probesFor(ids, shared));
    }
    // All ids equal but the last byte: 256 of them, in two blocks that share one 8-byte prefix.
    const last = new Uint8Array(32 * 256).fill(7);
    for (let v = 0; v < 256; v++) last[32 * v + 31] = 255 - v;
    expectRunIs(SortedRun.build(last), modelOf(last), probesFor(last, 3));
  });

  it('repeated ids are kept once', () => {
    const base = randomIds(300, 5);
    const run = SortedRun.build(concat([base, base, base.subarray(0, 320)]));
    expectRunIs(run, modelOf(base), probesFor(base, 5));
    const same = SortedRun.build(new Uint8Array(32 * 1000).fill(9));
    expectRunIs(same, new Set([hex(new Uint8Array(32).fill(9))]), randomIds(10, 2));
  });

  it('agrees with a Set<string> model for any ids, built from unsorted input (fast-check)', () => {
    fc.assert(
      fc.property(idSets, fc.nat({ max: 0xffff_ffff }), (ids, seed) => {
        expectRunIs(SortedRun.build(ids, { seed, checksum: (seed & 1) === 0 }), modelOf(ids), probesFor(ids, seed));
      }),
      { numRuns: 120 },
    );
  });

  it('a merge of any runs agrees with the union of their models, repeats across runs kept once (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(idSets, { maxLength: 10 }), fc.nat({ max: 0xffff_ffff }), (sets, seed) => {
        // Some runs share ids with others: the second half repeats slices of the first.
        const parts = sets.map((ids, i) => (i % 3 === 2 && i > 0 ? concat([ids, sets[i - 1]!.subarray(0, 32 * 40)]) : ids));
        const runs = parts.map((ids) => SortedRun.build(ids));
        const merged = SortedRun.merge(runs, { seed });
        const model = modelOf(concat(parts));
        expectRunIs(merged, model, probesFor(concat(parts), seed));
        // Merging the merge with one of its inputs changes nothing.
        if (runs.length > 0) expectRunIs(SortedRun.merge([merged, runs[0]!]), model, randomIds(50, seed));
      }),
      { numRuns: 60 },
    );
  });

  it('merges many small runs and merges of merges (the shape of background merging)', () => {
    const runs = Array.from({ length: 40 }, (_, i) => SortedRun.build(randomIds(i * 37, 1000 + i)));
    const all = concat(runs.map((r) => r.keys));
    const model = modelOf(all);
    const once = SortedRun.merge(runs);
    expectRunIs(once, model, probesFor(all, 1));
    const twice = SortedRun.merge([SortedRun.merge(runs.slice(0, 13)), SortedRun.merge(runs.slice(13, 29)), SortedRun.merge(runs.slice(29))]);
    expect(Buffer.from(twice.keys).equals(Buffer.from(once.keys))).toBe(true);
    expectRunIs(SortedRun.merge([]), new Set(), randomIds(5, 1));
    expectRunIs(SortedRun.merge([SortedRun.build(new Uint8Array(0)), runs[3]!]), modelOf(runs[3]!.keys), randomIds(5, 2));
  });

  it('idAt copies the id at a rank; indexOf finds it without the filter', () => {
    const ids = randomIds(1000, 44);
    const run = SortedRun.build(ids);
    const first = run.idAt(0);
    first[0] = first[0]! ^ 0xff;
    expect(hex(run.idAt(0))).toBe(hex(run.keys));
    for (let i = 0; i < 1000; i += 97) expect(run.indexOf(run.idAt(i), 0)).toBe(i);
    expectInvalid(() => run.idAt(1000));
    expectInvalid(() => run.idAt(-1));
    expectInvalid(() => run.idAt(1.5));
  });
});

describe('SortedRun: the image', () => {
  const ids = concat([randomIds(2000, 71), prefixFamily(300, 12, 72)]);
  const run = SortedRun.build(ids, { seed: 5 });

  it('is laid out as documented: regions at 64-byte offsets, ids on a 4 KiB page, image length in the header', () => {
    const view = new DataView(run.bytes.buffer, run.bytes.byteOffset, run.byteLength);
    const count = view.getUint32(8, true);
    expect(count).toBe(run.count);
    expect(view.getUint32(12, true)).toBe(RUN_FENCE_IDS);
    expect(view.getUint32(16, true)).toBe(Math.ceil(count / RUN_FENCE_IDS));
    expect(view.getUint32(20, true)).toBe(RUN_HEADER_BYTES);
    const filterOffset = view.getUint32(24, true);
    const keysOffset = view.getUint32(32, true);
    expect(filterOffset % 64).toBe(0);
    expect(keysOffset % 4096).toBe(0);
    expect(view.getUint32(40, true) + 2 ** 32 * view.getUint32(44, true)).toBe(keysOffset + 32 * count);
    expect(run.byteLength).toBe(keysOffset + 32 * count);
    expect(run.residentBytes).toBe(keysOffset);
    // Fence j is id j·128's first 8 bytes, big-endian numbers stored little-endian.
    for (let j = 0; j < Math.ceil(count / RUN_FENCE_IDS); j++) {
      const id = run.idAt(j * RUN_FENCE_IDS);
      expect(view.getUint32(RUN_HEADER_BYTES + 8 * j, true)).toBe(new DataView(id.buffer).getUint32(0, false));
      expect(view.getUint32(RUN_HEADER_BYTES + 8 * j + 4, true)).toBe(new DataView(id.buffer).getUint32(4, false));
    }
    // The filter region is a filter image of its own.
    const filter = IdFilter.attach(run.bytes.subarray(filterOffset));
    for (let o = 0; o < run.keys.length; o += 32) expect(filter.mayContain(run.keys, o)).toBe(true);
    expect(run.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(run.checksummed).toBe(true);
  });

  it('the same ids and seed give the same bytes, whatever their order; into a given view too', () => {
    const shuffled = concat(Array.from({ length: ids.length / 32 }, (_, i) => ids.subarray(32 * (ids.length / 32 - 1 - i), 32 * (ids.length / 32 - i))));
    const again = SortedRun.build(shuffled, { seed: 5 });
    expect(Buffer.from(again.bytes).equals(Buffer.from(run.bytes))).toBe(true);
    const sab = new SharedArrayBuffer(sortedRunByteLength(ids.length / 32) + 192);
    const into = new Uint8Array(sab, 128);
    into.fill(0xcc); // a reused buffer: padding must still come out zero
    const placed = SortedRun.build(ids, { seed: 5, into });
    expect(placed.bytes.byteOffset).toBe(128);
    expect(Buffer.from(placed.bytes).equals(Buffer.from(run.bytes))).toBe(true);
    // From ids at an odd offset of their buffer.
    const odd = new Uint8Array(ids.length + 3);
    odd.set(ids, 3);
    expect(Buffer.from(SortedRun.build(odd.subarray(3), { seed: 5 }).bytes).equals(Buffer.from(run.bytes))).toBe(true);
  });

  it('attaches from a SharedArrayBuffer, an ArrayBuffer, a Buffer or a view at an odd offset, with the same answers', () => {
    const copy = new ArrayBuffer(run.byteLength);
    new Uint8Array(copy).set(run.bytes);
    const odd = Buffer.alloc(run.byteLength + 5);
    odd.set(run.bytes, 5);
    const probes = probesFor(ids, 9);
    const model = modelOf(ids);
    for (const image of [run.bytes.buffer as SharedArrayBuffer, copy, Buffer.from(run.bytes), odd.subarray(5)]) {
      const attached = SortedRun.attach(image);
      expect(attached.byteLength).toBe(run.byteLength);
      expectRunIs(attached, model, probes);
    }
    // A merge reads attached runs at odd offsets too.
    expectRunIs(SortedRun.merge([SortedRun.attach(odd.subarray(5)), SortedRun.build(randomIds(100, 3))]), modelOf(concat([ids, randomIds(100, 3)])), probes);
  });

  it('a run without a checksum verifies its order, fences and filter; one with a checksum any change at all', () => {
    const bare = SortedRun.build(ids, { checksum: false, seed: 5 });
    expect(bare.checksummed).toBe(false);
    verifySortedRun(bare.bytes);
    // Two ids swapped: out of order.
    const swapped = bare.bytes.slice();
    const keysAt = swapped.length - 32 * bare.count;
    swapped.copyWithin(keysAt, keysAt + 32, keysAt + 64);
    swapped.set(bare.keys.subarray(0, 32), keysAt + 32);
    expectBadMemory(() => verifySortedRun(swapped));
    // A fence that lies.
    const fence = bare.bytes.slice();
    fence[RUN_HEADER_BYTES + 8] = fence[RUN_HEADER_BYTES + 8]! ^ 1;
    expectBadMemory(() => verifySortedRun(fence));
    // Every single-byte change of a checksummed image is caught by attach or by verify.
    const next = xorshift32(77);
    for (let t = 0; t < 300; t++) {
      const damaged = run.bytes.slice();
      const at = t < 128 ? t : next() % damaged.length;
      damaged[at] = damaged[at]! ^ (1 + (next() % 255));
      expectBadMemory(() => verifySortedRun(damaged));
    }
  });

  it('truncated images and damaged headers: SharedMemoryError or a run whose lookups never throw (fast-check)', () => {
    const probes = probesFor(ids, 4);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: RUN_HEADER_BYTES + 64 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat({ max: run.byteLength }), (flips, keep) => {
        const bytes = run.bytes.slice();
        for (const [at, v] of flips) bytes[at] = v;
        const truncated = run.bytes.slice(0, keep);
        for (const image of keep === run.byteLength ? [bytes] : [bytes, truncated]) {
          let attached: SortedRun | undefined;
          try {
            attached = SortedRun.attach(image);
          } catch (error) {
            expectBadMemory(() => {
              throw error;
            });
            continue;
          }
          for (let o = 0; o < probes.length; o += 32) expect(typeof attached.contains(probes, o)).toBe('boolean');
          try {
            attached.verify();
          } catch (error) {
            expectBadMemory(() => {
              throw error;
            });
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses each inconsistent header field', () => {
    const damaged = (at: number, value: number): Uint8Array => {
      const bytes = run.bytes.slice();
      new DataView(bytes.buffer).setUint32(at, value, true);
      return bytes;
    };
    const field = (at: number): number => new DataView(run.bytes.buffer, run.bytes.byteOffset).getUint32(at, true);
    expectBadMemory(() => SortedRun.attach(new Uint8Array(RUN_HEADER_BYTES - 1)));
    expectBadMemory(() => SortedRun.attach(damaged(0, 0)));
    expectBadMemory(() => SortedRun.attach(damaged(4, 9)));
    expectBadMemory(() => SortedRun.attach(damaged(8, field(8) + 1000)));
    expectBadMemory(() => SortedRun.attach(damaged(12, 64)));
    expectBadMemory(() => SortedRun.attach(damaged(16, field(16) + 1)));
    expectBadMemory(() => SortedRun.attach(damaged(20, 64)));
    expectBadMemory(() => SortedRun.attach(damaged(24, field(24) + 8)));
    expectBadMemory(() => SortedRun.attach(damaged(24, 64)));
    expectBadMemory(() => SortedRun.attach(damaged(28, field(28) + 64)));
    expectBadMemory(() => SortedRun.attach(damaged(32, field(32) + 64)));
    expectBadMemory(() => SortedRun.attach(damaged(32, field(24))));
    expectBadMemory(() => SortedRun.attach(damaged(36, 2)));
    expectBadMemory(() => SortedRun.attach(damaged(40, field(40) + 32)));
    expectBadMemory(() => SortedRun.attach(damaged(44, 1)));
    expectBadMemory(() => SortedRun.attach(damaged(52, 1)));
    expectBadMemory(() => SortedRun.attach(damaged(100, 1)));
    expectBadMemory(() => SortedRun.attach(damaged(field(24), 0))); // the filter's magic
    expectBadMemory(() => SortedRun.attach(run.bytes.subarray(0, run.byteLength - 1)));
  });

  it('refuses bad arguments with InvalidArgument', () => {
    expectInvalid(() => SortedRun.build(new Uint8Array(31)));
    expectInvalid(() => SortedRun.build('ids' as unknown as Uint8Array));
    expectInvalid(() => SortedRun.build(ids, { into: new Uint8Array(100) }));
    expectInvalid(() => SortedRun.build(ids, { into: new Uint8Array(new ArrayBuffer(sortedRunByteLength(ids.length / 32) + 8), 8) }));
    expectInvalid(() => SortedRun.build(ids, { seed: -2 }));
    expectInvalid(() => SortedRun.merge([run, {} as SortedRun]));
    expectInvalid(() => SortedRun.merge('runs' as unknown as SortedRun[]));
    expectInvalid(() => SortedRun.attach(42 as unknown as Uint8Array));
    expectInvalid(() => sortedRunByteLength(-1));
    expectInvalid(() => sortedRunByteLength(2 ** 27));
    for (const offset of [-1, 1.5, ids.length - 31, Number.NaN]) {
      expectInvalid(() => run.contains(ids, offset));
      expectInvalid(() => run.indexOf(ids, offset));
    }
  });
});
