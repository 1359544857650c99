/**
 * KernelPool and its neighbours when something goes wrong: a pool thread dying while the test
 * thread waits for the same shard's lock in admitBatchSync (it must not wait forever), locks that
 * are asked for twice by one thread, a poison stored while a waiter is about to sleep, a log whose
 * segments belong to another log than its checkpoint, checkpoints asked for while closing, and an
 * invariant class whose apply is an instance field.
 *
 * The library comes from dist/ in this `threads` file (pool threads run compiled JS).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  DurableKernel,
  GCounterInvariant,
  InvalidArgumentError,
  KernelPool,
  LOCK_ACQUIRED,
  LOCK_POISONED,
  LOCK_TIMED_OUT,
  PoolError,
  PoolTimeoutError,
  ShardLocks,
  StorageError,
  WalCorruptionError,
  DurabilityError,
  ForeignError,
  u64le,
  verifyLog,
} from './helpers/lib.js';
import { DIST_URL } from './helpers/dist.js';

const FIXTURE = new URL('./fixtures/pool-slow-poison.mjs', import.meta.url);
const cleanup: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function id(n: number): Uint8Array {
  const out = new Uint8Array(32);
  new DataView(out.buffer).setUint32(0, n, true);
  out[31] = 0x5a;
  return out;
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-pool-fail-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('a pool thread that dies holding a shard while this thread waits for it', () => {
  it('admitBatchSync gives up after syncLockTimeoutMs (ShardLockTimeout), leaves no ticket behind; the shard is then poisoned, the other goes on', async () => {
    const pool = await KernelPool.create({
      shards: 2,
      threads: 2,
      invariant: { module: FIXTURE, export: 'SlowPoison', args: [300] },
      indexCapacity: 1024,
      syncLockTimeoutMs: 1_000,
    });
    cleanup.push(() => pool.close());
    const poison = new Uint8Array(8);
    poison[0] = 0xee;
    const dying = pool.admitBatch(0, [{ id: id(1), deps: [], payload: poison }]).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    // Let the pool thread take the shard's lock and start spinning in apply().
    const started = Date.now();
    while (!pool.lockStats(0).acquired && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 5));
    expect(pool.lockStats(0).acquired).toBe(1);
    const waited = Date.now();
    let thrown: unknown;
    try {
      pool.admitBatchSync(0, [{ id: id(2), deps: [], payload: u64le(1n) }]);
    } catch (error) {
      thrown = error;
    }
    expect(Date.now() - waited).toBeGreaterThanOrEqual(900);
    expect(thrown).toBeInstanceOf(PoolError);
    expect((thrown as PoolError).code).toBe('ShardLockTimeout');
    // The event loop runs again: the task's failure is seen and the shard poisoned.
    const outcome = await dying;
    expect(outcome).toBeInstanceOf(PoolError);
    expect((outcome as PoolError).code).toBe('ShardPoisoned');
    expect(pool.isPoisoned(0)).toBe(true);
    expect(() => pool.admitBatchSync(0, [{ id: id(4), deps: [], payload: u64le(1n) }])).toThrow(expect.objectContaining({ code: 'ShardPoisoned' }));
    const other = await pool.admitBatch(1, [{ id: id(3), deps: [], payload: u64le(5n) }]);
    expect(Array.from(other.codes)).toEqual([AdmitCode.Ok]);
  }, 30_000);

  it('admitBatchSync waits for a pool thread that is merely busy, and gets the lock when it is released', async () => {
    const pool = await KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 1 << 16 });
    cleanup.push(() => pool.close());
    const many = Array.from({ length: 50_000 }, (_, i) => ({ id: id(100 + i), deps: [], payload: u64le(1n) }));
    const busy = pool.admitBatch(0, many);
    const started = Date.now();
    while (!pool.lockStats(0).acquired && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 1));
    const r = pool.admitBatchSync(0, [{ id: id(1), deps: [], payload: u64le(7n) }]);
    expect(Array.from(r.codes)).toEqual([0]);
    expect((await busy).admitted).toBe(50_000);
    expect(pool.stateOf(0).size).toBe(50_001);
    // The lock is intact: both kinds of acquisition keep working.
    expect(Array.from(pool.admitBatchSync(0, [{ id: id(2), deps: [], payload: u64le(1n) }]).codes)).toEqual([0]);
    expect((await pool.admitBatch(0, [{ id: id(3), deps: [], payload: u64le(1n) }])).admitted).toBe(1);
  }, 30_000);
});

describe('a pool task that never returns', () => {
  const stuck = (n: number): { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array } => {
    const payload = new Uint8Array(8);
    payload[0] = 0xcc;
    return { id: id(n), deps: [], payload };
  };
  const slow = (n: number): { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array } => {
    const payload = new Uint8Array(8);
    payload[0] = 0xaa;
    return { id: id(n), deps: [], payload };
  };
  const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.then((v) => v, (e: unknown) => e);

  it('rejects with PoolTaskTimeout; its thread is replaced, its shard poisoned (later batches, digest: ShardPoisoned), the other shard goes on', async () => {
    // One thread: the work on shard 1 afterwards can only run on the replacement.
    const pool = await KernelPool.create({ shards: 2, threads: 1, invariant: { module: FIXTURE, export: 'Stuck' }, indexCapacity: 1024, taskTimeoutMs: 1_000 });
    cleanup.push(() => pool.close());
    const first = settle(pool.admitBatch(0, [{ id: id(1), deps: [], payload: u64le(1n) }, stuck(2)]));
    const started = Date.now();
    while (!pool.lockStats(0).acquired && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
    // Queued behind the stuck task: they must settle too.
    const later = settle(pool.admitBatch(0, [{ id: id(3), deps: [], payload: u64le(1n) }]));
    const digest = settle(pool.digest(0));
    const error = await first;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error).toBeInstanceOf(PoolError);
    expect(error).toMatchObject({ code: 'PoolTaskTimeout', timeoutMs: 1_000, shard: 0 });
    expect(pool.isPoisoned(0)).toBe(true);
    expect(await later).toMatchObject({ code: 'ShardPoisoned' });
    expect(await digest).toMatchObject({ code: 'ShardPoisoned' });
    expect(await settle(pool.admitBatch(0, [{ id: id(4), deps: [], payload: u64le(1n) }]))).toMatchObject({ code: 'ShardPoisoned' });
    const other = await pool.admitBatch(1, [{ id: id(5), deps: [], payload: u64le(5n) }]);
    expect(Array.from(other.codes)).toEqual([AdmitCode.Ok]);
    expect((await pool.digest(1)).size).toBe(1);
    await pool.close();
  }, 60_000);

  it('close() settles while a task is stuck: the task rejects with PoolTaskTimeout and the threads stop', async () => {
    const pool = await KernelPool.create({ shards: 1, threads: 1, invariant: { module: FIXTURE, export: 'Stuck' }, indexCapacity: 64, taskTimeoutMs: 300 });
    const outcome = settle(pool.admitBatch(0, [stuck(1)]));
    const started = Date.now();
    while (!pool.lockStats(0).acquired && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
    await pool.close();
    expect(await outcome).toMatchObject({ code: 'PoolTaskTimeout' });
    expect(await settle(pool.admitBatch(0, [{ id: id(2), deps: [], payload: u64le(1n) }]))).toMatchObject({ code: 'PoolClosed' });
  }, 60_000);

  it('time queued behind other tasks does not count: slow tasks that each finish within the limit all resolve', async () => {
    // Eight shards, one thread, each batch spins 150 ms: the last one waits ~1 s for the thread,
    // longer than taskTimeoutMs, but runs far less than it.
    const pool = await KernelPool.create({ shards: 8, threads: 1, invariant: { module: FIXTURE, export: 'Stuck', args: [150] }, indexCapacity: 64, taskTimeoutMs: 1_000 });
    cleanup.push(() => pool.close());
    const results = await Promise.all(Array.from({ length: 8 }, (_, s) => pool.admitBatch(s, [slow(10 + s)])));
    for (const r of results) expect(Array.from(r.codes)).toEqual([AdmitCode.Ok]);
    for (let s = 0; s < 8; s++) expect(pool.isPoisoned(s)).toBe(false);
  }, 60_000);

  it('create() rejects with PoolStartTimeout when the pool threads never finish building the invariant', async () => {
    const error = await settle(KernelPool.create({ shards: 1, threads: 2, invariant: { module: FIXTURE, export: 'StuckInPoolThreads' }, indexCapacity: 64, startTimeoutMs: 500 }));
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error).toMatchObject({ code: 'PoolStartTimeout', timeoutMs: 500 });
  }, 60_000);

  it('a replacement thread that does not start within startTimeoutMs stops the pool: everything settles', async () => {
    const starts = new SharedArrayBuffer(4);
    const pool = await KernelPool.create({
      shards: 2,
      threads: 1,
      invariant: { module: FIXTURE, export: 'StuckAfterStarts', args: [starts, 1] },
      indexCapacity: 64,
      taskTimeoutMs: 300,
      // Room for the first thread to start on a busy machine; the replacement never does.
      startTimeoutMs: 5_000,
    });
    cleanup.push(() => pool.close());
    const outcome = settle(pool.admitBatch(0, [stuck(1)]));
    expect(await outcome).toMatchObject({ code: 'PoolTaskTimeout' });
    // Shard 1's batch waits for a thread that never comes, until the pool gives up on it.
    const waiting = await settle(pool.admitBatch(1, [{ id: id(2), deps: [], payload: u64le(1n) }]));
    expect(waiting).toBeInstanceOf(PoolError);
    expect(waiting).toMatchObject({ code: 'PoolTaskFailed' });
    expect((waiting as PoolError).cause).toMatchObject({ code: 'PoolStartTimeout' });
    await pool.close();
  }, 60_000);

  it('taskTimeoutMs and startTimeoutMs must be integers of milliseconds in [1, 2^31 − 1]', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100', {}]) {
      for (const key of ['taskTimeoutMs', 'startTimeoutMs']) {
        const error = await settle(KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 64, [key]: bad }));
        if (error instanceof KernelPool) cleanup.push(() => error.close());
        expect(error, `${key}: ${String(bad)}`).toBeInstanceOf(InvalidArgumentError);
      }
    }
    // The extremes are accepted.
    const pool = await KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 64, taskTimeoutMs: 1, startTimeoutMs: 2 ** 31 - 1 });
    await pool.close();
  }, 60_000);
});

describe('ShardLocks', () => {
  it('are not re-entrant: a second acquire by the holder throws InvalidArgument instead of deadlocking', () => {
    const locks = new ShardLocks(2);
    expect(locks.acquire(0)).toBe(0);
    expect(() => locks.acquire(0)).toThrow(InvalidArgumentError);
    expect(() => locks.acquireWithin(0, 10)).toThrow(InvalidArgumentError);
    expect(locks.acquire(1)).toBe(0);
    locks.release(1);
    locks.release(0);
    expect(locks.acquire(0)).toBe(0);
    locks.release(0);
  });

  it('acquireWithin: takes a free lock, times out on a held one without taking a ticket, fails on a poisoned one', () => {
    const locks = new ShardLocks(1);
    expect(locks.acquireWithin(0, 0)).toBe(LOCK_ACQUIRED);
    locks.release(0);
    const words = new Int32Array(locks.buffer);
    const next = words[32]!;
    // Held by "another thread": forge the owner and a taken ticket, as FORMATS §7 lays them out.
    words[32] = next + 1;
    words[32 + 4] = 9999;
    const t0 = Date.now();
    expect(locks.acquireWithin(0, 150)).toBe(LOCK_TIMED_OUT);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(words[32]).toBe(next + 1); // no ticket left behind
    words[32 + 4] = 0;
    words[32 + 1] = next + 1; // released
    expect(locks.acquireWithin(0, 100)).toBe(LOCK_ACQUIRED);
    locks.release(0);
    locks.poison(0);
    expect(locks.acquireWithin(0, 100)).toBe(LOCK_POISONED);
  });

  it('a waiter that misses the poison notify still fails within its sleep slice', async () => {
    const locks = new ShardLocks(1);
    expect(locks.acquire(0)).toBe(0);
    // Store the poison flag without a notify, as if it landed between a waiter's check and its sleep.
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       import(workerData.dist).then(({ ShardLocks }) => {
         const locks = ShardLocks.attach(workerData.buffer);
         parentPort.postMessage('waiting');
         parentPort.postMessage(locks.acquire(0));
       });`,
      { eval: true, workerData: { buffer: locks.buffer, dist: DIST_URL } },
    );
    cleanup.push(() => worker.terminate());
    const messages: unknown[] = [];
    const result = new Promise<unknown>((resolve) => worker.on('message', (m) => (messages.push(m), m !== 'waiting' && resolve(m))));
    while (!messages.includes('waiting')) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100)); // the waiter is asleep by now
    const words = new Int32Array(locks.buffer);
    Atomics.store(words, 32 + 3, 1); // lock 0's poison word (FORMATS §7), no notify
    const started = Date.now();
    expect(await result).toBe(LOCK_POISONED);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 20_000);
});

describe('verifyLog', () => {
  it('refuses WAL segments of another log than the checkpoint it starts from, as recovery does', async () => {
    const a = tempDir();
    const b = tempDir();
    for (const dir of [a, b]) {
      const k = await DurableKernel.open(dir, new GCounterInvariant(), { indexCapacity: 1024, announce: false });
      for (let i = 0; i < 10; i++) expect(k.tryAdmitRaw(id(i + 1), [], u64le(1n))).toBe(0);
      await k.flush();
      await k.close();
    }
    // Dir a's checkpoints (sequence 0) with dir b's segments: the same sequences, another log id.
    for (const f of fs.readdirSync(a).filter((f) => f.endsWith('.log'))) fs.rmSync(path.join(a, f));
    for (const f of fs.readdirSync(b).filter((f) => f.endsWith('.log'))) fs.copyFileSync(path.join(b, f), path.join(a, f));
    expect(() => verifyLog(a)).toThrow(WalCorruptionError);
    await expect(DurableKernel.open(a, new GCounterInvariant(), { indexCapacity: 1024, announce: false })).rejects.toBeInstanceOf(WalCorruptionError);
    expect(verifyLog(b).records).toBe(10);
  }, 30_000);
});

describe('DurableKernel checkpoints and a closing kernel', () => {
  it('checkpoint() and reanchor() after close() started reject with LogClosed; one called before finishes first', async () => {
    const dir = tempDir();
    const pool = await KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 16 });
    cleanup.push(() => pool.close());
    const k = await DurableKernel.open(dir, new GCounterInvariant(), { indexCapacity: 1024, announce: false });
    for (let i = 0; i < 20; i++) expect(k.tryAdmitRaw(id(i + 1), [], u64le(1n))).toBe(0);
    const before = k.checkpoint({ pool });
    const closed = k.close();
    const after = k.checkpoint({ pool });
    await expect(after).rejects.toBeInstanceOf(DurabilityError);
    await expect(after).rejects.toMatchObject({ code: 'LogClosed' });
    await expect(k.reanchor(path.join(dir, 'nothing.ckpt'))).rejects.toMatchObject({ code: 'LogClosed' });
    const info = await before;
    expect(info.facts).toBe(20);
    await closed;
    const report = verifyLog(dir);
    expect(report.checkpoints[0]!.sequence).toBe(20);
    expect(report.checkpoints[0]!.problem).toBeUndefined();
  }, 30_000);
});

describe('errors thrown in a pool thread arrive typed (the error wire form)', () => {
  it('a system error in a pool thread arrives as the StorageError it means, its system code and the thread\'s stack kept', async () => {
    const dir = tempDir();
    const pool = await KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' }, indexCapacity: 16 });
    cleanup.push(() => pool.close());
    const k = await DurableKernel.open(dir, new GCounterInvariant(), { indexCapacity: 1024, announce: false });
    cleanup.push(() => k.close().catch(() => undefined));
    for (let i = 0; i < 5; i++) expect(k.tryAdmitRaw(id(i + 1), [], u64le(1n))).toBe(0);
    await k.flush();
    // The directory vanishes under the kernel: the pool thread cannot create the checkpoint file.
    fs.rmSync(dir, { recursive: true, force: true });
    const error = await k.checkpoint({ pool }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'StorageFailed', ioCode: 'ENOENT' });
    expect((error as StorageError).stack).toMatch(/checkpoint/);
    // The system error itself crossed too, as the cause.
    expect((error as StorageError).cause).toBeInstanceOf(ForeignError);
    expect((error as StorageError).cause).toMatchObject({ originalCode: 'ENOENT' });
  }, 30_000);
});

describe('invariant specs', () => {
  it('a class whose apply is an instance field works in every pool thread', async () => {
    const pool = await KernelPool.create({ shards: 1, threads: 2, invariant: { module: FIXTURE, export: 'FieldApply' }, indexCapacity: 64 });
    cleanup.push(() => pool.close());
    const r = await pool.admitBatch(0, [1, 2, 3].map((n) => ({ id: id(n), deps: [], payload: u64le(BigInt(n)) })));
    expect(Array.from(r.codes)).toEqual([0, 0, 0]);
    expect(pool.stateOf(0).state.bytes[0]).toBe(6);
  }, 30_000);
});
