/**
 * The digest of a kernel's admitted history: one BLAKE3 hash over its state cells, Bloom clock,
 * frontier ring (the heads' ids) and every id in memcmp order (the set's canonical order, whatever
 * the history's tiers hold). Two kernels have equal digests
 * exactly when a checkpoint of each would hold the same bytes (apart from the log fields), so it
 * is the cheap way to compare a pool shard with a kernel built elsewhere, or two replicas.
 *
 *   D = BLAKE3("ctfs/history/v2\0" ‖ cells u32 ‖ ids u32 ‖ popcount u32 ‖ headStart u32 ‖ headCount u32
 *              ‖ BLAKE3(cells) ‖ BLAKE3(clock ‖ heads) ‖ BLAKE3(ids))            (integers little-endian)
 *
 * v2: the heads part holds the frontier ring's 8 ids (256 bytes); v1 held 8 key numbers (32).
 *
 * The image's ids are a sorted copy (`exportImage`): the writer pays the copy, the hashing can
 * run elsewhere (a pool thread hashes after releasing the shard's lock).
 */
import { hash } from 'blake3-jit';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { hashParts, type DomainImage } from './image.js';

const CONTEXT = new TextEncoder().encode('ctfs/history/v2\0');
/** Five u32 fields between the context and the part hashes. */
const FIELDS_BYTES = 20;
/** Bytes of a history digest. */
export const HISTORY_DIGEST_BYTES = 32;

/** The history digest of `image` (see the module comment). */
export function historyDigest(image: DomainImage): Uint8Array {
  const top = new Uint8Array(CONTEXT.length + FIELDS_BYTES + 96);
  top.set(CONTEXT);
  const fields = new DataView(top.buffer, CONTEXT.length, FIELDS_BYTES);
  fields.setUint32(0, image.cells.length / STATE_CELL_BYTES, true);
  fields.setUint32(4, image.ids.length / 32, true);
  fields.setUint32(8, image.popcount, true);
  fields.setUint32(12, image.headStart, true);
  fields.setUint32(16, image.headCount, true);
  top.set(hashParts(image), CONTEXT.length + FIELDS_BYTES);
  return hash(top);
}

const SET_CONTEXT = new TextEncoder().encode('ctfs/set/v1\0');

/**
 * The digest of what was admitted, not of the order it came in: the state cells, the Bloom clock
 * and the ids in memcmp order — no frontier ring, which remembers the most recent heads and so
 * differs between replicas that admitted the same facts in different orders. For coordination-free
 * invariants the state is order-independent too, so replicas holding the same facts have equal set
 * digests (docs/FORMATS.md §7).
 *
 *   S = BLAKE3("ctfs/set/v1\0" ‖ cells u32 ‖ ids u32 ‖ BLAKE3(cells) ‖ BLAKE3(clock) ‖ BLAKE3(ids))
 */
export function setDigest(image: DomainImage): Uint8Array {
  const top = new Uint8Array(SET_CONTEXT.length + 8 + 96);
  top.set(SET_CONTEXT);
  const fields = new DataView(top.buffer, SET_CONTEXT.length, 8);
  fields.setUint32(0, image.cells.length / STATE_CELL_BYTES, true);
  fields.setUint32(4, image.ids.length / 32, true);
  let at = SET_CONTEXT.length + 8;
  for (const part of [image.cells, image.clock, image.ids]) {
    top.set(hash(part), at);
    at += 32;
  }
  return hash(top);
}
