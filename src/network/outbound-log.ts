/**
 * OutboundLog: the replication side of the kernel's record-log seam. Every fact the kernel
 * admits is staged here, in admission order, for the replication worker: a `Local` record for a
 * fact of this node's own writer, an `Admitted` answer for a fact the worker handed in.
 *
 * Admission never waits for the worker. When the ring is full, records go to an overflow queue
 * on this thread (copies, in order) and move into the ring as it drains — never dropped: the
 * worker is the only keeper of a local fact's bytes besides the kernel's WAL, and a fact it never
 * saw could never be served to a peer. Everything after the first queued record is queued too, so
 * the worker sees records in admission order; and since the worker matches answers to the facts
 * it handed over by order, the admitting side hands a fact to the kernel only while an answer can
 * go straight into the ring (`roomForAnswer`).
 */
import type { RecordLog } from '../domain/record-log.js';
import type { SpscRing } from '../core/spsc-ring.js';
import { GroupedPublisher } from '../core/grouped-publisher.js';
import { Fifo } from '../core/fifo.js';
import { ANSWER_RECORD_BYTES, RecordKind, recordBytes, writeFactRecord, writeHeader } from './ring-records.js';

/**
 * Records are published to the worker in groups of this many and at the end of each task, as the
 * WAL arena does: one atomic store per record would bounce the line the worker polls.
 */
const PUBLISH_EVERY = 64;
/** While records wait in the overflow queue, the ring is looked at again this often (ms). */
const OVERFLOW_RETRY_MS = 1;

export class OutboundLog implements RecordLog {
  /** True while the kernel admits a fact the worker handed in: it is staged as an answer. */
  answering = false;
  private reservedAt = -1;
  private reservedBytes = 0;
  private readonly publisher: GroupedPublisher;
  /** Whole records (length word first) waiting for ring room, oldest first. */
  private readonly overflow = new Fifo<Uint8Array>();
  private retry: NodeJS.Timeout | undefined;
  private readonly idBytes = new Uint8Array(32);
  private readonly idWordsOut = new Uint32Array(this.idBytes.buffer);

  /**
   * @param sequenceOf the WAL sequence of the fact just staged in the kernel's durable log (called
   *   after it), or undefined for a kernel without one.
   */
  constructor(
    readonly ring: SpscRing,
    private readonly sequenceOf: (() => number) | undefined,
  ) {
    this.publisher = new GroupedPublisher(ring, PUBLISH_EVERY);
  }

  /** Records waiting for room in the ring (the admitting thread is ahead of the worker). */
  get queued(): number {
    return this.overflow.size;
  }

  reserve(depCount: number, payloadLength: number): number {
    this.reservedBytes = this.answering ? ANSWER_RECORD_BYTES : recordBytes(depCount, payloadLength);
    this.reservedAt = this.queued === 0 && this.reservedBytes <= this.ring.maxMessageBytes ? this.ring.reserve(this.reservedBytes) : -1;
    // Never a refusal: replication is not a reason to refuse a fact.
    return 0;
  }

  stage(idWords: Uint32Array, deps: readonly Uint8Array[], payload: Uint8Array): void {
    const sequence = this.sequenceOf === undefined ? 0 : this.sequenceOf();
    let target = this.ring.bytes;
    let at = this.reservedAt;
    if (at < 0) {
      // No room (or older records still queued): a copy joins the queue. Answers never get here.
      target = new Uint8Array(this.reservedBytes);
      at = 0;
    }
    if (this.answering) writeHeader(target, at, ANSWER_RECORD_BYTES, RecordKind.Admitted, 0, 0, sequence, 0);
    else {
      for (let k = 0; k < 8; k++) this.idWordsOut[k] = idWords[k]!;
      writeFactRecord(target, at, this.reservedBytes, RecordKind.Local, sequence, this.idBytes, deps, payload);
    }
    this.reservedAt = -1;
    if (target === this.ring.bytes) {
      this.ring.commit();
      this.committed();
    } else {
      this.overflow.push(target);
      this.scheduleRetry();
    }
  }

  /** True if an answer can go straight into the ring now (checked before a handed-in fact is admitted). */
  roomForAnswer(): boolean {
    return this.flushOverflow() && this.ring.reserve(ANSWER_RECORD_BYTES) >= 0;
  }

  /** Stages a `Refused` answer (the kernel refused a handed-in fact: nothing was staged for it). */
  refused(code: number): void {
    const at = this.ring.reserve(ANSWER_RECORD_BYTES);
    // roomForAnswer was true and nothing was staged since: the reservation cannot fail.
    writeHeader(this.ring.bytes, at, ANSWER_RECORD_BYTES, RecordKind.Refused, 0, code, 0, 0);
    this.ring.commit();
    this.committed();
  }

  /** Moves queued records into the ring while it has room; true once the queue is empty. */
  flushOverflow(): boolean {
    if (this.queued === 0) return true;
    const ring = this.ring;
    let moved = 0;
    for (let record = this.overflow.peek(); record !== undefined; record = this.overflow.peek()) {
      const at = ring.reserve(record.length);
      if (at < 0) break;
      ring.bytes.set(record, at);
      ring.commit();
      this.overflow.shift();
      moved++;
    }
    if (moved > 0) this.publish();
    if (this.overflow.size === 0) return true;
    this.scheduleRetry();
    return false;
  }

  private scheduleRetry(): void {
    if (this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flushOverflow();
    }, OVERFLOW_RETRY_MS);
  }

  private committed(): void {
    this.publisher.committed();
  }

  publish(): void {
    this.publisher.publish();
  }

  /** Stops retrying (the worker is closing); what is still queued is handed over by `flushOverflow`. */
  stop(): void {
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
  }
}
