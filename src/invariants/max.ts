/**
 * MaxInvariant: a u64 register that only grows.
 *
 * State: value u64 at bytes 0..8 (the rest zero). Payload: at least 8 bytes, the proposed u64;
 * further bytes are application data. Rule: value := max(value, proposed). It never rejects a
 * well-formed payload, and max is commutative, associative and idempotent: class `Lattice`.
 */
import { u64le } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, type StateCell } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { StateWords, U64Cell, readU32 } from './state-words.js';

export class MaxInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Lattice;
  readonly mutatesOnlyOnSuccess = true;
  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 8 || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    const lo = readU32(payload, 0);
    const hi = readU32(payload, 4);
    const curHi = s[1]!;
    if (hi > curHi || (hi === curHi && lo > s[0]!)) {
      s[0] = lo;
      s[1] = hi;
    }
    return InvariantCode.Ok;
  }

  /** The payload proposing `value`. */
  static payload(value: bigint | number): Uint8Array {
    return u64le(value);
  }
}

/** The state of a {@link MaxInvariant}. */
export class MaxState extends U64Cell {
  constructor(value: bigint = 0n) {
    super(value, 'value');
  }

  get value(): bigint {
    return this.u64;
  }

  static fromCell(cell: StateCell | Uint8Array): MaxState {
    return new MaxState(U64Cell.read(cell));
  }
}
