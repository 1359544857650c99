/**
 * SegmentReader: reads files front to back through one reusable, 8-byte aligned window. Recovery
 * reads every segment once; a fresh buffer per file would page-fault its whole length on first
 * touch (~11 µs per 4 KiB page on these VMs, more than the reading itself), a reused window
 * only once.
 */
import * as fs from 'node:fs';

/** 1 MiB: many records per read(2), few pages to fault in, and far more than one largest record. */
export const READ_WINDOW_BYTES = 1 << 20;

export class SegmentReader {
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  /** Size of the open file. */
  size = 0;
  private fd = -1;
  /** File offset of `bytes[0]`, and how many bytes from there are loaded. */
  private start = 0;
  private filled = 0;

  constructor(windowBytes = READ_WINDOW_BYTES) {
    const buffer = new ArrayBuffer(windowBytes);
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
  }

  open(file: string): void {
    this.close();
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
    this.start = 0;
    this.filled = 0;
  }

  /**
   * Loads file bytes from `offset` (8-byte aligned, never before the previous call's offset) so
   * that at least min(`n`, rest of the file) of them are in the window; returns where `offset`
   * is in `bytes`. `n` must not exceed the window.
   */
  window(offset: number, n: number): number {
    const local = offset - this.start;
    if (local + Math.min(n, this.size - offset) <= this.filled) return local;
    const keep = Math.max(0, this.filled - local);
    if (keep > 0) this.bytes.copyWithin(0, local, this.filled);
    this.start = offset;
    this.filled = keep;
    while (this.filled < this.bytes.length && this.start + this.filled < this.size) {
      const read = fs.readSync(this.fd, this.bytes, this.filled, this.bytes.length - this.filled, this.start + this.filled);
      if (read === 0) break;
      this.filled += read;
    }
    return 0;
  }

  /** Loaded bytes from window offset `local` on. */
  loaded(local: number): number {
    return this.filled - local;
  }

  /** The file from `offset` to its end, in a fresh aligned buffer (for the rare damage analysis). */
  rest(offset: number): Uint8Array {
    const n = Math.max(0, this.size - offset);
    const out = new Uint8Array(new ArrayBuffer((n + 7) & ~7), 0, n);
    let done = 0;
    while (done < n) {
      const read = fs.readSync(this.fd, out, done, n - done, offset + done);
      if (read === 0) break;
      done += read;
    }
    return out.subarray(0, done);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
