/**
 * FactStore: the replication worker's copy of this node's log — every fact the kernel admitted,
 * in log order, with its deps and payload — from which it serves peers (pushes, requests, log
 * streams). Facts are packed back to back in large chunks (no object per fact) and found by id
 * through a map keyed by the id's first 48 bits, confirmed against the stored id.
 *
 * Record in a chunk: dep count u8, 3 zero bytes, payload length u32, id, deps, payload.
 */
import { bytesEqual } from '../core/bytes.js';
import type { FactSource } from '../replication/replica-core.js';
import type { WireFact } from '../replication/frames.js';

/**
 * 16 MiB chunks: a location is chunk · 2^24 + offset, an exact double; large enough that the
 * largest fact (~64.5 KiB) wastes under 0.4% at a chunk's end, small enough to grow in steps.
 */
const CHUNK_BITS = 24;
const CHUNK_BYTES = 1 << CHUNK_BITS;
const RECORD_FIXED_BYTES = 8;
const TWO_POW_32 = 2 ** 32;

/** The map key of an id: its first 48 bits (ids are BLAKE3 outputs, so these are uniform). */
function keyOf(id: Uint8Array): number {
  return ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) + (id[4]! | (id[5]! << 8)) * TWO_POW_32;
}

export class FactStore implements FactSource {
  private readonly chunks: Uint8Array[] = [];
  private chunkUsed = CHUNK_BYTES;
  /** Location of each fact by sequence − first (a growable array of doubles). */
  private locations = new Float64Array(1 << 16);
  private count = 0;
  /** Key → sequence, or several sequences when ids share their first 48 bits. */
  private readonly byKey = new Map<number, number | number[]>();
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
    chunk.set(fact.id, p);
    p += 32;
    for (const d of fact.deps) {
      chunk.set(d, p);
      p += 32;
    }
    chunk.set(fact.payload, p);
    this.chunkUsed = at + n;
    this.bytesStored += n;
    if (this.count === this.locations.length) {
      const grown = new Float64Array(this.locations.length * 2);
      grown.set(this.locations);
      this.locations = grown;
    }
    this.locations[this.count++] = (this.chunks.length - 1) * CHUNK_BYTES + at;
    const sequence = this.first + this.count - 1;
    const key = keyOf(fact.id);
    const had = this.byKey.get(key);
    if (had === undefined) this.byKey.set(key, sequence);
    else if (typeof had === 'number') this.byKey.set(key, [had, sequence]);
    else had.push(sequence);
    return sequence;
  }

  /** The sequence of the fact with this id, or 0. */
  sequenceOf(id: Uint8Array): number {
    const had = this.byKey.get(keyOf(id));
    if (had === undefined) return 0;
    if (typeof had === 'number') return this.idMatches(had, id) ? had : 0;
    for (const s of had) if (this.idMatches(s, id)) return s;
    return 0;
  }

  private idMatches(sequence: number, id: Uint8Array): boolean {
    const [chunk, at] = this.locate(sequence);
    return bytesEqual(chunk.subarray(at + RECORD_FIXED_BYTES, at + RECORD_FIXED_BYTES + 32), id);
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
