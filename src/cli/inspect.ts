/**
 * `ctfs inspect <dir>`: what a data directory holds — segments, checkpoints, the manifest, the
 * records and sequences — read-only, without opening a kernel (the checks are `verifyLog`'s, so a
 * directory open would refuse is reported with the same typed error).
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import Table from 'cli-table3';
import { listSegments } from '../persistence/data-dir.js';
import { listCheckpoints } from '../persistence/recovery.js';
import { readManifest } from '../persistence/manifest.js';
import { readCheckpoint } from '../persistence/checkpoint.js';
import { verifyLog } from '../persistence/verify.js';
import { toHex } from '../core/bytes.js';
import { loadNative } from '../native/shim.js';

export interface DirectoryReport {
  readonly dir: string;
  readonly segments: { readonly file: string; readonly firstSequence: number; readonly bytes: number }[];
  readonly checkpoints: { readonly file: string; readonly sequence: number; readonly bytes: number; readonly verified: boolean; readonly problem?: string }[];
  readonly manifest: { readonly logId: string; readonly generation: number; readonly durable: number; readonly closed: boolean; readonly cells: number } | undefined;
  /** Records in the WAL from the newest verified checkpoint on (what recovery replays). */
  readonly records: number;
  /** Facts the directory holds: those in the newest verified checkpoint plus the records after it. */
  readonly facts: number;
  readonly payloadBytes: number;
  /** Sequences `fromSequence`..`lastSequence` replayed; facts before them are in the checkpoint. */
  readonly fromSequence: number;
  readonly lastSequence: number;
  readonly tornTail: { readonly file: string; readonly offset: number } | undefined;
  /**
   * The I/O backend is not a property of the directory (both write the same bytes, and a log
   * written by one opens with the other): this says which one a kernel opened here with the
   * default `auto` would write with, and why not io_uring when it would not.
   */
  readonly backend: { readonly recorded: false; readonly here: 'io_uring' | 'portable'; readonly reason?: string };
}

function backendHere(): DirectoryReport['backend'] {
  const forced = process.env['CTFS_IO'];
  if (forced === 'portable') return { recorded: false, here: 'portable', reason: 'CTFS_IO=portable' };
  const { shim, reason } = loadNative();
  return shim !== undefined ? { recorded: false, here: 'io_uring' } : { recorded: false, here: 'portable', reason };
}

const sizeOf = (file: string): number => statSync(file).size;
/** No colour codes: the output goes to logs and pipes as often as to a terminal. */
const PLAIN = { head: [], border: [] };

/** Reads `dir` (throws the typed error `DurableKernel.open` would). */
export function inspectDirectory(dir: string): DirectoryReport {
  const verification = verifyLog(dir);
  const manifest = readManifest(dir).manifest;
  const problems = new Map(verification.checkpoints.map((c) => [c.file, c.problem]));
  const newest = verification.checkpoints.find((c) => c.problem === undefined);
  const inCheckpoint = newest === undefined ? 0 : readCheckpoint(newest.file).image.ids.length / 32;
  return {
    dir,
    segments: listSegments(dir).map((s) => ({ file: basename(s.file), firstSequence: s.firstSequence, bytes: sizeOf(s.file) })),
    checkpoints: listCheckpoints(dir).map((c) => {
      const problem = problems.get(c.file);
      return { file: basename(c.file), sequence: c.sequence, bytes: sizeOf(c.file), verified: problem === undefined, ...(problem === undefined ? {} : { problem }) };
    }),
    manifest:
      manifest === undefined
        ? undefined
        : { logId: toHex(manifest.logId), generation: manifest.generation, durable: manifest.durable, closed: manifest.closed, cells: manifest.cells.length / 64 },
    records: verification.records,
    facts: inCheckpoint + verification.records,
    payloadBytes: verification.payloadBytes,
    fromSequence: verification.fromSequence,
    lastSequence: verification.lastSequence,
    tornTail: verification.tornTail === undefined ? undefined : { file: basename(verification.tornTail.file), offset: verification.tornTail.offset },
    backend: backendHere(),
  };
}

/** The report as text: a summary, then a table of segments and one of checkpoints. */
export function formatDirectoryReport(r: DirectoryReport): string {
  const lines: string[] = [];
  lines.push(`data directory ${r.dir}`);
  if (r.manifest === undefined) lines.push('  no log yet (an open would create one)');
  else {
    lines.push(`  log ${r.manifest.logId.slice(0, 16)}…, manifest generation ${r.manifest.generation}, ${r.manifest.closed ? 'closed cleanly' : 'not closed (a crash or a live kernel)'}`);
    lines.push(`  ${r.facts} fact(s); last sequence ${r.lastSequence}; durable through ${r.manifest.durable}; ${r.manifest.cells} state cell(s)`);
    lines.push(`  recovery replays ${r.records} record(s) (${r.payloadBytes} payload bytes), sequences ${r.fromSequence}..${r.lastSequence}; the rest is in the newest checkpoint`);
    if (r.tornTail !== undefined) lines.push(`  torn tail: ${r.tornTail.file} from byte ${r.tornTail.offset} (an unfinished last batch; recovery drops it)`);
  }
  const why = r.backend.reason === undefined ? '' : ` (${r.backend.reason})`;
  lines.push(`  backend: not recorded (both write the same bytes); a kernel opened here writes with ${r.backend.here}${why}`);
  const segments = new Table({ head: ['segment', 'first sequence', 'bytes'], style: PLAIN });
  for (const s of r.segments) segments.push([s.file, s.firstSequence, s.bytes]);
  lines.push(segments.toString());
  const checkpoints = new Table({ head: ['checkpoint', 'sequence', 'bytes', 'verifies'], style: PLAIN });
  for (const c of r.checkpoints) checkpoints.push([c.file, c.sequence, c.bytes, c.verified ? 'yes' : `no: ${c.problem}`]);
  lines.push(checkpoints.toString());
  return lines.join('\n');
}
