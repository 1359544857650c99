/**
 * KernelPool with real piscina threads: create() validation, built-in and custom invariant specs
 * (test/fixtures/pool-invariant.mjs), admitBatch codes against single-threaded reference kernels,
 * per-shard FIFO order and coalescing, FactBatch sealing, Fact[] input, admitBatchSync (alone and
 * interleaved with pool batches), stateOf / digest / contains against reference kernels,
 * cross-shard dependencies and shared causality, routing, close() (drain, PoolClosed,
 * idempotence), verifyLog / compactLog on a real durable data directory, and a shard poisoned by a
 * pool thread that dies mid-batch.
 *
 * Pool threads run compiled JS, so this `threads` file gets the library (test/helpers/lib.ts) from
 * `dist/` too (built if missing or stale): errors rebuilt from pool results are of the classes the
 * tests check with `instanceof`. Pools are small (2 threads, 2^14 ids per shard) and
 * every pool a test creates is closed after it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AlgebraicClass,
  BoundedCounterState,
  BoundedGCounterInvariant,
  ConservationState,
  DurableKernel,
  FactBatch,
  GCounterInvariant,
  GCounterState,
  InvalidArgumentError,
  Kernel,
  KernelPool,
  PoolError,
  TotalSupplyInvariant,
  WalCorruptionError,
  routeKey,
  routeTenant,
  toHex,
  createFact,
  u64le,
  verifyLog,
  type BatchResult,
  type Fact,
  type Invariant,
  type KernelPoolOptions,
  SharedMemoryError,
} from './helpers/lib.js';
import { DIST_INDEX } from './helpers/dist.js';
import { expectCtfsError, rejectionOf, thrown } from './helpers/errors.js';
import { freshIdSource } from './helpers/ids.js';

// ------------------------------------------------------------------------------------------ setup

const FIXTURE_URL = new URL('./fixtures/pool-invariant.mjs', import.meta.url);
const INDEX_CAPACITY = 1 << 14;
const THREADS = 2;

/** What test/fixtures/pool-invariant.mjs exports (it is plain JS). */
interface FixtureModule {
  readonly CappedCounter: new (cap?: bigint | number) => Invariant;
  readonly cappedCounter: (cap: bigint | number) => Invariant;
  readonly OVER_CAP: number;
  readonly POISON_BYTE: number;
}
let fixture: FixtureModule;

beforeAll(async () => {
  fixture = (await import(FIXTURE_URL.href)) as FixtureModule;
}, 120_000);

const pools: KernelPool[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.close()));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A small pool (2 threads, 2^14 ids per shard), closed after the test. */
async function makePool(options: Partial<KernelPoolOptions> & Pick<KernelPoolOptions, 'invariant'>): Promise<KernelPool> {
  const pool = await KernelPool.create({ shards: 2, threads: THREADS, indexCapacity: INDEX_CAPACITY, ...options });
  pools.push(pool);
  return pool;
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-pool-'));
  dirs.push(dir);
  return dir;
}


// ------------------------------------------------------------------------------------------ facts

/** A fresh 32-byte id, never used before in this file (admission does not check content addresses). */
const freshId = freshIdSource(0x9c);

function fact(payload: Uint8Array, deps: readonly Uint8Array[] = []): Fact {
  return { id: freshId(), deps: [...deps], payload };
}

/** u64 LE payload (GCounter, BoundedGCounter, the fixture's CappedCounter). */
function u64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

const gc = (n: number, deps: readonly Uint8Array[] = []): Fact => fact(u64(n), deps);
const supply = (delta: number, deps: readonly Uint8Array[] = []): Fact => fact(TotalSupplyInvariant.payload(BigInt(delta)), deps);

/** A chain of `n` GCounter facts (+1 each), the first depending on `after` (if given). */
function chain(n: number, after?: Uint8Array): Fact[] {
  const out: Fact[] = [];
  let prev = after;
  for (let i = 0; i < n; i++) {
    const f = gc(1 + (i % 3), prev === undefined ? [] : [prev]);
    out.push(f);
    prev = f.id;
  }
  return out;
}

const codesOf = (result: BatchResult): number[] => [...result.codes];

// ------------------------------------------------------------------------------------------ references

function reference(invariant: Invariant, cell?: Uint8Array): Kernel {
  return cell === undefined ? new Kernel(invariant, { indexCapacity: INDEX_CAPACITY }) : Kernel.withState(invariant, cell, { indexCapacity: INDEX_CAPACITY });
}

function refAdmit(kernel: Kernel, facts: readonly Fact[]): BatchResult {
  return kernel.admitBatch(FactBatch.from(facts));
}

interface Look {
  readonly state: string;
  readonly size: number;
  readonly clock: string;
  readonly frontier: string[];
}

/** A shard as the pool publishes it. */
function lookShard(pool: KernelPool, shard: number): Look {
  const s = pool.stateOf(shard);
  return { state: toHex(s.state.toBytes()), size: s.size, clock: toHex(s.clock.toBytes()), frontier: s.frontier.map((id) => toHex(id)) };
}

/** A single-threaded reference kernel, read as its writer. */
function lookKernel(k: Kernel): Look {
  return { state: toHex(k.state.toBytes()), size: k.size, clock: toHex(k.clock.toBytes()), frontier: k.frontier().map((id) => toHex(id)) };
}

/** The shard's history digest equals the reference kernel's. */
async function expectSameDigest(pool: KernelPool, shard: number, ref: Kernel): Promise<void> {
  const { digest, size } = await pool.digest(shard);
  expect(size).toBe(ref.size);
  expect(toHex(digest)).toBe(toHex(ref.digest()));
}

const counterOf = (pool: KernelPool, shard: number): bigint => GCounterState.fromCell(pool.stateOf(shard).state).count;

// ================================================================================== create()

describe('KernelPool.create', () => {
  const GC = { builtin: 'GCounter' } as const;

  it('rejects bad shards, threads, maxBatchesPerTask and options with InvalidArgument', async () => {
    const bad: unknown[] = [
      null,
      'options',
      { invariant: GC },
      { shards: 0, invariant: GC },
      { shards: -1, invariant: GC },
      { shards: 1.5, invariant: GC },
      { shards: '2', invariant: GC },
      { shards: 4097, invariant: GC },
      { shards: Number.NaN, invariant: GC },
      { shards: 2, threads: 0, invariant: GC },
      { shards: 2, threads: 257, invariant: GC },
      { shards: 2, threads: 1.5, invariant: GC },
      { shards: 2, threads: '2', invariant: GC },
      { shards: 2, threads: 1, maxBatchesPerTask: 0, invariant: GC },
      { shards: 2, threads: 1, maxBatchesPerTask: 2.5, invariant: GC },
      { shards: 2, threads: 1, indexCapacity: 0, invariant: GC },
      { shards: 2, threads: 1, initialState: new Uint8Array(10), invariant: GC },
      { shards: 3, threads: 1, shareCausality: 'all', invariant: GC },
      { shards: 3, threads: 1, shareCausality: [[0]], invariant: GC },
      { shards: 3, threads: 1, shareCausality: [[0, 3]], invariant: GC },
      { shards: 3, threads: 1, shareCausality: [[0, -1]], invariant: GC },
      { shards: 3, threads: 1, shareCausality: [[0, 1.5]], invariant: GC },
      { shards: 3, threads: 1, shareCausality: [0, 1], invariant: GC },
    ];
    for (const options of bad) {
      const error = await rejectionOf(KernelPool.create(options as KernelPoolOptions));
      expectCtfsError(error, InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('rejects bad invariant specs with InvalidArgument', async () => {
    const missing = new URL('./fixtures/no-such-invariant.mjs', import.meta.url);
    const bad: unknown[] = [
      undefined,
      null,
      'GCounter',
      {},
      { builtin: 'NoSuchInvariant' },
      { builtin: 'toString' },
      { builtin: 7 },
      { builtin: 'GCounter', args: 'not an array' },
      { module: 42 },
      { module: missing },
      { module: FIXTURE_URL, export: 'noSuchExport' },
      { module: FIXTURE_URL, export: 'notAFunction' },
      { module: FIXTURE_URL, export: 'notAnInvariant' },
      { module: FIXTURE_URL, export: 5 },
    ];
    for (const invariant of bad) {
      const error = await rejectionOf(KernelPool.create({ shards: 2, threads: 1, invariant: invariant as KernelPoolOptions['invariant'] }));
      expectCtfsError(error, InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('refuses durable shards with PoolError DurableShardsUnsupported', async () => {
    for (const durable of [{ dir: '/tmp/x' }, true, 'dir']) {
      const error = await rejectionOf(KernelPool.create({ shards: 2, threads: 1, invariant: GC, durable }));
      expectCtfsError(error, PoolError, 'DurableShardsUnsupported');
    }
  });

  it('rejects invariant args that cannot reach the pool threads with InvalidArgument', async () => {
    // The spec says args must survive structured cloning; a function or symbol cannot. (GCounter
    // ignores its args, so building it in this thread succeeds; only the hand-over can fail.)
    for (const args of [[() => 1], [Symbol('cap')]]) {
      const error = await rejectionOf(KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter', args } }));
      expectCtfsError(error, InvalidArgumentError, 'InvalidArgument');
    }
  });

  it('builds the invariant in this thread and reports its shape', async () => {
    const pool = await makePool({ shards: 3, invariant: { builtin: 'BoundedGCounter' } });
    expect(pool.shardCount).toBe(3);
    expect(pool.threads).toBe(THREADS);
    expect(pool.invariant).toBeInstanceOf(BoundedGCounterInvariant);
    for (let s = 0; s < 3; s++) {
      const snap = pool.stateOf(s);
      expect(snap.size).toBe(0);
      // The invariant's own initial state: value 0, capacity 2^64 − 1.
      expect(toHex(snap.state.toBytes())).toBe(toHex(new BoundedGCounterInvariant().initialState()));
      expect(pool.isPoisoned(s)).toBe(false);
    }
  });
});

// ================================================================================== invariant specs

describe('invariant specs', () => {
  it('built-ins enforce the same rules as single-threaded kernels (GCounter, BoundedGCounter, TotalSupply)', async () => {
    const cases: { name: 'GCounter' | 'BoundedGCounter' | 'TotalSupply'; make: () => Invariant; cell?: Uint8Array; facts: () => Fact[] }[] = [
      {
        name: 'GCounter',
        make: () => new GCounterInvariant(),
        facts: () => {
          const a = gc(5);
          return [a, gc(7, [a.id]), fact(new Uint8Array(4)), a, gc(1, [freshId()])];
        },
      },
      {
        name: 'BoundedGCounter',
        make: () => new BoundedGCounterInvariant(),
        cell: new BoundedCounterState(0n, 20n).toBytes(),
        facts: () => [gc(15), gc(6), gc(5), gc(1), fact(new Uint8Array(3))],
      },
      {
        name: 'TotalSupply',
        make: () => new TotalSupplyInvariant(),
        cell: new ConservationState(100n, 0n, 1000n).toBytes(),
        facts: () => [supply(-50), supply(-60), supply(900), supply(100), supply(-950), fact(new Uint8Array(8))],
      },
    ];
    for (const c of cases) {
      const pool = await makePool({ shards: 1, invariant: { builtin: c.name }, initialState: c.cell });
      const ref = reference(c.make(), c.cell);
      const facts = c.facts();
      const got = await pool.admitBatch(0, facts);
      const want = refAdmit(ref, facts);
      expect(codesOf(got), c.name).toEqual(codesOf(want));
      expect(got.admitted, c.name).toBe(want.admitted);
      expect(lookShard(pool, 0), c.name).toEqual(lookKernel(ref));
    }
  });

  it('a custom class from a module gets its args in every thread', async () => {
    // cap 10: the pool's threads must build CappedCounter(10), not the default cap of 1000.
    const pool = await makePool({ shards: 2, invariant: { module: FIXTURE_URL, export: 'CappedCounter', args: [10n] } });
    expect(pool.invariant).toBeInstanceOf(fixture.CappedCounter);
    expect(pool.invariant.algebraicClass).toBe(AlgebraicClass.BoundedCommutative);
    const facts = [gc(4), gc(4), gc(3), gc(2), fact(new Uint8Array(9)), gc(1)];
    // Both threads run tasks: admit the same facts into both shards.
    const [r0, r1] = await Promise.all([pool.admitBatch(0, facts), pool.admitBatch(1, facts)]);
    const want = refAdmit(reference(new fixture.CappedCounter(10n)), facts);
    expect(codesOf(want)).toEqual([0, 0, AdmitCode.InvariantViolation, 0, AdmitCode.MalformedFact, AdmitCode.InvariantViolation]);
    expect(codesOf(r0)).toEqual(codesOf(want));
    expect(codesOf(r1)).toEqual(codesOf(want));
    expect(r0.admitted).toBe(3);
    expect(pool.stateOf(0).state.toBytes().subarray(0, 8)).toEqual(u64(10));
    expect(pool.stateOf(1).state.toBytes().subarray(0, 8)).toEqual(u64(10));
  });

  it('a factory export and a default export (module given as a string) work too', async () => {
    const byFactory = await makePool({ shards: 1, threads: 1, invariant: { module: FIXTURE_URL.href, export: 'cappedCounter', args: [5] } });
    const byDefault = await makePool({ shards: 1, threads: 1, invariant: { module: FIXTURE_URL.href, args: [7] } });
    expect(byFactory.invariant).toBeInstanceOf(fixture.CappedCounter);
    expect(byDefault.invariant).toBeInstanceOf(fixture.CappedCounter);
    const facts = [gc(3), gc(3), gc(1), gc(1)];
    expect(codesOf(await byFactory.admitBatch(0, facts))).toEqual([0, AdmitCode.InvariantViolation, 0, 0]);
    expect(codesOf(await byDefault.admitBatch(0, facts))).toEqual([0, 0, 0, AdmitCode.InvariantViolation]);
  });
});

// ================================================================================== admitBatch

describe('admitBatch', () => {
  it('resolves one exact code per fact and the admitted count (BoundedGCounter)', async () => {
    const cell = new BoundedCounterState(0n, 10n).toBytes();
    const pool = await makePool({ invariant: { builtin: 'BoundedGCounter' }, initialState: cell });
    const a = gc(4);
    const b = gc(4, [a.id]);
    const facts = [
      a, // 4
      b, // 8
      gc(4, [b.id]), // 12 > 10: InvariantViolation
      gc(2), // 10
      a, // Duplicate
      gc(0, [freshId()]), // dep admitted nowhere: CausalityViolation
      fact(new Uint8Array(3)), // payload too short: MalformedFact
      gc(1), // 11 > 10: InvariantViolation
      gc(0, [a.id, b.id]), // +0 on two admitted deps
    ];
    const result = await pool.admitBatch(0, facts);
    expect(codesOf(result)).toEqual([
      AdmitCode.Ok,
      AdmitCode.Ok,
      AdmitCode.InvariantViolation,
      AdmitCode.Ok,
      AdmitCode.DuplicateFact,
      AdmitCode.CausalityViolation,
      AdmitCode.MalformedFact,
      AdmitCode.InvariantViolation,
      AdmitCode.Ok,
    ]);
    expect(result.admitted).toBe(4);
    expect(BoundedCounterState.fromCell(pool.stateOf(0).state)).toEqual(new BoundedCounterState(10n, 10n));
    const ref = reference(new BoundedGCounterInvariant(), cell);
    expect(codesOf(refAdmit(ref, facts))).toEqual(codesOf(result));
    expect(lookShard(pool, 0)).toEqual(lookKernel(ref));
    // The other shard saw none of it.
    expect(pool.stateOf(1).size).toBe(0);
    expect(BoundedCounterState.fromCell(pool.stateOf(1).state)).toEqual(new BoundedCounterState(0n, 10n));
  });

  it('takes a per-shard initialState function and TotalSupply bounds', async () => {
    const cells = [new ConservationState(100n, 0n, 1000n).toBytes(), new ConservationState(0n, -10n, 10n).toBytes()];
    const pool = await makePool({ invariant: { builtin: 'TotalSupply' }, initialState: (s) => cells[s]! });
    const facts = [supply(-50), supply(-60), supply(900), supply(100), supply(5), fact(new Uint8Array(15))];
    const [r0, r1] = await Promise.all([pool.admitBatch(0, facts), pool.admitBatch(1, facts)]);
    // Shard 0, balance 100 in [0, 1000]: 50, refused (−10), 950, refused (1050), 955, malformed.
    expect(codesOf(r0)).toEqual([0, AdmitCode.InvariantViolation, 0, AdmitCode.InvariantViolation, 0, AdmitCode.MalformedFact]);
    // Shard 1, balance 0 in [−10, 10]: refused, refused, refused, refused, 5, malformed.
    expect(codesOf(r1)).toEqual([2, 2, 2, 2, 0, 3]);
    expect(ConservationState.fromCell(pool.stateOf(0).state).balance).toBe(955n);
    expect(ConservationState.fromCell(pool.stateOf(1).state).balance).toBe(5n);
    for (let s = 0; s < 2; s++) {
      const ref = reference(new TotalSupplyInvariant(), cells[s]);
      refAdmit(ref, facts);
      expect(lookShard(pool, s)).toEqual(lookKernel(ref));
    }
  });

  it('honours each shard\'s index capacity (CausalHorizonExceeded)', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' }, indexCapacity: 3 });
    const facts = [gc(1), gc(1), gc(1), gc(1), gc(1)];
    const ref = new Kernel(new GCounterInvariant(), { indexCapacity: 3 });
    const got = await pool.admitBatch(0, facts);
    expect(codesOf(got)).toEqual([0, 0, 0, AdmitCode.CausalHorizonExceeded, AdmitCode.CausalHorizonExceeded]);
    expect(codesOf(got)).toEqual(codesOf(refAdmit(ref, facts)));
    expect(counterOf(pool, 0)).toBe(3n);
    // The other shard has its own capacity.
    expect((await pool.admitBatch(1, facts.slice(0, 3))).admitted).toBe(3);
  });

  it('takes a Fact[] exactly like a FactBatch, and rejects bad input without throwing', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const a = gc(1);
    const asArray = [a, gc(2, [a.id]), a, gc(3, [freshId()])];
    const b = gc(1);
    const asBatch = FactBatch.from([b, gc(2, [b.id]), b, gc(3, [freshId()])]);
    const r0 = await pool.admitBatch(0, asArray);
    const r1 = await pool.admitBatch(1, asBatch);
    expect(codesOf(r0)).toEqual([0, 0, AdmitCode.DuplicateFact, AdmitCode.CausalityViolation]);
    expect(codesOf(r1)).toEqual(codesOf(r0));
    expect(r0.admitted).toBe(2);
    expect(r1.admitted).toBe(2);
    expect(counterOf(pool, 0)).toBe(3n);
    expect(counterOf(pool, 1)).toBe(3n);

    // An empty batch is fine.
    const empty = await pool.admitBatch(0, []);
    expect(codesOf(empty)).toEqual([]);
    expect(empty.admitted).toBe(0);

    // A fact of the wrong shape is a rejected fact: a code, like any other.
    const badShape = { id: new Uint8Array(31), deps: [], payload: u64(1) } as Fact;
    const shaped = await pool.admitBatch(0, [badShape, null as unknown as Fact, { id: freshId(), deps: [], payload: new Uint8Array(65_537) } as Fact]);
    expect(codesOf(shaped)).toEqual([AdmitCode.MalformedFact, AdmitCode.MalformedFact, AdmitCode.PayloadTooLarge]);
    expect(shaped.admitted).toBe(0);

    // Misuse is a rejected promise, never a synchronous throw.
    for (const [shard, facts] of [
      [2, [gc(1)]],
      [-1, [gc(1)]],
      [0.5, [gc(1)]],
      [Number.NaN, [gc(1)]],
    ] as const) {
      let promise: Promise<BatchResult> | undefined;
      expect(() => {
        promise = pool.admitBatch(shard, facts);
      }).not.toThrow();
      expectCtfsError(await rejectionOf(promise!), InvalidArgumentError, 'InvalidArgument');
    }
    expect(pool.stateOf(0).size).toBe(2);
  });

  it('seals a FactBatch while it is in flight; it is reusable afterwards and results are copies', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const batch = new FactBatch(4);
    const first = [gc(1), gc(2), gc(3)];
    for (const f of first) batch.push(f);
    expect(batch.inFlight).toBe(false);
    const pending = pool.admitBatch(0, batch);
    expect(batch.inFlight).toBe(true);
    expectCtfsError(thrown(() => batch.push(gc(9))), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(thrown(() => batch.pushRaw(freshId(), [], u64(9))), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(thrown(() => batch.clear()), InvalidArgumentError, 'InvalidArgument');
    // Nor can it be admitted twice at once, here or on another shard, or by any kernel.
    expectCtfsError(await rejectionOf(pool.admitBatch(1, batch)), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(thrown(() => pool.admitBatchSync(1, batch)), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(thrown(() => new Kernel(new GCounterInvariant()).admitBatch(batch)), InvalidArgumentError, 'InvalidArgument');
    expect(batch.length).toBe(3);

    const r1 = await pending;
    expect(batch.inFlight).toBe(false);
    expect(codesOf(r1)).toEqual([0, 0, 0]);
    expect(r1.admitted).toBe(3);

    // Reuse: the same batch with other facts, including a duplicate of the first run.
    batch.clear();
    batch.push(first[0]!).push(gc(10)).push(fact(new Uint8Array(2)));
    const r2 = await pool.admitBatch(0, batch);
    expect(codesOf(r2)).toEqual([AdmitCode.DuplicateFact, 0, AdmitCode.MalformedFact]);
    expect(r2.admitted).toBe(1);
    // The first result is a copy: the second admission did not overwrite it.
    expect(codesOf(r1)).toEqual([0, 0, 0]);
    expect(counterOf(pool, 0)).toBe(16n);
    expect(pool.stateOf(1).size).toBe(0);
    // And a batch that was refused (in flight) was never admitted anywhere else.
    expect(pool.contains(1, first[0]!.id)).toBe(false);
  });

  it('keeps per-shard FIFO order: a batch depending on an earlier, unawaited batch of its shard is admitted', async () => {
    const shards = 3;
    const pool = await makePool({ shards, invariant: { builtin: 'GCounter' } });
    const refs = Array.from({ length: shards }, () => reference(new GCounterInvariant()));
    const tails: (Uint8Array | undefined)[] = new Array(shards).fill(undefined);
    const pending: { shard: number; promise: Promise<BatchResult>; n: number }[] = [];
    // 40 rounds, round-robin over the shards, nothing awaited: each batch's first fact depends
    // on the previous batch's last fact in the same shard.
    for (let round = 0; round < 40; round++) {
      for (let s = 0; s < shards; s++) {
        const facts = chain(1 + ((round + s) % 5), tails[s]);
        tails[s] = facts[facts.length - 1]!.id;
        expect(codesOf(refAdmit(refs[s]!, facts)).every((c) => c === 0)).toBe(true);
        pending.push({ shard: s, promise: pool.admitBatch(s, facts), n: facts.length });
      }
    }
    const results = await Promise.all(pending.map((p) => p.promise));
    results.forEach((r, i) => {
      expect(codesOf(r), `batch ${i}`).toEqual(new Array(pending[i]!.n).fill(0));
      expect(r.admitted).toBe(pending[i]!.n);
    });
    for (let s = 0; s < shards; s++) {
      expect(lookShard(pool, s)).toEqual(lookKernel(refs[s]!));
      // Admission order is the reference's, fact for fact.
      await expectSameDigest(pool, s, refs[s]!);
    }
  });

  it('coalesces queued batches into few tasks, each batch still getting its own codes', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' }, maxBatchesPerTask: 16 });
    const ref = reference(new GCounterInvariant());
    const seen: Fact[] = [];
    const pending: { promise: Promise<BatchResult>; want: number[] }[] = [];
    // 161 single-fact batches at once: every 10th repeats an earlier fact (DuplicateFact), every
    // 7th depends on the previous batch's fact (admitted only if order holds).
    for (let i = 0; i < 161; i++) {
      let f: Fact;
      if (i > 0 && i % 10 === 0) f = seen[i - 5]!;
      else if (i > 0 && i % 7 === 0) f = gc(1, [seen[i - 1]!.id]);
      else f = gc(i % 4);
      seen.push(f);
      pending.push({ promise: pool.admitBatch(0, [f]), want: codesOf(refAdmit(ref, [f])) });
    }
    expect(pending.filter((p) => p.want[0] === AdmitCode.DuplicateFact)).toHaveLength(16);
    for (const [i, { promise, want }] of pending.entries()) {
      const r = await promise;
      expect(codesOf(r), `batch ${i}`).toEqual(want);
      expect(r.admitted).toBe(want[0] === 0 ? 1 : 0);
    }
    expect(lookShard(pool, 0)).toEqual(lookKernel(ref));
    await expectSameDigest(pool, 0, ref);
    // The first batch ran alone; the 160 queued behind it went in tasks of 16: 11 lock holds.
    expect(pool.lockStats(0).acquired).toBe(1 + 160 / 16 + 1); // + the digest's
  });

  it('coalesced batches settle by their own outcome: one that fails does not take the others with it', async () => {
    const pool = await makePool({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' } });
    const a = gc(1);
    const c = gc(3, [a.id]);
    const broken = FactBatch.from([gc(2)]);
    // Buffers that do not hold what the batch claims: the pool thread refuses this batch alone.
    const real = (broken as unknown as { shared: { codes: SharedArrayBuffer } }).shared;
    Object.defineProperty(broken, 'shared', { get: () => ({ ...real, count: real.codes.byteLength + 1 }) });
    const acquired = pool.lockStats(0).acquired;
    // Submitted in one turn: they leave as one task.
    const settled = await Promise.allSettled([pool.admitBatch(0, [a]), pool.admitBatch(0, broken), pool.admitBatch(0, [c])]);
    expect(pool.lockStats(0).acquired - acquired).toBe(1);
    expect(settled[0]).toMatchObject({ status: 'fulfilled', value: { admitted: 1 } });
    expect(settled[2]).toMatchObject({ status: 'fulfilled', value: { admitted: 1 } });
    expect(codesOf((settled[2] as PromiseFulfilledResult<BatchResult>).value)).toEqual([AdmitCode.Ok]);
    expect(settled[1]!.status).toBe('rejected');
    expectCtfsError((settled[1] as PromiseRejectedResult).reason, SharedMemoryError, 'InvalidSharedMemory');
    expect(pool.stateOf(0).size).toBe(2);
    expect(counterOf(pool, 0)).toBe(4n);
    // The failed batch is released like the others, and the shard goes on.
    expect(broken.inFlight).toBe(false);
    expect((await pool.admitBatch(0, [gc(5)])).admitted).toBe(1);
  });

  it('does not coalesce past the per-task fact limit', async () => {
    const pool = await makePool({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 1 << 15 });
    const big = (n: number): FactBatch => {
      const b = new FactBatch(n, n * 52);
      for (let i = 0; i < n; i++) b.pushRaw(freshId(), [], u64(1));
      return b;
    };
    const first = pool.admitBatch(0, [gc(1)]);
    const second = pool.admitBatch(0, big(10_000));
    const third = pool.admitBatch(0, big(10_000));
    const [r1, r2, r3] = await Promise.all([first, second, third]);
    expect(r1.admitted + r2.admitted + r3.admitted).toBe(20_001);
    expect(counterOf(pool, 0)).toBe(20_001n);
    // Submitted in one turn, the three leave together as far as the 16,384 facts one task may
    // carry allow: 1 + 10,000 in the first task; the next 10,000 would pass the limit: a second.
    expect(pool.lockStats(0).acquired).toBe(2);
  });

  it('many small batches over several shards, submitted at once, match reference kernels', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ shard: fc.nat(2), size: fc.integer({ min: 0, max: 6 }), dup: fc.boolean(), orphan: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        async (plan) => {
          const pool = await KernelPool.create({ shards: 3, threads: THREADS, indexCapacity: 1 << 12, invariant: { builtin: 'BoundedGCounter' }, initialState: new BoundedCounterState(0n, 150n).toBytes() });
          try {
            const refs = Array.from({ length: 3 }, () => reference(new BoundedGCounterInvariant(), new BoundedCounterState(0n, 150n).toBytes()));
            const last: (Fact | undefined)[] = [undefined, undefined, undefined];
            const pending: { promise: Promise<BatchResult>; want: BatchResult }[] = [];
            let made = 0;
            for (const step of plan) {
              const facts: Fact[] = [];
              for (let i = 0; i < step.size; i++) {
                const prev = last[step.shard];
                const f = gc(1 + (made++ % 9), prev === undefined ? [] : [prev.id]);
                facts.push(f);
                last[step.shard] = f;
              }
              if (step.dup && last[step.shard] !== undefined) facts.push(last[step.shard]!);
              if (step.orphan) facts.push(gc(1, [freshId()]));
              pending.push({ promise: pool.admitBatch(step.shard, facts), want: refAdmit(refs[step.shard]!, facts) });
            }
            for (const { promise, want } of pending) {
              const got = await promise;
              expect(codesOf(got)).toEqual(codesOf(want));
              expect(got.admitted).toBe(want.admitted);
            }
            for (let s = 0; s < 3; s++) expect(lookShard(pool, s)).toEqual(lookKernel(refs[s]!));
          } finally {
            await pool.close();
          }
        },
      ),
      // Every run starts a pool: report the first failure as is instead of shrinking through more.
      { numRuns: 8, endOnFailure: true },
    );
  });
});

// ================================================================================== reads

describe('stateOf, digest and contains', () => {
  it('shards whose hot tables freeze in pool threads (compacted there) stay exact: old facts are duplicates, the digest is a reference kernel\'s', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' }, indexCapacity: undefined, historyHotCapacity: 256 });
    const ref = new Kernel(new GCounterInvariant(), { historyHotCapacity: 4096 });
    const all: Fact[] = [];
    let anchor: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      const facts = Array.from({ length: 500 }, (_, i) => {
        const f = createFact(i % 50 === 0 ? anchor : [], u64le(BigInt(round * 1_000 + i + 1)));
        if (i % 50 === 0) anchor = [f.id];
        return f;
      });
      const got = await pool.admitBatch(0, facts);
      expect(got.admitted).toBe(facts.length);
      refAdmit(ref, facts);
      all.push(...facts);
    }
    // 10,000 facts in tables of 256: dozens of freezes, runs built and merged off the admitting threads.
    const again = await pool.admitBatch(0, all.filter((_, i) => i % 37 === 0));
    expect(again.admitted).toBe(0);
    expect(new Set(codesOf(again))).toEqual(new Set([AdmitCode.DuplicateFact]));
    const onOld = [createFact([all[3]!.id], u64le(7n)), createFact([all[5_000]!.id, all[9_999]!.id], u64le(8n))];
    expect((await pool.admitBatch(0, onOld)).admitted).toBe(2);
    refAdmit(ref, onOld);
    await expectSameDigest(pool, 0, ref);
  }, 60_000);

  it('stateOf and digest equal a reference kernel after the same batches; publication advances', async () => {
    const pool = await makePool({ invariant: { builtin: 'TotalSupply' }, initialState: new ConservationState(0n, -100n, 100n).toBytes() });
    const ref = reference(new TotalSupplyInvariant(), new ConservationState(0n, -100n, 100n).toBytes());
    const empty = reference(new TotalSupplyInvariant(), new ConservationState(0n, -100n, 100n).toBytes());
    await expectSameDigest(pool, 1, empty);
    const before = pool.stateOf(0).publication;
    let anchor: Uint8Array | undefined;
    let rejected = 0;
    for (let round = 0; round < 6; round++) {
      // Every fact of a round depends on the last fact admitted before it; deltas hit the bounds
      // now and then (a rejection must change nothing).
      const facts = Array.from({ length: 12 }, (_, i) => supply(((round * 12 + i) % 9) * 11 - 40 + (round % 2 === 0 ? 25 : -25), anchor === undefined ? [] : [anchor]));
      const got = await pool.admitBatch(0, facts);
      const want = refAdmit(ref, facts);
      expect(codesOf(got)).toEqual(codesOf(want));
      expect(got.admitted).toBe(want.admitted);
      rejected += facts.length - want.admitted;
      anchor = facts.filter((_, i) => want.codes[i] === 0).at(-1)?.id ?? anchor;
      expect(lookShard(pool, 0)).toEqual(lookKernel(ref));
    }
    // The walk did hit the bounds, and most facts were admitted.
    expect(rejected).toBeGreaterThan(0);
    expect(ref.size).toBeGreaterThan(36);
    expect(pool.stateOf(0).publication).toBeGreaterThan(before);
    expect(pool.stateOf(0).saturation).toBeCloseTo(ref.saturation, 12);
    await expectSameDigest(pool, 0, ref);
    // The untouched shard still digests like an empty kernel, and differs from shard 0.
    await expectSameDigest(pool, 1, empty);
    expect(toHex((await pool.digest(1)).digest)).not.toBe(toHex(ref.digest()));
  });

  it('digest waits for the batches submitted before it (FIFO with admission)', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const ref = reference(new GCounterInvariant());
    const facts = chain(50);
    refAdmit(ref, facts);
    const admitted = pool.admitBatch(0, facts.slice(0, 25));
    const rest = pool.admitBatch(0, facts.slice(25));
    const digest = pool.digest(0);
    const [, , d] = await Promise.all([admitted, rest, digest]);
    expect(d.size).toBe(50);
    expect(toHex(d.digest)).toBe(toHex(ref.digest()));
  });

  it('contains() answers for published facts of that shard only', async () => {
    const pool = await makePool({ invariant: { builtin: 'BoundedGCounter' }, initialState: new BoundedCounterState(0n, 5n).toBytes() });
    const ok = gc(3);
    const refused = gc(9);
    const malformed = fact(new Uint8Array(1));
    await pool.admitBatch(0, [ok, refused, malformed]);
    expect(pool.contains(0, ok.id)).toBe(true);
    expect(pool.contains(0, refused.id)).toBe(false);
    expect(pool.contains(0, malformed.id)).toBe(false);
    expect(pool.contains(0, freshId())).toBe(false);
    expect(pool.contains(1, ok.id)).toBe(false);
    const synced = gc(1);
    pool.admitBatchSync(1, [synced]);
    expect(pool.contains(1, synced.id)).toBe(true);
    expect(pool.contains(0, synced.id)).toBe(false);
    for (const bad of [2, -1, 1.5]) {
      expectCtfsError(thrown(() => pool.contains(bad, ok.id)), InvalidArgumentError, 'InvalidArgument');
      expectCtfsError(thrown(() => pool.stateOf(bad)), InvalidArgumentError, 'InvalidArgument');
      expectCtfsError(thrown(() => pool.lockStats(bad)), InvalidArgumentError, 'InvalidArgument');
      expectCtfsError(await rejectionOf(pool.digest(bad)), InvalidArgumentError, 'InvalidArgument');
    }
  });
});

// ================================================================================== admitBatchSync

describe('admitBatchSync', () => {
  it('returns the same codes as a single-threaded Kernel, and publishes at once', async () => {
    const cell = new BoundedCounterState(0n, 12n).toBytes();
    const pool = await makePool({ invariant: { builtin: 'BoundedGCounter' }, initialState: cell });
    const ref = reference(new BoundedGCounterInvariant(), cell);
    const a = gc(5);
    const facts = [a, gc(5, [a.id]), gc(5), a, gc(1, [freshId()]), fact(new Uint8Array(7)), gc(2), gc(1)];
    const got = pool.admitBatchSync(0, facts);
    const want = refAdmit(ref, facts);
    expect(codesOf(got)).toEqual([0, 0, AdmitCode.InvariantViolation, AdmitCode.DuplicateFact, AdmitCode.CausalityViolation, AdmitCode.MalformedFact, 0, AdmitCode.InvariantViolation]);
    expect(codesOf(got)).toEqual(codesOf(want));
    expect(got.admitted).toBe(3);
    // No await: the publication is visible right away.
    expect(lookShard(pool, 0)).toEqual(lookKernel(ref));
    expect(pool.contains(0, a.id)).toBe(true);
    await expectSameDigest(pool, 0, ref);
    // A FactBatch is read in place and left usable; its codes are a copy.
    const batch = FactBatch.from([gc(0, [a.id])]);
    const r = pool.admitBatchSync(0, batch);
    expect(codesOf(r)).toEqual([0]);
    expect(batch.inFlight).toBe(false);
    batch.clear();
    expect(codesOf(r)).toEqual([0]);
  });

  it('interleaves with pool batches of the same shard: sequenced, then concurrent', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const ref = reference(new GCounterInvariant());
    // Sequenced: async → sync (depending on it) → async (depending on that) → sync duplicate.
    const a = chain(4);
    const b = chain(3, a[3]!.id);
    const c = chain(5, b[2]!.id);
    const d = [a[0]!, gc(1, [c[4]!.id])];
    const steps: { facts: Fact[]; sync: boolean }[] = [
      { facts: a, sync: false },
      { facts: b, sync: true },
      { facts: c, sync: false },
      { facts: d, sync: true },
    ];
    for (const { facts, sync } of steps) {
      const got = sync ? pool.admitBatchSync(0, facts) : await pool.admitBatch(0, facts);
      expect(codesOf(got)).toEqual(codesOf(refAdmit(ref, facts)));
    }
    expect(lookShard(pool, 0)).toEqual(lookKernel(ref));
    await expectSameDigest(pool, 0, ref);

    // Concurrent: independent facts through both paths at once; a pool thread may hold the lock
    // while this thread waits. Order differs run to run, the sum and the set do not.
    const pending: Promise<BatchResult>[] = [];
    const all: Fact[] = [];
    let expected = counterOf(pool, 0);
    for (let i = 0; i < 30; i++) {
      const async = Array.from({ length: 200 }, (_, j) => gc(1 + (j % 3)));
      const sync = Array.from({ length: 5 }, () => gc(10));
      all.push(...async, ...sync);
      for (const f of [...async, ...sync]) expected += BigInt(new DataView(f.payload.buffer).getUint32(0, true));
      pending.push(pool.admitBatch(0, async));
      const r = pool.admitBatchSync(0, sync);
      expect(codesOf(r)).toEqual([0, 0, 0, 0, 0]);
      expect(r.admitted).toBe(5);
    }
    for (const r of await Promise.all(pending)) expect(r.admitted).toBe(200);
    expect(counterOf(pool, 0)).toBe(expected);
    expect(pool.stateOf(0).size).toBe(ref.size + all.length);
    expect(all.every((f) => pool.contains(0, f.id))).toBe(true);
    expect(pool.stateOf(1).size).toBe(0);
  });

  it('rejects bad shards and misuse synchronously', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    for (const bad of [2, -1, 0.5]) expectCtfsError(thrown(() => pool.admitBatchSync(bad, [gc(1)])), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(thrown(() => pool.admitBatchSync(0, 'facts' as unknown as Fact[])), InvalidArgumentError, 'InvalidArgument');
    // A fact of the wrong shape is a code, as in admitBatch.
    expect(codesOf(pool.admitBatchSync(0, [{ id: freshId(), deps: [], payload: 'x' } as unknown as Fact]))).toEqual([AdmitCode.MalformedFact]);
    expect(pool.stateOf(0).size).toBe(0);
  });
});

// ================================================================================== cross-shard

describe('cross-shard dependencies', () => {
  it('a dep admitted in another shard → CrossShardDependency; admitted nowhere → CausalityViolation', async () => {
    const pool = await makePool({ shards: 3, invariant: { builtin: 'GCounter' } });
    const in0 = gc(1);
    const in2 = gc(1);
    await Promise.all([pool.admitBatch(0, [in0]), pool.admitBatch(2, [in2])]);
    const local = gc(1);
    const facts = [
      gc(1, [in0.id]), // shard 0's: 15
      gc(1, [freshId()]), // nowhere: 1
      local, // root: 0
      gc(1, [local.id]), // this shard's: 0
      gc(1, [local.id, in2.id]), // one local, one of shard 2: 15
      gc(1, [in2.id, local.id]), // 15 whichever position
    ];
    const want = [AdmitCode.CrossShardDependency, AdmitCode.CausalityViolation, 0, 0, AdmitCode.CrossShardDependency, AdmitCode.CrossShardDependency];
    expect(AdmitCode.CrossShardDependency).toBe(15);
    const got = await pool.admitBatch(1, facts);
    expect(codesOf(got)).toEqual(want);
    expect(got.admitted).toBe(2);
    // The same through admitBatchSync, with fresh facts.
    const local2 = gc(1);
    const sync = pool.admitBatchSync(1, [gc(1, [in0.id]), gc(1, [freshId()]), local2, gc(1, [local2.id]), gc(1, [local2.id, in2.id]), gc(1, [in2.id, local2.id])]);
    expect(codesOf(sync)).toEqual(want);
    expect(pool.stateOf(1).size).toBe(4);
    // Nothing leaked across: shard 0 and 2 still hold one fact each.
    expect(pool.stateOf(0).size).toBe(1);
    expect(pool.stateOf(2).size).toBe(1);
    // And the dep of its own shard is fine in shard 0.
    expect(codesOf(await pool.admitBatch(0, [gc(1, [in0.id])]))).toEqual([0]);
  });

  it('shareCausality [[0,1]]: shards 0 and 1 use each other’s published facts, shard 2 gets CrossShardDependency', async () => {
    const pool = await makePool({ shards: 3, invariant: { builtin: 'GCounter' }, shareCausality: [[0, 1]] });
    const in0 = gc(1);
    const in2 = gc(1);
    await Promise.all([pool.admitBatch(0, [in0]), pool.admitBatch(2, [in2])]);
    const in1 = gc(2, [in0.id]);
    const r1 = await pool.admitBatch(1, [in1, gc(1, [in2.id]), gc(1, [freshId()])]);
    expect(codesOf(r1)).toEqual([0, AdmitCode.CrossShardDependency, AdmitCode.CausalityViolation]);
    // Both directions: shard 0 on shard 1's fact.
    expect(codesOf(await pool.admitBatch(0, [gc(1, [in1.id])]))).toEqual([0]);
    // Shard 2 is outside the group.
    const r2 = await pool.admitBatch(2, [gc(1, [in0.id]), gc(1, [in1.id]), gc(1, [in2.id])]);
    expect(codesOf(r2)).toEqual([AdmitCode.CrossShardDependency, AdmitCode.CrossShardDependency, 0]);
    // The same rules in this thread.
    expect(codesOf(pool.admitBatchSync(1, [gc(1, [in0.id]), gc(1, [in2.id])]))).toEqual([0, AdmitCode.CrossShardDependency]);
    expect(codesOf(pool.admitBatchSync(2, [gc(1, [in0.id])]))).toEqual([AdmitCode.CrossShardDependency]);
    expect([0, 1, 2].map((s) => pool.stateOf(s).size)).toEqual([2, 2, 2]);
    expect([0, 1, 2].map((s) => counterOf(pool, s))).toEqual([2n, 3n, 2n]);
    // A foreign dep is satisfied but does not become a local fact.
    expect(pool.contains(1, in0.id)).toBe(false);
  });
});

// ================================================================================== routing

/** FNV-1a over bytes, MurmurHash3's finaliser, multiply-scaled (the documented routing). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
function routeBytesRef(bytes: ArrayLike<number>, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return Math.floor((fmix32(h) * shards) / 2 ** 32);
}
/** A string routes as its UTF-16 code units, low byte first. */
function utf16le(key: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < key.length; i++) out.push(key.charCodeAt(i) & 0xff, key.charCodeAt(i) >>> 8);
  return out;
}

describe('routing', () => {
  it('shardOf / shardOfTenant are deterministic, in range, and follow the documented hash', async () => {
    const pool = await makePool({ shards: 7, threads: 1, invariant: { builtin: 'GCounter' } });
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.nat(0xffffffff), (key, bytes, tenant) => {
        const s = pool.shardOf(key);
        expect(Number.isInteger(s) && s >= 0 && s < 7).toBe(true);
        expect(pool.shardOf(key)).toBe(s);
        expect(s).toBe(routeKey(key, 7));
        expect(s).toBe(routeBytesRef(utf16le(key), 7));
        expect(pool.shardOf(new Uint8Array(utf16le(key)))).toBe(s);
        const b = pool.shardOf(bytes);
        expect(b).toBe(routeBytesRef(bytes, 7));
        expect(b).toBe(routeKey(bytes, 7));
        const t = pool.shardOfTenant(tenant);
        expect(t).toBe(Math.floor((fmix32((tenant ^ 0x9e3779b9) | 0) * 7) / 2 ** 32));
        expect(t).toBe(routeTenant(tenant, 7));
        expect(pool.shardOfTenant(tenant)).toBe(t);
      }),
      { numRuns: 300 },
    );
    expect(pool.shardOfTenant(0xffffffff)).toBe(routeTenant(0xffffffff, 7));
    // A one-shard pool routes everything to 0.
    expect(routeKey('anything', 1)).toBe(0);
    expect(routeTenant(12345, 1)).toBe(0);
  });

  it('spreads keys and tenants roughly uniformly', async () => {
    const pool = await makePool({ shards: 8, threads: 1, invariant: { builtin: 'GCounter' } });
    const n = 16_000;
    const byKey = new Array<number>(8).fill(0);
    const byTenant = new Array<number>(8).fill(0);
    const byBytes = new Array<number>(8).fill(0);
    for (let i = 0; i < n; i++) {
      byKey[pool.shardOf(`account-${i}`)]!++;
      byTenant[pool.shardOfTenant(i)]!++;
      byBytes[pool.shardOf(new Uint8Array([i & 0xff, i >>> 8, 7]))]!++;
    }
    // Expected 2,000 each; a binomial standard deviation is ~42, so ±300 is > 7σ.
    for (const counts of [byKey, byTenant, byBytes]) {
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      for (const c of counts) expect(Math.abs(c - n / 8)).toBeLessThan(300);
    }
  });

  it('rejects invalid keys and tenants with InvalidArgument', async () => {
    const pool = await makePool({ shards: 4, threads: 1, invariant: { builtin: 'GCounter' } });
    for (const key of [42, null, undefined, {}, ['a']]) {
      expectCtfsError(thrown(() => pool.shardOf(key as unknown as string)), InvalidArgumentError, 'InvalidArgument');
    }
    for (const tenant of [-1, 1.5, 2 ** 32, Number.NaN, Infinity, '3']) {
      expectCtfsError(thrown(() => pool.shardOfTenant(tenant as number)), InvalidArgumentError, 'InvalidArgument');
    }
    for (const shards of [0, -2, 1.5]) {
      expectCtfsError(thrown(() => routeKey('k', shards)), InvalidArgumentError, 'InvalidArgument');
      expectCtfsError(thrown(() => routeTenant(1, shards)), InvalidArgumentError, 'InvalidArgument');
    }
  });
});

// ================================================================================== close

describe('close', () => {
  it('drains queued work, then refuses everything with PoolClosed; idempotent', async () => {
    const pool = await KernelPool.create({ shards: 2, threads: THREADS, indexCapacity: INDEX_CAPACITY, invariant: { builtin: 'GCounter' } });
    pools.push(pool);
    const refs = [reference(new GCounterInvariant()), reference(new GCounterInvariant())];
    const tails: (Uint8Array | undefined)[] = [undefined, undefined];
    const pending: { promise: Promise<BatchResult>; n: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const s = i % 2;
      const facts = chain(50, tails[s]);
      tails[s] = facts[49]!.id;
      refAdmit(refs[s]!, facts);
      pending.push({ promise: pool.admitBatch(s, facts), n: 50 });
    }
    const digest = pool.digest(1);
    const closing = pool.close();
    expect(pool.close()).toBe(closing);
    // Everything submitted before close settles, and correctly.
    for (const { promise, n } of pending) {
      const r = await promise;
      expect(r.admitted).toBe(n);
    }
    const d = await digest;
    expect(d.size).toBe(refs[1]!.size);
    expect(toHex(d.digest)).toBe(toHex(refs[1]!.digest()));
    await closing;
    await expect(pool.close()).resolves.toBeUndefined();
    // stateOf still reads the last publication from shared memory.
    expect(lookShard(pool, 0)).toEqual(lookKernel(refs[0]!));
    expect(lookShard(pool, 1)).toEqual(lookKernel(refs[1]!));
    // Everything else is refused.
    expectCtfsError(await rejectionOf(pool.admitBatch(0, [gc(1)])), PoolError, 'PoolClosed');
    expectCtfsError(thrown(() => pool.admitBatchSync(0, [gc(1)])), PoolError, 'PoolClosed');
    expectCtfsError(await rejectionOf(pool.digest(0)), PoolError, 'PoolClosed');
    expectCtfsError(await rejectionOf(pool.verifyLog(os.tmpdir())), PoolError, 'PoolClosed');
    expectCtfsError(await rejectionOf(pool.compactLog(os.tmpdir())), PoolError, 'PoolClosed');
    expect(pool.stateOf(0).size).toBe(1000);
  });

  it('refuses new work as soon as close() is called, before the drain ends', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const queued = pool.admitBatch(0, chain(100));
    const closing = pool.close();
    const batch = FactBatch.from([gc(1)]);
    expectCtfsError(await rejectionOf(pool.admitBatch(0, batch)), PoolError, 'PoolClosed');
    // A refused batch is not left sealed.
    expect(batch.inFlight).toBe(false);
    expect((await queued).admitted).toBe(100);
    await closing;
    expect(pool.stateOf(0).size).toBe(100);
  });

  it('closes an idle pool at once', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const started = Date.now();
    await pool.close();
    await pool.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

// ================================================================================== log tasks

/**
 * A closed data directory of TotalSupply facts with 200-byte memos in 4 KiB segments, flushed every
 * `flushEvery` facts, with checkpoints after facts 30 and 60 if asked for.
 */
async function durableDir(options: { checkpoints: boolean; facts: number; flushEvery: number }): Promise<{ dir: string; balance: bigint }> {
  const dir = tempDir();
  const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), {
    indexCapacity: 4096,
    arenaBytes: 1 << 18,
    segmentBytes: 4096,
    backend: 'portable',
    announce: false,
  });
  let balance = 0n;
  try {
    for (let i = 1; i <= options.facts; i++) {
      const delta = BigInt((i % 5) + 1);
      const code = kernel.tryAdmitRaw(freshId(), [], TotalSupplyInvariant.payload(delta, new Uint8Array(200)));
      expect(code).toBe(AdmitCode.Ok);
      balance += delta;
      if (i % options.flushEvery === 0) await kernel.flush();
      if (options.checkpoints && (i === 30 || i === 60)) await kernel.checkpoint();
    }
    await kernel.flush();
  } finally {
    await kernel.close();
  }
  return { dir, balance };
}

const walFiles = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('wal-')).sort();
const checkpointFiles = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('checkpoint-')).sort();

describe('verifyLog and compactLog', () => {
  it('verifyLog reports a real data directory exactly as verifyLog in this thread does', async () => {
    const { dir } = await durableDir({ checkpoints: true, facts: 80, flushEvery: 10 });
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const report = await pool.verifyLog(dir);
    expect(report).toEqual(verifyLog(dir));
    expect(report.checkpoints.map((c) => [c.sequence, c.problem])).toEqual([
      [60, undefined],
      [30, undefined],
    ]);
    expect(report.fromSequence).toBe(61);
    expect(report.lastSequence).toBe(80);
    expect(report.records).toBe(20);
    // 16 bytes of delta + 200 bytes of memo per record.
    expect(report.payloadBytes).toBe(20 * 216);
    expect(report.tornTail).toBeUndefined();
    expect(report.segments).toBeGreaterThanOrEqual(1);
  });

  it('verifyLog rejects with WalCorruptionError (position set) for a flipped byte mid-segment', async () => {
    const { dir } = await durableDir({ checkpoints: false, facts: 60, flushEvery: 5 });
    const segments = walFiles(dir);
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    expect((await pool.verifyLog(dir)).records).toBe(60);
    const victim = path.join(dir, segments[0]!);
    const bytes = fs.readFileSync(victim);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x40;
    fs.writeFileSync(victim, bytes);

    const error = await rejectionOf(pool.verifyLog(dir));
    expectCtfsError(error, WalCorruptionError, 'WalCorrupted');
    const { position } = error as WalCorruptionError;
    expect(position).toBeDefined();
    expect(position.file).toBe(victim);
    expect(position.offset).toBeGreaterThanOrEqual(64);
    expect(position.offset).toBeLessThanOrEqual(at);
    expect(position.sequence).toBeGreaterThanOrEqual(1);
    // The same position as in this thread.
    const local = thrown(() => verifyLog(dir)) as WalCorruptionError;
    expect(local).toBeInstanceOf(WalCorruptionError);
    expect(position).toEqual(local.position);
    expect((error as WalCorruptionError).detail).toBe(local.detail);
  });

  it('compactLog after two checkpoints deletes what the newest no longer needs', async () => {
    const { dir, balance } = await durableDir({ checkpoints: true, facts: 80, flushEvery: 10 });
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const walBefore = walFiles(dir);
    const ckptBefore = checkpointFiles(dir);
    expect(ckptBefore).toEqual(['checkpoint-000000000000001e.ckpt', 'checkpoint-000000000000003c.ckpt']);
    // keep 2 (default): the kernel already compacted to two checkpoints; nothing to do.
    expect(await pool.compactLog(dir)).toEqual({ deletedSegments: [], deletedCheckpoints: [] });
    expect(walFiles(dir)).toEqual(walBefore);

    const result = await pool.compactLog(dir, 1);
    expect(result.deletedCheckpoints).toEqual([path.join(dir, 'checkpoint-000000000000001e.ckpt')]);
    expect(result.deletedSegments.length).toBeGreaterThan(0);
    for (const file of [...result.deletedSegments, ...result.deletedCheckpoints]) expect(fs.existsSync(file)).toBe(false);
    // Exactly the segments whose records all precede sequence 61 went.
    const remaining = walFiles(dir);
    expect([...remaining, ...result.deletedSegments.map((f) => path.basename(f))].sort()).toEqual(walBefore);
    const firstSeq = (f: string): number => parseInt(f.slice(4, 20), 16);
    const deleted = result.deletedSegments.map((f) => path.basename(f));
    expect(deleted).toEqual(walBefore.slice(0, deleted.length));
    // Each deleted segment ends (where the next begins) at or before the kept checkpoint's 60 …
    for (let i = 0; i < deleted.length; i++) expect(firstSeq(walBefore[i + 1]!) - 1).toBeLessThanOrEqual(60);
    // … and the first kept one does not, so sequence 61 onwards is still there.
    expect(firstSeq(remaining[0]!)).toBeLessThanOrEqual(61);
    expect(remaining.length < 2 || firstSeq(remaining[1]!) - 1 > 60).toBe(true);
    expect(checkpointFiles(dir)).toEqual(['checkpoint-000000000000003c.ckpt']);

    // The log still verifies and recovers to the same history.
    const report = await pool.verifyLog(dir);
    expect(report.fromSequence).toBe(61);
    expect(report.records).toBe(20);
    const reopened = await DurableKernel.open(dir, new TotalSupplyInvariant(), { indexCapacity: 4096, arenaBytes: 1 << 18, backend: 'portable', announce: false });
    try {
      expect(reopened.size).toBe(80);
      expect(ConservationState.fromCell(reopened.state).balance).toBe(balance);
    } finally {
      await reopened.close();
    }
  });

  it('reports a damaged checkpoint as a problem and falls back to the previous one', async () => {
    const { dir } = await durableDir({ checkpoints: true, facts: 80, flushEvery: 10 });
    const newest = path.join(dir, 'checkpoint-000000000000003c.ckpt');
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
    fs.writeFileSync(newest, bytes);
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    const report = await pool.verifyLog(dir);
    expect(report).toEqual(verifyLog(dir));
    expect(report.checkpoints[0]!.sequence).toBe(60);
    expect(typeof report.checkpoints[0]!.problem).toBe('string');
    expect(report.checkpoints[1]!.problem).toBeUndefined();
    expect(report.fromSequence).toBe(31);
    expect(report.records).toBe(50);
  });

  it('validates its arguments', async () => {
    const pool = await makePool({ invariant: { builtin: 'GCounter' } });
    expectCtfsError(await rejectionOf(pool.verifyLog(42 as unknown as string)), InvalidArgumentError, 'InvalidArgument');
    expectCtfsError(await rejectionOf(pool.compactLog(undefined as unknown as string)), InvalidArgumentError, 'InvalidArgument');
    for (const keep of [0, -1, 1.5]) expectCtfsError(await rejectionOf(pool.compactLog(os.tmpdir(), keep)), InvalidArgumentError, 'InvalidArgument');
  });
});

// ================================================================================== poisoned shard

describe('a pool thread that dies mid-batch', () => {
  it('poisons its shard (ShardPoisoned from then on); other shards keep working', async () => {
    const pool = await makePool({ shards: 3, invariant: { module: FIXTURE_URL, export: 'CappedCounter', args: [1_000_000n] } });
    const ref = reference(new fixture.CappedCounter(1_000_000n));
    const before = [gc(1), gc(2)];
    refAdmit(ref, before);
    expect(codesOf(await pool.admitBatch(1, before))).toEqual([0, 0]);

    const poison = new Uint8Array(8);
    poison[0] = fixture.POISON_BYTE;
    const victim = FactBatch.from([gc(5), fact(poison), gc(6)]);
    const dying = pool.admitBatch(1, victim);
    // Queued behind it on the same shard (submitted before the thread dies).
    const behind = FactBatch.from([gc(7)]);
    const queuedBehind = pool.admitBatch(1, behind);
    // Another shard, at the same time.
    const elsewhere = pool.admitBatch(0, [gc(3)]);

    const error = await rejectionOf(dying);
    expectCtfsError(error, PoolError, 'ShardPoisoned');
    expect((error as PoolError).shard).toBe(1);
    expectCtfsError(await rejectionOf(queuedBehind), PoolError, 'ShardPoisoned');
    expect(victim.inFlight).toBe(false);
    expect(behind.inFlight).toBe(false);
    expect(codesOf(await elsewhere)).toEqual([0]);

    expect(pool.isPoisoned(1)).toBe(true);
    expect(pool.isPoisoned(0)).toBe(false);
    expect(pool.isPoisoned(2)).toBe(false);
    // Later work on shard 1 is refused, on every path.
    expectCtfsError(await rejectionOf(pool.admitBatch(1, [gc(1)])), PoolError, 'ShardPoisoned');
    expectCtfsError(thrown(() => pool.admitBatchSync(1, [gc(1)])), PoolError, 'ShardPoisoned');
    expectCtfsError(await rejectionOf(pool.digest(1)), PoolError, 'ShardPoisoned');
    // What shard 1 published before the dead batch is still readable, and nothing after it.
    expect(lookShard(pool, 1)).toEqual(lookKernel(ref));

    // The other shards keep working, on replacement threads and in this thread.
    for (const s of [0, 2]) {
      const facts = chain(20);
      const r = await pool.admitBatch(s, facts);
      expect(r.admitted).toBe(20);
      expect(pool.admitBatchSync(s, [gc(4)]).admitted).toBe(1);
    }
    await Promise.all([0, 2, 0, 2].map((s) => pool.admitBatch(s, chain(10))));
    expect(pool.stateOf(0).size).toBe(1 + 20 + 1 + 20);
    expect(pool.stateOf(2).size).toBe(20 + 1 + 20);
    expect((await pool.digest(2)).size).toBe(41);
    expect(pool.isPoisoned(1)).toBe(true);
    // close() still drains and ends (the dead thread is not waited for).
    await pool.close();
  });

  it('threads that cannot build the invariant fail the pool\'s work, not the process', () => {
    // In a child process, so that a crash is observed rather than suffered: the invariant builds
    // in the caller's thread (create resolves) but throws in every pool thread. What must not
    // happen is an unhandled 'error' event killing the process, or work that never settles.
    const script = `
      const { KernelPool, CtfsError, PoolError } = await import(${JSON.stringify(pathToFileURL(DIST_INDEX).href)});
      const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(what + ' did not settle in ' + ms + ' ms')), ms));
      let pool;
      try {
        pool = await KernelPool.create({ shards: 1, threads: 2, indexCapacity: 1024, invariant: { module: ${JSON.stringify(FIXTURE_URL.href)}, export: 'failsInPoolThreads' } });
      } catch (error) {
        console.log(JSON.stringify({ stage: 'create', ctfs: error instanceof CtfsError, code: error?.code }));
        process.exit(0);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      let outcome;
      try {
        await Promise.race([pool.admitBatch(0, [{ id: new Uint8Array(32).fill(1), deps: [], payload: new Uint8Array(8) }]), timeout(5000, 'admitBatch')]);
        outcome = { stage: 'admit', resolved: true };
      } catch (error) {
        outcome = { stage: 'admit', pool: error instanceof PoolError, code: error?.code, message: String(error?.message) };
      }
      try {
        await Promise.race([pool.close(), timeout(5000, 'close')]);
        outcome.closed = true;
      } catch (error) {
        outcome.closed = String(error.message);
      }
      console.log(JSON.stringify(outcome));
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const lastLine = child.stdout.trim().split('\n').at(-1) ?? '';
    expect({ status: child.status, stderr: child.stderr.split('\n').slice(0, 6).join('\n') }).toEqual({ status: 0, stderr: '' });
    const outcome = JSON.parse(lastLine) as { stage: string; ctfs?: boolean; pool?: boolean; code?: string; closed?: unknown };
    if (outcome.stage === 'create') {
      expect(outcome).toEqual({ stage: 'create', ctfs: true, code: 'InvalidArgument' });
    } else {
      expect(outcome).toMatchObject({ stage: 'admit', pool: true, code: 'PoolTaskFailed', closed: true });
    }
  });
});
