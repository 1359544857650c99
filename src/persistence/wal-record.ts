/**
 * WalRecord: the bytes of one logged fact, identical in the arena and on disk (docs/FORMATS.md §6).
 *
 *   0  u32  record length in bytes (header + deps + payload + zero padding; a multiple of 8)
 *   4  u32  CRC-32C over bytes [0, 4) and [8, length): every header field, deps, payload, padding
 *   8  u32  magic "CTWR"
 *  12  u16  dependency count (0..16)
 *  14  u16  flags, 0
 *  16  u64  sequence number (1, 2, 3, … with no gaps across the whole log)
 *  24  u32  payload length
 *  28  32B  fact id
 *  60  u32  position in its batch (0 for the first record the worker wrote with it; see wal-scan.ts)
 *  64  32B × dependency count, then the payload, then zeros up to the length
 *
 * The length comes first because the arena is an SpscRing, whose messages start with their own
 * length; a length of 0 is where a log's written part ends.
 */
import { MAX_DEPS, MAX_PAYLOAD_BYTES } from '../core/fact.js';
import { crc32cWords } from './crc32c.js';

export const WAL_RECORD_MAGIC = 0x52575443; // "CTWR"
export const WAL_HEADER_BYTES = 64;
/** The largest record: 16 deps and a 64 KiB payload. */
export const MAX_WAL_RECORD_BYTES = WAL_HEADER_BYTES + MAX_DEPS * 32 + MAX_PAYLOAD_BYTES;
/** Sequence numbers stay below 2^53 so they are exact JavaScript numbers. */
const TWO_POW_32 = 0x1_0000_0000;

/** Header word indices (u32). */
const W_LENGTH = 0;
const W_CRC = 1;
const W_MAGIC = 2;
const W_COUNTS = 3;
const W_SEQ_LO = 4;
const W_SEQ_HI = 5;
const W_PAYLOAD_LENGTH = 6;
const W_ID = 7;
const W_BATCH_POSITION = 15;

/** Bytes a record with `depCount` deps and a `payloadLength`-byte payload takes. */
export function walRecordBytes(depCount: number, payloadLength: number): number {
  return (WAL_HEADER_BYTES + depCount * 32 + payloadLength + 7) & ~7;
}

/**
 * Writes a record (everything but the CRC, which `sealWalRecord` adds) at byte `offset` (8-byte
 * aligned) of `bytes`/`words`, two views of the same memory. `recordBytes` is
 * `walRecordBytes(deps.length, payload.length)`. The id is given as its eight little-endian
 * words; the deps are 32-byte arrays (checked by the caller).
 */
export function writeWalRecord(
  bytes: Uint8Array,
  words: Uint32Array,
  offset: number,
  recordBytes: number,
  sequence: number,
  idWords: Uint32Array,
  deps: readonly Uint8Array[],
  payload: Uint8Array,
): void {
  const w = offset >>> 2;
  const nDeps = deps.length;
  words[w + W_LENGTH] = recordBytes;
  words[w + W_MAGIC] = WAL_RECORD_MAGIC;
  words[w + W_COUNTS] = nDeps;
  words[w + W_SEQ_LO] = sequence >>> 0;
  words[w + W_SEQ_HI] = (sequence / TWO_POW_32) >>> 0;
  words[w + W_PAYLOAD_LENGTH] = payload.length;
  // The id as eight word stores: `set` of 32 bytes costs ~28 ns here, these a few.
  for (let k = 0; k < 8; k++) words[w + W_ID + k] = idWords[k]!;
  let at = offset + WAL_HEADER_BYTES;
  for (let d = 0; d < nDeps; d++) {
    bytes.set(deps[d]!, at);
    at += 32;
  }
  bytes.set(payload, at);
  at += payload.length;
  // The padding is part of the checksummed bytes and of the file: never leave old arena bytes there.
  const end = offset + recordBytes;
  while (at < end) bytes[at++] = 0;
}

/** CRC of the record at word index `w` whose length is `recordBytes`. */
function recordCrc(words: Uint32Array, w: number, recordBytes: number): number {
  return crc32cWords(words, w + W_CRC + 1, w + (recordBytes >>> 2), crc32cWords(words, w, w + W_CRC));
}

/**
 * Stores the record's position in its batch and its CRC (the persistence worker, just before the
 * write). Returns the record's length.
 */
export function sealWalRecord(words: Uint32Array, offset: number, positionInBatch: number): number {
  const w = offset >>> 2;
  const length = words[w + W_LENGTH]!;
  words[w + W_BATCH_POSITION] = positionInBatch;
  words[w + W_CRC] = recordCrc(words, w, length);
  return length;
}

export const RecordCheck = {
  Valid: 0,
  /** A length of 0: the written part of the log ends here. */
  End: 1,
  /** The length runs past the bytes available: a torn tail, or damage. */
  Truncated: 2,
  /** Bad length, magic, counts, flags, batch position or CRC. */
  Invalid: 3,
} as const;
export type RecordCheck = (typeof RecordCheck)[keyof typeof RecordCheck];

/**
 * Checks the record at byte `offset` (8-byte aligned) of `words`, with `available` bytes from
 * `offset` to the end of the data. Validates every field before the CRC, so a garbled length can
 * never make the check read out of bounds.
 */
export function checkWalRecord(words: Uint32Array, offset: number, available: number): RecordCheck {
  if (available < 8) return available === 0 || words[offset >>> 2] === 0 ? RecordCheck.End : RecordCheck.Truncated;
  const w = offset >>> 2;
  const length = words[w + W_LENGTH]!;
  if (length === 0) return RecordCheck.End;
  if (length < WAL_HEADER_BYTES || length > MAX_WAL_RECORD_BYTES || (length & 7) !== 0) return RecordCheck.Invalid;
  if (length > available) return RecordCheck.Truncated;
  const counts = words[w + W_COUNTS]!;
  const nDeps = counts & 0xffff;
  const payloadLength = words[w + W_PAYLOAD_LENGTH]!;
  if (
    words[w + W_MAGIC] !== WAL_RECORD_MAGIC ||
    counts >>> 16 !== 0 ||
    nDeps > MAX_DEPS ||
    payloadLength > MAX_PAYLOAD_BYTES ||
    walRecordBytes(nDeps, payloadLength) !== length ||
    words[w + W_BATCH_POSITION]! >= recordSequence(words, w)
  ) {
    return RecordCheck.Invalid;
  }
  return recordCrc(words, w, length) === words[w + W_CRC] ? RecordCheck.Valid : RecordCheck.Invalid;
}

/** Field readers for a record at word index `w` (offset / 4). */
export const recordLength = (words: Uint32Array, w: number): number => words[w + W_LENGTH]!;
export const recordSequence = (words: Uint32Array, w: number): number => words[w + W_SEQ_HI]! * TWO_POW_32 + words[w + W_SEQ_LO]!;
export const recordDepCount = (words: Uint32Array, w: number): number => words[w + W_COUNTS]! & 0xffff;
/** Sequence of the first record of the batch this record was written with. */
export const recordBatchStart = (words: Uint32Array, w: number): number => recordSequence(words, w) - words[w + W_BATCH_POSITION]!;
export const recordPayloadLength = (words: Uint32Array, w: number): number => words[w + W_PAYLOAD_LENGTH]!;
/** Byte offset of the id within a record. */
export const RECORD_ID_OFFSET = 4 * W_ID;

/**
 * The fact a record at byte `offset` holds, copied out of `bytes` (a scan's window is reused, so a
 * fact kept beyond the visit must own its bytes): id, deps, payload.
 */
export function copyRecordFact(bytes: Uint8Array, words: Uint32Array, offset: number): { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array } {
  const w = offset >>> 2;
  const depCount = recordDepCount(words, w);
  const payloadLength = recordPayloadLength(words, w);
  const id = bytes.slice(offset + RECORD_ID_OFFSET, offset + RECORD_ID_OFFSET + 32);
  const deps: Uint8Array[] = [];
  let p = offset + WAL_HEADER_BYTES;
  for (let d = 0; d < depCount; d++, p += 32) deps.push(bytes.slice(p, p + 32));
  return { id, deps, payload: bytes.slice(p, p + payloadLength) };
}
