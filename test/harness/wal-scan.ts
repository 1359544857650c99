/**
 * The crash harness's own reading of a data directory: WAL segments and checkpoints parsed from
 * the documented byte layout (docs/FORMATS.md), not through the library's reader, so a reader bug
 * cannot hide itself. Only the CRC-32C and hex encoding come from the library (passed in, so the
 * caller decides which copy). test/wal-scan.test.ts checks every number below against the
 * library's own constants and encoders.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What the scanner needs from the library. */
export interface ScanLibrary {
  crc32c(bytes: Uint8Array, from?: number, to?: number, crc?: number): number;
  toHex(bytes: Uint8Array): string;
}

/** The on-disk layout, as the scanner reads it. */
export const LAYOUT = {
  segment: {
    magic: 0x53575443, // "CTWS"
    headerBytes: 64,
    /** u64 first sequence. */
    firstSequenceAt: 8,
    /** CRC-32C of header bytes [0, crcAt). */
    crcAt: 60,
    name: /^wal-([0-9a-f]{16})\.log$/,
  },
  record: {
    magic: 0x52575443, // "CTWR"
    headerBytes: 64,
    /** u32 length (header + deps + payload + padding, a multiple of 8). */
    lengthAt: 0,
    /** u32 CRC-32C over bytes [0, 4) and [8, length). */
    crcAt: 4,
    magicAt: 8,
    /** u16 dependency count. */
    depCountAt: 12,
    /** u64 sequence. */
    sequenceAt: 16,
    /** u32 payload length. */
    payloadLengthAt: 24,
    /** 32-byte fact id. */
    idAt: 28,
    /** Deps (32 bytes each) start after the header, then the payload. */
    depBytes: 32,
  },
  checkpoint: {
    headerBytes: 128,
    /** u64 sequence. */
    sequenceAt: 8,
    /** u32 cell count (64 bytes each). */
    cellsAt: 32,
    /** u32 id count (32 bytes each). */
    idCountAt: 36,
    cellBytes: 64,
    /** Between the cells and the ids: the Bloom clock (64) and the frontier ring (8 ids of 32 bytes). */
    clockBytes: 64,
    headsBytes: 256,
    name: /^checkpoint-([0-9a-f]{16})\.ckpt$/,
  },
} as const;

const TWO_POW_32 = 0x1_0000_0000;

function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO_POW_32 + view.getUint32(at, true);
}

export interface ScannedRecord {
  readonly sequence: number;
  /** Hex. */
  readonly id: string;
  readonly deps: string[];
  readonly payload: string;
  /** Byte offset in the segment. */
  readonly offset: number;
}

export interface ScannedSegment {
  readonly name: string;
  /** The first sequence the file name promises. */
  readonly named: number;
  readonly size: number;
  headerOk: boolean;
  /** The first sequence the header says (the named one if the header is bad). */
  first: number;
  readonly records: ScannedRecord[];
  /** Bytes after the last valid record (or the whole file if the header is bad). */
  tailBytes: number;
}

/** One segment file's bytes: its header, the valid records from the start (stopping at the first one that is not), and how many bytes follow them. */
export function scanSegment(lib: ScanLibrary, name: string, named: number, bytes: Uint8Array): ScannedSegment {
  const S = LAYOUT.segment;
  const R = LAYOUT.record;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const seg: ScannedSegment = { name, named, size: bytes.length, headerOk: false, first: named, records: [], tailBytes: 0 };
  if (bytes.length < S.headerBytes || view.getUint32(0, true) !== S.magic || view.getUint32(S.crcAt, true) !== lib.crc32c(bytes, 0, S.crcAt)) {
    seg.tailBytes = bytes.length;
    return seg;
  }
  seg.headerOk = true;
  seg.first = u64(view, S.firstSequenceAt);
  let off: number = S.headerBytes;
  while (off + R.headerBytes <= bytes.length) {
    const length = view.getUint32(off + R.lengthAt, true);
    if (length < R.headerBytes || length % 8 !== 0 || off + length > bytes.length) break;
    if (view.getUint32(off + R.magicAt, true) !== R.magic) break;
    const crc = lib.crc32c(bytes, off + R.magicAt, off + length, lib.crc32c(bytes, off, off + R.crcAt));
    if (crc !== view.getUint32(off + R.crcAt, true)) break;
    const nDeps = view.getUint16(off + R.depCountAt, true);
    const payloadLength = view.getUint32(off + R.payloadLengthAt, true);
    const deps: string[] = [];
    const depsAt = off + R.headerBytes;
    for (let d = 0; d < nDeps; d++) deps.push(lib.toHex(bytes.subarray(depsAt + R.depBytes * d, depsAt + R.depBytes * (d + 1))));
    const p = depsAt + R.depBytes * nDeps;
    seg.records.push({
      sequence: u64(view, off + R.sequenceAt),
      id: lib.toHex(bytes.subarray(off + R.idAt, off + R.idAt + 32)),
      deps,
      payload: lib.toHex(bytes.subarray(p, p + payloadLength)),
      offset: off,
    });
    off += length;
  }
  seg.tailBytes = bytes.length - off;
  return seg;
}

/** Every segment in `dir`, in name (so sequence) order. */
export function scanSegments(lib: ScanLibrary, dir: string): ScannedSegment[] {
  const out: ScannedSegment[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const m = LAYOUT.segment.name.exec(name);
    if (m === null) continue;
    out.push(scanSegment(lib, name, Number.parseInt(m[1]!, 16), new Uint8Array(fs.readFileSync(path.join(dir, name)))));
  }
  return out;
}

export interface ScannedCheckpoint {
  readonly name: string;
  /** The sequence the file name promises. */
  readonly sequence: number;
  /** Hex ids in admission order. */
  readonly ids: string[];
  /** Why the file is not what its name promises (sizes checked, hash not). */
  problem: string | undefined;
}

/** One checkpoint file's bytes: its sequence and ids. */
export function scanCheckpoint(lib: ScanLibrary, name: string, sequence: number, bytes: Uint8Array): ScannedCheckpoint {
  const C = LAYOUT.checkpoint;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entry: ScannedCheckpoint = { name, sequence, ids: [], problem: undefined };
  if (bytes.length < C.headerBytes) {
    entry.problem = `${bytes.length} bytes`;
    return entry;
  }
  const cells = view.getUint32(C.cellsAt, true);
  const count = view.getUint32(C.idCountAt, true);
  const at = C.headerBytes + C.cellBytes * cells + C.clockBytes + C.headsBytes;
  if (u64(view, C.sequenceAt) !== sequence) entry.problem = `header sequence ${u64(view, C.sequenceAt)}`;
  else if (bytes.length !== at + 32 * count) entry.problem = `size ${bytes.length} for ${cells} cells and ${count} ids`;
  else for (let i = 0; i < count; i++) entry.ids.push(lib.toHex(bytes.subarray(at + 32 * i, at + 32 * i + 32)));
  return entry;
}

/** Every checkpoint file in `dir`, oldest first. */
export function scanCheckpoints(lib: ScanLibrary, dir: string): ScannedCheckpoint[] {
  const out: ScannedCheckpoint[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = LAYOUT.checkpoint.name.exec(name);
    if (m === null) continue;
    out.push(scanCheckpoint(lib, name, Number.parseInt(m[1]!, 16), new Uint8Array(fs.readFileSync(path.join(dir, name)))));
  }
  return out.sort((a, b) => a.sequence - b.sequence);
}
