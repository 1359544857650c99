/**
 * BoundedGCounterInvariant: a grow-only u64 counter that must stay ≤ its capacity.
 *
 * State: value u64 at bytes 0..8, capacity u64 at 8..16. Payload: at least 8 bytes, the increment.
 * Rule: nv := value + increment, exact; nv > capacity (or beyond u64) → `Overflow`, else value :=
 * nv. Which increments fit depends on what was admitted before, so replicas admitting in different
 * orders may refuse different facts: class `BoundedCommutative`, replicated through escrow.
 */
import { InvalidArgumentError, ValueOutOfRangeError } from '../errors.js';
import { U64_MAX, readU64le, u64le, writeU64le } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { StateWords, readU32 } from './state-words.js';

const U32 = 0x1_0000_0000;

export class BoundedGCounterInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.BoundedCommutative;
  readonly mutatesOnlyOnSuccess = true;
  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 8 || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    const lo = s[0]! + readU32(payload, 0);
    const hi = s[1]! + readU32(payload, 4) + (lo >= U32 ? 1 : 0);
    if (hi >= U32) return InvariantCode.Overflow;
    const nlo = lo >>> 0;
    const capHi = s[3]!;
    if (hi > capHi || (hi === capHi && nlo > s[2]!)) return InvariantCode.Overflow;
    s[0] = nlo;
    s[1] = hi;
    return InvariantCode.Ok;
  }

  /** Default state: value 0, capacity 2^64 − 1. */
  initialState(): Uint8Array {
    return new BoundedCounterState(0n, U64_MAX).toBytes();
  }

  /** The payload adding `increment`. */
  static payload(increment: bigint | number): Uint8Array {
    return u64le(increment);
  }
}

/** The state of a {@link BoundedGCounterInvariant}: value ≤ capacity. */
export class BoundedCounterState {
  constructor(
    readonly value: bigint,
    readonly capacity: bigint,
  ) {
    if (typeof value !== 'bigint' || typeof capacity !== 'bigint') throw new InvalidArgumentError('value and capacity must be bigints');
    if (value < 0n || capacity > U64_MAX) throw new ValueOutOfRangeError('value and capacity are u64');
    if (value > capacity) throw new InvalidArgumentError(`value ${value} exceeds capacity ${capacity}`);
  }

  /** capacity − value. */
  get headroom(): bigint {
    return this.capacity - this.value;
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    writeU64le(out, 0, this.value);
    writeU64le(out, 8, this.capacity);
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  static fromCell(cell: StateCell | Uint8Array): BoundedCounterState {
    const bytes = cellBytes(cell);
    return new BoundedCounterState(readU64le(bytes, 0), readU64le(bytes, 8));
  }
}
