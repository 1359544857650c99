/**
 * Word access to a 64-byte state cell for invariants, without allocating per call.
 *
 * Kernels hand `apply` a cell that carries its own `Uint32Array` view (STATE_WORDS). For anything
 * else — a plain Uint8Array a caller passes directly — one cached view per invariant is kept, and
 * a cell that is not 4-byte aligned is applied through an aligned copy.
 */
import { U64_MAX, readU64le, writeU64le } from '../core/bytes.js';
import { STATE_CELL_BYTES, STATE_WORDS, StateCell, cellBytes, stateView, type StateView } from '../core/state-cell.js';
import { InvalidArgumentError, ValueOutOfRangeError } from '../errors.js';

export class StateWords {
  private last: Uint8Array | undefined;
  private lastWords: Uint32Array = new Uint32Array(STATE_CELL_BYTES / 4);
  private readonly aligned: StateView = stateView(new ArrayBuffer(STATE_CELL_BYTES), 0);

  /** The cell's 16 words, or undefined if the cell is not 4-byte aligned (use `viaAlignedCopy`). */
  of(state: Uint8Array): Uint32Array | undefined {
    const words = (state as StateView)[STATE_WORDS];
    if (words !== undefined) return words;
    if (state !== this.last) {
      if ((state.byteOffset & 3) !== 0) return undefined;
      this.last = state;
      this.lastWords = new Uint32Array(state.buffer, state.byteOffset, STATE_CELL_BYTES / 4);
    }
    return this.lastWords;
  }

  /** Runs `apply` on an aligned copy of an unaligned cell; copies back on success. */
  viaAlignedCopy(apply: (payload: Uint8Array, state: Uint8Array) => number, payload: Uint8Array, state: Uint8Array): number {
    this.aligned.set(state);
    const code = apply(payload, this.aligned);
    if (code === 0) state.set(this.aligned);
    return code;
  }
}

/** Little-endian u32 at `offset` of `bytes` (any alignment). */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/**
 * A state cell holding one u64 at bytes 0..8 and zeros elsewhere (MaxState, GCounterState).
 * Subclasses name the value; this holds the layout once.
 */
export abstract class U64Cell {
  protected constructor(protected readonly u64: bigint, what: string) {
    if (typeof u64 !== 'bigint') throw new InvalidArgumentError(`${what} must be a bigint`);
    if (u64 < 0n || u64 > U64_MAX) throw new ValueOutOfRangeError(`${what} ${u64} does not fit in u64`);
  }

  /** The cell's 64 bytes; throws ValueOutOfRange outside u64. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    writeU64le(out, 0, this.u64);
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  /** The u64 at bytes 0..8 of a cell. */
  protected static read(cell: StateCell | Uint8Array): bigint {
    return readU64le(cellBytes(cell), 0);
  }
}
