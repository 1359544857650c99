/**
 * Little-endian fixed-width integer helpers for the API boundary. These use BigInt and
 * allocate; hot paths use the u32-limb routines in `int128.ts` instead.
 */
import { InvalidArgumentError, ValueOutOfRangeError } from '../errors.js';
import { describeValue } from '../describe-value.js';

export const I128_MIN = -(1n << 127n);
export const I128_MAX = (1n << 127n) - 1n;
export const U64_MAX = (1n << 64n) - 1n;

function checkBigint(value: unknown, what: string): asserts value is bigint {
  if (typeof value !== 'bigint') throw new InvalidArgumentError(`${what} must be a bigint, got ${typeof value}`);
}

/** Writes `value` as 16-byte two's-complement little-endian into `out` at `offset`. */
export function writeI128le(out: Uint8Array, offset: number, value: bigint): void {
  checkBigint(value, 'i128 value');
  if (value < I128_MIN || value > I128_MAX) throw new ValueOutOfRangeError(`${value} does not fit in i128`);
  checkSpan(out, offset, 16);
  let v = BigInt.asUintN(128, value);
  for (let i = 0; i < 16; i++) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** `value` as 16 bytes, two's-complement little-endian. Throws `ValueOutOfRange` outside i128. */
export function i128le(value: bigint): Uint8Array {
  const out = new Uint8Array(16);
  writeI128le(out, 0, value);
  return out;
}

/** Reads a 16-byte two's-complement little-endian integer. */
export function readI128le(bytes: Uint8Array, offset = 0): bigint {
  checkSpan(bytes, offset, 16);
  let v = 0n;
  for (let i = 15; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i]!);
  return BigInt.asIntN(128, v);
}

/** Writes `value` as 8-byte unsigned little-endian. Accepts a bigint or a safe non-negative integer. */
export function writeU64le(out: Uint8Array, offset: number, value: bigint | number): void {
  const v = toU64(value);
  checkSpan(out, offset, 8);
  const lo = Number(v & 0xffffffffn);
  const hi = Number(v >> 32n);
  out[offset] = lo & 0xff;
  out[offset + 1] = (lo >>> 8) & 0xff;
  out[offset + 2] = (lo >>> 16) & 0xff;
  out[offset + 3] = lo >>> 24;
  out[offset + 4] = hi & 0xff;
  out[offset + 5] = (hi >>> 8) & 0xff;
  out[offset + 6] = (hi >>> 16) & 0xff;
  out[offset + 7] = hi >>> 24;
}

/** `value` as 8 bytes, unsigned little-endian. Throws `ValueOutOfRange` outside [0, 2^64). */
export function u64le(value: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64le(out, 0, value);
  return out;
}

/** Reads an 8-byte unsigned little-endian integer. */
export function readU64le(bytes: Uint8Array, offset = 0): bigint {
  checkSpan(bytes, offset, 8);
  const lo = (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
  const hi = (bytes[offset + 4]! | (bytes[offset + 5]! << 8) | (bytes[offset + 6]! << 16) | (bytes[offset + 7]! << 24)) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function toU64(value: bigint | number): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new ValueOutOfRangeError(`${value} is not a safe integer`);
    value = BigInt(value);
  }
  checkBigint(value, 'u64 value');
  if (value < 0n || value > U64_MAX) throw new ValueOutOfRangeError(`${value} does not fit in u64`);
  return value;
}

function checkSpan(bytes: Uint8Array, offset: number, width: number): void {
  checkBytes(bytes, `a ${width}-byte field's bytes`);
  if (!Number.isInteger(offset) || offset < 0 || offset + width > bytes.length) {
    throw new InvalidArgumentError(`a ${width}-byte field at offset ${describeValue(offset)} does not fit in ${bytes.length} bytes`);
  }
}

/**
 * A copy of `bytes[from, to)` in a new plain Uint8Array. For whatever keeps a caller's bytes:
 * `Buffer#slice` returns a view of the caller's memory, not a copy, and a subclass may override
 * `slice`, so this never calls the argument's own methods.
 */
export function copyBytes(bytes: Uint8Array, from = 0, to = bytes.length): Uint8Array {
  // An empty range needs no view, and a view of a detached buffer (length 0) cannot be made.
  if (to <= from) return new Uint8Array(0);
  return new Uint8Array(Uint8Array.prototype.subarray.call(bytes, from, to));
}

function checkBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${what} must be a Uint8Array, got ${describeValue(value)}`);
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  checkBytes(bytes, 'toHex: bytes');
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/** Bytes from an even-length hex string. */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new InvalidArgumentError('expected an even-length hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Bytewise unsigned comparison: negative if a < b, 0 if equal, positive if a > b. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  checkBytes(a, 'compareBytes: a');
  checkBytes(b, 'compareBytes: b');
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when both arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  checkBytes(a, 'bytesEqual: a');
  checkBytes(b, 'bytesEqual: b');
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** The bytes of `parts`, one after another, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
