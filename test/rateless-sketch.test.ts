/**
 * The rateless sketch decodes exactly the symmetric difference of two sets of ids from a prefix
 * of cells that grows with the difference, not with the sets; it never claims a wrong answer
 * (a prefix that is too short decodes to null), and cell 0 summarises the whole set.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SKETCH_CELLS, RatelessSketch, SKETCH_CELL_WORDS, sketchHash } from './helpers/lib.js';
import { xorshift32 as prng } from './helpers/kernels.js';

const KEY = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const hex = (id: Uint8Array): string => Buffer.from(id).toString('hex');

function randomIds(next: () => number, n: number): Uint8Array[] {
  return Array.from({ length: n }, () => {
    const id = new Uint8Array(32);
    for (let i = 0; i < 32; i += 4) new DataView(id.buffer).setUint32(i, next() >>> 0, true);
    return id;
  });
}

function sketchOf(ids: readonly Uint8Array[], cells: number): RatelessSketch {
  const s = new RatelessSketch(cells, KEY);
  for (const id of ids) s.add(id);
  return s;
}

/** The fewest cells of `remote` that `local` needs to decode, and what it decoded. */
function decodeGrowing(local: RatelessSketch, remote: RatelessSketch): { cells: number; theirs: string[]; ours: string[] } | null {
  for (let n = 1; n <= local.cells; n = n < 16 ? n + 1 : Math.ceil(n * 1.05)) {
    const diff = local.difference(remote.prefix(n));
    if (diff !== null) return { cells: n, theirs: diff.theirs.map(hex).sort(), ours: diff.ours.map(hex).sort() };
  }
  return null;
}

describe('RatelessSketch', () => {
  it('equal sets: the first cell already says so, and cell 0 counts the set', () => {
    const ids = randomIds(prng(1), 5000);
    const [a, b] = [sketchOf(ids, 64), sketchOf([...ids].reverse(), 64)];
    expect(a.size).toBe(5000);
    expect(a.prefix(64)).toEqual(b.prefix(64));
    expect(a.difference(b.prefix(1))).toEqual({ theirs: [], ours: [] });
  });

  it('decodes exactly the symmetric difference, whatever the shared part (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }), (seed, shared, onlyA, onlyB) => {
        const next = prng(seed);
        const common = randomIds(next, shared);
        const a = randomIds(next, onlyA);
        const b = randomIds(next, onlyB);
        const local = sketchOf([...common, ...a], 1024);
        const remote = sketchOf([...b, ...common], 1024);
        const got = decodeGrowing(local, remote);
        expect(got).not.toBeNull();
        expect(got!.theirs).toEqual(b.map(hex).sort());
        expect(got!.ours).toEqual(a.map(hex).sort());
      }),
      { numRuns: 60 },
    );
  });

  it('a removed id is as if never added; a prefix too short decodes to null, never to a wrong answer', () => {
    const next = prng(7);
    const ids = randomIds(next, 400);
    const extra = randomIds(next, 200);
    const local = sketchOf(ids, 2048);
    const remote = sketchOf([...ids, ...extra], 2048);
    for (const id of extra.slice(100)) remote.remove(id);
    expect(remote.size).toBe(500);
    for (let n = 1; n < 60; n++) expect(local.difference(remote.prefix(n))).toBeNull();
    const got = decodeGrowing(local, remote)!;
    expect(got.theirs).toEqual(extra.slice(0, 100).map(hex).sort());
    expect(got.ours).toEqual([]);
  });

  it('costs about 1.3–2 cells per difference at 10 to 1,000 differences, independent of the set size', () => {
    const ratios: number[] = [];
    for (const [d, shared] of [[10, 100], [10, 20_000], [100, 1000], [1000, 2000]] as const) {
      let cells = 0;
      const trials = d === 1000 ? 2 : 8;
      for (let t = 0; t < trials; t++) {
        const next = prng(1000 * d + t + shared);
        const common = randomIds(next, shared);
        const diff = randomIds(next, d);
        const got = decodeGrowing(sketchOf(common, 4096), sketchOf([...common, ...diff], 4096))!;
        expect(got.theirs).toHaveLength(d);
        cells += got.cells;
      }
      ratios.push(cells / trials / d);
    }
    // The paper's asymptote is ~1.35 cells per difference; small differences cost relatively more.
    for (const r of ratios) expect(r).toBeLessThan(2.5);
    expect(ratios[3]!).toBeLessThan(1.7);
  });

  it('two ids whose hashes share a word still map to different cells and decode', () => {
    // Such pairs appear about once in 90k ids; with cells drawn from one hash word alone they got
    // the same cells and no prefix could separate them (a difference of 90k ids never decoded).
    const key = new Uint8Array(8).fill(1);
    const keyWords = new Uint32Array(key.buffer);
    const out = new Uint32Array(2);
    const byWord = new Map<number, Uint8Array>();
    let pair: [Uint8Array, Uint8Array] | undefined;
    for (let i = 0; pair === undefined && i < 1_000_000; i++) {
      const id = new Uint8Array(32);
      new DataView(id.buffer).setUint32(0, i, true);
      sketchHash(keyWords, new Uint32Array(id.buffer), 0, out);
      const other = byWord.get(out[0]!);
      if (other !== undefined) pair = [other, id];
      byWord.set(out[0]!, id);
    }
    expect(pair).toBeDefined();
    const a = new RatelessSketch(256, key);
    for (const id of pair!) a.add(id);
    const diff = new RatelessSketch(256, key).difference(a.prefix(256));
    expect(diff?.theirs.map((x) => Buffer.from(x).toString('hex')).sort()).toEqual(pair!.map((x) => Buffer.from(x).toString('hex')).sort());
  });

  it('refuses bad arguments with typed errors', () => {
    const s = new RatelessSketch(16, KEY);
    for (const bad of [0, -1, 1.5, MAX_SKETCH_CELLS + 1, Number.NaN]) expect(() => new RatelessSketch(bad, KEY)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    expect(() => new RatelessSketch(16, new Uint8Array(7))).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    expect(() => s.add(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    expect(() => s.difference(new Int32Array(SKETCH_CELL_WORDS + 1))).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    expect(() => s.difference(new Int32Array(17 * SKETCH_CELL_WORDS))).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    // Hostile cells (random words) decode to null or to some ids — never throw or hang.
    const next = prng(3);
    for (let t = 0; t < 50; t++) {
      const cells = new Int32Array(16 * SKETCH_CELL_WORDS).map(() => next() | 0);
      expect(() => s.difference(cells)).not.toThrow();
    }
  });
});
