/**
 * Verification of a data directory without opening a kernel: the same checks recovery makes
 * (`inspectLog`, shared code) — the manifest, every checkpoint's hash and consistency, every WAL
 * record recovery would replay (CRC, sequence continuity, log id), the torn-tail versus
 * corruption decision, and what the manifest says was made durable — so it refuses, with the
 * same typed error, whatever `DurableKernel.open` would refuse. What it cannot check without the
 * kernel: the invariant's identity and the kernel's `indexCapacity` limit. Read-only, so it can run in a pool
 * thread beside a live kernel (an unfinished last batch then shows as a torn tail).
 */
import { statSync } from 'node:fs';
import { ExactCausalIndex } from '../causal/exact-index.js';
import { CheckpointError, InvalidArgumentError, asStorageError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { readCheckpoint } from './checkpoint.js';
import { inspectLog, listCheckpoints } from './recovery.js';
import { type TornTail } from './wal-scan.js';
import { recordPayloadLength } from './wal-record.js';

export interface CheckpointVerification {
  readonly file: string;
  readonly sequence: number;
  /** Why it fails verification; undefined if it verifies. */
  readonly problem: string | undefined;
}

export interface LogVerification {
  /** Every checkpoint, newest first. */
  readonly checkpoints: readonly CheckpointVerification[];
  /** The first sequence checked: after the newest verified checkpoint, else 1. */
  readonly fromSequence: number;
  /** The last valid sequence. */
  readonly lastSequence: number;
  /** Records verified. */
  readonly records: number;
  /** Payload bytes in them. */
  readonly payloadBytes: number;
  readonly segments: number;
  /** Set when the last segment ends in a torn batch (what recovery would cut off). */
  readonly tornTail: TornTail | undefined;
  /** What the manifest says was fsynced, and whether the log was closed cleanly (undefined: no log). */
  readonly manifest: { readonly durable: number; readonly closed: boolean } | undefined;
}

/**
 * Verifies `dir`; throws the typed error open would (`WalCorruptionError`, `DurableDataLostError`,
 * `ManifestError`, `CheckpointError`, `LogFormatError`; `StorageError` if it cannot be read).
 */
export function verifyLog(dir: string): LogVerification {
  if (typeof dir !== 'string' || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InvalidArgumentError(`${describeValue(dir)} is not a directory`);
  }
  try {
    return verify(dir);
  } catch (error) {
    throw asStorageError(error, `cannot verify ${dir}`);
  }
}

function verify(dir: string): LogVerification {
  const checkpoints: CheckpointVerification[] = [];
  let records = 0;
  let payloadBytes = 0;
  const inspection = inspectLog(dir, {
    salvage: false,
    accept(checkpoint, file) {
      // What restoring it into a kernel would find: no id twice.
      const ids = checkpoint.image.ids.length / 32;
      const seen = new ExactCausalIndex({ capacity: Math.max(1, ids) });
      for (let k = 0; k < ids; k++) {
        if (!seen.insert(checkpoint.image.ids.subarray(32 * k, 32 * k + 32))) throw new CheckpointError(file, `id ${k} appears twice`);
      }
    },
    startFromInitial: () => undefined,
    visit: (_bytes, words, offset) => {
      records++;
      payloadBytes += recordPayloadLength(words, offset >>> 2);
    },
  });
  // Every checkpoint's own verdict, for the report (recovery stops at the first that verifies).
  for (const { file, sequence } of listCheckpoints(dir)) {
    const rejected = inspection.rejectedCheckpoints.find((r) => r.file === file);
    let problem = rejected?.reason;
    if (problem === undefined && file !== inspection.checkpointFile) {
      try {
        const checkpoint = readCheckpoint(file);
        if (checkpoint.sequence !== sequence) problem = `holds sequence ${checkpoint.sequence}, its name says ${sequence}`;
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        problem = error.message;
      }
    }
    checkpoints.push({ file, sequence, problem });
  }
  const scan = inspection.scan;
  return {
    checkpoints,
    fromSequence: (inspection.checkpoint?.sequence ?? 0) + 1,
    lastSequence: scan?.lastSequence ?? 0,
    records,
    payloadBytes,
    segments: scan?.segments ?? 0,
    tornTail: scan?.tornTail,
    manifest: inspection.manifest === undefined ? undefined : { durable: inspection.manifest.durable, closed: inspection.manifest.closed },
  };
}
