/**
 * The published snapshot of a causal domain: how the writer copies its live state into the
 * control block's snapshot area, and how a reader in another thread takes a consistent copy.
 *
 * A seqlock: the writer makes the sequence word odd, copies with atomic stores, makes it even
 * again and wakes sleepers; a reader copies with atomic loads between two reads of an even,
 * unchanged word. Admission itself uses plain stores only, so this is the one consistent way to
 * read a domain whose writer is another thread.
 */
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { SharedMemoryError } from '../errors.js';
import { FRONTIER_WIDTH, HEAD_WORDS, SNAP_CELLS, SNAP_FRONTIER, SNAP_META, W_CELLS_START, W_CLOCK, W_FRONTIER, W_HEAD_COUNT, W_HEAD_START, W_POPCOUNT, W_SNAP } from './control-block.js';

/** A reader spins this many times on a snapshot being written, then sleeps in `Atomics.wait`. */
const SNAPSHOT_SPINS = 64;
/** A reader gives up on a snapshot that stays mid-write this long: the writer died mid-publish. */
const SNAPSHOT_DEADLINE_MS = 2_000;
/** Words of the Bloom clock. */
const CLOCK_WORDS = 16;

/** Word positions in what `readSnapshot` returns (the snapshot area's own layout). */
export const SNAPSHOT_WORDS = {
  frontier: SNAP_FRONTIER,
  headStart: SNAP_META,
  headCount: SNAP_META + 1,
  popcount: SNAP_META + 2,
  size: SNAP_META + 3,
  cells: SNAP_CELLS,
} as const;

/**
 * Copies the live clock, frontier, counters, `size` and the first `cells` cells into the snapshot
 * area under the seqlock: 20 atomic stores, 8 per head and 16 per cell in use (a chain with one
 * cell: 44). Per batch or on demand, never per fact.
 */
export function publishSnapshot(ctl: Uint32Array, seqlock: Int32Array, size: number, cells: number): void {
  Atomics.add(seqlock, 0, 1); // odd: snapshot being written
  for (let i = 0; i < CLOCK_WORDS; i++) Atomics.store(ctl, W_SNAP + i, ctl[W_CLOCK + i]!);
  // Only the slots holding heads, each to the same slot: a reader reads no other (`sync`).
  const start = ctl[W_HEAD_START]!;
  const count = ctl[W_HEAD_COUNT]!;
  for (let i = 0; i < count; i++) {
    const at = ((start + i) & (FRONTIER_WIDTH - 1)) * HEAD_WORDS;
    for (let j = 0; j < HEAD_WORDS; j++) Atomics.store(ctl, W_SNAP + SNAP_FRONTIER + at + j, ctl[W_FRONTIER + at + j]!);
  }
  Atomics.store(ctl, W_SNAP + SNAP_META, start);
  Atomics.store(ctl, W_SNAP + SNAP_META + 1, count);
  Atomics.store(ctl, W_SNAP + SNAP_META + 2, ctl[W_POPCOUNT]!);
  Atomics.store(ctl, W_SNAP + SNAP_META + 3, size);
  const words = cells * (STATE_CELL_BYTES / 4);
  for (let i = 0; i < words; i++) Atomics.store(ctl, W_SNAP + SNAP_CELLS + i, ctl[W_CELLS_START + i]!);
  Atomics.add(seqlock, 0, 1); // even: snapshot complete
  Atomics.notify(seqlock, 0);
}

/**
 * A consistent copy of the snapshot area's first `SNAP_CELLS + cells × 16` words (positions in
 * `SNAPSHOT_WORDS`) and the publication it is (the seqlock's value). Spins briefly, then sleeps,
 * while a publish is in progress; throws `SharedMemoryError` if one never ends.
 */
export function readSnapshot(ctl: Uint32Array, seqlock: Int32Array, cells: number): { words: Uint32Array; sequence: number } {
  const words = new Uint32Array(SNAP_CELLS + cells * (STATE_CELL_BYTES / 4));
  let seq = 0;
  let deadline = 0;
  let stuckAt = -1;
  for (let attempt = 0; ; attempt++) {
    seq = Atomics.load(seqlock, 0);
    if ((seq & 1) === 0) {
      for (let i = 0; i < words.length; i++) words[i] = Atomics.load(ctl, W_SNAP + i);
      if (Atomics.load(seqlock, 0) === seq) return { words, sequence: seq };
    } else if (attempt >= SNAPSHOT_SPINS) {
      // The deadline is for one publish that never ends, not for a writer publishing often.
      if (seq !== stuckAt) {
        stuckAt = seq;
        deadline = Date.now() + SNAPSHOT_DEADLINE_MS;
      } else if (Date.now() > deadline) {
        throw new SharedMemoryError('kernel snapshot stayed mid-publish for 2 s; did the writer die?');
      }
      Atomics.wait(seqlock, 0, seq, 1);
    }
  }
}
