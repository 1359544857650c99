/**
 * LWWInvariant: a last-writer-wins register of 32 bytes.
 *
 * State: value at bytes 0..32, timestamp u64 at 32..40, node id u64 at 40..48, zero at 48..64.
 * Payload: at least 48 bytes in the same layout (value, timestamp, node id); further bytes are
 * application data. Rule: the write replaces the state iff (timestamp, node id, value) is greater
 * than the current (timestamp, node id, value), compared in that order — u64s numerically, values
 * bytewise. Ties on (timestamp, node id) are broken by the value, so every replica keeps the same
 * winner whatever the order (upstream kept whichever came first). Never rejects: class `Lattice`.
 */
import { InvalidArgumentError, ValueOutOfRangeError } from '../errors.js';
import { U64_MAX, copyBytes, readU64le, writeU64le } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { StateWords, readU32 } from './state-words.js';

export const LWW_PAYLOAD_BYTES = 48;

export class LWWInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Lattice;
  readonly mutatesOnlyOnSuccess = true;
  private readonly words = new StateWords();

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < LWW_PAYLOAD_BYTES || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const s = this.words.of(state);
    if (s === undefined) return this.words.viaAlignedCopy((p, c) => this.apply(p, c), payload, state);
    if (newer(payload, state, s)) {
      for (let w = 0; w < LWW_PAYLOAD_BYTES / 4; w++) s[w] = readU32(payload, 4 * w);
    }
    return InvariantCode.Ok;
  }

  /** A write of `value` (32 bytes) at `timestamp` by `nodeId`. */
  static payload(value: Uint8Array, timestamp: bigint | number, nodeId: bigint | number): Uint8Array {
    if (!(value instanceof Uint8Array) || value.length !== 32) throw new InvalidArgumentError('an LWW value is 32 bytes');
    const out = new Uint8Array(LWW_PAYLOAD_BYTES);
    out.set(value, 0);
    writeU64le(out, 32, timestamp); // validates: a u64, or a safe non-negative integer
    writeU64le(out, 40, nodeId);
    return out;
  }
}

/** (timestamp, node, value) of the payload > that of the state (words: timestamp 8–9, node 10–11). */
function newer(payload: Uint8Array, state: Uint8Array, s: Uint32Array): boolean {
  let p = readU32(payload, 36);
  let c = s[9]!;
  if (p !== c) return p > c;
  p = readU32(payload, 32);
  c = s[8]!;
  if (p !== c) return p > c;
  p = readU32(payload, 44);
  c = s[11]!;
  if (p !== c) return p > c;
  p = readU32(payload, 40);
  c = s[10]!;
  if (p !== c) return p > c;
  for (let i = 0; i < 32; i++) {
    if (payload[i] !== state[i]) return payload[i]! > state[i]!;
  }
  return false;
}

/** The state of an {@link LWWInvariant}. */
export class LWWState {
  /** The register's 32 bytes (a copy of what the constructor was given). */
  readonly value: Uint8Array;

  constructor(
    value: Uint8Array = new Uint8Array(32),
    readonly timestamp: bigint = 0n,
    readonly nodeId: bigint = 0n,
  ) {
    if (!(value instanceof Uint8Array) || value.length !== 32) throw new InvalidArgumentError('an LWW value is 32 bytes');
    if (typeof timestamp !== 'bigint' || typeof nodeId !== 'bigint') throw new InvalidArgumentError('timestamp and nodeId must be bigints');
    if (timestamp < 0n || timestamp > U64_MAX || nodeId < 0n || nodeId > U64_MAX) throw new ValueOutOfRangeError('timestamp and nodeId are u64');
    this.value = copyBytes(value);
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    out.set(this.value, 0);
    writeU64le(out, 32, this.timestamp);
    writeU64le(out, 40, this.nodeId);
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  static fromCell(cell: StateCell | Uint8Array): LWWState {
    const bytes = cellBytes(cell);
    return new LWWState(bytes.subarray(0, 32), readU64le(bytes, 32), readU64le(bytes, 40));
  }
}
