/**
 * TieredExactIndex (hot table, frozen tables, sorted runs): `contains` and `insert` agree exactly
 * with a Set<string> model at every step, across many freezes, compactions and merges, with
 * duplicates (rejections) interleaved and compaction steps handed out, installed out of order or
 * abandoned as a worker would; an old id is found, and refused as a duplicate, in every tier; the
 * merge policy keeps few runs; the memory budget's breach is a typed error that changes nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CausalHorizonExceededError,
  DEFAULT_HOT_CAPACITY,
  DEFAULT_MERGE_FACTOR,
  FrozenTable,
  SortedRun,
  TieredExactIndex,
  buildRun,
  mergeRuns,
  type MergeJob,
} from './helpers/lib.js';
import { expectBadMemory, expectError, expectInvalid, thrown } from './helpers/errors.js';
import { xorshift32 } from './helpers/kernels.js';

const hex = (bytes: Uint8Array, at = 0): string => Buffer.from(bytes.subarray(at, at + 32)).toString('hex');

/** A source of distinct ids: random words, every fourth id sharing a 12-byte prefix with others (long fence ties). */
function idSource(seed: number): () => Uint8Array {
  const next = xorshift32(seed);
  let n = 0;
  return () => {
    const id = new Uint8Array(32);
    const words = new Uint32Array(id.buffer);
    for (let i = 0; i < 8; i++) words[i] = next();
    if (n % 4 === 3) id.fill(0x5a, 0, 12);
    // A counter in the last bytes keeps ids distinct whatever the generator does.
    words[7] = n++;
    return id;
  };
}

/** Fields that a refused insert must leave as they were. */
function shape(index: TieredExactIndex): string {
  const m = index.memoryBytes();
  return JSON.stringify({ size: index.size, runs: index.runSizes(), frozen: index.frozenCount, total: m.total, hot: m.hot.ids });
}

/** Every id of `model` is found, `absent` ids are not, ids() is the model, size matches. */
function expectIndexIs(index: TieredExactIndex, model: Set<string>, absent: readonly Uint8Array[]): void {
  const wrong: string[] = [];
  if (index.size !== model.size) wrong.push(`size ${index.size}, model ${model.size}`);
  for (const key of model) if (!index.contains(Buffer.from(key, 'hex'))) wrong.push(`member ${key} not found`);
  for (const id of absent) if (index.contains(id)) wrong.push(`absent ${hex(id)} found`);
  const listed = [...index.ids()].map((id) => hex(id));
  if (listed.length !== model.size || new Set(listed).size !== model.size || !listed.every((k) => model.has(k))) wrong.push('ids() is not the model');
  const m = index.memoryBytes();
  if (m.hot.ids + m.frozen.ids + m.runs.ids !== model.size) wrong.push(`tiers hold ${m.hot.ids} + ${m.frozen.ids} + ${m.runs.ids} ids`);
  expect(wrong.slice(0, 5)).toEqual([]);
}

type Op =
  | { t: 'new' }
  | { t: 'dup'; pick: number }
  | { t: 'dupOld' }
  | { t: 'present'; pick: number }
  | { t: 'absent' }
  | { t: 'compact'; budget: number }
  | { t: 'handFrozen' }
  | { t: 'handMerge' }
  | { t: 'install'; pick: number; asImage: boolean }
  | { t: 'abandon'; pick: number }
  | { t: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 300, arbitrary: fc.constant({ t: 'new' as const }) },
  { weight: 60, arbitrary: fc.nat().map((pick) => ({ t: 'dup' as const, pick })) },
  { weight: 30, arbitrary: fc.constant({ t: 'dupOld' as const }) },
  { weight: 40, arbitrary: fc.nat().map((pick) => ({ t: 'present' as const, pick })) },
  { weight: 30, arbitrary: fc.constant({ t: 'absent' as const }) },
  { weight: 40, arbitrary: fc.oneof(fc.constant(Infinity), fc.nat({ max: 40 })).map((budget) => ({ t: 'compact' as const, budget })) },
  { weight: 30, arbitrary: fc.constant({ t: 'handFrozen' as const }) },
  { weight: 30, arbitrary: fc.constant({ t: 'handMerge' as const }) },
  { weight: 40, arbitrary: fc.tuple(fc.nat(), fc.boolean()).map(([pick, asImage]) => ({ t: 'install' as const, pick, asImage })) },
  { weight: 10, arbitrary: fc.nat().map((pick) => ({ t: 'abandon' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

describe('TieredExactIndex: agrees with a Set model', () => {
  it('across freezes, compactions, merges and worker-style installs, with rejections interleaved (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 400, size: 'max' }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 5 }),
        fc.nat({ max: 0xffff_ffff }),
        (ops, hotCapacity, mergeFactor, seed) => {
          const index = new TieredExactIndex({ hotCapacity, mergeFactor, seed, prefault: false });
          const fresh = idSource(seed);
          const model = new Set<string>();
          const order: Uint8Array[] = [];
          /** Work handed out and not installed yet, as a worker holds it. */
          const pending: (FrozenTable | MergeJob)[] = [];
          const absent = [fresh(), fresh()];
          const check = (cond: boolean, what: string): void => {
            if (!cond) expect.fail(`${what} (after ${model.size} ids, runs ${index.runSizes()}, ${index.frozenCount} frozen)`);
          };
          ops.forEach((o, step) => {
            switch (o.t) {
              case 'new': {
                const id = fresh();
                check(index.insert(id), 'a new id is inserted');
                model.add(hex(id));
                order.push(id);
                check(index.contains(id), 'an inserted id is found');
                break;
              }
              case 'dup':
              case 'dupOld': {
                if (order.length === 0) break;
                const id = order[o.t === 'dupOld' ? 0 : o.pick % order.length]!;
                const before = shape(index);
                check(!index.insert(id), 'a duplicate is refused');
                check(shape(index) === before, 'a refusal changes nothing');
                break;
              }
              case 'present':
                if (order.length > 0) check(index.contains(order[o.pick % order.length]!), 'a member is found');
                break;
              case 'absent':
                check(!index.contains(fresh()), 'an id never inserted is not found');
                break;
              case 'compact':
                index.compact(o.budget);
                break;
              case 'handFrozen': {
                const f = index.freezeReady();
                if (f !== undefined) pending.push(f);
                break;
              }
              case 'handMerge': {
                const j = index.mergeReady();
                if (j !== undefined) pending.push(j);
                break;
              }
              case 'install': {
                if (pending.length === 0) break;
                const work = pending.splice(o.pick % pending.length, 1)[0]!;
                const run = work instanceof FrozenTable ? buildRun(work.ids, index.filterSeed) : mergeRuns(work.runs, index.filterSeed);
                const given = o.asImage ? run.bytes : run;
                if (work instanceof FrozenTable) index.installRun(work, given);
                else index.installMerge(work, given);
                break;
              }
              case 'abandon': {
                if (pending.length === 0) break;
                index.abandon(pending.splice(o.pick % pending.length, 1)[0]!);
                break;
              }
              case 'clear':
                index.clear();
                model.clear();
                order.length = 0;
                pending.length = 0;
                break;
            }
            check(index.size === model.size, `size ${index.size}, model ${model.size}`);
            if (order.length > 0) {
              check(index.contains(order[0]!), 'the oldest id is found');
              check(index.contains(order[order.length - 1]!), 'the newest id is found');
            }
            check(!index.contains(absent[step & 1]!), 'an absent id is not found');
            if (step % 50 === 49) expectIndexIs(index, model, absent);
          });
          // Whatever was left handed out, installed now; then everything compacted.
          for (const work of pending) {
            if (work instanceof FrozenTable) index.installRun(work, buildRun(work.ids, index.filterSeed));
            else index.installMerge(work, mergeRuns(work.runs, index.filterSeed));
          }
          expectIndexIs(index, model, absent);
          index.compact();
          expect(index.frozenCount).toBe(0);
          expectIndexIs(index, model, absent);
          for (const id of order) expect(index.insert(id)).toBe(false);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('takes ids at any offset of a packed buffer', () => {
    const fresh = idSource(9);
    const packed = new Uint8Array(32 * 50 + 7);
    for (let i = 0; i < 50; i++) packed.set(fresh(), 7 + 32 * i);
    const index = new TieredExactIndex({ hotCapacity: 8, prefault: false });
    for (let i = 0; i < 50; i++) expect(index.insert(packed, 7 + 32 * i)).toBe(true);
    index.compact();
    for (let i = 0; i < 50; i++) {
      expect(index.contains(packed, 7 + 32 * i)).toBe(true);
      expect(index.contains(packed.slice(7 + 32 * i, 39 + 32 * i))).toBe(true);
      expect(index.insert(packed, 7 + 32 * i)).toBe(false);
    }
    expect(index.contains(packed, 8)).toBe(false);
    for (const offset of [-1, 0.5, packed.length - 31, NaN]) {
      expectInvalid(() => index.contains(packed, offset));
      expectInvalid(() => index.insert(packed, offset));
    }
    expectInvalid(() => index.contains(new Uint8Array(31)));
    expectInvalid(() => index.insert([1, 2] as unknown as Uint8Array));
    expect(index.size).toBe(50);
  });
});

describe('TieredExactIndex: old ids in every tier', () => {
  /**
   * hotCapacity 4, mergeFactor 2: 64 ids compacted (runs of 32, 16, 8, 4, … after merges), 12
   * more frozen and not compacted, 3 in the hot table.
   */
  function layered(): { index: TieredExactIndex; ids: Uint8Array[] } {
    const index = new TieredExactIndex({ hotCapacity: 4, mergeFactor: 2, prefault: false });
    const fresh = idSource(77);
    const ids: Uint8Array[] = [];
    const add = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const id = fresh();
        expect(index.insert(id)).toBe(true);
        ids.push(id);
      }
    };
    add(64);
    add(1); // freezes the 16th table
    index.compact();
    add(15); // three more frozen tables (ids 64..75), ids 76..79 in the hot table
    return { index, ids };
  }

  it('is laid out as intended: one run per level, frozen tables, a hot table', () => {
    const { index } = layered();
    expect(index.runSizes()).toEqual([64]);
    expect(index.frozenCount).toBe(3);
    const m = index.memoryBytes();
    expect([m.runs.ids, m.frozen.ids, m.hot.ids]).toEqual([64, 12, 4]);
  });

  it('an old dep is found and an old duplicate refused, whichever tier holds it, with nothing changed', () => {
    const { index, ids } = layered();
    // id 0: the oldest, in the merged run; 70: a frozen table; 79: the hot table.
    for (const k of [0, 31, 63, 64, 70, 75, 76, 79]) {
      expect(index.contains(ids[k]!)).toBe(true);
      const before = shape(index);
      expect(index.insert(ids[k]!)).toBe(false);
      expect(shape(index)).toBe(before);
    }
    // Now with runs at several levels: the three frozen tables become [4] + [8] (two merged).
    index.compact();
    expect(index.runSizes()).toEqual([4, 8, 64]);
    for (let k = 0; k < ids.length; k++) {
      expect(index.contains(ids[k]!)).toBe(true);
      expect(index.insert(ids[k]!)).toBe(false);
    }
    index.insert(idSource(5)()); // freezes the hot table; its run cascades: 4 + 4 → 8, 8 + 8 → 16
    index.compact();
    expect(index.runSizes()).toEqual([16, 64]);
    for (let k = 0; k < ids.length; k++) {
      expect(index.contains(ids[k]!)).toBe(true);
      expect(index.insert(ids[k]!)).toBe(false);
    }
    expect(index.size).toBe(81);
  });

  it('ids() lists runs first (sorted), then frozen and hot ids in insertion order', () => {
    const { index, ids } = layered();
    const listed = [...index.ids()].map((id) => hex(id));
    const runPart = listed.slice(0, 64);
    expect(runPart).toEqual([...runPart].sort());
    expect(new Set(runPart)).toEqual(new Set(ids.slice(0, 64).map((id) => hex(id))));
    expect(listed.slice(64)).toEqual(ids.slice(64).map((id) => hex(id)));
    const blocks = [...index.idBlocks()];
    expect(blocks.map((b) => b.length / 32)).toEqual([64, 4, 4, 4, 4]);
  });
});

describe('TieredExactIndex: compaction and the merge policy', () => {
  it('keeps at most mergeFactor − 1 runs per level when compacted after every freeze', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, mergeFactor: 4, prefault: false });
    const fresh = idSource(3);
    for (let i = 0; i < 256; i++) {
      index.insert(fresh());
      index.compact();
    }
    // 63 tables were frozen (the 64th is full and still hot): 252 = 3·64 + 3·16 + 3·4.
    expect(index.runSizes()).toEqual([4, 4, 4, 16, 16, 16, 64, 64, 64]);
    expect(index.frozenCount).toBe(0);
    index.insert(fresh());
    index.compact();
    expect(index.runSizes()).toEqual([256]);
  });

  it('lookups consult O(log n) runs: at most (F − 1) per level plus a merge in flight', () => {
    const index = new TieredExactIndex({ hotCapacity: 8, mergeFactor: 4, prefault: false });
    const fresh = idSource(4);
    let most = 0;
    for (let i = 0; i < 8 * 300; i++) {
      index.insert(fresh());
      if (i % 37 === 0) index.compact();
      most = Math.max(most, index.runCount);
    }
    index.compact();
    // 300 tables: levels of 8, 32, 128, 512, 2048 ids: at most 3 runs each.
    expect(index.runCount).toBeLessThanOrEqual(3 * 5);
    expect(most).toBeLessThanOrEqual(3 * 5 + 4);
  });

  it('compact(budget) stops after the step that reaches the budget and resumes where it stopped', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, mergeFactor: 2, prefault: false });
    const fresh = idSource(6);
    for (let i = 0; i < 41; i++) index.insert(fresh());
    expect(index.frozenCount).toBe(10);
    expect(index.compact(1)).toBe(4);
    expect(index.frozenCount).toBe(9);
    expect(index.compact(9)).toBe(12);
    expect(index.frozenCount).toBe(6);
    expect(index.compact(0)).toBe(0);
    index.compact();
    expect(index.compact()).toBe(0);
    expect(index.frozenCount).toBe(0);
    expect(index.runSizes()).toEqual([8, 32]);
    expectInvalid(() => index.compact(-1));
    expectInvalid(() => index.compact(NaN));
  });

  it('hands out each frozen table and merge once, takes runs back as images, refuses what does not fit', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, mergeFactor: 2, prefault: false });
    const other = new TieredExactIndex({ hotCapacity: 4, prefault: false });
    const fresh = idSource(8);
    for (let i = 0; i < 13; i++) index.insert(fresh());
    for (let i = 0; i < 5; i++) other.insert(fresh());
    const a = index.freezeReady()!;
    const b = index.freezeReady()!;
    const c = index.freezeReady()!;
    expect([a.sequence, b.sequence, c.sequence]).toEqual([0, 1, 2]);
    expect(index.freezeReady()).toBeUndefined();
    expect(a.count).toBe(4);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    // Wrong run for the table, a table of another index, a run of the wrong size.
    expectBadMemory(() => index.installRun(a, buildRun(b.ids, index.filterSeed).bytes.slice(0, 10)));
    expectInvalid(() => index.installRun(a, buildRun(b.ids.subarray(0, 96), index.filterSeed)));
    expectInvalid(() => index.installRun(other.freezeReady()!, buildRun(a.ids, 1)));
    // Out of order, one as bytes of a SharedArrayBuffer (what a worker posts back).
    index.installRun(c, buildRun(c.ids, index.filterSeed).bytes);
    expectInvalid(() => index.installRun(c, buildRun(a.ids, index.filterSeed)));
    index.abandon(b);
    const b2 = index.freezeReady()!;
    expect(b2.sequence).toBe(b.sequence);
    expectInvalid(() => index.installRun(b, buildRun(b.ids, index.filterSeed)));
    index.installRun(b2, buildRun(b2.ids, index.filterSeed));
    const job = index.mergeReady()!;
    expect(job.runs.length).toBe(2);
    expect(job.count).toBe(8);
    expect(index.mergeReady()).toBeUndefined();
    expectInvalid(() => index.installMerge(job, job.runs[0]!));
    index.abandon(job);
    const again = index.mergeReady()!;
    expectInvalid(() => index.installMerge(job, mergeRuns(job.runs, index.filterSeed)));
    index.installMerge(again, mergeRuns(again.runs, index.filterSeed).bytes.buffer as SharedArrayBuffer);
    index.installRun(a, buildRun(a.ids, index.filterSeed));
    expect(index.runSizes()).toEqual([8, 4]);
    // Work handed out before a clear cannot be installed after it.
    for (let i = 0; i < 8; i++) index.insert(fresh());
    const stale = index.freezeReady()!;
    const staleRun = buildRun(stale.ids, index.filterSeed);
    index.clear();
    expectInvalid(() => index.installRun(stale, staleRun));
    expect(index.size).toBe(0);
    expect(index.runCount).toBe(0);
  });

  it('recycles a table whose run is installed as the spare: two hot tables in steady state', () => {
    const index = new TieredExactIndex({ hotCapacity: 16, prefault: false });
    const fresh = idSource(12);
    const table = index.memoryBytes().hot.bytes;
    for (let i = 0; i < 16 * 40; i++) {
      index.insert(fresh());
      if (i % 16 === 0) index.compact();
      const m = index.memoryBytes();
      expect(m.hot.bytes + m.spare.bytes + m.frozen.bytes).toBeLessThanOrEqual(3 * table);
    }
    index.compact();
    const m = index.memoryBytes();
    expect(m.spare.tables).toBe(1);
    expect(m.total).toBe(2 * table + m.runs.bytes);
    expect(m.runs.keys).toBe(32 * m.runs.ids);
    expect(m.runs.keys + m.runs.filters + m.runs.fences + m.runs.other).toBe(m.runs.bytes);
    // Without compaction, freezes allocate tables as needed: still no limit on ids.
    for (let i = 0; i < 16 * 5; i++) index.insert(fresh());
    expect(index.frozenCount).toBe(5);
    expect(index.size).toBe(16 * 45);
  });
});

describe('TieredExactIndex: the memory budget', () => {
  it('a breach is CausalHorizonExceeded with the figures, and changes nothing; duplicates are still refused as such', () => {
    const probe = new TieredExactIndex({ hotCapacity: 64, prefault: false });
    const table = probe.memoryBytes().hot.bytes;
    // Room for the two hot tables and a few runs of 64 ids.
    const budgetBytes = 2 * table + 4 * buildRun(new Uint8Array(32 * 64), 1).byteLength;
    const index = new TieredExactIndex({ hotCapacity: 64, budgetBytes, prefault: false });
    const fresh = idSource(21);
    const ids: Uint8Array[] = [];
    let refused: unknown;
    for (let i = 0; i < 64 * 20 && refused === undefined; i++) {
      const id = fresh();
      const before = shape(index);
      try {
        expect(index.insert(id)).toBe(true);
        ids.push(id);
      } catch (error) {
        refused = error;
        expect(shape(index)).toBe(before);
        expect(index.contains(id)).toBe(false);
        // The refusal is stable: the same id again, and another new id, are refused too.
        expectError(() => index.insert(id), CausalHorizonExceededError, 'CausalHorizonExceeded');
        expectError(() => index.insert(fresh()), CausalHorizonExceededError, 'CausalHorizonExceeded');
        expect(shape(index)).toBe(before);
      }
      index.compact();
    }
    expect(refused).toBeInstanceOf(CausalHorizonExceededError);
    const message = (refused as Error).message;
    expect(message).toContain(`${ids.length} ids held in`);
    expect(message).toContain(`budget ${budgetBytes} bytes`);
    expect(message).toMatch(/hot \d+, frozen \d+ in \d+ tables, runs \d+ in \d+/);
    expect(index.memoryBytes().total).toBeGreaterThan(budgetBytes - table);
    // Everything admitted stays exact; duplicates are refused as duplicates.
    for (const id of ids) {
      expect(index.contains(id)).toBe(true);
      expect(index.insert(id)).toBe(false);
    }
    expect(index.size).toBe(ids.length);
    index.clear();
    expect(index.insert(fresh())).toBe(true);
  });

  it('a freeze that would allocate a table beyond the budget is refused before anything changes', () => {
    const table = new TieredExactIndex({ hotCapacity: 8, prefault: false }).memoryBytes().hot.bytes;
    const index = new TieredExactIndex({ hotCapacity: 8, budgetBytes: 2 * table + 100, prefault: false });
    const fresh = idSource(22);
    for (let i = 0; i < 16; i++) expect(index.insert(fresh())).toBe(true); // uses the spare: no growth
    const before = shape(index);
    const error = thrown(() => index.insert(fresh()));
    expect(error).toBeInstanceOf(CausalHorizonExceededError);
    expect((error as Error).message).toContain(`a freeze needs a new hot table of ${table} bytes`);
    expect(shape(index)).toBe(before);
    expect(index.frozenCount).toBe(1);
  });

  it('validates its options', () => {
    for (const hotCapacity of [0, -1, 1.5, 2 ** 27 + 1, '4']) expectInvalid(() => new TieredExactIndex({ hotCapacity } as never));
    for (const mergeFactor of [1, 65, 2.5]) expectInvalid(() => new TieredExactIndex({ mergeFactor, prefault: false }));
    for (const budgetBytes of [0, -5, NaN, '1']) expectInvalid(() => new TieredExactIndex({ budgetBytes } as never));
    expectInvalid(() => new TieredExactIndex({ hotCapacity: 1024, budgetBytes: 1000, prefault: false }));
    expectInvalid(() => new TieredExactIndex({ seed: -1 }));
    expectInvalid(() => new TieredExactIndex({ prefault: 1 } as never));
    const index = new TieredExactIndex({ prefault: false });
    expect(index.hotCapacity).toBe(DEFAULT_HOT_CAPACITY);
    expect(index.mergeFactor).toBe(DEFAULT_MERGE_FACTOR);
    expect(index.budgetBytes).toBe(Infinity);
  });

  it('runs whose filter has another seed (a construction that needed a retry) are still consulted exactly', () => {
    const index = new TieredExactIndex({ hotCapacity: 16, mergeFactor: 3, prefault: false });
    const fresh = idSource(31);
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 16 * 7 + 1; i++) {
      ids.push(fresh());
      index.insert(ids[i]!);
    }
    // Every other run with a foreign filter seed, and one merge the same way.
    for (let f = index.freezeReady(), i = 0; f !== undefined; f = index.freezeReady(), i++) {
      index.installRun(f, buildRun(f.ids, i % 2 === 0 ? (index.filterSeed ^ 0x1234) >>> 0 : index.filterSeed));
    }
    const job = index.mergeReady()!;
    index.installMerge(job, mergeRuns(job.runs, 99));
    expect(index.runSizes()).toEqual([16, 16, 16, 16, 48]);
    const absent = fresh();
    for (const id of ids) {
      expect(index.contains(id)).toBe(true);
      expect(index.insert(id)).toBe(false);
    }
    expect(index.contains(absent)).toBe(false);
    expect(index.insert(absent)).toBe(true);
  });

  it('a run is exact on its own: it holds the frozen table ids, sorted', () => {
    const index = new TieredExactIndex({ hotCapacity: 32, prefault: false, seed: 5 });
    const fresh = idSource(30);
    for (let i = 0; i < 33; i++) index.insert(fresh());
    const f = index.freezeReady()!;
    const run = buildRun(f.ids, index.filterSeed);
    expect(run).toBeInstanceOf(SortedRun);
    run.verify();
    expect(run.count).toBe(32);
    expect(run.filter.seed).toBe(index.filterSeed);
  });
});
