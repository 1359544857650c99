/**
 * FactStore: the replication worker's copy of this node's log — every fact the kernel admitted,
 * in log order, with its deps and payload — from which it serves peers (pushes, requests, log
 * streams). Facts are packed back to back in large chunks (no object per fact) and found by id
 * through an open-addressing table of sequences (linear probing, hashed with a per-store random
 * seed so a peer cannot grind ids that share a probe chain), confirmed against the stored id.
 *
 * Record in a chunk: dep count u8, 3 zero bytes, payload length u32, id, deps, payload.
 */
import type { FactSource } from '../replication/replica-core.js';
import type { WireFact } from '../replication/frames.js';

/**
 * 16 MiB chunks: a location is chunk · 2^24 + offset, an exact double; large enough that the
 * largest fact (~64.5 KiB) wastes under 0.4% at a chunk's end, small enough to grow in steps.
 */
const CHUNK_BITS = 24;
const CHUNK_BYTES = 1 << CHUNK_BITS;
const RECORD_FIXED_BYTES = 8;

/** Slots of the id table start at 2^16 and double when half full (probe chains stay short). */
const MIN_TABLE_SLOTS = 1 << 16;

/** Copies 32 bytes without the per-call cost of `TypedArray.prototype.set` on small arrays. */
function copy32(to: Uint8Array, at: number, from: Uint8Array): void {
  for (let i = 0; i < 32; i++) to[at + i] = from[i]!;
}

export class FactStore implements FactSource {
  private readonly chunks: Uint8Array[] = [];
  private chunkUsed = CHUNK_BYTES;
  /** Location of each fact by sequence − first (a growable array of doubles). */
  private locations = new Float64Array(1 << 16);
  private count = 0;
  /** Slot → sequence − first + 1 (0: empty). */
  private table = new Int32Array(MIN_TABLE_SLOTS);
  private readonly seed = (Math.random() * 2 ** 32) | 1;
  private bytesStored = 0;

  /** @param first the log sequence of the first fact this store will hold (1 unless older facts are gone). */
  constructor(private readonly first = 1) {}

  /** Facts held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of fact records held (the chunks' used space). */
  get bytes(): number {
    return this.bytesStored;
  }

  /** The sequence the next appended fact gets. */
  get nextSequence(): number {
    return this.first + this.count;
  }

  has(id: Uint8Array): boolean {
    return this.sequenceOf(id) !== 0;
  }

  /** Appends a fact (its bytes are copied); returns its sequence. The caller never appends one twice. */
  append(fact: WireFact): number {
    const n = RECORD_FIXED_BYTES + 32 * (1 + fact.deps.length) + fact.payload.length;
    if (this.chunkUsed + n > CHUNK_BYTES) {
      this.chunks.push(new Uint8Array(CHUNK_BYTES));
      this.chunkUsed = 0;
    }
    const chunk = this.chunks[this.chunks.length - 1]!;
    const at = this.chunkUsed;
    chunk[at] = fact.deps.length;
    chunk[at + 1] = chunk[at + 2] = chunk[at + 3] = 0;
    const len = fact.payload.length;
    chunk[at + 4] = len & 0xff;
    chunk[at + 5] = (len >>> 8) & 0xff;
    chunk[at + 6] = (len >>> 16) & 0xff;
    chunk[at + 7] = len >>> 24;
    let p = at + RECORD_FIXED_BYTES;
    copy32(chunk, p, fact.id);
    p += 32;
    for (const d of fact.deps) {
      copy32(chunk, p, d);
      p += 32;
    }
    if (len > 64) chunk.set(fact.payload, p);
    else for (let i = 0; i < len; i++) chunk[p + i] = fact.payload[i]!;
    this.chunkUsed = at + n;
    this.bytesStored += n;
    if (this.count === this.locations.length) {
      const grown = new Float64Array(this.locations.length * 2);
      grown.set(this.locations);
      this.locations = grown;
    }
    this.locations[this.count++] = (this.chunks.length - 1) * CHUNK_BYTES + at;
    if (this.count * 2 > this.table.length) this.grow();
    this.place(fact.id, this.count - 1);
    return this.first + this.count - 1;
  }

  private slotOf(id: Uint8Array): number {
    const w0 = id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24);
    const w1 = id[4]! | (id[5]! << 8) | (id[6]! << 16) | (id[7]! << 24);
    let h = Math.imul(w0 ^ this.seed, 0x9e3779b1) + Math.imul(w1, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 13)) & (this.table.length - 1);
  }

  /** Puts the fact at index `index` (sequence − first) into the table. */
  private place(id: Uint8Array, index: number): void {
    const mask = this.table.length - 1;
    let slot = this.slotOf(id);
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = index + 1;
  }

  private grow(): void {
    this.table = new Int32Array(this.table.length * 2);
    for (let i = 0; i < this.count - 1; i++) this.place(this.idAt(i), i);
  }

  private idAt(index: number): Uint8Array {
    const [chunk, at] = this.locate(this.first + index);
    return chunk.subarray(at + RECORD_FIXED_BYTES, at + RECORD_FIXED_BYTES + 32);
  }

  /** The sequence of the fact with this id, or 0. */
  sequenceOf(id: Uint8Array): number {
    const mask = this.table.length - 1;
    for (let slot = this.slotOf(id); ; slot = (slot + 1) & mask) {
      const entry = this.table[slot]!;
      if (entry === 0) return 0;
      if (this.idMatches(entry - 1, id)) return this.first + entry - 1;
    }
  }

  private idMatches(index: number, id: Uint8Array): boolean {
    const location = this.locations[index]!;
    const chunk = this.chunks[Math.floor(location / CHUNK_BYTES)]!;
    const at = (location % CHUNK_BYTES) + RECORD_FIXED_BYTES;
    for (let i = 0; i < 32; i++) if (chunk[at + i] !== id[i]) return false;
    return true;
  }

  private locate(sequence: number): [Uint8Array, number] {
    const location = this.locations[sequence - this.first]!;
    return [this.chunks[Math.floor(location / CHUNK_BYTES)]!, location % CHUNK_BYTES];
  }

  /** The fact at `sequence`, as views of the store's memory (valid for the store's life). */
  at(sequence: number): WireFact {
    const [chunk, at] = this.locate(sequence);
    const depCount = chunk[at]!;
    const len = (chunk[at + 4]! | (chunk[at + 5]! << 8) | (chunk[at + 6]! << 16) | (chunk[at + 7]! << 24)) >>> 0;
    let p = at + RECORD_FIXED_BYTES;
    const id = chunk.subarray(p, p + 32);
    p += 32;
    const deps: Uint8Array[] = new Array(depCount);
    for (let d = 0; d < depCount; d++, p += 32) deps[d] = chunk.subarray(p, p + 32);
    return { id, deps, payload: chunk.subarray(p, p + len) };
  }

  // FactSource

  get(id: Uint8Array): WireFact | undefined {
    const sequence = this.sequenceOf(id);
    return sequence === 0 ? undefined : this.at(sequence);
  }

  logFrom(from: number, max: number): WireFact[] {
    const start = Math.max(from, this.first);
    const end = Math.min(this.first + this.count, start + max);
    const out: WireFact[] = [];
    for (let s = start; s < end; s++) out.push(this.at(s));
    return out;
  }

  retainedFrom(): number {
    return this.first;
  }
}
