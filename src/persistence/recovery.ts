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
import {
  admitCodeName,
  CheckpointError,
  DurableDataLostError,
  InvalidArgumentError,
  InvariantMismatchError,
  LogFormatError,
  ManifestError,
  WalCorruptionError,
} from '../errors.js';
import type { CausalDomain } from '../domain/causal-domain.js';
import { checkpointFileName, parseCheckpointFileName, readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { faultPoint, fsyncDirectory, listSegments, readFileAligned, removeStaleFiles, type SegmentFile } from './data-dir.js';
import { manifestUnusable, readManifest, type Manifest } from './manifest.js';
import { LOG_ID_BYTES, SEGMENT_HEADER_BYTES, decodeSegmentHeader, encodeSegmentHeader, otherSegmentVersion, parseSegmentFileName, segmentFileName } from './segment.js';
import { scanLog, type RecordVisitor, type ScanResult, type TornTail } from './wal-scan.js';
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
  /**
   * The end of the batch that was being written when the process died, dropped: it lies past
   * the durable sequence the manifest recorded, and no later batch follows it, so none of it was
   * acknowledged. Never set for damage to anything the manifest says was fsynced (that is a
   * `DurableDataLostError`, or with `salvage` the `salvage` entry).
   */
  readonly tornTail: TornTail | undefined;
  /** What the manifest said; undefined for a new log or a salvage without one. */
  readonly manifest: { readonly durable: number; readonly closed: boolean; readonly damagedCopies: readonly string[] } | undefined;
  /** Stale files deleted at open (temporary files of interrupted writes, torn segments set aside earlier). */
  readonly removedFiles: readonly string[];
  /** Set when an open with `salvage: true` went on past something it would otherwise refuse. */
  readonly salvage: SalvageReport | undefined;
  /** Hex of the log's id. */
  readonly logId: string;
  readonly durationMs: number;
}

/** What a salvage went past. */
export interface SalvageReport {
  /** The refusal a normal open would have thrown (its code and message). */
  readonly code: string;
  readonly reason: string;
  /** Sequences from here on that the log held (or the manifest says were fsynced) are not recovered. */
  readonly lostFrom: number;
  /** The last sequence known lost (undefined: unknown, the log's end cannot be read). */
  readonly lostTo: number | undefined;
  /** Segments after the recovered end, renamed to `<name>.salvaged-<ms>` (kept as evidence, never read). */
  readonly setAside: readonly string[];
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

/** How `inspectLog` is told about the kernel it recovers into (nothing, for `verifyLog`). */
export interface InspectOptions {
  readonly salvage: boolean;
  /** The opening kernel's invariant identity and cell count, checked against the manifest. */
  readonly identity?: Uint8Array | undefined;
  readonly cellCount?: number | undefined;
  /**
   * Takes a checkpoint that verified: checks it fits and installs it; throws `CheckpointError`
   * to reject it (recovery then tries the next older one).
   */
  readonly accept: (checkpoint: Checkpoint, file: string) => void;
  /** No checkpoint verified: start from this initial state (the manifest's), if known. */
  readonly startFromInitial: (cells: Uint8Array | undefined) => void;
  readonly visit: RecordVisitor;
}

export interface Inspection {
  /** The directory holds no log (open: a new one is to be created). */
  readonly empty: boolean;
  readonly manifest: Manifest | undefined;
  readonly damagedManifests: readonly string[];
  readonly checkpoint: Checkpoint | undefined;
  readonly checkpointFile: string | undefined;
  readonly rejectedCheckpoints: readonly { readonly file: string; readonly reason: string }[];
  readonly scan: ScanResult | undefined;
  readonly logId: Uint8Array | undefined;
  /** With `salvage`: what a normal open would have refused. */
  readonly refused: { readonly error: Error & { code: string }; readonly lostFrom: number; readonly lostTo: number | undefined } | undefined;
}

/** True if no segment holds more than a header: a log whose creation never got to its first record. */
function noRecords(dir: string): boolean {
  return listSegments(dir).every(({ file }) => fs.statSync(file).size <= SEGMENT_HEADER_BYTES);
}

/**
 * The checks open and `verifyLog` share: the manifest (present, verifying, of this log, of this
 * invariant), the newest checkpoint that verifies and fits, every WAL record from there on, and
 * the comparison of what was read with what the manifest says was fsynced. Throws the typed
 * error a refusal is (with `salvage`, returns it in `refused` instead, when going on can recover
 * a readable prefix: never for another invariant or an unsupported format).
 */
export function inspectLog(dir: string, options: InspectOptions): Inspection {
  const { salvage } = options;
  const read = readManifest(dir);
  const damagedManifests = read.problems.map((p) => p.file);
  const manifest = read.manifest;
  const checkpoints = listCheckpoints(dir);
  const segments = listSegments(dir);
  let refused: Inspection['refused'];

  // A crash while creating a log, before its manifest, leaves at most checkpoint 0 and a segment
  // without records: nothing was ever admitted. With no checkpoint the log is started again;
  // with checkpoint 0 it is recovered from it (it holds the initial state), and only from it.
  const unfinished = manifest === undefined && read.present === 0 && checkpoints.every((c) => c.sequence === 0) && noRecords(dir);
  if (manifest === undefined) {
    if ((checkpoints.length === 0 && segments.length === 0) || (unfinished && checkpoints.length === 0)) {
      return { empty: true, manifest: undefined, damagedManifests, checkpoint: undefined, checkpointFile: undefined, rejectedCheckpoints: [], scan: undefined, logId: undefined, refused: undefined };
    }
    // A log written before manifests existed: its segments say so.
    const first = segments[0];
    if (first !== undefined && read.present === 0) {
      const head = readHead(first.file);
      const version = otherSegmentVersion(head);
      if (version !== undefined) throw new LogFormatError(first.file, `segment version ${version} and no manifest: a log of an earlier ctfs format, which this version does not read (docs/FORMATS.md §6)`);
    }
    if (!unfinished) {
      const error = manifestUnusable(dir, read);
      if (!salvage) throw error;
      refused = { error, lostFrom: 1, lostTo: undefined };
    }
  } else {
    if (options.identity !== undefined && !bytesEqual(options.identity, manifest.identity)) {
      throw new InvariantMismatchError(`${dir} was created with another invariant (or one configured differently) than this kernel's; open it with the invariant it was created with`);
    }
    const cells = manifest.cells.length / STATE_CELL_BYTES;
    if (options.cellCount !== undefined && cells !== options.cellCount) {
      throw new InvariantMismatchError(`${dir} was created with ${cells} state cells, this kernel has ${options.cellCount}`);
    }
  }

  const rejectedCheckpoints: { file: string; reason: string }[] = [];
  let checkpoint: Checkpoint | undefined;
  let checkpointFile: string | undefined;
  for (const { file, sequence } of checkpoints) {
    try {
      const candidate = readCheckpoint(file);
      if (candidate.sequence !== sequence) throw new CheckpointError(file, `holds sequence ${candidate.sequence}, its name says ${sequence}`);
      if (manifest !== undefined && !bytesEqual(candidate.logId, manifest.logId)) throw new CheckpointError(file, 'belongs to another log (log id differs from the manifest)');
      options.accept(candidate, file);
      checkpoint = candidate;
      checkpointFile = file;
      break;
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      rejectedCheckpoints.push({ file, reason: error.message });
    }
  }
  if (checkpoint === undefined) {
    if (manifest === undefined && (segments.length === 0 || unfinished) && rejectedCheckpoints.length > 0 && !salvage) {
      throw new CheckpointError(rejectedCheckpoints[0]!.file, 'no checkpoint verifies and there is no WAL to recover from');
    }
    // The manifest holds the initial state too: a lost or damaged checkpoint 0 costs nothing.
    options.startFromInitial(manifest?.cells);
  }

  const scan = scanLog(dir, {
    fromSequence: (checkpoint?.sequence ?? 0) + 1,
    logId: checkpoint?.logId ?? manifest?.logId,
    visit: options.visit,
    salvage,
  });
  const last = scan.lastSequence;
  if (scan.damage !== undefined) refused ??= { error: scan.damage, lostFrom: last + 1, lostTo: undefined };

  if (manifest !== undefined && refused === undefined) {
    const lost = checkDurable(dir, manifest, scan, listSegments(dir));
    if (lost !== undefined) {
      if (!salvage) throw lost;
      refused = { error: lost, lostFrom: lost.fromSequence, lostTo: lost.toSequence };
    }
  }
  const logId = scan.logId ?? checkpoint?.logId ?? manifest?.logId;
  return { empty: false, manifest, damagedManifests, checkpoint, checkpointFile, rejectedCheckpoints, scan, logId, refused };
}

function readHead(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const head = new Uint8Array(SEGMENT_HEADER_BYTES);
    const n = fs.readSync(fd, head, 0, SEGMENT_HEADER_BYTES, 0);
    return head.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Damage to what the manifest says was made durable: the readable records end before its
 * durable sequence (a truncated, emptied or damaged end of the log, a deleted last segment), or
 * the segment it says is being appended to is gone (with everything written to it after the
 * manifest, which nothing else records).
 */
function checkDurable(dir: string, manifest: Manifest, scan: ScanResult, segments: readonly SegmentFile[]): DurableDataLostError | undefined {
  const where = scan.tornTail ?? scan.end ?? { file: path.join(dir, segmentFileName(manifest.segment)), offset: 0 };
  const closed = manifest.closed ? 'the log was closed cleanly' : 'the log was fsynced up to its last segment start';
  if (scan.lastSequence < manifest.durable) {
    return new DurableDataLostError(closed, { file: where.file, offset: where.offset, fromSequence: scan.lastSequence + 1, toSequence: manifest.durable });
  }
  // Its header was fsynced before the manifest named it: a segment without one was emptied.
  if (scan.tornSegment !== undefined && parseSegmentFileName(path.basename(scan.tornSegment)) === manifest.segment) {
    return new DurableDataLostError('the segment the manifest names as the one being written has lost its header', {
      file: scan.tornSegment,
      offset: 0,
      fromSequence: manifest.segment,
      toSequence: manifest.durable >= manifest.segment ? manifest.durable : undefined,
    });
  }
  if (!segments.some((s) => s.firstSequence >= manifest.segment)) {
    const file = path.join(dir, segmentFileName(manifest.segment));
    return new DurableDataLostError(`segment ${file}, which the manifest names as the one being written, is missing`, {
      file,
      offset: 0,
      fromSequence: manifest.segment,
      toSequence: undefined,
    });
  }
  return undefined;
}

/**
 * Recovers the history in `dir` into `domain` (fresh, with its initial state set): restores the
 * newest checkpoint that verifies, replays the WAL after it, checks the result against the
 * manifest, and returns the report, the log id and the manifest to write once the append
 * segment exists. A directory with no log starts a new one, whose first checkpoint (sequence 0)
 * and manifest record the initial state.
 */
export function recoverDomain(
  dir: string,
  domain: CausalDomain,
  options: { readonly identity: Uint8Array; readonly salvage?: boolean },
): { report: RecoveryReport; logId: Uint8Array; manifest: Manifest } {
  const started = performance.now();
  const salvage = options.salvage === true;
  const removedFiles = removeStaleFiles(dir);
  const givenInitial = domain.exportImage(false).cells;

  let duplicates = 0;
  // The id and deps are copied word by word into arrays reused for every record: replay runs at
  // a million records a second, and a view object per dep would be most of its garbage.
  const id = new Uint8Array(32);
  const idWords = new Uint32Array(id.buffer);
  const depPool = Array.from({ length: MAX_DEPS }, () => new Uint8Array(32));
  const depWords = depPool.map((d) => new Uint32Array(d.buffer));
  const deps: Uint8Array[] = [];
  let initialCells = givenInitial;
  const inspection = inspectLog(dir, {
    salvage,
    identity: options.identity,
    cellCount: domain.cellCount,
    accept(candidate, file) {
      checkCompatible(candidate, domain, file);
      try {
        domain.restoreImage(candidate.image);
      } catch (error) {
        // A duplicate id: the hash only proves the bytes are the writer's.
        if (error instanceof InvalidArgumentError) throw new CheckpointError(file, error.message);
        throw error;
      }
    },
    startFromInitial(cells) {
      if (cells !== undefined) initialCells = cells;
      const split: Uint8Array[] = [];
      for (let i = 0; i < initialCells.length / STATE_CELL_BYTES; i++) split.push(initialCells.subarray(i * STATE_CELL_BYTES, (i + 1) * STATE_CELL_BYTES));
      domain.reset(split);
    },
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
        // Not damage: the kernel was opened with a limit (or a budget) below its own history.
        throw new InvalidArgumentError(`the log holds more facts than the kernel may: ${domain.index.horizonMessage()}; open it with a larger indexCapacity or historyBudgetBytes`);
      } else if (code !== AdmitCode.Ok) {
        throw new WalCorruptionError(`record cannot be replayed (${admitCodeName(code)})`, { file, offset: fileOffset, sequence });
      }
    },
  });

  if (inspection.empty) {
    const logId = new Uint8Array(randomBytes(LOG_ID_BYTES));
    writeCheckpoint(dir, 0, logId, domain.exportImage());
    return {
      report: {
        created: true,
        checkpoint: { file: path.join(dir, checkpointFileName(0)), sequence: 0 },
        rejectedCheckpoints: [],
        replayed: 0,
        duplicates: 0,
        lastSequence: 0,
        tornTail: undefined,
        manifest: undefined,
        removedFiles,
        salvage: undefined,
        logId: toHex(logId),
        durationMs: performance.now() - started,
      },
      logId,
      manifest: { generation: 0, logId, closed: false, durable: 0, segment: 1, identity: options.identity, cells: givenInitial },
    };
  }

  const { manifest, checkpoint, scan, refused } = inspection;
  const lastSequence = scan!.lastSequence;
  let logId = inspection.logId;
  if (logId === undefined) {
    if (!salvage) throw new ManifestError(dir, 'no file of the log says which log it is');
    logId = new Uint8Array(randomBytes(LOG_ID_BYTES));
  }
  if (manifest !== undefined) initialCells = manifest.cells;
  else if (checkpoint?.sequence === 0) initialCells = checkpoint.image.cells.slice();
  let salvageReport: SalvageReport | undefined;
  if (refused !== undefined) {
    // Whatever follows the recovered end is set aside, never read again: the log continues
    // right after it, and a later segment would otherwise shadow or contradict the new records.
    const setAside: string[] = [];
    const suffix = `.salvaged-${Date.now()}`;
    for (const segment of listSegments(dir)) {
      if (segment.firstSequence <= lastSequence) continue;
      fs.renameSync(segment.file, segment.file + suffix);
      setAside.push(segment.file + suffix);
    }
    if (setAside.length > 0) fsyncDirectory(dir);
    salvageReport = { code: refused.error.code, reason: refused.error.message, lostFrom: refused.lostFrom, lostTo: refused.lostTo, setAside };
  }
  // The records recovery read may still be only in the page cache (a killed process's last
  // batch): they are synced before the manifest says they are durable.
  const tail = listSegments(dir).at(-1);
  if (tail !== undefined) fsyncFile(tail.file);
  return {
    report: {
      created: false,
      checkpoint: checkpoint === undefined ? undefined : { file: inspection.checkpointFile!, sequence: checkpoint.sequence },
      rejectedCheckpoints: inspection.rejectedCheckpoints,
      replayed: scan!.visited - duplicates,
      duplicates,
      lastSequence,
      tornTail: scan!.tornTail,
      manifest: manifest === undefined ? undefined : { durable: manifest.durable, closed: manifest.closed, damagedCopies: inspection.damagedManifests },
      removedFiles,
      salvage: salvageReport,
      logId: toHex(logId),
      durationMs: performance.now() - started,
    },
    logId,
    manifest: {
      generation: manifest?.generation ?? 0,
      logId,
      closed: false,
      durable: lastSequence,
      segment: lastSequence + 1,
      identity: options.identity,
      cells: initialCells,
    },
  };
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint this kernel can take: the same number of state cells, and ids within its capacity. */
export function checkCompatible(checkpoint: Checkpoint, domain: CausalDomain, file: string): void {
  const cells = checkpoint.image.cells.length / STATE_CELL_BYTES;
  if (cells !== domain.cellCount) throw new CheckpointError(file, `has ${cells} state cells, the kernel ${domain.cellCount}`);
  const ids = checkpoint.image.ids.length / 32;
  if (ids > domain.index.capacity) {
    // Not damage: the kernel was opened too small for its own history.
    throw new InvalidArgumentError(`${file} holds ${ids} facts; open the kernel with indexCapacity ≥ ${ids} (it has ${domain.index.capacity}), or without one`);
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
  faultPoint('create', file);
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
