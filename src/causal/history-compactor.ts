/**
 * The history compactor: one worker thread per thread that admits (started the first time one
 * of its tiered indexes freezes a table, `unref`'d so it never keeps a process alive) that
 * builds and merges runs off the admitting thread. An index is adopted by one compactor only
 * (the directory's compactor word, claimed with compareExchange), so two pool threads that
 * both admit into it never compact it twice.
 *
 * Where the worker's entry file is not beside this module (running from the TypeScript source,
 * as the unit tests do), or its thread cannot start, compaction runs inline instead: the
 * admitting thread compacts right after a freeze (a pause of a table's build, ~20 ms at 2^16
 * ids). If a compactor thread dies, its indexes fall back the same way once their frozen tables
 * pile up (TieredExactIndex waits briefly, then catches up itself).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../core/start-worker.js';
import type { CompactorMessage } from './compactor-loop.js';
import type { TieredExactIndex } from './tiered-index.js';

const ENTRY = new URL('../workers/compactor-worker.js', import.meta.url);

/** How an index's frozen tables become runs. */
export type HistoryCompaction = 'background' | 'inline';

let worker: Worker | undefined;
let unavailable = false;
/** This thread's compactor id: nonzero, random, so two threads' compactors differ. */
const compactorId = crypto.getRandomValues(new Uint32Array(1))[0]! | 1;
let nextAdoption = 1;
const dropped = new FinalizationRegistry<number>((adoption) => worker?.postMessage({ drop: adoption } satisfies CompactorMessage));

function compactorThread(): Worker | undefined {
  if (worker !== undefined || unavailable) return worker;
  if (!existsSync(fileURLToPath(ENTRY))) {
    unavailable = true;
    return undefined;
  }
  try {
    const w = startWorker(ENTRY, null);
    w.unref();
    // A compactor that fails leaves its indexes to compact inline (see the module comment).
    w.on('error', () => {
      if (worker === w) worker = undefined;
      unavailable = true;
    });
    worker = w;
  } catch {
    unavailable = true;
  }
  return worker;
}

/**
 * After a freeze of `index`: hands it to this thread's compactor (once), or compacts it here if
 * `mode` is 'inline' or no compactor can run. Returns true if the work was handed off.
 */
export function afterFreeze(index: TieredExactIndex, mode: HistoryCompaction): boolean {
  if (mode === 'background' && index.compactorId !== 0) return true;
  const thread = mode === 'background' ? compactorThread() : undefined;
  if (thread !== undefined && index.adoptBy(compactorId)) {
    const adoption = nextAdoption++;
    thread.postMessage({ adopt: adoption, memory: index.memory } satisfies CompactorMessage);
    dropped.register(index, adoption);
    return true;
  }
  if (index.compactorId !== 0) return true;
  index.compact();
  return false;
}
