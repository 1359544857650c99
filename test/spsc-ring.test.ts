/**
 * SpscRing (single-producer/single-consumer ring of variable-length messages over a
 * SharedArrayBuffer) and CRC-32C.
 *
 * - validation of capacities, messages and attached buffers;
 * - single-thread semantics: FIFO, byte-exact contents, messages never split across the end (wrap
 *   markers), full ring, reserve/commit/publish visibility, `used` accounting, release;
 * - a fast-check model of the ring's queue and positions (including positions that cross 2^31 and
 *   2^32);
 * - real threads: millions of numbered, byte-checkable messages through a 64 KiB ring in both
 *   directions (the worker runs the compiled ring from dist/), with slow consumers and slow
 *   producers so both sides park; a parked waiter is woken by publish, release and close;
 * - CRC-32C vectors (RFC 3720 B.4), chaining, the word-wise variant against the byte-wise one.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RING_CAPACITY, MIN_RING_CAPACITY, SharedMemoryError, SpscRing, crc32c, crc32cWords } from './helpers/lib.js';
import { expectError, expectInvalid } from './helpers/errors.js';
import { xorshift32 } from './helpers/kernels.js';
import { consumeStream, produceStream, type ConsumeResult, type ProduceResult, type SideOptions } from './fixtures/ring-stream.mjs';
import { runWorker as runFixture, terminateWorkers, until } from './helpers/workers.js';

const WORKER = fileURLToPath(new URL('./fixtures/ring-worker.mjs', import.meta.url));

/** Layout facts the tests forge or inspect (mirrors src/core/spsc-ring.ts). */
const DATA_OFFSET = 768;
const I_MAGIC = 0;
const I_VERSION = 1;
const I_CAPACITY = 2;
const I_HEAD = 128 / 4;
const I_TAIL = 256 / 4;
const MAGIC = 0x47525443;

// ------------------------------------------------------------------------------------ helpers

type WaitResult = 'ok' | 'not-equal' | 'timed-out';
type WaitCounts = Record<WaitResult, number>;
type WaitFn = (ta: Int32Array, index: number, value: number, timeout?: number) => WaitResult;
const atomics = Atomics as unknown as { wait: WaitFn };
const realWait: WaitFn = atomics.wait.bind(Atomics);

/**
 * Runs `fn` with this thread's Atomics.wait wrapped: `onWait` sees each real park and its result;
 * `beforePark` runs just before each park.
 */
function withWaits<T>(onWait: (result: WaitResult) => void, fn: () => T, beforePark?: () => void): T {
  atomics.wait = (ta, index, value, timeout) => {
    beforePark?.();
    const r = realWait(ta, index, value, timeout);
    onWait(r);
    return r;
  };
  try {
    return fn();
  } finally {
    atomics.wait = realWait;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number): void => void realWait(sleeper, 0, 0, ms);
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic u32s (xorshift32). */
const prng = xorshift32;

/** A framed message of `n` bytes: u32 LE length, then pseudo-random bytes from `seed`. */
function message(n: number, seed = n): Uint8Array {
  const m = new Uint8Array(n);
  const next = prng(seed * 2654435761 + 1);
  for (let i = 4; i < n; i++) m[i] = next() & 0xff;
  new DataView(m.buffer).setUint32(0, n, true);
  return m;
}

/** Like `message` but with any header. */
function raw(n: number, header: number): Uint8Array {
  const m = new Uint8Array(n);
  if (n >= 4) new DataView(m.buffer).setUint32(0, header >>> 0, true);
  return m;
}

const bytesOf = (m: Uint8Array | null): number[] | null => (m === null ? null : Array.from(m));
const buf = (m: Uint8Array): Buffer => Buffer.from(m.buffer, m.byteOffset, m.length);

/** `got` has exactly the bytes of `want` (fast compare; a readable diff when they differ). */
function expectBytes(got: Uint8Array | null, want: Uint8Array): void {
  if (got !== null && got.length === want.length && buf(got).equals(buf(want))) return;
  expect(bytesOf(got)).toEqual(bytesOf(want));
}

/** FNV-1a over the data area. */
function digest(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** State a refused operation must not change. */
function snapshot(ring: SpscRing): { head: number; tail: number; used: number; data: number } {
  return { head: ring.head(), tail: ring.tail(), used: ring.used, data: digest(ring.bytes) };
}

/** A fresh ring whose head and tail both start at `start` (forged, then attached). */
function ringAt(capacity: number, start: number): { producer: SpscRing; consumer: SpscRing } {
  const base = new SpscRing({ capacity });
  const ctl = new Int32Array(base.buffer, 0, DATA_OFFSET / 4);
  ctl[I_HEAD] = start | 0;
  ctl[I_TAIL] = start | 0;
  base.bytes.fill(0xa5); // stale bytes: a missing wrap marker cannot read as one
  const producer = SpscRing.attach(base.buffer);
  const consumer = SpscRing.attach(base.buffer);
  expect(producer.head() >>> 0).toBe(start >>> 0); // the forged layout is the real one
  expect(consumer.tail() >>> 0).toBe(start >>> 0);
  return { producer, consumer };
}

// ------------------------------------------------------------------------------------ workers

interface WorkerReport extends Partial<ProduceResult>, Partial<ConsumeResult> {
  waits: WaitCounts;
  result?: boolean;
  closed?: boolean;
  message?: number[] | null;
  pushed?: boolean;
  error?: string | null;
}

/** Starts the ring worker; resolves with its one report, rejects on a thrown error, exit or timeout. */
function runWorker(workerData: Record<string, unknown>, timeoutMs = 30_000): Promise<WorkerReport> {
  return runFixture<WorkerReport>(WORKER, workerData, {
    timeoutMs,
    failed: (m) => (typeof m.error === 'string' && m.received === undefined ? `worker failed: ${m.error}` : undefined),
  });
}

afterEach(async () => {
  atomics.wait = realWait;
  await terminateWorkers();
});

// ===================================================================================== tests

describe('SpscRing: validation', () => {
  it('accepts power-of-two capacities from MIN to MAX and refuses others with InvalidArgumentError', () => {
    expect(MIN_RING_CAPACITY).toBe(4096);
    expect(MAX_RING_CAPACITY).toBe(2 ** 30);
    for (const capacity of [4096, 8192, 65536]) {
      const ring = new SpscRing({ capacity });
      expect(ring.capacity).toBe(capacity);
      expect(ring.maxMessageBytes).toBe(capacity / 2);
      expect(ring.bytes.length).toBe(capacity);
      expect(ring.words.length).toBe(capacity / 4);
      expect(ring.used).toBe(0);
      expect(ring.closed).toBe(false);
    }
    // Not a power of two, too small, too large (not allocated: refused before), not a number.
    for (const capacity of [5000, 4097, 6144, 12288, 4096 + 8, 2 ** 20 - 1, -4096, 4096.5, NaN, Infinity]) {
      expectInvalid(() => new SpscRing({ capacity }));
    }
    for (const capacity of [0, 1, 8, 1024, 2048]) expectInvalid(() => new SpscRing({ capacity }));
    for (const capacity of [2 ** 31, 2 ** 32, 2 ** 40]) expectInvalid(() => new SpscRing({ capacity }));
    expectInvalid(() => new SpscRing({ capacity: '4096' as unknown as number }));
    expectInvalid(() => new SpscRing(undefined as unknown as { capacity: number }));
    expectInvalid(() => new SpscRing({} as { capacity: number }));
  });

  it('tryPush refuses a badly framed message with InvalidArgumentError and changes nothing', () => {
    const ring = new SpscRing({ capacity: 4096 });
    ring.tryPush(message(16)); // something in it, so "changes nothing" is not about an empty ring
    const before = snapshot(ring);
    const bad = [
      raw(16, 8), // first u32 is not the length
      raw(16, 0),
      raw(16, 17),
      raw(16, 16 + 2 ** 24), // length in the wrong byte
      raw(16, 16 << 8),
      raw(12, 12), // not a multiple of 8
      raw(20, 20),
      raw(2044, 2044),
      raw(4, 4), // < 8
      raw(0, 0),
      raw(2056, 2056), // > capacity / 2
      raw(4096, 4096),
      raw(8192, 8192),
    ];
    for (const m of bad) expectInvalid(() => ring.tryPush(m));
    expect(snapshot(ring)).toEqual(before);
    // The limits themselves are fine.
    expect(ring.tryPush(message(8))).toBe(true);
    expect(ring.tryPop()).not.toBeNull();
    expect(ring.tryPop()).not.toBeNull();
    expect(ring.tryPush(message(2048))).toBe(true);
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(message(2048)));
  });

  it('attach refuses a plain ArrayBuffer, a wrong size, a wrong magic or version with SharedMemoryError', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const good = ring.buffer;
    const copyOf = (src: SharedArrayBuffer, size = src.byteLength): SharedArrayBuffer => {
      const b = new SharedArrayBuffer(size);
      new Uint8Array(b).set(new Uint8Array(src, 0, Math.min(size, src.byteLength)));
      return b;
    };
    const withWord = (index: number, value: number): SharedArrayBuffer => {
      const b = copyOf(good);
      new Int32Array(b)[index] = value;
      return b;
    };
    const plain = new ArrayBuffer(good.byteLength);
    new Uint8Array(plain).set(new Uint8Array(good));
    const garbage: unknown[] = [
      plain, // right bytes, but not shared
      new Uint8Array(good), // a view, not the buffer
      new SharedArrayBuffer(0),
      new SharedArrayBuffer(DATA_OFFSET + 4096), // right size, all zero
      copyOf(good, DATA_OFFSET + 4095), // too small
      copyOf(good, DATA_OFFSET + 4096 + 8), // header says 4096, buffer is bigger
      copyOf(good, DATA_OFFSET + 8192),
      copyOf(new SpscRing({ capacity: 8192 }).buffer, DATA_OFFSET + 4096), // header says 8192, buffer is smaller
      withWord(I_MAGIC, MAGIC ^ 1), // wrong magic
      withWord(I_MAGIC, 0),
      withWord(I_VERSION, 2), // wrong layout version
      withWord(I_VERSION, 0),
      withWord(I_CAPACITY, 8192), // capacity disagrees with the size
      withWord(I_CAPACITY, 0),
      withWord(I_CAPACITY, -1),
      null,
      undefined,
      {},
    ];
    for (const b of garbage) expectError(() => SpscRing.attach(b as SharedArrayBuffer), SharedMemoryError, 'InvalidSharedMemory');
    // The good one attaches and shares the memory.
    const other = SpscRing.attach(good);
    expect(other.capacity).toBe(4096);
    expect(other.maxMessageBytes).toBe(2048);
    expect(ring.tryPush(message(40))).toBe(true);
    expect(other.used).toBe(40);
    expect(bytesOf(other.tryPop())).toEqual(bytesOf(message(40)));
    expect(ring.used).toBe(0);
  });

  // attach must check the capacity itself, not only that the size matches the header: a forged
  // capacity that is not a power of two would give a mask that is not one.
  it('attach refuses a consistent header whose capacity is not a power of two', () => {
    for (const capacity of [6000, 4100, 12288]) {
      const b = new SharedArrayBuffer(DATA_OFFSET + capacity);
      const ctl = new Int32Array(b, 0, DATA_OFFSET / 4);
      ctl[I_MAGIC] = MAGIC;
      ctl[I_VERSION] = 1;
      ctl[I_CAPACITY] = capacity;
      expectError(() => SpscRing.attach(b), SharedMemoryError, 'InvalidSharedMemory');
    }
  });
});

describe('SpscRing: single-thread semantics', () => {
  it('delivers messages in FIFO order, byte for byte, to the same object and to an attached one', () => {
    const ring = new SpscRing({ capacity: 8192 });
    const consumer = SpscRing.attach(ring.buffer);
    const sizes = [8, 16, 24, 512, 4096, 8, 1000 & ~7, 64, 2040, 32];
    const sent = sizes.map((n, k) => message(n, k + 1));
    let total = 0;
    for (const m of sent) {
      expect(ring.tryPush(m)).toBe(true);
      total += m.length;
      expect(ring.used).toBe(total);
      expect(consumer.used).toBe(total);
    }
    const got: (number[] | null)[] = [];
    for (let k = 0; k < sent.length; k++) {
      got.push(bytesOf(k % 2 === 0 ? consumer.tryPop() : ring.tryPop()));
    }
    expect(got).toEqual(sent.map(bytesOf));
    expect(ring.tryPop()).toBeNull();
    expect(consumer.tryPop()).toBeNull();
    expect(ring.used).toBe(0);
    expect(ring.tail()).toBe(total);
    expect(ring.head()).toBe(total);
  });

  it('never splits a message across the end: a wrap marker, the message whole at offset 0, positions count the gap', () => {
    const ring = new SpscRing({ capacity: 4096 });
    ring.bytes.fill(0xa5); // stale bytes everywhere: no zero word is there by accident
    const a = message(2048, 1);
    const b = message(1024, 2);
    const c = message(1536, 3);
    expect(ring.tryPush(a)).toBe(true);
    expect(ring.tryPush(b)).toBe(true); // head 3072: 1024 bytes before the end
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(a)); // tail 2048
    expect(ring.used).toBe(1024);

    expect(ring.reserve(1536)).toBe(0); // does not fit the 1024 before the end: goes to offset 0
    ring.bytes.set(c, 0);
    ring.commit();
    expect(ring.head()).toBe(3072); // committed, not published
    ring.publish();
    expect(ring.head()).toBe(3072 + 1024 + 1536); // the skipped tail counts
    expect(ring.used).toBe(1024 + 1024 + 1536);
    expect(ring.words[3072 / 4]).toBe(0); // the wrap marker

    // Consumer side, in place: b is where it was, then the marker sends the reader to the next lap.
    const consumer = SpscRing.attach(ring.buffer);
    let tail = consumer.tail();
    expect(tail).toBe(2048);
    expect(consumer.messageStart(tail)).toBe(2048);
    expect(consumer.lengthAt(consumer.offsetOf(tail))).toBe(1024);
    expect(Array.from(consumer.bytes.subarray(2048, 3072))).toEqual(bytesOf(b));
    tail = 3072;
    consumer.release(tail);
    expect(consumer.used).toBe(1024 + 1536);
    const start = consumer.messageStart(tail);
    expect(start).toBe(4096);
    expect(consumer.offsetOf(start)).toBe(0);
    expect(consumer.lengthAt(0)).toBe(1536);
    expect(Array.from(consumer.bytes.subarray(0, 1536))).toEqual(bytesOf(c));
    consumer.release(start + 1536);
    expect(ring.used).toBe(0);
    expect(ring.tail()).toBe(4096 + 1536);

    // Same through tryPop: a wrap in the middle of a queue.
    const ring2 = new SpscRing({ capacity: 4096 });
    ring2.bytes.fill(0x5a);
    const m = [message(1024, 4), message(2048, 5), message(1024, 6), message(2048, 7)];
    expect(ring2.tryPush(m[0]!)).toBe(true);
    expect(ring2.tryPush(m[1]!)).toBe(true);
    expect(bytesOf(ring2.tryPop())).toEqual(bytesOf(m[0]!)); // tail 1024, head 3072
    expect(ring2.tryPush(m[2]!)).toBe(true); // exactly to the end: no marker, head 4096
    expect(ring2.tryPush(m[3]!)).toBe(false); // 2048 at offset 0 needs tail >= 2048
    expect(bytesOf(ring2.tryPop())).toEqual(bytesOf(m[1]!));
    expect(ring2.tryPush(m[3]!)).toBe(true);
    expect(ring2.used).toBe(1024 + 2048);
    expect(bytesOf(ring2.tryPop())).toEqual(bytesOf(m[2]!));
    expect(bytesOf(ring2.tryPop())).toEqual(bytesOf(m[3]!));
    expect(ring2.tryPop()).toBeNull();
  });

  it('a message that fits the free bytes but not with the wrap gap is refused; one that ends exactly at the end is not', () => {
    const ring = new SpscRing({ capacity: 4096 });
    expect(ring.tryPush(message(1024, 1))).toBe(true);
    expect(ring.tryPush(message(2048, 2))).toBe(true); // head 3072
    ring.tryPop(); // tail 1024: 2048 free, 1024 before the end, 1024 after the wrap
    expect(ring.used).toBe(2048);
    const before = snapshot(ring);
    expect(ring.reserve(1536)).toBe(-1); // 1024 skipped + 1536 > 2048
    expect(ring.reserve(1032)).toBe(-1); // 1024 skipped + 1032 > 2048
    expect(ring.tryPush(message(1536))).toBe(false);
    expect(snapshot(ring)).toEqual(before);
    expect(ring.reserve(1024)).toBe(3072); // exactly to the end
    expect(ring.tryPush(message(1024, 3))).toBe(true);
    expect(ring.head()).toBe(4096);
    expect(ring.used).toBe(3072);
    expect(ring.tryPush(message(1024, 4))).toBe(true); // offset 0, up to the tail: full
    expect(ring.used).toBe(4096);
    expect(ring.reserve(8)).toBe(-1);
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(message(2048, 2)));
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(message(1024, 3)));
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(message(1024, 4)));
  });

  it('a full ring: reserve returns -1 and tryPush false, changing nothing; release frees exactly the space released', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const sent: Uint8Array[] = [];
    for (let k = 0; k < 8; k++) {
      sent.push(message(512, k));
      expect(ring.tryPush(sent[k]!)).toBe(true);
    }
    expect(ring.used).toBe(4096);
    const before = snapshot(ring);
    for (const n of [8, 16, 512, 2048]) {
      expect(ring.reserve(n)).toBe(-1);
      expect(ring.tryPush(message(n, 99))).toBe(false);
    }
    ring.publish(); // nothing committed: publishing changes nothing either
    expect(snapshot(ring)).toEqual(before);

    // Release 512 bytes in place: exactly 512 fit, 520 do not.
    const consumer = SpscRing.attach(ring.buffer);
    const start = consumer.messageStart(consumer.tail());
    expect(consumer.lengthAt(consumer.offsetOf(start))).toBe(512);
    consumer.release(start + 512);
    expect(ring.used).toBe(4096 - 512);
    expect(ring.reserve(520)).toBe(-1);
    expect(ring.reserve(8)).toBe(0);
    expect(ring.reserve(512)).toBe(0);
    const late = message(512, 100);
    expect(ring.tryPush(late)).toBe(true);
    expect(ring.used).toBe(4096);
    expect(ring.tryPush(message(8))).toBe(false);
    // Everything else comes out intact, then the late one.
    for (let k = 1; k < 8; k++) expect(bytesOf(consumer.tryPop())).toEqual(bytesOf(sent[k]!));
    expect(bytesOf(consumer.tryPop())).toEqual(bytesOf(late));
    expect(consumer.tryPop()).toBeNull();
    expect(ring.used).toBe(0);
  });

  it('reserve without commit leaves nothing visible and the space free; commit without publish stays invisible until publish', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const consumer = SpscRing.attach(ring.buffer);
    const m = message(64, 7);
    const at = ring.reserve(64);
    expect(at).toBe(0);
    ring.bytes.set(m, at);
    expect(ring.head()).toBe(0);
    expect(consumer.used).toBe(0);
    expect(consumer.tryPop()).toBeNull();
    ring.publish(); // reserved but not committed: still nothing
    expect(consumer.used).toBe(0);
    expect(consumer.tryPop()).toBeNull();
    expect(ring.reserve(2048)).toBe(0); // the same space again: reserving did not take it
    expect(ring.reserve(64)).toBe(0);

    // Commit three, publish once: nothing, then all three in order.
    const batch = [message(64, 7), message(8, 8), message(128, 9)];
    let expectedHead = 0;
    for (const b of batch) {
      const off = ring.reserve(b.length);
      expect(off).toBe(expectedHead);
      ring.bytes.set(b, off);
      ring.commit();
      expectedHead += b.length;
      expect(ring.head()).toBe(0);
      expect(consumer.used).toBe(0);
      expect(consumer.tryPop()).toBeNull();
    }
    expect(consumer.waitForData(consumer.tail(), 0, 4)).toBe(false);
    ring.publish();
    expect(ring.head()).toBe(expectedHead);
    expect(consumer.used).toBe(expectedHead);
    expect(consumer.waitForData(consumer.tail(), 0, 0)).toBe(true);
    expect(batch.map(() => bytesOf(consumer.tryPop()))).toEqual(batch.map(bytesOf));
    expect(consumer.tryPop()).toBeNull();
  });

  it('waitForData and waitForSpace: true at once when there is data or room, false on timeout otherwise', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const parks: WaitResult[] = [];
    withWaits(
      (r) => parks.push(r),
      () => {
        expect(ring.waitForSpace(2048, 10_000)).toBe(true);
        expect(ring.waitForData(ring.tail(), 5, 0)).toBe(false); // parks, times out
        expect(parks).toEqual(['timed-out']);
        ring.tryPush(message(2048));
        ring.tryPush(message(2048));
        expect(ring.waitForData(ring.tail(), 10_000)).toBe(true);
        expect(ring.waitForData(ring.tail(), 10_000, 0)).toBe(true);
        expect(ring.waitForSpace(8, 5, 0)).toBe(false); // full: parks, times out
        expect(parks).toEqual(['timed-out', 'timed-out']);
        ring.tryPop();
        expect(ring.waitForSpace(2048, 10_000, 0)).toBe(true);
        expect(ring.waitForSpace(2048, 10_000)).toBe(true);
      },
    );
  });

  it('close(): closed on both objects; waits return at once (with data: true; without: false); data still drains', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const other = SpscRing.attach(ring.buffer);
    const parks: WaitResult[] = [];
    withWaits(
      (r) => parks.push(r),
      () => {
        ring.tryPush(message(2048, 1));
        ring.tryPush(message(2048, 2));
        other.close();
        expect(ring.closed).toBe(true);
        expect(other.closed).toBe(true);
        expect(ring.waitForSpace(8, 5_000, 0)).toBe(false); // full and closed
        expect(other.waitForData(other.tail(), 5_000, 0)).toBe(true); // closed, but data is there
        expect(bytesOf(other.tryPop())).toEqual(bytesOf(message(2048, 1)));
        expect(ring.waitForSpace(2048, 5_000, 0)).toBe(true); // room is room
        expect(bytesOf(other.tryPop())).toEqual(bytesOf(message(2048, 2)));
        expect(other.waitForData(other.tail(), 5_000, 0)).toBe(false); // empty and closed
        expect(other.waitForData(other.tail(), 5_000)).toBe(false);
        ring.close(); // idempotent
        expect(ring.closed).toBe(true);
      },
    );
    expect(parks.filter((r) => r === 'timed-out')).toEqual([]);
  });

  // A close() that lands between a waiter's `closed` check and its park must still wake it (no
  // lost wake-up; otherwise the persistence worker's shutdown would stall for its timeout). The
  // hook below closes the ring right after the waiter's `closed` check.
  function closeRightAfterTheCheck(ring: SpscRing): { fired: boolean } {
    const state = { fired: false };
    const getter = Object.getOwnPropertyDescriptor(SpscRing.prototype, 'closed')!.get!;
    Object.defineProperty(ring, 'closed', {
      configurable: true,
      get() {
        const c = getter.call(ring) as boolean;
        if (!c && !state.fired) {
          state.fired = true;
          ring.close();
        }
        return c;
      },
    });
    return state;
  }

  it('close() between a consumer\u2019s closed-check and its park still wakes it', () => {
    const ring = new SpscRing({ capacity: 4096 });
    const hook = closeRightAfterTheCheck(ring);
    const parks: WaitResult[] = [];
    const r = withWaits(
      (x) => parks.push(x),
      () => ring.waitForData(ring.tail(), 300, 0),
    );
    expect(hook.fired).toBe(true);
    expect(r).toBe(false);
    expect(parks.filter((x) => x === 'timed-out')).toEqual([]); // woken by close, not by the timeout
  });

  it('close() between a producer\u2019s closed-check and its park still wakes it', () => {
    const ring = new SpscRing({ capacity: 4096 });
    ring.tryPush(message(2048));
    ring.tryPush(message(2048));
    const hook = closeRightAfterTheCheck(ring);
    const parks: WaitResult[] = [];
    const r = withWaits(
      (x) => parks.push(x),
      () => ring.waitForSpace(8, 300, 0),
    );
    expect(hook.fired).toBe(true);
    expect(r).toBe(false);
    expect(parks.filter((x) => x === 'timed-out')).toEqual([]);
  });

  it('positions run freely across 2^31 and 2^32: offsets, wraps, used and the consumer\u2019s positions stay right', () => {
    for (const start of [0x7fffff00, 0xffffff00, 0xfffff800, 0x80000000 - 8]) {
      const { producer, consumer } = ringAt(4096, start);
      const queue: { m: Uint8Array; end: number }[] = [];
      let head = start; // model positions, not wrapped
      let tail = start;
      let wraps = 0;
      for (let k = 0; k < 400; k++) {
        const n = 8 * (1 + ((k * 37) % 200)); // 8..1600
        const m = message(n, k + 1);
        const off = head % 4096;
        const skip = n <= 4096 - off ? 0 : 4096 - off;
        const fits = head - tail + skip + n <= 4096;
        expect(producer.tryPush(m)).toBe(fits);
        if (fits) {
          if (skip !== 0) wraps++;
          head += skip + n;
          queue.push({ m, end: head });
        } else {
          const e = queue.shift()!;
          expectBytes(consumer.tryPop(), e.m);
          tail = e.end;
        }
        expect(producer.head() >>> 0).toBe(head % 2 ** 32);
        expect(consumer.tail() >>> 0).toBe(tail % 2 ** 32);
        expect(consumer.used).toBe(head - tail);
      }
      for (const e of queue) expectBytes(consumer.tryPop(), e.m);
      expect(consumer.tryPop()).toBeNull();
      expect(consumer.used).toBe(0);
      expect(wraps).toBeGreaterThan(10);
      expect(head - start).toBeGreaterThan(8 * 4096); // well past the boundary
    }
  });
});

describe('SpscRing: model-based property (fast-check)', () => {
  type Op =
    | { kind: 'push'; units: number; seed: number; api: 'try' | 'reserve' }
    | { kind: 'pop'; api: 'try' | 'inplace' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('push' as const),
        units: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 512 })),
        seed: fc.integer({ min: 1, max: 0x7fffffff }),
        api: fc.constantFrom('try' as const, 'reserve' as const),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('pop' as const), api: fc.constantFrom('try' as const, 'inplace' as const) }) },
  );
  const startArb = fc.oneof(
    fc.constant(0),
    fc.constantFrom(0x7fffff00, 0xffffff00, 0xfffff000, 0x80000000 - 8, 0x100000000 - 8),
    fc.integer({ min: 0, max: 0x1fffffff }).map((x) => x * 8),
  );

  it('every pop equals the model queue\u2019s; a push fails exactly when the bytes plus any wrap gap do not fit', () => {
    const seen = { pushes: 0, refused: 0, refusedForTheGap: 0, wraps: 0, full: 0, pops: 0 };
    fc.assert(
      fc.property(fc.constantFrom(4096, 8192), startArb, fc.array(opArb, { minLength: 10, maxLength: 150, size: 'max' }), (capacity, start, ops) => {
        const { producer, consumer } = start === 0 ? (() => {
          const r = new SpscRing({ capacity });
          r.bytes.fill(0xa5);
          return { producer: r, consumer: SpscRing.attach(r.buffer) };
        })() : ringAt(capacity, start);
        const queue: { bytes: Uint8Array; start: number }[] = [];
        let head = start; // unwrapped model positions
        let tail = start;
        for (const op of ops) {
          if (op.kind === 'push') {
            const n = 8 * (1 + ((op.units - 1) % (capacity / 16)));
            const m = message(n, op.seed);
            const off = head % capacity;
            const skip = n <= capacity - off ? 0 : capacity - off;
            const fits = head - tail + skip + n <= capacity;
            const before = fits ? null : snapshot(producer);
            let ok: boolean;
            if (op.api === 'try') ok = producer.tryPush(m);
            else {
              const at = producer.reserve(n);
              ok = at >= 0;
              if (ok) {
                expect(at).toBe(skip === 0 ? off : 0);
                producer.bytes.set(m, at);
                producer.commit();
                producer.publish();
              }
            }
            expect(ok).toBe(fits);
            seen.pushes++;
            if (!fits) {
              seen.refused++;
              if (head - tail + n <= capacity) seen.refusedForTheGap++; // the bytes alone would fit
              expect(snapshot(producer)).toEqual(before);
            } else {
              if (skip !== 0) {
                seen.wraps++;
                expect(producer.words[off >>> 2]).toBe(0);
              }
              queue.push({ bytes: m, start: head + skip });
              head += skip + n;
              if (head - tail === capacity) seen.full++;
            }
          } else {
            const exp = queue.shift();
            if (exp === undefined) {
              expect(consumer.head()).toBe(consumer.tail());
              expect(consumer.tryPop()).toBeNull();
            } else {
              seen.pops++;
              if (op.api === 'try') expectBytes(consumer.tryPop(), exp.bytes);
              else {
                const s = consumer.messageStart(consumer.tail());
                expect(s >>> 0).toBe(exp.start % 2 ** 32);
                const o = consumer.offsetOf(s);
                const n = consumer.lengthAt(o);
                expect(n).toBe(exp.bytes.length);
                expect(o + n).toBeLessThanOrEqual(capacity);
                expectBytes(consumer.bytes.subarray(o, o + n), exp.bytes);
                consumer.release((s + n) | 0);
              }
              tail = exp.start + exp.bytes.length;
            }
          }
          expect(producer.head() >>> 0).toBe(head % 2 ** 32);
          expect(consumer.tail() >>> 0).toBe(tail % 2 ** 32);
          expect(consumer.used).toBe(head - tail);
          expect(producer.used).toBe(head - tail);
        }
        // Drain: the rest comes out in order, then nothing.
        for (const exp of queue) expectBytes(consumer.tryPop(), exp.bytes);
        expect(consumer.tryPop()).toBeNull();
        expect(consumer.used).toBe(0);
      }),
      { numRuns: 250 },
    );
    // Not vacuous: the runs filled the ring, refused pushes, wrapped and popped, many times.
    expect(seen.refused).toBeGreaterThan(100);
    expect(seen.wraps).toBeGreaterThan(100);
    expect(seen.refusedForTheGap).toBeGreaterThan(0);
    expect(seen.full).toBeGreaterThan(0);
    expect(seen.pops).toBeGreaterThan(1000);
  });
});

describe('SpscRing: two real threads (the worker runs dist/)', () => {
  const CAPACITY = 64 * 1024;
  const BIG = 2_000_000;

  async function pipeline(
    direction: 'main-produces' | 'worker-produces',
    count: number,
    mainSide: SideOptions,
    workerSide: SideOptions,
  ): Promise<{ produced: ProduceResult; consumed: ConsumeResult; mainWaits: WaitCounts; workerWaits: WaitCounts }> {
    const ring = new SpscRing({ capacity: CAPACITY });
    const timeoutMs = 30_000;
    const report = runWorker(
      { mode: direction === 'main-produces' ? 'consume' : 'produce', buffer: ring.buffer, count, timeoutMs, ...workerSide },
      timeoutMs + 5_000,
    );
    report.catch(() => undefined); // awaited below; do not leave it unhandled if the main side throws
    const mainWaits: WaitCounts = { ok: 0, 'not-equal': 0, 'timed-out': 0 };
    let local: ProduceResult | ConsumeResult;
    try {
      local = withWaits(
        (r) => mainWaits[r]++,
        () =>
          direction === 'main-produces'
            ? produceStream(ring, { count, timeoutMs, ...mainSide }, sleepSync)
            : consumeStream(ring, { count, timeoutMs, ...mainSide }, sleepSync),
      );
    } catch (e) {
      ring.close();
      throw e;
    }
    const remote = await report;
    const produced = (direction === 'main-produces' ? local : remote) as ProduceResult;
    const consumed = (direction === 'main-produces' ? remote : local) as ConsumeResult;
    expect(consumed.error).toBeNull();
    expect(produced.closedEarly).toBe(false);
    expect(produced.sent).toBe(count);
    expect(consumed.received).toBe(count);
    expect(consumed.usedAtEnd).toBe(0);
    return { produced, consumed, mainWaits, workerWaits: remote.waits };
  }

  it(`main produces (in place, publishing every 4), worker consumes in place: ${BIG.toLocaleString('en')} messages`, async () => {
    const r = await pipeline('main-produces', BIG, { api: 'inplace', batch: 4 }, { api: 'inplace' });
    expect(r.consumed.wraps).toBeGreaterThan(1000); // a wrap marker roughly every lap
  });

  it(`worker produces (in place, publishing each), main consumes in place: ${BIG.toLocaleString('en')} messages`, async () => {
    const r = await pipeline('worker-produces', BIG, { api: 'inplace' }, { api: 'inplace', batch: 1 });
    expect(r.consumed.wraps).toBeGreaterThan(1000);
  });

  it('slow consumer in the worker (tryPop, sleeps): the main producer (tryPush) fills the ring and parks for space', async () => {
    const r = await pipeline('main-produces', 300_000, { api: 'copy' }, { api: 'copy', sleepEvery: 3_000, sleepMs: 1 });
    expect(r.produced.fullRing).toBeGreaterThan(0);
    expect(r.mainWaits.ok + r.mainWaits['not-equal']).toBeGreaterThan(0); // parked and was woken
  });

  it('slow producer in the worker (tryPush, sleeps): the main consumer (tryPop) drains the ring and parks for data', async () => {
    const r = await pipeline('worker-produces', 300_000, { api: 'copy' }, { api: 'copy', sleepEvery: 3_000, sleepMs: 1 });
    expect(r.consumed.emptyWaits).toBeGreaterThan(0);
    expect(r.mainWaits.ok + r.mainWaits['not-equal']).toBeGreaterThan(0);
  });

  it('slow consumer in the main thread: the worker producer (tryPush) parks for space', async () => {
    const r = await pipeline('worker-produces', 300_000, { api: 'inplace', sleepEvery: 3_000, sleepMs: 1 }, { api: 'copy' });
    expect(r.produced.fullRing).toBeGreaterThan(0);
    expect(r.workerWaits.ok + r.workerWaits['not-equal']).toBeGreaterThan(0);
  });

  it('slow producer in the main thread: the worker consumer (in place) parks for data', async () => {
    const r = await pipeline('main-produces', 300_000, { api: 'inplace', batch: 2, sleepEvery: 3_000, sleepMs: 1 }, { api: 'inplace' });
    expect(r.consumed.emptyWaits).toBeGreaterThan(0);
    expect(r.workerWaits.ok + r.workerWaits['not-equal']).toBeGreaterThan(0);
  });

  /** Starts a worker that parks in `mode`; resolves once it is (about to be) asleep in Atomics.wait. */
  async function parkedWorker(
    mode: 'park-data' | 'park-space',
    ring: SpscRing,
    extra: Record<string, unknown> = {},
  ): Promise<{ report: Promise<WorkerReport> }> {
    const park = new Int32Array(new SharedArrayBuffer(4));
    // The wait is far longer than the report timeout: only a wakeup can make the report arrive.
    const report = runWorker({ mode, buffer: ring.buffer, park: park.buffer, waitMs: 120_000, ...extra }, 10_000);
    report.catch(() => undefined); // awaited by the caller
    await until(() => Atomics.load(park, 0) === 1, 'the worker to park');
    await delay(50);
    return { report }; // wrapped: returning the promise itself would make the caller await the report
  }

  it('a consumer parked in waitForData is woken by publish and gets the message', async () => {
    const ring = new SpscRing({ capacity: 4096 });
    const { report } = await parkedWorker('park-data', ring);
    const m = message(200, 42);
    expect(ring.tryPush(m)).toBe(true);
    const r = await report;
    expect(r.result).toBe(true);
    expect(r.closed).toBe(false);
    expect(r.message).toEqual(bytesOf(m));
    expect(r.waits['timed-out']).toBe(0);
    expect(ring.used).toBe(0);
  });

  it('close() wakes a consumer parked in waitForData: it returns false promptly', async () => {
    const ring = new SpscRing({ capacity: 4096 });
    const { report } = await parkedWorker('park-data', ring);
    ring.close();
    const r = await report;
    expect(r.result).toBe(false);
    expect(r.closed).toBe(true);
    expect(r.message).toBeNull();
    expect(r.waits.ok).toBeGreaterThan(0); // it was asleep and notified
    expect(r.waits['timed-out']).toBe(0);
  });

  it('a producer parked in waitForSpace is woken by release, then pushes', async () => {
    const ring = new SpscRing({ capacity: 4096 });
    const a = message(2048, 1);
    const b = message(2048, 2);
    expect(ring.tryPush(a)).toBe(true);
    expect(ring.tryPush(b)).toBe(true);
    const c = message(1024, 3);
    const { report } = await parkedWorker('park-space', ring, { bytes: 1024, message: Array.from(c) });
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(a));
    const r = await report;
    expect(r.result).toBe(true);
    expect(r.pushed).toBe(true);
    expect(r.waits['timed-out']).toBe(0);
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(b));
    expect(bytesOf(ring.tryPop())).toEqual(bytesOf(c));
    expect(ring.tryPop()).toBeNull();
  });

  /**
   * This thread parks (consumer or producer side) while the worker — running dist/'s close() —
   * closes the ring once it sees the park begin. The wait's timeout is long enough that returning
   * by timeout is visible in the park results.
   */
  async function parkHereWorkerCloses(side: 'consumer' | 'producer'): Promise<{ result: boolean; parks: WaitResult[]; ring: SpscRing }> {
    const ring = new SpscRing({ capacity: 4096 });
    if (side === 'producer') {
      expect(ring.tryPush(message(2048, 1))).toBe(true);
      expect(ring.tryPush(message(2048, 2))).toBe(true);
    }
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const report = runWorker({ mode: 'close-when-parked', buffer: ring.buffer, flag: flag.buffer }, 15_000);
    report.catch(() => undefined);
    const parks: WaitResult[] = [];
    const result = withWaits(
      (r) => parks.push(r),
      () => (side === 'consumer' ? ring.waitForData(ring.tail(), 5_000, 0) : ring.waitForSpace(8, 5_000, 0)),
      () => {
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      },
    );
    const r = await report;
    expect(r.closed).toBe(true);
    return { result, parks, ring };
  }

  it('close() from the other thread wakes a consumer parked here', async () => {
    const { result, parks, ring } = await parkHereWorkerCloses('consumer');
    expect(result).toBe(false);
    expect(ring.closed).toBe(true);
    expect(parks.length).toBeGreaterThan(0);
    expect(parks.filter((x) => x === 'timed-out')).toEqual([]);
  });

  it('close() from the other thread wakes a producer parked here', async () => {
    const { result, parks, ring } = await parkHereWorkerCloses('producer');
    expect(result).toBe(false);
    expect(ring.closed).toBe(true);
    expect(ring.used).toBe(4096);
    expect(parks.length).toBeGreaterThan(0);
    expect(parks.filter((x) => x === 'timed-out')).toEqual([]);
  });

  it('close() wakes a producer parked in waitForSpace: it returns false promptly', async () => {
    const ring = new SpscRing({ capacity: 4096 });
    expect(ring.tryPush(message(2048, 1))).toBe(true);
    expect(ring.tryPush(message(2048, 2))).toBe(true);
    const { report } = await parkedWorker('park-space', ring, { bytes: 8 });
    ring.close();
    const r = await report;
    expect(r.result).toBe(false);
    expect(r.closed).toBe(true);
    expect(r.pushed).toBe(false);
    expect(r.waits.ok).toBeGreaterThan(0);
    expect(r.waits['timed-out']).toBe(0);
    expect(ring.used).toBe(4096);
  });
});

describe('crc32c', () => {
  const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
  /** Bit-at-a-time reference: reflected 0x82F63B78, init and final xor 0xFFFFFFFF. */
  function reference(bytes: Uint8Array, crc = 0): number {
    let c = ~crc >>> 0;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  }

  it('matches the known vectors (RFC 3720 B.4 and the check value)', () => {
    const vectors: [Uint8Array, number][] = [
      [ascii('123456789'), 0xe3069283],
      [new Uint8Array(0), 0],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
      [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    ];
    for (const [bytes, want] of vectors) {
      expect(crc32c(bytes)).toBe(want);
      expect(reference(bytes)).toBe(want);
      if (bytes.length % 4 === 0) {
        const words = new Uint32Array(bytes.slice().buffer);
        expect(crc32cWords(words, 0, words.length)).toBe(want);
      }
    }
    // A range of a larger array.
    const padded = new Uint8Array(20);
    padded.set(ascii('123456789'), 5);
    expect(crc32c(padded, 5, 14)).toBe(0xe3069283);
    expect(crc32c(padded, 7, 7)).toBe(0);
  });

  it('equals the bit-at-a-time reference on any byte range, from any starting crc (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (bytes, x, y, crc) => {
        const from = x % (bytes.length + 1);
        const to = from + (y % (bytes.length - from + 1));
        expect(crc32c(bytes, from, to, crc)).toBe(reference(bytes.subarray(from, to), crc));
      }),
      { numRuns: 300 },
    );
  });

  it('chains: crc32c(b, 0, b.length, crc32c(a)) === crc32c(a ‖ b) (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        expect(crc32c(b, 0, b.length, crc32c(a))).toBe(crc32c(ab));
        // Split anywhere, including inside a word.
        const cut = a.length === 0 ? 0 : a[0]! % (ab.length + 1);
        expect(crc32c(ab, cut, ab.length, crc32c(ab, 0, cut))).toBe(crc32c(ab));
      }),
      { numRuns: 300 },
    );
  });

  it('crc32cWords equals crc32c over the same bytes for any word range, odd and even counts (fast-check)', () => {
    const bytesOfWords = (w: Uint32Array): Uint8Array => new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    // Every count 0..9 at every start 0..3, explicitly.
    const fixed = Uint32Array.from({ length: 16 }, (_, i) => Math.imul(i + 1, 0x9e3779b1) >>> 0);
    for (let from = 0; from < 4; from++) {
      for (let count = 0; count < 10; count++) {
        const to = from + count;
        expect(crc32cWords(fixed, from, to)).toBe(crc32c(bytesOfWords(fixed), from * 4, to * 4));
        expect(crc32cWords(fixed, from, to, 0x12345678)).toBe(crc32c(bytesOfWords(fixed), from * 4, to * 4, 0x12345678));
        expect(crc32cWords(fixed, from, to)).toBe(reference(bytesOfWords(fixed).subarray(from * 4, to * 4)));
      }
    }
    let odd = 0;
    let even = 0;
    fc.assert(
      fc.property(fc.uint32Array({ maxLength: 80 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (words, x, y, crc) => {
        const from = x % (words.length + 1);
        const to = from + (y % (words.length - from + 1));
        if ((to - from) % 2 === 1) odd++;
        else if (to > from) even++;
        const bytes = bytesOfWords(words);
        expect(crc32cWords(words, from, to, crc)).toBe(crc32c(bytes, from * 4, to * 4, crc));
        // Word-wise chaining across any split point agrees too.
        const mid = from + ((x ^ y) % (to - from + 1));
        expect(crc32cWords(words, mid, to, crc32cWords(words, from, mid, crc))).toBe(crc32c(bytes, from * 4, to * 4, crc));
      }),
      { numRuns: 400 },
    );
    expect(odd).toBeGreaterThan(20);
    expect(even).toBeGreaterThan(20);
  });
});
