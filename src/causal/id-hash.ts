/**
 * Hashing of 32-byte fact ids for the Bloom clock and the exact index.
 *
 * An id is read as eight little-endian u32 words w0..w7. Each hash is
 *
 *     fmix32( A + Σ wᵢ · Mᵢ  mod 2³² )
 *
 * with eight odd multipliers Mᵢ, an offset A (so the all-zero id does not hash to 0), and
 * MurmurHash3's 32-bit finaliser. Every id byte feeds every
 * hash (upstream used only bytes 0..24 for the Bloom and 0..8 for its index, so structured ids
 * collapsed). The eight products are independent, so the CPU computes them in parallel: ~16 ns
 * for both hashes, against ~40 ns for a serial MurmurHash3 over the same bytes. Each Mᵢ is odd,
 * hence invertible mod 2³²: ids that differ in a single word never collide before the finaliser.
 *
 * - `bloomHash` uses the fixed multipliers `BLOOM_MULTIPLIERS` and offset `BLOOM_OFFSET`, so it is identical on every
 *   replica (the clock is a gossip summary). Bloom positions are its bits 0..8, 9..17 and 18..26;
 *   its top byte is the exact index's tag.
 * - `indexHash` uses multipliers and an offset derived from a per-index seed, so colliding ids cannot be
 *   prepared in advance to lengthen one probe chain.
 *
 * Hashes are kept as int32 so that storing them in object fields never boxes a heap number.
 */

import { InvalidArgumentError } from '../errors.js';

/** Multipliers of the Bloom hash (docs/FORMATS.md §4): odd 32-bit constants from the golden ratio, xxHash and MurmurHash3. */
export const BLOOM_MULTIPLIERS: readonly number[] = [
  0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f, 0x165667b1, 0xd3a2646d, 0xfd7046c5, 0xb55a4f09,
];

/** Offset of the Bloom hash: the first 32 fractional bits of √2 (any constant ≠ 0 would do). */
export const BLOOM_OFFSET = 0x6a09e667;

/** MurmurHash3's 32-bit finaliser, returning an int32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** splitmix32 step: derives a well-mixed u32 sequence from a seed. */
export function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return z ^ (z >>> 15);
}

/**
 * Reads an id into eight u32 words and hashes it. One instance per index; results land in
 * fields so the hot path allocates nothing.
 */
export class IdHasher {
  /** The id's eight little-endian words (valid after `load`). */
  readonly words = new Uint32Array(8);
  /** Seeded hash for the exact index. */
  indexHash = 0;
  /** Fixed hash for the Bloom clock and the index tag. */
  bloomHash = 0;
  readonly seed: number;
  private readonly m0: number;
  private readonly m1: number;
  private readonly m2: number;
  private readonly m3: number;
  private readonly m4: number;
  private readonly m5: number;
  private readonly m6: number;
  private readonly m7: number;
  private readonly offset: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    const m: number[] = [];
    let s = this.seed;
    for (let i = 0; i < 8; i++) {
      s = splitmix32(s);
      m.push(s | 1);
    }
    this.offset = splitmix32(s);
    [this.m0, this.m1, this.m2, this.m3, this.m4, this.m5, this.m6, this.m7] = m as [
      number, number, number, number, number, number, number, number,
    ];
  }

  load(id: Uint8Array): void {
    // Unrolled on purpose: V8 keeps the 32 loads and 16 multiplies in registers this way.
    const x0 = id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24);
    const x1 = id[4]! | (id[5]! << 8) | (id[6]! << 16) | (id[7]! << 24);
    const x2 = id[8]! | (id[9]! << 8) | (id[10]! << 16) | (id[11]! << 24);
    const x3 = id[12]! | (id[13]! << 8) | (id[14]! << 16) | (id[15]! << 24);
    const x4 = id[16]! | (id[17]! << 8) | (id[18]! << 16) | (id[19]! << 24);
    const x5 = id[20]! | (id[21]! << 8) | (id[22]! << 16) | (id[23]! << 24);
    const x6 = id[24]! | (id[25]! << 8) | (id[26]! << 16) | (id[27]! << 24);
    const x7 = id[28]! | (id[29]! << 8) | (id[30]! << 16) | (id[31]! << 24);
    const w = this.words;
    w[0] = x0;
    w[1] = x1;
    w[2] = x2;
    w[3] = x3;
    w[4] = x4;
    w[5] = x5;
    w[6] = x6;
    w[7] = x7;
    this.bloomHash = fmix32(
      (BLOOM_OFFSET +
        Math.imul(x0, 0x9e3779b1) +
        Math.imul(x1, 0x85ebca77) +
        Math.imul(x2, 0xc2b2ae3d) +
        Math.imul(x3, 0x27d4eb2f) +
        Math.imul(x4, 0x165667b1) +
        Math.imul(x5, 0xd3a2646d) +
        Math.imul(x6, 0xfd7046c5) +
        Math.imul(x7, 0xb55a4f09)) |
        0,
    );
    this.indexHash = fmix32(
      (this.offset +
        Math.imul(x0, this.m0) +
        Math.imul(x1, this.m1) +
        Math.imul(x2, this.m2) +
        Math.imul(x3, this.m3) +
        Math.imul(x4, this.m4) +
        Math.imul(x5, this.m5) +
        Math.imul(x6, this.m6) +
        Math.imul(x7, this.m7)) |
        0,
    );
  }

  /**
   * `load` of the id at `bytes[offset..offset + 32)` (ids packed end to end, a key store, a
   * batch): the same words and hashes, without a view of the id. The caller checks the bounds.
   * (The body repeats `load`'s on purpose: a shared helper taking eight words would be one more
   * call on the admission path, which `load` serves.)
   */
  loadAt(bytes: Uint8Array, offset: number): void {
    const o = offset;
    const x0 = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24);
    const x1 = bytes[o + 4]! | (bytes[o + 5]! << 8) | (bytes[o + 6]! << 16) | (bytes[o + 7]! << 24);
    const x2 = bytes[o + 8]! | (bytes[o + 9]! << 8) | (bytes[o + 10]! << 16) | (bytes[o + 11]! << 24);
    const x3 = bytes[o + 12]! | (bytes[o + 13]! << 8) | (bytes[o + 14]! << 16) | (bytes[o + 15]! << 24);
    const x4 = bytes[o + 16]! | (bytes[o + 17]! << 8) | (bytes[o + 18]! << 16) | (bytes[o + 19]! << 24);
    const x5 = bytes[o + 20]! | (bytes[o + 21]! << 8) | (bytes[o + 22]! << 16) | (bytes[o + 23]! << 24);
    const x6 = bytes[o + 24]! | (bytes[o + 25]! << 8) | (bytes[o + 26]! << 16) | (bytes[o + 27]! << 24);
    const x7 = bytes[o + 28]! | (bytes[o + 29]! << 8) | (bytes[o + 30]! << 16) | (bytes[o + 31]! << 24);
    const w = this.words;
    w[0] = x0;
    w[1] = x1;
    w[2] = x2;
    w[3] = x3;
    w[4] = x4;
    w[5] = x5;
    w[6] = x6;
    w[7] = x7;
    this.bloomHash = fmix32(
      (BLOOM_OFFSET +
        Math.imul(x0, 0x9e3779b1) +
        Math.imul(x1, 0x85ebca77) +
        Math.imul(x2, 0xc2b2ae3d) +
        Math.imul(x3, 0x27d4eb2f) +
        Math.imul(x4, 0x165667b1) +
        Math.imul(x5, 0xd3a2646d) +
        Math.imul(x6, 0xfd7046c5) +
        Math.imul(x7, 0xb55a4f09)) |
        0,
    );
    this.indexHash = fmix32(
      (this.offset +
        Math.imul(x0, this.m0) +
        Math.imul(x1, this.m1) +
        Math.imul(x2, this.m2) +
        Math.imul(x3, this.m3) +
        Math.imul(x4, this.m4) +
        Math.imul(x5, this.m5) +
        Math.imul(x6, this.m6) +
        Math.imul(x7, this.m7)) |
        0,
    );
  }
}

const shared = new IdHasher(0);

/** The Bloom hash of a 32-byte id (an int32). */
export function bloomHashOf(id: Uint8Array): number {
  shared.load(id);
  return shared.bloomHash;
}

/** Mask of one 9-bit Bloom position (512 bits). */
export const BLOOM_POSITION_MASK = 0x1ff;

/** The three Bloom bit positions of an id, in [0, 512). */
export function bloomPositions(id: Uint8Array): [number, number, number] {
  if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError('a fact id is a 32-byte Uint8Array');
  const h = bloomHashOf(id);
  return [h & BLOOM_POSITION_MASK, (h >>> 9) & BLOOM_POSITION_MASK, (h >>> 18) & BLOOM_POSITION_MASK];
}
