/**
 * DurableKernel and TwoLaneDurableKernel: a kernel whose every admitted fact is logged to a
 * write-ahead log by a persistence worker thread and survives crashes.
 *
 * Admission is the foundation's (exact causality, dedup, all checks before anything changes),
 * plus one step between the checks and the invariant: room for the record is reserved in the WAL
 * arena. If there is none (`ArenaFull`: the disk is behind) or the log has failed
 * (`DurabilityFailed`), the fact is refused before it is applied. After the commit the record is
 * staged (~20 ns of copying into shared memory) and the worker takes it from there.
 *
 * The ack mode says when `admit` returns:
 * - `Volatile`: once applied in memory and staged. Lost if the process dies before the worker
 *   writes it (it may still be written: the log is a prefix of what was admitted).
 * - `WALSubmitted`: once written to the log file — it survives a crash of this process, not a
 *   power loss. (With the io_uring backend the write and its fdatasync are one linked submission,
 *   so this waits as long as `Durable`.)
 * - `Durable`: once fdatasynced — it survives power loss.
 * `admitRawWithHandle` returns at once with a `DurableHandle` to poll, spin on, or await.
 */
import { DURABILITY_CONTROL } from './internal.js';
import * as fs from 'node:fs';
import { debuglog } from 'node:util';
import { AdmitCode } from '../codes.js';
import { FACT_ID_BYTES, type Fact, type FactId } from '../core/fact.js';
import { cellBytes, type StateCell } from '../core/state-cell.js';
import { ExactCausalIndex } from '../causal/exact-index.js';
import { AdmitError, asStorageError, CheckpointError, DurabilityError, InvalidArgumentError } from '../errors.js';
import type { ReadonlyExactIndex } from '../causal/exact-index.js';
import type { Invariant } from '../invariants/invariant.js';
import { readCheckpoint, writeCheckpoint, type Checkpoint, type CheckpointJob } from '../persistence/checkpoint.js';
import { lockDirectory } from '../persistence/data-dir.js';
import { invariantIdentity, writeManifest, type Manifest } from '../persistence/manifest.js';
import { DurableLog } from '../persistence/durable-log.js';
import { Stat } from '../persistence/durability-control.js';
import type { BackendChoice } from '../persistence/io-backend.js';
import { checkCompatible, compactLog, openAppendSegment, recoverDomain, type CompactionResult, type RecoveryReport } from '../persistence/recovery.js';
import { MAX_RING_CAPACITY } from '../core/spsc-ring.js';
import { checkWaitMs } from '../core/options.js';
import { optionsObject } from '../core/options.js';
import { describeValue } from '../describe-value.js';
import { MAX_WAL_RECORD_BYTES } from '../persistence/wal-record.js';
import type { FaultPlan } from '../persistence/protocol.js';
import type { LatencyHistogram } from '../metrics/latency-histogram.js';
import { BatchTrace } from '../persistence/batch-trace.js';
import { IdSlab } from './id-slab.js';
import type { CausalDomain, DomainImage } from '../domain/causal-domain.js';
import { KernelBase } from './kernel-base.js';
import { prefaultOf, type KernelOptions } from './kernel-options.js';

export const AckMode = {
  /** Return once applied in memory and staged for the log. */
  Volatile: 0,
  /** Return once written to the log file (survives a process crash). */
  WALSubmitted: 1,
  /** Return once fdatasynced (survives power loss). */
  Durable: 2,
} as const;
export type AckMode = (typeof AckMode)[keyof typeof AckMode];

/** Where a handle's fact stands. */
export type DurabilityStatus = 'pending' | 'durable' | 'failed';

/** Default WAL arena: 4 MiB, ~16k records of 200-byte payloads; latency under full load ≈ arena ÷ disk rate. */
export const DEFAULT_ARENA_BYTES = 4 << 20;
/** The arena must hold two of the largest records (a record never wraps; see SpscRing). */
const MIN_ARENA_BYTES = 1 << 18;
/** Default segment size before the worker starts a new one. */
export const DEFAULT_SEGMENT_BYTES = 64 << 20;
/** Default for how long a blocking `Durable`/`WALSubmitted` admission or `spinWait` waits. */
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;
/** Checkpoints kept by compaction (the newest can fall back to the one before). */
const KEEP_CHECKPOINTS = 2;
/** `spinWait` polls this many times before sleeping (a few µs: a batch usually lands sooner). */
const HANDLE_SPINS = 128;

export interface DurableKernelOptions extends KernelOptions {
  /** WAL arena bytes: a power of two from 256 KiB to 1 GiB (default 4 MiB). */
  readonly arenaBytes?: number;
  /** Segment size limit in bytes (default 64 MiB). */
  readonly segmentBytes?: number;
  /** `auto` (default): io_uring when available, else portable. `CTFS_IO=uring|portable` overrides. */
  readonly backend?: BackendChoice;
  /** How long blocking acks wait before `DurabilityTimeout` (default 30 s). */
  readonly ackTimeoutMs?: number;
  /** The state of a new log (ignored when the directory already holds one). Default: the invariant's `initialState()`. */
  readonly initialState?: StateCell | Uint8Array;
  /**
   * Recover what is readable instead of refusing a log that lost records it had made durable
   * (`DurableDataLostError`), holds corruption (`WalCorruptionError`) or lost its manifest
   * (`ManifestError`): the log is cut after the last record that can be replayed, later segments
   * are renamed aside (`.salvaged-<ms>`), and `recovery.salvage` says what was lost. Default false.
   * Never overrides `InvariantMismatchError` or `LogFormatError`.
   */
  readonly salvage?: boolean;
  /**
   * Log one line naming the backend in use and what was recovered (default true), through
   * `util.debuglog('ctfs')`: printed on stderr only when `NODE_DEBUG=ctfs` is set. The library
   * never writes to stdout.
   */
  readonly announce?: boolean;
  /**
   * Prefault the kernel's exact index and WAL arena at open (default false, as on every kernel;
   * needs the native shim): their memory is committed at once, so neither recovery nor admission
   * pays a page fault per 4 KiB as they fill (replay ~0.9 → ~1.3 M records/s; docs/BENCHMARKS.md).
   */
  readonly prefault?: boolean;
  /** @internal Fault injection for tests. */
  readonly faults?: FaultPlan;
  /**
   * Diagnostics, off by default: keep the stage times (picked up, submitted, written, synced,
   * published) of the last `traceBatches` batches, read back with `batchTrace` — to see where a
   * fact's stage → durable latency goes. Costs a few stores per batch, none per record.
   */
  readonly traceBatches?: number;
}

export type { CheckpointJob } from '../persistence/checkpoint.js';

/** @internal The method a `KernelPool` writes offloaded checkpoints with (not a public entry point). */
export const WRITE_CHECKPOINT: unique symbol = Symbol('ctfs.writeCheckpoint');

/** What writes a `CheckpointJob` off this thread: a `KernelPool`. */
export interface CheckpointOffload {
  [WRITE_CHECKPOINT](job: CheckpointJob): Promise<{ readonly file: string; readonly bytes: number; readonly compaction: CompactionResult }>;
}

export interface CheckpointInfo {
  readonly file: string;
  /** The last WAL sequence it covers. */
  readonly sequence: number;
  /** Facts in it. */
  readonly facts: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly compaction: CompactionResult;
}

/**
 * A fact admitted with `admitRawWithHandle`: it is in memory already; the handle says when it is durable.
 * Handles are cheap: a sequence number, a reference to the log, and the id's place in a slab of
 * ids shared with other handles (no allocation of its own).
 */
export class DurableHandle {
  /** The fact's WAL sequence number. */
  readonly sequence: number;
  private readonly log: DurableLog;
  private readonly ids: Uint8Array;
  private readonly at: number;

  /** @internal */
  constructor(log: DurableLog, sequence: number, ids: Uint8Array, at: number) {
    this.log = log;
    this.sequence = sequence;
    this.ids = ids;
    this.at = at;
  }

  /** The id the fact was admitted with: a fresh copy at each read (the caller may reuse its array). */
  get factId(): FactId {
    return this.ids.slice(this.at, this.at + FACT_ID_BYTES);
  }

  isDurable(): boolean {
    return this.log.isDurable(this.sequence);
  }

  /** `durable`, `pending`, or `failed` (the log failed or closed before the fact was fsynced). */
  poll(): DurabilityStatus {
    if (this.log.isDurable(this.sequence)) return 'durable';
    return this.log.failureFor(this.sequence) === undefined ? 'pending' : 'failed';
  }

  /**
   * Blocks this thread until the fact is durable (true) or `timeoutMs` passes (false): polls
   * briefly, then sleeps in `Atomics.wait`. Throws `DurabilityError` if it can never be durable.
   */
  spinWait(timeoutMs = DEFAULT_ACK_TIMEOUT_MS): boolean {
    checkWaitMs('spinWait timeoutMs', timeoutMs);
    for (let i = 0; i < HANDLE_SPINS; i++) if (this.log.isDurable(this.sequence)) return true;
    const error = this.log.waitFor(this.sequence, false, timeoutMs);
    if (error === undefined) return true;
    if (error.code === 'DurabilityTimeout') return false;
    throw error;
  }

  /** Resolves when the fact is durable; rejects with `DurabilityError` if it cannot become so. */
  durable(): Promise<void> {
    return this.log.whenDurable(this.sequence);
  }
}

/** A checkpoint another log may be anchored on: it fits this kernel and its ids are distinct. */
function checkAnchor(anchor: Checkpoint, domain: CausalDomain, file: string): void {
  checkCompatible(anchor, domain, file);
  const ids = anchor.image.ids.length / 32;
  // A hash only proves the bytes are the writer's; a duplicate id would break the index.
  const seen = new ExactCausalIndex({ capacity: Math.max(1, ids) });
  for (let k = 0; k < ids; k++) {
    if (!seen.insert(anchor.image.ids.subarray(32 * k, 32 * k + 32))) throw new CheckpointError(file, `id ${k} appears twice`);
  }
}

function checkOptions(options: DurableKernelOptions): { arenaBytes: number; segmentBytes: number; ackTimeoutMs: number } {
  const arenaBytes = options.arenaBytes ?? DEFAULT_ARENA_BYTES;
  if (!Number.isInteger(arenaBytes) || arenaBytes < MIN_ARENA_BYTES || arenaBytes > MAX_RING_CAPACITY || (arenaBytes & (arenaBytes - 1)) !== 0) {
    throw new InvalidArgumentError(`arenaBytes must be a power of two from ${MIN_ARENA_BYTES} to ${MAX_RING_CAPACITY}`);
  }
  if (2 * MAX_WAL_RECORD_BYTES > arenaBytes) throw new InvalidArgumentError('arenaBytes must hold two of the largest records');
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!Number.isInteger(segmentBytes) || segmentBytes < 4096 || segmentBytes > 2 ** 40) {
    throw new InvalidArgumentError('segmentBytes must be an integer from 4096 to 2^40');
  }
  const ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  checkWaitMs('ackTimeoutMs', ackTimeoutMs);
  const backend = options.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'uring' && backend !== 'portable') {
    throw new InvalidArgumentError("backend must be 'auto', 'uring' or 'portable'");
  }
  return { arenaBytes, segmentBytes, ackTimeoutMs };
}

/**
 * Internals only `openDurable` uses, keyed by symbols this module does not export: the directory
 * context a kernel is constructed with, and the two steps of opening it.
 */
const OPENING = Symbol('ctfs.durable.opening');
const RECOVER_HISTORY = Symbol('ctfs.durable.recoverHistory');
const BIND_LOG = Symbol('ctfs.durable.bindLog');

interface OpeningOptions extends KernelOptions {
  readonly [OPENING]: { dir: string; unlock: () => void; ackTimeoutMs: number };
}

/** Where `announce` lines go: `NODE_DEBUG=ctfs` prints them on stderr. */
const debug = debuglog('ctfs');

export class DurableKernel<I extends Invariant = Invariant> extends KernelBase<I> {
  /** The data directory. */
  readonly dir: string;
  private readonly unlock: () => void;
  private readonly ackTimeoutMs: number;
  /** Set once by `openDurable` before the kernel is handed out. */
  private log!: DurableLog;
  private report!: RecoveryReport;
  private logId!: Uint8Array;
  private trace: BatchTrace | undefined;
  private readonly handleIds = new IdSlab();
  private closing: Promise<void> | undefined;
  /** The tail of the checkpoint/re-anchor queue (see `exclusive`). */
  private checkpointChain: Promise<unknown> = Promise.resolve();
  /** Checkpoints and re-anchors called and not yet settled. */
  private exclusiveRunning = 0;

  /**
   * Opens (or creates) the durable kernel in `dir`: takes the directory's lock, recovers from the
   * newest valid checkpoint and the WAL after it, starts the persistence worker and returns once
   * it runs. Close it with `close()`.
   */
  static open<I extends Invariant>(dir: string, invariant: I, options: DurableKernelOptions = {}): Promise<DurableKernel<I>> {
    return openDurable(dir, invariant, options, (inv, opts) => new DurableKernel(inv, opts));
  }

  /** @internal Use `DurableKernel.open`. */
  protected constructor(invariant: I, options: KernelOptions) {
    const context = (options as Partial<OpeningOptions> | undefined)?.[OPENING];
    if (context === undefined) throw new InvalidArgumentError('use DurableKernel.open(dir, invariant, options)');
    super(invariant, options);
    this.dir = context.dir;
    this.unlock = context.unlock;
    this.ackTimeoutMs = context.ackTimeoutMs;
  }

  /** @internal Recovers the directory's history into this (fresh) kernel. */
  [RECOVER_HISTORY](initialState: StateCell | Uint8Array | undefined, salvage: boolean): { report: RecoveryReport; logId: Uint8Array; manifest: Manifest } {
    if (initialState !== undefined) this.domain.setInitialState(cellBytes(initialState));
    return recoverDomain(this.dir, this.domain, { identity: invariantIdentity([this.invariant]), salvage });
  }

  /** @internal Gives the kernel its running log: from now on every admission is logged. */
  [BIND_LOG](log: DurableLog, report: RecoveryReport, logId: Uint8Array, trace: BatchTrace | undefined): void {
    this.log = log;
    this.domain.log = log;
    this.report = report;
    this.logId = logId;
    this.trace = trace;
  }

  /**
   * The stage times of the last batches (`traceBatches` option), or undefined when not traced.
   * Once a fact is durable its batch is in the trace; read it then (a batch still being stamped may read half-written).
   */
  get batchTrace(): BatchTrace | undefined {
    return this.trace;
  }

  /** @internal The durability control block (its fsync watermark), for the replication worker. */
  get [DURABILITY_CONTROL](): SharedArrayBuffer {
    return this.log.control.buffer;
  }

  /** What recovery found when the kernel was opened. */
  get recovery(): RecoveryReport {
    return this.report;
  }

  /**
   * Admits and logs a fact; returns an `AdmitCode` (0 = Ok), never throws. With `WALSubmitted` or
   * `Durable` it then blocks until the record is written or fsynced; if that fails or times out it
   * returns `DurabilityFailed` — the fact *is* admitted in memory, only its durability is unknown
   * (see `durableSequence`).
   */
  override tryAdmitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array, ackMode: AckMode = AckMode.Volatile): number {
    const code = this.domain.tryAdmit(id, deps, payload);
    if (code !== AdmitCode.Ok || ackMode === AckMode.Volatile) return code;
    return this.log.waitFor(this.log.lastSequence, ackMode === AckMode.WALSubmitted, this.ackTimeoutMs) === undefined ? AdmitCode.Ok : AdmitCode.DurabilityFailed;
  }

  /** Throwing variant: `AdmitError` if refused, `DurabilityError` if the ack cannot be given. */
  override admitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array, ackMode: AckMode = AckMode.Volatile): void {
    const code = this.domain.tryAdmit(id, deps, payload);
    if (code !== AdmitCode.Ok) throw this.rejection(code, id);
    if (ackMode === AckMode.Volatile) return;
    const error = this.log.waitFor(this.log.lastSequence, ackMode === AckMode.WALSubmitted, this.ackTimeoutMs);
    if (error !== undefined) throw error;
  }

  override tryAdmit(fact: Fact, ackMode: AckMode = AckMode.Volatile): number {
    if (fact === null || typeof fact !== 'object') return AdmitCode.MalformedFact;
    return this.tryAdmitRaw(fact.id, fact.deps, fact.payload, ackMode);
  }

  override admit(fact: Fact, ackMode: AckMode = AckMode.Volatile): void {
    if (fact === null || typeof fact !== 'object') throw new AdmitError(AdmitCode.MalformedFact, 0, 'not a fact');
    this.admitRaw(fact.id, fact.deps, fact.payload, ackMode);
  }

  /**
   * Admits and logs a fact and returns at once with a handle on its durability. Throws
   * `AdmitError` if the fact is refused (nothing changed then).
   */
  admitRawWithHandle(id: FactId, deps: readonly FactId[], payload: Uint8Array): DurableHandle {
    const code = this.domain.tryAdmit(id, deps, payload);
    if (code !== AdmitCode.Ok) throw this.rejection(code, id);
    const ids = this.handleIds;
    const at = ids.put(id);
    return new DurableHandle(this.log, this.log.lastSequence, ids.slab, at);
  }

  /** `admitRawWithHandle` for a `Fact`. */
  admitWithHandle(fact: Fact): DurableHandle {
    if (fact === null || typeof fact !== 'object') throw new AdmitError(AdmitCode.MalformedFact, 0, 'not a fact');
    return this.admitRawWithHandle(fact.id, fact.deps, fact.payload);
  }

  /** @deprecated Renamed `admitRawWithHandle` (it returns a handle, not a Promise); this name goes in 0.3. */
  admitAsync(id: FactId, deps: readonly FactId[], payload: Uint8Array): DurableHandle {
    return this.admitRawWithHandle(id, deps, payload);
  }

  /** @deprecated Renamed `admitWithHandle` (it returns a handle, not a Promise); this name goes in 0.3. */
  admitFactAsync(fact: Fact): DurableHandle {
    return this.admitWithHandle(fact);
  }

  /** WAL sequence of the last admitted fact (sequences start at 1 and have no gaps). */
  get lastSequence(): number {
    return this.log.lastSequence;
  }

  /** Every fact with a sequence at most this is fsynced. */
  get durableSequence(): number {
    return this.log.durableSequence;
  }

  /** Every fact with a sequence at most this is written to the log file. */
  get writtenSequence(): number {
    return this.log.writtenSequence;
  }

  /** True if the fact with this sequence is durable (zero-allocation alternative to handles). */
  isDurable(sequence: number): boolean {
    if (typeof sequence !== 'number') throw new InvalidArgumentError(`sequence must be a number, got ${describeValue(sequence)}`);
    return this.log.isDurable(sequence);
  }

  /**
   * Resolves once the fact with this sequence is durable; rejects with `DurabilityError` if it
   * cannot become so. A producer refused with `ArenaFull` can wait for the next batch to land with
   * `whenDurable(durableSequence + 1)`.
   */
  whenDurable(sequence: number): Promise<void> {
    if (!Number.isInteger(sequence) || sequence < 0) return Promise.reject(new InvalidArgumentError('sequence must be a non-negative integer'));
    return this.log.whenDurable(Math.min(sequence, this.log.lastSequence));
  }

  /** Resolves once everything admitted so far is durable. */
  flush(): Promise<void> {
    return this.log.whenDurable(this.log.lastSequence);
  }

  /** The I/O backend the persistence worker uses. */
  get backend(): 'io_uring' | 'portable' {
    return this.log.backendName === 'io_uring' ? 'io_uring' : 'portable';
  }

  /** Why io_uring is not in use, if it is not ('' otherwise). */
  get backendNote(): string {
    return this.log.backendNote;
  }

  /** What the persistence worker has done: batches, records, bytes, fsyncs, segments started. */
  get logStats(): { batches: number; records: number; bytes: number; fsyncs: number; segments: number; lastSyncMicros: number } {
    const c = this.log.control;
    return {
      batches: c.stat(Stat.Batches),
      records: c.stat(Stat.Records),
      bytes: c.stat(Stat.Bytes),
      fsyncs: c.stat(Stat.Fsyncs),
      segments: c.stat(Stat.Segments),
      lastSyncMicros: c.lastSyncMicros,
    };
  }

  /** Write + fdatasync time of each batch (ns), recorded by the persistence worker: `ctfs_persistence_latency`. */
  get persistenceLatency(): LatencyHistogram {
    return this.log.persistenceLatency;
  }

  /** The WAL arena's bytes in use (staged, not yet durable). */
  get arenaUsed(): number {
    return this.log.ring.used;
  }

  /**
   * Writes a checkpoint of everything admitted so far (once it is all durable), atomically, then
   * compacts: older checkpoints beyond the newest two and the WAL segments they no longer need
   * are deleted. Admission may continue meanwhile (the snapshot is taken first).
   *
   * With `{ pool }` the hashing, writing, fsyncs and compaction run on a pool thread, which reads
   * the ids straight from the exact index's shared memory (no copy of the largest part); this
   * thread only takes the snapshot. Checkpoints and re-anchors of one kernel run one at a time.
   */
  checkpoint(options: { readonly pool?: CheckpointOffload } = {}): Promise<CheckpointInfo> {
    const pool = options?.pool;
    if (pool !== undefined && typeof pool?.[WRITE_CHECKPOINT] !== 'function') {
      return Promise.reject(new InvalidArgumentError('checkpoint({ pool }) takes a KernelPool'));
    }
    if (this.closing !== undefined) return Promise.reject(new DurabilityError('LogClosed', 'the kernel is closed (or closing): no checkpoint'));
    const started = performance.now();
    // The snapshot is taken now, at the call — or, if another checkpoint or re-anchor is still
    // running, when it has finished (a snapshot from before a re-anchor must not be written after it).
    // The image is a copy (ids sorted): admission may go on while a pool thread hashes and writes it.
    const snapshot = (): { sequence: number; image: DomainImage } => ({
      sequence: this.log.lastSequence,
      image: this.domain.exportImage(),
    });
    const taken = this.exclusiveRunning === 0 ? snapshot() : undefined;
    return this.exclusive(async () => {
      const { sequence, image } = taken ?? snapshot();
      await this.log.whenDurable(sequence);
      if (pool === undefined) return this.installCheckpoint(sequence, image, KEEP_CHECKPOINTS, started);
      const written = await pool[WRITE_CHECKPOINT]({ dir: this.dir, sequence, logId: this.logId, image, keep: KEEP_CHECKPOINTS });
      return { ...written, sequence, facts: image.ids.length / 32, durationMs: performance.now() - started };
    });
  }

  /**
   * Re-anchors the kernel on a verified checkpoint (e.g. a peer's): the kernel's history becomes
   * exactly the checkpoint's, atomically, in memory and on disk. The file is verified first (hash,
   * sizes, frontier, distinct ids, cell count, capacity); a bad one throws `CheckpointError` (or
   * `InvalidArgumentError` for a kernel too small, `LogFormatError` for a checkpoint of the
   * earlier format) and changes nothing. Then, once everything admitted is durable, the
   * checkpoint is written into this log as its newest (at the current sequence), the live state
   * replaced, and every older checkpoint and segment deleted — so no recovery can fall back to
   * the history before the anchor. Returns the new checkpoint.
   */
  reanchor(checkpointFile: string): Promise<CheckpointInfo> {
    if (this.closing !== undefined) return Promise.reject(new DurabilityError('LogClosed', 'the kernel is closed (or closing): no re-anchor'));
    return this.exclusive(async () => {
      const started = performance.now();
      const anchor = readCheckpoint(checkpointFile);
      checkAnchor(anchor, this.domain, checkpointFile);
      // Everything admitted must be durable at the moment the switch happens; what follows the
      // last await is synchronous, so no admission can slip in between.
      while (!this.log.isDurable(this.log.lastSequence)) await this.log.whenDurable(this.log.lastSequence);
      const sequence = this.log.lastSequence;
      const info = this.installCheckpoint(sequence, anchor.image, 1, started);
      this.domain.restoreImage(anchor.image);
      return info;
    });
  }

  /**
   * Runs checkpoints and re-anchors one after another: a checkpoint still being written (on a
   * pool thread, or waiting for durability) must not land after a re-anchor and reintroduce the
   * history the anchor replaced, nor read ids a restore is rewriting.
   */
  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    this.exclusiveRunning++;
    const run = this.checkpointChain.then(operation).finally(() => {
      this.exclusiveRunning--;
    });
    this.checkpointChain = run.catch(() => undefined);
    return run;
  }

  /** Writes `image` as this log's checkpoint at `sequence`, then compacts down to `keep` checkpoints. */
  private installCheckpoint(sequence: number, image: DomainImage, keep: number, started: number): CheckpointInfo {
    let file: string;
    let compaction: CompactionResult;
    try {
      file = writeCheckpoint(this.dir, sequence, this.logId, image);
      compaction = compactLog(this.dir, keep);
    } catch (error) {
      throw asStorageError(error, `checkpoint of ${this.dir} at sequence ${sequence} failed`);
    }
    return {
      file,
      sequence,
      facts: image.ids.length / 32,
      bytes: fs.statSync(file).size,
      durationMs: performance.now() - started,
      compaction,
    };
  }

  /** A durable kernel's history is its log: it cannot be reset. */
  override reset(): void {
    throw new InvalidArgumentError('a durable kernel cannot be reset: its log is its history (open a new directory instead)');
  }

  /**
   * Makes everything admitted durable, stops the worker and releases the directory. Waiters still
   * pending after a failure are rejected. Idempotent.
   */
  close(): Promise<void> {
    // A checkpoint in progress (perhaps on a pool thread) finishes before the directory is released.
    this.closing ??= this.checkpointChain.then(() => this.log.close()).finally(() => this.unlock());
    return this.closing;
  }
}

export class TwoLaneDurableKernel<I extends Invariant = Invariant> extends DurableKernel<I> {
  static override open<I extends Invariant>(dir: string, invariant: I, options: DurableKernelOptions = {}): Promise<TwoLaneDurableKernel<I>> {
    return openDurable(dir, invariant, options, (inv, opts) => new TwoLaneDurableKernel(inv, opts));
  }

  /** The exact lane: the set of admitted ids, read-only. */
  get exactIndex(): ReadonlyExactIndex {
    return this.domain.index;
  }
}

/**
 * Opens a data directory for a kernel built by `construct`: lock, recovery into a scratch
 * domain-owning kernel, append segment, worker. The kernel object is created after recovery
 * succeeded, over the recovered domain, so a failed open leaves nothing running.
 */
async function openDurable<I extends Invariant, K extends DurableKernel<I>>(
  dir: string,
  invariant: I,
  options: DurableKernelOptions,
  construct: (invariant: I, options: KernelOptions) => K,
): Promise<K> {
  if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError('dir must be a directory path');
  options = optionsObject(options);
  const { arenaBytes, segmentBytes, ackTimeoutMs } = checkOptions(options);
  const trace = options.traceBatches === undefined ? undefined : BatchTrace.create(options.traceBatches);
  let unlock: () => void;
  try {
    fs.mkdirSync(dir, { recursive: true });
    unlock = lockDirectory(dir);
  } catch (error) {
    throw asStorageError(error, `cannot open ${dir}`);
  }
  try {
    const { indexCapacity, indexSeed, prefault: prefaultHistory, historyBudgetBytes, historyHotCapacity, historyCompaction } = options;
    const opening: OpeningOptions = { indexCapacity, indexSeed, prefault: prefaultHistory, historyBudgetBytes, historyHotCapacity, historyCompaction, [OPENING]: { dir, unlock, ackTimeoutMs } };
    const kernel = construct(invariant, opening);
    const { report, logId, manifest: recovered } = kernel[RECOVER_HISTORY](options.initialState, options.salvage === true);
    const segmentFile = openAppendSegment(dir, report.lastSequence + 1, logId, arenaBytes);
    // Only now, with the append segment in place, may the manifest name it.
    const manifest: Manifest = { ...recovered, generation: recovered.generation + 1 };
    writeManifest(dir, manifest);
    const log = await DurableLog.start({
      arenaBytes,
      lastSequence: report.lastSequence,
      dir,
      segmentFile,
      logId,
      segmentBytes,
      backend: options.backend ?? 'auto',
      faults: options.faults,
      trace: trace?.buffer,
      prefault: prefaultOf(options),
      manifest,
    });
    kernel[BIND_LOG](log, report, logId, trace);
    if (options.announce !== false) {
      const why = log.backendNote === '' ? '' : ` (${log.backendNote})`;
      debug('durable kernel in %s: %s backend%s; recovered %d facts', dir, log.backendName, why, report.lastSequence);
    }
    return kernel;
  } catch (error) {
    unlock();
    throw asStorageError(error, `cannot open ${dir}`);
  }
}
