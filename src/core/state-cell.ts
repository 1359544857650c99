/**
 * StateCell: the 64 bytes (one cache line) an invariant owns. Kernels never interpret it; only
 * the invariant does. A cell is a view, so it may live inside a SharedArrayBuffer.
 */
import { InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';

export const STATE_CELL_BYTES = 64;

/**
 * @internal Kernels attach a `Uint32Array` view of their state cell to the `Uint8Array` they pass
 * to `apply`, under this symbol, so an invariant can read and write words without building a
 * view per call (one invariant instance may serve many cells, e.g. every tenant).
 */
export const STATE_WORDS: unique symbol = Symbol('ctfs.stateWords');

/** @internal A state cell view carrying its word view. */
export interface StateView extends Uint8Array {
  [STATE_WORDS]?: Uint32Array;
}

/** @internal A 64-byte view of `buffer` at a 4-aligned `byteOffset` that carries its word view. */
export function stateView(buffer: ArrayBufferLike, byteOffset: number): StateView {
  const view: StateView = new Uint8Array(buffer, byteOffset, STATE_CELL_BYTES);
  view[STATE_WORDS] = new Uint32Array(buffer, byteOffset, STATE_CELL_BYTES / 4);
  return view;
}

export class StateCell {
  /** The cell's 64 bytes (a view; writes go to the underlying memory). */
  readonly bytes: Uint8Array;

  /** A zeroed cell, or a view of 64 bytes of `buffer` at `byteOffset`. */
  constructor(buffer?: ArrayBufferLike, byteOffset = 0) {
    if (buffer === undefined) {
      this.bytes = new Uint8Array(STATE_CELL_BYTES);
      return;
    }
    if (!(buffer instanceof ArrayBuffer || buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError('pass an ArrayBuffer or SharedArrayBuffer (or use StateCell.from to copy bytes)');
    }
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset + STATE_CELL_BYTES > buffer.byteLength) {
      throw new InvalidArgumentError(`a 64-byte state cell does not fit at offset ${describeValue(byteOffset)} of ${buffer.byteLength} bytes`);
    }
    this.bytes = new Uint8Array(buffer, byteOffset, STATE_CELL_BYTES);
  }

  /** A new cell holding a copy of exactly 64 bytes. */
  static from(bytes: Uint8Array): StateCell {
    const cell = new StateCell();
    cell.copyFrom(bytes);
    return cell;
  }

  /** Overwrites the cell with exactly 64 bytes. */
  copyFrom(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array) || bytes.length !== STATE_CELL_BYTES) {
      throw new InvalidArgumentError(`a state cell is exactly ${STATE_CELL_BYTES} bytes`);
    }
    this.bytes.set(bytes);
  }

  /** A copy of the cell's bytes. */
  toBytes(): Uint8Array {
    return this.bytes.slice();
  }

  zero(): void {
    this.bytes.fill(0);
  }

  clone(): StateCell {
    return StateCell.from(this.bytes);
  }

  equals(other: StateCell): boolean {
    for (let i = 0; i < STATE_CELL_BYTES; i++) if (this.bytes[i] !== other.bytes[i]) return false;
    return true;
  }
}

/** Accepts a StateCell or its 64 raw bytes. */
export function cellBytes(cell: StateCell | Uint8Array): Uint8Array {
  const bytes = cell instanceof StateCell ? cell.bytes : cell;
  if (!(bytes instanceof Uint8Array) || bytes.length !== STATE_CELL_BYTES) {
    throw new InvalidArgumentError(`a state cell is exactly ${STATE_CELL_BYTES} bytes`);
  }
  return bytes;
}
