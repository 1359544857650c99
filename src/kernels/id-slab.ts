/**
 * IdSlab: where durable handles keep a copy of their fact's id. A handle must not share the
 * caller's array (callers reuse them), but a fresh 32-byte array per handle costs more than the
 * rest of the handle (an allocation, and V8's typed-array construction from another view); a copy
 * into a shared slab is a 32-byte memcpy. A full slab is dropped, never reused, and freed by the
 * collector once no handle refers to it.
 */
import { FACT_ID_BYTES } from '../core/fact.js';

/** 1,024 ids a slab: 32 KiB, one allocation per 1,024 handles. */
const SLAB_IDS = 1024;
const SLAB_BYTES = SLAB_IDS * FACT_ID_BYTES;

export class IdSlab {
  /** The slab the last `put` wrote into. */
  slab = new Uint8Array(SLAB_BYTES);
  private used = 0;

  /** Copies `id` (FACT_ID_BYTES long) into `slab`; returns its offset there. */
  put(id: Uint8Array): number {
    if (this.used === SLAB_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.used = 0;
    }
    const at = this.used;
    this.slab.set(id, at);
    this.used = at + FACT_ID_BYTES;
    return at;
  }
}
