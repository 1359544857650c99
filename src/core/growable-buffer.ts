/**
 * Growable SharedArrayBuffers (ES2024; Node 20 has them, V8 11.3) are not in the ES2023 lib the
 * project compiles against: their constructor option and members, typed here in one place.
 */
interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(newLength: number): void;
}

type GrowableConstructor = new (length: number, options: { maxByteLength: number }) => GrowableSharedArrayBuffer;

/** A SharedArrayBuffer of `length` bytes that can grow, in place, up to `maxByteLength`; every thread holding it sees it grow. */
export function growableSharedBuffer(length: number, maxByteLength: number): SharedArrayBuffer {
  return new (SharedArrayBuffer as unknown as GrowableConstructor)(length, { maxByteLength });
}

/** True if `buffer` is a growable SharedArrayBuffer. */
export function isGrowable(buffer: SharedArrayBuffer): boolean {
  return (buffer as GrowableSharedArrayBuffer).growable === true;
}

/** The most `buffer` can grow to (its length if it is not growable). */
export function maxByteLengthOf(buffer: SharedArrayBuffer): number {
  return (buffer as Partial<GrowableSharedArrayBuffer>).maxByteLength ?? buffer.byteLength;
}

/** Grows `buffer` to `length` bytes; throws RangeError if the system refuses or it is past the maximum. */
export function growBuffer(buffer: SharedArrayBuffer, length: number): void {
  (buffer as GrowableSharedArrayBuffer).grow(length);
}
