/**
 * CausalClock: a 512-bit Bloom filter over admitted fact ids (k = 3).
 *
 * It is a fast *negative* filter and a compact gossip summary, never proof of presence: with
 * random ids about a third of never-seen ids pass after 200 facts and nearly all after 1,000.
 * Kernels decide causality with the exact index (`ExactCausalIndex`).
 *
 * Bytes: bit b lives in byte b >> 3 under mask 1 << (b & 7) (docs/FORMATS.md §4). Stored as
 * sixteen little-endian u32 words, so it can sit in a SharedArrayBuffer line.
 */
import { InvalidArgumentError } from '../errors.js';
import { BLOOM_POSITION_MASK, bloomHashOf } from './id-hash.js';
import { describeValue } from '../describe-value.js';

export const CLOCK_BITS = 512;
export const CLOCK_BYTES = 64;
const WORDS = 16;

/** Saturation at which a Bloom pre-filter stops paying for itself (popcount ≥ 205 of 512). */
export const ESCALATION_THRESHOLD = 0.4;
/** The popcount that reaches {@link ESCALATION_THRESHOLD}: ceil(0.4 × 512). */
export const ESCALATION_POPCOUNT = Math.ceil(ESCALATION_THRESHOLD * CLOCK_BITS);

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export class CausalClock {
  /** The sixteen words of the filter (a view; may be shared memory). */
  readonly words: Uint32Array;

  /** An empty clock, or a view of 64 bytes of `buffer` at `byteOffset` (multiple of 4). */
  constructor(buffer?: ArrayBufferLike, byteOffset = 0) {
    if (buffer === undefined) {
      this.words = new Uint32Array(WORDS);
      return;
    }
    if (!(buffer instanceof ArrayBuffer || buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('a clock is a view of an ArrayBuffer or SharedArrayBuffer (use fromBytes to copy bytes)');
    }
    if (!Number.isInteger(byteOffset) || byteOffset % 4 !== 0 || byteOffset < 0 || byteOffset + CLOCK_BYTES > buffer.byteLength) {
      throw new InvalidArgumentError(`a 64-byte clock does not fit at offset ${describeValue(byteOffset)} of ${buffer.byteLength} bytes`);
    }
    this.words = new Uint32Array(buffer, byteOffset, WORDS);
  }

  /** A clock from its 64-byte encoding. */
  static fromBytes(bytes: Uint8Array): CausalClock {
    if (!(bytes instanceof Uint8Array) || bytes.length !== CLOCK_BYTES) {
      throw new InvalidArgumentError(`a causal clock is exactly ${CLOCK_BYTES} bytes`);
    }
    const clock = new CausalClock();
    for (let i = 0; i < WORDS; i++) {
      const p = 4 * i;
      clock.words[i] = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
    }
    return clock;
  }

  /** The 64-byte little-endian encoding. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(CLOCK_BYTES);
    for (let i = 0; i < WORDS; i++) {
      const w = this.words[i]!;
      out[4 * i] = w & 0xff;
      out[4 * i + 1] = (w >>> 8) & 0xff;
      out[4 * i + 2] = (w >>> 16) & 0xff;
      out[4 * i + 3] = w >>> 24;
    }
    return out;
  }

  /** Sets the id's three bits. */
  observe(id: Uint8Array): void {
    this.observeHash(bloomHashOf(checkId(id)));
  }

  /** True if all three of the id's bits are set: the id *may* have been observed. */
  mightContain(id: Uint8Array): boolean {
    return this.hasHash(bloomHashOf(checkId(id)));
  }

  /** @internal Sets the bits of a precomputed Bloom hash; returns how many bits were new. */
  observeHash(h: number): number {
    const w = this.words;
    let added = 0;
    for (let j = 0; j < 27; j += 9) {
      const b = (h >>> j) & BLOOM_POSITION_MASK;
      const mask = 1 << (b & 31);
      const old = w[b >>> 5]!;
      if ((old & mask) === 0) {
        w[b >>> 5] = old | mask;
        added++;
      }
    }
    return added;
  }

  /** @internal All bits of a precomputed Bloom hash are set. */
  hasHash(h: number): boolean {
    const w = this.words;
    const b0 = h & BLOOM_POSITION_MASK;
    const b1 = (h >>> 9) & BLOOM_POSITION_MASK;
    const b2 = (h >>> 18) & BLOOM_POSITION_MASK;
    return ((w[b0 >>> 5]! >>> (b0 & 31)) & (w[b1 >>> 5]! >>> (b1 & 31)) & (w[b2 >>> 5]! >>> (b2 & 31)) & 1) === 1;
  }

  /** True if every bit of `other` is set here (superset). An empty clock is dominated by all. */
  dominates(other: CausalClock): boolean {
    checkClock(other);
    const a = this.words;
    const b = other.words;
    let missing = 0;
    for (let i = 0; i < WORDS; i++) missing |= b[i]! & ~a[i]!;
    return missing === 0;
  }

  /** Bitwise OR of `other` into this clock. */
  merge(other: CausalClock): void {
    checkClock(other);
    const a = this.words;
    const b = other.words;
    for (let i = 0; i < WORDS; i++) a[i] = a[i]! | b[i]!;
  }

  popcount(): number {
    let n = 0;
    for (let i = 0; i < WORDS; i++) n += popcount32(this.words[i]!);
    return n;
  }

  /** Fraction of bits set, in [0, 1]. */
  saturation(): number {
    return this.popcount() / CLOCK_BITS;
  }

  equals(other: CausalClock): boolean {
    checkClock(other);
    for (let i = 0; i < WORDS; i++) if (this.words[i] !== other.words[i]) return false;
    return true;
  }

  clone(): CausalClock {
    const c = new CausalClock();
    c.words.set(this.words);
    return c;
  }

  clear(): void {
    this.words.fill(0);
  }
}

function checkClock(value: CausalClock): void {
  if (!(value instanceof CausalClock)) throw new InvalidArgumentError('expected a CausalClock');
}

function checkId(id: Uint8Array): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError('a fact id is a 32-byte Uint8Array');
  return id;
}
