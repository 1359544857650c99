/** Deterministic test ids. */
import { u64le } from './lib.js';

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

/**
 * A source of fresh 32-byte ids, never repeated within a run: a counter (bytes 0..4), a random
 * salt per source (bytes 4..8) and `tag` in byte 31, so sources with different tags never collide.
 */
export function freshIdSource(tag: number): () => Uint8Array {
  const salt = (Math.random() * 0xffffffff) >>> 0;
  let counter = 0;
  return () => {
    const id = new Uint8Array(32);
    const v = new DataView(id.buffer);
    v.setUint32(0, ++counter, true);
    v.setUint32(4, salt, true);
    id[31] = tag;
    return id;
  };
}
