/**
 * The control block of a causal domain: one small SharedArrayBuffer beside the exact index,
 * holding the live state written on every admission and the snapshot `publish()` copies it to.
 * This file owns the layout (docs/FORMATS.md §5): where every word is, how a block is created, and
 * what `attach` checks before another thread trusts one.
 */
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { checkSharedHeader } from '../core/shared-header.js';
/** What a control block is checked against: the exact history it belongs to. */
interface History {
  readonly domainId: number;
  readonly liveCount: number;
}
import { SharedMemoryError } from '../errors.js';

/** "CTKD" little-endian: marks a buffer as a kernel domain's control block. */
const MAGIC = 0x444b5443;
/** 4: the frontier ring holds the heads' ids (it held key numbers), and a reset count. */
const LAYOUT_VERSION = 4;
/** A domain holds at most this many state cells (one per invariant: MultiKernel's limit). */
export const MAX_CELLS = 8;
/** The frontier keeps at most this many heads (the most recent facts nothing depends on); a power of two. */
export const FRONTIER_WIDTH = 8;
/** Words of one head in the frontier ring: its 32-byte id as eight little-endian u32. */
export const HEAD_WORDS = 8;
/** Bytes of the frontier ring: FRONTIER_WIDTH ids. */
export const FRONTIER_BYTES = FRONTIER_WIDTH * HEAD_WORDS * 4;
/** Bytes of the Bloom clock (512 bits). */
export const CLOCK_BYTES = 64;

/**
 * Byte offsets. The live state, written on every admission: header line, counters line, clock,
 * frontier ring (four lines of ids), then up to 8 state cells. Then, 128 bytes past the cells (so
 * the writer's lines and the readers' never share a prefetch pair), the published snapshot: a
 * seqlock word on its own line, then copies of clock, frontier, counters and cells, written only
 * by `publish()`.
 */
export const OFF_COUNTERS = 64;
export const OFF_CLOCK = 128;
export const OFF_FRONTIER = 192;
export const OFF_CELLS = OFF_FRONTIER + FRONTIER_BYTES;
export const OFF_SEQLOCK = OFF_CELLS + MAX_CELLS * STATE_CELL_BYTES + 128;
const OFF_SNAPSHOT = OFF_SEQLOCK + 64;

/** Header words: magic, version, the id of the exact index this block belongs to, the cell count. */
const W_DOMAIN_ID = 2;
export const W_CELLS = 3;
/** Counter words (u32 index into the control block). */
export const W_POPCOUNT = OFF_COUNTERS / 4;
export const W_HEAD_COUNT = OFF_COUNTERS / 4 + 1;
export const W_MODE = OFF_COUNTERS / 4 + 2;
export const W_HEAD_START = OFF_COUNTERS / 4 + 3;
/**
 * How many times the domain was reset or restored (wrapping). A thread's recent-admissions cache
 * holds ids, which stay admitted until a reset; one filled before another thread's reset is
 * emptied when this count has moved.
 */
export const W_RESETS = OFF_COUNTERS / 4 + 4;
/** Word offsets of the live clock, frontier ring and cells. */
export const W_CLOCK = OFF_CLOCK / 4;
export const W_FRONTIER = OFF_FRONTIER / 4;
export const W_CELLS_START = OFF_CELLS / 4;
/**
 * The snapshot, in words from its start: clock (16 words), frontier ring (64), then start,
 * count, popcount, size; the cells from the next line boundary (word 96).
 */
export const W_SNAP = OFF_SNAPSHOT / 4;
export const SNAP_FRONTIER = CLOCK_BYTES / 4;
export const SNAP_META = SNAP_FRONTIER + FRONTIER_BYTES / 4;
export const SNAP_CELLS = Math.ceil((SNAP_META + 4) / 16) * 16;
export const CONTROL_BYTES = OFF_SNAPSHOT + 4 * SNAP_CELLS + MAX_CELLS * STATE_CELL_BYTES;
/** The escalation modes a block may hold: 0 Fast (Bloom pre-filter on), 1 Precise (off). */
const MAX_MODE = 1;

/** A new control block for an index `domainId` and `cells` state cells. */
export function createControlBlock(domainId: number, cells: number): SharedArrayBuffer {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const header = new Uint32Array(control, 0, 4);
  header[0] = MAGIC;
  header[1] = LAYOUT_VERSION;
  header[W_DOMAIN_ID] = domainId;
  header[W_CELLS] = cells;
  return control;
}

/**
 * Checks a control block handed over from another thread before anything reads it: identity,
 * size, the index it belongs to, the cell count, and every count a loop will run to (frontier
 * ring and snapshot heads, snapshot size), so a damaged buffer is a `SharedMemoryError` here
 * rather than a hang or a `RangeError` later.
 */
export function checkControlBlock(control: unknown, index: History, cells: number): SharedArrayBuffer {
  const header = checkSharedHeader(control, MAGIC, LAYOUT_VERSION, 'a kernel control block', 16);
  const buffer = control as SharedArrayBuffer;
  if (buffer.byteLength !== CONTROL_BYTES) throw new SharedMemoryError(`kernel control block must be a SharedArrayBuffer of ${CONTROL_BYTES} bytes`);
  if (header[W_DOMAIN_ID] !== index.domainId) {
    throw new SharedMemoryError('the control block and the exact index belong to different kernels');
  }
  if (header[W_CELLS] !== cells) {
    throw new SharedMemoryError(`the kernel has ${header[W_CELLS]} state cells, ${cells} invariants were given`);
  }
  const ctl = new Uint32Array(buffer);
  checkHeads(ctl[W_HEAD_START]!, ctl[W_HEAD_COUNT]!, 'live');
  checkHeads(ctl[W_SNAP + SNAP_META]!, ctl[W_SNAP + SNAP_META + 1]!, 'published');
  if (ctl[W_MODE]! > MAX_MODE) throw new SharedMemoryError(`kernel control block holds an unknown escalation mode ${ctl[W_MODE]}`);
  checkSnapshotSize(ctl[W_SNAP + SNAP_META + 3]!, index);
  return buffer;
}

/** Throws unless a frontier ring's start and count fit the ring. */
export function checkHeads(start: number, count: number, which: string): void {
  if (start >= FRONTIER_WIDTH || count > FRONTIER_WIDTH) {
    throw new SharedMemoryError(`kernel control block: the ${which} frontier ring (start ${start}, ${count} heads) does not fit its ${FRONTIER_WIDTH} slots`);
  }
}

/** Throws unless a published size is one the index can hold and has inserted. */
export function checkSnapshotSize(size: number, index: History): void {
  if (size > index.liveCount) {
    throw new SharedMemoryError(`kernel control block: a snapshot of ${size} facts, but the index holds ${index.liveCount}`);
  }
}
