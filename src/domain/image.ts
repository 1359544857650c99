/**
 * A domain's image: everything that defines its admitted history, as plain bytes — what a
 * checkpoint stores and what the history digest hashes. Restoring an image (its ids inserted, its
 * frontier ring of ids copied back) gives a domain that behaves exactly like the one it was taken
 * from; nothing in it refers to an id by its position in the index.
 */
import { hash } from 'blake3-jit';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { CLOCK_BYTES, FRONTIER_BYTES, OFF_CELLS, OFF_CLOCK, OFF_FRONTIER, W_HEAD_COUNT, W_HEAD_START, W_POPCOUNT } from './control-block.js';

export interface DomainImage {
  /** 64 bytes per cell. */
  readonly cells: Uint8Array;
  /** The Bloom clock, 64 bytes. */
  readonly clock: Uint8Array;
  /**
   * The frontier ring as it is in the control block: FRONTIER_WIDTH slots of one 32-byte id
   * (FRONTIER_BYTES), and where it starts and how many heads it holds. Slots outside
   * [start, start + count) hold whatever they last held; they are part of the image all the same.
   */
  readonly heads: Uint8Array;
  readonly headStart: number;
  readonly headCount: number;
  readonly popcount: number;
  /** Every admitted id, 32 bytes each, in memcmp order (the canonical order of the set). */
  readonly ids: Uint8Array;
}

/** Bytes of one BLAKE3 part hash. */
const HASH_BYTES = 32;

/** Copies a control block's cells, clock and frontier into an image with the given `ids`. */
export function imageOf(control: SharedArrayBuffer, cells: number, ids: Uint8Array): DomainImage {
  const ctl = new Uint32Array(control);
  return {
    cells: new Uint8Array(control.slice(OFF_CELLS, OFF_CELLS + cells * STATE_CELL_BYTES)),
    clock: new Uint8Array(control.slice(OFF_CLOCK, OFF_CLOCK + CLOCK_BYTES)),
    heads: new Uint8Array(control.slice(OFF_FRONTIER, OFF_FRONTIER + FRONTIER_BYTES)),
    headStart: ctl[W_HEAD_START]!,
    headCount: ctl[W_HEAD_COUNT]!,
    popcount: ctl[W_POPCOUNT]!,
    ids,
  };
}

/** Writes an image's cells, clock, frontier and popcount into a control block (the ids are the index's business). */
export function writeImageState(control: SharedArrayBuffer, image: DomainImage): void {
  const ctl = new Uint32Array(control);
  new Uint8Array(control, OFF_CELLS, image.cells.length).set(image.cells);
  new Uint8Array(control, OFF_CLOCK, CLOCK_BYTES).set(image.clock);
  new Uint8Array(control, OFF_FRONTIER, FRONTIER_BYTES).set(image.heads);
  ctl[W_HEAD_START] = image.headStart;
  ctl[W_HEAD_COUNT] = image.headCount;
  ctl[W_POPCOUNT] = image.popcount;
}

/**
 * The three part hashes of an image, 96 bytes: BLAKE3(cells) ‖ BLAKE3(clock ‖ heads) ‖ BLAKE3(ids).
 * The heads are hashed at whatever length the image holds them (a version-1 checkpoint's were 32
 * bytes of key numbers; see checkpoint.ts).
 */
export function hashParts(image: DomainImage): Uint8Array {
  const clockAndHeads = new Uint8Array(CLOCK_BYTES + image.heads.length);
  clockAndHeads.set(image.clock);
  clockAndHeads.set(image.heads, CLOCK_BYTES);
  const parts = new Uint8Array(3 * HASH_BYTES);
  parts.set(hash(image.cells), 0);
  parts.set(hash(clockAndHeads), HASH_BYTES);
  parts.set(hash(image.ids), 2 * HASH_BYTES);
  return parts;
}
