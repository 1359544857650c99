/**
 * ExactCausalIndex: the exact set of admitted fact ids, in one SharedArrayBuffer.
 *
 * Split layout (docs/ARCHITECTURE.md §3): a dense 1-byte tag array and a 4-byte slot array form
 * an open-addressed table with linear probing; the 32-byte ids live in an append-only key store,
 * numbered in insertion order ("key numbers"). A new id is proven absent by reading tags only:
 * at 2^20 ids the tags are 1.4 MiB, where a dependent random read costs ~13 ns on these machines,
 * against ~100 ns in the 6 MiB slot array. A hit costs one tag byte, one slot word and one
 * 32-byte compare. Nothing is ever evicted: the index has an explicit capacity (the causal
 * horizon), and an insert beyond it fails loudly.
 *
 * Memory: the table has capacity / 0.7 slots (rounded up to a whole cache line of tags), so its
 * load never exceeds 0.7 and a miss reads ~6 tags at worst; the home slot is the hash scaled to
 * the table size, so the size need not be a power of two. At the default capacity (2^20 ids)
 * that is 1,498,048 slots: 5 × 1,498,048 + 32 × 2^20 bytes ≈ 39.1 bytes per tracked id. The
 * buffer is allocated once for the full capacity; the OS commits its pages only as touched.
 *
 * Threads: one writer at a time. Inserts use plain stores (an `Atomics.store` costs ~13 ns here,
 * more than the rest of an insert); `publish()` makes everything inserted so far visible to other
 * threads that call `sync()`, and a lock (the worker pool's) gives the same guarantee.
 */
import { CausalHorizonExceededError, InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { IdHasher } from './id-hash.js';

/** "CTXI" little-endian: marks a buffer as an exact index. */
const MAGIC = 0x49585443;
const LAYOUT_VERSION = 1;
/**
 * Header: words magic, version, capacity, table slots, seed; the published count at byte 128
 * (128 bytes from the writer's words, so polling readers never share its line); the pending
 * slot writes from byte 192 (count, then 32 table slots, then their 32 key numbers).
 */
const H_MAGIC = 0;
const H_VERSION = 1;
const H_CAPACITY = 2;
const H_TABLE_SLOTS = 3;
const H_SEED = 4;
/** The published count sits 128 bytes from the writer's count so readers polling it never share its line. */
const H_PUBLISHED = 32;
const H_PENDING_COUNT = 48;
const H_PENDING_SLOTS = 64;
const H_PENDING_KEYS = 96;
const HEADER_BYTES = 512;
/**
 * Slot writes are buffered and written 32 at a time. A slot word is a random store into an array
 * of 4 bytes per table slot (6 MiB at the default capacity); x86 commits stores in order, so one
 * store that misses cache stalls every store behind it. Written in a burst, the misses overlap:
 * admission at the default capacity measured ~30-40% faster. Lookups consult the pending entries
 * (on a tag match only), so buffering never hides an id.
 */
export const PENDING_SLOT_WRITES = 32;
/** Regions start on 64-byte (cache line) boundaries. */
const LINE = 64;
/** Maximum table load factor: unsuccessful linear probes average (1 + 1/(1 − 0.7)²) / 2 ≈ 6 tags. */
const MAX_LOAD = 0.7;

/** Default capacity: 2^20 = 1,048,576 ids (39.1 MiB of address space, committed as used). */
export const DEFAULT_INDEX_CAPACITY = 1 << 20;
/** Largest capacity: 2^27 ids (the key store must stay within one typed array, 4 GiB). */
export const MAX_INDEX_CAPACITY = 1 << 27;
/** Smallest table: one cache line of tags. */
const MIN_TABLE_SLOTS = LINE;

export interface ExactIndexOptions {
  /** Maximum number of ids tracked (default 2^20). Inserting beyond it throws CausalHorizonExceeded. */
  readonly capacity?: number;
  /** Seed of the index hash (default: random). Fixing it makes probe layouts reproducible. */
  readonly seed?: number;
}

interface Layout {
  tableSlots: number;
  tagsOffset: number;
  slotsOffset: number;
  keysOffset: number;
  byteLength: number;
}

const alignLine = (n: number): number => Math.ceil(n / LINE) * LINE;

function layoutFor(capacity: number): Layout {
  const tableSlots = Math.max(MIN_TABLE_SLOTS, alignLine(Math.ceil(capacity / MAX_LOAD)));
  const tagsOffset = HEADER_BYTES;
  const slotsOffset = alignLine(tagsOffset + tableSlots);
  const keysOffset = alignLine(slotsOffset + 4 * tableSlots);
  return { tableSlots, tagsOffset, slotsOffset, keysOffset, byteLength: keysOffset + 32 * capacity };
}

let attaching: { buffer: SharedArrayBuffer; layout: Layout } | undefined;

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

export class ExactCausalIndex {
  readonly buffer: SharedArrayBuffer;
  /** Maximum number of ids this index can hold. */
  readonly capacity: number;
  /** Number of table slots (a multiple of 64). */
  readonly tableSlots: number;

  private readonly header: Uint32Array;
  private readonly tags: Uint8Array;
  private readonly slots: Uint32Array;
  /** Table slots and key numbers of inserts whose slot word is not written yet (shared memory). */
  private readonly pendingSlots: Uint32Array;
  private readonly pendingKeys: Uint32Array;
  private readonly keys: Uint32Array;
  /** tableSlots / 2^32: maps a u32 hash onto [0, tableSlots). */
  private readonly scale: number;
  /** @internal Hashes and words of the id being looked up (shared with the kernel hot path). */
  readonly hasher: IdHasher;
  /** Local copy of the count; the header word is the shared truth. */
  private count: number;

  constructor(options: ExactIndexOptions = {}) {
    // `attach` hands its validated buffer over through `attaching`, so attached and owned indexes
    // are built by the same constructor and share one object shape (the hot path stays monomorphic).
    const attached = attaching;
    attaching = undefined;
    let buffer: SharedArrayBuffer;
    let layout: Layout;
    if (attached !== undefined) {
      ({ buffer, layout } = attached);
    } else {
      const capacity = options.capacity ?? DEFAULT_INDEX_CAPACITY;
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_INDEX_CAPACITY) {
        throw new InvalidArgumentError(`index capacity must be an integer in [1, ${MAX_INDEX_CAPACITY}], got ${capacity}`);
      }
      const seed = options.seed ?? randomSeed();
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        throw new InvalidArgumentError('index seed must be a u32');
      }
      layout = layoutFor(capacity);
      buffer = new SharedArrayBuffer(layout.byteLength);
      const header = new Uint32Array(buffer, 0, HEADER_BYTES / 4);
      header[H_MAGIC] = MAGIC;
      header[H_VERSION] = LAYOUT_VERSION;
      header[H_CAPACITY] = capacity;
      header[H_TABLE_SLOTS] = layout.tableSlots;
      header[H_SEED] = seed;
    }
    const header = new Uint32Array(buffer, 0, HEADER_BYTES / 4);
    this.buffer = buffer;
    this.capacity = header[H_CAPACITY]!;
    this.tableSlots = layout.tableSlots;
    this.header = header;
    this.pendingSlots = new Uint32Array(buffer, 4 * H_PENDING_SLOTS, PENDING_SLOT_WRITES);
    this.pendingKeys = new Uint32Array(buffer, 4 * H_PENDING_KEYS, PENDING_SLOT_WRITES);
    this.tags = new Uint8Array(buffer, layout.tagsOffset, layout.tableSlots);
    this.slots = new Uint32Array(buffer, layout.slotsOffset, layout.tableSlots);
    this.keys = new Uint32Array(buffer, layout.keysOffset, 8 * this.capacity);
    this.scale = layout.tableSlots / 2 ** 32;
    this.hasher = new IdHasher(header[H_SEED]!);
    this.count = Atomics.load(header, H_PUBLISHED);
  }

  /**
   * An index over memory created by another `ExactCausalIndex` (typically in another thread).
   * Call `sync()` to see what the writer has published since.
   */
  static attach(buffer: SharedArrayBuffer): ExactCausalIndex {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new SharedMemoryError('an exact index needs a SharedArrayBuffer holding its header');
    }
    const header = new Uint32Array(buffer, 0, HEADER_BYTES / 4);
    if (header[H_MAGIC] !== MAGIC || header[H_VERSION] !== LAYOUT_VERSION) {
      throw new SharedMemoryError('buffer does not hold an exact index of layout version 1');
    }
    const capacity = header[H_CAPACITY]!;
    const layout = capacity >= 1 && capacity <= MAX_INDEX_CAPACITY ? layoutFor(capacity) : undefined;
    if (layout === undefined || layout.tableSlots !== header[H_TABLE_SLOTS] || layout.byteLength !== buffer.byteLength) {
      throw new SharedMemoryError('exact index header does not match the buffer size');
    }
    attaching = { buffer, layout };
    return new ExactCausalIndex();
  }

  /** Number of ids held. */
  get size(): number {
    return this.count;
  }

  /** size / capacity. */
  get fill(): number {
    return this.count / this.capacity;
  }

  /** Total bytes of the shared buffer. */
  get byteLength(): number {
    return this.buffer.byteLength;
  }

  /** Bytes of shared memory per id at full capacity. */
  get bytesPerId(): number {
    return this.buffer.byteLength / this.capacity;
  }

  contains(id: Uint8Array): boolean {
    this.hasher.load(checkId(id));
    return this.findLoaded() >= 0;
  }

  /** True if every id in `ids` is present. */
  containsAll(ids: readonly Uint8Array[]): boolean {
    for (const id of ids) if (!this.contains(id)) return false;
    return true;
  }

  /** Key number (insertion order, from 0) of `id`, or -1 if absent. */
  keyNumberOf(id: Uint8Array): number {
    this.hasher.load(checkId(id));
    return this.findLoaded();
  }

  /**
   * Adds `id`; returns false if it was already present. Throws `CausalHorizonExceededError`
   * when the index is full (nothing is changed).
   */
  insert(id: Uint8Array): boolean {
    this.hasher.load(checkId(id));
    const found = this.probeLoaded();
    if (found >= 0) return false;
    if (this.count >= this.capacity) {
      throw new CausalHorizonExceededError(`exact index is full (capacity ${this.capacity} ids)`);
    }
    this.insertLoaded(~found);
    return true;
  }

  /** The id with key number `keyNumber`, as a new array. */
  idAt(keyNumber: number): Uint8Array {
    if (!Number.isInteger(keyNumber) || keyNumber < 0 || keyNumber >= this.count) {
      throw new InvalidArgumentError(`key number ${keyNumber} is not in [0, ${this.count})`);
    }
    const out = new Uint8Array(32);
    new Uint32Array(out.buffer).set(this.keys.subarray(8 * keyNumber, 8 * keyNumber + 8));
    return out;
  }

  /** Every id in insertion order. */
  *ids(): IterableIterator<Uint8Array> {
    for (let k = 0; k < this.count; k++) yield this.idAt(k);
  }

  /** Forgets every id (the memory stays allocated). */
  clear(): void {
    this.header[H_PENDING_COUNT] = 0;
    this.tags.fill(0);
    this.count = 0;
    Atomics.store(this.header, H_PUBLISHED, 0);
  }

  /** Makes every insert so far visible to threads that call `sync()`. Returns the size. */
  publish(): number {
    this.flushPending();
    Atomics.store(this.header, H_PUBLISHED, this.count);
    return this.count;
  }

  /** Sees every insert the writer has published. Returns the size. */
  sync(): number {
    this.count = Atomics.load(this.header, H_PUBLISHED);
    return this.count;
  }

  /**
   * @internal Makes exactly the first `count` ids visible to this thread (a kernel snapshot's
   * size, at most what the writer has inserted).
   */
  showUpTo(count: number): void {
    this.count = Math.min(count, this.capacity);
  }

  /**
   * @internal Looks up the id loaded into `hasher`: its key number, or -1.
   */
  findLoaded(): number {
    const found = this.probeLoaded();
    return found >= 0 ? found : -1;
  }

  /**
   * @internal Probes for the id loaded into `hasher`. Returns its key number if present, else
   * the bitwise complement of the empty slot where it would be inserted (always negative).
   */
  probeLoaded(): number {
    const tags = this.tags;
    const end = this.tableSlots;
    const tag = tagOf(this.hasher.bloomHash);
    // (h / 2^32) × slots < slots for every u32 h: the product is below slots − slots/2^32.
    let i = Math.floor((this.hasher.indexHash >>> 0) * this.scale);
    for (;;) {
      const t = tags[i]!;
      if (t === 0) return ~i;
      if (t === tag) {
        let k = this.slots[i]!;
        const pending = this.header[H_PENDING_COUNT]!;
        for (let j = 0; j < pending; j++) if (this.pendingSlots[j] === i) k = this.pendingKeys[j]!;
        // k ≥ count only on an attached reader, for an insert not yet published: not visible.
        if (k < this.count && this.keyEqualsLoaded(k)) return k;
      }
      if (++i === end) i = 0;
    }
  }

  /** @internal True if key number `k` holds the id loaded into `hasher`. */
  keyEqualsLoaded(k: number): boolean {
    const keys = this.keys;
    const w = this.hasher.words;
    const p = 8 * k;
    return (
      keys[p] === w[0] &&
      keys[p + 1] === w[1] &&
      keys[p + 2] === w[2] &&
      keys[p + 3] === w[3] &&
      keys[p + 4] === w[4] &&
      keys[p + 5] === w[5] &&
      keys[p + 6] === w[6] &&
      keys[p + 7] === w[7]
    );
  }

  /** @internal Writes the buffered slot words in one burst (see PENDING_SLOT_WRITES). */
  flushPending(): void {
    const n = this.header[H_PENDING_COUNT]!;
    const slots = this.slots;
    for (let j = 0; j < n; j++) slots[this.pendingSlots[j]!] = this.pendingKeys[j]!;
    this.header[H_PENDING_COUNT] = 0;
  }

  /** @internal True if key number `k` holds `id` (compared word by word, first mismatch exits). */
  keyEquals(k: number, id: Uint8Array): boolean {
    const keys = this.keys;
    const p = 8 * k;
    return (
      keys[p] === ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) &&
      keys[p + 1] === ((id[4]! | (id[5]! << 8) | (id[6]! << 16) | (id[7]! << 24)) >>> 0) &&
      keys[p + 2] === ((id[8]! | (id[9]! << 8) | (id[10]! << 16) | (id[11]! << 24)) >>> 0) &&
      keys[p + 3] === ((id[12]! | (id[13]! << 8) | (id[14]! << 16) | (id[15]! << 24)) >>> 0) &&
      keys[p + 4] === ((id[16]! | (id[17]! << 8) | (id[18]! << 16) | (id[19]! << 24)) >>> 0) &&
      keys[p + 5] === ((id[20]! | (id[21]! << 8) | (id[22]! << 16) | (id[23]! << 24)) >>> 0) &&
      keys[p + 6] === ((id[24]! | (id[25]! << 8) | (id[26]! << 16) | (id[27]! << 24)) >>> 0) &&
      keys[p + 7] === ((id[28]! | (id[29]! << 8) | (id[30]! << 16) | (id[31]! << 24)) >>> 0)
    );
  }

  /**
   * @internal Stores the id loaded into `hasher` at empty table slot `slot` (from
   * `probeLoaded`). The caller has checked capacity. Returns the new key number.
   */
  insertLoaded(slot: number): number {
    const k = this.count;
    const w = this.hasher.words;
    const keys = this.keys;
    const p = 8 * k;
    keys[p] = w[0]!;
    keys[p + 1] = w[1]!;
    keys[p + 2] = w[2]!;
    keys[p + 3] = w[3]!;
    keys[p + 4] = w[4]!;
    keys[p + 5] = w[5]!;
    keys[p + 6] = w[6]!;
    keys[p + 7] = w[7]!;
    this.tags[slot] = tagOf(this.hasher.bloomHash);
    const pending = this.header[H_PENDING_COUNT]!;
    this.pendingSlots[pending] = slot;
    this.pendingKeys[pending] = k;
    this.header[H_PENDING_COUNT] = pending + 1;
    if (pending + 1 === PENDING_SLOT_WRITES) this.flushPending();
    this.count = k + 1;
    return k;
  }
}

/** The tag of a slot: the Bloom hash's top byte, with 0 (which marks an empty slot) mapped to 1. */
function tagOf(bloomHash: number): number {
  const t = bloomHash >>> 24;
  return t | ((t - 1) >>> 31);
}

function checkId(id: Uint8Array): Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError('a fact id is a 32-byte Uint8Array');
  return id;
}
