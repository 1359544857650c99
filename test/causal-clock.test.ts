import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLOOM_MULTIPLIERS,
  BLOOM_OFFSET,
  CLOCK_BITS,
  CLOCK_BYTES,
  CausalClock,
  DEFAULT_PRECISE_CAPACITY,
  ESCALATION_POPCOUNT,
  ESCALATION_THRESHOLD,
  PreciseClock,
  bloomPositions,
  toHex,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import { expectInvalid } from './helpers/errors.js';
import { xorshift32 } from './helpers/random.mjs';


/** Bit b of a clock encoding, by the documented rule: byte b >> 3, mask 1 << (b & 7). */
function bitAt(bytes: Uint8Array, b: number): boolean {
  return (bytes[b >> 3]! & (1 << (b & 7))) !== 0;
}

/** The set bits of a clock encoding. */
function setBits(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let b = 0; b < 512; b++) if (bitAt(bytes, b)) out.push(b);
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so counts below are reproducible. */
function prng(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() & 0xff;
}

const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('CausalClock (upstream core/topology.rs tests)', () => {
  it('test_causal_clock_size: 512 bits, 64 bytes', () => {
    expect(CLOCK_BITS).toBe(512);
    expect(CLOCK_BYTES).toBe(64);
    expect(new CausalClock().toBytes().length).toBe(64);
    expect(new CausalClock().words.length).toBe(16);
  });

  it('test_observe_and_contain', () => {
    const c = new CausalClock();
    expect(c.mightContain(fill(0xab))).toBe(false);
    c.observe(fill(0xab));
    expect(c.mightContain(fill(0xab))).toBe(true);
  });

  it('test_dominates: {f1,f2} dominates {f1}, not vice versa', () => {
    const f1 = fill(1);
    const f2 = fill(2);
    const both = new CausalClock();
    both.observe(f1);
    both.observe(f2);
    const one = new CausalClock();
    one.observe(f1);
    expect(both.dominates(one)).toBe(true);
    expect(one.dominates(both)).toBe(false);
    expect(one.dominates(one)).toBe(true);
  });

  it('test_saturation: empty is 0, after 100 ids strictly between 0 and 1', () => {
    const c = new CausalClock();
    expect(c.saturation()).toBe(0);
    for (let i = 0; i < 100; i++) {
      const id = new Uint8Array(32);
      id[0] = i;
      c.observe(id);
    }
    expect(c.saturation()).toBeGreaterThan(0);
    expect(c.saturation()).toBeLessThan(1);
    expect(c.saturation()).toBe(c.popcount() / 512);
  });

  it('test_merge: the merge of {f1} and {f2} contains both', () => {
    const a = new CausalClock();
    a.observe(fill(1));
    const b = new CausalClock();
    b.observe(fill(2));
    const bBefore = toHex(b.toBytes());
    a.merge(b);
    expect(a.mightContain(fill(1))).toBe(true);
    expect(a.mightContain(fill(2))).toBe(true);
    expect(a.dominates(b)).toBe(true);
    expect(toHex(b.toBytes())).toBe(bBefore); // the argument is not modified
  });

  it('an empty clock is dominated by every clock', () => {
    fc.assert(
      fc.property(fc.array(idArb, { maxLength: 30 }), (ids) => {
        const c = new CausalClock();
        for (const id of ids) c.observe(id);
        expect(c.dominates(new CausalClock())).toBe(true);
        expect(new CausalClock().dominates(c)).toBe(ids.length === 0);
      }),
      { numRuns: 100 },
    );
  });
});

describe('CausalClock semantics', () => {
  it('sets exactly the three bloomPositions of each observed id', () => {
    fc.assert(
      fc.property(fc.array(idArb, { minLength: 1, maxLength: 40 }), (ids) => {
        const c = new CausalClock();
        const expected = new Set<number>();
        for (const id of ids) {
          c.observe(id);
          for (const p of bloomPositions(id)) expected.add(p);
        }
        expect(setBits(c.toBytes())).toEqual([...expected].sort((x, y) => x - y));
        expect(c.popcount()).toBe(expected.size);
        expect(c.saturation()).toBe(expected.size / 512);
        for (const id of ids) expect(c.mightContain(id)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('mightContain is exactly "all three positions set"', () => {
    fc.assert(
      fc.property(fc.array(idArb, { maxLength: 60 }), idArb, (ids, probe) => {
        const c = new CausalClock();
        for (const id of ids) c.observe(id);
        const bytes = c.toBytes();
        expect(c.mightContain(probe)).toBe(bloomPositions(probe).every((p) => bitAt(bytes, p)));
      }),
      { numRuns: 300 },
    );
  });

  it('merge is bitwise OR; dominates is the superset test', () => {
    fc.assert(
      fc.property(fc.array(idArb, { maxLength: 20 }), fc.array(idArb, { maxLength: 20 }), (xs, ys) => {
        const a = new CausalClock();
        const b = new CausalClock();
        for (const id of xs) a.observe(id);
        for (const id of ys) b.observe(id);
        const ab = a.toBytes();
        const bb = b.toBytes();
        const isSuperset = setBits(bb).every((bit) => bitAt(ab, bit));
        expect(a.dominates(b)).toBe(isSuperset);
        const m = a.clone();
        m.merge(b);
        const mb = m.toBytes();
        for (let i = 0; i < 64; i++) expect(mb[i]).toBe(ab[i]! | bb[i]!);
        expect(m.dominates(a)).toBe(true);
        expect(m.dominates(b)).toBe(true);
        // Merge is commutative.
        const n = b.clone();
        n.merge(a);
        expect(n.equals(m)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('observing twice changes nothing; clear empties; clone is independent', () => {
    const c = new CausalClock();
    c.observe(seq(1));
    const once = toHex(c.toBytes());
    c.observe(seq(1));
    expect(toHex(c.toBytes())).toBe(once);
    const d = c.clone();
    d.observe(seq(2));
    expect(toHex(c.toBytes())).toBe(once);
    expect(d.mightContain(seq(2))).toBe(true);
    expect(d.dominates(c)).toBe(true);
    c.clear();
    expect(c.popcount()).toBe(0);
    expect(c.equals(new CausalClock())).toBe(true);
  });

  it('rejects ids that are not 32-byte Uint8Arrays', () => {
    const c = new CausalClock();
    for (const v of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32), undefined, new Array(32).fill(0)] as unknown[]) {
      expectInvalid(() => c.observe(v as Uint8Array));
      expectInvalid(() => c.mightContain(v as Uint8Array));
    }
    expect(c.popcount()).toBe(0);
  });
});

describe('CausalClock bytes', () => {
  it('toBytes follows "bit b in byte b>>3, mask 1<<(b&7)"', () => {
    for (const id of [fill(0), fill(1), fill(2), fill(0xab), fill(0xff), seq(1), seq(12345)]) {
      const c = new CausalClock();
      c.observe(id);
      const bytes = c.toBytes();
      const [b0, b1, b2] = bloomPositions(id);
      for (const b of [b0, b1, b2]) {
        expect(bytes[b >> 3]! & (1 << (b & 7))).not.toBe(0);
      }
      expect(setBits(bytes)).toEqual([...new Set([b0, b1, b2])].sort((x, y) => x - y));
    }
  });

  it('fromBytes(toBytes()) round trips; toBytes(fromBytes()) round trips arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(idArb, { maxLength: 50 }), (ids) => {
        const c = new CausalClock();
        for (const id of ids) c.observe(id);
        const d = CausalClock.fromBytes(c.toBytes());
        expect(d.equals(c)).toBe(true);
        for (const id of ids) expect(d.mightContain(id)).toBe(true);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
        const c = CausalClock.fromBytes(bytes);
        expect(toHex(c.toBytes())).toBe(toHex(bytes));
        expect(c.popcount()).toBe(setBits(bytes).length);
      }),
      { numRuns: 200 },
    );
  });

  it('a single bit set in bytes is the single bit seen by mightContain', () => {
    // Build an id's bits by hand from bloomPositions and check the clock agrees it may contain it.
    const id = seq(777);
    const bytes = new Uint8Array(64);
    for (const b of bloomPositions(id)) bytes[b >> 3]! |= 1 << (b & 7);
    const c = CausalClock.fromBytes(bytes);
    expect(c.mightContain(id)).toBe(true);
    const other = new CausalClock();
    other.observe(id);
    expect(c.equals(other)).toBe(true);
  });

  it('fromBytes rejects anything but 64 bytes', () => {
    for (const n of [0, 63, 65]) expectInvalid(() => CausalClock.fromBytes(new Uint8Array(n)));
    expectInvalid(() => CausalClock.fromBytes(new Array(64).fill(0) as unknown as Uint8Array));
  });

  it('can live in a SharedArrayBuffer at a 4-byte-aligned offset', () => {
    const sab = new SharedArrayBuffer(192);
    const c = new CausalClock(sab, 64);
    c.observe(fill(1));
    const raw = new Uint8Array(sab, 64, 64);
    expect(toHex(raw)).toBe(toHex(c.toBytes()));
    expect(new Uint8Array(sab, 0, 64).every((x) => x === 0)).toBe(true);
    expect(new Uint8Array(sab, 128, 64).every((x) => x === 0)).toBe(true);
    // A second view sees the first one's bits.
    expect(new CausalClock(sab, 64).mightContain(fill(1))).toBe(true);
    expectInvalid(() => new CausalClock(sab, 2));
    expectInvalid(() => new CausalClock(sab, 132));
    expectInvalid(() => new CausalClock(sab, -4));
  });
});

describe('bloomPositions uses all 32 id bytes', () => {
  it('returns three positions in [0, 512), deterministically', () => {
    fc.assert(
      fc.property(idArb, (id) => {
        const p = bloomPositions(id);
        expect(p.length).toBe(3);
        for (const x of p) {
          expect(Number.isInteger(x)).toBe(true);
          expect(x).toBeGreaterThanOrEqual(0);
          expect(x).toBeLessThan(512);
        }
        expect(bloomPositions(id.slice())).toEqual(p);
      }),
      { numRuns: 200 },
    );
  });

  it('ids differing only in bytes 24..31 get different triples (upstream ignored those bytes)', () => {
    const rnd = prng(24);
    const triples = new Set<string>();
    const n = 300;
    for (let i = 0; i < n; i++) {
      const id = new Uint8Array(32).fill(0x11);
      for (let j = 24; j < 32; j++) id[j] = rnd();
      triples.add(bloomPositions(id).join(','));
    }
    // With 2^27 possible triples, nearly all 300 are distinct; upstream produced exactly 1.
    expect(triples.size).toBeGreaterThanOrEqual(n - 5);
  });

  it('ids differing in a single byte ≥ 24 differ from the base id', () => {
    const base = fill(0x33);
    const baseTriple = bloomPositions(base).join(',');
    let differing = 0;
    let total = 0;
    for (let j = 24; j < 32; j++) {
      for (let v = 0; v < 256; v++) {
        if (v === 0x33) continue;
        const id = base.slice();
        id[j] = v;
        total++;
        if (bloomPositions(id).join(',') !== baseTriple) differing++;
      }
    }
    expect(differing).toBeGreaterThanOrEqual(total - 5);
  });

  it('ids differing only in bytes 8..31 get different triples (upstream: bytes 8..24 only)', () => {
    const rnd = prng(8);
    const triples = new Set<string>();
    const n = 300;
    for (let i = 0; i < n; i++) {
      const id = new Uint8Array(32);
      id.set([1, 2, 3, 4, 5, 6, 7, 8]);
      for (let j = 8; j < 32; j++) id[j] = rnd();
      triples.add(bloomPositions(id).join(','));
    }
    expect(triples.size).toBeGreaterThanOrEqual(n - 5);
  });

  it('[v;32] ids do not collapse to one position (upstream: b0 = b1 = b2 for every v)', () => {
    let collapsed = 0;
    const triples = new Set<string>();
    for (let v = 0; v < 256; v++) {
      const [a, b, c] = bloomPositions(fill(v));
      if (a === b && b === c) collapsed++;
      triples.add([a, b, c].join(','));
    }
    expect(collapsed).toBeLessThanOrEqual(3);
    expect(triples.size).toBeGreaterThanOrEqual(250);
    // Note: [0;32] itself hashes to (0, 0, 0) (a linear sum of zero words and fmix32(0) = 0), a
    // single fixed point rather than upstream's whole family of collapsed ids; allowed by "most v".
  });

  it('seq ids set about three bits each (upstream: one bit plus bit 0)', () => {
    const c = new CausalClock();
    for (let i = 0; i < 20; i++) c.observe(seq(i));
    expect(c.popcount()).toBeGreaterThan(45); // ≈ 60 minus collisions; upstream gave ≤ 21
  });
});

describe('saturation and escalation', () => {
  it('ESCALATION_POPCOUNT is 205 = ceil(0.4 × 512)', () => {
    expect(ESCALATION_THRESHOLD).toBe(0.4);
    expect(ESCALATION_POPCOUNT).toBe(205);
    expect(204 / 512).toBeLessThan(0.4);
    expect(205 / 512).toBeGreaterThanOrEqual(0.4);
  });

  it('popcount grows monotonically and saturation = popcount / 512', () => {
    const c = new CausalClock();
    let last = 0;
    let crossedAt = -1;
    for (let i = 0; i < 2000; i++) {
      c.observe(seq(i));
      const p = c.popcount();
      expect(p).toBeGreaterThanOrEqual(last);
      expect(p - last).toBeLessThanOrEqual(3);
      last = p;
      if (crossedAt < 0 && p >= ESCALATION_POPCOUNT) crossedAt = i + 1;
    }
    expect(c.saturation()).toBe(c.popcount() / 512);
    // With three independent bits per id the threshold is reached after ~87 ids (upstream seq ids: 269).
    expect(crossedAt).toBeGreaterThan(50);
    expect(crossedAt).toBeLessThan(150);
    expect(c.popcount()).toBeGreaterThan(500);
    const full = CausalClock.fromBytes(new Uint8Array(64).fill(0xff));
    expect(full.popcount()).toBe(512);
    expect(full.saturation()).toBe(1);
    expect(full.mightContain(seq(123456))).toBe(true);
  });
});

describe('PreciseClock', () => {
  it('upstream: observe grows len and contains each', () => {
    const c = new PreciseClock();
    expect(c.capacity).toBe(DEFAULT_PRECISE_CAPACITY);
    expect(DEFAULT_PRECISE_CAPACITY).toBe(16);
    c.observe(fill(1));
    expect(c.size).toBe(1);
    c.observe(fill(2));
    expect(c.size).toBe(2);
    expect(c.contains(fill(1))).toBe(true);
    expect(c.contains(fill(2))).toBe(true);
    expect(c.contains(fill(3))).toBe(false);
  });

  it('upstream: containsAll over subsets; an unknown id fails', () => {
    const c = new PreciseClock();
    const ids = [fill(1), fill(2), fill(3), fill(4)];
    for (const id of ids) c.observe(id);
    expect(c.containsAll([])).toBe(true);
    expect(c.containsAll([fill(1), fill(3)])).toBe(true);
    expect(c.containsAll(ids)).toBe(true);
    expect(c.containsAll([fill(1), fill(99)])).toBe(false);
  });

  it('upstream: 16 fill it; the 17th evicts the first; stays full', () => {
    const c = new PreciseClock();
    for (let i = 0; i < 16; i++) c.observe(seq(i));
    expect(c.isFull).toBe(true);
    expect(c.size).toBe(16);
    c.observe(seq(16));
    expect(c.isFull).toBe(true);
    expect(c.size).toBe(16);
    expect(c.contains(seq(0))).toBe(false);
    for (let i = 1; i <= 16; i++) expect(c.contains(seq(i))).toBe(true);
  });

  it('is FIFO: after n > capacity observations it holds exactly the last `capacity`, oldest first', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 80 }), (cap, n) => {
        const c = new PreciseClock(cap);
        for (let i = 0; i < n; i++) c.observe(seq(i));
        const kept = Math.min(n, cap);
        expect(c.size).toBe(kept);
        expect(c.isFull).toBe(n >= cap);
        const expected = Array.from({ length: kept }, (_, k) => toHex(seq(n - kept + k)));
        expect(c.ids().map(toHex)).toEqual(expected);
        for (let i = 0; i < n; i++) expect(c.contains(seq(i))).toBe(i >= n - kept);
      }),
      { numRuns: 200 },
    );
  });

  it('matches an exact FIFO-set model (no false positives, no duplicates, lookups do not refresh)', () => {
    const cmd = fc.oneof(
      fc.record({ op: fc.constant('observe' as const), v: fc.integer({ min: 0, max: 12 }) }),
      fc.record({ op: fc.constant('contains' as const), v: fc.integer({ min: 0, max: 12 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(cmd, { maxLength: 60 }), (cap, cmds) => {
        const c = new PreciseClock(cap);
        const model: number[] = []; // oldest first
        for (const { op, v } of cmds) {
          // Ids differ only in the last byte: an upstream-style prefix hash could not tell them apart.
          const id = new Uint8Array(32).fill(0x5c);
          id[31] = v;
          if (op === 'observe') {
            c.observe(id);
            if (!model.includes(v)) {
              model.push(v);
              if (model.length > cap) model.shift();
            }
          } else {
            expect(c.contains(id)).toBe(model.includes(v));
          }
          expect(c.size).toBe(model.length);
        }
        expect(c.ids().map((id) => id[31])).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });

  it('observing an id already present does not duplicate it or refresh it', () => {
    const c = new PreciseClock(3);
    c.observe(fill(1));
    c.observe(fill(1));
    expect(c.size).toBe(1);
    c.observe(fill(2));
    c.observe(fill(3));
    c.observe(fill(1)); // already present: no-op (FIFO, not LRU)
    expect(c.ids().map((id) => id[0])).toEqual([1, 2, 3]);
    c.observe(fill(4)); // evicts the oldest, fill(1)
    expect(c.ids().map((id) => id[0])).toEqual([2, 3, 4]);
    expect(c.contains(fill(1))).toBe(false);
  });

  it('ids() returns copies; the clock keeps its own copy of observed ids', () => {
    const c = new PreciseClock(2);
    const id = seq(5);
    c.observe(id);
    id[0] = 99;
    expect(c.contains(seq(5))).toBe(true);
    const out = c.ids();
    out[0]![0] = 77;
    expect(c.contains(seq(5))).toBe(true);
  });

  it('clear() forgets everything', () => {
    const c = new PreciseClock(4);
    for (let i = 0; i < 6; i++) c.observe(seq(i));
    c.clear();
    expect(c.size).toBe(0);
    expect(c.isFull).toBe(false);
    expect(c.ids()).toEqual([]);
    for (let i = 0; i < 6; i++) expect(c.contains(seq(i))).toBe(false);
    c.observe(seq(9));
    expect(c.ids().map(toHex)).toEqual([toHex(seq(9))]);
  });

  it('validates capacity and ids', () => {
    for (const cap of [0, -1, 1.5, 4097, Number.NaN]) expectInvalid(() => new PreciseClock(cap));
    expect(new PreciseClock(4096).capacity).toBe(4096);
    expect(new PreciseClock(1).capacity).toBe(1);
    const c = new PreciseClock();
    expectInvalid(() => c.contains(new Uint8Array(31)));
    expectInvalid(() => c.observe(new Uint8Array(33)));
    expect(c.size).toBe(0);
  });
});

describe('the all-zero id', () => {
  // Without an offset before the finaliser, Σ wᵢ·Mᵢ = 0 for the all-zero id, which then hashed
  // to positions (0, 0, 0) — the same kind of collapse as upstream's mix64(0) = 0.
  it('does not collapse to bit 0', () => {
    const positions = bloomPositions(fill(0));
    expect(positions).not.toEqual([0, 0, 0]);
    expect(new Set(positions).size).toBeGreaterThan(1);
  });
});

describe('the Bloom hash is exactly the one docs/FORMATS.md §4 specifies', () => {
  // An independent implementation from the documented constants, in BigInt arithmetic.
  function specPositions(id: Uint8Array): number[] {
    let s = BigInt(BLOOM_OFFSET);
    for (let i = 0; i < 8; i++) {
      const w = BigInt(id[4 * i]! | (id[4 * i + 1]! << 8) | (id[4 * i + 2]! << 16)) + (BigInt(id[4 * i + 3]!) << 24n);
      s = (s + w * BigInt(BLOOM_MULTIPLIERS[i]!)) & 0xffffffffn;
    }
    const mul = (a: bigint, b: bigint): bigint => (a * b) & 0xffffffffn;
    let h = s;
    h ^= h >> 16n;
    h = mul(h, 0x85ebca6bn);
    h ^= h >> 13n;
    h = mul(h, 0xc2b2ae35n);
    h ^= h >> 16n;
    const n = Number(h);
    return [n & 511, (n >>> 9) & 511, (n >>> 18) & 511];
  }

  it('matches an independent BigInt implementation on structured and random ids', () => {
    for (const id of [fill(0), fill(1), fill(0xff), seq(1), seq(12345)]) expect(bloomPositions(id)).toEqual(specPositions(id));
    fc.assert(
      fc.property(idArb, (id) => {
        expect(bloomPositions(id)).toEqual(specPositions(id));
      }),
      { numRuns: 500 },
    );
  });
});
