/**
 * GCounterInvariant: a grow-only u64 counter.
 *
 * State: count u64 at bytes 0..8. Payload: at least 8 bytes, the increment u64. Rule: count :=
 * min(count + increment, 2^64 − 1), computed exactly. Saturation is deliberate: min(sum, cap) does
 * not depend on the order of the increments, so every replica admitting the same facts in any
 * order reaches the same count and none is ever refused — class `Commutative`. Once saturated the
 * counter stays at 2^64 − 1. It is an operation counter, not a per-node CRDT: each increment must
 * be admitted once, which the kernels' exact deduplication guarantees.
 */
import { u64le } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, type StateCell } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { StateWords, U64Cell, readU32 } from './state-words.js';

const U32 = 0x1_0000_0000;

export class GCounterInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Commutative;
  readonly mutatesOnlyOnSuccess = true;
  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 8 || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    const lo = s[0]! + readU32(payload, 0);
    const hi = s[1]! + readU32(payload, 4) + (lo >= U32 ? 1 : 0);
    if (hi >= U32) {
      s[0] = 0xffffffff; // saturate at 2^64 − 1
      s[1] = 0xffffffff;
    } else {
      s[0] = lo >>> 0;
      s[1] = hi;
    }
    return InvariantCode.Ok;
  }

  /** The payload adding `increment`. */
  static payload(increment: bigint | number): Uint8Array {
    return u64le(increment);
  }
}

/** The state of a {@link GCounterInvariant}. */
export class GCounterState extends U64Cell {
  constructor(value: bigint = 0n) {
    super(value, 'count');
  }

  get count(): bigint {
    return this.u64;
  }

  static fromCell(cell: StateCell | Uint8Array): GCounterState {
    return new GCounterState(U64Cell.read(cell));
  }
}
