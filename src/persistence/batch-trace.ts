/**
 * BatchTrace: where a durable kernel's batches spend their time, for diagnosis (the
 * `traceBatches` option; off by default). The persistence worker stamps each batch at every stage
 * — picked up from the arena, submitted, written, synced, watermark published — into a ring of
 * the last `capacity` batches in shared memory; the kernel's thread reads them back and, knowing
 * when it staged a fact and when it saw it durable, can split that latency into stages.
 *
 * Times are wall-clock milliseconds with sub-microsecond resolution (`performance.timeOrigin +
 * performance.now()`), so stamps taken on different threads compare. Cost when on: six stores
 * and one atomic add per batch, never per record; when off, one branch per batch.
 *
 * A batch is stamped just before the durable watermark moves past it, so once a fact is durable
 * its batch is in the trace (until `capacity` later batches overwrite it).
 *
 * Layout: Int32 word 0 is the number of batches ever stamped (a batch's slot is that number mod
 * capacity); from byte 8, `capacity` entries of FIELDS float64s each.
 */
import { InvalidArgumentError } from '../errors.js';

/** [lastSequence, records, pickedUp, submitted, written, synced, published] */
const FIELDS = 7;
const HEADER_BYTES = 8;
/** The most batches a trace keeps (~56 MiB): enough for minutes of batches at ~1 ms each. */
export const MAX_TRACE_BATCHES = 1 << 20;

export interface BatchStamp {
  /** The last record's sequence: the batch holds sequences (previous batch's last, lastSequence]. */
  readonly lastSequence: number;
  readonly records: number;
  /** The worker found the batch in the arena (its wait for data returned). */
  readonly pickedUp: number;
  /** Records sealed; the write is being submitted. */
  readonly submitted: number;
  /** The write returned (io_uring: the write and the sync complete together, so = `synced`). */
  readonly written: number;
  /** fdatasync returned. */
  readonly synced: number;
  /** The durable watermark is being moved: stamped just before it moves, so a batch the watermark covers is always in the trace. */
  readonly published: number;
}

/** Wall-clock milliseconds, comparable across threads. */
export const traceNow = (): number => performance.timeOrigin + performance.now();

export class BatchTrace {
  readonly capacity: number;
  private readonly count: Int32Array;
  private readonly entries: Float64Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.count = new Int32Array(buffer, 0, 1);
    this.entries = new Float64Array(buffer, HEADER_BYTES);
    this.capacity = this.entries.length / FIELDS;
  }

  /** A trace of the last `capacity` batches. */
  static create(capacity: number): BatchTrace {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_TRACE_BATCHES) {
      throw new InvalidArgumentError(`traceBatches must be an integer in [1, ${MAX_TRACE_BATCHES}], got ${String(capacity)}`);
    }
    return new BatchTrace(new SharedArrayBuffer(HEADER_BYTES + capacity * FIELDS * 8));
  }

  /** The worker's view of a trace the kernel created. */
  static attach(buffer: SharedArrayBuffer): BatchTrace {
    return new BatchTrace(buffer);
  }

  /** Worker only: stamps one batch (the slot is published by the count's increment, last). */
  stamp(lastSequence: number, records: number, pickedUp: number, submitted: number, written: number, synced: number, published: number): void {
    const n = Atomics.load(this.count, 0);
    const at = (n % this.capacity) * FIELDS;
    const e = this.entries;
    e[at] = lastSequence;
    e[at + 1] = records;
    e[at + 2] = pickedUp;
    e[at + 3] = submitted;
    e[at + 4] = written;
    e[at + 5] = synced;
    e[at + 6] = published;
    Atomics.store(this.count, 0, n + 1);
  }

  /** Batches stamped so far (may exceed `capacity`: the oldest were overwritten). */
  get batches(): number {
    return Atomics.load(this.count, 0);
  }

  /** The batches still held, oldest first. */
  read(): BatchStamp[] {
    const n = this.batches;
    const out: BatchStamp[] = [];
    for (let i = Math.max(0, n - this.capacity); i < n; i++) {
      const at = (i % this.capacity) * FIELDS;
      const e = this.entries;
      out.push({ lastSequence: e[at]!, records: e[at + 1]!, pickedUp: e[at + 2]!, submitted: e[at + 3]!, written: e[at + 4]!, synced: e[at + 5]!, published: e[at + 6]! });
    }
    return out;
  }
}
