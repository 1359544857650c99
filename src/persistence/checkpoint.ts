/**
 * Checkpoints: a kernel's whole admitted history (state cells, Bloom clock, frontier, every id of
 * the exact history, in memcmp order) as of one WAL sequence, in a file
 * `checkpoint-<sequence, 16 hex digits>.ckpt`. Layout in docs/FORMATS.md §6.
 *
 * Integrity: a tiered BLAKE3 hash over the header fields and a hash of each part, stored in the
 * header; verified before anything is used. Durability: written to a temporary file, fsynced,
 * renamed over the final name, directory fsynced — after a crash a checkpoint is whole or absent.
 */
import * as path from 'node:path';
import { hash } from 'blake3-jit';
import { CheckpointError, LogFormatError } from '../errors.js';
import { bytesEqual } from '../core/bytes.js';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { CLOCK_BYTES, FRONTIER_BYTES, FRONTIER_WIDTH, MAX_CELLS } from '../domain/control-block.js';
import { hashParts, type DomainImage } from '../domain/image.js';
import { BLOOM_POSITION_MASK, bloomHashOf } from '../causal/id-hash.js';
import { readFileAligned, writeFileAtomic } from './data-dir.js';
import { LOG_ID_BYTES } from './segment.js';

const MAGIC = 0x50435443; // "CTCP"
/** 2: the frontier ring holds the heads' ids (FRONTIER_BYTES). */
const VERSION = 2;
/** Version 1 held the frontier as 8 key numbers (u32, positions in the id list): 32 bytes. */
const VERSION_1 = 1;
const VERSION_1_HEADS_BYTES = 32;
export const CHECKPOINT_HEADER_BYTES = 128;
/** Header bytes [0, 64) and [96, 128) are hashed; [64, 96) holds the hash. */
const OFF_HASH = 64;
const HASH_BYTES = 32;
const TWO_POW_32 = 0x1_0000_0000;
/** Domain separation for the top-level hash (unchanged by version 2: the version is a hashed header field). */
const HASH_CONTEXT = new TextEncoder().encode('ctfs/checkpoint/v1\0');

export interface Checkpoint {
  /** The last WAL sequence the checkpoint covers. */
  readonly sequence: number;
  readonly logId: Uint8Array;
  /** When it was taken (ms since the epoch; informational). */
  readonly createdAt: number;
  readonly image: DomainImage;
  /** The tiered hash, as stored and verified. */
  readonly hash: Uint8Array;
}

/** A checkpoint written off the kernel's thread: what `DurableKernel.checkpoint({ pool })` hands a pool thread. */
export interface CheckpointJob {
  readonly dir: string;
  readonly sequence: number;
  readonly logId: Uint8Array;
  readonly image: DomainImage;
  /** Checkpoints compaction keeps afterwards. */
  readonly keep: number;
}

export function checkpointFileName(sequence: number): string {
  return `checkpoint-${sequence.toString(16).padStart(16, '0')}.ckpt`;
}

/** The sequence a checkpoint file name promises, or -1. */
export function parseCheckpointFileName(name: string): number {
  const m = /^checkpoint-([0-9a-f]{16})\.ckpt$/.exec(name);
  return m === null ? -1 : Number.parseInt(m[1]!, 16);
}

/**
 * T = BLAKE3(context ‖ header[0,64) ‖ header[96,128) ‖ BLAKE3(cells) ‖ BLAKE3(clock ‖ heads) ‖ BLAKE3(ids)).
 * Every header field is covered, so a changed sequence, count or log id is detected like a
 * changed state byte.
 */
export function tieredHash(header: Uint8Array, image: DomainImage): Uint8Array {
  const top = new Uint8Array(HASH_CONTEXT.length + 64 + 32 + 3 * HASH_BYTES);
  let at = 0;
  top.set(HASH_CONTEXT, at);
  at += HASH_CONTEXT.length;
  top.set(header.subarray(0, OFF_HASH), at);
  at += OFF_HASH;
  top.set(header.subarray(OFF_HASH + HASH_BYTES, CHECKPOINT_HEADER_BYTES), at);
  at += CHECKPOINT_HEADER_BYTES - OFF_HASH - HASH_BYTES;
  top.set(hashParts(image), at);
  return hash(top);
}

function headerOf(sequence: number, logId: Uint8Array, createdAt: number, image: DomainImage, bodyBytes: number): Uint8Array {
  const header = new Uint8Array(CHECKPOINT_HEADER_BYTES);
  const v = new DataView(header.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, VERSION, true);
  v.setUint32(8, sequence >>> 0, true);
  v.setUint32(12, Math.floor(sequence / TWO_POW_32), true);
  header.set(logId, 16);
  v.setUint32(32, image.cells.length / STATE_CELL_BYTES, true);
  v.setUint32(36, image.ids.length / 32, true);
  v.setUint32(40, image.popcount, true);
  v.setUint32(44, image.headStart, true);
  v.setUint32(48, image.headCount, true);
  v.setUint32(52, bodyBytes, true);
  v.setUint32(56, createdAt % TWO_POW_32, true);
  v.setUint32(60, Math.floor(createdAt / TWO_POW_32), true);
  return header;
}

/** The file's bytes: header (with the hash), cells, clock, heads, ids. */
export function encodeCheckpoint(sequence: number, logId: Uint8Array, image: DomainImage, createdAt = Date.now()): Uint8Array[] {
  const bodyBytes = image.cells.length + CLOCK_BYTES + FRONTIER_BYTES + image.ids.length;
  const header = headerOf(sequence, logId, createdAt, image, bodyBytes);
  header.set(tieredHash(header, image), OFF_HASH);
  return [header, image.cells, image.clock, image.heads, image.ids];
}

/** Writes a checkpoint atomically into `dir`; returns its path. */
export function writeCheckpoint(dir: string, sequence: number, logId: Uint8Array, image: DomainImage): string {
  const file = path.join(dir, checkpointFileName(sequence));
  writeFileAtomic(file, encodeCheckpoint(sequence, logId, image));
  return file;
}

/** First word (bytes 0..4, little-endian) of the 32-byte id at `at` in `bytes`. */
function firstWord(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

/**
 * What a valid hash cannot prove — it only says the bytes are the writer's — checked against the
 * image itself: the Bloom popcount is the clock's bit count (so at most 512, a saturation of at
 * most 1), every id's three Bloom bits are set in the clock (each admitted id was observed), the
 * frontier holds at most as many heads as there are ids, each a distinct one of the ids.
 */
function checkConsistent(image: DomainImage, fail: (why: string) => never): void {
  const { clock, heads, headStart, headCount, popcount, ids } = image;
  let bits = 0;
  for (let i = 0; i < CLOCK_BYTES; i++) {
    for (let b = clock[i]!; b !== 0; b &= b - 1) bits++;
  }
  if (popcount !== bits) fail(`Bloom popcount ${popcount} but the clock has ${bits} bits set`);
  const idCount = ids.length / 32;
  if (headCount > idCount) fail(`frontier holds ${headCount} heads but there are ${idCount} ids`);
  const head: Uint8Array[] = [];
  for (let i = 0; i < headCount; i++) {
    const at = 32 * ((headStart + i) % FRONTIER_WIDTH);
    head.push(heads.subarray(at, at + 32));
    for (let j = 0; j < i; j++) if (bytesEqual(head[j]!, head[i]!)) fail('frontier names a fact twice');
  }
  // The ids are read once anyway for the Bloom check; each is compared with the at most 8 heads
  // not found yet by first word, and only a first-word match by all 32 bytes.
  const headWord = head.map((h) => firstWord(h, 0));
  const found = head.map(() => false);
  let missing = headCount;
  const bit = (p: number): number => clock[p >>> 3]! & (1 << (p & 7));
  for (let k = 0; k < idCount; k++) {
    const id = ids.subarray(32 * k, 32 * k + 32);
    const h = bloomHashOf(id);
    if (bit(h & BLOOM_POSITION_MASK) === 0 || bit((h >>> 9) & BLOOM_POSITION_MASK) === 0 || bit((h >>> 18) & BLOOM_POSITION_MASK) === 0) {
      fail(`id ${k} is not in the causal clock`);
    }
    if (missing === 0) continue;
    const word = firstWord(ids, 32 * k);
    for (let i = 0; i < headCount; i++) {
      if (!found[i] && headWord[i] === word && bytesEqual(head[i]!, id)) {
        found[i] = true;
        missing--;
      }
    }
  }
  if (missing !== 0) fail(`frontier head ${found.indexOf(false)} is not one of the checkpoint's ids`);
}

/**
 * True if `bytes` are a whole version-1 checkpoint whose hash verifies: then it is no damage but
 * the earlier format, which this version refuses to read rather than skip (`LogFormatError`).
 * Version 1 differs only in the frontier ring's size, and hashed it the same way.
 */
function isIntactVersion1(bytes: Uint8Array, v: DataView): boolean {
  const cellCount = v.getUint32(32, true);
  const idCount = v.getUint32(36, true);
  const bodyBytes = v.getUint32(52, true);
  if (cellCount < 1 || cellCount > MAX_CELLS) return false;
  if (bodyBytes !== cellCount * STATE_CELL_BYTES + CLOCK_BYTES + VERSION_1_HEADS_BYTES + idCount * 32) return false;
  if (bytes.length !== CHECKPOINT_HEADER_BYTES + bodyBytes) return false;
  let at = CHECKPOINT_HEADER_BYTES;
  const take = (n: number): Uint8Array => bytes.subarray(at, (at += n));
  // Only the parts are hashed; the counts are in the header, which is hashed as bytes.
  const image: DomainImage = {
    cells: take(cellCount * STATE_CELL_BYTES),
    clock: take(CLOCK_BYTES),
    heads: take(VERSION_1_HEADS_BYTES),
    headStart: 0,
    headCount: 0,
    popcount: 0,
    ids: take(idCount * 32),
  };
  const header = bytes.subarray(0, CHECKPOINT_HEADER_BYTES);
  return bytesEqual(tieredHash(header, image), header.subarray(OFF_HASH, OFF_HASH + HASH_BYTES));
}

/**
 * Reads and verifies a checkpoint file; `CheckpointError` if anything is off, `LogFormatError` for
 * an intact checkpoint of the earlier format (version 1).
 */
export function readCheckpoint(file: string): Checkpoint {
  let bytes: Uint8Array;
  try {
    bytes = readFileAligned(file);
  } catch (error) {
    throw new CheckpointError(file, 'cannot be read', { cause: error });
  }
  return decodeCheckpoint(bytes, file);
}

/** Verifies and decodes checkpoint bytes (`name` is for messages); throws as `readCheckpoint`. */
export function decodeCheckpoint(bytes: Uint8Array, name = 'checkpoint'): Checkpoint {
  const fail = (why: string): never => {
    throw new CheckpointError(name, why);
  };
  if (bytes.length < CHECKPOINT_HEADER_BYTES) fail(`${bytes.length} bytes, shorter than a header`);
  const header = bytes.subarray(0, CHECKPOINT_HEADER_BYTES);
  const v = new DataView(bytes.buffer, bytes.byteOffset, CHECKPOINT_HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC) fail('not a checkpoint (bad magic)');
  const version = v.getUint32(4, true);
  if (version === VERSION_1 && isIntactVersion1(bytes, v)) {
    throw new LogFormatError(name, 'checkpoint version 1 (its frontier holds key numbers, not ids): a log of an earlier ctfs format, which this version does not read (docs/FORMATS.md §6)');
  }
  if (version !== VERSION) fail(`unsupported version ${version}`);
  const sequence = v.getUint32(12, true) * TWO_POW_32 + v.getUint32(8, true);
  const cellCount = v.getUint32(32, true);
  const idCount = v.getUint32(36, true);
  const headStart = v.getUint32(44, true);
  const headCount = v.getUint32(48, true);
  const bodyBytes = v.getUint32(52, true);
  // Sizes first, so a garbled count can never make us read out of bounds or allocate wildly.
  if (cellCount < 1 || cellCount > MAX_CELLS) fail(`bad cell count ${cellCount}`);
  if (headStart >= FRONTIER_WIDTH || headCount > FRONTIER_WIDTH) fail('bad frontier');
  const expectedBody = cellCount * STATE_CELL_BYTES + CLOCK_BYTES + FRONTIER_BYTES + idCount * 32;
  if (bodyBytes !== expectedBody || bytes.length !== CHECKPOINT_HEADER_BYTES + bodyBytes) {
    fail(`size mismatch: ${bytes.length} bytes for ${cellCount} cells and ${idCount} ids`);
  }
  if (sequence > Number.MAX_SAFE_INTEGER) fail('bad sequence');
  let at = CHECKPOINT_HEADER_BYTES;
  // Views, not copies: the ids alone can be tens of MiB, and fresh copies page-fault.
  const take = (n: number): Uint8Array => {
    const part = bytes.subarray(at, at + n);
    at += n;
    return part;
  };
  const cells = take(cellCount * STATE_CELL_BYTES);
  const clock = take(CLOCK_BYTES);
  const heads = take(FRONTIER_BYTES);
  const ids = take(idCount * 32);
  const image: DomainImage = { cells, clock, heads, headStart, headCount, popcount: v.getUint32(40, true), ids };
  const stored = header.slice(OFF_HASH, OFF_HASH + HASH_BYTES);
  if (!bytesEqual(tieredHash(header, image), stored)) fail('hash mismatch: the checkpoint is damaged');
  checkConsistent(image, fail);
  return {
    sequence,
    logId: header.slice(16, 16 + LOG_ID_BYTES),
    createdAt: v.getUint32(60, true) * TWO_POW_32 + v.getUint32(56, true),
    image,
    hash: stored,
  };
}
