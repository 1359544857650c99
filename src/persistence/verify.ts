/**
 * Verification of a data directory without opening a kernel: every checkpoint's hash, and every
 * WAL record recovery would replay (CRC, sequence continuity, log id), with the same torn-tail
 * versus corruption decision. Read-only, so it can run in a pool thread beside a live kernel (an
 * unfinished last batch then shows as a torn tail).
 */
import { statSync } from 'node:fs';
import { CheckpointError, InvalidArgumentError } from '../errors.js';
import { readCheckpoint } from './checkpoint.js';
import { listCheckpoints } from './recovery.js';
import { scanLog, type TornTail } from './wal-scan.js';
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
}

/** Verifies `dir`; throws `WalCorruptionError` where recovery would refuse the log. */
export function verifyLog(dir: string): LogVerification {
  if (typeof dir !== 'string' || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InvalidArgumentError(`${String(dir)} is not a directory`);
  }
  const checkpoints: CheckpointVerification[] = [];
  let fromSequence = 1;
  let logId: Uint8Array | undefined;
  let anchored = false;
  for (const { file, sequence } of listCheckpoints(dir)) {
    let problem: string | undefined;
    try {
      const checkpoint = readCheckpoint(file);
      if (checkpoint.sequence !== sequence) problem = `holds sequence ${checkpoint.sequence}, its name says ${sequence}`;
      else if (!anchored) {
        // Recovery starts from the newest checkpoint that verifies, and requires its log id.
        anchored = true;
        fromSequence = sequence + 1;
        logId = checkpoint.logId;
      }
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      problem = error.message;
    }
    checkpoints.push({ file, sequence, problem });
  }
  let records = 0;
  let payloadBytes = 0;
  const scan = scanLog(dir, {
    fromSequence,
    logId,
    visit: (_bytes, words, offset) => {
      records++;
      payloadBytes += recordPayloadLength(words, offset >>> 2);
    },
  });
  return { checkpoints, fromSequence, lastSequence: scan.lastSequence, records, payloadBytes, segments: scan.segments, tornTail: scan.tornTail };
}
