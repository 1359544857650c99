/**
 * `npm run bench:durable`: the durable kernels, with each I/O backend side by side.
 *
 * - staging: what `admitRawWithHandle` costs the admitting thread (the arena drained between batches, so
 *   every call takes the success path), next to the same admission in an in-memory TwoLaneKernel;
 * - throughput: facts of 200-byte payloads admitted as fast as possible until every handle is
 *   durable, against the raw group-commit limit of the same disk measured in the same run;
 * - latency: stage → durable under a steady 100,000 facts/s;
 * - replay: recovery speed of the log just written.
 *
 *   CTFS_BENCH_ROUNDS=3   rounds (default 3)        --quick   tiny sizes, figures meaningless
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import {
  AckMode,
  AdmitCode,
  ConservationState,
  DurableKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  type DurableHandle,
  type FactId,
} from 'ctfs';
import { Outcomes, idPool, printMarkdown, record, rows } from './harness.js';
import { STAGES, breakdown, type Breakdown } from './stage-breakdown.js';
import { PerformanceObserver } from 'node:perf_hooks';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 1 : Number(process.env.CTFS_BENCH_ROUNDS ?? 3);
const THROUGHPUT_FACTS = QUICK ? 20_000 : 1_000_000;
const STAGING_BATCH = QUICK ? 512 : 4096;
const STAGING_BATCHES = QUICK ? 4 : 32;
const PACED_RATE = 100_000;
const PACED_SECONDS = QUICK ? 0.2 : 3;
/** Every admitted record: 64-byte header + 200-byte payload (no deps). */
const RECORD_BYTES = 264;
const BACKENDS = (process.env.CTFS_BENCH_BACKENDS ?? 'uring,portable').split(',') as ('uring' | 'portable')[];

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-bench-'));
const initial = new ConservationState(0n, -(1n << 100n), 1n << 100n).toCell();
const memo = new Uint8Array(184);
// Alternating +1/-1: every admission passes the invariant.
const payloads = [TotalSupplyInvariant.payload(1n, memo), TotalSupplyInvariant.payload(-1n, memo)];
const NO_DEPS: FactId[] = [];
const pool = idPool(Math.max(THROUGHPUT_FACTS, STAGING_BATCH * STAGING_BATCHES * (ROUNDS + 1), PACED_RATE * PACED_SECONDS + 1), 7);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (sorted: Float64Array, p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
let dirs = 0;
const freshDir = (): string => path.join(root, `k${dirs++}`);

async function open(backend: 'uring' | 'portable', capacity: number, dir = freshDir(), traceBatches?: number): Promise<DurableKernel> {
  return DurableKernel.open(dir, new TotalSupplyInvariant(), { indexCapacity: capacity, initialState: initial, backend, announce: false, prefault: true, traceBatches });
}

type Variant = (i: number, outcomes: Outcomes) => void;

/**
 * ns per call on the admitting thread: admitRawWithHandle, tryAdmitRaw (Volatile) and the same admission
 * into an in-memory TwoLaneKernel. The arena is drained (untimed) before each batch, so every
 * timed call takes the success path — a full arena would show up as ArenaFull outcomes and make
 * the row INVALID.
 */
async function stagingSuite(backend: 'uring' | 'portable'): Promise<void> {
  const capacity = STAGING_BATCH * STAGING_BATCHES * (ROUNDS + 1) + 16;
  const variants: [string, (kernel: DurableKernel, memory: TwoLaneKernel) => Variant][] = [
    ['admitRawWithHandle (handle)', (kernel) => (i, o) => {
      try {
        kernel.admitRawWithHandle(pool[i]!, NO_DEPS, payloads[i & 1]!);
        o.add(AdmitCode.Ok);
      } catch (error) {
        o.add((error as { admitCode?: number }).admitCode ?? AdmitCode.MalformedFact);
      }
    }],
    ['tryAdmitRaw Volatile (no handle)', (kernel) => (i, o) => o.add(kernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloads[i & 1]!, AckMode.Volatile))],
    ['in-memory TwoLaneKernel (reference)', (_kernel, memory) => (i, o) => o.add(memory.tryAdmitRaw(pool[i]!, NO_DEPS, payloads[i & 1]!))],
  ];
  // The three take turns, round by round in rotating order, so each round's figures share the
  // machine's weather (on this shared host it moves by 1.5× from one second to the next) and the
  // ratios between them are read per round. (Turns batch by batch would make each variant find
  // the others' kernels in the caches.)
  const setups: { name: string; kernel: DurableKernel; run: Variant; outcomes: Outcomes; rounds: number[] }[] = [];
  for (const [name, make] of variants) {
    const kernel = await open(backend, capacity);
    const memory = TwoLaneKernel.withState(new TotalSupplyInvariant(), initial, { indexCapacity: capacity });
    setups.push({ name, kernel, run: make(kernel, memory), outcomes: new Outcomes(), rounds: [] as number[] });
  }
  for (let r = 0; r <= ROUNDS; r++) {
    for (let k = 0; k < setups.length; k++) {
      const setup = setups[(r + k) % setups.length]!;
      const perBatch: number[] = [];
      for (let b = 0; b < STAGING_BATCHES; b++) {
        await setup.kernel.flush();
        const base = (r * STAGING_BATCHES + b) * STAGING_BATCH;
        const t0 = process.hrtime.bigint();
        for (let i = base; i < base + STAGING_BATCH; i++) setup.run(i, setup.outcomes);
        perBatch.push(Number(process.hrtime.bigint() - t0) / STAGING_BATCH);
      }
      if (r > 0) setup.rounds.push(median(perBatch)); // round 0 warms the JIT up
    }
  }
  for (const setup of setups) {
    record(`${backend}: staging, ${setup.name}`, setup.rounds, setup.outcomes);
    await setup.kernel.close();
    fs.rmSync(setup.kernel.dir, { recursive: true, force: true });
  }
  const ratios = setups[0]!.rounds.map((h, k) => h / setups[1]!.rounds[k]!);
  console.log(`  ${backend}: a handle ÷ a Volatile admission, per round: ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`);
}

/** The raw disk: records/s of plain write + fdatasync group commit from a worker thread. */
function rawGroupCommit(backend: 'uring' | 'portable', records: number, batchRecords: number): Promise<number> {
  const file = path.join(root, `raw-${dirs++}.bin`);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./raw-writer.js', import.meta.url), { workerData: { file, records, recordBytes: RECORD_BYTES, batchRecords, backend } });
    worker.once('message', (m: { ms: number }) => {
      fs.rmSync(file, { force: true });
      resolve((records / m.ms) * 1000);
    });
    worker.once('error', reject);
  });
}

/**
 * Admits THROUGHPUT_FACTS as fast as the arena allows, each through `admitRawWithHandle`, and counts
 * handles resolved per second: the last IN_FLIGHT handles are kept, and each one leaving that
 * window must be durable (it is awaited if not) — every handle is confirmed, with memory bounded
 * as in an application that tracks what it has in flight.
 */
async function throughputRound(backend: 'uring' | 'portable', outcomes: Outcomes): Promise<{ rate: number; batch: number; replay: number; dir: string }> {
  const kernel = await open(backend, THROUGHPUT_FACTS + 16);
  const IN_FLIGHT = 1 << 15; // more than the default arena holds (~16k records of 264 bytes)
  const window: (DurableHandle | undefined)[] = new Array(IN_FLIGHT);
  let resolved = 0;
  const started = performance.now();
  for (let i = 0; i < THROUGHPUT_FACTS; i++) {
    const old = window[i & (IN_FLIGHT - 1)];
    if (old !== undefined) {
      if (!old.isDurable()) await old.durable();
      resolved++;
    }
    for (;;) {
      try {
        window[i & (IN_FLIGHT - 1)] = kernel.admitRawWithHandle(pool[i]!, NO_DEPS, payloads[i & 1]!);
        outcomes.add(AdmitCode.Ok);
        break;
      } catch (error) {
        // Flow control, not a failure: the disk is behind; wait for the next batch to land.
        if ((error as { admitCode?: number }).admitCode !== AdmitCode.ArenaFull) throw error;
        await kernel.whenDurable(kernel.durableSequence + 1);
      }
    }
  }
  for (const h of window) {
    if (h === undefined) continue;
    await h.durable();
    resolved++;
  }
  const ms = performance.now() - started;
  if (resolved !== THROUGHPUT_FACTS) outcomes.add(AdmitCode.DurabilityFailed);
  const stats = kernel.logStats;
  await kernel.close();
  const t0 = performance.now();
  const again = await open(backend, THROUGHPUT_FACTS + 16, kernel.dir);
  const replayMs = performance.now() - t0;
  const replayed = again.recovery.replayed;
  await again.close();
  fs.rmSync(kernel.dir, { recursive: true, force: true });
  if (replayed !== THROUGHPUT_FACTS) outcomes.add(AdmitCode.DurabilityFailed);
  return { rate: (resolved / ms) * 1000, batch: stats.records / stats.fsyncs, replay: (replayed / replayMs) * 1000, dir: kernel.dir };
}

/**
 * The disk's own latency floor for the paced test: write + fdatasync of one batch's bytes (at
 * 100k facts/s and ~0.6 ms per sync, ~64 records of 264 bytes) appended to a fresh file, p50/p99.
 */
function rawSyncLatency(samples: number): { p50: number; p99: number } {
  const file = path.join(root, `sync-${dirs++}.bin`);
  const fd = fs.openSync(file, 'w');
  const chunk = new Uint8Array(64 * RECORD_BYTES).fill(0x5a);
  const times = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    fs.writeSync(fd, chunk, 0, chunk.length, i * chunk.length);
    fs.fdatasyncSync(fd);
    times[i] = performance.now() - t0;
  }
  fs.closeSync(fd);
  fs.rmSync(file, { force: true });
  times.sort();
  return { p50: pct(times, 0.5), p99: pct(times, 0.99) };
}

/**
 * The paced loop both latency tests share: operation i is due at i / PACED_RATE seconds; when due
 * it is staged (`stage(i)`), after each burst `published(next)` runs, and each turn `durableThrough()`
 * says how many are durable. Between turns the thread parks ~20 µs (never spinning: on two cores
 * it would steal the worker's). Returns when all are durable: each one's staged and seen-durable
 * times (wall-clock ms) and the loop's stalls (turns longer than 1 ms).
 */
function pacedLoop(total: number, stage: (i: number) => void, published: (next: number) => void, durableThrough: () => number): { stagedAt: Float64Array; seenAt: Float64Array; stalls: number[] } {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const stagedAt = new Float64Array(total);
  const seenAt = new Float64Array(total);
  const stalls: number[] = [];
  const origin = performance.timeOrigin;
  const start = performance.now() + 5;
  let settled = 0;
  let next = 0;
  let last = performance.now();
  while (settled < total) {
    const now = performance.now();
    if (now - last > 1) stalls.push(now - last);
    last = now;
    const from = next;
    while (next < total && start + next * (1000 / PACED_RATE) <= now) {
      stage(next);
      stagedAt[next++] = origin + performance.now();
    }
    if (next > from) published(next);
    const durable = durableThrough();
    const seen = origin + performance.now();
    while (settled < next && settled + 1 <= durable) seenAt[settled++] = seen;
    Atomics.wait(nap, 0, 0, 0.02);
  }
  return { stagedAt, seenAt, stalls };
}

/** seen − staged per operation, sorted. */
function sortedLatency(stagedAt: Float64Array, seenAt: Float64Array): Float64Array {
  const latency = new Float64Array(stagedAt.length);
  for (let i = 0; i < latency.length; i++) latency[i] = seenAt[i]! - stagedAt[i]!;
  return latency.sort();
}

/**
 * Stage → durable latency at a steady PACED_RATE, with where it goes: the worker's stamps of every
 * batch (`traceBatches`), the admitting thread's stalls and its GC pauses.
 */
async function latencyRound(backend: 'uring' | 'portable', outcomes: Outcomes): Promise<{ sorted: Float64Array; stages: Breakdown; stalls: number[]; gcMs: number[] }> {
  const total = Math.round(PACED_RATE * PACED_SECONDS);
  const kernel = await open(backend, total + 16, freshDir(), 1 << 16);
  const gcMs: number[] = [];
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs.push(entry.duration);
  });
  gc.observe({ entryTypes: ['gc'] });
  // Records reach the worker at the end of each burst: reading the watermark publishes them.
  const { stagedAt, seenAt, stalls } = pacedLoop(
    total,
    (i) => outcomes.add(kernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloads[i & 1]!)),
    () => undefined,
    () => kernel.durableSequence,
  );
  const stages = breakdown(stagedAt, seenAt, kernel.batchTrace!.read(), kernel.backend === 'io_uring');
  await kernel.close();
  await new Promise((r) => setImmediate(r)); // deliver the buffered GC entries
  gc.disconnect();
  fs.rmSync(kernel.dir, { recursive: true, force: true });
  return { sorted: sortedLatency(stagedAt, seenAt), stages, stalls, gcMs };
}

/**
 * The disk alone under the same paced arrivals (bench/raw-paced-writer.ts): the same loop stages
 * by bumping a shared counter; a worker writes and fdatasyncs whatever has arrived. Per-fact
 * latencies, sorted — the baseline our paced p99 is held to.
 */
async function rawPacedLatency(backend: 'uring' | 'portable', prezero = false): Promise<Float64Array> {
  const total = Math.round(PACED_RATE * PACED_SECONDS);
  const words = new Int32Array(new SharedArrayBuffer(12));
  const file = path.join(root, `paced-${dirs++}.bin`);
  const worker = new Worker(new URL('./raw-paced-writer.js', import.meta.url), {
    workerData: { file, words: words.buffer, recordBytes: RECORD_BYTES, maxBatchRecords: Math.floor((4 << 20) / 2 / RECORD_BYTES), backend, prezero: prezero ? total * RECORD_BYTES : undefined },
  });
  await once(worker, 'message'); // ready: the file is open (and pre-zeroed if asked)
  const { stagedAt, seenAt } = pacedLoop(
    total,
    () => undefined,
    (next) => {
      Atomics.store(words, 0, next);
      Atomics.notify(words, 0);
    },
    () => Atomics.load(words, 1),
  );
  Atomics.store(words, 2, 1);
  Atomics.notify(words, 0);
  await once(worker, 'message'); // stopped
  fs.rmSync(file, { force: true });
  return sortedLatency(stagedAt, seenAt);
}

console.log(`ctfs durable benchmarks ${QUICK ? '(quick: figures meaningless)' : ''}— node ${process.version}, ${new Date().toISOString()}, rounds ${ROUNDS}, data in ${root}`);
const summary: string[] = [];
let invalid = false;
const invalidRows = (): boolean => rows.some((r) => !r.valid);
for (const backend of BACKENDS) {
  console.log(`\n${backend} backend`);
  await stagingSuite(backend);

  const outcomes = new Outcomes();
  const rates: number[] = [];
  const raws: number[] = [];
  const replays: number[] = [];
  let batch = 0;
  for (let r = 0; r < ROUNDS; r++) {
    // Interleaved: the raw limit and our pipeline see the same disk weather.
    raws.push(await rawGroupCommit(backend, THROUGHPUT_FACTS, 4096));
    const round = await throughputRound(backend, outcomes);
    rates.push(round.rate);
    replays.push(round.replay);
    batch = round.batch;
  }
  const ok = outcomes.ok === outcomes.total;
  invalid ||= !ok;
  const line = `${backend}: durable throughput ${fmt(median(rates))} facts/s (rounds ${fmt(Math.min(...rates))}..${fmt(Math.max(...rates))}, ~${fmt(batch)} records/fsync); raw write+fdatasync limit ${fmt(median(raws))} records/s (batch 4096); ratio ${(median(rates) / median(raws)).toFixed(2)}; replay ${fmt(median(replays))} records/s  [${outcomes.describe()}]${ok ? '' : '  INVALID'}`;
  console.log(`  ${line}`);
  summary.push(line);

  const paced = new Outcomes();
  const p50: number[] = [];
  const p99: number[] = [];
  let worst = 0;
  const stageRows: string[] = [];
  const rawP50: number[] = [];
  const rawP99: number[] = [];
  const zeroedP99: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Interleaved, as for throughput: the baseline and our pipeline see the same disk weather.
    const raw = await rawPacedLatency(backend);
    rawP50.push(pct(raw, 0.5));
    rawP99.push(pct(raw, 0.99));
    // The same into a file whose blocks were written (zeros) and synced first: fdatasync then has
    // no size or extent change to journal — what preallocated segments would give.
    zeroedP99.push(pct(await rawPacedLatency(backend, true), 0.99));
    const round = await latencyRound(backend, paced);
    const lat = round.sorted;
    p50.push(pct(lat, 0.5));
    p99.push(pct(lat, 0.99));
    worst = Math.max(worst, lat[lat.length - 1]!);
    const us = (ms: number): string => (ms * 1000).toFixed(0);
    const stages = STAGES.map((s) => `${s} ${us(pct(round.stages.sorted[s], 0.5))}/${us(pct(round.stages.sorted[s], 0.99))}`).join(', ');
    const tail = STAGES.map((s) => `${s} ${us(round.stages.tail[s])}`).join(', ');
    const stalled = round.stalls.reduce((a, b) => a + b, 0);
    const gcTotal = round.gcMs.reduce((a, b) => a + b, 0);
    stageRows.push(
      `round ${r + 1}: stages p50/p99 µs: ${stages}\n      slowest 1% (p99 ${us(pct(lat, 0.99))} µs), mean µs per stage: ${tail}\n      admitting thread: ${round.stalls.length} stalls > 1 ms (${stalled.toFixed(0)} ms in all, longest ${Math.max(0, ...round.stalls).toFixed(1)} ms); ${round.gcMs.length} GC pauses (${gcTotal.toFixed(1)} ms in all, longest ${Math.max(0, ...round.gcMs).toFixed(1)} ms); ${round.stages.facts} facts matched to ${backend} batches`,
    );
  }
  for (const row of stageRows) console.log(`    ${row}`);
  const floor = rawSyncLatency(QUICK ? 50 : 1000);
  const pacedOk = paced.ok === paced.total;
  invalid ||= !pacedOk;
  const lat = `${backend}: stage→durable at ${fmt(PACED_RATE)} facts/s: p50 ${(median(p50) * 1000).toFixed(0)} µs, p99 ${(median(p99) * 1000).toFixed(0)} µs (rounds p99 ${(Math.min(...p99) * 1000).toFixed(0)}..${(Math.max(...p99) * 1000).toFixed(0)} µs, max ${(worst * 1000).toFixed(0)} µs); the disk alone at the same pace, per fact: p50 ${(median(rawP50) * 1000).toFixed(0)} µs, p99 ${(median(rawP99) * 1000).toFixed(0)} µs (rounds p99 ${(Math.min(...rawP99) * 1000).toFixed(0)}..${(Math.max(...rawP99) * 1000).toFixed(0)} µs; ours ÷ it at p99 ${(median(p99) / median(rawP99)).toFixed(2)}); into a pre-zeroed file: p99 ${(median(zeroedP99) * 1000).toFixed(0)} µs (rounds ${(Math.min(...zeroedP99) * 1000).toFixed(0)}..${(Math.max(...zeroedP99) * 1000).toFixed(0)} µs); one write+fdatasync of 17 KB: p50 ${(floor.p50 * 1000).toFixed(0)} µs, p99 ${(floor.p99 * 1000).toFixed(0)} µs  [${paced.describe()}]${pacedOk ? '' : '  INVALID'}`;
  console.log(`  ${lat}`);
  summary.push(lat);
}
printMarkdown();
console.log('\nsummary');
for (const line of summary) console.log(`- ${line}`);
fs.rmSync(root, { recursive: true, force: true });
if (invalid || invalidRows()) process.exitCode = 1;
