/**
 * IdFilter: a static approximate-membership filter over 32-byte fact ids — a binary fuse filter
 * with 8-bit fingerprints (Graf & Lemire, "Binary Fuse Filters: Fast and Smaller Than Xor
 * Filters", 2022), built once from a known set of ids and never changed. It answers "certainly
 * absent" or "maybe present"; a cold run confirms every "maybe" against its keys, so exactness
 * never rests on the filter.
 *
 * Why this filter: a prototype of each, over the same hash and the same random ids on this
 * machine, against a blocked Bloom filter (512-bit blocks, 8 bits set per id; its best setting
 * for a comparable false-positive rate):
 *
 *   |                        | binary fuse (this)   | blocked Bloom, 12 bits/id |
 *   | bits per id            | 9.04 (1M), 9.02 (10M) | 12.0                      |
 *   | false positives        | 0.38% (2^-8 in theory) | 0.40–0.46%               |
 *   | absent lookup, 1M ids  | 36 ns                | 59 ns                     |
 *   | absent lookup, 10M ids | 160 ns               | 200 ns                    |
 *
 * The fuse filter is 25% smaller for the same false-positive rate and no slower: its three reads
 * are independent, so their misses overlap, while the Bloom lookup tests eight bits one after the
 * other. Its price is the build: it needs all ids at once and ~32 bytes of scratch per id (a Bloom
 * filter can be filled while streaming). Bits per id are 8 × 1.125 at large counts; small
 * filters need more (the size factor grows below 10^6 ids: ~11 bits at 1,000 ids).
 *
 * This implementation (`npm run bench:history`, two runs on this 2-core machine): 9.044 bits per
 * id at 1M ids, 9.018 at 10M; 0.384–0.394% false positives (4M absent ids); build 5.8–6.0M
 * ids/s at 1M ids, 4.3–4.6M at 10M; a lookup 38–40 ns at 1M ids, 172–207 ns at 10M (the 11 MiB
 * of fingerprints no longer fit the cache, and each of the three reads is a miss).
 *
 * Image (one contiguous byte range; all u32 little-endian):
 *
 *   | offset | size | field |
 *   | 0      | 4    | magic "CTIF" (0x46495443) |
 *   | 4      | 4    | version, = 1 |
 *   | 8      | 4    | seed (u32) of the hash |
 *   | 12     | 4    | ids the filter was built from (distinct hashes, so ≤ the ids given) |
 *   | 16     | 4    | segment length L: a power of two in [4, 2^18] |
 *   | 20     | 4    | segment count S ≥ 1 |
 *   | 24     | 4    | fingerprint bytes = (S + 2) · L |
 *   | 28     | 4    | fingerprint bits, = 8 |
 *   | 32     | 32   | zeros |
 *   | 64     | (S + 2) · L | fingerprints |
 *
 * Hash of an id, read as eight little-endian u32 words w0..w7 (every byte counts):
 *
 *   a = fmix32(Aa + Σ wᵢ·Mᵢ),  b = fmix32(Ab + Σ wᵢ·Nᵢ),  c = fmix32((a ^ b) · 0x9e3779b1)   (mod 2^32)
 *
 * with fmix32 the MurmurHash3 finaliser and the 18 constants drawn from the seed by splitmix32
 * (docs/FORMATS.md §5 gives splitmix32): Mᵢ = s₁..s₈ | 1, Nᵢ = s₉..s₁₆ | 1, Aa = s₁₇, Ab = s₁₈,
 * where sⱼ = splitmix32ʲ(seed). The id's three cells and its fingerprint:
 *
 *   h0 = ⌊a · S·L / 2^32⌋ (a as u32),  h1 = (h0 + L) ^ (b & (L − 1)),  h2 = (h0 + 2L) ^ (c & (L − 1)),
 *   fingerprint = b >>> 24,   maybe present ⇔ fingerprint = F[h0] ^ F[h1] ^ F[h2].
 *
 * h0 lies in segment ⌊h0 / L⌋ ≤ S − 1 and h1, h2 in the next two, so every read is inside the
 * S + 2 segments. Like the index hash (id-hash.ts) this is a sum of seeded products: ids that
 * differ only in the top bit of an even number of words collide for every seed; they then share
 * the filter's answer, which can cost a false positive and never a false negative. Fact ids are
 * BLAKE3 outputs, so such pairs do not arise. The seed is per filter (random by default), so a
 * set of ids that defeats one filter's construction or inflates its false positives does not
 * carry over to another.
 */
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { fmix32, splitmix32 } from './id-hash.js';
import { prefault } from '../native/shim.js';
import '../core/platform.js';

/** "CTIF" little-endian: marks bytes as an id filter. */
const MAGIC = 0x46495443;
const VERSION = 1;
/** Bytes before the fingerprints: the header fields, padded to one cache line. */
export const ID_FILTER_HEADER_BYTES = 64;
const H_MAGIC = 0;
const H_VERSION = 4;
const H_SEED = 8;
const H_COUNT = 12;
const H_SEGMENT_LENGTH = 16;
const H_SEGMENT_COUNT = 20;
const H_FINGERPRINT_BYTES = 24;
const H_FINGERPRINT_BITS = 28;
const H_RESERVED = 32;
/** 8-bit fingerprints: a false positive needs a random byte to match, 1 in 256 (0.39%). */
const FINGERPRINT_BITS = 8;
/**
 * Largest segment (the reference implementation's cap): larger segments stop helping the
 * construction, and it bounds the reads of one lookup to a window of 3 × 256 KiB.
 */
const MAX_SEGMENT_LENGTH = 1 << 18;
/** Smallest segment, the reference's for 0 or 1 id. */
const MIN_SEGMENT_LENGTH = 4;
/**
 * Most ids one filter takes: (S + 2)·L stays below 2^31 (the fingerprints of 2^30 ids take
 * 1.125 · 2^30 + 2^19 bytes), so every cell number is a small integer.
 */
export const MAX_FILTER_IDS = 2 ** 30;
/** Odd constant (the golden ratio's) that derives c from a and b. */
const MIX_C = 0x9e3779b1;
/**
 * Construction attempts before giving up. An attempt fails (and the next seed is tried) for 0–7%
 * of builds here, from 2 to 100,000 ids, and repeated ids are removed after the first failure,
 * so 100 failures in a row do not happen; the bound keeps a broken input from looping forever.
 */
const MAX_ATTEMPTS = 100;
/** Seeds, multipliers and offsets derived per filter: 8 + 8 multipliers, 2 offsets. */
const PARAMS = 18;

/** The 18 hash constants of `seed`: multipliers (odd) then the two offsets. */
function hashParams(seed: number): Int32Array {
  const k = new Int32Array(PARAMS);
  let s = seed | 0;
  for (let i = 0; i < PARAMS; i++) {
    s = splitmix32(s);
    k[i] = i < 16 ? s | 1 : s;
  }
  return k;
}

/** Hash a of an id's words x0..x7 under constants `k`. */
function hashA(k: Int32Array, x0: number, x1: number, x2: number, x3: number, x4: number, x5: number, x6: number, x7: number): number {
  return fmix32(
    (k[16]! +
      Math.imul(x0, k[0]!) +
      Math.imul(x1, k[1]!) +
      Math.imul(x2, k[2]!) +
      Math.imul(x3, k[3]!) +
      Math.imul(x4, k[4]!) +
      Math.imul(x5, k[5]!) +
      Math.imul(x6, k[6]!) +
      Math.imul(x7, k[7]!)) |
      0,
  );
}

/** Hash b of an id's words x0..x7 under constants `k`. */
function hashB(k: Int32Array, x0: number, x1: number, x2: number, x3: number, x4: number, x5: number, x6: number, x7: number): number {
  return fmix32(
    (k[17]! +
      Math.imul(x0, k[8]!) +
      Math.imul(x1, k[9]!) +
      Math.imul(x2, k[10]!) +
      Math.imul(x3, k[11]!) +
      Math.imul(x4, k[12]!) +
      Math.imul(x5, k[13]!) +
      Math.imul(x6, k[14]!) +
      Math.imul(x7, k[15]!)) |
      0,
  );
}

/** Little-endian u32 word of an id at byte `o` (any alignment), as an int32. */
function wordAt(ids: Uint8Array, o: number): number {
  return ids[o]! | (ids[o + 1]! << 8) | (ids[o + 2]! << 16) | (ids[o + 3]! << 24);
}

/** Hash c, from a and b. */
function hashC(a: number, b: number): number {
  return fmix32(Math.imul(a ^ b, MIX_C));
}

interface FilterShape {
  readonly segmentLength: number;
  readonly segmentCount: number;
  readonly fingerprintBytes: number;
}

/**
 * Sizes for `count` ids, as the reference implementation (xor_singleheader) chooses them for
 * 3-wise binary fuse filters: segment length 2^⌊ln n / ln 3.33 + 2.25⌋ and a size factor of
 * max(1.125, 0.875 + 0.25 · ln 10^6 / ln n). Those constants are the paper's, tuned so the
 * construction succeeds with high probability; smaller tables fail more often.
 */
function shapeFor(count: number): FilterShape {
  const segmentLength =
    count <= 1 ? MIN_SEGMENT_LENGTH : Math.min(MAX_SEGMENT_LENGTH, Math.max(MIN_SEGMENT_LENGTH, 2 ** Math.floor(Math.log(count) / Math.log(3.33) + 2.25)));
  const sizeFactor = count <= 1 ? 0 : Math.max(1.125, 0.875 + (0.25 * Math.log(1e6)) / Math.log(count));
  const cells = Math.round(count * sizeFactor);
  const segmentCount = Math.max(1, Math.ceil(cells / segmentLength) - 2);
  return { segmentLength, segmentCount, fingerprintBytes: (segmentCount + 2) * segmentLength };
}

/** Bytes of the image of a filter sized for `count` ids. */
export function idFilterByteLength(count: number): number {
  checkCount(count);
  return ID_FILTER_HEADER_BYTES + shapeFor(count).fingerprintBytes;
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_FILTER_IDS) {
    throw new InvalidArgumentError(`a filter holds an integer count of ids in [0, ${MAX_FILTER_IDS}], got ${describeValue(count)}`);
  }
}

export interface IdFilterBuildOptions {
  /** Seed of the first construction attempt (default: random). Later attempts derive theirs from it. */
  readonly seed?: number;
  /**
   * Where to write the image: at least `idFilterByteLength(n)` bytes (a view of a
   * SharedArrayBuffer, to share it). Default: a new SharedArrayBuffer of exactly that size.
   */
  readonly into?: Uint8Array;
  /**
   * Ids to size the filter for, at least as many as are given (default: as many). A container
   * that drops repeated ids lays out its regions before it knows how many remain: a filter sized
   * for more ids than it holds is valid, only larger.
   */
  readonly capacity?: number;
}

/** A random u32. */
function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** Little-endian u32 at `o` (image header fields; any alignment). */
function readU32(bytes: Uint8Array, o: number): number {
  return (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, o: number, value: number): void {
  bytes[o] = value;
  bytes[o + 1] = value >>> 8;
  bytes[o + 2] = value >>> 16;
  bytes[o + 3] = value >>> 24;
}

/** Bytes of `image` as a Uint8Array view (no copy); InvalidArgument for anything else. */
export function imageBytes(image: unknown, what: string): Uint8Array {
  // A plain view even of a Buffer, whose slice() shares memory where a Uint8Array's copies.
  if (image instanceof Uint8Array) return new Uint8Array(image.buffer, image.byteOffset, image.length);
  if (image instanceof ArrayBuffer || image instanceof SharedArrayBuffer) return new Uint8Array(image);
  throw new InvalidArgumentError(`${what} is a Uint8Array, ArrayBuffer or SharedArrayBuffer, got ${describeValue(image)}`);
}

/** Validates `ids` as a whole number of 32-byte ids and returns how many. */
function idCount(ids: unknown): number {
  if (!(ids instanceof Uint8Array) || ids.length % 32 !== 0) {
    throw new InvalidArgumentError(`ids are a Uint8Array of 32-byte ids end to end, got ${describeValue(ids)}`);
  }
  const n = ids.length / 32;
  checkCount(n);
  return n;
}

/** The constructor option that carries a validated image: filters come from build or attach only. */
const VALIDATED = Symbol('ctfs.idFilter.validated');

export class IdFilter {
  /** The image, exactly `byteLength` bytes (a view of the buffer it was built in or attached to). */
  readonly bytes: Uint8Array;
  /** Ids the filter was built from (after merging ids with identical hashes). */
  readonly count: number;
  /** Seed of the hash. */
  readonly seed: number;
  private readonly params: Int32Array;
  private readonly fingerprints: Uint8Array;
  private readonly segmentLength: number;
  private readonly segmentMask: number;
  /** S·L / 2^32: maps a u32 hash onto the first S segments. */
  private readonly scale: number;

  private constructor(token: typeof VALIDATED, bytes: Uint8Array) {
    if (token !== VALIDATED) throw new InvalidArgumentError('IdFilter is made by IdFilter.build or IdFilter.attach');
    const segmentLength = readU32(bytes, H_SEGMENT_LENGTH);
    const segmentCount = readU32(bytes, H_SEGMENT_COUNT);
    const fingerprintBytes = readU32(bytes, H_FINGERPRINT_BYTES);
    this.bytes = bytes.subarray(0, ID_FILTER_HEADER_BYTES + fingerprintBytes);
    this.count = readU32(bytes, H_COUNT);
    this.seed = readU32(bytes, H_SEED);
    this.params = hashParams(this.seed);
    this.fingerprints = bytes.subarray(ID_FILTER_HEADER_BYTES, ID_FILTER_HEADER_BYTES + fingerprintBytes);
    this.segmentLength = segmentLength;
    this.segmentMask = segmentLength - 1;
    this.scale = (segmentCount * segmentLength) / 2 ** 32;
  }

  /**
   * Builds a filter over `ids` (n × 32 bytes, e.g. a key store or a run's keys). Ids should be
   * distinct; repeated ones are accepted and counted once.
   */
  static build(ids: Uint8Array, options: IdFilterBuildOptions = {}): IdFilter {
    const n = idCount(ids);
    const { seed, into, capacity = n } = (options ?? {}) as IdFilterBuildOptions;
    if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
      throw new InvalidArgumentError(`filter seed must be a u32, got ${describeValue(seed)}`);
    }
    checkCount(capacity);
    if (capacity < n) throw new InvalidArgumentError(`a filter's capacity (${capacity}) is at least the ids given (${n})`);
    const shape = shapeFor(capacity);
    const needed = ID_FILTER_HEADER_BYTES + shape.fingerprintBytes;
    if (into !== undefined && (!(into instanceof Uint8Array) || into.length < needed)) {
      throw new InvalidArgumentError(`a filter of ${n} ids needs a Uint8Array of at least ${needed} bytes, got ${describeValue(into)}`);
    }
    const bytes = into === undefined ? new Uint8Array(new SharedArrayBuffer(needed)) : into.subarray(0, needed);
    const { seed: used, count } = construct(ids, n, shape, seed ?? randomSeed(), bytes.subarray(ID_FILTER_HEADER_BYTES));
    bytes.fill(0, 0, ID_FILTER_HEADER_BYTES);
    writeU32(bytes, H_MAGIC, MAGIC);
    writeU32(bytes, H_VERSION, VERSION);
    writeU32(bytes, H_SEED, used);
    writeU32(bytes, H_COUNT, count);
    writeU32(bytes, H_SEGMENT_LENGTH, shape.segmentLength);
    writeU32(bytes, H_SEGMENT_COUNT, shape.segmentCount);
    writeU32(bytes, H_FINGERPRINT_BYTES, shape.fingerprintBytes);
    writeU32(bytes, H_FINGERPRINT_BITS, FINGERPRINT_BITS);
    return new IdFilter(VALIDATED, bytes);
  }

  /**
   * A filter over an image another `build` wrote (in this thread or another, in memory or read
   * from a file); the bytes are shared, not copied. Bytes after the image are ignored. Throws
   * SharedMemoryError unless the header is one this version reads and its sizes fit.
   */
  static attach(image: Uint8Array | ArrayBuffer | SharedArrayBuffer): IdFilter {
    const bytes = imageBytes(image, 'a filter image');
    checkIdFilterImage(bytes);
    return new IdFilter(VALIDATED, bytes);
  }

  /** Bytes of the image. */
  get byteLength(): number {
    return this.bytes.length;
  }

  /** Bits of fingerprint per id (0 for an empty filter). */
  get bitsPerId(): number {
    return this.count === 0 ? 0 : (8 * this.fingerprints.length) / this.count;
  }

  /**
   * False if the id at `ids[offset..offset+32)` is certainly not among the filter's ids; true if
   * it may be (always for one that is, for about 1 in 256 that are not). Allocates nothing.
   */
  mayContain(ids: Uint8Array, offset: number): boolean {
    if (!(ids instanceof Uint8Array) || !(offset >= 0 && offset + 32 <= ids.length) || offset !== (offset | 0)) {
      throw new InvalidArgumentError(`no 32-byte id at offset ${describeValue(offset)} of ${describeValue(ids)}`);
    }
    if (this.count === 0) return false;
    // hashA, hashB and wordAt written out: V8 left ~6 ns per lookup on the table with the calls.
    const k = this.params;
    const o = offset;
    const x0 = ids[o]! | (ids[o + 1]! << 8) | (ids[o + 2]! << 16) | (ids[o + 3]! << 24);
    const x1 = ids[o + 4]! | (ids[o + 5]! << 8) | (ids[o + 6]! << 16) | (ids[o + 7]! << 24);
    const x2 = ids[o + 8]! | (ids[o + 9]! << 8) | (ids[o + 10]! << 16) | (ids[o + 11]! << 24);
    const x3 = ids[o + 12]! | (ids[o + 13]! << 8) | (ids[o + 14]! << 16) | (ids[o + 15]! << 24);
    const x4 = ids[o + 16]! | (ids[o + 17]! << 8) | (ids[o + 18]! << 16) | (ids[o + 19]! << 24);
    const x5 = ids[o + 20]! | (ids[o + 21]! << 8) | (ids[o + 22]! << 16) | (ids[o + 23]! << 24);
    const x6 = ids[o + 24]! | (ids[o + 25]! << 8) | (ids[o + 26]! << 16) | (ids[o + 27]! << 24);
    const x7 = ids[o + 28]! | (ids[o + 29]! << 8) | (ids[o + 30]! << 16) | (ids[o + 31]! << 24);
    const a = fmix32(
      (k[16]! +
        Math.imul(x0, k[0]!) +
        Math.imul(x1, k[1]!) +
        Math.imul(x2, k[2]!) +
        Math.imul(x3, k[3]!) +
        Math.imul(x4, k[4]!) +
        Math.imul(x5, k[5]!) +
        Math.imul(x6, k[6]!) +
        Math.imul(x7, k[7]!)) |
        0,
    );
    const b = fmix32(
      (k[17]! +
        Math.imul(x0, k[8]!) +
        Math.imul(x1, k[9]!) +
        Math.imul(x2, k[10]!) +
        Math.imul(x3, k[11]!) +
        Math.imul(x4, k[12]!) +
        Math.imul(x5, k[13]!) +
        Math.imul(x6, k[14]!) +
        Math.imul(x7, k[15]!)) |
        0,
    );
    const fp = this.fingerprints;
    const length = this.segmentLength;
    const mask = this.segmentMask;
    // (a / 2^32) × S·L < S·L for every u32 a (see exact-index.ts's home slot).
    const h0 = Math.floor((a >>> 0) * this.scale);
    return b >>> 24 === (fp[h0]! ^ fp[(h0 + length) ^ (b & mask)]! ^ fp[(h0 + 2 * length) ^ (hashC(a, b) & mask)]!);
  }

  /**
   * 0 if the id whose hashes are `a`, `b`, `c` (an `IdFilterHash` of this filter's seed) may be
   * present, else non-zero (then it is certainly absent): `mayContain` without hashing and
   * without a branch on the answer. The caller checks the seed; an empty filter says 0 or not.
   */
  missHashed(a: number, b: number, c: number): number {
    const fp = this.fingerprints;
    const length = this.segmentLength;
    const mask = this.segmentMask;
    const h0 = Math.floor((a >>> 0) * this.scale);
    return (b >>> 24) ^ fp[h0]! ^ fp[(h0 + length) ^ (b & mask)]! ^ fp[(h0 + 2 * length) ^ (c & mask)]!;
  }
}

/**
 * The hashes of one id under one seed, computed once and then tested against any number of
 * filters built with that seed (`IdFilter.missHashed`): a tiered index asks every one of its
 * runs' filters about each new id, and hashing once saves the 16 multiplies per filter. Also,
 * `missHashed` returns a number rather than branching, so a caller can test many filters with
 * no branch on their answers and let the CPU overlap their cache misses.
 */
export class IdFilterHash {
  /** Seed whose filters these hashes are for. */
  readonly seed: number;
  a = 0;
  b = 0;
  c = 0;
  private readonly params: Int32Array;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InvalidArgumentError(`filter seed must be a u32, got ${describeValue(seed)}`);
    this.seed = seed;
    this.params = hashParams(seed);
  }

  /** Hashes the id whose eight little-endian u32 words are `w` (an IdHasher's `words`). */
  loadWords(w: Uint32Array): void {
    const k = this.params;
    const x0 = w[0]!;
    const x1 = w[1]!;
    const x2 = w[2]!;
    const x3 = w[3]!;
    const x4 = w[4]!;
    const x5 = w[5]!;
    const x6 = w[6]!;
    const x7 = w[7]!;
    const a = hashA(k, x0, x1, x2, x3, x4, x5, x6, x7);
    const b = hashB(k, x0, x1, x2, x3, x4, x5, x6, x7);
    this.a = a;
    this.b = b;
    this.c = hashC(a, b);
  }
}

/**
 * Throws SharedMemoryError unless `bytes` starts with a filter image this version reads, whole:
 * magic, version, a power-of-two segment length in range, fingerprint bytes = (S + 2)·L, zero
 * reserved bytes, and the bytes to hold it. A lookup reads cells below (S + 2)·L only, so an
 * image that passes cannot make one read outside it.
 */
export function checkIdFilterImage(bytes: Uint8Array): void {
  if (bytes.length < ID_FILTER_HEADER_BYTES) {
    throw new SharedMemoryError(`a filter image has at least ${ID_FILTER_HEADER_BYTES} bytes, got ${bytes.length}`);
  }
  if (readU32(bytes, H_MAGIC) !== MAGIC || readU32(bytes, H_VERSION) !== VERSION) {
    throw new SharedMemoryError(`bytes do not hold an id filter of version ${VERSION}`);
  }
  const length = readU32(bytes, H_SEGMENT_LENGTH);
  const segments = readU32(bytes, H_SEGMENT_COUNT);
  const fingerprintBytes = readU32(bytes, H_FINGERPRINT_BYTES);
  const count = readU32(bytes, H_COUNT);
  if (readU32(bytes, H_FINGERPRINT_BITS) !== FINGERPRINT_BITS) throw new SharedMemoryError('id filter: unknown fingerprint width');
  if (length < MIN_SEGMENT_LENGTH || length > MAX_SEGMENT_LENGTH || (length & (length - 1)) !== 0) {
    throw new SharedMemoryError(`id filter: segment length ${length} is not a power of two in [${MIN_SEGMENT_LENGTH}, ${MAX_SEGMENT_LENGTH}]`);
  }
  if (segments < 1 || (segments + 2) * length !== fingerprintBytes || count > MAX_FILTER_IDS) {
    throw new SharedMemoryError(`id filter: ${segments} segments of ${length} cells do not make ${fingerprintBytes} fingerprint bytes, or ${count} ids is out of range`);
  }
  for (let i = H_RESERVED; i < ID_FILTER_HEADER_BYTES; i++) {
    if (bytes[i] !== 0) throw new SharedMemoryError('id filter: reserved header bytes are not zero');
  }
  if (bytes.length < ID_FILTER_HEADER_BYTES + fingerprintBytes) {
    throw new SharedMemoryError(`id filter image truncated: ${bytes.length} bytes, its header says ${ID_FILTER_HEADER_BYTES + fingerprintBytes}`);
  }
}

/** Bytes in the image's header: a filter image's total length, after `checkIdFilterImage`. */
export function idFilterImageLength(bytes: Uint8Array): number {
  return ID_FILTER_HEADER_BYTES + readU32(bytes, H_FINGERPRINT_BYTES);
}

/**
 * Writes hashes a and b of each of the `n` ids into `out[2i]`, `out[2i + 1]`, reading the ids as
 * u32 words when they are 4-byte aligned (the build hashes every id once per attempt).
 */
function hashAll(ids: Uint8Array, n: number, k: Int32Array, out: Int32Array): void {
  if ((ids.byteOffset & 3) !== 0) {
    for (let i = 0, o = 0; i < n; i++, o += 32) {
      const x0 = wordAt(ids, o);
      const x1 = wordAt(ids, o + 4);
      const x2 = wordAt(ids, o + 8);
      const x3 = wordAt(ids, o + 12);
      const x4 = wordAt(ids, o + 16);
      const x5 = wordAt(ids, o + 20);
      const x6 = wordAt(ids, o + 24);
      const x7 = wordAt(ids, o + 28);
      out[2 * i] = hashA(k, x0, x1, x2, x3, x4, x5, x6, x7);
      out[2 * i + 1] = hashB(k, x0, x1, x2, x3, x4, x5, x6, x7);
    }
    return;
  }
  // Little-endian platform (core/platform.ts checks): word j of an id is bytes 4j..4j+4 as LE.
  const w = new Int32Array(ids.buffer, ids.byteOffset, 8 * n);
  for (let i = 0, p = 0; i < n; i++, p += 8) {
    const x0 = w[p]!;
    const x1 = w[p + 1]!;
    const x2 = w[p + 2]!;
    const x3 = w[p + 3]!;
    const x4 = w[p + 4]!;
    const x5 = w[p + 5]!;
    const x6 = w[p + 6]!;
    const x7 = w[p + 7]!;
    out[2 * i] = hashA(k, x0, x1, x2, x3, x4, x5, x6, x7);
    out[2 * i + 1] = hashB(k, x0, x1, x2, x3, x4, x5, x6, x7);
  }
}

/**
 * Fills `fingerprints` so that every id of `ids` maps to its fingerprint; returns the seed that
 * worked and how many distinct hashes went in. Follows the reference's populate(): hash, order
 * by segment (so the cell arrays are walked nearly in order), count each cell's keys and XOR
 * their hashes, peel cells holding one key, then assign in reverse peeling order. Hash pairs are
 * kept interleaved (a, b, a, b, …) so that one key's two words share a cache line.
 */
function construct(ids: Uint8Array, n: number, shape: FilterShape, firstSeed: number, fingerprints: Uint8Array): { seed: number; count: number } {
  const { segmentLength: length, segmentCount, fingerprintBytes: cells } = shape;
  const mask = length - 1;
  const scale = (segmentCount * length) / 2 ** 32;
  // Per id: its hashes (then reused as the peeling stack), the same in segment order, and which
  // of its cells it was peeled from. Per cell: 4 × keys in it | XOR of which of the key's three
  // cells it is; XOR of the keys' hashes. ~32 bytes per id in all, in one prefaulted buffer.
  const scratch = new Scratch(8 * n + 4 * Math.max(2 * n, cells) + n + cells + 8 * cells);
  const hashes = scratch.int32(2 * n);
  const sorted = scratch.int32(Math.max(2 * n, cells));
  const cellHash = scratch.int32(2 * cells);
  const peeledAt = scratch.uint8(n);
  const cellCount = scratch.uint8(cells);
  // The queue of cells holding one key: `sorted` is done with once the cells are counted.
  const alone = new Uint32Array(sorted.buffer, sorted.byteOffset, cells);
  let blockBits = 1;
  while (2 ** blockBits < segmentCount) blockBits++;
  const bucketStart = new Uint32Array((1 << blockBits) + 1);

  let seed = firstSeed >>> 0;
  // Identical ids have identical hashes under every seed, and peeling never separates two
  // identical keys. So the first failure checks for repeated hashes; if there were any, every
  // later attempt removes them before peeling. Distinct ids skip that sort.
  let checked = false;
  let removeRepeats = false;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++, seed = splitmix32(seed) >>> 0) {
    hashAll(ids, n, hashParams(seed), hashes);
    let m = removeRepeats ? removeDuplicateHashes(hashes, n, hashes) : n;
    if (peel(m)) {
      assign(m);
      return { seed, count: m };
    }
    if (checked) continue;
    checked = true;
    hashAll(ids, n, hashParams(seed), hashes);
    const distinct = removeDuplicateHashes(hashes, m, hashes);
    if (distinct === m) continue;
    removeRepeats = true;
    m = distinct;
    if (peel(m)) {
      assign(m);
      return { seed, count: m };
    }
  }
  throw new InvalidArgumentError(`no filter could be built over these ${n} ids in ${MAX_ATTEMPTS} attempts`);

  /**
   * Orders hashes[0..2m) into `sorted` by segment and peels. Returns true if every key was
   * peeled; they are then in `hashes` (as a stack), with which of its cells each was peeled from
   * in peeledAt.
   */
  function peel(m: number): boolean {
    const shift = 32 - blockBits;
    bucketStart.fill(0);
    for (let i = 0; i < m; i++) {
      const bucket = (hashes[2 * i]! >>> shift) + 1;
      bucketStart[bucket] = bucketStart[bucket]! + 1;
    }
    for (let i = 1; i < bucketStart.length; i++) bucketStart[i] = bucketStart[i]! + bucketStart[i - 1]!;
    for (let i = 0; i < m; i++) {
      const a = hashes[2 * i]!;
      const bucket = a >>> shift;
      const d = bucketStart[bucket]!;
      bucketStart[bucket] = d + 1;
      sorted[2 * d] = a;
      sorted[2 * d + 1] = hashes[2 * i + 1]!;
    }
    cellCount.fill(0);
    cellHash.fill(0);
    let overflow = false;
    for (let i = 0; i < m; i++) {
      const a = sorted[2 * i]!;
      const b = sorted[2 * i + 1]!;
      const h0 = Math.floor((a >>> 0) * scale);
      const h1 = (h0 + length) ^ (b & mask);
      const h2 = (h0 + 2 * length) ^ (hashC(a, b) & mask);
      cellCount[h0] = cellCount[h0]! + 4;
      cellHash[2 * h0] = cellHash[2 * h0]! ^ a;
      cellHash[2 * h0 + 1] = cellHash[2 * h0 + 1]! ^ b;
      cellCount[h1] = (cellCount[h1]! + 4) ^ 1;
      cellHash[2 * h1] = cellHash[2 * h1]! ^ a;
      cellHash[2 * h1 + 1] = cellHash[2 * h1 + 1]! ^ b;
      cellCount[h2] = (cellCount[h2]! + 4) ^ 2;
      cellHash[2 * h2] = cellHash[2 * h2]! ^ a;
      cellHash[2 * h2 + 1] = cellHash[2 * h2 + 1]! ^ b;
      // A cell's count field is 6 bits: 64 keys in one cell wrap it (only a bad seed does that).
      if (cellCount[h0]! < 4 || cellCount[h1]! < 4 || cellCount[h2]! < 4) overflow = true;
    }
    if (overflow) return false;
    let queued = 0;
    for (let i = 0; i < cells; i++) {
      alone[queued] = i;
      if (cellCount[i]! >>> 2 === 1) queued++;
    }
    let peeled = 0;
    while (queued > 0) {
      const cell = alone[--queued]!;
      if (cellCount[cell]! >>> 2 !== 1) continue;
      const a = cellHash[2 * cell]!;
      const b = cellHash[2 * cell + 1]!;
      const found = cellCount[cell]! & 3;
      hashes[2 * peeled] = a;
      hashes[2 * peeled + 1] = b;
      peeledAt[peeled] = found;
      peeled++;
      const h0 = Math.floor((a >>> 0) * scale);
      const h1 = (h0 + length) ^ (b & mask);
      const h2 = (h0 + 2 * length) ^ (hashC(a, b) & mask);
      // Take the key out of its other two cells; a cell left with one key joins the queue.
      if (found !== 0) {
        alone[queued] = h0;
        if (cellCount[h0]! >>> 2 === 2) queued++;
        cellCount[h0] = cellCount[h0]! - 4;
        cellHash[2 * h0] = cellHash[2 * h0]! ^ a;
        cellHash[2 * h0 + 1] = cellHash[2 * h0 + 1]! ^ b;
      }
      if (found !== 1) {
        alone[queued] = h1;
        if (cellCount[h1]! >>> 2 === 2) queued++;
        cellCount[h1] = (cellCount[h1]! - 4) ^ 1;
        cellHash[2 * h1] = cellHash[2 * h1]! ^ a;
        cellHash[2 * h1 + 1] = cellHash[2 * h1 + 1]! ^ b;
      }
      if (found !== 2) {
        alone[queued] = h2;
        if (cellCount[h2]! >>> 2 === 2) queued++;
        cellCount[h2] = (cellCount[h2]! - 4) ^ 2;
        cellHash[2 * h2] = cellHash[2 * h2]! ^ a;
        cellHash[2 * h2 + 1] = cellHash[2 * h2 + 1]! ^ b;
      }
    }
    return peeled === m;
  }

  /** Sets each peeled key's cell, last peeled first, so its three cells XOR to its fingerprint. */
  function assign(m: number): void {
    fingerprints.fill(0);
    for (let i = m - 1; i >= 0; i--) {
      const a = hashes[2 * i]!;
      const b = hashes[2 * i + 1]!;
      const h0 = Math.floor((a >>> 0) * scale);
      const h1 = (h0 + length) ^ (b & mask);
      const h2 = (h0 + 2 * length) ^ (hashC(a, b) & mask);
      const fingerprint = b >>> 24;
      const found = peeledAt[i]!;
      if (found === 0) fingerprints[h0] = fingerprint ^ fingerprints[h1]! ^ fingerprints[h2]!;
      else if (found === 1) fingerprints[h1] = fingerprint ^ fingerprints[h0]! ^ fingerprints[h2]!;
      else fingerprints[h2] = fingerprint ^ fingerprints[h0]! ^ fingerprints[h1]!;
    }
  }
}

/**
 * Typed arrays carved from one SharedArrayBuffer that is prefaulted: a build's scratch is ~32
 * bytes per id, and first touching fresh pages one fault at a time costs ~11 µs per 4 KiB here —
 * as much as the build itself at a million ids; one madvise through the native shim costs ~20×
 * less. Without the shim the pages fault in as touched. A SharedArrayBuffer because that is what
 * the shim populates; nothing else shares it.
 */
class Scratch {
  private readonly buffer: SharedArrayBuffer;
  private used = 0;

  constructor(bytes: number) {
    // Each carved array is rounded up to 8 bytes, so reserve 8 more per array (at most 8).
    this.buffer = new SharedArrayBuffer(bytes + 64);
    prefault(this.buffer);
  }

  int32(length: number): Int32Array {
    const view = new Int32Array(this.buffer, this.used, length);
    this.used += Math.ceil((4 * length) / 8) * 8;
    return view;
  }

  uint8(length: number): Uint8Array {
    const view = new Uint8Array(this.buffer, this.used, length);
    this.used += Math.ceil(length / 8) * 8;
    return view;
  }
}

/**
 * Copies the distinct pairs among the `m` interleaved (a, b) pairs of `pairs` into `out` (which
 * may be `pairs`) and returns how many. Ids whose hashes are identical get the same answer from
 * the filter whichever one is kept, so dropping the repeats loses no id. The pairs are sorted in
 * place as u64 keys (b·2^32 + a on a little-endian platform; any total order finds repeats),
 * through a BigUint64Array view: native sort, no BigInt per pair.
 */
function removeDuplicateHashes(pairs: Int32Array, m: number, out: Int32Array): number {
  new BigUint64Array(pairs.buffer, pairs.byteOffset, m).sort();
  let distinct = 0;
  for (let i = 0; i < m; i++) {
    const a = pairs[2 * i]!;
    const b = pairs[2 * i + 1]!;
    if (distinct > 0 && a === out[2 * distinct - 2] && b === out[2 * distinct - 1]) continue;
    out[2 * distinct] = a;
    out[2 * distinct + 1] = b;
    distinct++;
  }
  return distinct;
}
