/**
 * WAL segments: the log is a series of files `wal-<first sequence, 16 hex digits>.log`, each a
 * 64-byte header followed by records (wal-record.ts). Every open of a log starts a new segment,
 * and the persistence worker starts another when one grows past its size limit, so no byte that
 * was ever written is overwritten or truncated, and compaction after a checkpoint deletes whole
 * files. Layout in docs/FORMATS.md §6.
 *
 *   0  u32  magic "CTWS"
 *   4  u32  version 2 (version 1: a log from before the manifest, see manifest.ts)
 *   8  u64  first sequence number in this segment
 *  16  16B  log id (random, the same in every segment and checkpoint of one log)
 *  32  u32  header length (64)
 *  36  u32  the arena size of the run that created it, in bytes (informational: its largest batch)
 *  40  20B  zeros
 *  60  u32  CRC-32C of bytes [0, 60)
 */
import { crc32c } from './crc32c.js';

export const SEGMENT_MAGIC = 0x53575443; // "CTWS"
/** 2: the log has a manifest (manifest.ts). Version 1 segments are refused with `LogFormatError`. */
export const SEGMENT_VERSION = 2;
export const SEGMENT_HEADER_BYTES = 64;
export const LOG_ID_BYTES = 16;
const TWO_POW_32 = 0x1_0000_0000;

export interface SegmentHeader {
  readonly firstSequence: number;
  readonly logId: Uint8Array;
  readonly maxBatchBytes: number;
}

/** File name of the segment whose first record has sequence `firstSequence`. */
export function segmentFileName(firstSequence: number): string {
  return `wal-${firstSequence.toString(16).padStart(16, '0')}.log`;
}

/** The first sequence a segment file name promises, or -1 if it is not a segment name. */
export function parseSegmentFileName(name: string): number {
  const m = /^wal-([0-9a-f]{16})\.log$/.exec(name);
  return m === null ? -1 : Number.parseInt(m[1]!, 16);
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint32(4, SEGMENT_VERSION, true);
  view.setUint32(8, header.firstSequence >>> 0, true);
  view.setUint32(12, Math.floor(header.firstSequence / TWO_POW_32), true);
  bytes.set(header.logId, 16);
  view.setUint32(32, SEGMENT_HEADER_BYTES, true);
  view.setUint32(36, header.maxBatchBytes, true);
  view.setUint32(60, crc32c(bytes, 0, 60), true);
  return bytes;
}

/** The version of an intact segment header of another version than this one reads, else undefined. */
export function otherSegmentVersion(bytes: Uint8Array): number | undefined {
  if (bytes.length < SEGMENT_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC || view.getUint32(60, true) !== crc32c(bytes, 0, 60)) return undefined;
  const version = view.getUint32(4, true);
  return version === SEGMENT_VERSION ? undefined : version;
}

/** The header at the start of `bytes`, or a reason it is not a valid one. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | string {
  if (bytes.length < SEGMENT_HEADER_BYTES) return `${bytes.length} bytes, shorter than a segment header`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) return 'not a WAL segment (bad magic)';
  if (view.getUint32(60, true) !== crc32c(bytes, 0, 60)) return 'segment header checksum mismatch';
  if (view.getUint32(4, true) !== SEGMENT_VERSION) return `unsupported segment version ${view.getUint32(4, true)}`;
  if (view.getUint32(32, true) !== SEGMENT_HEADER_BYTES) return 'bad segment header length';
  const firstSequence = view.getUint32(12, true) * TWO_POW_32 + view.getUint32(8, true);
  if (firstSequence < 1 || firstSequence > Number.MAX_SAFE_INTEGER) return `bad first sequence ${firstSequence}`;
  return {
    firstSequence,
    logId: bytes.slice(16, 16 + LOG_ID_BYTES),
    maxBatchBytes: view.getUint32(36, true),
  };
}
