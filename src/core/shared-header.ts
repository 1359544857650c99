/**
 * Every structure ctfs lays out in a SharedArrayBuffer starts with two u32 words: a magic number
 * naming the structure and its layout version. Another thread's `attach` checks both before it
 * trusts anything else in the buffer.
 */
import { SharedMemoryError } from '../errors.js';

/** Bytes of the magic and version words. */
export const SHARED_HEADER_BYTES = 8;

/**
 * Checks that `buffer` is a SharedArrayBuffer of at least `minBytes` that starts with `magic` and
 * `version`, and returns its header words (u32, as many as fit in `minBytes`, at least the two).
 * `what` names the structure in the error ("an SpscRing").
 */
export function checkSharedHeader(buffer: unknown, magic: number, version: number, what: string, minBytes: number): Uint32Array {
  const bytes = Math.max(SHARED_HEADER_BYTES, minBytes);
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < bytes) {
    throw new SharedMemoryError(`not the buffer of ${what}: a SharedArrayBuffer of at least ${bytes} bytes is needed`);
  }
  const header = new Uint32Array(buffer, 0, Math.floor(bytes / 4));
  if (header[0] !== magic >>> 0 || header[1] !== version) {
    throw new SharedMemoryError(`buffer does not hold ${what} of layout version ${version}`);
  }
  return header;
}
