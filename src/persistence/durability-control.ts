/**
 * DurabilityControl: the shared words through which the persistence worker tells every thread how
 * far the log is written and fsynced, whether it failed, and what it has done (for metrics).
 * Written only by the worker (and by the kernel when the worker dies); read by anyone.
 *
 * Sequences are 64-bit values stored as two u32 words; the worker writes the high word first and
 * readers retry until they read the same high word on both sides of the low word. Waiters sleep on
 * the low word of the durable watermark, which the worker notifies after every batch.
 */
import { decodeWire, encodeWire, fromWire, toWire } from '../error-wire.js';
import { SharedMemoryError, type CtfsError } from '../errors.js';
import { checkSharedHeader } from '../core/shared-header.js';

/** "CTDC" little-endian. */
const MAGIC = 0x43445443;
/** 2: the failure is an error's wire form (version 1 held `code|message`). */
const LAYOUT_VERSION = 2;
/** Int32 word indices; each group on its own 128-byte block (separate cache lines for writers and pollers). */
const W_MAGIC = 0;
const W_VERSION = 1;
/** Watermarks: low word, then high word. */
const W_WRITTEN_LO = 128 / 4;
const W_DURABLE_LO = 256 / 4;
const W_STATUS = 384 / 4;
const W_BACKEND = W_STATUS + 1;
/** Counters (u32 pairs lo/hi): batches, records, bytes, fsyncs, segments started; and the last batch's fsync time in µs. */
const W_STATS = 512 / 4;
const STAT_COUNT = 5;
const W_LAST_SYNC_MICROS = W_STATS + 2 * STAT_COUNT;
/** The failure: the error's wire form (`error-wire.ts`) as UTF-8 JSON, stacks left out. */
const W_ERROR_LENGTH = 640 / 4;
const OFF_ERROR_TEXT = 640 + 8;
const ERROR_TEXT_BYTES = 384;
const CONTROL_BYTES = 1024 + 64;
const TWO_POW_32 = 0x1_0000_0000;

export const LogStatus = {
  Starting: 0,
  Running: 1,
  /** A write or fsync failed: the log is poisoned until it is reopened. */
  Failed: 2,
  /** Closed in order: everything staged before `close()` is durable. */
  Closed: 3,
} as const;
export type LogStatus = (typeof LogStatus)[keyof typeof LogStatus];

export const BackendId = { None: 0, IoUring: 1, Portable: 2 } as const;
export type BackendId = (typeof BackendId)[keyof typeof BackendId];

export const Stat = { Batches: 0, Records: 1, Bytes: 2, Fsyncs: 3, Segments: 4 } as const;
export type Stat = (typeof Stat)[keyof typeof Stat];

export class DurabilityControl {
  readonly buffer: SharedArrayBuffer;
  /** The words; `Atomics.wait` on `durableWord` to sleep until the watermark moves. */
  readonly ctl: Int32Array;
  readonly durableWord = W_DURABLE_LO;
  readonly writtenWord = W_WRITTEN_LO;
  readonly statusWord = W_STATUS;

  constructor(buffer?: SharedArrayBuffer) {
    if (buffer === undefined) {
      this.buffer = new SharedArrayBuffer(CONTROL_BYTES);
      this.ctl = new Int32Array(this.buffer);
      this.ctl[W_MAGIC] = MAGIC;
      this.ctl[W_VERSION] = LAYOUT_VERSION;
    } else {
      checkSharedHeader(buffer, MAGIC, LAYOUT_VERSION, 'a durability control block', CONTROL_BYTES);
      if (buffer.byteLength !== CONTROL_BYTES) throw new SharedMemoryError(`a durability control block is ${CONTROL_BYTES} bytes`);
      this.buffer = buffer;
      this.ctl = new Int32Array(buffer);
    }
  }

  private load64(lo: number): number {
    const ctl = this.ctl;
    for (;;) {
      const hi = Atomics.load(ctl, lo + 1);
      const low = Atomics.load(ctl, lo) >>> 0;
      if (Atomics.load(ctl, lo + 1) === hi) return (hi >>> 0) * TWO_POW_32 + low;
    }
  }

  private store64(lo: number, value: number): void {
    Atomics.store(this.ctl, lo + 1, Math.floor(value / TWO_POW_32));
    Atomics.store(this.ctl, lo, value >>> 0);
  }

  /** Highest sequence written to the file (the OS has it: it survives a process crash). */
  get written(): number {
    return this.load64(W_WRITTEN_LO);
  }

  /** Highest sequence fsynced: it survives power loss. Every lower sequence is durable too. */
  get durable(): number {
    return this.load64(W_DURABLE_LO);
  }

  get status(): LogStatus {
    return Atomics.load(this.ctl, W_STATUS) as LogStatus;
  }

  get backend(): BackendId {
    return Atomics.load(this.ctl, W_BACKEND) as BackendId;
  }

  stat(which: Stat): number {
    return this.load64(W_STATS + 2 * which);
  }

  /** The fsync time of the last batch, in microseconds. */
  get lastSyncMicros(): number {
    return Atomics.load(this.ctl, W_LAST_SYNC_MICROS) >>> 0;
  }

  /**
   * The error recorded by `fail` (a `DurabilityError` with its `ioCode`, a
   * `NativeUnavailableError`, …), rebuilt in this thread; undefined if none. The first failure
   * is never overwritten, so it is decoded once.
   */
  get failure(): CtfsError | undefined {
    if (this.recorded !== undefined) return this.recorded;
    const n = Atomics.load(this.ctl, W_ERROR_LENGTH);
    if (n <= 0) return undefined;
    this.recorded = fromWire(decodeWire(new Uint8Array(this.buffer, OFF_ERROR_TEXT, n).slice()));
    return this.recorded;
  }

  private recorded: CtfsError | undefined;

  // ------------------------------------------------------------- writer (the worker)

  /** Starting point after recovery: everything up to `sequence` is already durable. */
  initialize(sequence: number): void {
    this.store64(W_WRITTEN_LO, sequence);
    this.store64(W_DURABLE_LO, sequence);
  }

  setBackend(backend: BackendId): void {
    Atomics.store(this.ctl, W_BACKEND, backend);
  }

  setStatus(status: LogStatus): void {
    Atomics.store(this.ctl, W_STATUS, status);
    this.wakeAll();
  }

  markWritten(sequence: number): void {
    this.store64(W_WRITTEN_LO, sequence);
    Atomics.notify(this.ctl, W_WRITTEN_LO);
  }

  markDurable(sequence: number): void {
    this.store64(W_DURABLE_LO, sequence);
    this.wakeAll();
  }

  add(which: Stat, amount: number): void {
    this.store64(W_STATS + 2 * which, this.stat(which) + amount);
  }

  setLastSyncMicros(micros: number): void {
    Atomics.store(this.ctl, W_LAST_SYNC_MICROS, Math.min(micros, 0xffffffff) | 0);
  }

  /**
   * Records a failure (first one wins; shortened to fit, see `encodeWire`), poisons the log and
   * wakes every waiter.
   */
  fail(error: CtfsError): void {
    if (Atomics.load(this.ctl, W_ERROR_LENGTH) === 0) {
      const text = encodeWire(toWire(error, { stack: false }), ERROR_TEXT_BYTES);
      new Uint8Array(this.buffer, OFF_ERROR_TEXT, ERROR_TEXT_BYTES).set(text);
      Atomics.store(this.ctl, W_ERROR_LENGTH, text.length);
    }
    this.setStatus(LogStatus.Failed);
  }

  /** Wakes everyone sleeping on either watermark (they re-check status and sequences). */
  wakeAll(): void {
    Atomics.notify(this.ctl, W_DURABLE_LO);
    Atomics.notify(this.ctl, W_WRITTEN_LO);
  }
}
