// How long this machine stalls a thread that admits facts when one other thread is busy, with
// no history work at all (a hot table large enough never to freeze; the other thread only
// computes): the baseline the history benchmark's "admissions > 1 ms" is read against.
//
//   npm run build && node scripts/stall-baseline.mjs
import { Worker } from 'node:worker_threads';

const { Kernel, TotalSupplyInvariant } = await import(new URL('../dist/index.js', import.meta.url).href);
const FACTS = 400_000;
for (const busy of [false, true]) {
  const worker = busy ? new Worker('let x = 0; const end = Date.now() + 8000; while (Date.now() < end) for (let i = 0; i < 1e6; i++) x += i;', { eval: true }) : undefined;
  await new Promise((r) => setTimeout(r, 100));
  const kernel = new Kernel(new TotalSupplyInvariant(), { prefault: true, historyHotCapacity: 1 << 19 });
  const id = new Uint8Array(32);
  const words = new DataView(id.buffer);
  const payload = new Uint8Array(16);
  let over1ms = 0;
  let longest = 0;
  for (let i = 0; i < FACTS; i++) {
    words.setUint32(0, i, true);
    words.setUint32(8, Math.imul(i, 0x9e3779b1), true);
    const t0 = performance.now();
    kernel.tryAdmitRaw(id, [], payload);
    const ms = performance.now() - t0;
    if (ms > 1) over1ms++;
    longest = Math.max(longest, ms);
  }
  console.log(`${busy ? 'one other thread busy' : 'alone'}: ${FACTS} admissions, ${over1ms} over 1 ms, longest ${longest.toFixed(2)} ms (no freeze, no compaction)`);
  await worker?.terminate();
}
process.exit(0);
