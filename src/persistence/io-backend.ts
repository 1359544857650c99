/**
 * How the persistence worker writes a batch and makes it durable. Two backends with one contract:
 * write every range (in order, at consecutive file offsets, retrying short writes), then
 * fdatasync; throw an `IoFailure` on any error. Nothing is reported written before the write
 * returned, nothing durable before the sync returned.
 *
 * - `io_uring` (the native shim): zero-copy writev straight from the shared arena, linked to the
 *   fdatasync in one submission.
 * - `portable`: `fs.writevSync` + `fs.fdatasyncSync` in the worker (same arena views, no copy).
 *
 * Measured here, fdatasync dominates either way (docs/BENCHMARKS.md): the portable backend is
 * within noise at small batches.
 */
import * as fs from 'node:fs';
import { CtfsError, DurabilityError, NativeUnavailableError } from '../errors.js';
import { BackendId } from './durability-control.js';
import { loadNative, type NativeShim } from '../native/shim.js';

/** A write or sync error, with the system's code (`EIO`, `ENOSPC`, …). */
export class IoFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export type BackendChoice = 'auto' | 'uring' | 'portable';

export interface WalBackend {
  readonly id: BackendId;
  readonly name: 'io_uring' | 'portable';
  /**
   * Writes `ranges[0..2n)` ([start, length] pairs within `data`) at `fileOffset` and syncs.
   * `onWritten` runs between the write and the sync when the backend can tell them apart.
   * Returns the bytes written.
   */
  writeAndSync(fd: number, data: Uint8Array, ranges: Uint32Array, n: number, fileOffset: number, onWritten: () => void): number;
  /** Writes `bytes` at `fileOffset` and syncs (segment headers). */
  writeSmall(fd: number, bytes: Uint8Array, fileOffset: number): void;
  close(): void;
}

/**
 * The typed error a log fails with, for anything the worker caught: `NativeUnavailableError` when
 * io_uring was insisted on and is missing, a ctfs error as it is, and otherwise `DurabilityFailed`
 * with the system code as `ioCode` (`EWORKER` when there is none: a bug or a crash, not the disk).
 */
export function logFailure(error: unknown): CtfsError {
  if (error instanceof IoFailure && error.code === 'NativeUnavailable') return new NativeUnavailableError(error.message, { cause: error.cause });
  if (error instanceof CtfsError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof IoFailure ? error.cause : error;
  return new DurabilityError('DurabilityFailed', message, { ioCode: typeof code === 'string' ? code : 'EWORKER', cause });
}

const asIoFailure = (error: unknown, what: string): IoFailure => {
  const code = (error as NodeJS.ErrnoException)?.code ?? 'EIO';
  return new IoFailure(String(code), `${what} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
};

/** Ring entries: enough for one writev per range and the linked fsync, with room to spare. */
const URING_ENTRIES = 64;

class UringBackend implements WalBackend {
  readonly id = BackendId.IoUring;
  readonly name = 'io_uring' as const;
  private readonly ring: unknown;
  private readonly one = new Uint32Array(2);

  constructor(private readonly shim: NativeShim) {
    this.ring = shim.ringOpen(URING_ENTRIES);
  }

  writeAndSync(fd: number, data: Uint8Array, ranges: Uint32Array, n: number, fileOffset: number, onWritten: () => void): number {
    let written: number;
    try {
      written = this.shim.ringWrite(this.ring, fd, data, ranges.subarray(0, 2 * n), fileOffset, 1);
    } catch (error) {
      throw asIoFailure(error, 'io_uring write+fdatasync');
    }
    // One linked submission: the write and the sync complete together.
    onWritten();
    return written;
  }

  writeSmall(fd: number, bytes: Uint8Array, fileOffset: number): void {
    this.one[0] = 0;
    this.one[1] = bytes.length;
    try {
      this.shim.ringWrite(this.ring, fd, bytes, this.one, fileOffset, 1);
    } catch (error) {
      throw asIoFailure(error, 'io_uring header write');
    }
  }

  close(): void {
    this.shim.ringClose(this.ring);
  }
}

class PortableBackend implements WalBackend {
  readonly id = BackendId.Portable;
  readonly name = 'portable' as const;

  writeAndSync(fd: number, data: Uint8Array, ranges: Uint32Array, n: number, fileOffset: number, onWritten: () => void): number {
    let total = 0;
    try {
      for (let r = 0; r < n; r++) {
        const start = ranges[2 * r]!;
        const length = ranges[2 * r + 1]!;
        let done = 0;
        while (done < length) {
          const wrote = fs.writeSync(fd, data, start + done, length - done, fileOffset + total + done);
          if (wrote <= 0) throw new IoFailure('EIO', 'write returned 0 bytes');
          done += wrote;
        }
        total += length;
      }
    } catch (error) {
      throw error instanceof IoFailure ? error : asIoFailure(error, 'write');
    }
    onWritten();
    try {
      fs.fdatasyncSync(fd);
    } catch (error) {
      throw asIoFailure(error, 'fdatasync');
    }
    return total;
  }

  writeSmall(fd: number, bytes: Uint8Array, fileOffset: number): void {
    const one = new Uint32Array([0, bytes.length]);
    this.writeAndSync(fd, bytes, one, 1, fileOffset, () => undefined);
  }

  close(): void {}
}

/**
 * The backend for `choice`: `uring` (or `CTFS_IO=uring`) insists on io_uring and throws if it is
 * unavailable; `portable` never uses it; `auto` takes io_uring when the shim is built and
 * io_uring works, else the portable one. Returns the backend and, for `auto`, why io_uring was
 * not used.
 */
export function openBackend(choice: BackendChoice): { backend: WalBackend; note: string } {
  const env = process.env['CTFS_IO'];
  const wanted = env === 'uring' || env === 'portable' ? env : choice;
  if (wanted === 'portable') return { backend: new PortableBackend(), note: 'portable backend requested' };
  const { shim, reason } = loadNative();
  if (shim !== undefined) return { backend: new UringBackend(shim), note: '' };
  if (wanted === 'uring') throw new IoFailure('NativeUnavailable', `io_uring backend requested but unavailable: ${reason}`);
  return { backend: new PortableBackend(), note: reason };
}
