/**
 * Reading a log back: every segment in order, every record checked (CRC, fields, sequence
 * continuity, log id), each record from `fromSequence` on handed to a visitor.
 *
 * Where the valid records stop, the scan decides between two very different things:
 * - a **torn tail**: the end of the last batch the worker was writing when the process died. No
 *   fact there was ever acknowledged durable (acknowledgement follows the fsync, and the worker
 *   writes a batch only after the previous one is fsynced), so recovery drops it and goes on;
 * - **corruption**: damage to records that were fsynced (and perhaps acknowledged). Recovery
 *   must not guess, so the scan throws `WalCorruptionError` naming the place.
 * Every record carries its position in its batch, so a valid record after the damage says where
 * its batch began. If some batch began after the damaged record, the damaged record's batch was
 * complete and fsynced before that one was written: corruption. If every valid record after it
 * belongs to the damaged record's own batch (or none follows), that batch is the torn tail.
 * Damage in a segment that is not the last is always corruption, and so is a gap in the
 * sequence, a segment of another log, or a record that cannot be replayed.
 */
import { LogFormatError, WalCorruptionError } from '../errors.js';
import { bytesEqual } from '../core/bytes.js';
import { listSegments } from './data-dir.js';
import { SegmentReader } from './segment-reader.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, otherSegmentVersion } from './segment.js';
import {
  MAX_WAL_RECORD_BYTES,
  RecordCheck,
  checkWalRecord,
  recordBatchStart,
  recordLength,
  recordSequence,
} from './wal-record.js';

/**
 * Called for each record in order; `offset` is its byte offset in `bytes` (= `words` × 4), `fileOffset`
 * its offset in `file`. The views are valid only during the call (the window is reused).
 */
export type RecordVisitor = (bytes: Uint8Array, words: Uint32Array, offset: number, sequence: number, file: string, fileOffset: number) => void;

export interface TornTail {
  readonly file: string;
  /** Where the valid records end. */
  readonly offset: number;
  /** Bytes from there to the end of the file. */
  readonly bytes: number;
  /** Complete, valid records inside the torn batch after the damage (dropped with it). */
  readonly droppedRecords: number;
}

export interface ScanResult {
  /** The last valid sequence (fromSequence - 1 if the log has nothing new). */
  readonly lastSequence: number;
  /** Records handed to the visitor. */
  readonly visited: number;
  /** Segment files read. */
  readonly segments: number;
  /** The log id found in the segments, if any. */
  readonly logId: Uint8Array | undefined;
  /** Set when the last segment ends in a torn batch. */
  readonly tornTail: TornTail | undefined;
  /** A last segment whose header was never completely written (a crash while starting it). */
  readonly tornSegment: string | undefined;
  /** The last segment, if it holds no valid record (it can be replaced). */
  readonly emptyLastSegment: string | undefined;
  /** Where the valid records end: the last segment read and the byte after its last valid record (undefined: no segment read). */
  readonly end: { readonly file: string; readonly offset: number } | undefined;
  /** With `salvage`: the damage the scan stopped at instead of throwing. */
  readonly damage: WalCorruptionError | undefined;
}

export interface ScanOptions {
  /** The first sequence the caller needs: 1, or a checkpoint's sequence + 1. */
  readonly fromSequence: number;
  /** The log id the segments must carry (from a checkpoint); any single id if undefined. */
  readonly logId?: Uint8Array | undefined;
  readonly visit?: RecordVisitor;
  /** Stop at corruption (reported as `damage`, records before it kept) instead of throwing. */
  readonly salvage?: boolean;
}

/** Scans the log in `dir`; throws `WalCorruptionError` on corruption. */
export function scanLog(dir: string, options: ScanOptions): ScanResult {
  const { fromSequence, visit } = options;
  let logId = options.logId;
  const segments = listSegments(dir);
  let expected = -1;
  let visited = 0;
  let tornTail: TornTail | undefined;
  let tornSegment: string | undefined;
  let emptyLastSegment: string | undefined;
  let end: { file: string; offset: number } | undefined;
  let damage: WalCorruptionError | undefined;

  const reader = new SegmentReader();
  try {
    for (let i = 0; i < segments.length; i++) {
      const { file, firstSequence: named } = segments[i]!;
      const last = i === segments.length - 1;
      // A segment whose every record precedes `fromSequence` (the next one starts at or before
      // it) holds nothing the caller needs: not even read. Compaction deletes such segments.
      if (!last && segments[i + 1]!.firstSequence <= fromSequence) continue;
      reader.open(file);
      const size = reader.size;
      const segmentEnd = { file, offset: 0 };
      end = segmentEnd;
      const at = reader.window(0, SEGMENT_HEADER_BYTES);
      const headerBytes = reader.bytes.subarray(at, at + Math.min(size, SEGMENT_HEADER_BYTES));
      const header = decodeSegmentHeader(headerBytes);
      if (typeof header === 'string') {
        const version = otherSegmentVersion(headerBytes);
        if (version !== undefined) {
          throw new LogFormatError(file, `segment version ${version}; this version of ctfs reads version 2 logs only (see docs/FORMATS.md §6)`);
        }
        // A crash between creating a segment and fsyncing its header leaves a short or zeroed file.
        if (last && size <= SEGMENT_HEADER_BYTES) {
          tornSegment = file;
          break;
        }
        throw new WalCorruptionError(header, { file, offset: 0, sequence: Math.max(expected, named) });
      }
      if (header.firstSequence !== named) {
        throw new WalCorruptionError(`header says first sequence ${header.firstSequence}, the name ${named}`, { file, offset: 0, sequence: named });
      }
      if (logId === undefined) logId = header.logId;
      else if (!bytesEqual(logId, header.logId)) {
        throw new WalCorruptionError('segment belongs to another log (log id differs)', { file, offset: 0, sequence: named });
      }
      if (expected < 0) {
        if (header.firstSequence > fromSequence) {
          throw new WalCorruptionError(`records ${fromSequence}..${header.firstSequence - 1} are missing`, { file, offset: 0, sequence: fromSequence });
        }
        expected = header.firstSequence;
      }
      if (header.firstSequence > expected && header.firstSequence - 1 >= fromSequence) {
        throw new WalCorruptionError(`records ${expected}..${header.firstSequence - 1} are missing`, { file, offset: 0, sequence: expected });
      }
      expected = Math.max(expected, header.firstSequence);
      // Records past the next segment's start are the torn tail of an earlier run: never read them.
      const limit = last ? Number.MAX_SAFE_INTEGER : segments[i + 1]!.firstSequence - 1;
      const { bytes, words } = reader;
      let offset = SEGMENT_HEADER_BYTES;
      segmentEnd.offset = offset;
      const firstInSegment = expected;
      while (expected <= limit) {
        const local = reader.window(offset, MAX_WAL_RECORD_BYTES);
        const check = checkWalRecord(words, local, reader.loaded(local));
        if (check === RecordCheck.Valid) {
          const sequence = recordSequence(words, local >>> 2);
          if (sequence !== expected) {
            throw new WalCorruptionError(`record has sequence ${sequence}`, { file, offset, sequence: expected });
          }
          if (sequence >= fromSequence && visit !== undefined) {
            visit(bytes, words, local, sequence, file, offset);
            visited++;
          }
          expected++;
          offset += recordLength(words, local >>> 2);
          segmentEnd.offset = offset;
          continue;
        }
        if (!last) {
          if (expected >= fromSequence) {
            throw new WalCorruptionError(`segment ends before sequence ${limit}`, { file, offset, sequence: expected });
          }
          break;
        }
        // Segments are never pre-zeroed, so a file ends exactly after its last written byte: any
        // bytes past the valid records (even a zero length word) are damage to classify.
        if (offset < size) tornTail = classifyDamage(reader.rest(offset), offset, expected, file);
        break;
      }
      if (last && expected === firstInSegment && tornTail === undefined) emptyLastSegment = file;
    }
  } catch (error) {
    // Every record before the damage was visited, none after: the log up to `expected` - 1 stands.
    if (!(options.salvage === true && error instanceof WalCorruptionError)) throw error;
    damage = error;
    tornTail = undefined;
  } finally {
    reader.close();
  }
  return {
    lastSequence: Math.max(expected, fromSequence) - 1,
    visited,
    segments: segments.length,
    logId,
    tornTail,
    tornSegment,
    emptyLastSegment,
    end,
    damage,
  };
}

/**
 * Torn tail or corruption, for damage at byte `offset` of the last segment where sequence
 * `expected` should be; `rest` holds the file from there on (see the module comment).
 */
function classifyDamage(rest: Uint8Array, offset: number, expected: number, file: string): TornTail {
  const words = new Uint32Array(rest.buffer, rest.byteOffset, rest.buffer.byteLength >>> 2);
  const size = rest.length;
  let droppedRecords = 0;
  for (let p = 8; p + 8 <= size; p += 8) {
    if (checkWalRecord(words, p, size - p) !== RecordCheck.Valid) continue;
    const w = p >>> 2;
    if (recordSequence(words, w) <= expected) continue;
    if (recordBatchStart(words, w) > expected) {
      throw new WalCorruptionError('damaged record followed by valid records of a later batch', { file, offset, sequence: expected });
    }
    droppedRecords++;
    p += recordLength(words, w) - 8;
  }
  return { file, offset, bytes: size, droppedRecords };
}
