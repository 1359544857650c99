/**
 * TotalSupplyInvariant: a signed 128-bit balance kept within [min, max].
 *
 * State (64 bytes): balance i128 at 0, min i128 at 16, max i128 at 32, zero padding at 48.
 * Payload (at least 16 bytes): the delta, i128 little-endian, then optional application bytes
 * (a nonce, a memo) that the invariant ignores. The fact id covers them, so two transfers of the
 * same amount on the same causal parents stay two facts when their nonces differ.
 *
 * The sum is exact: a result outside i128 is rejected (`Overflow` or `Underflow`), never wrapped.
 * Because the bounds can make acceptance depend on what was admitted before, the class is
 * `BoundedCommutative`: replicating it safely takes escrow, and `admitReplicated` refuses it.
 */
import { InvalidArgumentError } from '../errors.js';
import { I128_MAX, I128_MIN, i128le, readI128le, writeI128le } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { StateWords, readU32 } from './state-words.js';
import { AlgebraicClass, type Invariant } from './invariant.js';

/** Minimum payload: the 16-byte delta. */
export const TOTAL_SUPPLY_PAYLOAD_BYTES = 16;

/** Limb offsets (u32 words) of min and max in the state cell; the balance is at 0. */
const MIN = 4;
const MAX = 8;

export class TotalSupplyInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.BoundedCommutative;
  readonly mutatesOnlyOnSuccess = true;

  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < TOTAL_SUPPLY_PAYLOAD_BYTES || state.length !== STATE_CELL_BYTES) {
      return InvariantCode.MalformedPayload;
    }
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    // delta, little-endian limbs d0 (least significant) .. d3 (sign)
    const d0 = readU32(payload, 0);
    const d1 = readU32(payload, 4);
    const d2 = readU32(payload, 8);
    const d3 = readU32(payload, 12);
    const b3 = s[3]!;
    // balance + delta with carries; each partial sum is below 2^33, exact in a double.
    let t = s[0]! + d0;
    const r0 = t >>> 0;
    t = s[1]! + d1 + (t > 0xffffffff ? 1 : 0);
    const r1 = t >>> 0;
    t = s[2]! + d2 + (t > 0xffffffff ? 1 : 0);
    const r2 = t >>> 0;
    t = b3 + d3 + (t > 0xffffffff ? 1 : 0);
    const r3 = t >>> 0;
    // Signed overflow: operands share a sign and the result's sign differs. The exact sum is
    // then past max (positive delta) or below min (negative delta).
    if ((~(b3 ^ d3) & (b3 ^ r3) & 0x80000000) !== 0) {
      return (d3 & 0x80000000) === 0 ? InvariantCode.Overflow : InvariantCode.Underflow;
    }
    if (lessI128(r0, r1, r2, r3, s[MIN]!, s[MIN + 1]!, s[MIN + 2]!, s[MIN + 3]!)) return InvariantCode.Underflow;
    if (lessI128(s[MAX]!, s[MAX + 1]!, s[MAX + 2]!, s[MAX + 3]!, r0, r1, r2, r3)) return InvariantCode.Overflow;
    s[0] = r0;
    s[1] = r1;
    s[2] = r2;
    s[3] = r3;
    return InvariantCode.Ok;
  }

  /** The default state: balance 0 within the full i128 range. */
  initialState(): Uint8Array {
    return new ConservationState(0n).toBytes();
  }

  /** The payload for `delta`, followed by `appData` (e.g. a nonce) if given. */
  static payload(delta: bigint, appData?: Uint8Array): Uint8Array {
    if (appData === undefined) return i128le(delta);
    if (!(appData instanceof Uint8Array)) throw new InvalidArgumentError('appData must be a Uint8Array');
    const out = new Uint8Array(TOTAL_SUPPLY_PAYLOAD_BYTES + appData.length);
    writeI128le(out, 0, delta);
    // `set` throws on a detached array even when it holds no bytes.
    if (appData.length > 0) out.set(appData, TOTAL_SUPPLY_PAYLOAD_BYTES);
    return out;
  }
}

/** a < b for signed 128-bit values given as u32 limbs, least significant first. */
function lessI128(a0: number, a1: number, a2: number, a3: number, b0: number, b1: number, b2: number, b3: number): boolean {
  if (a3 !== b3) return (a3 | 0) < (b3 | 0);
  if (a2 !== b2) return a2 < b2;
  if (a1 !== b1) return a1 < b1;
  return a0 < b0;
}

/** The state of a {@link TotalSupplyInvariant}: a balance within [min, max], all i128. */
export class ConservationState {
  constructor(
    readonly balance: bigint,
    readonly min: bigint = I128_MIN,
    readonly max: bigint = I128_MAX,
  ) {
    for (const [name, v] of [['balance', balance], ['min', min], ['max', max]] as const) {
      if (typeof v !== 'bigint') throw new InvalidArgumentError(`${name} must be a bigint`);
    }
    if (min > max) throw new InvalidArgumentError(`min ${min} is greater than max ${max}`);
    if (balance < min || balance > max) {
      throw new InvalidArgumentError(`balance ${balance} is outside [${min}, ${max}]`);
    }
  }

  /** The state's 64 bytes. Throws `ValueOutOfRange` if a field does not fit in i128. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    writeI128le(out, 0, this.balance);
    writeI128le(out, 16, this.min);
    writeI128le(out, 32, this.max);
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  static fromCell(cell: StateCell | Uint8Array): ConservationState {
    const bytes = cellBytes(cell);
    return new ConservationState(readI128le(bytes, 0), readI128le(bytes, 16), readI128le(bytes, 32));
  }
}
