/** Deterministic test ids. */
import { u64le } from '../../src/index.js';

/** 32 bytes, all equal to `v` (upstream's `[v;32]`). */
export function fill(v: number): Uint8Array {
  return new Uint8Array(32).fill(v);
}

/** u64 LE `i` in bytes 0..8, zeros elsewhere (upstream's `seq(i)`). */
export function seq(i: number): Uint8Array {
  const id = new Uint8Array(32);
  id.set(u64le(i), 0);
  return id;
}
