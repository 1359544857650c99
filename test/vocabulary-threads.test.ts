/**
 * The renamed methods of the durable kernel and the worker pool (README, "Naming"), and their
 * deprecated 0.1 names, side by side: each old name still does exactly what its new name does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FactBatch, GCounterInvariant, Kernel, KernelPool, createFact, toHex, u64le, type DurableHandle } from './helpers/lib.js';
import { cleanup, closeKernel, open, testDirs, tmpDir } from './helpers/durable.js';
import { delta } from './helpers/kernels.js';

afterEach(() => cleanup(testDirs));

describe('DurableKernel: admitRawWithHandle / admitWithHandle and their 0.1 names', () => {
  it('admitAsync = admitRawWithHandle and admitFactAsync = admitWithHandle: handles of consecutive sequences that become durable', async () => {
    const kernel = await open(tmpDir());
    const facts = [1, 2, 3, 4].map((n) => createFact([], delta(n)));
    const handles: DurableHandle[] = [
      kernel.admitRawWithHandle(facts[0]!.id, [], facts[0]!.payload),
      kernel.admitAsync(facts[1]!.id, [], facts[1]!.payload),
      kernel.admitWithHandle(facts[2]!),
      kernel.admitFactAsync(facts[3]!),
    ];
    expect(handles.map((h) => h.sequence)).toEqual([1, 2, 3, 4]);
    await Promise.all(handles.map((h) => h.durable()));
    expect(handles.every((h) => h.isDurable())).toBe(true);
    // Refusals are the same too: a duplicate throws DuplicateFact under either name.
    expect(() => kernel.admitAsync(facts[0]!.id, [], facts[0]!.payload)).toThrow(expect.objectContaining({ code: 'DuplicateFact' }));
    expect(() => kernel.admitWithHandle(facts[3]!)).toThrow(expect.objectContaining({ code: 'DuplicateFact' }));
    await closeKernel(kernel);
  });
});

describe('KernelPool: the …Async names, snapshotOf, containsPublished and their 0.1 names', () => {
  it('each old name answers exactly what its new name answers', async () => {
    const pool = await KernelPool.create({ shards: 2, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 1024 });
    try {
      const batch = (from: number): FactBatch => FactBatch.from([0, 1, 2].map((i) => createFact([], u64le(BigInt(from + i)))));
      const a = await pool.admitBatchAsync(0, batch(1));
      const b = await pool.admitBatch(1, batch(1));
      expect(a.codes).toEqual(b.codes);
      expect(pool.snapshotOf(0)).toEqual(pool.stateOf(1));
      expect(pool.stateOf(0)).toEqual(pool.snapshotOf(0));
      const id = createFact([], u64le(1n)).id;
      expect(pool.containsPublished(0, id)).toBe(true);
      expect(pool.contains(1, id)).toBe(true);
      expect(pool.contains(0, new Uint8Array(32))).toBe(pool.containsPublished(0, new Uint8Array(32)));
      const [d0, d1] = [await pool.digestAsync(0), await pool.digest(1)];
      expect(toHex(d0.digest)).toBe(toHex(d1.digest));
      const reference = new Kernel(new GCounterInvariant(), { indexCapacity: 1024 });
      reference.admitBatch(batch(1));
      expect(toHex(d0.digest)).toBe(toHex(reference.digest()));

      // Two directories made alike (two checkpoints each), one compacted under each name.
      const dirs = [tmpDir(), tmpDir()];
      for (const dir of dirs) {
        const kernel = await open(dir);
        for (const n of [5, 6]) {
          kernel.admitRaw(createFact([], delta(n)).id, [], delta(n));
          await kernel.checkpoint();
        }
        await closeKernel(kernel);
      }
      expect(await pool.verifyLogAsync(dirs[0]!)).toEqual(await pool.verifyLog(dirs[0]!));
      const [c0, c1] = [await pool.compactLogAsync(dirs[0]!, 1), await pool.compactLog(dirs[1]!, 1)];
      expect(c0.deletedCheckpoints).toHaveLength(1);
      expect(c1.deletedCheckpoints.map((f) => f.split(/[\\/]/).at(-1))).toEqual(c0.deletedCheckpoints.map((f) => f.split(/[\\/]/).at(-1)));
    } finally {
      await pool.close();
    }
  });
});
