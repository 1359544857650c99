/**
 * ShardLocks: one fair lock per shard, in one SharedArrayBuffer every thread of a pool maps.
 *
 * Each lock is a ticket lock: a thread takes the next ticket with one `Atomics.add` and owns the
 * lock when `serving` reaches it, so threads get the lock in the order they asked — no thread
 * waits behind a stream of later arrivals. A waiter spins briefly (see SPINS), then sleeps in
 * `Atomics.wait` on `serving`. Release
 * bumps `serving` and calls `Atomics.notify` only when someone sleeps, so an uncontended
 * acquire/release is two atomic read-modify-writes and two loads.
 *
 * Memory ordering: the kernels under a lock write with plain stores. Every acquire ends with an
 * atomic read of `serving` that observes the previous holder's atomic release, which orders all of
 * that holder's stores before everything the new holder reads (the JavaScript memory model's
 * synchronizes-with edge).
 *
 * A lock whose holder died (a pool thread that exited mid-batch) can be poisoned: every waiter
 * wakes and `acquire` returns `LOCK_POISONED` from then on.
 */
import { threadId } from 'node:worker_threads';
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { checkSharedHeader } from '../core/shared-header.js';
import { checkWaitMs } from '../core/options.js';

/** Each lock takes two cache lines (128 bytes), so neighbouring shards' locks never share one (nor an adjacent-line prefetch pair). */
const LOCK_BYTES = 128;
/** Word offsets inside a lock. */
const W_NEXT = 0;
const W_SERVING = 1;
const W_SLEEPERS = 2;
const W_POISONED = 3;
/** threadId + 1 of the holder (0: free); for diagnostics and for telling a dead holder. */
const W_OWNER = 4;
/** Acquisitions, and how many of them found the lock held (statistics, written by holders only). */
const W_ACQUIRED = 5;
const W_CONTENDED = 6;
/** "CTLK" little-endian: marks a buffer as shard locks. */
const MAGIC = 0x4b4c5443;
const LAYOUT_VERSION = 1;
/** Header words: magic, layout version, number of locks. */
const W_MAGIC = 0;
const W_VERSION = 1;
const W_COUNT = 2;
const HEADER_BYTES = LOCK_BYTES;
/**
 * Spins before sleeping: atomic loads of `serving`, a few microseconds in all — about what a
 * futex wake-up takes here. Measured with two threads hammering one lock (bench/pool.ts): with
 * 256 spins nearly every waiter fell asleep and each handover cost ~3.9 µs; with 4,096 it stays
 * in the spin and costs ~0.45 µs. A waiter behind a whole batch (hundreds of µs) then sleeps.
 */
const SPINS = 4096;
/**
 * Sleepers wake at least this often to re-check the poison flag: a poison stored just before a
 * waiter's `Atomics.wait` could otherwise find nobody to notify, and `serving` never moves again.
 */
const SLEEP_SLICE_MS = 100;
/** The most locks one buffer holds (a pool's shards). */
export const MAX_SHARDS = 4096;

/** `acquire` results. */
export const LOCK_ACQUIRED = 0;
export const LOCK_POISONED = 1;
export const LOCK_TIMED_OUT = 2;

export interface LockStats {
  /** Times the lock was taken. */
  readonly acquired: number;
  /** Of those, how many found it held by another thread and had to wait. */
  readonly contended: number;
}

export class ShardLocks {
  readonly buffer: SharedArrayBuffer;
  readonly count: number;
  private readonly words: Int32Array;
  private readonly self = threadId + 1;

  /** `count` free locks in a new buffer. */
  constructor(count: number);
  /** @internal */
  constructor(count: number, buffer: SharedArrayBuffer);
  constructor(count: number, buffer?: SharedArrayBuffer) {
    if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
      throw new InvalidArgumentError(`lock count must be an integer in [1, ${MAX_SHARDS}], got ${describeValue(count)}`);
    }
    this.buffer = buffer ?? new SharedArrayBuffer(HEADER_BYTES + count * LOCK_BYTES);
    this.count = count;
    this.words = new Int32Array(this.buffer);
    if (buffer === undefined) {
      this.words[W_MAGIC] = MAGIC;
      this.words[W_VERSION] = LAYOUT_VERSION;
      this.words[W_COUNT] = count;
    }
  }

  /** The locks in `buffer` (from `.buffer` in another thread). */
  static attach(buffer: SharedArrayBuffer): ShardLocks {
    const header = checkSharedHeader(buffer, MAGIC, LAYOUT_VERSION, 'shard locks', HEADER_BYTES + LOCK_BYTES);
    const count = header[W_COUNT]!;
    if (count < 1 || count > MAX_SHARDS || buffer.byteLength !== HEADER_BYTES + count * LOCK_BYTES) {
      throw new SharedMemoryError(`shard locks header (${count} locks) does not match the buffer size`);
    }
    return new ShardLocks(count, buffer);
  }

  private base(shard: number): number {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.count) {
      throw new InvalidArgumentError(`shard ${describeValue(shard)} is not in [0, ${this.count})`);
    }
    return (HEADER_BYTES + shard * LOCK_BYTES) / 4;
  }

  /**
   * Takes the lock of `shard`, waiting in arrival order. Returns `LOCK_ACQUIRED`, or
   * `LOCK_POISONED` (without the lock) if the lock was poisoned before or while waiting.
   * Locks are not re-entrant: asking for a lock this thread holds throws.
   */
  acquire(shard: number): number {
    const b = this.base(shard);
    const w = this.words;
    if (Atomics.load(w, b + W_POISONED) !== 0) return LOCK_POISONED;
    this.notHeldHere(shard, b);
    const ticket = Atomics.add(w, b + W_NEXT, 1);
    if (Atomics.load(w, b + W_SERVING) !== ticket) {
      if (!this.waitForTurn(b, ticket)) return LOCK_POISONED;
      w[b + W_CONTENDED]!++;
    }
    w[b + W_OWNER] = this.self;
    w[b + W_ACQUIRED]!++;
    return LOCK_ACQUIRED;
  }

  /**
   * Takes the lock of `shard` if it can within `timeoutMs`, without a ticket: it retries
   * `tryAcquire` whenever the lock is released, so giving up leaves nothing behind. For a thread
   * that must not wait forever on a holder that may have died (the pool's main thread: while it
   * sleeps here, nothing can tell it a pool thread is gone). Not FIFO: meant for a thread that
   * competes with at most a few others. Returns `LOCK_ACQUIRED`, `LOCK_POISONED` or `LOCK_TIMED_OUT`.
   */
  acquireWithin(shard: number, timeoutMs: number): number {
    const b = this.base(shard);
    // A wait with no end (NaN compares false with every deadline, Infinity never passes) is the
    // very thing this method exists to prevent.
    checkWaitMs('timeoutMs', timeoutMs);
    const w = this.words;
    if (Atomics.load(w, b + W_POISONED) !== 0) return LOCK_POISONED;
    this.notHeldHere(shard, b);
    const deadline = performance.now() + timeoutMs;
    let contended = false;
    for (let spins = 0; ; spins++) {
      if (this.tryAcquire(shard)) {
        if (contended) w[b + W_CONTENDED]!++;
        return LOCK_ACQUIRED;
      }
      contended = true;
      if (Atomics.load(w, b + W_POISONED) !== 0) return LOCK_POISONED;
      if (spins < SPINS) continue;
      const left = deadline - performance.now();
      if (left <= 0) return LOCK_TIMED_OUT;
      // Sleep until `serving` moves (a release notifies announced sleepers) or the slice ends.
      Atomics.add(w, b + W_SLEEPERS, 1);
      const serving = Atomics.load(w, b + W_SERVING);
      if (Atomics.load(w, b + W_NEXT) !== serving) Atomics.wait(w, b + W_SERVING, serving, Math.min(left, SLEEP_SLICE_MS));
      Atomics.sub(w, b + W_SLEEPERS, 1);
    }
  }

  private notHeldHere(shard: number, b: number): void {
    if (this.words[b + W_OWNER] === this.self) {
      throw new InvalidArgumentError(`this thread already holds shard ${shard}'s lock (locks are not re-entrant)`);
    }
  }

  /** Spins, then sleeps until `serving` reaches `ticket` (true) or the lock is poisoned (false). */
  private waitForTurn(b: number, ticket: number): boolean {
    const w = this.words;
    for (let i = 0; i < SPINS; i++) if (Atomics.load(w, b + W_SERVING) === ticket) return true;
    for (;;) {
      // Announce the sleep before reading `serving` again: a release that bumps `serving` after
      // that read sees the sleeper count and notifies, so the wake-up cannot be lost. The slice
      // bounds the sleep for a poison stored between the check and the wait.
      Atomics.add(w, b + W_SLEEPERS, 1);
      const serving = Atomics.load(w, b + W_SERVING);
      if (serving !== ticket && Atomics.load(w, b + W_POISONED) === 0) Atomics.wait(w, b + W_SERVING, serving, SLEEP_SLICE_MS);
      Atomics.sub(w, b + W_SLEEPERS, 1);
      if (Atomics.load(w, b + W_SERVING) === ticket) return true;
      if (Atomics.load(w, b + W_POISONED) !== 0) return false;
    }
  }

  /** Takes the lock only if it is free right now; true if taken. */
  tryAcquire(shard: number): boolean {
    const b = this.base(shard);
    const w = this.words;
    if (Atomics.load(w, b + W_POISONED) !== 0) return false;
    const serving = Atomics.load(w, b + W_SERVING);
    if (Atomics.compareExchange(w, b + W_NEXT, serving, serving + 1) !== serving) return false;
    w[b + W_OWNER] = this.self;
    w[b + W_ACQUIRED]!++;
    return true;
  }

  /** Releases the lock of `shard`, which this thread holds. */
  release(shard: number): void {
    const b = this.base(shard);
    const w = this.words;
    if (w[b + W_OWNER] !== this.self) throw new InvalidArgumentError(`shard ${shard}'s lock is not held by this thread`);
    w[b + W_OWNER] = 0;
    Atomics.add(w, b + W_SERVING, 1);
    if (Atomics.load(w, b + W_SLEEPERS) !== 0) Atomics.notify(w, b + W_SERVING);
  }

  /** True if some thread holds the lock of `shard` or waits for it. */
  isBusy(shard: number): boolean {
    const b = this.base(shard);
    return Atomics.load(this.words, b + W_NEXT) !== Atomics.load(this.words, b + W_SERVING);
  }

  /** threadId of the holder of `shard`'s lock, or -1 if it is free. */
  holder(shard: number): number {
    return Atomics.load(this.words, this.base(shard) + W_OWNER) - 1;
  }

  /** Marks the lock of `shard` unusable (its holder died) and wakes every waiter. */
  poison(shard: number): void {
    const b = this.base(shard);
    Atomics.store(this.words, b + W_POISONED, 1);
    Atomics.notify(this.words, b + W_SERVING);
  }

  isPoisoned(shard: number): boolean {
    return Atomics.load(this.words, this.base(shard) + W_POISONED) !== 0;
  }

  /** Acquisition counts of `shard`'s lock (read without the lock: a recent value, not a snapshot). */
  stats(shard: number): LockStats {
    const b = this.base(shard);
    return { acquired: Atomics.load(this.words, b + W_ACQUIRED) >>> 0, contended: Atomics.load(this.words, b + W_CONTENDED) >>> 0 };
  }
}
