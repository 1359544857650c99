/**
 * SortedRun: an immutable set of 32-byte fact ids — the cold tier of the exact history. The ids
 * are sorted bytewise (memcmp order) and packed end to end; a fence index (the first 8 bytes of
 * every 128th id) narrows a lookup to one 4 KiB page of ids; an IdFilter (id-filter.ts) answers
 * most lookups of absent ids before any id is read. `contains` is exact: a filter hit is
 * confirmed by comparing all 32 bytes.
 *
 * One contiguous image holds everything, the same bytes in a SharedArrayBuffer (another thread
 * attaches to it) and in a file (the header, fences and filter are read once; ids are read a page
 * at a time with positional reads). Image, version 1, all integers little-endian:
 *
 *   | offset | size | field |
 *   | 0      | 4    | magic "CTSR" (0x52535443) |
 *   | 4      | 4    | version, = 1 |
 *   | 8      | 4    | ids n |
 *   | 12     | 4    | ids per fence block B, = 128 |
 *   | 16     | 4    | fences F = ⌈n / B⌉ |
 *   | 20     | 4    | fences offset, = 128 |
 *   | 24     | 4    | filter offset (a multiple of 64, at or after the fences' end) |
 *   | 28     | 4    | filter bytes (the filter image's own length) |
 *   | 32     | 4    | ids offset K (a multiple of 4096, at or after the filter's end) |
 *   | 36     | 4    | flags: bit 0 = the checksum below is set; other bits 0 |
 *   | 40     | 8    | image bytes = K + 32·n (u64) |
 *   | 48     | 16   | zeros |
 *   | 64     | 32   | checksum: BLAKE3("ctfs/run/v1\0" ‖ image[0, 64) ‖ BLAKE3(image[96, K + 32·n))), or zeros |
 *   | 96     | 32   | zeros |
 *   | 128    | 8·F  | fence j: bytes 0..4 and 4..8 of id j·B, each read big-endian and stored as a u32 |
 *   | filter offset | filter bytes | the IdFilter image over the n ids |
 *   | K      | 32·n | the ids, strictly increasing in memcmp order |
 *
 * Bytes between regions are zero. A run is laid out for a capacity before its ids are known
 * (a merge counts repeats only as it meets them), so the fence and filter regions may be larger
 * than n needs; the offsets above are what readers follow, never a recomputation.
 *
 * Why 128 ids per fence: 128 × 32 = 4,096 bytes, and K is a multiple of 4,096, so every fence
 * block is exactly one page of the file: a cold lookup reads one page. Fences then cost
 * 8 / 128 = 0.0625 bytes per id, and the filter ~1.13, so a cold id costs ~1.2 bytes of RAM
 * besides its 32 bytes on disk (the issue's budget is 2). A fence holds 8 bytes, not 4: ids
 * sharing a 4-byte prefix are common from 65,536 ids on, an 8-byte one practically never among
 * content addresses; the lookup stays exact when it happens (see `contains`).
 *
 * Build (sort) and merge: see `SortedRun.build` and `SortedRun.merge`. Measured (`npm run
 * bench:history`, two runs on this 2-core machine): build 2.4–3.5M ids/s at 1M ids (1.8–2.6M with
 * the checksum), 1.9–2.0M at 10M; merge 2.3–3.1M ids/s (2 or 8 runs into 1M, 4 into 10M), the
 * new filter being most of it; `contains` 60 ns for an absent id and 0.6 µs for a present one at
 * 1M ids, 210 ns and ~1 µs at 10M (a present id costs the filter, then one or two cache misses
 * in the ids: ~165 ns each at 32 MiB here, ~265 ns at 320 MiB).
 */
import { hash } from 'blake3-jit';
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { IdFilter, MAX_FILTER_IDS, checkIdFilterImage, idFilterByteLength, idFilterImageLength, imageBytes } from './id-filter.js';
import { prefault } from '../native/shim.js';
import '../core/platform.js';

/** "CTSR" little-endian: marks bytes as a sorted run. */
const MAGIC = 0x52535443;
const VERSION = 1;
/** Ids per fence block: one 4 KiB page of ids (see the module comment). */
export const RUN_FENCE_IDS = 128;
/** The page a fence block fills; the ids region starts on a multiple of it. */
const PAGE = 4096;
/** Regions other than the ids start on cache lines. */
const LINE = 64;
const ID_BYTES = 32;
/** Header: the fields, the checksum and zeros up to two cache lines. */
export const RUN_HEADER_BYTES = 128;
const H_MAGIC = 0;
const H_VERSION = 4;
const H_COUNT = 8;
const H_FENCE_IDS = 12;
const H_FENCES = 16;
const H_FENCES_OFFSET = 20;
const H_FILTER_OFFSET = 24;
const H_FILTER_BYTES = 28;
const H_KEYS_OFFSET = 32;
const H_FLAGS = 36;
const H_IMAGE_BYTES = 40;
const H_CHECKSUM = 64;
const CHECKSUM_BYTES = 32;
/** Flag bit 0: the checksum field holds the image's BLAKE3. */
const FLAG_CHECKSUM = 1;
/** Domain separation of the checksum from every other BLAKE3 ctfs computes. */
const CHECKSUM_DOMAIN = new TextEncoder().encode('ctfs/run/v1\0');
/**
 * Largest image: a run in memory is one Uint8Array, and Node 20 caps those at 2^32 bytes
 * (~129M ids with their filter and fences). Larger histories are several runs.
 */
const MAX_IMAGE_BYTES = 2 ** 32;
/**
 * The build's first pass deals ids into 2^bits buckets by their leading bits, so each bucket is
 * sorted where it fits the L2 cache (512 KiB here): ~2,048 ids (64 KiB) per bucket. At most 2^11
 * buckets: more output streams than that thrash the TLB during the deal.
 */
const IDS_PER_BUCKET = 2048;
const MAX_BUCKET_BITS = 11;
/**
 * How far a lookup steps from its guessed place before it binary-searches instead. Among 128
 * evenly spread ids the guess is off by ~4 on average (the rank's standard deviation is at most
 * √128 / 2 ≈ 5.7), so 16 steps cover nearly every lookup.
 */
const MAX_STEPS = 16;
/** Largest radix index over the fences: 2^20 entries (4 MiB), enough for 2^21 fences (268M ids). */
const MAX_RADIX_BITS = 20;

interface RunLayout {
  readonly fences: number;
  readonly filterOffset: number;
  readonly filterBytes: number;
  readonly keysOffset: number;
  /** Bytes of an image holding `capacity` ids; one holding fewer ends earlier. */
  readonly byteLength: number;
}

const align = (n: number, to: number): number => Math.ceil(n / to) * to;

function layoutFor(capacity: number): RunLayout {
  const fences = Math.ceil(capacity / RUN_FENCE_IDS);
  const filterOffset = align(RUN_HEADER_BYTES + 8 * fences, LINE);
  const filterBytes = idFilterByteLength(capacity);
  const keysOffset = align(filterOffset + filterBytes, PAGE);
  return { fences, filterOffset, filterBytes, keysOffset, byteLength: keysOffset + ID_BYTES * capacity };
}

/** Bytes of the image of a run of `count` ids (also enough for a merge whose inputs hold `count` in all). */
export function sortedRunByteLength(count: number): number {
  return checkedLayout(count).byteLength;
}

/** The layout for `count` ids, if an image of them fits one Uint8Array; else InvalidArgument. */
function checkedLayout(count: number): RunLayout {
  if (!Number.isInteger(count) || count < 0 || count > MAX_FILTER_IDS) {
    throw new InvalidArgumentError(`an id count is an integer in [0, ${MAX_FILTER_IDS}], got ${describeValue(count)}`);
  }
  const layout = layoutFor(count);
  if (layout.byteLength > MAX_IMAGE_BYTES) {
    throw new InvalidArgumentError(`a run of ${count} ids would take ${layout.byteLength} bytes, more than one Uint8Array holds (${MAX_IMAGE_BYTES}); build several runs`);
  }
  return layout;
}

export interface SortedRunOptions {
  /**
   * Where to write the image: at least `sortedRunByteLength(n)` bytes, starting at a multiple
   * of 64 bytes of its buffer (a view of a SharedArrayBuffer, to share it). Default: a new
   * SharedArrayBuffer of exactly that size.
   */
  readonly into?: Uint8Array;
  /** Write the BLAKE3 checksum (default true; ~40 ms per million ids here). In-memory runs may skip it. */
  readonly checksum?: boolean;
  /** Seed of the filter's hash (default: random). */
  readonly seed?: number;
}

function readU32(bytes: Uint8Array, o: number): number {
  return (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, o: number, value: number): void {
  bytes[o] = value;
  bytes[o + 1] = value >>> 8;
  bytes[o + 2] = value >>> 16;
  bytes[o + 3] = value >>> 24;
}

/** Bytes o..o+4 read big-endian, as a u32: comparing these compares the bytes in memcmp order. */
function beWord(bytes: Uint8Array, o: number): number {
  return ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
}

/** memcmp of the 32-byte ids at a[i..] and b[j..]: negative, zero or positive. */
function compareIds(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  for (let w = 0; w < ID_BYTES; w += 4) {
    const x = beWord(a, i + w);
    const y = beWord(b, j + w);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * The id at keys[p..] against the one at ids[offset..] whose first two big-endian words are hi
 * and lo: negative, zero or positive (memcmp order).
 */
function compareKey(keys: Uint8Array, p: number, ids: Uint8Array, offset: number, hi: number, lo: number): number {
  const kh = beWord(keys, p);
  if (kh !== hi) return kh < hi ? -1 : 1;
  const kl = beWord(keys, p + 4);
  if (kl !== lo) return kl < lo ? -1 : 1;
  return compareIds(keys, p, ids, offset);
}

/** The constructor option that carries a validated image: runs come from build, merge or attach only. */
const VALIDATED = Symbol('ctfs.sortedRun.validated');

export class SortedRun {
  /** The image, exactly its header's length (a view of the buffer it lives in). */
  readonly bytes: Uint8Array;
  /** Ids in the run. */
  readonly count: number;
  /** The ids, 32 bytes each, in memcmp order (a view into the image). */
  readonly keys: Uint8Array;
  /** The ids as little-endian u32 words, when the image sits at a multiple of 4 bytes of its buffer (merges copy words). */
  readonly keyWords: Int32Array | undefined;
  /** The run's filter (a view into the image). */
  readonly filter: IdFilter;
  /** True if the image carries its BLAKE3 checksum. */
  readonly checksummed: boolean;
  /** Fence j's two words: word 2j is bytes 0..4 of id j·128 big-endian, word 2j + 1 bytes 4..8. */
  private readonly fences: Uint32Array;
  private readonly fenceCount: number;
  /**
   * A radix index over the fences (built here, not stored in the image): entry t is the number
   * of fences whose leading `bits` bits are below t, so the fences with leading bits t are
   * [radix[t], radix[t + 1]). With bits = ⌈log2 F⌉ − 1 that is ~2 fences per entry for evenly
   * spread ids: a lookup reads one entry pair and a fence or two instead of binary-searching all
   * F (17 dependent reads at 10M ids, ~130 ns here). Costs 2–4 bytes per fence, ≤ 0.03 bytes per id.
   */
  private readonly radix: Uint32Array;
  /** 2^bits / 2^32: maps a fence's first word to its radix entry. */
  private readonly radixScale: number;

  /** Runs are made by `build`, `merge` and `attach`: the token is private to this module. */
  constructor(token: typeof VALIDATED, bytes: Uint8Array) {
    if (token !== VALIDATED) throw new InvalidArgumentError('SortedRun is made by SortedRun.build, SortedRun.merge or SortedRun.attach');
    const count = readU32(bytes, H_COUNT);
    const keysOffset = readU32(bytes, H_KEYS_OFFSET);
    const filterOffset = readU32(bytes, H_FILTER_OFFSET);
    this.count = count;
    this.bytes = bytes.subarray(0, keysOffset + ID_BYTES * count);
    this.keys = bytes.subarray(keysOffset, keysOffset + ID_BYTES * count);
    this.keyWords = this.keys.byteOffset % 4 === 0 ? new Int32Array(this.keys.buffer, this.keys.byteOffset, 8 * count) : undefined;
    this.filter = IdFilter.attach(bytes.subarray(filterOffset, filterOffset + readU32(bytes, H_FILTER_BYTES)));
    this.checksummed = (readU32(bytes, H_FLAGS) & FLAG_CHECKSUM) !== 0;
    this.fenceCount = readU32(bytes, H_FENCES);
    const at = bytes.byteOffset + RUN_HEADER_BYTES;
    // Fences are read where they are when aligned (always, for an image at the start of its
    // buffer); a view at an odd offset gets a copy, ~0.06 bytes per id.
    this.fences =
      at % 4 === 0
        ? new Uint32Array(bytes.buffer, at, 2 * this.fenceCount)
        : new Uint32Array(new Uint8Array(bytes.subarray(RUN_HEADER_BYTES, RUN_HEADER_BYTES + 8 * this.fenceCount)).buffer);
    let bits = 0;
    while (bits < MAX_RADIX_BITS && 2 ** (bits + 1) < this.fenceCount) bits++;
    this.radixScale = 2 ** bits / 2 ** 32;
    // Counted, not searched: on fences out of order (a damaged image that was not verified)
    // every entry still lies in [0, F], so a lookup never reads outside the fences.
    const radix = new Uint32Array(2 ** bits + 1);
    for (let j = 0; j < this.fenceCount; j++) {
      const t = Math.floor(this.fences[2 * j]! * this.radixScale) + 1;
      radix[t] = radix[t]! + 1;
    }
    for (let t = 1; t < radix.length; t++) radix[t] = radix[t]! + radix[t - 1]!;
    this.radix = radix;
  }

  /**
   * A run over `ids` (n × 32 bytes in any order, e.g. a frozen table's key store). Repeated ids
   * are kept once. The ids are first dealt into buckets by their leading bits (one sequential
   * read), then each bucket is sorted in cache: its 8-byte prefixes, packed with the id's place
   * in the bucket into u64s, go through BigUint64Array's native sort, and ids whose packed
   * prefixes tie are ordered by a full compare.
   */
  static build(ids: Uint8Array, options: SortedRunOptions = {}): SortedRun {
    if (!(ids instanceof Uint8Array) || ids.length % ID_BYTES !== 0) {
      throw new InvalidArgumentError(`ids are a Uint8Array of 32-byte ids end to end, got ${describeValue(ids)}`);
    }
    const n = ids.length / ID_BYTES;
    const { out, layout } = prepare(n, options);
    const keys = out.subarray(layout.keysOffset, layout.keysOffset + ID_BYTES * n);
    // `new Uint8Array(view)` copies (a Buffer's slice would not).
    const count = sortInto(ids.byteOffset % 4 === 0 ? ids : new Uint8Array(ids), n, keys);
    return finish(out, layout, count, n, options);
  }

  /**
   * One run holding every id of `runs` (k-way merge: each input is read once, in order, and the
   * output written once, in order; nothing else of the ids' size is allocated, the new filter's
   * scratch aside). An id in several inputs is kept once.
   */
  static merge(runs: readonly SortedRun[], options: SortedRunOptions = {}): SortedRun {
    if (!Array.isArray(runs) || !runs.every((r) => r instanceof SortedRun)) {
      throw new InvalidArgumentError(`merge takes an array of SortedRuns, got ${describeValue(runs)}`);
    }
    let capacity = 0;
    for (const r of runs) capacity += r.count;
    const { out, layout } = prepare(capacity, options);
    const count = mergeInto(runs, out.subarray(layout.keysOffset, layout.keysOffset + ID_BYTES * capacity));
    return finish(out, layout, count, capacity, options);
  }

  /**
   * A run over an image `build` or `merge` wrote (in this thread or another, in memory or read
   * from a file); the bytes are shared, not copied. Bytes after the image are ignored. Throws
   * SharedMemoryError unless the header is one this version reads and every region fits in the
   * bytes; what a header cannot prove (order, fences, filter, checksum) `verify` checks.
   */
  static attach(image: Uint8Array | ArrayBuffer | SharedArrayBuffer): SortedRun {
    const bytes = imageBytes(image, 'a sorted run image');
    checkRunImage(bytes);
    return new SortedRun(VALIDATED, bytes);
  }

  /** Bytes of the image. */
  get byteLength(): number {
    return this.bytes.length;
  }

  /** Bytes of RAM the run needs besides its ids: header, fences and filter (what stays in memory when the ids are on disk). */
  get residentBytes(): number {
    return readU32(this.bytes, H_KEYS_OFFSET);
  }

  /** A copy of the id at `index` (0 ≤ index < count), the smallest first. */
  idAt(index: number): Uint8Array {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) {
      throw new InvalidArgumentError(`id index ${describeValue(index)} is not in [0, ${this.count})`);
    }
    return new Uint8Array(this.keys.subarray(ID_BYTES * index, ID_BYTES * index + ID_BYTES));
  }

  /**
   * True if the id at `ids[offset..offset+32)` is in the run. Exact. Absent ids are mostly
   * refused by the filter; the rest, and present ids, are found by binary search over the fences,
   * then over the ids of the blocks the fences allow (one block, unless ids share 8-byte prefixes
   * across a block boundary). Allocates nothing.
   */
  contains(ids: Uint8Array, offset: number): boolean {
    if (!this.filter.mayContain(ids, offset)) return false;
    return this.search(ids, offset) >= 0;
  }

  /** Index of the id at `ids[offset..]` among the run's ids, or −1; the filter is not consulted. */
  indexOf(ids: Uint8Array, offset: number): number {
    if (!(ids instanceof Uint8Array) || !(offset >= 0 && offset + ID_BYTES <= ids.length) || offset !== (offset | 0)) {
      throw new InvalidArgumentError(`no 32-byte id at offset ${describeValue(offset)} of ${describeValue(ids)}`);
    }
    return this.search(ids, offset);
  }

  private search(ids: Uint8Array, offset: number): number {
    const hi = beWord(ids, offset);
    const lo = beWord(ids, offset + 4);
    const fences = this.fences;
    const fenceCount = this.fenceCount;
    // first = the first fence ≥ the id's prefix. The id lies in blocks first − 1 .. last, where
    // last is the last fence ≤ the prefix: block first − 1 starts below the prefix (but may end
    // inside it), blocks after last start above it. Fences with the prefix's leading bits are
    // radix[t]..radix[t + 1]: those before are below it, those after above.
    const t = Math.floor(hi * this.radixScale);
    let low = this.radix[t]!;
    let high = this.radix[t + 1]!;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const fh = fences[2 * mid]!;
      if (fh < hi || (fh === hi && fences[2 * mid + 1]! < lo)) low = mid + 1;
      else high = mid;
    }
    const first = low;
    let last = first - 1;
    if (first < fenceCount && fences[2 * first] === hi && fences[2 * first + 1] === lo) {
      // Ids sharing the 8-byte prefix start blocks from `first` on: find the last such block.
      high = fenceCount;
      low = first + 1;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (fences[2 * mid] === hi && fences[2 * mid + 1] === lo) low = mid + 1;
        else high = mid;
      }
      last = low - 1;
    }
    const block = first === 0 ? 0 : first - 1;
    const start = block * RUN_FENCE_IDS;
    const end = Math.min(this.count, (last + 1) * RUN_FENCE_IDS);
    if (start >= end) return -1;
    if (last > block) return this.binarySearch(ids, offset, hi, lo, start, end);
    // One block: guess the id's place from where its prefix falls between this block's fence and
    // the next (ids are content addresses, spread evenly), then step to it. A binary search
    // would take 7 dependent reads across the 4 KiB block, each a cache miss in a large run;
    // stepping reads neighbouring lines the CPU fetches ahead. The guess is only a start: a
    // stepping that runs long falls back to binary search, so any id order stays exact.
    const from = fences[2 * block]! * 2 ** 32 + fences[2 * block + 1]!;
    const to = block + 1 < fenceCount ? fences[2 * block + 2]! * 2 ** 32 + fences[2 * block + 3]! : 2 ** 64;
    const target = hi * 2 ** 32 + lo;
    let guess = start + Math.floor(((target - from) / (to - from)) * (end - start));
    if (!(guess >= start)) guess = start;
    if (guess >= end) guess = end - 1;
    const keys = this.keys;
    const order = compareKey(keys, ID_BYTES * guess, ids, offset, hi, lo);
    if (order === 0) return guess;
    if (order < 0) {
      const stop = Math.min(end, guess + 1 + MAX_STEPS);
      for (let i = guess + 1; i < stop; i++) {
        const c = compareKey(keys, ID_BYTES * i, ids, offset, hi, lo);
        if (c >= 0) return c === 0 ? i : -1;
      }
      return stop === end ? -1 : this.binarySearch(ids, offset, hi, lo, stop, end);
    }
    const stop = Math.max(start - 1, guess - 1 - MAX_STEPS);
    for (let i = guess - 1; i > stop; i--) {
      const c = compareKey(keys, ID_BYTES * i, ids, offset, hi, lo);
      if (c <= 0) return c === 0 ? i : -1;
    }
    return stop === start - 1 ? -1 : this.binarySearch(ids, offset, hi, lo, start, stop + 1);
  }

  /** Index of the id at ids[offset..] (prefix words hi, lo) among the run's ids [start, end), or −1. */
  private binarySearch(ids: Uint8Array, offset: number, hi: number, lo: number, start: number, end: number): number {
    const keys = this.keys;
    while (start < end) {
      const mid = (start + end) >>> 1;
      const order = compareKey(keys, ID_BYTES * mid, ids, offset, hi, lo);
      if (order === 0) return mid;
      if (order < 0) start = mid + 1;
      else end = mid;
    }
    return -1;
  }

  /**
   * Checks everything the header cannot: the checksum (if the image has one), that the ids
   * strictly increase, that every fence is its block's first id, and that the filter admits every
   * id. Throws SharedMemoryError naming the first problem. Reads the whole image: O(n).
   */
  verify(): void {
    if (this.checksummed && !equalBytes(checksumOf(this.bytes), this.bytes.subarray(H_CHECKSUM, H_CHECKSUM + CHECKSUM_BYTES))) {
      throw new SharedMemoryError('sorted run: checksum mismatch');
    }
    const keys = this.keys;
    for (let i = 1; i < this.count; i++) {
      if (compareIds(keys, ID_BYTES * (i - 1), keys, ID_BYTES * i) >= 0) throw new SharedMemoryError(`sorted run: id ${i} is not above id ${i - 1}`);
    }
    for (let j = 0; j < this.fenceCount; j++) {
      const p = ID_BYTES * RUN_FENCE_IDS * j;
      if (this.fences[2 * j] !== beWord(keys, p) || this.fences[2 * j + 1] !== beWord(keys, p + 4)) {
        throw new SharedMemoryError(`sorted run: fence ${j} is not the prefix of id ${RUN_FENCE_IDS * j}`);
      }
    }
    for (let i = 0; i < this.count; i++) {
      if (!this.filter.mayContain(keys, ID_BYTES * i)) throw new SharedMemoryError(`sorted run: the filter refuses id ${i}`);
    }
  }
}

/** `SortedRun.attach(image).verify()`: the run if the image is whole and consistent, else SharedMemoryError. */
export function verifySortedRun(image: Uint8Array | ArrayBuffer | SharedArrayBuffer): SortedRun {
  const run = SortedRun.attach(image);
  run.verify();
  return run;
}

/**
 * Throws SharedMemoryError unless `bytes` starts with a run image this version reads, whole:
 * magic, version, fence geometry, regions in order and within the image, the image's length,
 * the filter's own header. Lookups then read only inside the image.
 */
function checkRunImage(bytes: Uint8Array): void {
  if (bytes.length < RUN_HEADER_BYTES) throw new SharedMemoryError(`a sorted run image has at least ${RUN_HEADER_BYTES} bytes, got ${bytes.length}`);
  if (readU32(bytes, H_MAGIC) !== MAGIC || readU32(bytes, H_VERSION) !== VERSION) {
    throw new SharedMemoryError(`bytes do not hold a sorted run of version ${VERSION}`);
  }
  const count = readU32(bytes, H_COUNT);
  const fences = readU32(bytes, H_FENCES);
  const filterOffset = readU32(bytes, H_FILTER_OFFSET);
  const filterBytes = readU32(bytes, H_FILTER_BYTES);
  const keysOffset = readU32(bytes, H_KEYS_OFFSET);
  const flags = readU32(bytes, H_FLAGS);
  const imageLength = readU32(bytes, H_IMAGE_BYTES) + 2 ** 32 * readU32(bytes, H_IMAGE_BYTES + 4);
  if (readU32(bytes, H_FENCE_IDS) !== RUN_FENCE_IDS || fences !== Math.ceil(count / RUN_FENCE_IDS) || readU32(bytes, H_FENCES_OFFSET) !== RUN_HEADER_BYTES) {
    throw new SharedMemoryError(`sorted run: ${fences} fences do not index ${count} ids in blocks of ${RUN_FENCE_IDS}`);
  }
  if ((flags & ~FLAG_CHECKSUM) !== 0) throw new SharedMemoryError(`sorted run: unknown flags ${flags}`);
  if (
    filterOffset % LINE !== 0 ||
    filterOffset < RUN_HEADER_BYTES + 8 * fences ||
    keysOffset % PAGE !== 0 ||
    keysOffset < filterOffset + filterBytes ||
    imageLength !== keysOffset + ID_BYTES * count
  ) {
    throw new SharedMemoryError('sorted run: regions out of order or the image length does not match them');
  }
  for (const [from, to] of [
    [48, H_CHECKSUM],
    [H_CHECKSUM + CHECKSUM_BYTES, RUN_HEADER_BYTES],
  ] as const) {
    for (let i = from; i < to; i++) if (bytes[i] !== 0) throw new SharedMemoryError('sorted run: reserved header bytes are not zero');
  }
  if (bytes.length < imageLength) throw new SharedMemoryError(`sorted run image truncated: ${bytes.length} bytes, its header says ${imageLength}`);
  const filter = bytes.subarray(filterOffset, filterOffset + filterBytes);
  checkIdFilterImage(filter);
  if (idFilterImageLength(filter) !== filterBytes) throw new SharedMemoryError("sorted run: the filter region's length is not its image's");
}

/** The output buffer and layout for a run of up to `capacity` ids. */
function prepare(capacity: number, options: SortedRunOptions): { out: Uint8Array; layout: RunLayout } {
  const { into } = (options ?? {}) as SortedRunOptions;
  const layout = checkedLayout(capacity);
  if (into === undefined) {
    // Written whole right away: one madvise beats a page fault per 4 KiB (see id-filter's Scratch).
    const buffer = new SharedArrayBuffer(layout.byteLength);
    prefault(buffer);
    return { out: new Uint8Array(buffer), layout };
  }
  if (!(into instanceof Uint8Array) || into.length < layout.byteLength || into.byteOffset % LINE !== 0) {
    throw new InvalidArgumentError(`a run of up to ${capacity} ids needs a Uint8Array of at least ${layout.byteLength} bytes at a multiple of ${LINE} bytes of its buffer, got ${describeValue(into)}`);
  }
  // A reused buffer may hold anything: the regions' padding must read as zeros.
  into.fill(0, 0, layout.keysOffset);
  return { out: into, layout };
}

/** Ids sorted in memcmp order (a run's keys, or ids sorted by `sortedIds`), as the merge reads them. */
interface SortedIds {
  readonly count: number;
  readonly keys: Uint8Array;
  readonly keyWords: Int32Array | undefined;
}

/**
 * Every id of `blocks` (32-byte ids end to end), sorted in memcmp order with repeats kept once,
 * as a new array: blocks flagged in `sorted` are taken as they are, the others are sorted
 * first. The canonical order of a set of ids (history digests, checkpoints), without building a
 * run's fences or filter.
 */
export function sortedIds(blocks: readonly Uint8Array[], sorted: readonly boolean[]): Uint8Array {
  const sources: SortedIds[] = [];
  let total = 0;
  blocks.forEach((block, i) => {
    const n = block.length / ID_BYTES;
    total += n;
    let keys = block;
    let count = n;
    if (!sorted[i]) {
      keys = new Uint8Array(block.length);
      count = sortInto(block.byteOffset % 4 === 0 ? block : new Uint8Array(block), n, keys);
      keys = keys.subarray(0, ID_BYTES * count);
    }
    const keyWords = keys.byteOffset % 4 === 0 ? new Int32Array(keys.buffer, keys.byteOffset, 8 * count) : undefined;
    sources.push({ count, keys, keyWords });
  });
  const out = new Uint8Array(ID_BYTES * total);
  return out.subarray(0, ID_BYTES * mergeInto(sources, out));
}

/** Writes fences, filter, header and checksum around `count` ids already at the layout's ids offset. */
function finish(out: Uint8Array, layout: RunLayout, count: number, capacity: number, options: SortedRunOptions): SortedRun {
  const { checksum = true, seed } = (options ?? {}) as SortedRunOptions;
  const { keysOffset, filterOffset } = layout;
  const keys = out.subarray(keysOffset, keysOffset + ID_BYTES * count);
  const fences = Math.ceil(count / RUN_FENCE_IDS);
  for (let j = 0; j < fences; j++) {
    const p = ID_BYTES * RUN_FENCE_IDS * j;
    writeU32(out, RUN_HEADER_BYTES + 8 * j, beWord(keys, p));
    writeU32(out, RUN_HEADER_BYTES + 8 * j + 4, beWord(keys, p + 4));
  }
  const filter = IdFilter.build(keys, { capacity, into: out.subarray(filterOffset, filterOffset + layout.filterBytes), ...(seed === undefined ? {} : { seed }) });
  const imageLength = keysOffset + ID_BYTES * count;
  writeU32(out, H_MAGIC, MAGIC);
  writeU32(out, H_VERSION, VERSION);
  writeU32(out, H_COUNT, count);
  writeU32(out, H_FENCE_IDS, RUN_FENCE_IDS);
  writeU32(out, H_FENCES, fences);
  writeU32(out, H_FENCES_OFFSET, RUN_HEADER_BYTES);
  writeU32(out, H_FILTER_OFFSET, filterOffset);
  writeU32(out, H_FILTER_BYTES, filter.byteLength);
  writeU32(out, H_KEYS_OFFSET, keysOffset);
  writeU32(out, H_FLAGS, checksum === false ? 0 : FLAG_CHECKSUM);
  writeU32(out, H_IMAGE_BYTES, imageLength % 2 ** 32);
  writeU32(out, H_IMAGE_BYTES + 4, Math.floor(imageLength / 2 ** 32));
  const image = out.subarray(0, imageLength);
  if (checksum !== false) image.set(checksumOf(image), H_CHECKSUM);
  return new SortedRun(VALIDATED, image);
}

/**
 * The checksum of an image (its checksum field excluded). Two levels because blake3-jit's
 * one-shot `hash` runs in WASM SIMD (~0.8 GB/s here) and its incremental Hasher at ~0.3 GB/s:
 * the body is hashed in one call, then the header with that hash.
 */
function checksumOf(image: Uint8Array): Uint8Array {
  const body = hash(image.subarray(H_CHECKSUM + CHECKSUM_BYTES));
  const outer = new Uint8Array(CHECKSUM_DOMAIN.length + H_CHECKSUM + CHECKSUM_BYTES);
  outer.set(CHECKSUM_DOMAIN, 0);
  outer.set(image.subarray(0, H_CHECKSUM), CHECKSUM_DOMAIN.length);
  outer.set(body, CHECKSUM_DOMAIN.length + H_CHECKSUM);
  return hash(outer);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Sorts the `n` ids of `src` (4-byte aligned) into `keys` (4-byte aligned), dropping repeats;
 * returns how many remain. Deal: one pass counts ids per bucket of leading bits, one copies each
 * id to its bucket's place in `keys`. Then per bucket, in cache: pack each id's prefix with its
 * place in the bucket into a u64 (high word: bytes 0..4 big-endian; low word: bytes 4..8
 * big-endian with the low bits replaced by the place), sort natively, fix the order of ids whose
 * packed prefixes tie by a full compare, and copy the bucket back in order, skipping repeats.
 * Skipped repeats only move the write position back, never past the bucket being read (which
 * is copied aside first), so later buckets are never overwritten.
 */
function sortInto(src: Uint8Array, n: number, keys: Uint8Array): number {
  if (n === 0) return 0;
  const from = new Int32Array(src.buffer, src.byteOffset, 8 * n);
  const to = new Int32Array(keys.buffer, keys.byteOffset, 8 * n);
  let bits = 0;
  while (bits < MAX_BUCKET_BITS && n >>> bits > IDS_PER_BUCKET) bits++;
  const shift = 32 - bits;
  const starts = new Uint32Array((1 << bits) + 1);
  // The leading bits are the first byte's (and the second's): id word 0 is little-endian, so
  // byte 0 is its low byte. `lead` reads them as a big-endian number.
  const lead = (w: number): number => (bits === 0 ? 0 : (((w & 0xff) << 24) | ((w & 0xff00) << 8)) >>> shift);
  for (let i = 0; i < n; i++) {
    const b = lead(from[8 * i]!) + 1;
    starts[b] = starts[b]! + 1;
  }
  let largest = 0;
  for (let b = 1; b < starts.length; b++) {
    largest = Math.max(largest, starts[b]!);
    starts[b] = starts[b]! + starts[b - 1]!;
  }
  const next = starts.slice(0, starts.length - 1);
  for (let i = 0, p = 0; i < n; i++, p += 8) {
    const b = lead(from[p]!);
    const q = 8 * next[b]!;
    next[b] = next[b]! + 1;
    to[q] = from[p]!;
    to[q + 1] = from[p + 1]!;
    to[q + 2] = from[p + 2]!;
    to[q + 3] = from[p + 3]!;
    to[q + 4] = from[p + 4]!;
    to[q + 5] = from[p + 5]!;
    to[q + 6] = from[p + 6]!;
    to[q + 7] = from[p + 7]!;
  }
  // Scratch for one bucket: the packed prefixes and a copy of its ids.
  const packed = new BigUint64Array(largest);
  const packedWords = new Uint32Array(packed.buffer);
  const copy = new Int32Array(8 * largest);
  const copyBytes = new Uint8Array(copy.buffer);
  const order = new Uint32Array(largest);
  let written = 0;
  for (let b = 0; b + 1 < starts.length; b++) {
    const start = starts[b]!;
    const size = starts[b + 1]! - start;
    if (size === 0) continue;
    copy.set(to.subarray(8 * start, 8 * (start + size)));
    let placeBits = 0;
    while (2 ** placeBits < size) placeBits++;
    const placeMask = 2 ** placeBits - 1;
    for (let i = 0; i < size; i++) {
      // Little-endian words: 2i is the u64's low half.
      packedWords[2 * i] = ((beWord(copyBytes, 32 * i + 4) & ~placeMask) | i) >>> 0;
      packedWords[2 * i + 1] = beWord(copyBytes, 32 * i);
    }
    packed.subarray(0, size).sort();
    for (let i = 0; i < size; i++) order[i] = packedWords[2 * i]! & placeMask;
    // Ids whose packed prefixes tie are in place order, not id order: sort each such stretch.
    for (let i = 0; i + 1 < size; ) {
      let j = i + 1;
      while (j < size && packedWords[2 * j + 1] === packedWords[2 * i + 1] && (packedWords[2 * j]! & ~placeMask) === (packedWords[2 * i]! & ~placeMask)) j++;
      if (j - i > 1) insertionSort(order, i, j, copyBytes);
      i = j;
    }
    for (let i = 0; i < size; i++) {
      const s = 8 * order[i]!;
      // A repeat sits next to its twin after the sort, and twins tie in their packed prefix.
      if (i > 0 && compareIds(copyBytes, 4 * s, copyBytes, 32 * order[i - 1]!) === 0) continue;
      const q = 8 * written++;
      to[q] = copy[s]!;
      to[q + 1] = copy[s + 1]!;
      to[q + 2] = copy[s + 2]!;
      to[q + 3] = copy[s + 3]!;
      to[q + 4] = copy[s + 4]!;
      to[q + 5] = copy[s + 5]!;
      to[q + 6] = copy[s + 6]!;
      to[q + 7] = copy[s + 7]!;
    }
  }
  return written;
}

/** Sorts order[from..to) by the ids they point at in `ids` (full 32-byte compare). Stretches are tiny. */
function insertionSort(order: Uint32Array, from: number, to: number, ids: Uint8Array): void {
  for (let i = from + 1; i < to; i++) {
    const v = order[i]!;
    let j = i - 1;
    while (j >= from && compareIds(ids, 32 * order[j]!, ids, 32 * v) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = v;
  }
}

/**
 * Merges the runs' ids into `keys` in memcmp order, keeping one of equal ids; returns how many.
 * A binary heap of the runs that still have ids, keyed by each one's next id: its 8-byte prefix
 * as two numbers, the full id on a tie.
 */
function mergeInto(runs: readonly SortedIds[], keys: Uint8Array): number {
  const live = runs.filter((r) => r.count > 0);
  const sources = live.map((r) => r.keys);
  // Ids are copied as eight u32 words (a byte loop is ~7× slower); a run attached at an odd
  // offset of its buffer has no word view, and its ids are copied byte by byte.
  const sourceWords = live.map((r) => r.keyWords);
  const out = new Int32Array(keys.buffer, keys.byteOffset, keys.length / 4);
  const k = sources.length;
  const position = new Float64Array(k);
  const end = new Float64Array(k);
  const hi = new Float64Array(k);
  const lo = new Float64Array(k);
  const heap = new Int32Array(k);
  const load = (r: number): void => {
    const src = sources[r]!;
    const p = position[r]!;
    hi[r] = beWord(src, p);
    lo[r] = beWord(src, p + 4);
  };
  const less = (r: number, s: number): boolean =>
    hi[r]! < hi[s]! || (hi[r] === hi[s] && (lo[r]! < lo[s]! || (lo[r] === lo[s] && compareIds(sources[r]!, position[r]!, sources[s]!, position[s]!) < 0)));
  const siftDown = (size: number): void => {
    let i = 0;
    const top = heap[0]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap[c + 1]!, heap[c]!)) c++;
      if (!less(heap[c]!, top)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = top;
  };
  let size = 0;
  for (let r = 0; r < k; r++) {
    end[r] = sources[r]!.length;
    load(r);
    // Sift up.
    let i = size++;
    while (i > 0 && less(r, heap[(i - 1) >>> 1]!)) {
      heap[i] = heap[(i - 1) >>> 1]!;
      i = (i - 1) >>> 1;
    }
    heap[i] = r;
  }
  let written = 0;
  let lastHi = -1;
  let lastLo = -1;
  while (size > 0) {
    const r = heap[0]!;
    const src = sources[r]!;
    const p = position[r]!;
    // Equal ids have equal prefixes: the full compare runs only when the prefix repeats.
    const repeat = hi[r] === lastHi && lo[r] === lastLo && compareIds(src, p, keys, ID_BYTES * (written - 1)) === 0;
    if (!repeat) {
      const words = sourceWords[r];
      if (words !== undefined) {
        const w = p / 4;
        const q = 8 * written;
        out[q] = words[w]!;
        out[q + 1] = words[w + 1]!;
        out[q + 2] = words[w + 2]!;
        out[q + 3] = words[w + 3]!;
        out[q + 4] = words[w + 4]!;
        out[q + 5] = words[w + 5]!;
        out[q + 6] = words[w + 6]!;
        out[q + 7] = words[w + 7]!;
      } else {
        keys.set(src.subarray(p, p + ID_BYTES), ID_BYTES * written);
      }
      written++;
      lastHi = hi[r]!;
      lastLo = lo[r]!;
    }
    position[r] = p + ID_BYTES;
    if (position[r]! < end[r]!) load(r);
    else heap[0] = heap[--size]!;
    if (size > 0) siftDown(size);
  }
  return written;
}
