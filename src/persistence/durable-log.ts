/**
 * DurableLog: the kernel's side of the persistence pipeline. It owns the WAL arena (an SpscRing),
 * the shared durability control block and the persistence worker; it stages records (the
 * `RecordLog` the admission path calls), answers "is sequence n durable yet", and settles waiters
 * — blocking ones with `Atomics.wait`, async ones with one `Atomics.waitAsync` for all of them.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../core/start-worker.js';
import { AdmitCode } from '../codes.js';
import { SpscRing } from '../core/spsc-ring.js';
import { GroupedPublisher } from '../core/grouped-publisher.js';
import { DurabilityError, NativeUnavailableError, type CtfsError } from '../errors.js';
import type { RecordLog } from '../domain/causal-domain.js';
import type { PersistenceWorkerData, WorkerMessage } from './protocol.js';
import { BackendId, DurabilityControl, LogStatus } from './durability-control.js';
import { walRecordBytes, writeWalRecord } from './wal-record.js';
import { LatencyHistogram } from '../metrics/latency-histogram.js';
import { prefault } from '../native/shim.js';

/**
 * Staged records are published to the worker in groups of this many (and at the end of each
 * task): a publish is an atomic store to a cache line the worker reads, so one per record would
 * bounce that line between the cores on every admission. 64 records are ~17 KB: small next to
 * a batch, so the worker never waits for a group to fill.
 */
const PUBLISH_EVERY = 64;
/** Blocking waits sleep at most this long at a time, then re-check the log's status. */
const WAIT_SLICE_MS = 50;
/** Async waiters re-check the log's status this often even if the watermark does not move. */
const ASYNC_RECHECK_MS = 500;

type WaitAsync = (array: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: Promise<unknown> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

interface Waiter {
  readonly sequence: number;
  readonly resolve: () => void;
  readonly reject: (error: DurabilityError) => void;
}

export type LogOptions = Omit<PersistenceWorkerData, 'ring' | 'control' | 'latency'> & {
  /** Arena bytes (a power of two). */
  readonly arenaBytes: number;
  /** The last sequence already in the log (recovered). */
  readonly lastSequence: number;
  /** Prefault the arena (see `prefault`). */
  readonly prefault: boolean;
};

/** The system code behind a recorded failure (`EIO`, `ENOSPC`, `EWORKER`, …), or its ctfs code. */
function ioCodeOf(failure: CtfsError | undefined): string | undefined {
  if (failure === undefined) return undefined;
  return failure instanceof DurabilityError && failure.ioCode !== undefined ? failure.ioCode : failure.code;
}

export class DurableLog implements RecordLog {
  readonly ring: SpscRing;
  readonly control: DurabilityControl;
  /** Write + fdatasync time per batch, ns, recorded by the worker. */
  readonly persistenceLatency: LatencyHistogram;
  private readonly worker: Worker;
  private nextSequence: number;
  private reservedAt = 0;
  private reservedBytes = 0;
  /** Publishes staged records to the worker in groups. */
  private readonly publisher: GroupedPublisher;
  private readonly waiters: Waiter[] = [];
  private armed = false;
  private exited = false;
  private readonly exitPromise: Promise<void>;
  /** The backend the worker reported, and why io_uring was not used (if it was not). */
  backendName: 'io_uring' | 'portable' | 'none' = 'none';
  backendNote = '';

  private constructor(options: LogOptions) {
    this.ring = new SpscRing({ capacity: options.arenaBytes });
    this.publisher = new GroupedPublisher(this.ring, PUBLISH_EVERY);
    if (options.prefault) prefault(this.ring.buffer);
    this.control = new DurabilityControl();
    // Two lanes: the worker records into one; the other is spare for an attached reader's thread.
    this.persistenceLatency = new LatencyHistogram({ lanes: 2 });
    this.control.initialize(options.lastSequence);
    this.nextSequence = options.lastSequence + 1;
    const { arenaBytes: _arena, lastSequence: _last, prefault: _prefault, ...rest } = options;
    const data: PersistenceWorkerData = { ...rest, ring: this.ring.buffer, control: this.control.buffer, latency: this.persistenceLatency.buffer };
    // Ref'd until it reports ready, so a failing start settles `start()` instead of letting the
    // process exit under it; afterwards only while someone awaits durability (see `arm`).
    this.worker = startWorker(new URL('../workers/persistence-worker.js', import.meta.url), data);
    this.exitPromise = new Promise((resolve) => {
      this.worker.once('exit', () => {
        this.exited = true;
        // A worker that dies without saying so (crash, out of memory) must not leave waiters hanging.
        const status = this.control.status;
        if (status !== LogStatus.Closed && status !== LogStatus.Failed) {
          this.control.fail(new DurabilityError('DurabilityFailed', 'the persistence worker exited unexpectedly', { ioCode: 'EWORKER' }));
        }
        this.settle();
        resolve();
      });
    });
    this.worker.on('error', (error) => this.control.fail(new DurabilityError('DurabilityFailed', `persistence worker error: ${error.message}`, { ioCode: 'EWORKER', cause: error })));
  }

  /** Starts the worker and waits until it has opened its backend. */
  static async start(options: LogOptions): Promise<DurableLog> {
    const log = new DurableLog(options);
    const first = await new Promise<WorkerMessage | undefined>((resolve) => {
      log.worker.once('message', resolve);
      void log.exitPromise.then(() => resolve(undefined));
    });
    if (first?.type === 'ready') {
      log.backendName = first.backend;
      log.backendNote = first.note;
      log.worker.unref();
      log.worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'failed') log.settle();
      });
      return log;
    }
    await log.exitPromise;
    const failure = log.control.failure;
    if (failure instanceof NativeUnavailableError) throw failure;
    throw new DurabilityError('DurabilityFailed', `the persistence worker did not start: ${failure?.message ?? 'no reason given'}`, {
      ioCode: ioCodeOf(failure),
      cause: failure,
    });
  }

  // ------------------------------------------------------------------ staging (RecordLog)

  reserve(depCount: number, payloadLength: number): number {
    // Closing: the worker drains what is staged and exits, so nothing new may be staged.
    if (this.ring.closed || Atomics.load(this.control.ctl, this.control.statusWord) !== LogStatus.Running) return AdmitCode.DurabilityFailed;
    const bytes = walRecordBytes(depCount, payloadLength);
    const at = this.ring.reserve(bytes);
    if (at < 0) return AdmitCode.ArenaFull;
    this.reservedAt = at;
    this.reservedBytes = bytes;
    return 0;
  }

  stage(idWords: Uint32Array, deps: readonly Uint8Array[], payload: Uint8Array): void {
    const ring = this.ring;
    writeWalRecord(ring.bytes, ring.words, this.reservedAt, this.reservedBytes, this.nextSequence, idWords, deps, payload);
    this.nextSequence++;
    ring.commit();
    this.publisher.committed();
  }

  /** Makes every staged record visible to the worker (waits call it before they sleep). */
  publish(): void {
    this.publisher.publish();
  }

  /** The sequence of the last staged record (0 if none). */
  get lastSequence(): number {
    return this.nextSequence - 1;
  }

  get backendId(): BackendId {
    return this.control.backend;
  }

  // ------------------------------------------------------------------ durability queries

  /**
   * True once `sequence` is fsynced. Publishes pending records first: code that polls in a loop
   * without yielding must not wait on records the worker cannot see.
   */
  isDurable(sequence: number): boolean {
    if (this.publisher.pending > 0) this.publish();
    return this.control.durable >= sequence;
  }

  /** The watermarks, for pollers (publishing pending records first, as `isDurable`). */
  get durableSequence(): number {
    if (this.publisher.pending > 0) this.publish();
    return this.control.durable;
  }

  get writtenSequence(): number {
    if (this.publisher.pending > 0) this.publish();
    return this.control.written;
  }

  /** The error for a sequence that can no longer become durable, or undefined while it still can. */
  failureFor(sequence: number): DurabilityError | undefined {
    const status = this.control.status;
    if (status === LogStatus.Failed) {
      const failure = this.control.failure;
      const ioCode = ioCodeOf(failure);
      return new DurabilityError('DurabilityFailed', `fact ${sequence} is not durable: the log failed (${ioCode ?? 'unknown'}: ${failure?.message ?? ''}); reopen the kernel to recover`, {
        sequence,
        ioCode,
        cause: failure,
      });
    }
    if (status === LogStatus.Closed || this.exited) {
      return new DurabilityError('LogClosed', `fact ${sequence} is not durable: the log was closed first`, { sequence });
    }
    return undefined;
  }

  /**
   * Blocks until `sequence` is written (`written`) or durable, the log fails, or `timeoutMs`
   * passes. Returns undefined on success, else the error.
   */
  waitFor(sequence: number, written: boolean, timeoutMs: number): DurabilityError | undefined {
    if (this.publisher.pending > 0) this.publish();
    const ctl = this.control.ctl;
    const word = written ? this.control.writtenWord : this.control.durableWord;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const reached = written ? this.control.written : this.control.durable;
      if (reached >= sequence) return undefined;
      const failure = this.failureFor(sequence);
      if (failure !== undefined) return failure;
      const left = deadline - performance.now();
      if (left <= 0) {
        return new DurabilityError('DurabilityTimeout', `fact ${sequence} was not ${written ? 'written' : 'durable'} within ${timeoutMs} ms`, { sequence });
      }
      Atomics.wait(ctl, word, Atomics.load(ctl, word), Math.min(left, WAIT_SLICE_MS));
    }
  }

  /** Resolves once `sequence` is durable; rejects with `DurabilityError` if it cannot become so. */
  whenDurable(sequence: number): Promise<void> {
    if (this.isDurable(sequence)) return Promise.resolve();
    const failure = this.failureFor(sequence);
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<void>((resolve, reject) => {
      const waiters = this.waiters;
      const waiter = { sequence, resolve, reject };
      // Handles usually wait in order; otherwise insert in place to keep the queue sorted.
      let i = waiters.length;
      while (i > 0 && waiters[i - 1]!.sequence > sequence) i--;
      waiters.splice(i, 0, waiter);
      this.arm();
    });
  }

  /** Keeps one `Atomics.waitAsync` pending while anyone waits; the worker is ref'd meanwhile so the process stays up. */
  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    if (!this.exited) this.worker.ref();
    this.pump();
  }

  private pump(): void {
    this.settle();
    if (this.waiters.length === 0 || this.exited) {
      this.armed = false;
      if (!this.exited) this.worker.unref();
      return;
    }
    const ctl = this.control.ctl;
    const word = this.control.durableWord;
    const result = waitAsync(ctl, word, Atomics.load(ctl, word), ASYNC_RECHECK_MS);
    if (result.async) void (result.value as Promise<unknown>).then(() => this.pump());
    else setImmediate(() => this.pump());
  }

  /** Resolves every waiter that is durable, rejects all of them if the log failed or closed. */
  private settle(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    const durable = this.control.durable;
    let done = 0;
    while (done < waiters.length && waiters[done]!.sequence <= durable) waiters[done++]!.resolve();
    if (done > 0) waiters.splice(0, done);
    if (waiters.length === 0) return;
    const failure = this.failureFor(waiters[0]!.sequence);
    if (failure === undefined) return;
    for (const waiter of waiters.splice(0)) waiter.reject(this.failureFor(waiter.sequence) ?? failure);
  }

  // ------------------------------------------------------------------ shutdown

  /** Everything staged becomes durable (unless the log failed), then the worker exits. */
  async close(): Promise<void> {
    if (this.publisher.pending > 0) this.publish();
    this.ring.close();
    this.worker.ref();
    await this.exitPromise;
    this.settle();
  }
}
