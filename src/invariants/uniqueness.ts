/**
 * UniquenessInvariant: each element of [0, 512) may be claimed once.
 *
 * State: a 512-bit set, element e in byte e >> 3 under mask 1 << (e & 7). Payload: at least 2
 * bytes, the element as u16; further bytes are application data. Rule: e ≥ 512 → `BoundsViolation`
 * (upstream silently aliased e to e mod 512, so 42 and 554 collided); already claimed →
 * `DuplicateElement`; else claim it. Which of two concurrent claims of one element wins depends on
 * arrival order, so replicas may refuse different facts: class `BoundedCommutative` (each element
 * is a resource of capacity one; escrow can partition elements between nodes).
 */
import { InvalidArgumentError } from '../errors.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { StateWords } from './state-words.js';
import { describeValue } from '../describe-value.js';

/** Elements are 0..511: one bit each in the 64-byte cell. */
export const UNIQUENESS_ELEMENTS = 512;

export class UniquenessInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.BoundedCommutative;
  readonly mutatesOnlyOnSuccess = true;
  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 2 || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    const e = payload[0]! | (payload[1]! << 8);
    if (e >= UNIQUENESS_ELEMENTS) return InvariantCode.BoundsViolation;
    const w = s[e >>> 5]!;
    const bit = 1 << (e & 31);
    if ((w & bit) !== 0) return InvariantCode.DuplicateElement;
    s[e >>> 5] = w | bit;
    return InvariantCode.Ok;
  }

  /** The payload claiming `element` (0..511). */
  static payload(element: number): Uint8Array {
    checkElement(element);
    return new Uint8Array([element & 0xff, element >>> 8]);
  }
}

function checkElement(element: number): void {
  if (!Number.isInteger(element) || element < 0 || element >= UNIQUENESS_ELEMENTS) {
    throw new InvalidArgumentError(`an element is an integer in [0, ${UNIQUENESS_ELEMENTS}), got ${describeValue(element)}`);
  }
}

/** The state of a {@link UniquenessInvariant}: the set of claimed elements. */
export class UniquenessState {
  readonly elements: readonly number[];

  constructor(elements: Iterable<number> = []) {
    if (elements === null || typeof (elements as Partial<Iterable<number>>)?.[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError(`elements must be an iterable of numbers, got ${describeValue(elements)}`);
    }
    // A typed array is read by index: iterating a detached one throws a TypeError.
    const list = ArrayBuffer.isView(elements) ? Array.prototype.slice.call(elements) : elements;
    const set = new Set<number>();
    for (const e of list) {
      checkElement(e);
      set.add(e);
    }
    this.elements = [...set].sort((a, b) => a - b);
  }

  has(element: number): boolean {
    return this.elements.includes(element);
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    for (const e of this.elements) out[e >>> 3] = out[e >>> 3]! | (1 << (e & 7));
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  static fromCell(cell: StateCell | Uint8Array): UniquenessState {
    const bytes = cellBytes(cell);
    const elements: number[] = [];
    for (let e = 0; e < UNIQUENESS_ELEMENTS; e++) if ((bytes[e >>> 3]! & (1 << (e & 7))) !== 0) elements.push(e);
    return new UniquenessState(elements);
  }
}
