/**
 * Opening a data directory: recovery (newest verified checkpoint, then every later WAL record
 * replayed through the kernel's admission path), the segment new records are appended to, and
 * compaction after a checkpoint. Nothing here ever truncates or overwrites a byte of the log.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AdmitCode } from '../codes.js';
import { MAX_DEPS } from '../core/fact.js';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { bytesEqual, toHex } from '../core/bytes.js';
import { admitCodeName, CheckpointError, InvalidArgumentError, WalCorruptionError } from '../errors.js';
import type { CausalDomain } from '../domain/causal-domain.js';
import { checkpointFileName, parseCheckpointFileName, readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { fsyncDirectory, listSegments, readFileAligned } from './data-dir.js';
import { LOG_ID_BYTES, SEGMENT_HEADER_BYTES, decodeSegmentHeader, encodeSegmentHeader, segmentFileName } from './segment.js';
import { scanLog, type TornTail } from './wal-scan.js';
import { RECORD_ID_OFFSET, WAL_HEADER_BYTES, recordDepCount, recordPayloadLength } from './wal-record.js';

export interface RecoveryReport {
  /** True if the directory held no log: a new one was started. */
  readonly created: boolean;
  /** The checkpoint recovery started from (the newest that verified). */
  readonly checkpoint: { readonly file: string; readonly sequence: number } | undefined;
  /** Newer checkpoints that failed verification and were skipped, with the reason. */
  readonly rejectedCheckpoints: readonly { readonly file: string; readonly reason: string }[];
  /** WAL records replayed after the checkpoint. */
  readonly replayed: number;
  /** Records the log held twice (skipped: a fact is never applied twice). */
  readonly duplicates: number;
  /** The last sequence in the log; new facts continue after it. */
  readonly lastSequence: number;
  /** The end of the last batch written before a crash, dropped (none of it was acknowledged durable). */
  readonly tornTail: TornTail | undefined;
  /** Hex of the log's id. */
  readonly logId: string;
  readonly durationMs: number;
}

/** Checkpoint files in `dir`, newest first. */
export function listCheckpoints(dir: string): { file: string; sequence: number }[] {
  const out: { file: string; sequence: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const sequence = parseCheckpointFileName(name);
    if (sequence >= 0) out.push({ file: path.join(dir, name), sequence });
  }
  return out.sort((a, b) => b.sequence - a.sequence);
}

/**
 * Recovers the history in `dir` into `domain` (fresh, with its initial state set): restores the
 * newest checkpoint that verifies, replays the WAL after it, and returns the report and the log
 * id. A directory with neither checkpoints nor segments starts a new log, whose first checkpoint
 * (sequence 0) records the initial state.
 */
export function recoverDomain(dir: string, domain: CausalDomain): { report: RecoveryReport; logId: Uint8Array } {
  const started = performance.now();
  const rejectedCheckpoints: { file: string; reason: string }[] = [];
  let checkpoint: Checkpoint | undefined;
  let checkpointFile: string | undefined;
  for (const { file, sequence } of listCheckpoints(dir)) {
    try {
      const candidate = readCheckpoint(file);
      if (candidate.sequence !== sequence) throw new CheckpointError(file, `holds sequence ${candidate.sequence}, its name says ${sequence}`);
      checkCompatible(candidate, domain, file);
      checkpoint = candidate;
      checkpointFile = file;
      break;
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      rejectedCheckpoints.push({ file, reason: error.message });
    }
  }
  const segments = listSegments(dir);
  if (checkpoint === undefined && segments.length === 0) {
    if (rejectedCheckpoints.length > 0) {
      throw new CheckpointError(rejectedCheckpoints[0]!.file, 'no checkpoint verifies and there is no WAL to recover from');
    }
    const logId = new Uint8Array(randomBytes(LOG_ID_BYTES));
    writeCheckpoint(dir, 0, logId, domain.exportImage());
    return {
      report: {
        created: true,
        checkpoint: { file: path.join(dir, checkpointFileName(0)), sequence: 0 },
        rejectedCheckpoints,
        replayed: 0,
        duplicates: 0,
        lastSequence: 0,
        tornTail: undefined,
        logId: toHex(logId),
        durationMs: performance.now() - started,
      },
      logId,
    };
  }
  if (checkpoint !== undefined) domain.restoreImage(checkpoint.image);

  let duplicates = 0;
  // The id and deps are copied word by word into arrays reused for every record: replay runs at
  // a million records a second, and a view object per dep would be most of its garbage.
  const id = new Uint8Array(32);
  const idWords = new Uint32Array(id.buffer);
  const depPool = Array.from({ length: MAX_DEPS }, () => new Uint8Array(32));
  const depWords = depPool.map((d) => new Uint32Array(d.buffer));
  const deps: Uint8Array[] = [];
  const scan = scanLog(dir, {
    fromSequence: (checkpoint?.sequence ?? 0) + 1,
    logId: checkpoint?.logId,
    visit(bytes, words, offset, sequence, file, fileOffset) {
      const w = offset >>> 2;
      const nDeps = recordDepCount(words, w);
      const idAt = w + RECORD_ID_OFFSET / 4;
      for (let k = 0; k < 8; k++) idWords[k] = words[idAt + k]!;
      deps.length = nDeps;
      let at = w + WAL_HEADER_BYTES / 4;
      for (let d = 0; d < nDeps; d++, at += 8) {
        const dw = depWords[d]!;
        for (let k = 0; k < 8; k++) dw[k] = words[at + k]!;
        deps[d] = depPool[d]!;
      }
      const payloadAt = 4 * at;
      const code = domain.tryAdmit(id, deps, bytes.subarray(payloadAt, payloadAt + recordPayloadLength(words, w)));
      if (code === AdmitCode.DuplicateFact) duplicates++;
      else if (code === AdmitCode.CausalHorizonExceeded) {
        // Not damage: the kernel was opened too small for its own history.
        throw new InvalidArgumentError(`the log holds more than ${domain.index.capacity} facts; open the kernel with a larger indexCapacity`);
      } else if (code !== AdmitCode.Ok) {
        throw new WalCorruptionError(`record cannot be replayed (${admitCodeName(code)})`, { file, offset: fileOffset, sequence });
      }
    },
  });
  const logId = scan.logId ?? checkpoint!.logId;
  return {
    report: {
      created: false,
      checkpoint: checkpoint === undefined ? undefined : { file: checkpointFile!, sequence: checkpoint.sequence },
      rejectedCheckpoints,
      replayed: scan.visited - duplicates,
      duplicates,
      lastSequence: scan.lastSequence,
      tornTail: scan.tornTail,
      logId: toHex(logId),
      durationMs: performance.now() - started,
    },
    logId,
  };
}

/** A checkpoint this kernel can take: the same number of state cells, and ids within its capacity. */
export function checkCompatible(checkpoint: Checkpoint, domain: CausalDomain, file: string): void {
  const cells = checkpoint.image.cells.length / STATE_CELL_BYTES;
  if (cells !== domain.cellCount) throw new CheckpointError(file, `has ${cells} state cells, the kernel ${domain.cellCount}`);
  const ids = checkpoint.image.ids.length / 32;
  if (ids > domain.index.capacity) {
    // Not damage: the kernel was opened too small for its own history.
    throw new InvalidArgumentError(`${file} holds ${ids} facts; open the kernel with indexCapacity ≥ ${ids} (it has ${domain.index.capacity})`);
  }
}

/**
 * The segment new records go to, starting at `firstSequence`: created (header written, synced,
 * directory synced), or reused if a previous run created it and wrote no record into it. A file
 * of that name holding anything else (a crash's torn bytes) is renamed aside, never overwritten.
 */
export function openAppendSegment(dir: string, firstSequence: number, logId: Uint8Array, maxBatchBytes: number): string {
  const file = path.join(dir, segmentFileName(firstSequence));
  if (fs.existsSync(file)) {
    if (fs.statSync(file).size === SEGMENT_HEADER_BYTES && listSegments(dir).at(-1)?.file === file) {
      // Reused only if its header is whole and is exactly the header this run would write.
      const header = decodeSegmentHeader(readFileAligned(file));
      if (typeof header !== 'string' && header.firstSequence === firstSequence && bytesEqual(header.logId, logId) && header.maxBatchBytes === maxBatchBytes) {
        return file;
      }
    }
    fs.renameSync(file, `${file}.torn-${Date.now()}`);
  }
  const fd = fs.openSync(file, 'wx');
  try {
    fs.writeSync(fd, encodeSegmentHeader({ firstSequence, logId, maxBatchBytes }));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDirectory(dir);
  return file;
}

export interface CompactionResult {
  readonly deletedSegments: readonly string[];
  readonly deletedCheckpoints: readonly string[];
}

/**
 * Keeps the newest `keep` checkpoints and deletes older ones, then every segment whose records
 * all lie at or below the oldest kept checkpoint — so recovery can still fall back to any kept
 * checkpoint and replay the WAL from there. The last segment is never deleted (the worker may be
 * appending to it). Positions are sequences, never byte offsets, so nothing else moves.
 */
export function compactLog(dir: string, keep: number): CompactionResult {
  const checkpoints = listCheckpoints(dir);
  if (checkpoints.length <= keep) return { deletedSegments: [], deletedCheckpoints: [] };
  const oldestKept = checkpoints[keep - 1]!.sequence;
  const deletedCheckpoints = checkpoints.slice(keep).map((c) => c.file);
  const segments = listSegments(dir);
  const deletedSegments: string[] = [];
  for (let i = 0; i + 1 < segments.length; i++) {
    if (segments[i + 1]!.firstSequence - 1 <= oldestKept) deletedSegments.push(segments[i]!.file);
  }
  for (const file of [...deletedSegments, ...deletedCheckpoints]) fs.rmSync(file, { force: true });
  fsyncDirectory(dir);
  return { deletedSegments, deletedCheckpoints };
}
