/**
 * A plain worker thread of the pool benchmark's "two raw threads" ceiling: no piscina, no queue,
 * no lock — each round it builds its own kernels, waits at the gate, admits its shards' batches
 * straight from shared memory and reports how long that took. What two threads can do on this
 * machine at this moment, for the pool's figures to be read against.
 */
import { parentPort } from 'node:worker_threads';
import { GCounterInvariant, Kernel } from 'ctfs';

/** The handles of a FactBatch, as `KernelPool` hands them to its threads. */
interface SharedBatch {
  readonly data: SharedArrayBuffer;
  readonly codes: SharedArrayBuffer;
  readonly count: number;
  readonly bytes: number;
}
type AdmitShared = (batch: SharedBatch, kernel: Kernel) => number;
// The batch reader the pool threads use: internal to the library, so reached by path (this file
// runs from build/bench/, next to the compiled library in dist/).
const { admitShared } = (await import(new URL('../../dist/core/fact-batch.js', import.meta.url).href)) as { admitShared: AdmitShared };

interface Round {
  readonly batches: SharedBatch[][];
  readonly capacity: number;
  readonly prefault: boolean;
  readonly gate: SharedArrayBuffer;
}

parentPort!.on('message', (round: Round) => {
  const kernels = round.batches.map(() => new Kernel(new GCounterInvariant(), { indexCapacity: round.capacity, prefault: round.prefault }));
  const gate = new Int32Array(round.gate);
  Atomics.add(gate, 1, 1);
  Atomics.wait(gate, 0, 0);
  const started = performance.now();
  let admitted = 0;
  const perShard = round.batches[0]!.length;
  for (let b = 0; b < perShard; b++) for (let s = 0; s < kernels.length; s++) admitted += admitShared(round.batches[s]![b]!, kernels[s]!);
  parentPort!.postMessage({ admitted, ms: performance.now() - started });
});
