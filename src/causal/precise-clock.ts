/**
 * PreciseClock: the exact set of the most recently observed ids, a FIFO of fixed capacity
 * (default 16). Membership is decided by full 32-byte comparison, so it never reports an id it
 * has not seen; it forgets the oldest id once full. Useful as a tiny exact "recent facts"
 * summary; kernels use the unbounded `ExactCausalIndex` for causality.
 */
import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_PRECISE_CAPACITY = 16;

export class PreciseClock {
  readonly capacity: number;
  private readonly slots: Uint8Array;
  private count = 0;
  private head = 0;

  constructor(capacity = DEFAULT_PRECISE_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096) {
      throw new InvalidArgumentError('precise clock capacity must be an integer in [1, 4096]');
    }
    this.capacity = capacity;
    this.slots = new Uint8Array(32 * capacity);
  }

  /** Records `id`, evicting the oldest id when full. An id already present is not stored twice. */
  observe(id: Uint8Array): void {
    if (this.contains(id)) return;
    this.slots.set(id, 32 * this.head);
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  contains(id: Uint8Array): boolean {
    if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError('a fact id is a 32-byte Uint8Array');
    const s = this.slots;
    outer: for (let i = 0; i < this.count; i++) {
      const p = 32 * i;
      for (let j = 0; j < 32; j++) if (s[p + j] !== id[j]) continue outer;
      return true;
    }
    return false;
  }

  containsAll(ids: readonly Uint8Array[]): boolean {
    for (const id of ids) if (!this.contains(id)) return false;
    return true;
  }

  get size(): number {
    return this.count;
  }

  get isFull(): boolean {
    return this.count === this.capacity;
  }

  /** The ids held, oldest first. */
  ids(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const start = this.count < this.capacity ? 0 : this.head;
    for (let i = 0; i < this.count; i++) {
      const p = 32 * ((start + i) % this.capacity);
      out.push(this.slots.slice(p, p + 32));
    }
    return out;
  }

  clear(): void {
    this.count = 0;
    this.head = 0;
  }
}
