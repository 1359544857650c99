/**
 * KernelPool: sharded admission on a piscina worker pool.
 *
 * The pool owns N shards, each a `Kernel` whose state, clock and exact index live in
 * SharedArrayBuffers that every pool thread attached once at start-up (`workerData`). A shard is
 * guarded by a fair lock (`ShardLocks`), so any thread — a pool thread, or the caller's through
 * `admitBatchSync` — can admit into any shard: serialized within a shard, parallel across shards.
 *
 * Order: the pool keeps one queue per shard and runs at most one task per shard at a time, so the
 * batches of a shard are admitted in the order `admitBatchAsync` was called, each as one uninterrupted
 * run; batches submitted in the same turn of the event loop, or queued behind a running task,
 * are handed over together as one task (the ~15 µs a piscina task costs is paid once for all of
 * them). A pool thread never waits for another.
 *
 * Reads: after every task the shard publishes a snapshot, which `snapshotOf` reads from the calling
 * thread with no message. Coarse work runs as pool tasks over the same shared memory: history
 * digests (`digestAsync`), log verification (`verifyLogAsync`) and compaction (`compactLogAsync`).
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { FactBatch, admitShared, type BatchResult } from '../core/fact-batch.js';
import type { Fact } from '../core/fact.js';
import { cellBytes, type StateCell } from '../core/state-cell.js';
import { fromWire, type WireError } from '../error-wire.js';
import { CtfsError, ForeignError, InvalidArgumentError, PoolError, PoolTimeoutError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { checkTimerMs } from '../core/options.js';
import type { Invariant } from '../invariants/invariant.js';
import { Kernel } from '../kernels/kernel.js';
import type { Snapshot } from '../kernels/view.js';
import type { CompactionResult } from '../persistence/recovery.js';
import { WRITE_CHECKPOINT, type CheckpointOffload } from '../kernels/durable-kernel.js';
import type { CheckpointJob } from '../persistence/checkpoint.js';
import type { LogVerification } from '../persistence/verify.js';
import { buildInvariant, portableSpec, type InvariantSpec } from './invariant-spec.js';
import {
  POOL_PROTOCOL,
  POOL_READY,
  TASK_CLOCK_BYTES,
  TASK_CLOCK_WORDS,
  type AdmitOutcome,
  type PoolResult,
  type PoolTask,
  type PoolTaskBody,
  type PoolWorkerData,
} from './protocol.js';
import { routeKey, routeTenant } from './routing.js';
import { ShardAdmitter } from './shard-admitter.js';
import { LOCK_ACQUIRED, LOCK_POISONED, MAX_SHARDS, ShardLocks, type LockStats } from './shard-locks.js';

export interface KernelPoolOptions {
  /** Number of shards (1..4096). */
  readonly shards: number;
  /** The invariant every shard enforces, as a recipe each thread can build. */
  readonly invariant: InvariantSpec;
  /** Pool threads (default: the machine's available parallelism). */
  readonly threads?: number;
  /** The most facts one shard admits (default: no limit; each shard's exact history is unbounded). */
  readonly indexCapacity?: number;
  /** Seed of every shard's index hash (default random per shard). */
  readonly indexSeed?: number;
  /** Commit every shard's hot tables at creation (see `KernelOptions.prefault`; default false). */
  readonly prefault?: boolean;
  /** Each shard's history memory limit, hot table size and compaction (see `KernelOptions`). */
  readonly historyBudgetBytes?: number;
  readonly historyHotCapacity?: number;
  readonly historyCompaction?: 'background' | 'inline';
  /** Each shard's initial state: one cell for all, or one per shard (default the invariant's). */
  readonly initialState?: StateCell | Uint8Array | ((shard: number) => StateCell | Uint8Array);
  /**
   * Groups of shards that share causality: a fact in one may depend on facts another member has
   * admitted (and published). Across other shards such a dep is rejected with `CrossShardDependency`.
   */
  readonly shareCausality?: readonly (readonly number[])[];
  /**
   * Durable shards are not supported yet: setting this throws `PoolError`
   * (`DurableShardsUnsupported`). Use one `DurableKernel` per process, or make batches durable by
   * other means; see the README.
   */
  readonly durable?: unknown;
  /** Queued batches of one shard handed to a pool thread as one task (default 64). */
  readonly maxBatchesPerTask?: number;
  /**
   * How long `admitBatchSync` waits for a shard a pool thread holds before it throws
   * `ShardLockTimeout` (default 10,000 ms): a thread that died holding the lock is only noticed
   * by the event loop, which a waiting `admitBatchSync` blocks.
   */
  readonly syncLockTimeoutMs?: number;
  /**
   * How long one pool task may run, from the moment a thread starts it (time queued does not
   * count), before its thread is stopped and replaced and the task rejects with
   * `PoolTimeoutError` (`PoolTaskTimeout`); an admission's shard is then poisoned, since the thread
   * may have stopped mid-batch. Checked every quarter of it, so a task is stopped between the
   * limit and 1.25 times it. An integer of milliseconds in [1, 2^31 − 1] (default 60,000).
   */
  readonly taskTimeoutMs?: number;
  /**
   * How long the pool threads may take to start (attach the shards, build the invariant) before
   * `create()` rejects with `PoolTimeoutError` (`PoolStartTimeout`); also the limit for a thread
   * started in place of a stopped one, after which the pool stops. Building the invariant in the
   * calling thread, if it is asynchronous, is bounded by it too. Integer ms in [1, 2^31 − 1]
   * (default 30,000).
   */
  readonly startTimeoutMs?: number;
}

/** Facts one coalesced task may carry: keeps one task's lock hold in the low milliseconds. */
const MAX_FACTS_PER_TASK = 16_384;
const DEFAULT_MAX_BATCHES_PER_TASK = 64;
/** admitBatchSync's wait for a busy shard: far beyond any batch (16,384 facts take milliseconds). */
const DEFAULT_SYNC_LOCK_TIMEOUT_MS = 10_000;
/**
 * A task's limit. A task is at most 16,384 facts (milliseconds with the built-in invariants; a
 * custom one at a millisecond per fact still finishes in 17 s), one digest, or one pass over a log
 * directory: a minute is far past any of these on a loaded machine, and still stops a thread that
 * will never return before it holds its shard, later batches and `close()` for long.
 */
const DEFAULT_TASK_TIMEOUT_MS = 60_000;
/**
 * The threads' start-up limit. A thread starts in tens of milliseconds (load the module, attach
 * the shards, build the invariant); 30 s leaves room for a cold disk and a loaded machine.
 */
const DEFAULT_START_TIMEOUT_MS = 30_000;

/** `promise`, or a rejection with `error()` if it has not settled after `ms`. */
function within<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Checks per `taskTimeoutMs` of the watchdog: a task is stopped between `taskTimeoutMs` and
 * 1.25 times it after its start, and the check costs nothing per task.
 */
const CHECKS_PER_TIMEOUT = 4;

/** A task in flight, as the watchdog sees it. */
interface WatchedTask {
  /** Its clock: the shared shard entries, or its own. */
  readonly words: BigInt64Array;
  readonly at: number;
  /** The mark its thread writes when it starts it. */
  readonly started: bigint;
  readonly op: PoolTaskBody['op'];
  readonly shard: number | undefined;
  /** Set once the watchdog stops it. */
  stopping: Promise<PoolTimeoutError> | undefined;
}

interface QueuedBatch {
  readonly kind: 'admit';
  readonly batch: FactBatch;
  readonly resolve: (result: BatchResult) => void;
  readonly reject: (error: unknown) => void;
}

interface QueuedDigest {
  readonly kind: 'digest';
  readonly resolve: (result: { digest: Uint8Array; size: number }) => void;
  readonly reject: (error: unknown) => void;
}

type Queued = QueuedBatch | QueuedDigest;

function workerFile(): string {
  return fileURLToPath(new URL('../workers/pool-worker.js', import.meta.url));
}

/**
 * The typed error for a failed task result: the error the task threw, rebuilt from its wire form;
 * what was not a ctfs error becomes `PoolTaskFailed` with it as the cause.
 */
function resultError(result: Extract<PoolResult<unknown>, { ok: false }>, op: PoolTaskBody['op'], shard?: number): CtfsError {
  return taskError(result.error, op, shard);
}

function taskError(wire: WireError, op: PoolTaskBody['op'], shard?: number): CtfsError {
  const error = fromWire(wire);
  if (error instanceof ForeignError) return new PoolError('PoolTaskFailed', `pool task ${op} failed: ${error.message}`, shard, { cause: error });
  return error;
}

/** A FactBatch as given, or an array of facts packed into one (shapes become refused records). */
function asBatch(facts: FactBatch | readonly Fact[]): FactBatch {
  if (facts instanceof FactBatch) return facts;
  if (!Array.isArray(facts)) throw new InvalidArgumentError('facts must be a FactBatch or an array of facts');
  return FactBatch.from(facts);
}

function checkPeers(groups: readonly (readonly number[])[] | undefined, shards: number): number[][] {
  const peers: number[][] = Array.from({ length: shards }, () => []);
  if (groups === undefined) return peers;
  if (!Array.isArray(groups)) throw new InvalidArgumentError('shareCausality must be an array of shard groups');
  for (const group of groups) {
    if (!Array.isArray(group) || group.length < 2) throw new InvalidArgumentError('each shareCausality group lists at least two shards');
    for (const s of group) {
      if (!Number.isInteger(s) || s < 0 || s >= shards) throw new InvalidArgumentError(`shareCausality names shard ${describeValue(s)}, not in [0, ${shards})`);
    }
    for (const s of group) for (const t of group) if (s !== t && !peers[s]!.includes(t)) peers[s]!.push(t);
  }
  return peers;
}

export class KernelPool implements CheckpointOffload {
  readonly shardCount: number;
  readonly threads: number;
  /** The invariant, as built in this thread. */
  readonly invariant: Invariant;
  private readonly piscina: Piscina;
  private readonly locks: ShardLocks;
  private readonly kernels: Kernel[];
  private readonly admitters: ShardAdmitter[];
  private readonly queues: Queued[][];
  private readonly running: boolean[];
  private readonly pumpScheduled: boolean[];
  private readonly maxBatchesPerTask: number;
  private readonly syncLockTimeoutMs: number;
  private readonly taskTimeoutMs: number;
  private readonly startTimeoutMs: number;
  /** Shard tasks' clocks (see `PoolWorkerData.taskClock`). */
  private readonly taskClock: BigInt64Array;
  private taskSeq = 0;
  /** The threadIds of threads that have reported ready, and replacements still awaited (see `stopStuck`). */
  private readonly readyThreads = new Set<number>();
  private readonly awaitedThreads: { readonly fresh: readonly number[]; readonly timer: NodeJS.Timeout }[] = [];
  /** Tasks in flight, and the timer that checks them while there are any (see `checkTasks`). */
  private readonly watched = new Set<WatchedTask>();
  private watchdog: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private failure: PoolError | undefined;
  /** After a failure: settles once piscina has terminated every thread. */
  private stopped: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  private constructor(options: KernelPoolOptions, invariant: Invariant, threads: number, maxBatchesPerTask: number, timeouts: { task: number; start: number }, PiscinaClass: typeof Piscina) {
    const { shards } = options;
    this.shardCount = shards;
    this.threads = threads;
    this.invariant = invariant;
    this.maxBatchesPerTask = maxBatchesPerTask;
    this.syncLockTimeoutMs = options.syncLockTimeoutMs ?? DEFAULT_SYNC_LOCK_TIMEOUT_MS;
    this.taskTimeoutMs = timeouts.task;
    this.startTimeoutMs = timeouts.start;
    this.taskClock = new BigInt64Array(new SharedArrayBuffer(TASK_CLOCK_BYTES * shards));
    this.locks = new ShardLocks(shards);
    const { indexCapacity, indexSeed, historyBudgetBytes, historyHotCapacity, historyCompaction } = options;
    const kernelOptions = { indexCapacity, indexSeed, historyBudgetBytes, historyHotCapacity, historyCompaction, prefault: options.prefault === true };
    this.kernels = [];
    for (let s = 0; s < shards; s++) {
      const initial = typeof options.initialState === 'function' ? options.initialState(s) : options.initialState;
      this.kernels.push(initial === undefined ? new Kernel(invariant, kernelOptions) : Kernel.withState(invariant, cellBytes(initial), kernelOptions));
    }
    const peers = checkPeers(options.shareCausality, shards);
    this.admitters = this.kernels.map((kernel, s) => new ShardAdmitter(kernel, this.kernels, s, peers[s]!));
    this.queues = Array.from({ length: shards }, () => []);
    this.running = new Array<boolean>(shards).fill(false);
    this.pumpScheduled = new Array<boolean>(shards).fill(false);
    const workerData: PoolWorkerData = {
      protocol: POOL_PROTOCOL,
      shards: this.kernels.map((k) => k.shared),
      locks: this.locks.buffer,
      invariant: portableSpec(options.invariant),
      peers,
      taskClock: this.taskClock.buffer as SharedArrayBuffer,
    };
    this.piscina = new PiscinaClass({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
      // One task per thread: a task runs to completion, so more would only queue inside a thread.
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData,
    });
    let startup!: { resolve: () => void; reject: (error: unknown) => void };
    this.started = new Promise<void>((resolve, reject) => {
      startup = { resolve, reject };
    });
    this.piscina.on('message', (message: unknown) => {
      if (typeof message !== 'object' || message === null || !(POOL_READY in message)) return;
      this.readyThreads.add((message as Record<typeof POOL_READY, number>)[POOL_READY]);
      if (this.readyThreads.size === threads) startup.resolve();
      this.checkAwaitedThreads();
    });
    // piscina reports here what fails outside any task: a thread that could not start (all it
    // does at start is attach the shards and build the invariant, so the spec is at fault), or
    // one that crashed while idle. Either way the pool stops.
    this.piscina.on('error', (cause: unknown) => {
      this.fail(cause);
      const reason = cause instanceof Error ? cause.message : String(cause);
      startup.reject(new InvalidArgumentError(`a pool thread could not start (build the invariant there): ${reason}`, { cause }));
    });
  }

  /** Settles once every pool thread has attached the shards and built the invariant. */
  private readonly started: Promise<void>;

  /** Stops the pool after a thread failed outside a task: everything queued and later rejects. */
  private fail(cause: unknown): PoolError {
    if (this.failure !== undefined) return this.failure;
    const reason = cause instanceof Error ? cause.message : String(cause);
    const error = new PoolError('PoolTaskFailed', `a pool thread failed outside any task (${reason}); the pool is stopped`, undefined, { cause });
    this.failure = error;
    for (const queue of this.queues) {
      for (const queued of queue.splice(0)) {
        if (queued.kind === 'admit') queued.batch.unseal();
        queued.reject(error);
      }
    }
    // Rejects the tasks still in flight; their handlers settle their callers only once the
    // threads are gone (`stopped`), so no caller reuses a batch a dying thread still reads.
    this.clearAwaitedThreads();
    this.stopped = this.piscina.destroy().catch(() => undefined);
    this.checkDrained();
    return error;
  }

  /**
   * A pool of `options.shards` empty shards on `options.threads` threads. Resolves once the
   * invariant is built in this thread; pool threads build theirs as they start.
   */
  static async create(options: KernelPoolOptions): Promise<KernelPool> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('KernelPool.create needs options');
    if (options.durable !== undefined) {
      throw new PoolError(
        'DurableShardsUnsupported',
        'durable shards are not supported yet: a DurableKernel has one writer thread feeding its log; see the README (worker pool)',
      );
    }
    const { shards } = options;
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new InvalidArgumentError(`shards must be an integer in [1, ${MAX_SHARDS}], got ${describeValue(shards)}`);
    }
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new InvalidArgumentError(`threads must be an integer in [1, 256], got ${describeValue(threads)}`);
    }
    const maxBatches = options.maxBatchesPerTask ?? DEFAULT_MAX_BATCHES_PER_TASK;
    if (!Number.isInteger(maxBatches) || maxBatches < 1) throw new InvalidArgumentError('maxBatchesPerTask must be a positive integer');
    const lockTimeout = options.syncLockTimeoutMs ?? DEFAULT_SYNC_LOCK_TIMEOUT_MS;
    if (typeof lockTimeout !== 'number' || !(lockTimeout >= 0) || !Number.isFinite(lockTimeout)) {
      throw new InvalidArgumentError('syncLockTimeoutMs must be a finite number of milliseconds ≥ 0');
    }
    const task = checkTimerMs('taskTimeoutMs', options.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS);
    const start = checkTimerMs('startTimeoutMs', options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const startTimeout = (what: string) => () => new PoolTimeoutError('PoolStartTimeout', `${what} did not finish within startTimeoutMs (${start} ms)`, start);
    const invariant = await within(buildInvariant(portableSpec(options.invariant)), start, startTimeout('building the invariant in this thread'));
    // Loaded here rather than imported: piscina takes ~30 ms to load, which importing `ctfs` (or
    // `ctfs/pool`) should not cost a process that never starts a pool.
    const { Piscina: PiscinaClass } = await import('piscina');
    const pool = new KernelPool(options, invariant, threads, maxBatches, { task, start }, PiscinaClass);
    try {
      await within(pool.started, start, startTimeout(`starting ${threads} pool thread(s)`));
    } catch (error) {
      // Stops the threads, stuck ones included (termination interrupts running JavaScript).
      pool.fail(error);
      await pool.stopped;
      throw error;
    }
    return pool;
  }

  /** The shard for `key` (a string or bytes): stable for a given shard count. */
  shardOf(key: string | Uint8Array): number {
    return routeKey(key, this.shardCount);
  }

  /** The shard for a numeric tenant id (an integer ≥ 0): stable for a given shard count. */
  shardOfTenant(tenant: number): number {
    return routeTenant(tenant, this.shardCount);
  }

  /**
   * Admits `facts` into `shard` on a pool thread, after every batch submitted before for that
   * shard. Resolves to one code per fact (a rejection is a code, not an exception); rejects only
   * if the pool cannot run the batch (`PoolError`). A `FactBatch` is read in place and cannot be
   * changed until the promise settles; an array of facts is packed into one first (on this thread).
   */
  admitBatchAsync(shard: number, facts: FactBatch | readonly Fact[]): Promise<BatchResult> {
    let batch: FactBatch;
    try {
      this.checkOpen();
      this.checkShard(shard);
      batch = asBatch(facts);
      batch.seal();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<BatchResult>((resolve, reject) => {
      this.queues[shard]!.push({ kind: 'admit', batch, resolve, reject });
      this.schedulePump(shard);
    });
  }

  /**
   * Starts the shard's next task at the end of the current job rather than now, so batches
   * submitted together (a loop of `admitBatchAsync` calls) leave together as one task instead of the
   * first alone: fewer tasks, and tasks of even size keep both threads busy to the end.
   */
  private schedulePump(shard: number): void {
    if (this.pumpScheduled[shard]) return;
    this.pumpScheduled[shard] = true;
    queueMicrotask(() => {
      this.pumpScheduled[shard] = false;
      this.pump(shard);
    });
  }

  /**
   * Admits `facts` into `shard` right here, in the calling thread, under the shard's lock (waiting
   * for a pool thread that holds it). For small batches, where a pool task would cost more than
   * the admission; it does not wait for batches still queued for the shard.
   */
  admitBatchSync(shard: number, facts: FactBatch | readonly Fact[]): BatchResult {
    this.checkOpen();
    this.checkShard(shard);
    const batch = asBatch(facts);
    if (batch.inFlight) throw new InvalidArgumentError('the batch is being admitted by a pool thread; await admitBatchAsync first');
    // While this thread sleeps here, no callback can tell it that a pool thread died holding the
    // lock, so it waits a bounded time (and leaves no ticket behind if it gives up).
    const taken = this.locks.acquireWithin(shard, this.syncLockTimeoutMs);
    if (taken === LOCK_POISONED) throw this.poisonedError(shard);
    if (taken !== LOCK_ACQUIRED) {
      throw new PoolError('ShardLockTimeout', `shard ${shard} stayed locked for ${this.syncLockTimeoutMs} ms (a pool thread is busy with it, or died holding it)`, shard);
    }
    let admitted: number;
    try {
      const admitter = this.admitters[shard]!;
      admitted = admitShared(batch.shared, admitter);
      admitter.kernel.publish();
    } finally {
      this.locks.release(shard);
    }
    return { codes: batch.codes.slice(), admitted };
  }

  /**
   * What `shard` has admitted, as of the end of its last batch: state, clock, frontier, size.
   * Read from shared memory in this thread; no message, no lock.
   */
  snapshotOf(shard: number): Snapshot {
    this.checkShard(shard);
    return this.kernels[shard]!.sync();
  }

  /** True if `shard` has published `id` (admitted in a finished batch). */
  containsPublished(shard: number, id: Uint8Array): boolean {
    this.checkShard(shard);
    return this.kernels[shard]!.containsPublished(id);
  }

  /**
   * BLAKE3 digest of `shard`'s history (see `Kernel.digest`), after every batch submitted before
   * it, hashed on a pool thread straight from shared memory.
   */
  digestAsync(shard: number): Promise<{ digest: Uint8Array; size: number }> {
    try {
      this.checkOpen();
      this.checkShard(shard);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queues[shard]!.push({ kind: 'digest', resolve, reject });
      this.pump(shard);
    });
  }

  /** Verifies a data directory's checkpoints and WAL on a pool thread (see `verifyLog`). */
  verifyLogAsync(dir: string): Promise<LogVerification> {
    if (typeof dir !== 'string') return Promise.reject(new InvalidArgumentError('dir must be a path'));
    return this.runTask<LogVerification>({ op: 'verifyLog', dir });
  }

  /**
   * Compacts a data directory on a pool thread: keeps the newest `keep` checkpoints (default 2)
   * and the WAL segments they need. Safe beside a live kernel on the same directory.
   */
  compactLogAsync(dir: string, keep = 2): Promise<CompactionResult> {
    if (typeof dir !== 'string') return Promise.reject(new InvalidArgumentError('dir must be a path'));
    if (!Number.isInteger(keep) || keep < 1) return Promise.reject(new InvalidArgumentError('keep must be a positive integer'));
    return this.runTask<CompactionResult>({ op: 'compactLog', dir, keep });
  }

  /**
   * Writes a durable kernel's checkpoint and compacts its log on a pool thread: what
   * `DurableKernel.checkpoint({ pool })` calls (under a symbol, so nothing else can write
   * checkpoints into a directory through the pool). The image's ids are a view of shared memory.
   */
  [WRITE_CHECKPOINT](job: CheckpointJob): Promise<{ file: string; bytes: number; compaction: CompactionResult }> {
    return this.runTask({ op: 'writeCheckpoint', ...job });
  }

  // Names before the admission vocabulary (README, "Naming"); they go in 0.3.

  /** @deprecated Renamed `admitBatchAsync` (`Kernel.admitBatch` is the synchronous one). */
  admitBatch(shard: number, facts: FactBatch | readonly Fact[]): Promise<BatchResult> {
    return this.admitBatchAsync(shard, facts);
  }

  /** @deprecated Renamed `snapshotOf` (it returns the published snapshot, not a state cell). */
  stateOf(shard: number): Snapshot {
    return this.snapshotOf(shard);
  }

  /** @deprecated Renamed `containsPublished` (`Kernel.contains` reads live state). */
  contains(shard: number, id: Uint8Array): boolean {
    return this.containsPublished(shard, id);
  }

  /** @deprecated Renamed `digestAsync` (`Kernel.digest` is the synchronous one). */
  digest(shard: number): Promise<{ digest: Uint8Array; size: number }> {
    return this.digestAsync(shard);
  }

  /** @deprecated Renamed `verifyLogAsync` (the `verifyLog` function is the synchronous one). */
  verifyLog(dir: string): Promise<LogVerification> {
    return this.verifyLogAsync(dir);
  }

  /** @deprecated Renamed `compactLogAsync`. */
  compactLog(dir: string, keep = 2): Promise<CompactionResult> {
    return this.compactLogAsync(dir, keep);
  }

  /** How often `shard`'s lock was taken, and how often it had to wait. */
  lockStats(shard: number): LockStats {
    this.checkShard(shard);
    return this.locks.stats(shard);
  }

  /** True once `shard` was poisoned (a pool thread died holding it); it refuses all work. */
  isPoisoned(shard: number): boolean {
    this.checkShard(shard);
    return this.locks.isPoisoned(shard);
  }

  /**
   * Stops taking work, lets everything already submitted finish, then stops the threads.
   * Always settles: a task that never returns is stopped after `taskTimeoutMs`. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      const drained = new Promise<void>((resolve) => {
        this.drained = resolve;
        this.checkDrained();
      });
      this.closing = drained.then(async () => {
        this.clearAwaitedThreads();
        await this.piscina.destroy().catch(() => undefined);
      });
    }
    return this.closing;
  }

  private checkOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing !== undefined) throw new PoolError('PoolClosed', 'the pool is closed');
  }

  private checkShard(shard: number): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shardCount) {
      throw new InvalidArgumentError(`shard ${describeValue(shard)} is not in [0, ${this.shardCount})`);
    }
  }

  private poisonedError(shard: number): PoolError {
    return new PoolError('ShardPoisoned', `shard ${shard} is poisoned: a pool thread died or was stopped while admitting into it`, shard);
  }

  private checkDrained(): void {
    if (this.drained !== undefined && this.inFlight === 0 && this.queues.every((q) => q.length === 0)) this.drained();
  }

  private async runTask<T>(task: PoolTaskBody, shard?: number): Promise<T> {
    this.checkOpen();
    this.inFlight++;
    try {
      let result: PoolResult<T>;
      try {
        result = await this.run<T>(task, shard);
      } catch (cause) {
        if (cause instanceof PoolTimeoutError) throw cause;
        if (this.failure !== undefined) throw this.failure;
        throw new PoolError('PoolTaskFailed', `pool task ${task.op} failed: ${cause instanceof Error ? cause.message : String(cause)}`, shard, { cause });
      }
      if (!result.ok) throw resultError(result, task.op, shard);
      return result.value;
    } finally {
      this.inFlight--;
      this.checkDrained();
    }
  }

  /**
   * Runs `body` on a pool thread (a shard task when `shard` is given: its clock is the shard's
   * entry), watched by `checkTasks`: once it has run `taskTimeoutMs` since a thread started it,
   * its thread is stopped (see `stopStuck`) and it rejects with `PoolTimeoutError`.
   */
  private run<T>(body: PoolTaskBody, shard: number | undefined): Promise<PoolResult<T>> {
    const seq = ++this.taskSeq;
    const own = shard === undefined ? new SharedArrayBuffer(TASK_CLOCK_BYTES) : undefined;
    const watched: WatchedTask = {
      words: own === undefined ? this.taskClock : new BigInt64Array(own),
      at: own === undefined ? TASK_CLOCK_WORDS * shard! : 0,
      started: BigInt(seq) * 2n,
      op: body.op,
      shard,
      stopping: undefined,
    };
    this.watched.add(watched);
    this.watchdog ??= setInterval(() => this.checkTasks(), Math.max(1, Math.floor(this.taskTimeoutMs / CHECKS_PER_TIMEOUT))).unref();
    const task: PoolTask = own === undefined ? { ...body, seq } : { ...body, seq, clock: own };
    return (this.piscina.run(task) as Promise<PoolResult<T>>).then(
      (result) => {
        this.watched.delete(watched);
        return result;
      },
      async (cause: unknown) => {
        this.watched.delete(watched);
        if (watched.stopping !== undefined) throw await watched.stopping;
        throw cause;
      },
    );
  }

  /**
   * The watchdog's round: stops every task that has run `taskTimeoutMs` since its start. A task
   * not started yet (queued behind others) holds nothing and is left alone, and so is one that has
   * finished (its result is on its way). Ends itself once nothing is in flight.
   */
  private checkTasks(): void {
    if (this.watched.size === 0) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
      return;
    }
    const now = process.hrtime.bigint();
    const limitNs = BigInt(this.taskTimeoutMs) * 1_000_000n;
    for (const watched of this.watched) {
      if (watched.stopping !== undefined || Atomics.load(watched.words, watched.at) !== watched.started) continue;
      if (now - Atomics.load(watched.words, watched.at + 1) >= limitNs) watched.stopping = this.stopStuck(watched);
    }
  }

  /**
   * Stops the thread running a task that ran past `taskTimeoutMs` (its threadId is in the task's
   * clock): termination interrupts running JavaScript, piscina fails the task and starts another
   * thread in its place. Resolves once the thread has exited — nobody may reuse a batch it still
   * reads — after poisoning the shard of an admission (the thread may have stopped mid-batch,
   * holding the lock) or of any task still holding the lock. If the replacement does not start
   * within `startTimeoutMs`, the pool stops.
   */
  private async stopStuck(watched: WatchedTask): Promise<PoolTimeoutError> {
    const { op, shard } = watched;
    const limit = this.taskTimeoutMs;
    const where = shard === undefined ? '' : ` for shard ${shard}`;
    const error = new PoolTimeoutError(
      'PoolTaskTimeout',
      `pool task ${op}${where} ran longer than taskTimeoutMs (${limit} ms); its thread was stopped${op === 'admit' ? ' and the shard poisoned (the batches of the task may be partly admitted)' : ''}`,
      limit,
      shard,
    );
    const id = Number(Atomics.load(watched.words, watched.at + 2));
    const before = this.piscina.threads;
    const stuck = before.find((worker) => worker.threadId === id);
    if (stuck !== undefined) {
      await stuck.terminate().catch(() => undefined);
      // piscina's own exit handler ran first: the task is failed and the replacement started.
      const after = this.piscina.threads;
      this.awaitThreads(after.filter((worker) => !before.includes(worker)).map((worker) => worker.threadId));
    }
    if (shard !== undefined && (op === 'admit' || this.locks.isBusy(shard)) && !this.locks.isPoisoned(shard)) this.locks.poison(shard);
    return error;
  }

  /**
   * Expects the threads `fresh` (by threadId) to report ready within `startTimeoutMs`; else the
   * pool stops: tasks would wait for them forever.
   */
  private awaitThreads(fresh: readonly number[]): void {
    if (fresh.length === 0 || this.failure !== undefined) return;
    const timer = setTimeout(() => {
      if (fresh.every((id) => this.readyThreads.has(id))) return;
      this.fail(new PoolTimeoutError('PoolStartTimeout', `a pool thread started in place of a stopped one did not start within startTimeoutMs (${this.startTimeoutMs} ms)`, this.startTimeoutMs));
    }, this.startTimeoutMs);
    this.awaitedThreads.push({ fresh, timer });
  }

  /** Drops the watches of threads that have all reported ready. */
  private checkAwaitedThreads(): void {
    const waiting = this.awaitedThreads.filter((entry) => {
      if (!entry.fresh.every((id) => this.readyThreads.has(id))) return true;
      clearTimeout(entry.timer);
      return false;
    });
    this.awaitedThreads.splice(0, this.awaitedThreads.length, ...waiting);
  }

  private clearAwaitedThreads(): void {
    for (const entry of this.awaitedThreads.splice(0)) clearTimeout(entry.timer);
  }

  /** Starts the next task of `shard` unless one is running: a digest alone, or a run of batches. */
  private pump(shard: number): void {
    const queue = this.queues[shard]!;
    if (this.running[shard] || queue.length === 0) return;
    this.running[shard] = true;
    this.inFlight++;
    const head = queue[0]!;
    if (head.kind === 'digest') {
      queue.shift();
      this.run<{ digest: Uint8Array; size: number }>({ op: 'digest', shard }, shard).then(
        (result: PoolResult<{ digest: Uint8Array; size: number }>) => {
          const error = result.ok ? undefined : resultError(result, 'digest', shard);
          if (error === undefined) head.resolve((result as Extract<typeof result, { ok: true }>).value);
          else head.reject(error);
          this.finish(shard, error?.code);
        },
        (cause: unknown) => {
          head.reject(this.taskFailure(shard, cause));
          this.finish(shard, 'PoolTaskFailed');
        },
      );
      return;
    }
    const taken: QueuedBatch[] = [];
    let facts = 0;
    while (queue.length > 0 && taken.length < this.maxBatchesPerTask) {
      const next = queue[0]!;
      if (next.kind !== 'admit' || (taken.length > 0 && facts + next.batch.length > MAX_FACTS_PER_TASK)) break;
      queue.shift();
      taken.push(next);
      facts += next.batch.length;
    }
    this.run<AdmitOutcome[]>({ op: 'admit', shard, batches: taken.map((q) => q.batch.shared) }, shard).then(
      (result: PoolResult<AdmitOutcome[]>) => {
        // A task fails as a whole only if it never ran (the shard is poisoned); otherwise each
        // batch settles by its own outcome.
        const error = result.ok ? undefined : resultError(result, 'admit', shard);
        for (let i = 0; i < taken.length; i++) {
          const { batch, resolve, reject } = taken[i]!;
          batch.unseal();
          const outcome = result.ok ? result.value[i] : undefined;
          if (error !== undefined) reject(error);
          else if (typeof outcome === 'number') resolve({ codes: batch.codes.slice(), admitted: outcome });
          else if (outcome !== undefined) reject(taskError(outcome, 'admit', shard));
          else reject(new PoolError('PoolTaskFailed', `pool task admit for shard ${shard} returned no outcome for batch ${i}`, shard));
        }
        this.finish(shard, error?.code);
      },
      (cause: unknown) => {
        const error = this.taskFailure(shard, cause);
        const settle = (): void => {
          for (const { batch, reject } of taken) {
            batch.unseal();
            reject(error);
          }
          this.finish(shard, 'PoolTaskFailed');
        };
        if (this.stopped === undefined) settle();
        else void this.stopped.then(settle);
      },
    );
  }

  /**
   * A task that did not return: its thread died. If it died holding the shard's lock (the lock is
   * still busy, and no other task of this shard runs and this thread is not inside
   * `admitBatchSync`, so nobody else can hold it), the shard may be half-written: poison it.
   */
  private taskFailure(shard: number, cause: unknown): PoolError {
    if (cause instanceof PoolTimeoutError) return cause;
    if (this.locks.isBusy(shard) && !this.locks.isPoisoned(shard)) this.locks.poison(shard);
    if (this.locks.isPoisoned(shard)) return new PoolError('ShardPoisoned', `shard ${shard} is poisoned: its pool thread died mid-batch`, shard, { cause });
    // The pool stopped (and piscina dropped the task): the reason is the pool's.
    if (this.failure !== undefined) return this.failure;
    return new PoolError('PoolTaskFailed', `pool task for shard ${shard} failed: ${cause instanceof Error ? cause.message : String(cause)}`, shard, { cause });
  }

  private finish(shard: number, failure: string | undefined): void {
    this.running[shard] = false;
    this.inFlight--;
    if (failure === 'ShardPoisoned' || this.locks.isPoisoned(shard)) {
      const error = this.poisonedError(shard);
      for (const queued of this.queues[shard]!.splice(0)) {
        if (queued.kind === 'admit') queued.batch.unseal();
        queued.reject(error);
      }
    }
    this.pump(shard);
    this.checkDrained();
  }
}
