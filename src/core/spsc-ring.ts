/**
 * SpscRing: a single-producer, single-consumer ring of variable-length messages in one
 * SharedArrayBuffer, for two threads that must talk without copying and without `postMessage`.
 * The durable kernels stage WAL records in it for the persistence worker, which writes them to
 * disk straight from the ring's memory; any other pair of threads can use it the same way.
 *
 * Messages: each starts with its own length in bytes as a little-endian u32, is a multiple of 8
 * bytes long and at least 8. A message never wraps around the end of the data area: when one
 * does not fit before the end, the producer writes a 0 length word there (a wrap marker) and
 * starts the message at the beginning. Data therefore reaches the consumer as at most two
 * contiguous runs per batch.
 *
 * Positions are free-running 32-bit byte counters (wrapping; the capacity is a power of two, so
 * `position & (capacity - 1)` is the offset). HEAD is written only by the producer, TAIL only by
 * the consumer. Each control word has its own 128-byte block so the two threads never share a
 * cache line (or the pair the adjacent-line prefetcher fetches).
 *
 * Waiting: the consumer spins briefly, then sets its sleep word to 1, re-checks, and parks in
 * `Atomics.wait` on that word while it is still 1; the producer, after publishing, clears the
 * word with one compareExchange (1→0) and notifies only if that succeeded, so a busy pipeline
 * makes no notify calls, and a wake-up can never fall between the re-check and the park (the
 * word is no longer 1 then). `close()` clears both sleep words the same way. The producer waits
 * for space symmetrically on its own word. Every wait has a timeout: on two cores a peer may be
 * descheduled, and nothing spins forever.
 */
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { checkSharedHeader } from './shared-header.js';
import { checkWaitMs } from './options.js';
import { describeValue } from '../describe-value.js';
import { waitAsync } from './wait-async.js';

/** "CTRG" little-endian. */
const MAGIC = 0x47525443;
const LAYOUT_VERSION = 1;
/** Control words (Int32 indices), each at the start of its own 128-byte block. */
const W_MAGIC = 0;
const W_VERSION = 1;
const W_CAPACITY = 2;
const W_HEAD = 128 / 4;
const W_TAIL = 256 / 4;
const W_CONSUMER_SLEEPS = 384 / 4;
const W_PRODUCER_SLEEPS = 512 / 4;
const W_CLOSED = 640 / 4;
/** The data area starts after the control blocks, 64-byte aligned within the buffer. */
export const RING_DATA_OFFSET = 768;
export const MIN_RING_CAPACITY = 4096;
export const MAX_RING_CAPACITY = 1 << 30;
/** Wrap marker: a length word of 0. */
const WRAP = 0;
/** Default spin before parking: ~2–4 µs of loads, short enough not to steal a core from the peer. */
export const DEFAULT_SPINS = 256;

const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

export interface SpscRingOptions {
  /** Data bytes: a power of two from 4 KiB to 1 GiB. Messages are at most half of it. */
  readonly capacity: number;
}

export class SpscRing {
  readonly buffer: SharedArrayBuffer;
  /** Data bytes; a power of two. */
  readonly capacity: number;
  /** The largest message `reserve` accepts: half the capacity, so one always fits an empty ring. */
  readonly maxMessageBytes: number;
  /** The data area, as bytes and as 32-bit words (messages are 8-byte aligned). */
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  private readonly ctl: Int32Array;
  private readonly mask: number;
  /** Producer: position after the last committed message, and the last TAIL it read. */
  private pending = 0;
  private cachedTail = 0;
  /** Producer: what `reserve` found, for `commit`. */
  private reservedBytes = 0;
  private reservedSkip = 0;

  constructor(options: SpscRingOptions) {
    const capacity = options?.capacity;
    if (!isPowerOfTwo(capacity) || capacity < MIN_RING_CAPACITY || capacity > MAX_RING_CAPACITY) {
      throw new InvalidArgumentError(`ring capacity must be a power of two from ${MIN_RING_CAPACITY} to ${MAX_RING_CAPACITY} bytes`);
    }
    const buffer = new SharedArrayBuffer(RING_DATA_OFFSET + capacity);
    const ctl = new Int32Array(buffer, 0, RING_DATA_OFFSET / 4);
    ctl[W_MAGIC] = MAGIC;
    ctl[W_VERSION] = LAYOUT_VERSION;
    ctl[W_CAPACITY] = capacity;
    this.buffer = buffer;
    this.capacity = capacity;
    this.maxMessageBytes = capacity / 2;
    this.bytes = new Uint8Array(buffer, RING_DATA_OFFSET, capacity);
    this.words = new Uint32Array(buffer, RING_DATA_OFFSET, capacity / 4);
    this.ctl = ctl;
    this.mask = capacity - 1;
  }

  /**
   * The ring over `buffer`, created by another `SpscRing` (usually in another thread). Use each
   * side from one thread only: the producer methods from one, the consumer methods from the other.
   */
  static attach(buffer: SharedArrayBuffer): SpscRing {
    checkSharedHeader(buffer, MAGIC, LAYOUT_VERSION, 'an SpscRing', RING_DATA_OFFSET + MIN_RING_CAPACITY);
    const ctl = new Int32Array(buffer, 0, RING_DATA_OFFSET / 4);
    const capacity = ctl[W_CAPACITY]!;
    if (
      !isPowerOfTwo(capacity) ||
      capacity < MIN_RING_CAPACITY ||
      capacity > MAX_RING_CAPACITY ||
      buffer.byteLength !== RING_DATA_OFFSET + capacity
    ) {
      throw new SharedMemoryError(`buffer does not hold an SpscRing of layout version ${LAYOUT_VERSION}`);
    }
    const ring = Object.create(SpscRing.prototype) as SpscRing;
    const fields: Record<string, unknown> = {
      buffer,
      capacity,
      maxMessageBytes: capacity / 2,
      bytes: new Uint8Array(buffer, RING_DATA_OFFSET, capacity),
      words: new Uint32Array(buffer, RING_DATA_OFFSET, capacity / 4),
      ctl,
      mask: capacity - 1,
      pending: Atomics.load(ctl, W_HEAD),
      cachedTail: Atomics.load(ctl, W_TAIL),
      reservedBytes: 0,
      reservedSkip: 0,
    };
    return Object.assign(ring, fields);
  }

  // ---------------------------------------------------------------- producer

  /**
   * Finds room for a message of `bytes` bytes (a multiple of 8, from 8 to `maxMessageBytes`) and
   * returns its byte offset in `bytes`/`words`, or -1 if the ring has no room now. Changes
   * nothing: write the message there, then `commit()` it — or simply do not, and the space stays
   * free. Producer only.
   */
  reserve(bytes: number): number {
    const pos = this.pending;
    const offset = pos & this.mask;
    const toEnd = this.capacity - offset;
    const skip = bytes <= toEnd ? 0 : toEnd;
    const need = skip + bytes;
    if (this.capacity - ((pos - this.cachedTail) >>> 0) < need) {
      this.cachedTail = Atomics.load(this.ctl, W_TAIL);
      if (this.capacity - ((pos - this.cachedTail) >>> 0) < need) return -1;
    }
    this.reservedBytes = bytes;
    this.reservedSkip = skip;
    return skip === 0 ? offset : 0;
  }

  /**
   * Commits the message written at the offset the last `reserve` returned. It becomes visible to
   * the consumer at the next `publish()`. Producer only.
   */
  commit(): void {
    if (this.reservedSkip !== 0) this.words[(this.pending & this.mask) >>> 2] = WRAP;
    this.pending = (this.pending + this.reservedSkip + this.reservedBytes) | 0;
    this.reservedBytes = 0;
    this.reservedSkip = 0;
  }

  /** Makes every committed message visible to the consumer, waking it if it sleeps. Producer only. */
  publish(): void {
    const ctl = this.ctl;
    Atomics.store(ctl, W_HEAD, this.pending);
    if (Atomics.load(ctl, W_CONSUMER_SLEEPS) === 1 && Atomics.compareExchange(ctl, W_CONSUMER_SLEEPS, 1, 0) === 1) {
      Atomics.notify(ctl, W_CONSUMER_SLEEPS, 1);
    }
  }

  /**
   * Copies `message` in and publishes it; false if the ring has no room now. The message must
   * follow the ring's framing (its first u32 is its length, a multiple of 8). Producer only.
   */
  tryPush(message: Uint8Array): boolean {
    if (!(message instanceof Uint8Array)) throw new InvalidArgumentError(`a ring message is a Uint8Array, got ${describeValue(message)}`);
    const n = message.length;
    if (n < 8 || (n & 7) !== 0 || n > this.maxMessageBytes || (message[0]! | (message[1]! << 8) | (message[2]! << 16) | (message[3]! << 24)) !== n) {
      throw new InvalidArgumentError('a ring message is 8..capacity/2 bytes, a multiple of 8, and starts with its length (u32 LE)');
    }
    const at = this.reserve(n);
    if (at < 0) return false;
    this.bytes.set(message, at);
    this.commit();
    this.publish();
    return true;
  }

  /**
   * Waits until `bytes` more can be reserved, the ring is closed, or `timeoutMs` passes; returns
   * true if the room is there. Producer only.
   */
  waitForSpace(bytes: number, timeoutMs: number, spins = DEFAULT_SPINS): boolean {
    checkWait(timeoutMs, spins);
    const ctl = this.ctl;
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      if (this.reserve(bytes) >= 0) return true;
      if (this.closed) return false;
      if (i < spins) continue;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.store(ctl, W_PRODUCER_SLEEPS, 1);
      if (this.reserve(bytes) >= 0 || this.closed) {
        Atomics.store(ctl, W_PRODUCER_SLEEPS, 0);
        continue; // the loop head returns true for room, false for closed
      }
      Atomics.wait(ctl, W_PRODUCER_SLEEPS, 1, left);
      Atomics.store(ctl, W_PRODUCER_SLEEPS, 0);
    }
  }

  // ---------------------------------------------------------------- consumer

  /** The producer's published position (consumer side: everything before it is readable). */
  head(): number {
    return Atomics.load(this.ctl, W_HEAD);
  }

  /** The consumer's position: everything before it has been released. */
  tail(): number {
    return Atomics.load(this.ctl, W_TAIL);
  }

  /** Byte offset in the data area of position `pos`. */
  offsetOf(pos: number): number {
    return pos & this.mask;
  }

  /**
   * Where the message at position `pos` really starts: `pos` itself, or the start of the next lap
   * if the producer left a wrap marker there. Consumer only; `pos` must be before `head()`.
   */
  messageStart(pos: number): number {
    const offset = pos & this.mask;
    return this.words[offset >>> 2] === WRAP ? (pos + this.capacity - offset) | 0 : pos;
  }

  /** Length of the message starting at data offset `offset` (from its first word). */
  lengthAt(offset: number): number {
    return this.words[offset >>> 2]!;
  }

  /** Frees everything before `pos` for the producer, waking it if it waits for space. Consumer only. */
  release(pos: number): void {
    const ctl = this.ctl;
    Atomics.store(ctl, W_TAIL, pos);
    if (Atomics.load(ctl, W_PRODUCER_SLEEPS) === 1 && Atomics.compareExchange(ctl, W_PRODUCER_SLEEPS, 1, 0) === 1) {
      Atomics.notify(ctl, W_PRODUCER_SLEEPS, 1);
    }
  }

  /**
   * Copies out the next message and releases it; null if there is none. For consumers that want
   * copies (tests, control messages); the persistence worker reads in place instead.
   */
  tryPop(): Uint8Array | null {
    const tail = Atomics.load(this.ctl, W_TAIL);
    if (Atomics.load(this.ctl, W_HEAD) === tail) return null;
    const start = this.messageStart(tail);
    const offset = start & this.mask;
    const n = this.lengthAt(offset);
    const out = this.bytes.slice(offset, offset + n);
    this.release((start + n) | 0);
    return out;
  }

  /**
   * Waits until the producer has published something past `tail`, the ring is closed, or
   * `timeoutMs` passes: spins `spins` loads, then parks. Returns true if there is data.
   * Consumer only.
   */
  waitForData(tail: number, timeoutMs: number, spins = DEFAULT_SPINS): boolean {
    // Once per wait (a batch), before the spin: an infinite spin count would never end.
    checkWait(timeoutMs, spins);
    const ctl = this.ctl;
    for (let i = 0; i < spins; i++) if (Atomics.load(ctl, W_HEAD) !== tail) return true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      Atomics.store(ctl, W_CONSUMER_SLEEPS, 1);
      const head = Atomics.load(ctl, W_HEAD);
      if (head !== tail || this.closed) {
        Atomics.store(ctl, W_CONSUMER_SLEEPS, 0);
        return head !== tail;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        Atomics.store(ctl, W_CONSUMER_SLEEPS, 0);
        return false;
      }
      Atomics.wait(ctl, W_CONSUMER_SLEEPS, 1, left);
    }
  }

  /**
   * `waitForData` for a consumer that must not block its thread (an event loop): resolves true
   * once the producer has published past `tail`, false when the ring is closed or `timeoutMs`
   * passes. Same sleep-word handshake, parked with `Atomics.waitAsync`. Consumer only.
   */
  async waitForDataAsync(tail: number, timeoutMs: number): Promise<boolean> {
    checkWait(timeoutMs, 0);
    const ctl = this.ctl;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      Atomics.store(ctl, W_CONSUMER_SLEEPS, 1);
      const head = Atomics.load(ctl, W_HEAD);
      const left = deadline - Date.now();
      if (head !== tail || this.closed || left <= 0) {
        Atomics.store(ctl, W_CONSUMER_SLEEPS, 0);
        return head !== tail;
      }
      await waitAsync(ctl, W_CONSUMER_SLEEPS, 1, left);
    }
  }

  // ---------------------------------------------------------------- either side

  /** Marks the ring closed and wakes both sides; waits then return at once. */
  close(): void {
    Atomics.store(this.ctl, W_CLOSED, 1);
    Atomics.store(this.ctl, W_CONSUMER_SLEEPS, 0);
    Atomics.store(this.ctl, W_PRODUCER_SLEEPS, 0);
    Atomics.notify(this.ctl, W_CONSUMER_SLEEPS);
    Atomics.notify(this.ctl, W_PRODUCER_SLEEPS);
  }

  get closed(): boolean {
    return Atomics.load(this.ctl, W_CLOSED) === 1;
  }

  /** Bytes published and not yet released (including wrap gaps). */
  get used(): number {
    return (Atomics.load(this.ctl, W_HEAD) - Atomics.load(this.ctl, W_TAIL)) >>> 0;
  }
}

export { MAX_WAIT_MS } from './options.js';

/** The most spins before parking: 2^20 loads, a few milliseconds; spinning longer only burns a core. */
export const MAX_SPINS = 1 << 20;

/** A wait's bounds: a timeout (`checkWaitMs`) and a spin count from 0 to {@link MAX_SPINS}. */
function checkWait(timeoutMs: number, spins: number): void {
  checkWaitMs("a wait's timeoutMs", timeoutMs);
  if (!Number.isInteger(spins) || spins < 0 || spins > MAX_SPINS) throw new InvalidArgumentError(`spins is an integer from 0 to ${MAX_SPINS}, got ${describeValue(spins)}`);
}
