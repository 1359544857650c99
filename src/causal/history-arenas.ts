/**
 * HistoryArenas: the memory of a tiered exact index — a few growable SharedArrayBuffers that
 * hot tables and sorted runs are carved out of, with the allocator's state in shared memory.
 *
 * Why arenas: a SharedArrayBuffer reaches another thread only in a message, so a structure that
 * allocated a new buffer per run could not be read by a thread that attached to it earlier (a
 * pool thread, a reader) until a message arrived. Growable buffers keep their identity while
 * they grow, and a thread that holds one sees it grow: every buffer an index will ever use is
 * handed over once, when the index is created or attached. Node 20 caps one at 2^32 bytes, so
 * an index has several (`arenaCount`, default 4: 16 GiB of address space, reserved but not
 * committed, about 480M ids in runs).
 *
 * The allocator: page-granular (4 KiB: a run's ids start on a page, a table needs 64-byte
 * alignment), per arena a bump pointer and a list of free extents, best fit, neighbours
 * coalesced, an extent at the end given back to the bump pointer. Its state lives in a region of
 * words the caller provides (the tier directory) and every call is made under the caller's lock.
 * A buffer never shrinks: freed pages stay committed and are reused by later allocations.
 *
 * A location is `arena × 2^20 + page` (2^20 pages of 4 KiB are 2^32 bytes), so it fits a u32
 * word of the directory.
 */
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { growBuffer, growableSharedBuffer, isGrowable, maxByteLengthOf } from '../core/growable-buffer.js';

/** Allocation unit. */
export const ARENA_PAGE = 4096;
/** Pages addressable in one arena (2^32 bytes, Node 20's largest SharedArrayBuffer). */
const PAGES_PER_ARENA = 1 << 20;
/** Largest arena: Node 20 refuses a growable SharedArrayBuffer beyond 2^32 bytes. */
export const MAX_ARENA_BYTES = 2 ** 32;
/** Most arenas per index (a location keeps 11 bits for the arena). */
export const MAX_ARENAS = 8;
/**
 * Free extents remembered per arena. A tiered index holds a few dozen tables and runs, so this
 * is never reached in practice; if it were, the smallest extent would be forgotten (its pages
 * counted as lost) rather than an allocation refused.
 */
const MAX_EXTENTS = 64;
/** Growth step: buffers grow by at least 1 MiB, so small allocations don't each call grow. */
const GROW_PAGES = 256;

/**
 * Words of allocator state per arena: bump pointer, extent count, lost pages, high-water mark
 * (pages below it may hold old bytes: the bump pointer moves back when the last extent is freed,
 * and on a reset), then (start, length) pairs.
 */
const A_END = 0;
const A_EXTENTS = 1;
const A_LOST = 2;
const A_HIGH = 3;
const A_LIST = 4;
const ARENA_WORDS = A_LIST + 2 * MAX_EXTENTS;

/** Words of allocator state an index with `arenas` arenas needs in its directory. */
export function arenaStateWords(arenas: number): number {
  return arenas * ARENA_WORDS;
}

/** Pages needed for `bytes`. */
export function pagesFor(bytes: number): number {
  return Math.ceil(bytes / ARENA_PAGE);
}

/** New, empty arenas: `count` growable buffers of at most `maxBytes` each. */
export function createArenas(count: number, maxBytes: number): SharedArrayBuffer[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_ARENAS) throw new InvalidArgumentError(`an index has 1 to ${MAX_ARENAS} arenas, got ${count}`);
  if (!Number.isInteger(maxBytes) || maxBytes < ARENA_PAGE || maxBytes > MAX_ARENA_BYTES || maxBytes % ARENA_PAGE !== 0) {
    throw new InvalidArgumentError(`an arena holds a whole number of 4 KiB pages up to 2^32 bytes, got ${maxBytes}`);
  }
  const out: SharedArrayBuffer[] = [];
  for (let i = 0; i < count; i++) out.push(growableSharedBuffer(0, maxBytes));
  return out;
}

export class HistoryArenas {
  readonly buffers: readonly SharedArrayBuffer[];
  /** The allocator's words (in the directory). */
  private readonly state: Uint32Array;

  /** Over `buffers` (from `createArenas`, or handed over from another thread) and the allocator words `state`. */
  constructor(buffers: readonly SharedArrayBuffer[], state: Uint32Array) {
    if (!Array.isArray(buffers) || buffers.length < 1 || buffers.length > MAX_ARENAS) {
      throw new SharedMemoryError(`a tiered index has 1 to ${MAX_ARENAS} arenas, got ${Array.isArray(buffers) ? buffers.length : typeof buffers}`);
    }
    for (const b of buffers) {
      if (!(b instanceof SharedArrayBuffer) || !isGrowable(b)) throw new SharedMemoryError('a tiered index arena is a growable SharedArrayBuffer');
    }
    if (state.length !== arenaStateWords(buffers.length)) throw new SharedMemoryError('tier directory: allocator state of the wrong size');
    this.buffers = buffers;
    this.state = state;
    for (let a = 0; a < buffers.length; a++) this.check(a);
  }

  /** Checks arena `a`'s words against its buffer (another thread's memory is never trusted). */
  private check(a: number): void {
    const s = this.state;
    const at = a * ARENA_WORDS;
    const limit = Math.min(PAGES_PER_ARENA, Math.floor(maxByteLengthOf(this.buffers[a]!) / ARENA_PAGE));
    const end = s[at + A_END]!;
    const n = s[at + A_EXTENTS]!;
    if (end > limit || end * ARENA_PAGE > this.buffers[a]!.byteLength || n > MAX_EXTENTS) {
      throw new SharedMemoryError(`tier directory: arena ${a} holds ${end} pages in ${this.buffers[a]!.byteLength} bytes with ${n} free extents`);
    }
    for (let i = 0; i < n; i++) {
      const start = s[at + A_LIST + 2 * i]!;
      const length = s[at + A_LIST + 2 * i + 1]!;
      if (length === 0 || start + length > end) throw new SharedMemoryError(`tier directory: arena ${a}'s free extent ${i} lies outside it`);
    }
  }

  /**
   * Allocates `bytes` (rounded up to pages), zeroed if `zero`: the location, or -1 if no arena
   * has room. Caller holds the directory lock.
   */
  allocate(bytes: number, zero: boolean): number {
    const pages = pagesFor(bytes);
    if (pages < 1 || pages > PAGES_PER_ARENA) return -1;
    const s = this.state;
    // Best fit among free extents, every arena: reuses memory already committed.
    let bestArena = -1;
    let bestIndex = -1;
    let bestLength = Infinity;
    for (let a = 0; a < this.buffers.length; a++) {
      const at = a * ARENA_WORDS;
      const n = s[at + A_EXTENTS]!;
      for (let i = 0; i < n; i++) {
        const length = s[at + A_LIST + 2 * i + 1]!;
        if (length >= pages && length < bestLength) {
          bestArena = a;
          bestIndex = i;
          bestLength = length;
        }
      }
    }
    let location: number;
    if (bestArena >= 0) {
      const at = bestArena * ARENA_WORDS + A_LIST + 2 * bestIndex;
      const start = s[at]!;
      if (bestLength === pages) this.removeExtent(bestArena, bestIndex);
      else {
        s[at] = start + pages;
        s[at + 1] = bestLength - pages;
      }
      location = bestArena * PAGES_PER_ARENA + start;
      if (zero) this.view(location, pages * ARENA_PAGE).fill(0);
      return location;
    }
    // Else the end of the first arena with room (pages never used before are zero).
    for (let a = 0; a < this.buffers.length; a++) {
      const buffer = this.buffers[a]!;
      const at = a * ARENA_WORDS;
      const end = s[at + A_END]!;
      const limit = Math.min(PAGES_PER_ARENA, Math.floor(maxByteLengthOf(buffer) / ARENA_PAGE));
      if (end + pages > limit) continue;
      const need = (end + pages) * ARENA_PAGE;
      if (need > buffer.byteLength) {
        const grown = Math.min(limit, Math.max(end + pages, Math.ceil((end + pages) / GROW_PAGES) * GROW_PAGES));
        try {
          growBuffer(buffer, grown * ARENA_PAGE);
        } catch {
          continue; // the system refused the memory: try the next arena, else report no room
        }
      }
      s[at + A_END] = end + pages;
      location = a * PAGES_PER_ARENA + end;
      const high = s[at + A_HIGH]!;
      if (zero && end < high) this.view(location, (Math.min(high, end + pages) - end) * ARENA_PAGE).fill(0);
      s[at + A_HIGH] = Math.max(high, end + pages);
      return location;
    }
    return -1;
  }

  /** Gives back `bytes` at `location` (as allocated). Caller holds the directory lock. */
  free(location: number, bytes: number): void {
    const pages = pagesFor(bytes);
    const a = Math.floor(location / PAGES_PER_ARENA);
    let start = location % PAGES_PER_ARENA;
    let length = pages;
    const s = this.state;
    const at = a * ARENA_WORDS;
    // Coalesce with the extents just before and just after.
    for (let i = s[at + A_EXTENTS]! - 1; i >= 0; i--) {
      const es = s[at + A_LIST + 2 * i]!;
      const el = s[at + A_LIST + 2 * i + 1]!;
      if (es + el === start || start + length === es) {
        start = Math.min(start, es);
        length += el;
        this.removeExtent(a, i);
      }
    }
    if (start + length === s[at + A_END]) {
      s[at + A_END] = start;
      return;
    }
    let n = s[at + A_EXTENTS]!;
    if (n === MAX_EXTENTS) {
      // Forget the smallest extent (or this one, if it is smaller): see MAX_EXTENTS.
      let smallest = -1;
      let smallestLength = length;
      for (let i = 0; i < n; i++) {
        const el = s[at + A_LIST + 2 * i + 1]!;
        if (el < smallestLength) {
          smallest = i;
          smallestLength = el;
        }
      }
      s[at + A_LOST] = s[at + A_LOST]! + smallestLength;
      if (smallest < 0) return;
      this.removeExtent(a, smallest);
      n--;
    }
    s[at + A_LIST + 2 * n] = start;
    s[at + A_LIST + 2 * n + 1] = length;
    s[at + A_EXTENTS] = n + 1;
  }

  private removeExtent(a: number, i: number): void {
    const s = this.state;
    const at = a * ARENA_WORDS;
    const n = s[at + A_EXTENTS]! - 1;
    s[at + A_LIST + 2 * i] = s[at + A_LIST + 2 * n]!;
    s[at + A_LIST + 2 * i + 1] = s[at + A_LIST + 2 * n + 1]!;
    s[at + A_EXTENTS] = n;
  }

  /** The arena buffer of `location`. */
  bufferOf(location: number): SharedArrayBuffer {
    return this.buffers[Math.floor(location / PAGES_PER_ARENA)]!;
  }

  /** Byte offset of `location` in its arena. */
  offsetOf(location: number): number {
    return (location % PAGES_PER_ARENA) * ARENA_PAGE;
  }

  /** True if `bytes` at `location` lie inside an arena as it is now (checks a location read from shared memory). */
  holds(location: number, bytes: number): boolean {
    const a = Math.floor(location / PAGES_PER_ARENA);
    return a < this.buffers.length && this.offsetOf(location) + bytes <= this.buffers[a]!.byteLength;
  }

  /** A view of `bytes` at `location`. */
  view(location: number, bytes: number): Uint8Array {
    return new Uint8Array(this.bufferOf(location), this.offsetOf(location), bytes);
  }

  /** Bytes allocated, lost pages included (bump pointers less free extents). */
  heldBytes(): number {
    const s = this.state;
    let pages = 0;
    for (let a = 0; a < this.buffers.length; a++) {
      const at = a * ARENA_WORDS;
      pages += s[at + A_END]!;
      for (let i = 0; i < s[at + A_EXTENTS]!; i++) pages -= s[at + A_LIST + 2 * i + 1]!;
    }
    return pages * ARENA_PAGE;
  }

  /** Bytes the arenas have grown to (committed as touched). */
  grownBytes(): number {
    let bytes = 0;
    for (const b of this.buffers) bytes += b.byteLength;
    return bytes;
  }

  /** Forgets every allocation (the buffers keep their size; their pages are reused). Caller holds the lock. */
  reset(): void {
    for (let a = 0; a < this.buffers.length; a++) {
      const at = a * ARENA_WORDS;
      this.state[at + A_END] = 0;
      this.state[at + A_EXTENTS] = 0;
      this.state[at + A_LOST] = 0;
    }
  }
}
