/**
 * `npm run bench:pool`: sharded admission on the worker pool against one thread, the shard lock,
 * and what offloading coarse work saves the main thread.
 *
 * - throughput: the same facts (8 shards, 1-dep chains inside each batch, GCounter), packed in
 *   the same FactBatches, admitted (a) by one thread with `Kernel.admitBatch`, shard after shard,
 *   and (b) by a KernelPool of 1 and of 2 threads — "pipelined" (every batch submitted at once:
 *   queued batches of a shard travel together in one task) and "one in flight" (each shard waits
 *   for its batch before sending the next: every batch pays a whole task). Every round uses
 *   never-used shards on both sides, prefaulted (and, for two batch sizes, fresh); pool threads
 *   are warmed up on other shards first; each round runs all variants back to back.
 * - lock: acquire + release uncontended, and two threads contending for one lock (handover).
 * - offload: main-thread busy time of a checkpoint (hash, write, fsync, compaction) and of a
 *   history digest, inline against on a pool thread.
 *
 * Every admission's code is checked: a round that is not all Ok is reported INVALID and the run
 * exits non-zero.
 *
 *   CTFS_BENCH_ROUNDS=5   rounds (default 5)     CTFS_POOL_SUITES=throughput,lock,offload
 *   CTFS_POOL_BATCHES=16,64,256,1024,4096   batch sizes (fresh shards: those ≥ 1,024)
 *   --quick               tiny sizes, figures meaningless
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { AdmitCode, DurableKernel, FactBatch, GCounterInvariant, Kernel, KernelPool, ShardLocks, u64le, type FactId } from 'ctfs';
import { idPool } from './harness.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 1 : Number(process.env.CTFS_BENCH_ROUNDS ?? 5);
const SUITES = (process.env.CTFS_POOL_SUITES ?? 'throughput,lock,offload').split(',');
const SHARDS = 8;
const FACTS_PER_ROUND = QUICK ? 1 << 15 : 1 << 17;
const BATCH_SIZES = (process.env.CTFS_POOL_BATCHES ?? '16,64,256,1024,4096').split(',').map(Number);
const PER_SHARD = FACTS_PER_ROUND / SHARDS;
/** Room for one round's facts per shard (the index is sized to its work, like a real deployment). */
const SHARD_CAPACITY = PER_SHARD + 64;
const LOCK_OPS = QUICK ? 100_000 : 2_000_000;
const CHECKPOINT_FACTS = QUICK ? 20_000 : 500_000;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
let invalid = 0;
const summary: string[] = [];

console.log(`ctfs pool benchmarks ${QUICK ? '(quick: figures meaningless) ' : ''}— node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${new Date().toISOString()}, rounds ${ROUNDS}`);

/** Distinct payloads: GCounter adds them, and equal payloads with equal deps are still distinct facts here (ids are random). */
const ONE = u64le(1n);

/** One round's batches: `batches[shard][i]`, each a chain of `size` facts (the first has no dep). */
function buildRound(size: number, salt: number): FactBatch[][] {
  const ids = idPool(FACTS_PER_ROUND, salt);
  const out: FactBatch[][] = [];
  let next = 0;
  for (let s = 0; s < SHARDS; s++) {
    const batches: FactBatch[] = [];
    for (let b = 0; b < PER_SHARD / size; b++) {
      const batch = new FactBatch(size, size * (8 + 64 + 8));
      let prev: FactId | undefined;
      for (let i = 0; i < size; i++) {
        const id = ids[next++]!;
        batch.pushRaw(id, prev === undefined ? [] : [prev], ONE);
        prev = id;
      }
      batches.push(batch);
    }
    out.push(batches);
  }
  return out;
}

function checkAdmitted(what: string, admitted: number): void {
  if (admitted !== FACTS_PER_ROUND) {
    invalid++;
    console.log(`  INVALID ${what}: ${admitted} of ${FACTS_PER_ROUND} facts admitted`);
  }
}

/** Facts/s of one thread admitting the round, batch by batch, round-robin over fresh shards. */
function singleThread(round: FactBatch[][], prefault: boolean): number {
  const kernels = Array.from({ length: SHARDS }, () => new Kernel(new GCounterInvariant(), { indexCapacity: SHARD_CAPACITY, prefault }));
  const started = performance.now();
  let admitted = 0;
  for (let b = 0; b < round[0]!.length; b++) for (let s = 0; s < SHARDS; s++) admitted += kernels[s]!.admitBatch(round[s]![b]!).admitted;
  const elapsed = performance.now() - started;
  checkAdmitted('single thread', admitted);
  return (FACTS_PER_ROUND / elapsed) * 1e3;
}

/**
 * Two plain worker threads (no piscina, no queue, no lock), four shards each, admitting the same
 * round from the same shared batches: the ceiling two threads reach on this machine right now.
 * Facts/s from the gate opening until both are done.
 */
class RawPair {
  private readonly workers = [0, 1].map(() => new Worker(new URL('./admit-worker.js', import.meta.url)));

  async round(round: FactBatch[][], prefault: boolean): Promise<number> {
    const gate = new SharedArrayBuffer(8);
    const words = new Int32Array(gate);
    const handles = round.map((batches) => batches.map((b) => (b as unknown as { shared: unknown }).shared));
    const done = this.workers.map((worker, w) => {
      const reply = new Promise<{ admitted: number; ms: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      worker.postMessage({ batches: handles.filter((_, s) => s % 2 === w), capacity: SHARD_CAPACITY, prefault, gate });
      return reply;
    });
    while (Atomics.load(words, 1) < 2) await new Promise((resolve) => setTimeout(resolve, 1));
    Atomics.store(words, 0, 1);
    Atomics.notify(words, 0);
    const results = await Promise.all(done);
    checkAdmitted('two raw threads', results.reduce((a, r) => a + r.admitted, 0));
    return (FACTS_PER_ROUND / Math.max(...results.map((r) => r.ms))) * 1e3;
  }

  close(): Promise<number[]> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}

type Mode = 'pipelined' | 'one in flight';
const VARIANTS: { mode: Mode; threads: number }[] = [
  { mode: 'pipelined', threads: 1 },
  { mode: 'pipelined', threads: 2 },
  { mode: 'one in flight', threads: 1 },
  { mode: 'one in flight', threads: 2 },
];

async function poolRound(pool: KernelPool, base: number, round: FactBatch[][], mode: Mode): Promise<number> {
  const started = performance.now();
  let admitted = 0;
  if (mode === 'pipelined') {
    const pending = [];
    for (let b = 0; b < round[0]!.length; b++) for (let s = 0; s < SHARDS; s++) pending.push(pool.admitBatchAsync(base + s, round[s]![b]!));
    for (const r of await Promise.all(pending)) admitted += r.admitted;
  } else {
    await Promise.all(
      round.map(async (batches, s) => {
        for (const batch of batches) {
          // Awaited first: `admitted += await …` would read `admitted` before the await and lose
          // the other shards' updates.
          const result = await pool.admitBatchAsync(base + s, batch);
          admitted += result.admitted;
        }
      }),
    );
  }
  const elapsed = performance.now() - started;
  checkAdmitted(`pool ${mode}`, admitted);
  return (FACTS_PER_ROUND / elapsed) * 1e3;
}

/**
 * One batch size: every round runs the one-thread baseline and then each pool variant on the
 * same facts, back to back, so a noisy moment of the shared host hits all of them; ratios are
 * taken per round, then the median. Shards are never reused: each round gets 8 untouched ones.
 */
async function throughputAt(size: number, prefault: boolean): Promise<{ single: number[]; rates: number[][]; ratios: number[][] }> {
  const rounds = Array.from({ length: ROUNDS }, (_, r) => buildRound(size, 100 + r));
  const warm = buildRound(size, 99);
  const pools = await Promise.all(
    VARIANTS.map(({ threads }) =>
      KernelPool.create({ shards: SHARDS * (ROUNDS + 1), threads, invariant: { builtin: 'GCounter' }, indexCapacity: SHARD_CAPACITY, prefault }),
    ),
  );
  const raw = new RawPair();
  const single: number[] = [];
  const rates: number[][] = [...VARIANTS, 'raw'].map(() => []);
  const ratios: number[][] = [...VARIANTS, 'raw'].map(() => []);
  try {
    // Shards 0..7 warm each pool's threads up (JIT); the one-thread path is warm from the first round.
    for (let v = 0; v < VARIANTS.length; v++) await poolRound(pools[v]!, 0, warm, VARIANTS[v]!.mode);
    singleThread(warm, prefault);
    await raw.round(warm, prefault);
    for (let r = 0; r < ROUNDS; r++) {
      const base = singleThread(rounds[r]!, prefault);
      single.push(base);
      for (let v = 0; v <= VARIANTS.length; v++) {
        const rate = v < VARIANTS.length ? await poolRound(pools[v]!, SHARDS * (r + 1), rounds[r]!, VARIANTS[v]!.mode) : await raw.round(rounds[r]!, prefault);
        rates[v]!.push(rate);
        ratios[v]!.push(rate / base);
      }
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await raw.close();
  }
  return { single, rates, ratios };
}

async function throughputSuite(): Promise<void> {
  const cell = (xs: number[]): string => `${fmt(median(xs) / 1e6, 2)} M [${fmt(Math.min(...xs) / 1e6, 2)}..${fmt(Math.max(...xs) / 1e6, 2)}]`;
  const ratio = (xs: number[]): string => `${fmt(median(xs), 2)}×`;
  for (const prefault of [true, false]) {
    const sizes = prefault ? BATCH_SIZES : BATCH_SIZES.filter((size) => size >= 1024);
    console.log(
      `\nthroughput, ${prefault ? 'prefaulted shards (memory committed at creation, as a long-running shard is)' : 'fresh shards (every page faulted in on first touch, while admitting)'}: ` +
        `${fmt(FACTS_PER_ROUND)} facts per round over ${SHARDS} shards, 1-dep chains, GCounter; facts/s, median of ${ROUNDS} rounds [min..max]; ratios to one thread per round, median`,
    );
    console.log(
      '| batch | one thread | pool 1 thread pipelined | pool 2 threads pipelined | pool 1 thread one in flight | pool 2 threads one in flight | two raw threads | 1 / 2 pool threads ÷ one thread, pipelined | … one in flight | two raw threads ÷ one thread |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const size of sizes) {
      const { single, rates, ratios } = await throughputAt(size, prefault);
      console.log(
        `| ${size} | ${cell(single)} | ${rates.map(cell).join(' | ')} | ${ratio(ratios[0]!)} / ${ratio(ratios[1]!)} | ${ratio(ratios[2]!)} / ${ratio(ratios[3]!)} | ${ratio(ratios[4]!)} |`,
      );
      summary.push(
        `${prefault ? 'prefaulted' : 'fresh'} shards, batch ${size}: 2 pool threads ${ratio(ratios[1]!)} one thread pipelined, ${ratio(ratios[3]!)} one in flight (1 pool thread: ${ratio(ratios[0]!)} / ${ratio(ratios[2]!)}); two raw threads ${ratio(ratios[4]!)}`,
      );
    }
  }
}

/** Runs `ops` acquire/increment/release on lock `shard` in a new thread; resolves with its elapsed ms. */
function lockWorker(buffer: SharedArrayBuffer, counter: SharedArrayBuffer, shard: number, ops: number, start: SharedArrayBuffer): Promise<number> {
  const worker = new Worker(new URL('./lock-worker.js', import.meta.url), { workerData: { buffer, counter, shard, ops, start } });
  return new Promise((resolve, reject) => {
    worker.once('message', (ms: number) => resolve(ms));
    worker.once('error', reject);
  });
}

async function lockSuite(): Promise<void> {
  console.log(`\nlock: ns per acquire + release (${fmt(LOCK_OPS)} per thread), median of ${ROUNDS} rounds [min..max]`);
  const uncontended: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const locks = new ShardLocks(1);
    const counter = new Int32Array(1);
    const started = performance.now();
    for (let i = 0; i < LOCK_OPS; i++) {
      locks.acquire(0);
      counter[0]!++;
      locks.release(0);
    }
    uncontended.push(((performance.now() - started) * 1e6) / LOCK_OPS);
    if (counter[0] !== LOCK_OPS) {
      invalid++;
      console.log(`  INVALID lock: counter ${counter[0]}, expected ${LOCK_OPS}`);
    }
  }
  const contended: number[] = [];
  const separate: number[] = [];
  const waitedShare: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const sameLock of [true, false]) {
      const locks = new ShardLocks(2);
      const counter = new SharedArrayBuffer(256);
      const start = new SharedArrayBuffer(8);
      const gate = new Int32Array(start);
      const runs = [lockWorker(locks.buffer, counter, 0, LOCK_OPS, start), lockWorker(locks.buffer, counter, sameLock ? 0 : 1, LOCK_OPS, start)];
      // Both threads loaded and waiting at the gate, then released together: their loops overlap.
      while (Atomics.load(gate, 1) < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 20));
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      const elapsed = Math.max(...(await Promise.all(runs)));
      const words = new Int32Array(counter);
      // Same lock: both threads increment one plain word; separate locks: each its own (on its own line).
      const total = sameLock ? words[0]! : words[0]! + words[32]!;
      if (total !== 2 * LOCK_OPS) {
        invalid++;
        console.log(`  INVALID lock: counter ${total}, expected ${2 * LOCK_OPS} (mutual exclusion broken)`);
      }
      const ns = (elapsed * 1e6) / (2 * LOCK_OPS);
      if (sameLock) {
        contended.push(ns);
        const stats = locks.stats(0);
        waitedShare.push(stats.contended / stats.acquired);
      } else {
        separate.push(ns);
      }
    }
  }
  const cell = (xs: number[]): string => `${fmt(median(xs), 1)} ns [${fmt(Math.min(...xs), 1)}..${fmt(Math.max(...xs), 1)}]`;
  console.log(`| case | ns per acquire + release |\n|---|---:|`);
  console.log(`| one thread, uncontended | ${cell(uncontended)} |`);
  console.log(`| two threads, one lock (wall time ÷ all acquisitions; ${fmt(100 * median(waitedShare), 0)}% of acquisitions had to wait, median) | ${cell(contended)} |`);
  console.log(`| two threads, a lock each | ${cell(separate)} |`);
  summary.push(`lock: ${fmt(median(uncontended), 1)} ns uncontended, ${fmt(median(contended), 1)} ns per acquisition with two threads on one lock, ${fmt(median(separate), 1)} ns on separate locks`);
}

/** Main-thread busy milliseconds while `work` runs (event-loop utilisation × wall time). */
async function mainBusy(work: () => Promise<unknown> | unknown): Promise<{ busyMs: number; wallMs: number }> {
  const before = performance.eventLoopUtilization();
  const started = performance.now();
  await work();
  const wallMs = performance.now() - started;
  // The ELU of the interval counts time spent running JavaScript (not idle in the event loop).
  const elu = performance.eventLoopUtilization(before);
  return { busyMs: elu.active, wallMs };
}

async function offloadSuite(): Promise<void> {
  console.log(`\noffload: main-thread busy ms (and wall ms) of coarse work on a kernel of ${fmt(CHECKPOINT_FACTS)} facts, median of ${ROUNDS} rounds`);
  const pool = await KernelPool.create({ shards: 1, threads: 2, invariant: { builtin: 'GCounter' }, indexCapacity: 1024 });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-bench-pool-'));
  const rows = new Map<string, { busy: number[]; wall: number[] }>();
  const note = (name: string, r: { busyMs: number; wallMs: number }): void => {
    const row = rows.get(name) ?? { busy: [], wall: [] };
    row.busy.push(r.busyMs);
    row.wall.push(r.wallMs);
    rows.set(name, row);
  };
  try {
    const ids = idPool(CHECKPOINT_FACTS, 5);
    for (let r = 0; r < ROUNDS; r++) {
      const dir = fs.mkdtempSync(path.join(root, 'round-'));
      const kernel = await DurableKernel.open(dir, new GCounterInvariant(), { indexCapacity: CHECKPOINT_FACTS + 1024, announce: false, prefault: true });
      let admitted = 0;
      for (const id of ids) {
        let code = kernel.tryAdmitRaw(id, [], ONE);
        // The WAL arena fills faster than the disk drains it: wait for it, then retry.
        while (code === AdmitCode.ArenaFull) {
          await kernel.flush();
          code = kernel.tryAdmitRaw(id, [], ONE);
        }
        if (code === AdmitCode.Ok) admitted++;
      }
      if (admitted !== CHECKPOINT_FACTS) {
        invalid++;
        console.log(`  INVALID offload: ${admitted} of ${CHECKPOINT_FACTS} facts admitted`);
      }
      await kernel.flush();
      note('checkpoint inline', await mainBusy(() => kernel.checkpoint()));
      note('checkpoint on a pool thread', await mainBusy(() => kernel.checkpoint({ pool })));
      note('history digest inline', await mainBusy(() => kernel.digest()));
      await kernel.close();
      note('log verification inline', await mainBusy(async () => (await import('ctfs')).verifyLog(dir)));
      note('log verification on a pool thread', await mainBusy(() => pool.verifyLog(dir)));
    }
    // A pool shard's digest: the shard filled through the pool, hashed on a pool thread.
    const shardPool = await KernelPool.create({ shards: 1, threads: 2, invariant: { builtin: 'GCounter' }, indexCapacity: CHECKPOINT_FACTS + 64 });
    try {
      const batch = new FactBatch(4096);
      const ids2 = idPool(CHECKPOINT_FACTS, 6);
      for (let i = 0; i < ids2.length; i += 4096) {
        batch.clear();
        for (const id of ids2.slice(i, i + 4096)) batch.pushRaw(id, [], ONE);
        await shardPool.admitBatch(0, batch);
      }
      for (let r = 0; r < ROUNDS; r++) note('history digest on a pool thread', await mainBusy(() => shardPool.digest(0)));
    } finally {
      await shardPool.close();
    }
  } finally {
    await pool.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.log('| work | main thread busy ms | wall ms |\n|---|---:|---:|');
  for (const [name, { busy, wall }] of rows) console.log(`| ${name} | ${fmt(median(busy), 2)} | ${fmt(median(wall), 1)} |`);
  const busy = (name: string): number => median(rows.get(name)!.busy);
  summary.push(
    `offload (${fmt(CHECKPOINT_FACTS)} facts): checkpoint busies the main thread ${fmt(busy('checkpoint inline'), 1)} ms inline, ${fmt(busy('checkpoint on a pool thread'), 1)} ms offloaded; digest ${fmt(busy('history digest inline'), 1)} → ${fmt(busy('history digest on a pool thread'), 2)} ms; log verification ${fmt(busy('log verification inline'), 1)} → ${fmt(busy('log verification on a pool thread'), 2)} ms`,
  );
}

if (SUITES.includes('throughput')) await throughputSuite();
if (SUITES.includes('lock')) await lockSuite();
if (SUITES.includes('offload')) await offloadSuite();

console.log('\nsummary');
for (const line of summary) console.log(`- ${line}`);
if (invalid > 0) {
  console.log(`${invalid} INVALID measurement(s): see above`);
  process.exitCode = 1;
}
