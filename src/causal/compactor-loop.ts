/**
 * The compactor thread's work: it holds the memory of every tiered index adopted by its thread
 * of origin, waits on each index's work word (`Atomics.waitAsync`, no polling), and when a
 * freeze or an install bumps it, claims and runs jobs until none is left — building runs of
 * frozen tables and merging runs. The writer installs what it finishes on its next admission.
 */
import type { MessagePort } from 'node:worker_threads';
import { waitAsync } from '../core/wait-async.js';
import { D_COMPACTOR } from './tier-directory.js';
import { TieredExactIndex, type SharedTieredMemory } from './tiered-index.js';

/** What the adopting thread tells the compactor. */
export type CompactorMessage =
  | { readonly adopt: number; readonly memory: SharedTieredMemory }
  /** The adopting thread dropped the index (garbage-collected): forget it. */
  | { readonly drop: number };

/** An index waits at most this long between looks, so a dropped one is forgotten even without work. */
const WAIT_MS = 1_000;

/** Runs the compactor on `port` until the thread ends. */
export function runCompactor(port: MessagePort): void {
  const watched = new Map<number, TieredExactIndex>();
  port.on('message', (message: CompactorMessage) => {
    if ('drop' in message) {
      watched.delete(message.drop);
      return;
    }
    let index: TieredExactIndex;
    try {
      index = TieredExactIndex.attach(message.memory);
    } catch {
      // Not an index this version reads: give it back, so its writer compacts it itself.
      releaseAdoption(message.memory);
      return;
    }
    watched.set(message.adopt, index);
    void watch(message.adopt, index, watched);
  });
}

/** Clears the index's compactor word (the adopting thread then compacts inline after its next freeze). */
function releaseAdoption(memory: SharedTieredMemory): void {
  if (memory?.directory instanceof SharedArrayBuffer && memory.directory.byteLength >= 4 * (D_COMPACTOR + 1)) {
    Atomics.store(new Int32Array(memory.directory), D_COMPACTOR, 0);
  }
}

async function watch(id: number, index: TieredExactIndex, watched: Map<number, TieredExactIndex>): Promise<void> {
  const { words, index: at } = index.workSignal;
  while (watched.get(id) === index) {
    const seen = Atomics.load(words, at);
    compactAll(index);
    await waitAsync(words, at, seen, WAIT_MS);
  }
}

/** Claims and runs every job there is now. A job that fails (memory reused under it by a clear) is given back. */
function compactAll(index: TieredExactIndex): void {
  for (;;) {
    const job = index.claimCompaction();
    if (job === undefined) return;
    let count: number;
    try {
      count = index.runCompaction(job);
    } catch {
      index.abandonCompaction(job);
      return;
    }
    index.completeCompaction(job, count);
  }
}
