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
  ShardLocks,
  WalCorruptionError,
  DurabilityError,
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

describe('invariant specs', () => {
  it('a class whose apply is an instance field works in every pool thread', async () => {
    const pool = await KernelPool.create({ shards: 1, threads: 2, invariant: { module: FIXTURE, export: 'FieldApply' }, indexCapacity: 64 });
    cleanup.push(() => pool.close());
    const r = await pool.admitBatch(0, [1, 2, 3].map((n) => ({ id: id(n), deps: [], payload: u64le(BigInt(n)) })));
    expect(Array.from(r.codes)).toEqual([0, 0, 0]);
    expect(pool.stateOf(0).state.bytes[0]).toBe(6);
  }, 30_000);
});
