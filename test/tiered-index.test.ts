/**
 * TieredExactIndex (hot table, frozen tables, sorted runs, in shared arenas): `contains` and
 * `insert` agree exactly with a Set<string> model at every step, across many freezes,
 * compactions and merges, with duplicates (rejections) interleaved and compaction jobs claimed,
 * finished out of order or abandoned as a compactor thread would, and a second instance attached
 * to the same memory (as another thread would) agreeing after each publish; an old id is found,
 * and refused as a duplicate, in every tier; the merge policy keeps few runs; the memory budget's
 * and the id limit's breaches are typed errors that change nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CausalHorizonExceededError,
  DEFAULT_HOT_CAPACITY,
  DEFAULT_MERGE_FACTOR,
  TieredExactIndex,
  buildRun,
  type CompactionJob,
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

/** Fields that a refused insert must leave as they were (finished compaction is installed first: an insert would). */
function shape(index: TieredExactIndex): string {
  index.publish();
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
  | { t: 'claim' }
  | { t: 'finish'; pick: number }
  | { t: 'abandon'; pick: number }
  | { t: 'publish' }
  | { t: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 300, arbitrary: fc.constant({ t: 'new' as const }) },
  { weight: 60, arbitrary: fc.nat().map((pick) => ({ t: 'dup' as const, pick })) },
  { weight: 30, arbitrary: fc.constant({ t: 'dupOld' as const }) },
  { weight: 40, arbitrary: fc.nat().map((pick) => ({ t: 'present' as const, pick })) },
  { weight: 30, arbitrary: fc.constant({ t: 'absent' as const }) },
  { weight: 40, arbitrary: fc.oneof(fc.constant(Infinity), fc.nat({ max: 40 })).map((budget) => ({ t: 'compact' as const, budget })) },
  { weight: 60, arbitrary: fc.constant({ t: 'claim' as const }) },
  { weight: 40, arbitrary: fc.nat().map((pick) => ({ t: 'finish' as const, pick })) },
  { weight: 10, arbitrary: fc.nat().map((pick) => ({ t: 'abandon' as const, pick })) },
  { weight: 20, arbitrary: fc.constant({ t: 'publish' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

describe('TieredExactIndex: agrees with a Set model', () => {
  it('across freezes, compactions, merges and compactor-style jobs, with rejections interleaved, and an attached reader (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 400, size: 'max' }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 5 }),
        fc.nat({ max: 0xffff_ffff }),
        (ops, hotCapacity, mergeFactor, seed) => {
          const index = new TieredExactIndex({ hotCapacity, mergeFactor, seed, prefault: false });
          // Another thread's view of the same memory: reads what was published.
          const reader = TieredExactIndex.attach(index.memory);
          const fresh = idSource(seed);
          const model = new Set<string>();
          const order: Uint8Array[] = [];
          /** The model as of the last publish, and ids inserted since (a reader may not see them yet). */
          let published = 0;
          /** Jobs claimed and not finished yet, as a compactor holds them. */
          const pending: CompactionJob[] = [];
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
              case 'claim': {
                // Claimed through the reader: any thread holding the memory may compact.
                // At most 4 held at once: the writer keeps job slots to catch up with (a real
                // compactor finishes what it claims; this one may sit on it for the whole run).
                const job = pending.length < 4 ? reader.claimCompaction() : undefined;
                if (job !== undefined) pending.push(job);
                break;
              }
              case 'finish': {
                if (pending.length === 0) break;
                const job = pending.splice(o.pick % pending.length, 1)[0]!;
                reader.completeCompaction(job, reader.runCompaction(job));
                break;
              }
              case 'abandon': {
                if (pending.length === 0) break;
                reader.abandonCompaction(pending.splice(o.pick % pending.length, 1)[0]!);
                break;
              }
              case 'publish':
                check(index.publish() === model.size, 'publish returns the size');
                published = order.length;
                check(reader.sync() === model.size, 'the reader syncs to the published size');
                break;
              case 'clear':
                index.clear();
                model.clear();
                order.length = 0;
                published = 0;
                // Jobs claimed before the clear still finish: their results are discarded.
                for (const job of pending.splice(0)) reader.completeCompaction(job, reader.runCompaction(job));
                break;
            }
            check(index.size === model.size, `size ${index.size}, model ${model.size}`);
            if (order.length > 0) {
              check(index.contains(order[0]!), 'the oldest id is found');
              check(index.contains(order[order.length - 1]!), 'the newest id is found');
            }
            check(!index.contains(absent[step & 1]!), 'an absent id is not found');
            // The reader: every id published is found, whatever happened to the tiers since.
            if (published > 0) {
              check(reader.containsPublished(order[0]!), 'the reader finds the oldest published id');
              check(reader.containsPublished(order[published - 1]!), 'the reader finds the newest published id');
            }
            check(!reader.containsPublished(absent[step & 1]!), 'the reader does not find an absent id');
            if (step % 50 === 49) expectIndexIs(index, model, absent);
          });
          // Whatever was left claimed, finished now; then everything compacted.
          for (const job of pending) reader.completeCompaction(job, reader.runCompaction(job));
          expectIndexIs(index, model, absent);
          index.compact();
          expect(index.frozenCount).toBe(0);
          expectIndexIs(index, model, absent);
          for (const id of order) expect(index.insert(id)).toBe(false);
          index.publish();
          reader.sync();
          for (const id of order) expect(reader.containsPublished(id)).toBe(true);
          expect(index.memoryBytes().total).toBe(reader.memoryBytes().total);
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

  it('hands each frozen table and merge to one job, installs finished jobs on the writer, discards jobs from before a clear', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, mergeFactor: 2, prefault: false });
    const compactor = TieredExactIndex.attach(index.memory);
    const fresh = idSource(8);
    for (let i = 0; i < 13; i++) index.insert(fresh());
    const a = compactor.claimCompaction()!;
    const b = compactor.claimCompaction()!;
    const c = compactor.claimCompaction()!;
    expect([a.kind, b.kind, c.kind]).toEqual(['build', 'build', 'build']);
    expect([a.count, b.count, c.count]).toEqual([4, 4, 4]);
    expect(compactor.claimCompaction()).toBeUndefined();
    // Finished out of order; nothing changes for lookups until the writer installs.
    compactor.completeCompaction(c, compactor.runCompaction(c));
    expectInvalid(() => compactor.completeCompaction(c, 4));
    expect(index.frozenCount).toBe(3);
    expect(index.hasCompactionWork()).toBe(true);
    index.publish();
    expect(index.frozenCount).toBe(2);
    expect(index.runSizes()).toEqual([4]);
    compactor.abandonCompaction(b);
    const b2 = compactor.claimCompaction()!;
    expect(b2.inputs[0]!.location).toBe(b.inputs[0]!.location);
    compactor.completeCompaction(b2, compactor.runCompaction(b2));
    index.publish();
    const merge = compactor.claimCompaction()!;
    expect(merge.kind).toBe('merge');
    expect(merge.count).toBe(8);
    compactor.completeCompaction(merge, compactor.runCompaction(merge));
    compactor.completeCompaction(a, compactor.runCompaction(a));
    index.publish();
    expect(index.runSizes()).toEqual([8, 4]);
    expect(index.hasCompactionWork()).toBe(false);
    // Work claimed before a clear is discarded when it comes back, and its memory freed.
    for (let i = 0; i < 8; i++) index.insert(fresh());
    const stale = compactor.claimCompaction()!;
    const held = index.memoryBytes().total;
    index.clear();
    expect(index.memoryBytes().total).toBeLessThan(held);
    compactor.completeCompaction(stale, compactor.runCompaction(stale));
    index.publish();
    expect(index.size).toBe(0);
    expect(index.runCount).toBe(0);
    expect(index.frozenCount).toBe(0);
    // The hot table and the spare, if the freezes left one: nothing else is held.
    const m = index.memoryBytes();
    expect(m.total).toBe(m.hot.bytes + m.spare.bytes);
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
    for (const arenas of [0, 9, 1.5]) expectInvalid(() => new TieredExactIndex({ arenas, prefault: false }));
    for (const arenaBytes of [0, 4095, 2 ** 32 + 4096, 5000]) expectInvalid(() => new TieredExactIndex({ arenaBytes, prefault: false }));
    for (const idLimit of [0, -1, 2.5]) expectInvalid(() => new TieredExactIndex({ idLimit, prefault: false }));
    for (const mergeFactor of [1, 17, 2.5]) expectInvalid(() => new TieredExactIndex({ mergeFactor, prefault: false }));
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
    for (let i = 0; index.frozenCount > 0; i++) {
      const job = index.claimCompaction()!;
      expect(job.kind).toBe('build');
      index.completeCompaction(job, index.runCompaction(job, i % 2 === 0 ? (index.filterSeed ^ 0x1234) >>> 0 : index.filterSeed));
      index.publish();
    }
    expect(index.runSizes()).toEqual([16, 16, 16, 16, 16, 16, 16]);
    const job = index.claimCompaction()!;
    index.completeCompaction(job, index.runCompaction(job, 99));
    index.publish();
    expect(index.runSizes()).toEqual([16, 16, 16, 16, 48]);
    const absent = fresh();
    for (const id of ids) {
      expect(index.contains(id)).toBe(true);
      expect(index.insert(id)).toBe(false);
    }
    expect(index.contains(absent)).toBe(false);
    expect(index.insert(absent)).toBe(true);
  });

  it('an id limit refuses new ids (CausalHorizonExceeded, nothing changed) and still refuses duplicates as such', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, idLimit: 10, prefault: false });
    const fresh = idSource(40);
    const ids = Array.from({ length: 10 }, () => fresh());
    for (const id of ids) expect(index.insert(id)).toBe(true);
    const before = shape(index);
    const error = thrown(() => index.insert(fresh()));
    expect(error).toBeInstanceOf(CausalHorizonExceededError);
    expect((error as Error).message).toContain('id limit (10 ids)');
    expect(shape(index)).toBe(before);
    for (const id of ids) expect(index.insert(id)).toBe(false);
    expect(index.idCountLimit).toBe(10);
  });

  it('attach checks the memory it is handed', () => {
    const index = new TieredExactIndex({ hotCapacity: 4, arenas: 2, prefault: false });
    expectBadMemory(() => TieredExactIndex.attach({ directory: new SharedArrayBuffer(64), arenas: index.memory.arenas }));
    expectBadMemory(() => TieredExactIndex.attach({ directory: index.memory.directory, arenas: index.memory.arenas.slice(1) }));
    expectBadMemory(() => TieredExactIndex.attach({ directory: index.memory.directory, arenas: [new SharedArrayBuffer(8), new SharedArrayBuffer(8)] }));
    expectBadMemory(() => TieredExactIndex.attach(null as never));
    // A directory naming a table outside the arenas.
    const copy = new SharedArrayBuffer(index.memory.directory.byteLength);
    new Uint8Array(copy).set(new Uint8Array(index.memory.directory));
    const words = new Uint32Array(copy);
    for (let t = 0; t < 32; t++) if (words[64 + t * 8 + 1] === 1) words[64 + t * 8 + 2] = 5 * 2 ** 20 + 7;
    expectBadMemory(() => TieredExactIndex.attach({ directory: copy, arenas: index.memory.arenas }));
    expect(TieredExactIndex.attach(index.memory).hotCapacity).toBe(4);
  });

  it('a run is exact on its own: it holds the frozen table ids, sorted', () => {
    const index = new TieredExactIndex({ hotCapacity: 32, prefault: false, seed: 5 });
    const fresh = idSource(30);
    for (let i = 0; i < 33; i++) index.insert(fresh());
    const ids = [...index.ids()].slice(0, 32);
    index.compact();
    const [block] = [...index.idBlocks()];
    expect(block!.length).toBe(32 * 32);
    const packed = new Uint8Array(32 * 32);
    ids.forEach((id, i) => packed.set(id, 32 * i));
    const run = buildRun(packed, index.filterSeed);
    run.verify();
    expect(run.keys).toEqual(block);
    expect(run.filter.seed).toBe(index.filterSeed);
  });
});
