/**
 * RatelessSketch: a rateless invertible Bloom lookup table over 32-byte fact ids — the set
 * reconciliation of anti-entropy (Yang, Gilad & Alizadeh, "Practical Rateless Set
 * Reconciliation", SIGCOMM 2024). Two nodes that each keep a sketch of their admitted ids can find
 * the ids one has and the other lacks from a prefix of the other's cells whose length grows with
 * the number of differences (about 1.4–1.8 cells per difference), whatever the size of the sets.
 *
 * A cell holds the XOR of the ids mapped to it, the XOR of their 64-bit keyed hashes and their
 * count. Every id maps to cell 0 and then to a random, ever sparser sequence of cells: the gap after
 * cell i is ⌈(i + 1.5)·(1/√u − 1)⌉ for u uniform in (0, 1], so cell i holds an id with probability
 * about 1/(1 + i/2) and a prefix of n cells is touched by about 2·ln n indices per id. Subtracting a
 * local prefix from a remote one leaves the cells of the symmetric difference; a cell holding a
 * single id ("pure": count ±1 and the hash of its sum equal to its hash field) yields that id, which
 * is then peeled out of every other cell it maps to, which makes more cells pure. Decoding is done
 * when nothing is left; if cells remain, more of the remote prefix is needed.
 *
 * Cell 0 covers every id: (count, XOR of ids, XOR of hashes) is a 44-byte summary of the whole set
 * that two nodes can compare for free while idle.
 *
 * The hash is keyed (the key is agreed per cluster), so nobody can choose ids whose hashes cancel;
 * it is a multiply–rotate mix, not linear under XOR, so a cell mixing several ids does not pass as
 * pure. Exactness of replication never rests on the sketch: what it decodes is only a list of ids
 * to send or ask for, checked like any other fact.
 */
import { InvalidArgumentError } from '../errors.js';

/** Words per cell: XOR of ids (8), XOR of hashes (2), count (1, signed). */
const CELL_WORDS = 11;
const W_HASH = 8;
const W_COUNT = 10;
/** Words of an id. */
const ID_WORDS = 8;
/** Most cells a sketch may keep: 2^20 (46 MiB), far more than anti-entropy should ever ship. */
export const MAX_SKETCH_CELLS = 1 << 20;
/** 2^-53 and 2^32: 21 + 32 random bits make a double uniform in (0, 1]. */
const TWO_POW_NEG_53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;
/** mulberry32's Weyl increment. */
const MULBERRY_STEP = 0x6d2b79f5;
/** Odd 32-bit constants of the hash's multiply–rotate rounds (from the golden ratio and murmur3's finaliser). */
const M1 = 0x9e3779b1;
const M2 = 0x85ebca6b;
const M3 = 0xc2b2ae35;

/** The 64-bit keyed hash of an id, as two u32 words written into `out[0..2)`. */
export function sketchHash(key: Uint32Array, id: Uint32Array | Int32Array, offset: number, out: Uint32Array): void {
  let a = key[0]! | 0;
  let b = key[1]! ^ M1;
  for (let w = 0; w < ID_WORDS; w++) {
    const v = id[offset + w]! | 0;
    a = Math.imul(a ^ v, M2);
    a = (a << 13) | (a >>> 19);
    b = Math.imul(b + v, M3) ^ a;
    b = (b << 17) | (b >>> 15);
  }
  // Final avalanche of both lanes into each other, so every input bit reaches every output bit.
  a ^= b >>> 16;
  a = Math.imul(a, M2);
  b ^= a >>> 13;
  b = Math.imul(b, M3);
  a ^= b >>> 16;
  out[0] = a >>> 0;
  out[1] = (b ^ (a >>> 15)) >>> 0;
}

/**
 * The cells an id maps to, in increasing order: 0 first, then pseudo-random gaps drawn from a
 * generator seeded by the id's hash (mulberry32 on each hash word, combined into 53-bit uniforms).
 */
class CellSequence {
  private s0 = 0;
  private s1 = 0;
  /** The current cell index; Infinity once the next one is beyond any sketch. */
  index = 0;

  reset(h0: number, h1: number): void {
    this.s0 = h0 | 0;
    this.s1 = h1 | 0;
    this.index = 0;
  }

  next(): number {
    this.s0 = (this.s0 + MULBERRY_STEP) | 0;
    this.s1 = (this.s1 + MULBERRY_STEP) | 0;
    const r1 = mulberry(this.s1);
    // The top 21 bits depend on both hash words: drawn from one word alone, two ids sharing that
    // word (1 pair in ~90k ids on average) would get nearly equal gaps, hence the same cells, and
    // no prefix could tell them apart.
    const high = (mulberry(this.s0) ^ r1) >>> 11; // 21 bits
    const low = r1 >>> 0; // 32 bits
    const u = (high * TWO_POW_32 + low + 1) * TWO_POW_NEG_53; // uniform in (0, 1]
    const gap = Math.ceil((this.index + 1.5) * (1 / Math.sqrt(u) - 1));
    this.index += Math.max(1, gap);
    return this.index;
  }
}

function mulberry(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return t ^ (t >>> 14);
}

/** The 8-byte key of a sketch as two u32 words; every node of a cluster must use the same key. */
function keyWords(key: Uint8Array): Uint32Array {
  if (!(key instanceof Uint8Array) || key.length !== 8) throw new InvalidArgumentError('a sketch key is 8 bytes');
  const v = new DataView(key.buffer, key.byteOffset, 8);
  return new Uint32Array([v.getUint32(0, true), v.getUint32(4, true)]);
}

function checkCells(cells: number): void {
  if (!Number.isInteger(cells) || cells < 1 || cells > MAX_SKETCH_CELLS) {
    throw new InvalidArgumentError(`a sketch has 1 to ${MAX_SKETCH_CELLS} cells`);
  }
}

/** The ids the other side has and this one lacks (`theirs`), and the reverse (`ours`). */
export interface SketchDifference {
  readonly theirs: Uint8Array[];
  readonly ours: Uint8Array[];
}

/**
 * A sketch of a set of ids over a fixed number of cells, updated one id at a time (an add and a
 * remove cost the same: about 2·ln(cells) cell updates).
 */
export class RatelessSketch {
  /** Cells, `CELL_WORDS` words each. */
  readonly words: Int32Array;
  readonly cells: number;
  private readonly key: Uint32Array;
  private readonly hash = new Uint32Array(2);
  private readonly sequence = new CellSequence();
  private readonly idWords = new Int32Array(ID_WORDS);

  constructor(cells: number, key: Uint8Array) {
    checkCells(cells);
    this.cells = cells;
    this.key = keyWords(key);
    this.words = new Int32Array(cells * CELL_WORDS);
  }

  /** Adds an id (32 bytes). Adding an id twice counts it twice: callers add each admitted id once. */
  add(id: Uint8Array): void {
    this.update(id, 1);
  }

  /** Removes an id added before. */
  remove(id: Uint8Array): void {
    this.update(id, -1);
  }

  private update(id: Uint8Array, sign: 1 | -1): void {
    if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError('a fact id is 32 bytes');
    const w = this.idWords;
    for (let i = 0; i < ID_WORDS; i++) w[i] = id[4 * i]! | (id[4 * i + 1]! << 8) | (id[4 * i + 2]! << 16) | (id[4 * i + 3]! << 24);
    sketchHash(this.key, w, 0, this.hash);
    applySymbol(this.words, this.cells, w, 0, this.hash, this.sequence, sign);
  }

  /** A copy of the first `count` cells (what a peer is sent), as words. */
  prefix(count: number): Int32Array {
    checkCells(count);
    return this.words.slice(0, Math.min(count, this.cells) * CELL_WORDS);
  }

  /** The number of ids in the set (cell 0's count). */
  get size(): number {
    return this.words[W_COUNT]!;
  }

  /**
   * Decodes the difference between a peer's set and this one from the first cells of the peer's
   * sketch (`remote`, as words; at most this sketch's size). Returns the difference, or null if
   * those cells do not suffice (ask for more, or fall back to streaming the log).
   */
  difference(remote: Int32Array): SketchDifference | null {
    if (!(remote instanceof Int32Array) || remote.length % CELL_WORDS !== 0 || remote.length === 0) {
      throw new InvalidArgumentError('remote cells are a non-empty Int32Array of whole cells');
    }
    const n = remote.length / CELL_WORDS;
    if (n > this.cells) throw new InvalidArgumentError(`${n} remote cells, but this sketch keeps ${this.cells}`);
    const d = new Int32Array(remote.length);
    for (let i = 0; i < d.length; i++) d[i] = remote[i]! ^ this.words[i]!;
    for (let c = 0; c < n; c++) d[c * CELL_WORDS + W_COUNT] = remote[c * CELL_WORDS + W_COUNT]! - this.words[c * CELL_WORDS + W_COUNT]!;
    return peel(d, n, this.key, this.sequence);
  }
}

/** Adds (`sign` 1) or removes (−1) the id at `ids[offset..offset+8)` in every cell below `cells` it maps to. */
function applySymbol(cells: Int32Array, count: number, ids: Int32Array, offset: number, hash: Uint32Array, sequence: CellSequence, sign: number): void {
  sequence.reset(hash[0]!, hash[1]!);
  for (let c = 0; c < count; c = sequence.next()) {
    const base = c * CELL_WORDS;
    for (let w = 0; w < ID_WORDS; w++) cells[base + w] = cells[base + w]! ^ ids[offset + w]!;
    cells[base + W_HASH] = cells[base + W_HASH]! ^ hash[0]!;
    cells[base + W_HASH + 1] = cells[base + W_HASH + 1]! ^ hash[1]!;
    cells[base + W_COUNT] = cells[base + W_COUNT]! + sign;
  }
}

/**
 * Peels the difference cells `d` (remote − local, `n` cells): repeatedly takes a pure cell's id and
 * removes it from every cell it maps to. Succeeds when every cell is empty.
 */
function peel(d: Int32Array, n: number, key: Uint32Array, sequence: CellSequence): SketchDifference | null {
  const hash = new Uint32Array(2);
  const theirs: Uint8Array[] = [];
  const ours: Uint8Array[] = [];
  const queue: number[] = [];
  for (let c = 0; c < n; c++) queue.push(c);
  // Ids already peeled: one showing up again means the cells are not the difference of two sets
  // (cells of different moments mixed, or damage), and peeling on would only go round in circles.
  const peeled = new Set<string>();
  while (queue.length > 0) {
    const c = queue.pop()!;
    const base = c * CELL_WORDS;
    const count = d[base + W_COUNT]!;
    if (count !== 1 && count !== -1) continue;
    sketchHash(key, d, base, hash);
    if ((hash[0]! | 0) !== d[base + W_HASH] || (hash[1]! | 0) !== d[base + W_HASH + 1]) continue;
    const id = new Uint8Array(new Int32Array(d.subarray(base, base + ID_WORDS)).buffer);
    const seen = Buffer.from(id.buffer).toString('hex');
    if (peeled.has(seen)) return null;
    peeled.add(seen);
    (count === 1 ? theirs : ours).push(id);
    const ids = new Int32Array(id.buffer);
    // Remove it from every cell it maps to (this one included) and revisit those cells.
    sequence.reset(hash[0]!, hash[1]!);
    for (let k = 0; k < n; k = sequence.next()) {
      const at = k * CELL_WORDS;
      for (let w = 0; w < ID_WORDS; w++) d[at + w] = d[at + w]! ^ ids[w]!;
      d[at + W_HASH] = d[at + W_HASH]! ^ hash[0]!;
      d[at + W_HASH + 1] = d[at + W_HASH + 1]! ^ hash[1]!;
      d[at + W_COUNT] = d[at + W_COUNT]! - count;
      if (k !== c) queue.push(k);
    }
  }
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) return null;
  return { theirs, ours };
}

/** Words per sketch cell (for sizing buffers). */
export const SKETCH_CELL_WORDS = CELL_WORDS;
