/**
 * ShardLocks: the fair (ticket) per-shard locks a KernelPool's threads share, tested with real
 * threads. Workers (test/fixtures/lock-worker.mjs) attach to locks created here and run one
 * command per message; the test thread takes part too.
 *
 * - mutual exclusion: 3 workers + this thread do a plain read/increment/write of a shared counter
 *   under the lock, and the count is exact (the same loop without the lock loses updates);
 * - FIFO: waiters that lined up one after another (each seen holding its ticket and asleep) get
 *   the lock in arrival order, whatever order the threads were started in;
 * - spin-then-sleep: a waiter blocked far longer than the spin phase sleeps and is woken by
 *   release, in a worker and in this thread;
 * - poison wakes every sleeper (acquire → LOCK_POISONED), tryAcquire then fails;
 * - tryAcquire, release by a non-holder, shard and attach validation, stats, independent shards.
 *
 * Every wait without a timeout (the lock's sleep) is bounded in both threads: a lost wake-up makes
 * a test fail with an error instead of hanging the run.
 */
import { fileURLToPath } from 'node:url';
import { threadId, Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LOCK_ACQUIRED,
  LOCK_POISONED,
  MAX_SHARDS,
  ShardLocks,
} from './helpers/lib.js';
import { firstMessage, startWorker, terminateWorkers, until } from './helpers/workers.js';
import { countLoop } from './fixtures/count-loop.mjs';
import { expectBadMemory, expectInvalid } from './helpers/errors.js';

const WORKER = fileURLToPath(new URL('./fixtures/lock-worker.mjs', import.meta.url));

/** Layout facts the tests inspect or forge (mirrors src/pool/shard-locks.ts). */
const HEADER_BYTES = 128;
const LOCK_BYTES = 128;
const W_NEXT = 0;
const W_SERVING = 1;
const W_SLEEPERS = 2;
const MAGIC = 0x4b4c5443;

/** Bound on any single wait without a timeout, in both threads. */
const WAIT_LIMIT_MS = 8_000;

// ------------------------------------------------------------------------------------ helpers

type WaitResult = 'ok' | 'not-equal' | 'timed-out';
type WaitFn = (ta: Int32Array, index: number, value: number, timeout?: number) => WaitResult;
const atomics = Atomics as unknown as { wait: WaitFn };
const realWait: WaitFn = atomics.wait.bind(Atomics);

/**
 * Runs `fn` with this thread's Atomics.wait counted and bounded: a wait without a timeout that is
 * not woken within WAIT_LIMIT_MS throws. Returns fn's value and the number of real parks that
 * were woken ('ok').
 */
/** The lock's sleep slice (src/pool/shard-locks.ts SLEEP_SLICE_MS). */
const SLEEP_SLICE_MS = 100;

function withBoundedWaits<T>(fn: () => T): { value: T; parks: number } {
  let parks = 0;
  const started = Date.now();
  atomics.wait = (ta, index, value, timeout) => {
    // Lock waiters sleep in slices of SLEEP_SLICE_MS (100 ms, to re-check the poison flag); any
    // other timed wait is not the lock's.
    if (timeout !== undefined && timeout !== SLEEP_SLICE_MS) return realWait(ta, index, value, timeout);
    const r = realWait(ta, index, value, timeout ?? WAIT_LIMIT_MS);
    if (r === 'ok') parks++;
    if (Date.now() - started > WAIT_LIMIT_MS) throw new Error(`this thread's lock wait was not woken within ${WAIT_LIMIT_MS} ms`);
    return r;
  };
  try {
    return { value: fn(), parks };
  } finally {
    atomics.wait = realWait;
  }
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The raw words of `shard`'s lock. */
function raw(locks: ShardLocks, shard: number): { next: number; serving: number; sleepers: number } {
  const w = new Int32Array(locks.buffer);
  const b = (HEADER_BYTES + shard * LOCK_BYTES) / 4;
  return { next: Atomics.load(w, b + W_NEXT), serving: Atomics.load(w, b + W_SERVING), sleepers: Atomics.load(w, b + W_SLEEPERS) };
}

/** Threads that hold or wait for `shard`'s lock (tickets taken and not yet served). */
const queued = (locks: ShardLocks, shard: number): number => {
  const r = raw(locks, shard);
  return (r.next - r.serving) | 0;
};

/** A copy of one lock's 128 bytes. */
const lockBytes = (locks: ShardLocks, shard: number): number[] =>
  Array.from(new Uint8Array(locks.buffer, HEADER_BYTES + shard * LOCK_BYTES, LOCK_BYTES));


interface Reply {
  seq: number;
  result?: number | boolean;
  parks?: number;
  overlaps?: number;
  refused?: number;
  done?: number;
  holder?: number;
  busy?: boolean;
  poisoned?: boolean;
  stats?: { acquired: number; contended: number };
  error?: { name: string; code: string | undefined; message: string };
}

/** One lock worker: `call` sends a command and resolves with its reply (errors come back as data). */
class LockWorker {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private failure: Error | undefined;

  private constructor(
    readonly worker: Worker,
    readonly threadId: number,
  ) {
    worker.on('message', (m: Reply) => {
      const p = this.pending.get(m.seq);
      if (p === undefined) return;
      this.pending.delete(m.seq);
      clearTimeout(p.timer);
      p.resolve(m);
    });
    const fail = (e: Error): void => {
      this.failure ??= e;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(e);
      }
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`lock worker exited (${code})`)));
  }

  static async start(locks: ShardLocks, extra: Record<string, unknown> = {}): Promise<LockWorker> {
    const worker = startWorker(WORKER, { locks: locks.buffer, waitLimitMs: WAIT_LIMIT_MS, ...extra });
    const ready = await firstMessage<{ ready: boolean; threadId: number }>(worker, { timeoutMs: 20_000, what: 'lock worker (starting)' });
    const w = new LockWorker(worker, ready.threadId);
    return w;
  }

  static startMany(n: number, locks: ShardLocks, extra: Record<string, unknown> = {}): Promise<LockWorker[]> {
    return Promise.all(Array.from({ length: n }, () => LockWorker.start(locks, extra)));
  }

  /** Sends a command; resolves with the reply (which may carry `error`). */
  call(msg: Record<string, unknown>, timeoutMs = 15_000): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seq = ++this.seq;
    const p = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`lock worker command ${String(msg.op)} timed out`));
      }, timeoutMs);
      this.pending.set(seq, { resolve, reject, timer });
    });
    p.catch(() => undefined); // awaited by the caller
    this.worker.postMessage({ ...msg, seq });
    return p;
  }

  /** `call`, failing on an error reply. */
  async ok(msg: Record<string, unknown>, timeoutMs?: number): Promise<Reply> {
    const r = await this.call(msg, timeoutMs);
    if (r.error !== undefined) throw new Error(`worker ${String(msg.op)} failed: ${r.error.message}`);
    return r;
  }
}

/** True once `p` has settled (checked after a macrotask turn). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await delay(0);
  return done;
}

interface CountRun {
  /** The counter at the end. */
  readonly count: number;
  /** Increments the threads did. */
  readonly expected: number;
  /** Increments per thread (this thread last). */
  readonly perThread: number[];
  readonly overlaps: number;
  readonly refused: number;
}

/** Shared buffers of one counting run. */
function countBuffers() {
  return {
    counter: new SharedArrayBuffer(8),
    owner: new SharedArrayBuffer(8),
    control: new SharedArrayBuffer(8),
    ready: new SharedArrayBuffer(4),
    go: new SharedArrayBuffer(4),
  };
}

/** Waits until `n` workers are at the start line, then sets the deadline and starts them. */
async function startCounting(b: ReturnType<typeof countBuffers>, n: number, durationMs: number): Promise<number> {
  const ready = new Int32Array(b.ready);
  const go = new Int32Array(b.go);
  await until(() => Atomics.load(ready, 0) === n, 'the workers to be ready');
  const deadline = Date.now() + durationMs;
  new Float64Array(b.control)[0] = deadline;
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  return deadline;
}

/**
 * `ws` workers and this thread all run countLoop on `shard` against one counter for `durationMs`
 * of wall-clock time, released at once.
 */
async function countRun(locks: ShardLocks, ws: LockWorker[], shard: number, durationMs: number, useLock: boolean, work: number): Promise<CountRun> {
  const b = countBuffers();
  const replies = ws.map((w) => w.ok({ op: 'count', shard, useLock, work, ...b }, 40_000));
  const deadline = await startCounting(b, ws.length, durationMs);
  const here = withBoundedWaits(() => countLoop({ locks, acquired: LOCK_ACQUIRED, shard, counter: new Int32Array(b.counter), owner: new Int32Array(b.owner), useLock, work, deadline, me: threadId + 1 })).value;
  const theirs = await Promise.all(replies);
  const perThread = [...theirs.map((r) => r.done!), here.done];
  return {
    count: new Int32Array(b.counter)[0]!,
    expected: perThread.reduce((s, x) => s + x, 0),
    perThread,
    overlaps: here.overlaps + theirs.reduce((s, r) => s + r.overlaps!, 0),
    refused: here.refused + theirs.reduce((s, r) => s + r.refused!, 0),
  };
}

afterEach(async () => {
  atomics.wait = realWait;
  await terminateWorkers();
});

// ===================================================================================== tests

describe('ShardLocks: construction, attach and shard validation', () => {
  it('a new buffer has a header line and one 128-byte lock per shard, all free', () => {
    for (const count of [1, 2, 7, MAX_SHARDS]) {
      const locks = new ShardLocks(count);
      expect(locks.count).toBe(count);
      expect(locks.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(locks.buffer.byteLength).toBe(HEADER_BYTES + count * LOCK_BYTES);
      const header = new Int32Array(locks.buffer, 0, 3);
      expect(header[0]).toBe(MAGIC);
      expect(header[1]).toBe(1); // layout version
      expect(header[2]).toBe(count);
      for (const shard of [0, count - 1]) {
        expect(locks.isBusy(shard)).toBe(false);
        expect(locks.holder(shard)).toBe(-1);
        expect(locks.isPoisoned(shard)).toBe(false);
        expect(locks.stats(shard)).toEqual({ acquired: 0, contended: 0 });
      }
    }
  });

  it('rejects lock counts outside [1, MAX_SHARDS] with InvalidArgumentError', () => {
    for (const bad of [0, -1, MAX_SHARDS + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', undefined, null]) {
      expectInvalid(() => new ShardLocks(bad as number));
    }
  });

  it('the raw layout these tests read is the real one', () => {
    const locks = new ShardLocks(3);
    expect(locks.acquire(1)).toBe(LOCK_ACQUIRED);
    expect(raw(locks, 1)).toEqual({ next: 1, serving: 0, sleepers: 0 });
    expect(queued(locks, 1)).toBe(1);
    expect(queued(locks, 0)).toBe(0);
    locks.release(1);
    expect(raw(locks, 1)).toEqual({ next: 1, serving: 1, sleepers: 0 });
  });

  it('every method rejects a shard outside [0, count) or not an integer, and changes nothing', () => {
    const locks = new ShardLocks(3);
    const before = Array.from(new Uint8Array(locks.buffer));
    const methods: ((s: number) => unknown)[] = [
      (s) => locks.acquire(s),
      (s) => locks.tryAcquire(s),
      (s) => locks.release(s),
      (s) => locks.isBusy(s),
      (s) => locks.holder(s),
      (s) => locks.poison(s),
      (s) => locks.isPoisoned(s),
      (s) => locks.stats(s),
    ];
    for (const bad of [-1, 3, 4, 4096, 1.5, -0.5, Number.NaN, Number.POSITIVE_INFINITY, '1', undefined, null]) {
      for (const m of methods) expectInvalid(() => m(bad as number));
    }
    expect(Array.from(new Uint8Array(locks.buffer))).toEqual(before);
    // Valid shards at both ends still work.
    for (const s of [0, 2]) {
      expect(locks.tryAcquire(s)).toBe(true);
      locks.release(s);
    }
  });

  it('attach shares the locks of a valid buffer', () => {
    const a = new ShardLocks(4);
    const b = ShardLocks.attach(a.buffer);
    expect(b.count).toBe(4);
    expect(b.buffer).toBe(a.buffer);
    expect(a.tryAcquire(3)).toBe(true);
    expect(b.isBusy(3)).toBe(true);
    expect(b.holder(3)).toBe(threadId);
    expect(b.tryAcquire(3)).toBe(false);
    expect(b.isBusy(2)).toBe(false);
    a.release(3);
    expect(b.isBusy(3)).toBe(false);
    expect(b.stats(3)).toEqual({ acquired: 1, contended: 0 });
  });

  it('attach rejects wrong buffers with SharedMemoryError (InvalidSharedMemory)', () => {
    const good = new ShardLocks(2);
    const goodBytes = new Uint8Array(good.buffer);
    const copy = (size: number, mutate?: (w: Int32Array) => void): SharedArrayBuffer => {
      const sab = new SharedArrayBuffer(size);
      new Uint8Array(sab).set(goodBytes.subarray(0, Math.min(size, goodBytes.length)));
      mutate?.(new Int32Array(sab, 0, 2));
      return sab;
    };
    const bad: unknown[] = [
      undefined,
      null,
      42,
      'locks',
      {},
      new Int32Array(new SharedArrayBuffer(HEADER_BYTES + 2 * LOCK_BYTES)), // a view, not the buffer
      (() => {
        const ab = new ArrayBuffer(HEADER_BYTES + 2 * LOCK_BYTES); // right bytes, not shared
        new Uint8Array(ab).set(goodBytes);
        return ab;
      })(),
      new SharedArrayBuffer(0),
      new SharedArrayBuffer(8),
      new SharedArrayBuffer(HEADER_BYTES + LOCK_BYTES - 4),
      new SharedArrayBuffer(HEADER_BYTES + 2 * LOCK_BYTES), // all zeros: no magic
      copy(HEADER_BYTES + 3 * LOCK_BYTES), // one lock too many for its count
      copy(HEADER_BYTES + 2 * LOCK_BYTES + 4), // a stray word past the end
      copy(HEADER_BYTES + LOCK_BYTES), // too short for its count
      copy(HEADER_BYTES + 2 * LOCK_BYTES, (w) => void (w[0] = MAGIC ^ 1)),
      copy(HEADER_BYTES + 2 * LOCK_BYTES, (w) => void (w[1] = 0)),
      copy(HEADER_BYTES + 2 * LOCK_BYTES, (w) => void (w[1] = -2)),
      copy(HEADER_BYTES + 2 * LOCK_BYTES, (w) => void (w[1] = 3)),
      copy(HEADER_BYTES + 2 * LOCK_BYTES, (w) => void (w[1] = MAX_SHARDS + 1)),
    ];
    for (const b of bad) expectBadMemory(() => ShardLocks.attach(b as SharedArrayBuffer));
    // The good one still attaches.
    expect(ShardLocks.attach(good.buffer).count).toBe(2);
  });

  it('attach refuses random bytes of any size, and a right-sized buffer with a wrong count (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2048 }), fc.boolean(), (bytes, withMagic) => {
        const sab = new SharedArrayBuffer(bytes.length);
        new Uint8Array(sab).set(bytes);
        if (withMagic && bytes.length >= 8) new DataView(sab).setUint32(0, MAGIC, true);
        const count = bytes.length >= 8 ? new DataView(sab).getInt32(4, true) : 0;
        const consistent = withMagic && count >= 1 && count <= MAX_SHARDS && bytes.length === HEADER_BYTES + count * LOCK_BYTES;
        if (consistent) expect(ShardLocks.attach(sab).count).toBe(count);
        else expectBadMemory(() => ShardLocks.attach(sab));
      }),
      { numRuns: 400 },
    );
    // Magic and every count except the right one, on a buffer sized for 3 locks.
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (count) => {
        fc.pre(count !== 3);
        const sab = new SharedArrayBuffer(HEADER_BYTES + 3 * LOCK_BYTES);
        const w = new Int32Array(sab, 0, 2);
        w[0] = MAGIC;
        w[1] = count;
        expectBadMemory(() => ShardLocks.attach(sab));
      }),
      { numRuns: 200 },
    );
  });
});

describe('ShardLocks: one thread', () => {
  it('tryAcquire takes a free lock, fails on a held one (also for its holder), and a failure leaves no ticket behind', () => {
    const locks = new ShardLocks(2);
    expect(locks.tryAcquire(0)).toBe(true);
    expect(locks.isBusy(0)).toBe(true);
    expect(locks.holder(0)).toBe(threadId);
    expect(locks.tryAcquire(0)).toBe(false); // not reentrant
    expect(ShardLocks.attach(locks.buffer).tryAcquire(0)).toBe(false);
    expect(queued(locks, 0)).toBe(1);
    locks.release(0);
    expect(locks.isBusy(0)).toBe(false);
    expect(locks.holder(0)).toBe(-1);
    // acquire after failed tryAcquires does not wait: nobody is queued.
    const { value, parks } = withBoundedWaits(() => locks.acquire(0));
    expect(value).toBe(LOCK_ACQUIRED);
    expect(parks).toBe(0);
    locks.release(0);
    expect(locks.stats(0)).toEqual({ acquired: 2, contended: 0 });
  });

  it('uncontended acquire/release never sleeps and counts every acquisition; stats are per shard', () => {
    const locks = new ShardLocks(3);
    const { parks } = withBoundedWaits(() => {
      for (let i = 0; i < 1000; i++) {
        expect(locks.acquire(1)).toBe(LOCK_ACQUIRED);
        locks.release(1);
      }
      for (let i = 0; i < 5; i++) {
        expect(locks.tryAcquire(2)).toBe(true);
        locks.release(2);
      }
    });
    expect(parks).toBe(0);
    expect(locks.stats(0)).toEqual({ acquired: 0, contended: 0 });
    expect(locks.stats(1)).toEqual({ acquired: 1000, contended: 0 });
    expect(locks.stats(2)).toEqual({ acquired: 5, contended: 0 });
  });

  it('release of a lock this thread does not hold throws InvalidArgumentError and changes nothing', () => {
    const locks = new ShardLocks(2);
    const freeBytes = lockBytes(locks, 0);
    expectInvalid(() => locks.release(0)); // free
    expect(lockBytes(locks, 0)).toEqual(freeBytes);
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    locks.release(0);
    expectInvalid(() => locks.release(0)); // released twice
    expect(locks.isBusy(0)).toBe(false);
    // Holding shard 0 does not let this thread release shard 1.
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    expectInvalid(() => locks.release(1));
    expect(locks.isBusy(0)).toBe(true);
    locks.release(0);
  });

  it('a poisoned lock refuses acquire (LOCK_POISONED, without waiting) and tryAcquire, on that shard only', () => {
    const locks = new ShardLocks(2);
    locks.poison(0);
    expect(locks.isPoisoned(0)).toBe(true);
    expect(locks.isPoisoned(1)).toBe(false);
    const { value, parks } = withBoundedWaits(() => locks.acquire(0));
    expect(value).toBe(LOCK_POISONED);
    expect(parks).toBe(0);
    expect(locks.tryAcquire(0)).toBe(false);
    expect(locks.holder(0)).toBe(-1);
    expect(locks.stats(0)).toEqual({ acquired: 0, contended: 0 });
    expect(ShardLocks.attach(locks.buffer).isPoisoned(0)).toBe(true);
    expect(locks.acquire(1)).toBe(LOCK_ACQUIRED);
    locks.release(1);
  });
});

describe('ShardLocks: real threads', () => {
  it('mutual exclusion: 3 workers and this thread increment a plain counter under the lock for 400 ms, and none is lost', async () => {
    const locks = new ShardLocks(2);
    const ws = await LockWorker.startMany(3, locks);
    const r = await countRun(locks, ws, 1, 400, true, 50);
    expect(r.refused).toBe(0);
    expect(r.overlaps).toBe(0);
    for (const n of r.perThread) expect(n).toBeGreaterThan(0); // every thread took part
    expect(r.count).toBe(r.expected);
    const stats = locks.stats(1);
    expect(stats.acquired).toBe(r.expected);
    // Four threads on one lock for 400 ms: many acquisitions found it held.
    expect(stats.contended).toBeGreaterThan(0);
    expect(stats.contended).toBeLessThanOrEqual(stats.acquired);
    expect(locks.isBusy(1)).toBe(false);
    expect(locks.holder(1)).toBe(-1);
    expect(raw(locks, 1).sleepers).toBe(0);
    expect(locks.stats(0)).toEqual({ acquired: 0, contended: 0 });
  });

  it('the same loop without the lock loses updates', async () => {
    const locks = new ShardLocks(1);
    const ws = await LockWorker.startMany(3, locks);
    // Without the lock nothing orders the plain read and write, so concurrent increments overwrite
    // each other. Measured on 2 cores: hundreds of thousands lost in every 200 ms run, so a few
    // attempts make a run without any loss practically impossible.
    let lost = 0;
    let overlaps = 0;
    for (let attempt = 0; attempt < 3 && lost === 0; attempt++) {
      const r = await countRun(locks, ws, 0, 200, false, 50);
      expect(r.count).toBeLessThanOrEqual(r.expected);
      lost = r.expected - r.count;
      overlaps = r.overlaps;
    }
    expect(lost).toBeGreaterThan(0);
    expect(overlaps).toBeGreaterThan(0);
    expect(locks.stats(0)).toEqual({ acquired: 0, contended: 0 });
  });

  it('FIFO: waiters that lined up one after another get the lock in arrival order', async () => {
    const locks = new ShardLocks(2);
    const n = 4;
    const order = new Int32Array(new SharedArrayBuffer(4 * (n + 1)));
    const ws = await LockWorker.startMany(n, locks, { order: order.buffer });
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    // Line them up in an order that is neither start order nor thread-id order.
    const arrival = [2, 0, 3, 1];
    const replies: Promise<Reply>[] = [];
    for (const [k, i] of arrival.entries()) {
      replies.push(ws[i]!.ok({ op: 'acquireRecordRelease', shard: 0, tag: i, holdMs: 5 }));
      // It holds ticket k+1 and sleeps before the next one asks.
      await until(() => queued(locks, 0) === k + 2 && raw(locks, 0).sleepers === k + 1, `waiter ${k} to line up`);
    }
    await delay(20);
    expect(Atomics.load(order, 0)).toBe(0); // nobody got past this thread
    locks.release(0);
    const rs = await Promise.all(replies);
    for (const r of rs) {
      expect(r.result).toBe(LOCK_ACQUIRED);
      expect(r.parks).toBeGreaterThanOrEqual(1); // each slept, and was woken
    }
    expect(Array.from(order)).toEqual([n, ...arrival]);
    expect(locks.stats(0)).toEqual({ acquired: n + 1, contended: n });
    expect(locks.isBusy(0)).toBe(false);
    expect(raw(locks, 0).sleepers).toBe(0);
  });

  it('FIFO holds for a waiter that arrives while earlier ones are being served', async () => {
    const locks = new ShardLocks(1);
    const n = 3;
    const order = new Int32Array(new SharedArrayBuffer(4 * (n + 2)));
    const ws = await LockWorker.startMany(n, locks, { order: order.buffer });
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    const first = ws[0]!.ok({ op: 'acquireRecordRelease', shard: 0, tag: 0, holdMs: 150 });
    await until(() => queued(locks, 0) === 2 && raw(locks, 0).sleepers === 1, 'waiter 0');
    const second = ws[1]!.ok({ op: 'acquireRecordRelease', shard: 0, tag: 1, holdMs: 0 });
    await until(() => queued(locks, 0) === 3 && raw(locks, 0).sleepers === 2, 'waiter 1');
    locks.release(0);
    // While worker 0 holds it (150 ms), worker 2 asks: it must queue behind worker 1.
    await until(() => Atomics.load(order, 0) === 1, 'worker 0 to take the lock');
    const third = ws[2]!.ok({ op: 'acquireRecordRelease', shard: 0, tag: 2, holdMs: 0 });
    await Promise.all([first, second, third]);
    expect(Array.from(order.subarray(0, 4))).toEqual([3, 0, 1, 2]);
  });

  it('a spurious wake-up is harmless: the woken waiter sleeps again and every waiter still gets its turn in order', async () => {
    const locks = new ShardLocks(1);
    const n = 3;
    const order = new Int32Array(new SharedArrayBuffer(4 * (n + 1)));
    const ws = await LockWorker.startMany(n, locks, { order: order.buffer });
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    const replies: Promise<Reply>[] = [];
    for (let k = 0; k < n; k++) {
      replies.push(ws[k]!.ok({ op: 'acquireRecordRelease', shard: 0, tag: k, holdMs: 2 }));
      await until(() => queued(locks, 0) === k + 2 && raw(locks, 0).sleepers === k + 1, `waiter ${k} to line up`);
    }
    // Wake the first sleeper (the holder of the next ticket) without serving it: it must go back
    // to sleep, now behind the others in the wait queue, and release must still reach it.
    const serving = new Int32Array(locks.buffer, HEADER_BYTES, LOCK_BYTES / 4);
    expect(Atomics.notify(serving, W_SERVING, 1)).toBe(1);
    await delay(50);
    await until(() => raw(locks, 0).sleepers === n, 'the woken waiter to sleep again');
    expect(Atomics.load(order, 0)).toBe(0);
    locks.release(0);
    for (const r of await Promise.all(replies)) expect(r.result).toBe(LOCK_ACQUIRED);
    expect(Array.from(order)).toEqual([n, 0, 1, 2]);
    expect(locks.isBusy(0)).toBe(false);
  });

  it('spin-then-sleep: a worker blocked far longer than the spin phase sleeps and is woken by release', async () => {
    const locks = new ShardLocks(1);
    const [w] = await LockWorker.startMany(1, locks);
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    const reply = w!.ok({ op: 'acquire', shard: 0 });
    await until(() => raw(locks, 0).sleepers === 1, 'the worker to sleep');
    await delay(250);
    expect(await settled(reply)).toBe(false);
    expect(raw(locks, 0).sleepers).toBe(1);
    const released = Date.now();
    locks.release(0);
    const r = await reply;
    expect(Date.now() - released).toBeLessThan(2_000);
    expect(r.result).toBe(LOCK_ACQUIRED);
    expect(r.parks).toBeGreaterThanOrEqual(1);
    expect(locks.holder(0)).toBe(w!.threadId);
    expect(raw(locks, 0).sleepers).toBe(0);
    expect(locks.stats(0)).toEqual({ acquired: 2, contended: 1 });
    await w!.ok({ op: 'release', shard: 0 });
    expect(locks.isBusy(0)).toBe(false);
  });

  it('spin-then-sleep in this thread: acquire sleeps while a worker holds the lock and wakes on its release', async () => {
    const locks = new ShardLocks(2);
    const [w] = await LockWorker.startMany(1, locks);
    expect((await w!.ok({ op: 'acquire', shard: 1 })).result).toBe(LOCK_ACQUIRED);
    expect(locks.holder(1)).toBe(w!.threadId);
    // The worker releases once this thread sleeps on the lock, however long getting there takes.
    const done = w!.ok({ op: 'releaseWhenSleeping', shard: 1, sleepersWord: (HEADER_BYTES + LOCK_BYTES) / 4 + W_SLEEPERS });
    const { value, parks } = withBoundedWaits(() => locks.acquire(1));
    expect(value).toBe(LOCK_ACQUIRED);
    expect(parks).toBeGreaterThanOrEqual(1);
    expect(locks.holder(1)).toBe(threadId);
    await done;
    locks.release(1);
    expect(locks.stats(1)).toEqual({ acquired: 2, contended: 1 });
  });

  it('poison wakes every sleeping waiter with LOCK_POISONED; tryAcquire and acquire then fail everywhere', async () => {
    const locks = new ShardLocks(2);
    const ws = await LockWorker.startMany(3, locks);
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    const replies = ws.map((w) => w.ok({ op: 'acquire', shard: 0 }));
    await until(() => queued(locks, 0) === 4 && raw(locks, 0).sleepers === 3, 'three sleeping waiters');
    await delay(50);
    for (const r of replies) expect(await settled(r)).toBe(false);
    const poisoned = Date.now();
    locks.poison(0);
    const rs = await Promise.all(replies);
    expect(Date.now() - poisoned).toBeLessThan(2_000);
    for (const r of rs) {
      expect(r.result).toBe(LOCK_POISONED);
      expect(r.parks).toBeGreaterThanOrEqual(1);
    }
    expect(raw(locks, 0).sleepers).toBe(0);
    expect(locks.isPoisoned(0)).toBe(true);
    expect(locks.tryAcquire(0)).toBe(false);
    expect(withBoundedWaits(() => locks.acquire(0)).value).toBe(LOCK_POISONED);
    expect((await ws[0]!.ok({ op: 'tryAcquire', shard: 0 })).result).toBe(false);
    expect((await ws[1]!.ok({ op: 'acquire', shard: 0 })).result).toBe(LOCK_POISONED);
    expect((await ws[2]!.ok({ op: 'state', shard: 0 })).poisoned).toBe(true);
    // Nobody but this thread ever held it.
    expect(locks.holder(0)).toBe(threadId);
    expect(locks.stats(0).acquired).toBe(1);
    // The other shard is untouched.
    expect(locks.isPoisoned(1)).toBe(false);
    expect((await ws[0]!.ok({ op: 'acquire', shard: 1 })).result).toBe(LOCK_ACQUIRED);
    await ws[0]!.ok({ op: 'release', shard: 1 });
  });

  it('poison from another thread wakes this thread asleep in acquire', async () => {
    const locks = new ShardLocks(2);
    const [holder, poisoner] = await LockWorker.startMany(2, locks);
    // Probe on shard 1 first: if poison does not wake a sleeping worker, blocking this thread on
    // it could hang the whole run (a waiter that spins on a poisoned lock never calls the bounded
    // Atomics.wait), so fail here instead.
    expect(locks.acquire(1)).toBe(LOCK_ACQUIRED);
    const probe = holder!.call({ op: 'acquire', shard: 1 }, 3_000);
    await until(() => raw(locks, 1).sleepers === 1, 'the probe to sleep');
    locks.poison(1);
    expect((await probe).result).toBe(LOCK_POISONED);
    expect((await holder!.ok({ op: 'acquire', shard: 0 })).result).toBe(LOCK_ACQUIRED);
    const done = poisoner!.ok({ op: 'poisonAfter', shard: 0, delayMs: 150 });
    const started = Date.now();
    const { value, parks } = withBoundedWaits(() => locks.acquire(0));
    expect(value).toBe(LOCK_POISONED);
    expect(parks).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    await done;
    expect(locks.holder(0)).toBe(holder!.threadId); // it never got the lock
  });

  it('release by a thread that does not hold the lock throws InvalidArgumentError, in either direction', async () => {
    const locks = new ShardLocks(2);
    const [w] = await LockWorker.startMany(1, locks);
    // The worker holds it: this thread cannot release it.
    expect((await w!.ok({ op: 'acquire', shard: 0 })).result).toBe(LOCK_ACQUIRED);
    const held = lockBytes(locks, 0);
    expectInvalid(() => locks.release(0));
    expect(lockBytes(locks, 0)).toEqual(held);
    expect(locks.holder(0)).toBe(w!.threadId);
    expect(locks.tryAcquire(0)).toBe(false);
    await w!.ok({ op: 'release', shard: 0 });
    expect(locks.isBusy(0)).toBe(false);
    // This thread holds it: the worker cannot release it.
    expect(locks.acquire(0)).toBe(LOCK_ACQUIRED);
    const r = await w!.call({ op: 'release', shard: 0 });
    expect(r.error?.code).toBe('InvalidArgument');
    expect(r.error?.name).toBe('InvalidArgumentError');
    expect(locks.holder(0)).toBe(threadId);
    expect(locks.isBusy(0)).toBe(true);
    // A free lock: the worker cannot release it either.
    locks.release(0);
    expect((await w!.call({ op: 'release', shard: 0 })).error?.code).toBe('InvalidArgument');
    expect(locks.isBusy(0)).toBe(false);
    // Its tryAcquire sees the lock free / held as it is.
    expect((await w!.ok({ op: 'tryAcquire', shard: 0 })).result).toBe(true);
    expect(locks.tryAcquire(0)).toBe(false);
    expect((await w!.ok({ op: 'state', shard: 0 })).holder).toBe(w!.threadId);
    await w!.ok({ op: 'release', shard: 0 });
    expect(locks.stats(0)).toEqual({ acquired: 3, contended: 0 });
  });

  it('tryAcquire fails while another thread holds the lock or waits for it, and takes no ticket', async () => {
    const locks = new ShardLocks(1);
    const [a, b] = await LockWorker.startMany(2, locks);
    expect((await a!.ok({ op: 'acquire', shard: 0 })).result).toBe(LOCK_ACQUIRED);
    expect(locks.tryAcquire(0)).toBe(false);
    const waiting = b!.ok({ op: 'acquire', shard: 0 });
    await until(() => raw(locks, 0).sleepers === 1, 'b to sleep');
    expect(locks.tryAcquire(0)).toBe(false);
    expect(queued(locks, 0)).toBe(2);
    await a!.ok({ op: 'release', shard: 0 });
    expect((await waiting).result).toBe(LOCK_ACQUIRED);
    expect(locks.tryAcquire(0)).toBe(false); // b holds it now
    await b!.ok({ op: 'release', shard: 0 });
    expect(queued(locks, 0)).toBe(0);
    expect(locks.tryAcquire(0)).toBe(true);
    locks.release(0);
    expect(locks.stats(0)).toEqual({ acquired: 3, contended: 1 });
  });

  it('tickets wrap around 2^31 and 2^32: acquisition, waiting, FIFO and tryAcquire still work', async () => {
    const locks = new ShardLocks(2);
    const n = 2;
    const order = new Int32Array(new SharedArrayBuffer(4 * (n + 1)));
    const ws = await LockWorker.startMany(n, locks, { order: order.buffer });
    const w = new Int32Array(locks.buffer);
    for (const start of [0x7ffffffe, -2]) {
      // Forge both counters just below the wrap (docs/FORMATS.md §7: only equality is compared).
      const b = (HEADER_BYTES + 1 * LOCK_BYTES) / 4;
      expect(locks.isBusy(1)).toBe(false);
      Atomics.store(w, b + W_NEXT, start);
      Atomics.store(w, b + W_SERVING, start);
      Atomics.store(order, 0, 0);
      expect(locks.tryAcquire(1)).toBe(true); // start → start + 1
      locks.release(1);
      expect(locks.acquire(1)).toBe(LOCK_ACQUIRED); // holds ticket start + 1; next wraps
      const replies: Promise<Reply>[] = [];
      for (let k = 0; k < n; k++) {
        replies.push(ws[k]!.ok({ op: 'acquireRecordRelease', shard: 1, tag: k, holdMs: 2 }));
        await until(() => queued(locks, 1) === k + 2 && raw(locks, 1).sleepers === k + 1, `waiter ${k} across the wrap`);
      }
      expect(locks.tryAcquire(1)).toBe(false);
      locks.release(1);
      for (const r of await Promise.all(replies)) expect(r.result).toBe(LOCK_ACQUIRED);
      expect(Array.from(order)).toEqual([n, 0, 1]);
      expect(locks.isBusy(1)).toBe(false);
      expect(raw(locks, 1).next).toBe((start + 2 + n) | 0);
      expect(locks.tryAcquire(1)).toBe(true);
      locks.release(1);
    }
  });

  it('separate shards do not block each other', async () => {
    const locks = new ShardLocks(3);
    const [a, b] = await LockWorker.startMany(2, locks);
    expect((await a!.ok({ op: 'acquire', shard: 0 })).result).toBe(LOCK_ACQUIRED);
    const waiting = b!.ok({ op: 'acquire', shard: 0 });
    await until(() => raw(locks, 0).sleepers === 1, 'b to sleep on shard 0');
    const shard0 = lockBytes(locks, 0);
    // Shards 1 and 2 are free for this thread, without waiting.
    const { parks } = withBoundedWaits(() => {
      for (let i = 0; i < 200; i++) {
        expect(locks.acquire(1)).toBe(LOCK_ACQUIRED);
        expect(locks.tryAcquire(2)).toBe(true);
        locks.release(2);
        locks.release(1);
      }
    });
    expect(parks).toBe(0);
    // ... and none of that touched shard 0 or woke its waiter.
    expect(lockBytes(locks, 0)).toEqual(shard0);
    await delay(50);
    expect(await settled(waiting)).toBe(false);
    // A worker holding shard 0 can take shard 2 while b still waits on shard 0.
    expect((await a!.ok({ op: 'acquire', shard: 2 })).result).toBe(LOCK_ACQUIRED);
    await a!.ok({ op: 'release', shard: 2 });
    // Poisoning shard 1 does not wake or refuse shard 0's waiter.
    locks.poison(1);
    await delay(50);
    expect(await settled(waiting)).toBe(false);
    await a!.ok({ op: 'release', shard: 0 });
    expect((await waiting).result).toBe(LOCK_ACQUIRED);
    await b!.ok({ op: 'release', shard: 0 });
    expect(locks.stats(0)).toEqual({ acquired: 2, contended: 1 });
    expect(locks.stats(1)).toEqual({ acquired: 200, contended: 0 });
    expect(locks.stats(2)).toEqual({ acquired: 201, contended: 0 });
  });

  it('two shards under concurrent load keep their own exact counts', async () => {
    const locks = new ShardLocks(2);
    const ws = await LockWorker.startMany(2, locks);
    const bufs = [countBuffers(), countBuffers()];
    // One shared start line for both workers.
    bufs[1] = { ...bufs[1]!, ready: bufs[0]!.ready, go: bufs[0]!.go, control: bufs[0]!.control };
    const replies = ws.map((w, i) => w.ok({ op: 'count', shard: i, useLock: true, work: 50, ...bufs[i]! }, 40_000));
    const deadline = await startCounting(bufs[0]!, 2, 300);
    // This thread alternates between the shards.
    const mine = [0, 0];
    const here = withBoundedWaits(() => {
      let overlaps = 0;
      for (let i = 0; Date.now() < deadline; i++) {
        const s = i & 1;
        const r = countLoop({ locks, acquired: LOCK_ACQUIRED, shard: s, counter: new Int32Array(bufs[s]!.counter), owner: new Int32Array(bufs[s]!.owner), useLock: true, work: 50, deadline: Number.POSITIVE_INFINITY, me: threadId + 1, rounds: 1 });
        overlaps += r.overlaps;
        mine[s]! += r.done;
      }
      return overlaps;
    }).value;
    const rs = await Promise.all(replies);
    expect(here + rs[0]!.overlaps! + rs[1]!.overlaps!).toBe(0);
    for (const s of [0, 1]) {
      const expected = rs[s]!.done! + mine[s]!;
      expect(rs[s]!.done).toBeGreaterThan(0);
      expect(mine[s]).toBeGreaterThan(0);
      expect(new Int32Array(bufs[s]!.counter)[0]).toBe(expected);
      expect(locks.stats(s).acquired).toBe(expected);
    }
  });
});
