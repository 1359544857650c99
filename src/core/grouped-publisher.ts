/**
 * GroupedPublisher: publishes a producer's committed ring messages in groups. A publish is an
 * atomic store to a cache line the consumer polls, so one per message would bounce that line
 * between the cores on every message; instead the producer publishes once per `every` messages
 * and at the end of the current task (one microtask per burst), so a message is never left
 * unpublished once the producing code yields.
 */
import type { SpscRing } from './spsc-ring.js';

export class GroupedPublisher {
  /** Messages committed and not yet published. */
  pending = 0;
  private queued = false;

  constructor(
    private readonly ring: SpscRing,
    private readonly every: number,
  ) {}

  /** Call after each `ring.commit()`. */
  committed(): void {
    if (++this.pending >= this.every) this.publish();
    else if (!this.queued) {
      this.queued = true;
      queueMicrotask(this.task);
    }
  }

  /** Publishes now (waits and polls call it before they look at the consumer's progress). */
  publish(): void {
    this.pending = 0;
    this.ring.publish();
  }

  private readonly task = (): void => {
    this.queued = false;
    if (this.pending > 0) this.publish();
  };
}
