/**
 * The data directory of a durable kernel: WAL segments, checkpoints and a lock file, plus the
 * file operations that make them crash-safe (directory fsync, atomic replace, aligned reads).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LogLockedError } from '../errors.js';
import { parseSegmentFileName } from './segment.js';

const LOCK_FILE = 'LOCK';

/** A file operation of the data directory, as named to `storageFaults`. */
export type StorageOp = 'lock' | 'write' | 'create';

/**
 * @internal Test seam: when set, called before each file operation on the main thread's side of
 * the data directory (taking the lock, writing a file atomically, creating a segment); it may
 * throw an error shaped like the system's (`code` = `ENOSPC`, `EROFS`, …) to simulate a disk
 * that refuses. The persistence worker has its own (`FaultPlan`).
 */
export const storageFaults: { before?: ((op: StorageOp, file: string) => void) | undefined } = {};

/** @internal Runs the test seam, if set. */
export function faultPoint(op: StorageOp, file: string): void {
  storageFaults.before?.(op, file);
}

/**
 * Files this library leaves behind only when a process dies or an atomic write fails: a
 * checkpoint or manifest temporary file (written, fsynced, then renamed; never read), and a
 * segment renamed aside because a crash left torn bytes under the name a new segment needed
 * (recovery never reads them: every record in them is past the recovered end of the log).
 */
const STALE_FILES = [/^checkpoint-[0-9a-f]{16}\.ckpt\.tmp$/, /^MANIFEST\.[12]\.tmp$/, /^wal-[0-9a-f]{16}\.log\.torn-[0-9]+$/];

/**
 * Deletes the stale files of `dir` (see STALE_FILES) — only regular files with exactly those
 * names, and only by a caller that holds the directory's lock, so no other kernel can be writing
 * them. Segments set aside by a salvage (`.salvaged-…`) are evidence and are kept. Returns the
 * names removed.
 */
export function removeStaleFiles(dir: string): string[] {
  const removed: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !STALE_FILES.some((re) => re.test(entry.name))) continue;
    fs.rmSync(path.join(dir, entry.name), { force: true });
    removed.push(entry.name);
  }
  if (removed.length > 0) fsyncDirectory(dir);
  return removed;
}

/** Makes a directory's entries (created, renamed, deleted files) durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `bytes` to `file` atomically: a temporary file in the same directory, fsync, rename over
 * `file`, fsync of the directory. After a crash `file` holds either the old or the new bytes.
 */
export function writeFileAtomic(file: string, chunks: readonly Uint8Array[]): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      faultPoint('write', tmp);
      for (const chunk of chunks) {
        let done = 0;
        while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (error) {
    // A full disk must not also keep the partial copy (checkpoints can be hundreds of MB).
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // a read-only or vanished directory: the original error is the one to report
    }
    throw error;
  }
  fsyncDirectory(path.dirname(file));
}

/**
 * The whole file in a fresh, 8-byte aligned buffer (a `Buffer` from `readFileSync` may sit at any
 * offset of a shared pool, and records are read as 32-bit words).
 */
export function readFileAligned(file: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bytes = new Uint8Array(new ArrayBuffer((size + 7) & ~7), 0, size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, bytes, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? bytes : bytes.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

export interface SegmentFile {
  readonly file: string;
  /** The first sequence its name promises (its header is checked when it is read). */
  readonly firstSequence: number;
}

/** WAL segments in `dir`, by first sequence. */
export function listSegments(dir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of fs.readdirSync(dir)) {
    const first = parseSegmentFileName(name);
    if (first > 0) out.push({ file: path.join(dir, name), firstSequence: first });
  }
  return out.sort((a, b) => a.firstSequence - b.firstSequence);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the directory's lock: a `LOCK` file holding the owner's pid, created exclusively. A lock
 * left by a process that no longer exists (a crash) is taken over; one held by a live process,
 * or by another kernel in this process, is refused with `LogLockedError`. Returns the release
 * function.
 */
export function lockDirectory(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      faultPoint('lock', file);
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          fs.unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile: try again
    }
    if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) {
      const who = owner === process.pid ? 'another kernel in this process' : `process ${owner}`;
      throw new LogLockedError(`${dir} is in use by ${who}`);
    }
    fs.rmSync(file, { force: true }); // a dead owner's lock
  }
  throw new LogLockedError(`could not take the lock of ${dir}`);
}
