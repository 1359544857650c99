/**
 * Records the admitting thread and the replication worker exchange through their two SpscRings
 * (docs/FORMATS.md §9). One layout both ways:
 *
 *   0  u32 length (the ring's message length word; a multiple of 8)
 *   4  u8  kind (RecordKind)
 *   5  u8  dep count
 *   6  u16 admission code (Refused), else 0
 *   8  u32 sequence, low word    } the fact's WAL sequence (Local records of a durable kernel),
 *  12  u32 sequence, high word   } else 0
 *  16  u32 payload length
 *  20  u32 reserved, 0
 *  24  id (32 bytes), deps (32 bytes each), payload, zero padding to a multiple of 8
 *
 * `Admitted` and `Refused` records are answers to `Admit` records, in the order the `Admit`s
 * came, so they carry no fact at all: the worker still holds the fact it handed over.
 */
import type { WireFact } from '../replication/frames.js';
import type { SpscRing } from '../core/spsc-ring.js';
import type { ByteSlab } from './byte-slab.js';

export const RecordKind = {
  /** kernel → net: a fact this node admitted from its own writer (in admission order). */
  Local: 1,
  /** kernel → net: the oldest unanswered `Admit` was admitted. */
  Admitted: 2,
  /** kernel → net: the oldest unanswered `Admit` was refused, with the code. */
  Refused: 3,
  /** net → kernel: a verified fact whose deps the worker has seen admitted: admit it. */
  Admit: 4,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export const RECORD_HEADER_BYTES = 24;
const ID_BYTES = 32;
const TWO_POW_32 = 2 ** 32;

/** Bytes of a record carrying a fact of this shape (header, id, deps, payload, padding). */
export function recordBytes(depCount: number, payloadLength: number): number {
  return (RECORD_HEADER_BYTES + ID_BYTES * (1 + depCount) + payloadLength + 7) & ~7;
}

/** Bytes of an answer record (`Admitted`, `Refused`): the header alone. */
export const ANSWER_RECORD_BYTES = RECORD_HEADER_BYTES;

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

/** Writes the header of a record at byte `at` of `b` (a ring's data after `reserve`, or a record of its own). */
export function writeHeader(b: Uint8Array, at: number, bytes: number, kind: RecordKind, depCount: number, code: number, sequence: number, payloadLength: number): void {
  writeU32(b, at, bytes);
  writeU32(b, at + 4, kind | (depCount << 8) | (code << 16));
  writeU32(b, at + 8, sequence % TWO_POW_32);
  writeU32(b, at + 12, Math.floor(sequence / TWO_POW_32));
  writeU32(b, at + 16, payloadLength);
  writeU32(b, at + 20, 0);
}

/** Writes a whole fact record (header and body) at byte `at` of `b`; cannot fail once reserved. */
export function writeFactRecord(b: Uint8Array, at: number, bytes: number, kind: RecordKind, sequence: number, id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): void {
  writeHeader(b, at, bytes, kind, deps.length, 0, sequence, payload.length);
  let p = at + RECORD_HEADER_BYTES;
  b.set(id, p);
  p += ID_BYTES;
  for (let d = 0; d < deps.length; d++, p += ID_BYTES) b.set(deps[d]!, p);
  b.set(payload, p);
  p += payload.length;
  b.fill(0, p, at + bytes);
}

/** The header fields of the record at byte `offset` of the ring's data. */
export interface RecordHeader {
  kind: number;
  depCount: number;
  code: number;
  sequence: number;
  payloadLength: number;
}

export function readHeader(ring: SpscRing, offset: number, out: RecordHeader): RecordHeader {
  const w = ring.words;
  const i = offset >>> 2;
  const word = w[i + 1]!;
  out.kind = word & 0xff;
  out.depCount = (word >>> 8) & 0xff;
  out.code = word >>> 16;
  out.sequence = w[i + 2]! + w[i + 3]! * TWO_POW_32;
  out.payloadLength = w[i + 4]!;
  return out;
}

/**
 * The fact of the record at `offset`, copied out of the ring (whose space is reused) in one copy
 * into `slab`; id, deps and payload are views of that copy.
 */
export function copyFact(ring: SpscRing, offset: number, header: RecordHeader, slab: ByteSlab): WireFact {
  const start = offset + RECORD_HEADER_BYTES;
  const length = ID_BYTES * (1 + header.depCount) + header.payloadLength;
  const own = slab.take(length);
  own.set(ring.bytes.subarray(start, start + length));
  let p = ID_BYTES;
  const deps: Uint8Array[] = new Array(header.depCount);
  for (let d = 0; d < header.depCount; d++, p += ID_BYTES) deps[d] = own.subarray(p, p + ID_BYTES);
  return { id: own.subarray(0, ID_BYTES), deps, payload: own.subarray(p, p + header.payloadLength) };
}

/** Views of the fact of the record at `offset` in the ring's own memory (valid until released). */
export function viewFact(ring: SpscRing, offset: number, header: RecordHeader, deps: Uint8Array[]): { id: Uint8Array; payload: Uint8Array } {
  const b = ring.bytes;
  let p = offset + RECORD_HEADER_BYTES;
  const id = b.subarray(p, p + ID_BYTES);
  p += ID_BYTES;
  deps.length = header.depCount;
  for (let d = 0; d < header.depCount; d++, p += ID_BYTES) deps[d] = b.subarray(p, p + ID_BYTES);
  return { id, payload: b.subarray(p, p + header.payloadLength) };
}
