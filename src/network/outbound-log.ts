/**
 * OutboundLog: the replication side of the kernel's record-log seam. Every fact the kernel
 * admits is staged here, in admission order, for the replication worker: a `Local` record for a
 * fact of this node's own writer, an `Admitted` answer for a fact the worker handed in.
 *
 * Admission never waits for the network: when the ring is full a local fact is simply not
 * staged (counted in `dropped`); the worker learns of the gap and peers get the fact by
 * reconciliation instead of push. Answers are never dropped — the worker matches them to the
 * facts it handed over by order — so the admitting side hands a fact to the kernel only once
 * the ring has room for its answer (`roomForAnswer`).
 */
import type { RecordLog } from '../domain/record-log.js';
import type { SpscRing } from '../core/spsc-ring.js';
import { ANSWER_RECORD_BYTES, RecordKind, recordBytes, writeFactRecord, writeHeader } from './ring-records.js';

/**
 * Records are published to the worker in groups of this many and at the end of each task, as the
 * WAL arena does: one atomic store per record would bounce the line the worker polls.
 */
const PUBLISH_EVERY = 64;

export class OutboundLog implements RecordLog {
  /** Local facts not staged because the ring was full (the worker reads the shared copy). */
  dropped = 0;
  /** True while the kernel admits a fact the worker handed in: it is staged as an answer. */
  answering = false;
  private reservedAt = -1;
  private reservedBytes = 0;
  private unpublished = 0;
  private publishQueued = false;
  private readonly idBytes = new Uint8Array(32);
  private readonly idWordsOut = new Uint32Array(this.idBytes.buffer);

  /**
   * @param sequenceOf the WAL sequence of the fact just staged in the kernel's durable log (called
   *   after it), or undefined for a kernel without one.
   * @param onDrop told of every dropped local fact (the worker must reconcile).
   */
  constructor(
    readonly ring: SpscRing,
    private readonly sequenceOf: (() => number) | undefined,
    private readonly onDrop: () => void,
  ) {}

  reserve(depCount: number, payloadLength: number): number {
    if (this.answering) {
      this.reservedBytes = ANSWER_RECORD_BYTES;
      this.reservedAt = this.ring.reserve(ANSWER_RECORD_BYTES);
    } else {
      this.reservedBytes = recordBytes(depCount, payloadLength);
      this.reservedAt = this.reservedBytes <= this.ring.maxMessageBytes ? this.ring.reserve(this.reservedBytes) : -1;
    }
    // Never a refusal: replication is not a reason to refuse a fact.
    return 0;
  }

  stage(idWords: Uint32Array, deps: readonly Uint8Array[], payload: Uint8Array): void {
    const ring = this.ring;
    const at = this.reservedAt;
    if (at < 0) {
      // An answer always has room (the caller checked): only local facts get here.
      this.dropped++;
      this.onDrop();
      return;
    }
    const sequence = this.sequenceOf === undefined ? 0 : this.sequenceOf();
    if (this.answering) writeHeader(ring, at, ANSWER_RECORD_BYTES, RecordKind.Admitted, 0, 0, sequence, 0);
    else {
      for (let k = 0; k < 8; k++) this.idWordsOut[k] = idWords[k]!;
      writeFactRecord(ring, at, this.reservedBytes, RecordKind.Local, sequence, this.idBytes, deps, payload);
    }
    ring.commit();
    this.reservedAt = -1;
    this.committed();
  }

  /** True if an answer can be staged now (checked before a handed-in fact is admitted). */
  roomForAnswer(): boolean {
    return this.ring.reserve(ANSWER_RECORD_BYTES) >= 0;
  }

  /** Stages a `Refused` answer (the kernel refused a handed-in fact: nothing was staged for it). */
  refused(code: number): void {
    const at = this.ring.reserve(ANSWER_RECORD_BYTES);
    // roomForAnswer was true and nothing was staged since: the reservation cannot fail.
    writeHeader(this.ring, at, ANSWER_RECORD_BYTES, RecordKind.Refused, 0, code, 0, 0);
    this.ring.commit();
    this.committed();
  }

  private committed(): void {
    if (++this.unpublished >= PUBLISH_EVERY) this.publish();
    else if (!this.publishQueued) {
      this.publishQueued = true;
      queueMicrotask(this.publishTask);
    }
  }

  publish(): void {
    this.unpublished = 0;
    this.ring.publish();
  }

  private readonly publishTask = (): void => {
    this.publishQueued = false;
    if (this.unpublished > 0) this.publish();
  };
}
