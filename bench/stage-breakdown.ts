/**
 * Splits each fact's stage → durable latency into the stages of the batch that carried it (the
 * durable kernel's `traceBatches` stamps), for `npm run bench:durable`'s paced test:
 *
 *   queue     staged on the kernel's thread while the previous batch was still being written and
 *             synced → that batch's watermark moved (0 if the worker was idle)
 *   wake      staged (or the previous batch done, if later) → the persistence worker picked the
 *             fact's batch up: publishing, the worker's wake-up, its getting a CPU
 *   seal      picked up → write submitted (CRC of every record)
 *   write     submitted → the write returned (io_uring: write and sync complete together; all of
 *             it is counted under `sync`)
 *   sync      the write returned → fdatasync returned
 *   publish   fdatasync returned → the watermark moved
 *   observe   the watermark moved → the kernel's thread saw it
 *
 * All stamps are wall-clock ms (`performance.timeOrigin + performance.now()`) from either thread.
 */
import type { BatchStamp } from 'ctfs';

export const STAGES = ['queue', 'wake', 'seal', 'write', 'sync', 'publish', 'observe'] as const;
export type Stage = (typeof STAGES)[number];

export interface Breakdown {
  /** Per stage, every fact's time in it (ms), sorted. */
  readonly sorted: Record<Stage, Float64Array>;
  /** Per stage, the mean time (ms) of the facts in the slowest 1% end to end. */
  readonly tail: Record<Stage, number>;
  /** Facts matched to a batch (all of them unless the trace overflowed). */
  readonly facts: number;
}

/**
 * `staged[i]` and `seen[i]` are fact i's stamps (sequence i + 1 + `firstSequence` − 1); `batches`
 * the trace, oldest first; `linkedWriteSync` for the io_uring backend, whose write and sync
 * complete together.
 */
export function breakdown(staged: Float64Array, seen: Float64Array, batches: readonly BatchStamp[], linkedWriteSync: boolean, firstSequence = 1): Breakdown {
  const n = staged.length;
  const per = Object.fromEntries(STAGES.map((s) => [s, new Float64Array(n)])) as Record<Stage, Float64Array>;
  const total = new Float64Array(n);
  let b = 0;
  let facts = 0;
  for (let i = 0; i < n; i++) {
    const sequence = firstSequence + i;
    while (b < batches.length && batches[b]!.lastSequence < sequence) b++;
    const batch = batches[b];
    if (batch === undefined) break;
    // io_uring reports the write when the linked sync completes: count it all as sync.
    const written = linkedWriteSync ? batch.submitted : batch.written;
    const free = b === 0 ? 0 : batches[b - 1]!.published;
    const ready = Math.max(staged[i]!, Math.min(free, batch.pickedUp));
    per.queue[facts] = ready - staged[i]!;
    per.wake[facts] = batch.pickedUp - ready;
    per.seal[facts] = batch.submitted - batch.pickedUp;
    per.write[facts] = written - batch.submitted;
    per.sync[facts] = batch.synced - written;
    per.publish[facts] = batch.published - batch.synced;
    per.observe[facts] = seen[i]! - batch.published;
    total[facts] = seen[i]! - staged[i]!;
    facts++;
  }
  // The slowest 1% end to end, and the mean of each stage over them.
  const order = Array.from({ length: facts }, (_, k) => k).sort((x, y) => total[y]! - total[x]!);
  const worst = order.slice(0, Math.max(1, Math.floor(facts / 100)));
  const tail = Object.fromEntries(STAGES.map((s) => [s, worst.reduce((sum, k) => sum + per[s][k]!, 0) / worst.length])) as Record<Stage, number>;
  const sorted = Object.fromEntries(STAGES.map((s) => [s, per[s].subarray(0, facts).sort()])) as Record<Stage, Float64Array>;
  return { sorted, tail, facts };
}
