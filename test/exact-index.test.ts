import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CausalHorizonExceededError,
  DEFAULT_INDEX_CAPACITY,
  ExactCausalIndex,
  InvalidArgumentError,
  MAX_INDEX_CAPACITY,
  SharedMemoryError,
  toHex,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import { expectError } from './helpers/errors.js';


/** 200 ids sharing bytes 0..8 (upstream's index hashed only those), differing in bytes 8..9. */
function sharedPrefixIds(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const id = new Uint8Array(32);
    id.set([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]);
    id[8] = i & 0xff;
    id[9] = i >>> 8;
    return id;
  });
}

// A small default index is enough for most tests; the default-capacity one is built once.
let defaultIndex: ExactCausalIndex | undefined;
function freshDefault(): ExactCausalIndex {
  defaultIndex ??= new ExactCausalIndex();
  defaultIndex.clear();
  return defaultIndex;
}

describe('insert / contains / key numbers', () => {
  it('insert returns true for new ids and false for duplicates', () => {
    const idx = new ExactCausalIndex({ capacity: 64 });
    expect(idx.size).toBe(0);
    expect(idx.insert(seq(1))).toBe(true);
    expect(idx.insert(seq(2))).toBe(true);
    expect(idx.insert(seq(1))).toBe(false);
    expect(idx.insert(seq(1).slice())).toBe(false); // by content, not identity
    expect(idx.size).toBe(2);
    expect(idx.contains(seq(1))).toBe(true);
    expect(idx.contains(seq(2))).toBe(true);
    expect(idx.contains(seq(3))).toBe(false);
    expect(idx.containsAll([seq(1), seq(2)])).toBe(true);
    expect(idx.containsAll([seq(1), seq(3)])).toBe(false);
    expect(idx.containsAll([])).toBe(true);
  });

  it('numbers keys in insertion order; idAt and ids() return them', () => {
    const idx = new ExactCausalIndex({ capacity: 64 });
    const ids = [fill(9), seq(3), fill(0), seq(1), fill(0xff)];
    for (const id of ids) idx.insert(id);
    idx.insert(seq(3)); // duplicate: no new key number
    ids.forEach((id, k) => {
      expect(idx.keyNumberOf(id)).toBe(k);
      expect(toHex(idx.idAt(k))).toBe(toHex(id));
    });
    expect(idx.keyNumberOf(seq(4))).toBe(-1);
    expect([...idx.ids()].map(toHex)).toEqual(ids.map(toHex));
    // idAt returns a copy.
    const copy = idx.idAt(0);
    copy[0] = 1;
    expect(toHex(idx.idAt(0))).toBe(toHex(fill(9)));
  });

  it('keeps its own copy of inserted ids', () => {
    const idx = new ExactCausalIndex({ capacity: 16 });
    const id = seq(7);
    idx.insert(id);
    id[0] = 8;
    expect(idx.contains(seq(7))).toBe(true);
    expect(idx.contains(id)).toBe(false);
  });

  it('idAt rejects key numbers outside [0, size)', () => {
    const idx = new ExactCausalIndex({ capacity: 16 });
    idx.insert(seq(1));
    for (const k of [-1, 1, 16, 0.5, Number.NaN]) expectError(() => idx.idAt(k), InvalidArgumentError, 'InvalidArgument');
  });

  it('rejects ids that are not 32-byte Uint8Arrays', () => {
    const idx = new ExactCausalIndex({ capacity: 16 });
    for (const v of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32), undefined, new Array(32).fill(0)] as unknown[]) {
      expectError(() => idx.insert(v as Uint8Array), InvalidArgumentError, 'InvalidArgument');
      expectError(() => idx.contains(v as Uint8Array), InvalidArgumentError, 'InvalidArgument');
      expectError(() => idx.keyNumberOf(v as Uint8Array), InvalidArgumentError, 'InvalidArgument');
    }
    expect(idx.size).toBe(0);
  });
});

describe('size, fill, memory', () => {
  it('sizes the table to capacity / 0.7, not to the next power of two', () => {
    const idx = new ExactCausalIndex({ capacity: 1 << 20, seed: 1 });
    expect(idx.tableSlots).toBe(Math.ceil(Math.ceil((1 << 20) / 0.7) / 64) * 64);
    expect(idx.bytesPerId).toBeLessThan(40);
    // A full index at load 0.7 still finds every id and rejects one more.
    const small = new ExactCausalIndex({ capacity: 700, seed: 2 });
    expect(small.tableSlots).toBe(1024);
    for (let i = 0; i < 700; i++) expect(small.insert(seq(i))).toBe(true);
    for (let i = 0; i < 700; i++) expect(small.contains(seq(i))).toBe(true);
    expect(small.contains(seq(700))).toBe(false);
    expect(() => small.insert(seq(700))).toThrow(CausalHorizonExceededError);
  });

  it('reports size, fill and capacity', () => {
    const idx = new ExactCausalIndex({ capacity: 100 });
    expect(idx.capacity).toBe(100);
    for (let i = 0; i < 25; i++) idx.insert(seq(i));
    expect(idx.size).toBe(25);
    expect(idx.fill).toBe(0.25);
    expect(idx.tableSlots % 64).toBe(0); // whole cache lines of tags
    expect(idx.tableSlots * 0.7).toBeGreaterThanOrEqual(100); // load never exceeds 0.7
    expect(idx.byteLength).toBe(idx.buffer.byteLength);
    expect(idx.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('uses at most 48 bytes per id at the default capacity of 2^20', () => {
    expect(DEFAULT_INDEX_CAPACITY).toBe(2 ** 20);
    expect(MAX_INDEX_CAPACITY).toBe(2 ** 27);
    const idx = freshDefault();
    expect(idx.capacity).toBe(2 ** 20);
    expect(idx.bytesPerId).toBeLessThanOrEqual(48);
    expect(idx.bytesPerId).toBe(idx.byteLength / idx.capacity);
  });
});

describe('capacity (the causal horizon) is explicit and loud', () => {
  it('throws CausalHorizonExceeded beyond capacity and changes nothing', () => {
    for (const cap of [1, 5, 16, 17, 100]) {
      const idx = new ExactCausalIndex({ capacity: cap });
      for (let i = 0; i < cap; i++) expect(idx.insert(seq(i))).toBe(true);
      expect(idx.size).toBe(cap);
      expect(idx.fill).toBe(1);
      const before = [...idx.ids()].map(toHex);
      expectError(() => idx.insert(seq(cap)), CausalHorizonExceededError, 'CausalHorizonExceeded');
      expectError(() => idx.insert(fill(0xee)), CausalHorizonExceededError, 'CausalHorizonExceeded');
      expect(idx.size).toBe(cap);
      expect(idx.contains(seq(cap))).toBe(false);
      expect(idx.contains(fill(0xee))).toBe(false);
      expect([...idx.ids()].map(toHex)).toEqual(before);
      // Re-inserting a present id is still a quiet no-op when full.
      expect(idx.insert(seq(0))).toBe(false);
      expect(idx.insert(seq(cap - 1))).toBe(false);
      for (let i = 0; i < cap; i++) expect(idx.contains(seq(i))).toBe(true);
    }
  });

  it('duplicates never count towards capacity', () => {
    const idx = new ExactCausalIndex({ capacity: 3 });
    for (let r = 0; r < 10; r++) {
      idx.insert(seq(1));
      idx.insert(seq(2));
    }
    expect(idx.size).toBe(2);
    expect(idx.insert(seq(3))).toBe(true);
    expect(idx.size).toBe(3);
  });
});

describe('upstream §3.3 conformance scenarios, now exact', () => {
  it('after seq(0..799) all 800 are present (upstream kept 544, evicting seq(0..255))', () => {
    const idx = freshDefault();
    for (let i = 0; i < 800; i++) expect(idx.insert(seq(i))).toBe(true);
    expect(idx.size).toBe(800);
    for (let i = 0; i < 800; i++) expect(idx.contains(seq(i))).toBe(true);
    expect(idx.contains(seq(800))).toBe(false);
    // A new insert still works.
    expect(idx.insert(seq(800))).toBe(true);
    expect(idx.size).toBe(801);
  });

  it('after seq(0..4999) all 5000 are present (upstream kept 648, oldest seq(4352))', () => {
    const idx = freshDefault();
    for (let i = 0; i < 5000; i++) idx.insert(seq(i));
    expect(idx.size).toBe(5000);
    let present = 0;
    for (let i = 0; i < 5000; i++) if (idx.contains(seq(i))) present++;
    expect(present).toBe(5000);
    expect(idx.keyNumberOf(seq(0))).toBe(0);
    expect(idx.keyNumberOf(seq(4999))).toBe(4999);
    for (let i = 5000; i < 5100; i++) expect(idx.contains(seq(i))).toBe(false);
  });

  it('200 ids sharing bytes 0..8 are all stored (upstream silently dropped 71)', () => {
    const idx = freshDefault();
    const ids = sharedPrefixIds(200);
    let inserted = 0;
    for (const id of ids) if (idx.insert(id)) inserted++;
    expect(inserted).toBe(200);
    expect(idx.size).toBe(200);
    for (const id of ids) expect(idx.contains(id)).toBe(true);
    for (const id of ids) expect(idx.insert(id)).toBe(false);
    expect(idx.size).toBe(200);
  });

  it('the same holds in an index exactly as large as the set (fully loaded table)', () => {
    const ids = sharedPrefixIds(200);
    const idx = new ExactCausalIndex({ capacity: 200, seed: 7 });
    for (const id of ids) expect(idx.insert(id)).toBe(true);
    for (const id of ids) expect(idx.contains(id)).toBe(true);
    expect(idx.contains(sharedPrefixIds(201)[200]!)).toBe(false);
  });

  it('a Bloom false positive is still rejected by the exact index', () => {
    // fill(v) differs from the stored ids; the index must not be fooled by shared hash bits.
    const idx = new ExactCausalIndex({ capacity: 1024 });
    for (let i = 0; i < 1000; i++) idx.insert(seq(i));
    for (let v = 1; v < 256; v++) expect(idx.contains(fill(v))).toBe(false);
  });
});

describe('matches a Set model (fast-check)', () => {
  // Structured ids that stress hashing: counters, [v;32], shared prefixes, single-byte-late
  // differences; plus random ids. Small pools make repeats common.
  const structuredId = fc.oneof(
    fc.integer({ min: 0, max: 400 }).map(seq),
    fc.integer({ min: 0, max: 255 }).map(fill),
    fc.integer({ min: 0, max: 400 }).map((i) => sharedPrefixIds(i + 1)[i]!),
    fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 255 })).map(([pos, v]) => {
      const id = new Uint8Array(32).fill(0x3c);
      id[pos] = v;
      return id;
    }),
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
  );
  const op = fc.record({ kind: fc.constantFrom('insert', 'insert', 'contains', 'keyNumberOf'), id: structuredId });

  it('insert/contains/keyNumberOf/size/ids agree with Set<string> exactly, including at capacity', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: 300 }),
        fc.nat({ max: 0xffff_ffff }),
        fc.array(op, { minLength: 1, maxLength: 600 }),
        (capacity, seed, ops) => {
          const idx = new ExactCausalIndex({ capacity, seed });
          const model = new Set<string>();
          const order: string[] = [];
          for (const { kind, id } of ops) {
            const key = toHex(id);
            if (kind === 'insert') {
              if (model.has(key)) {
                expect(idx.insert(id)).toBe(false);
              } else if (model.size >= capacity) {
                expect(() => idx.insert(id)).toThrow(CausalHorizonExceededError);
              } else {
                expect(idx.insert(id)).toBe(true);
                model.add(key);
                order.push(key);
              }
            } else if (kind === 'contains') {
              expect(idx.contains(id)).toBe(model.has(key));
            } else {
              expect(idx.keyNumberOf(id)).toBe(order.indexOf(key));
            }
            expect(idx.size).toBe(model.size);
          }
          expect([...idx.ids()].map(toHex)).toEqual(order);
          for (const key of order) expect(idx.contains(Uint8Array.from(Buffer.from(key, 'hex')))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('fills small indexes to capacity with structured ids and finds every one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat({ max: 0xffff_ffff }), fc.constantFrom('seq', 'prefix', 'late'), (capacity, seed, kind) => {
        const make = (i: number): Uint8Array => {
          if (kind === 'seq') return seq(i);
          if (kind === 'prefix') return sharedPrefixIds(i + 1)[i]!;
          const id = new Uint8Array(32).fill(0x77); // differs only in bytes 30..31
          id[30] = i & 0xff;
          id[31] = i >>> 8;
          return id;
        };
        const idx = new ExactCausalIndex({ capacity, seed });
        for (let i = 0; i < capacity; i++) expect(idx.insert(make(i))).toBe(true);
        expect(() => idx.insert(make(capacity))).toThrow(CausalHorizonExceededError);
        for (let i = 0; i < capacity; i++) expect(idx.keyNumberOf(make(i))).toBe(i);
        for (let i = capacity; i < capacity + 20; i++) expect(idx.contains(make(i))).toBe(false);
        expect(idx.size).toBe(capacity);
      }),
      { numRuns: 60 },
    );
  });
});

describe('seeds', () => {
  it('indexes with different seeds hold the same set in the same order', () => {
    const ids = [...Array.from({ length: 150 }, (_, i) => seq(i)), ...sharedPrefixIds(150), ...Array.from({ length: 256 }, (_, v) => fill(v))];
    const a = new ExactCausalIndex({ capacity: 600, seed: 1 });
    const b = new ExactCausalIndex({ capacity: 600, seed: 0xdeadbeef });
    const c = new ExactCausalIndex({ capacity: 600 }); // random seed
    for (const id of ids) {
      const ra = a.insert(id);
      expect(b.insert(id)).toBe(ra);
      expect(c.insert(id)).toBe(ra);
    }
    // seq(0) and fill(0) are the same id, so one insert of the list is a duplicate.
    const unique = new Set(ids.map(toHex)).size;
    expect(unique).toBe(ids.length - 1);
    expect(a.size).toBe(unique);
    expect(b.size).toBe(unique);
    expect(c.size).toBe(unique);
    expect([...b.ids()].map(toHex)).toEqual([...a.ids()].map(toHex));
    for (const id of ids) {
      expect(a.contains(id)).toBe(true);
      expect(b.contains(id)).toBe(true);
      expect(b.keyNumberOf(id)).toBe(a.keyNumberOf(id));
    }
  });
});

describe('clear', () => {
  it('forgets every id; the index is reusable up to full capacity', () => {
    const idx = new ExactCausalIndex({ capacity: 50, seed: 3 });
    for (let i = 0; i < 50; i++) idx.insert(seq(i));
    idx.clear();
    expect(idx.size).toBe(0);
    expect(idx.fill).toBe(0);
    expect([...idx.ids()]).toEqual([]);
    for (let i = 0; i < 50; i++) expect(idx.contains(seq(i))).toBe(false);
    for (let i = 100; i < 150; i++) expect(idx.insert(seq(i))).toBe(true);
    expect(() => idx.insert(seq(0))).toThrow(CausalHorizonExceededError);
    expect(idx.keyNumberOf(seq(100))).toBe(0);
    for (let i = 0; i < 50; i++) expect(idx.contains(seq(i))).toBe(false);
  });
});

describe('shared memory: attach', () => {
  it('an attached view sees published inserts after sync()', () => {
    const writer = new ExactCausalIndex({ capacity: 100, seed: 42 });
    for (let i = 0; i < 10; i++) writer.insert(seq(i));
    expect(writer.publish()).toBe(10);

    const reader = ExactCausalIndex.attach(writer.buffer);
    expect(reader.capacity).toBe(100);
    expect(reader.tableSlots).toBe(writer.tableSlots);
    expect(reader.size).toBe(10);
    for (let i = 0; i < 10; i++) {
      expect(reader.contains(seq(i))).toBe(true);
      expect(reader.keyNumberOf(seq(i))).toBe(i);
    }
    expect(reader.contains(seq(10))).toBe(false);

    for (let i = 10; i < 30; i++) writer.insert(seq(i));
    expect(reader.size).toBe(10); // nothing new published yet
    expect(writer.publish()).toBe(30);
    expect(reader.size).toBe(10); // a reader's size moves only on sync()
    expect(reader.sync()).toBe(30);
    expect(reader.size).toBe(30);
    for (let i = 0; i < 30; i++) expect(reader.contains(seq(i))).toBe(true);
    expect([...reader.ids()].map(toHex)).toEqual([...writer.ids()].map(toHex));
  });

  it('an attached index sees a published clear()', () => {
    const writer = new ExactCausalIndex({ capacity: 20 });
    writer.insert(seq(1));
    writer.publish();
    const reader = ExactCausalIndex.attach(writer.buffer);
    writer.clear();
    expect(reader.sync()).toBe(0);
    expect(reader.contains(seq(1))).toBe(false);
  });

  it('rejects buffers that do not hold an exact index', () => {
    const good = new ExactCausalIndex({ capacity: 100, seed: 1 });
    good.insert(seq(1));
    good.publish();
    const raw = new Uint8Array(good.buffer);

    const bad: unknown[] = [
      new SharedArrayBuffer(good.byteLength), // zeroed: no magic
      new SharedArrayBuffer(16), // shorter than the header
      new ArrayBuffer(good.byteLength),
      (() => {
        const wrong = new SharedArrayBuffer(good.byteLength + 64); // a valid header in a buffer of the wrong size
        new Uint8Array(wrong).set(raw.subarray(0, 256));
        return wrong;
      })(),
      (() => {
        const b = new SharedArrayBuffer(good.byteLength - 64);
        new Uint8Array(b).set(raw.subarray(0, 256));
        return b;
      })(),
      (() => {
        // Random bytes.
        const b = new SharedArrayBuffer(good.byteLength);
        const u = new Uint8Array(b);
        for (let i = 0; i < u.length; i++) u[i] = (i * 2654435761) >>> 24;
        return b;
      })(),
      (() => {
        // Right magic, wrong layout version.
        const b = new SharedArrayBuffer(good.byteLength);
        new Uint8Array(b).set(raw);
        new Uint32Array(b)[1] = 99;
        return b;
      })(),
      (() => {
        // Capacity field that does not match the buffer.
        const b = new SharedArrayBuffer(good.byteLength);
        new Uint8Array(b).set(raw);
        new Uint32Array(b)[2] = 1_000_000;
        return b;
      })(),
      (() => {
        // Capacity 0.
        const b = new SharedArrayBuffer(good.byteLength);
        new Uint8Array(b).set(raw);
        new Uint32Array(b)[2] = 0;
        return b;
      })(),
      undefined,
      good,
    ];
    for (const b of bad) expectError(() => ExactCausalIndex.attach(b as SharedArrayBuffer), SharedMemoryError, 'InvalidSharedMemory');
    // The good buffer still attaches, and a failed attach does not leak into the next constructor.
    expect(ExactCausalIndex.attach(good.buffer).contains(seq(1))).toBe(true);
    const fresh = new ExactCausalIndex({ capacity: 7 });
    expect(fresh.capacity).toBe(7);
    expect(fresh.buffer).not.toBe(good.buffer);
  });
});

describe('options validation', () => {
  it('rejects bad capacities and seeds with InvalidArgument', () => {
    const bad: unknown[] = [
      { capacity: 0 },
      { capacity: -1 },
      { capacity: MAX_INDEX_CAPACITY + 1 },
      { capacity: 1.5 },
      { capacity: Number.NaN },
      { capacity: '16' },
      { seed: -1 },
      { seed: 2 ** 32 },
      { seed: 0.5 },
      { seed: Number.NaN },
    ];
    for (const opts of bad) expectError(() => new ExactCausalIndex(opts as { capacity?: number; seed?: number }), InvalidArgumentError, 'InvalidArgument');
  });

  it('accepts the boundary seeds and capacity 1', () => {
    expect(new ExactCausalIndex({ capacity: 1, seed: 0 }).capacity).toBe(1);
    const idx = new ExactCausalIndex({ capacity: 4, seed: 0xffff_ffff });
    expect(idx.insert(seq(1))).toBe(true);
    expect(idx.contains(seq(1))).toBe(true);
  });
});

describe('an attached reader sees exactly what was published', () => {
  it('ignores inserts made after the last publish until it syncs', () => {
    const writer = new ExactCausalIndex({ capacity: 100, seed: 9 });
    writer.insert(seq(1));
    writer.publish();
    const reader = ExactCausalIndex.attach(writer.buffer);
    writer.insert(seq(2)); // not published yet
    expect(reader.size).toBe(1);
    expect(reader.contains(seq(2))).toBe(false);
    expect(reader.keyNumberOf(seq(2))).toBe(-1);
    writer.publish();
    expect(reader.sync()).toBe(2);
    expect(reader.contains(seq(2))).toBe(true);
    expect(reader.keyNumberOf(seq(2))).toBe(1);
    expect(toHex(reader.idAt(1))).toBe(toHex(seq(2)));
  });

  it('gives every index of the same seed the same hash, and the all-zero id a seed-dependent slot', () => {
    // Two indexes with different seeds must both hold the all-zero id and find it.
    for (const seed of [0, 1, 0xffffffff]) {
      const index = new ExactCausalIndex({ capacity: 16, seed });
      expect(index.insert(fill(0))).toBe(true);
      expect(index.contains(fill(0))).toBe(true);
      expect(index.insert(fill(0))).toBe(false);
    }
  });
});

/** Slot writes are buffered 32 at a time (exact-index.ts). */
const PENDING_SLOT_WRITES = 32;

describe('buffered slot writes', () => {
  // Slot words are written in bursts of PENDING_SLOT_WRITES; every id must stay findable at every
  // point of a burst, from the writer and from a reader after publish().
  it('finds every id around each flush boundary', () => {
    for (const n of [1, PENDING_SLOT_WRITES - 1, PENDING_SLOT_WRITES, PENDING_SLOT_WRITES + 1, 2 * PENDING_SLOT_WRITES, 5 * PENDING_SLOT_WRITES + 3]) {
      const index = new ExactCausalIndex({ capacity: 512, seed: n });
      for (let i = 0; i < n; i++) {
        expect(index.insert(seq(i))).toBe(true);
        for (let j = 0; j <= i; j++) expect(index.keyNumberOf(seq(j))).toBe(j);
        expect(index.insert(seq(i))).toBe(false);
      }
      index.publish();
      const reader = ExactCausalIndex.attach(index.buffer);
      for (let j = 0; j < n; j++) expect(reader.contains(seq(j))).toBe(true);
      expect(reader.contains(seq(n))).toBe(false);
    }
  });

  it('clear() drops buffered writes with everything else', () => {
    const index = new ExactCausalIndex({ capacity: 64, seed: 3 });
    for (let i = 0; i < 10; i++) index.insert(seq(i));
    index.clear();
    for (let i = 0; i < 10; i++) expect(index.contains(seq(i))).toBe(false);
    for (let i = 100; i < 140; i++) expect(index.insert(seq(i))).toBe(true);
    for (let i = 100; i < 140; i++) expect(index.contains(seq(i))).toBe(true);
  });
});
