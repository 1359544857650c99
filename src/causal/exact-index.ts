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
 * load never exceeds 0.7 and a miss reads ~6 tags on average at full load; the home slot is the
 * hash scaled to the table size, so the size need not be a power of two. At the default capacity
 * (2^20 ids) that is 1,497,984 slots: 5 × 1,497,984 + 32 × 2^20 bytes ≈ 39.1 bytes per tracked id.
 * The buffer is allocated once for the full capacity; the OS commits its pages only as touched.
 *
 * Threads: one writer at a time. Inserts use plain stores (an `Atomics.store` costs ~13 ns here,
 * more than the rest of an insert). The live count sits in the shared header, so whichever
 * instance admits next continues from the true count; `publish()` makes everything inserted so
 * far visible to threads that call `sync()`, and a lock (the worker pool's) does the same.
 */
import { CausalHorizonExceededError, InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { IdHasher } from './id-hash.js';
import { checkSharedHeader } from '../core/shared-header.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';

/** "CTXI" little-endian: marks a buffer as an exact index. */
const MAGIC = 0x49585443;
const LAYOUT_VERSION = 2;
/**
 * Header, in u32 words. Line 0: identity and parameters, and the live count (written on every
 * insert). Line 2 (byte 128): the published count, polled by readers, 128 bytes from the writer's
 * words. Line 4 (byte 256): the pending slot writes' count and mask, then their table slots (byte
 * 320) and key numbers (byte 448). Tags start at byte 576.
 */
const H_MAGIC = 0;
const H_VERSION = 1;
const H_CAPACITY = 2;
const H_TABLE_SLOTS = 3;
const H_SEED = 4;
/** Random id shared by an index and the kernel control block it belongs to; `attach` compares them. */
const H_DOMAIN_ID = 5;
const H_COUNT = 6;
const H_PUBLISHED = 32;
const H_PENDING_COUNT = 64;
/** Bit (slot mod 32) is set while some pending write targets such a slot: most tag matches skip the scan. */
const H_PENDING_MASK = 65;
const H_PENDING_SLOTS = 80;
const H_PENDING_KEYS = 112;
const HEADER_BYTES = 576;
/**
 * Slot writes are buffered and written 32 at a time. A slot word is a random store into an array
 * of 4 bytes per table slot (6 MiB at the default capacity); x86 commits stores in order, so one
 * store that misses cache stalls every store behind it. Written in a burst, the misses overlap:
 * admission at the default capacity measured ~30% faster. Lookups consult the pending entries
 * on a tag match, so buffering never hides an id; the buffer is in shared memory, so a change of
 * writer loses nothing.
 */
const PENDING_SLOT_WRITES = 32;
/** Regions start on 64-byte (cache line) boundaries. */
const LINE = 64;
/** Maximum table load factor 0.7 (as 10/7 below): unsuccessful linear probes average (1 + 1/(1 − 0.7)²) / 2 ≈ 6 tags. */

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

/**
 * The read-only face of an exact index, as kernels expose theirs (a TieredExactIndex): admit
 * through the kernel.
 */
export interface ReadonlyExactIndex {
  /** The most ids it takes (Infinity: no limit). */
  readonly capacity: number;
  readonly size: number;
  /** Bytes of memory it holds. */
  readonly byteLength: number;
  contains(id: Uint8Array): boolean;
  containsAll(ids: readonly Uint8Array[]): boolean;
  /** Every id (a copy each); the order is the index's own. */
  ids(): IterableIterator<Uint8Array>;
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
  // ⌈capacity / 0.7⌉ in integers: capacity / 0.7 in floating point rounds up one slot too many
  // for some capacities (672 / 0.7 = 960.0000000000001).
  const tableSlots = Math.max(MIN_TABLE_SLOTS, alignLine(Math.ceil((capacity * 10) / 7)));
  const tagsOffset = HEADER_BYTES;
  const slotsOffset = alignLine(tagsOffset + tableSlots);
  const keysOffset = alignLine(slotsOffset + 4 * tableSlots);
  return { tableSlots, tagsOffset, slotsOffset, keysOffset, byteLength: keysOffset + 32 * capacity };
}

/** @internal Throws InvalidArgumentError unless `options` are valid index options. */
export function checkIndexOptions(options: ExactIndexOptions): { capacity: number; seed: number | undefined } {
  const { capacity = DEFAULT_INDEX_CAPACITY, seed } = optionsObject(options);
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_INDEX_CAPACITY) {
    throw new InvalidArgumentError(`index capacity must be an integer in [1, ${MAX_INDEX_CAPACITY}], got ${describeValue(capacity)}`);
  }
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) {
    throw new InvalidArgumentError(`index seed must be a u32, got ${describeValue(seed)}`);
  }
  return { capacity, seed };
}

/** A random u32 (never 0), used for seeds and domain ids. */
function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! || 1;
}

/**
 * The constructor option `attach` passes its validated buffer in: attached and owned indexes are
 * built by the same constructor and share one object shape (the hot path stays monomorphic). Not
 * exported, so no caller can hand the constructor an unchecked buffer.
 */
const ATTACHED = Symbol('ctfs.exactIndex.attached');
interface AttachOptions extends ExactIndexOptions {
  /** An index already laid out in `buffer` at byte `base` (validated by the caller). */
  readonly [ATTACHED]?: { buffer: SharedArrayBuffer; layout: Layout; base: number };
  /** Lay a new index out in `buffer` at byte `base` (zeros there) instead of allocating one. */
  readonly [PLACED]?: { buffer: SharedArrayBuffer; base: number };
}
const PLACED = Symbol('ctfs.exactIndex.placed');

/** Bytes an index of `capacity` ids occupies (its header, tags, slot words and key store). */
export function exactIndexByteLength(capacity: number): number {
  return layoutFor(checkIndexOptions({ capacity }).capacity).byteLength;
}

export class ExactCausalIndex implements ReadonlyExactIndex {
  readonly buffer: SharedArrayBuffer;
  /** Where the index starts in `buffer` (0 unless it was placed in a larger buffer). */
  readonly byteOffset: number;
  /** Bytes of `buffer` the index occupies from `byteOffset`. */
  readonly byteLength: number;
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
  /** Hasher of the public lookup methods; admission paths bring their own. */
  private readonly queryHasher: IdHasher;
  /** The seed every hasher of this index must use. */
  readonly seed: number;
  /**
   * How many ids this instance can see: all of them on the writer (`beginWrite`), the last
   * published count on a reader (`sync`). Lookups ignore key numbers at or above it.
   */
  private visible: number;

  constructor(options: ExactIndexOptions = {}) {
    const attached = (options as AttachOptions | null | undefined)?.[ATTACHED];
    const placed = (options as AttachOptions | null | undefined)?.[PLACED];
    let buffer: SharedArrayBuffer;
    let layout: Layout;
    let base = 0;
    if (attached !== undefined) {
      ({ buffer, layout, base } = attached);
    } else {
      const { capacity, seed } = checkIndexOptions(options ?? {});
      layout = layoutFor(capacity);
      if (placed !== undefined) {
        ({ buffer, base } = placed);
        // Memory reused from an earlier table: only the header and the tags must read as zeros
        // (slot words are read only under a matching tag, keys only through a slot word).
        new Uint8Array(buffer, base, layout.slotsOffset).fill(0);
      } else {
        try {
          buffer = new SharedArrayBuffer(layout.byteLength);
        } catch (cause) {
          throw new InvalidArgumentError(`cannot allocate ${layout.byteLength} bytes for an index of capacity ${capacity}`, { cause });
        }
      }
      const header = new Uint32Array(buffer, base, HEADER_BYTES / 4);
      header[H_MAGIC] = MAGIC;
      header[H_VERSION] = LAYOUT_VERSION;
      header[H_CAPACITY] = capacity;
      header[H_TABLE_SLOTS] = layout.tableSlots;
      header[H_SEED] = seed ?? randomU32();
      header[H_DOMAIN_ID] = randomU32();
    }
    const header = new Uint32Array(buffer, base, HEADER_BYTES / 4);
    this.buffer = buffer;
    this.byteOffset = base;
    this.byteLength = layout.byteLength;
    this.capacity = header[H_CAPACITY]!;
    this.tableSlots = layout.tableSlots;
    this.header = header;
    this.pendingSlots = new Uint32Array(buffer, base + 4 * H_PENDING_SLOTS, PENDING_SLOT_WRITES);
    this.pendingKeys = new Uint32Array(buffer, base + 4 * H_PENDING_KEYS, PENDING_SLOT_WRITES);
    this.tags = new Uint8Array(buffer, base + layout.tagsOffset, layout.tableSlots);
    this.slots = new Uint32Array(buffer, base + layout.slotsOffset, layout.tableSlots);
    this.keys = new Uint32Array(buffer, base + layout.keysOffset, 8 * this.capacity);
    this.scale = layout.tableSlots / 2 ** 32;
    this.seed = header[H_SEED]!;
    this.queryHasher = new IdHasher(this.seed);
    this.visible = attached === undefined ? 0 : Atomics.load(header, H_PUBLISHED);
  }

  /**
   * An index over memory created by another `ExactCausalIndex` (typically in another thread). It
   * sees what was published when attached; `sync()` sees later publications.
   */
  static attach(buffer: SharedArrayBuffer): ExactCausalIndex {
    const header = checkSharedHeader(buffer, MAGIC, LAYOUT_VERSION, 'an exact index', HEADER_BYTES);
    return ExactCausalIndex.attachChecked(buffer, 0, header, true, false);
  }

  /**
   * @internal A new, empty index of `capacity` ids laid out in `buffer` from byte `base` (a
   * multiple of 64, `exactIndexByteLength(capacity)` bytes of any content): the tiered index
   * keeps its tables in shared arenas another thread already holds.
   */
  static placeIn(buffer: SharedArrayBuffer, base: number, capacity: number, seed: number): ExactCausalIndex {
    const length = exactIndexByteLength(capacity);
    if (base % LINE !== 0 || base < 0 || base + length > buffer.byteLength) {
      throw new InvalidArgumentError(`no room for an index of ${capacity} ids at byte ${base} of a buffer of ${buffer.byteLength}`);
    }
    const options: AttachOptions = { capacity, seed, [PLACED]: { buffer, base } };
    return new ExactCausalIndex(options);
  }

  /**
   * @internal The index laid out in `buffer` from byte `base`, checked like `attach` — except
   * that a `live` one (a tiered history's table, which its writer may be filling right now) has
   * its layout checked but not its counts: they move under the check. Every read of a count
   * stays inside the layout whatever it holds.
   */
  static attachAt(buffer: SharedArrayBuffer, base: number, live = false): ExactCausalIndex {
    if (!(buffer instanceof SharedArrayBuffer) || base % LINE !== 0 || base < 0 || base + HEADER_BYTES > buffer.byteLength) {
      throw new SharedMemoryError(`no exact index header fits at byte ${describeValue(base)} of the buffer`);
    }
    const header = new Uint32Array(buffer, base, HEADER_BYTES / 4);
    if (header[H_MAGIC] !== MAGIC || header[H_VERSION] !== LAYOUT_VERSION) {
      throw new SharedMemoryError(`no exact index of layout version ${LAYOUT_VERSION} at byte ${base} of the buffer`);
    }
    return ExactCausalIndex.attachChecked(buffer, base, header, false, live);
  }

  /** `whole`: the index must be exactly the buffer (a standalone one); else it must fit in what follows `base`. */
  private static attachChecked(buffer: SharedArrayBuffer, base: number, header: Uint32Array, whole: boolean, live: boolean): ExactCausalIndex {
    const capacity = header[H_CAPACITY]!;
    const layout = capacity >= 1 && capacity <= MAX_INDEX_CAPACITY ? layoutFor(capacity) : undefined;
    const room = buffer.byteLength - base;
    const fits = layout !== undefined && (whole ? layout.byteLength === room : layout.byteLength <= room);
    if (layout === undefined || layout.tableSlots !== header[H_TABLE_SLOTS] || !fits) {
      throw new SharedMemoryError('exact index header does not match the buffer size');
    }
    // Every count a loop or a key-number lookup runs to, checked against the layout's own limits.
    // A live table's writer may move its counts during the check: what can only be transient
    // there (the published count read after the live count, a pending write of the id being
    // inserted) is not checked, and readers bound their lookups by their own visible count.
    const count = header[H_COUNT]!;
    const pending = header[H_PENDING_COUNT]!;
    if (count > capacity || (!live && header[H_PUBLISHED]! > count) || pending > PENDING_SLOT_WRITES) {
      throw new SharedMemoryError(`exact index counts out of range (${count} ids of ${capacity}, ${header[H_PUBLISHED]} published, ${pending} pending slot writes)`);
    }
    for (let i = 0; i < pending; i++) {
      if (header[H_PENDING_SLOTS + i]! >= layout.tableSlots || (!live && header[H_PENDING_KEYS + i]! >= count)) {
        throw new SharedMemoryError(`exact index: pending slot write ${i} points outside the table or past the ids`);
      }
    }
    const options: AttachOptions = { [ATTACHED]: { buffer, layout, base } };
    return new ExactCausalIndex(options);
  }

  /** @internal Ids inserted so far, whoever inserted them (the shared live count). */
  get liveCount(): number {
    return this.header[H_COUNT]!;
  }

  /** Number of ids this instance sees (all of them on the writer; the published ones on a reader). */
  get size(): number {
    return this.visible;
  }

  /** size / capacity. */
  get fill(): number {
    return this.visible / this.capacity;
  }

  /** Bytes of shared memory per id at full capacity. */
  get bytesPerId(): number {
    return this.byteLength / this.capacity;
  }

  /** @internal Random id tying this index to its kernel's control block. */
  get domainId(): number {
    return this.header[H_DOMAIN_ID]!;
  }

  contains(id: Uint8Array): boolean {
    return this.keyNumberOf(id) >= 0;
  }

  /** True if every id in `ids` is present. */
  containsAll(ids: readonly Uint8Array[]): boolean {
    if (!Array.isArray(ids)) throw new InvalidArgumentError('ids must be an array of 32-byte ids');
    for (let i = 0; i < ids.length; i++) if (!this.contains(ids[i]!)) return false;
    return true;
  }

  /** Key number (insertion order, from 0) of `id`, or -1 if absent. */
  keyNumberOf(id: Uint8Array): number {
    const h = this.queryHasher;
    h.load(checkId(id));
    return this.find(h);
  }

  /**
   * Adds `id`; returns false if it was already present. Throws `CausalHorizonExceededError`
   * when the index is full (nothing is changed). For a standalone index; kernels insert through
   * their admission path.
   */
  insert(id: Uint8Array): boolean {
    const h = this.queryHasher;
    h.load(checkId(id));
    this.beginWrite();
    const found = this.probe(h);
    if (found >= 0) return false;
    if (this.visible >= this.capacity) {
      throw new CausalHorizonExceededError(`exact index is full (capacity ${this.capacity} ids)`);
    }
    this.insertAt(~found, h);
    return true;
  }

  /** The id with key number `keyNumber`, as a new array. */
  idAt(keyNumber: number): Uint8Array {
    if (!Number.isInteger(keyNumber) || keyNumber < 0 || keyNumber >= this.visible) {
      throw new InvalidArgumentError(`key number ${describeValue(keyNumber)} is not in [0, ${this.visible})`);
    }
    const out = new Uint8Array(32);
    new Uint32Array(out.buffer).set(this.keys.subarray(8 * keyNumber, 8 * keyNumber + 8));
    return out;
  }

  /** @internal The first `count` ids in insertion order, concatenated (a copy; checkpoints). */
  copyIds(count: number): Uint8Array {
    const out = new Uint8Array(32 * count);
    new Uint32Array(out.buffer).set(this.keys.subarray(0, 8 * count));
    return out;
  }

  /**
   * @internal The first `count` ids in insertion order as a view of the shared key store (no copy).
   * Key numbers below the count never change while ids are appended, so another thread may read
   * the view while this index keeps admitting (until `clear`).
   */
  idsView(count: number): Uint8Array {
    return new Uint8Array(this.keys.buffer, this.keys.byteOffset, 32 * count);
  }

  /** Every id in insertion order. */
  *ids(): IterableIterator<Uint8Array> {
    for (let k = 0; k < this.visible; k++) yield this.idAt(k);
  }

  /** Forgets every id (the memory stays allocated). Writer only. */
  clear(): void {
    this.header[H_PENDING_COUNT] = 0;
    this.header[H_PENDING_MASK] = 0;
    this.tags.fill(0);
    this.visible = 0;
    this.header[H_COUNT] = 0;
    Atomics.store(this.header, H_PUBLISHED, 0);
  }

  /** Makes every insert so far visible to threads that call `sync()`. Returns the size. Writer only. */
  publish(): number {
    this.flushPending();
    Atomics.store(this.header, H_PUBLISHED, this.header[H_COUNT]!);
    return this.header[H_COUNT]!;
  }

  /** Sees every insert the writer has published. Returns the size. */
  sync(): number {
    this.visible = Math.min(Atomics.load(this.header, H_PUBLISHED), this.capacity);
    return this.visible;
  }

  /**
   * @internal Makes exactly the first `count` ids visible to this instance (a kernel snapshot's
   * size). Call `beginWrite()` before inserting again.
   */
  showUpTo(count: number): void {
    this.visible = Math.min(count, this.capacity);
  }

  /**
   * @internal Called before a write (insert or admission): this instance takes the live count, so
   * it sees every id and numbers the next insert correctly, whatever it saw before.
   */
  beginWrite(): void {
    this.visible = this.header[H_COUNT]!;
  }

  /**
   * True if `id` is among the ids the writer has published (the count is re-read; this instance
   * then sees exactly those). Safe from any thread while the writer keeps inserting: published ids
   * have their slot words flushed, so this probe reads the slot array only — never the pending
   * buffer, which the writer rewrites with plain stores and another thread could see half-updated.
   */
  containsPublished(id: Uint8Array): boolean {
    this.sync();
    const h = this.queryHasher;
    h.load(checkId(id));
    const tags = this.tags;
    const end = this.tableSlots;
    const tag = tagOf(h.bloomHash);
    let i = Math.floor((h.indexHash >>> 0) * this.scale);
    for (;;) {
      const t = tags[i]!;
      if (t === 0) return false;
      if (t === tag) {
        // A slot of an unpublished insert may still hold an old word: the full compare below
        // only accepts a key the count covers that holds exactly this id.
        const k = this.slots[i]!;
        if (k < this.visible && this.keyEqualsWords(k, h)) return true;
      }
      if (++i === end) i = 0;
    }
  }

  /** @internal Key number of the id loaded into `h`, or -1. */
  find(h: IdHasher): number {
    const found = this.probe(h);
    return found >= 0 ? found : -1;
  }

  /**
   * @internal Probes for the id loaded into `h`. Returns its key number if present, else the
   * bitwise complement of the empty slot where it would be inserted (always negative).
   */
  probe(h: IdHasher): number {
    const tags = this.tags;
    const end = this.tableSlots;
    const tag = tagOf(h.bloomHash);
    // (h / 2^32) × slots < slots for every u32 h: the product is below slots − slots/2^32.
    let i = Math.floor((h.indexHash >>> 0) * this.scale);
    for (;;) {
      const t = tags[i]!;
      if (t === 0) return ~i;
      if (t === tag) {
        const k = this.keyAtSlot(i);
        // k ≥ visible: an insert this instance cannot see yet (a reader ahead of the writer's publish).
        if (k < this.visible && this.keyEqualsWords(k, h)) return k;
      }
      if (++i === end) i = 0;
    }
  }

  /** The key number stored in table slot `i`, looking through the pending writes first. */
  private keyAtSlot(i: number): number {
    const header = this.header;
    if ((header[H_PENDING_MASK]! & (1 << (i & 31))) !== 0) {
      // Bounded: another thread's memory, read while its writer runs, is never trusted for a loop.
      const n = Math.min(header[H_PENDING_COUNT]!, PENDING_SLOT_WRITES);
      for (let j = 0; j < n; j++) if (this.pendingSlots[j] === i) return this.pendingKeys[j]!;
    }
    return this.slots[i]!;
  }

  /** @internal True if key number `k` holds the id loaded into `h`. */
  keyEqualsWords(k: number, h: IdHasher): boolean {
    const keys = this.keys;
    const w = h.words;
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
   * @internal Stores the id loaded into `h` at empty table slot `slot` (from `probe`, after
   * `beginWrite`). The caller has checked capacity. Returns the new key number.
   */
  insertAt(slot: number, h: IdHasher): number {
    const k = this.visible;
    const w = h.words;
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
    this.tags[slot] = tagOf(h.bloomHash);
    const header = this.header;
    const pending = header[H_PENDING_COUNT]!;
    this.pendingSlots[pending] = slot;
    this.pendingKeys[pending] = k;
    header[H_PENDING_MASK] = header[H_PENDING_MASK]! | (1 << (slot & 31));
    header[H_PENDING_COUNT] = pending + 1;
    if (pending + 1 === PENDING_SLOT_WRITES) this.flushPending();
    this.visible = k + 1;
    header[H_COUNT] = k + 1;
    return k;
  }

  /** @internal Writes the buffered slot words in one burst. */
  flushPending(): void {
    const header = this.header;
    const n = Math.min(header[H_PENDING_COUNT]!, PENDING_SLOT_WRITES);
    const slots = this.slots;
    for (let j = 0; j < n; j++) slots[this.pendingSlots[j]!] = this.pendingKeys[j]!;
    header[H_PENDING_COUNT] = 0;
    header[H_PENDING_MASK] = 0;
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
