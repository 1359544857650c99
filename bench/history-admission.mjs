/**
 * `npm run bench:history-kernel`: admission into a Kernel whose exact history is tiered (hot
 * table, sorted runs built by the compactor thread), from dist/, at 10k, 1M and 10M facts already
 * admitted (100M with CTFS_BENCH_SIZES=100000000: ~4 GB of memory, minutes):
 * - while it fills: admissions/s, and every admission timed on its own: the longest one (the
 *   longest pause the admitting thread saw: freezes, installs), and how many took > 100 µs / > 1 ms;
 * - then, per admission (median of rounds of 20,000): no deps; one recent dep (a chain); one
 *   random old dep (uniform over everything admitted: nearly always in a run); a duplicate of a
 *   random old fact (refused, DuplicateFact); each row prints the outcomes it counted;
 * - memory per id per tier (historyMemory());
 * - fresh against warm: 100,000 admissions into a new kernel (prefault off, and on) against the
 *   same kernel after reset() (its tables' pages committed);
 * - a durable kernel at 1M facts (CTFS_BENCH_DURABLE=0 skips it): checkpoint() and reopen times.
 *
 *   CTFS_BENCH_ROUNDS=5   rounds (default 5)        --quick   small sizes, figures meaningless
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { QUICK, ROUNDS, median, randomIds } from './history-common.mjs';

/** The longest garbage collection seen since the last reset: a long admission may be one. */
const gcPause = { max: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPause.max = Math.max(gcPause.max, e.duration);
}).observe({ entryTypes: ['gc'] });

const lib = await import(new URL('../dist/index.js', import.meta.url).href);
const { AdmitCode, Kernel, DurableKernel, TotalSupplyInvariant, AckMode } = lib;

const SIZES = process.env.CTFS_BENCH_SIZES?.split(',').map(Number) ?? (QUICK ? [10_000, 200_000] : [10_000, 1_000_000, 10_000_000]);
const BATCH = QUICK ? 2_000 : 20_000;
const CHUNK = 1 << 20;
const fmt = (n) => n.toLocaleString('en-US');
const ns = (ms, n) => ((ms * 1e6) / n).toFixed(1);
const gc = globalThis.gc ?? (() => {});
const PAYLOAD = new Uint8Array(16);
PAYLOAD[0] = 1;
const NO_DEPS = [];

/** Admits ids[offset..] until `count` of them; counts outcomes; times each admission alone. */
function fill(kernel, count, salt, pauses) {
  let done = 0;
  const tally = new Map();
  while (done < count) {
    const n = Math.min(CHUNK, count - done);
    const ids = randomIds(n, salt * 1000 + done / CHUNK);
    for (let i = 0; i < n; i++) {
      const id = ids.subarray(32 * i, 32 * i + 32);
      const t0 = performance.now();
      const code = kernel.tryAdmitRaw(id, NO_DEPS, PAYLOAD);
      const dt = performance.now() - t0;
      if (dt > pauses.max) pauses.max = dt;
      if (dt > 0.1) pauses.over100us++;
      if (dt > 1) pauses.over1ms++;
      tally.set(code, (tally.get(code) ?? 0) + 1);
    }
    done += n;
  }
  return tally;
}

/** Publishes (installs what the compactor finished) until nothing is frozen and a quiet spell passes. */
async function settle(kernel) {
  const deadline = Date.now() + 600_000;
  for (;;) {
    kernel.publish();
    const m = kernel.historyMemory();
    if (m.frozen.tables === 0) {
      await new Promise((r) => setTimeout(r, 300));
      kernel.publish();
      if (kernel.historyMemory().frozen.tables === 0) return;
    }
    if (Date.now() > deadline) throw new Error('compaction did not settle');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One timed loop of BATCH admissions made by `make(i)` → [id, deps]; returns ns per admission and tallies. */
function timed(kernel, make, tally) {
  const work = [];
  for (let i = 0; i < BATCH; i++) work.push(make(i));
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) {
    const [id, deps] = work[i];
    const code = kernel.tryAdmitRaw(id, deps, PAYLOAD);
    tally[code] = (tally[code] ?? 0) + 1;
  }
  return performance.now() - t0;
}

const outcome = (tally) =>
  Object.entries(tally)
    .map(([code, n]) => `${code === '0' ? 'Ok' : lib.admitCodeName(Number(code))} ${fmt(n)}`)
    .join(', ');

console.log(`Kernel admission over a tiered exact history (dist/, background compaction), ${ROUNDS} rounds of ${fmt(BATCH)}`);
// Warm-up: every loop below once, on a throwaway kernel, so the first size is not measured cold.
{
  const warm = new Kernel(new TotalSupplyInvariant());
  fill(warm, 200_000, 9, { max: 0, over100us: 0, over1ms: 0 });
  const ids = randomIds(BATCH, 99);
  const old = randomIds(BATCH, 9000);
  let prev = old.subarray(0, 32);
  for (const make of [
    (i) => [ids.subarray(32 * i, 32 * i + 32), NO_DEPS],
    (i) => [randomIds(1, 500 + i), [prev]],
    (i) => [randomIds(1, 90_000 + i), [old.subarray(32 * (i % 100), 32 * (i % 100) + 32)]],
  ]) {
    timed(warm, (i) => {
      const w = make(i);
      prev = w[0];
      return w;
    }, {});
  }
}
console.log('| facts indexed | operation | ns per admission (median) | outcomes |');
console.log('|---|---|---:|---|');
const summary = [];
for (const n of SIZES) {
  gc();
  const kernel = new Kernel(new TotalSupplyInvariant(), { prefault: true });
  const pauses = { max: 0, over100us: 0, over1ms: 0 };
  gcPause.max = 0;
  const t0 = performance.now();
  const filled = fill(kernel, n, 1, pauses);
  const fillMs = performance.now() - t0;
  // GC entries reach the observer only once the loop yields.
  await new Promise((r) => setTimeout(r, 50));
  const fillGc = gcPause.max;
  if (filled.get(AdmitCode.Ok) !== n) throw new Error(`fill: ${[...filled]}`);
  await settle(kernel);
  // Sample old ids from everything admitted: regenerate the chunk that holds each one.
  const oldIds = [];
  const sample = Math.min(n, 4 * BATCH * ROUNDS);
  for (let c = 0; c * CHUNK < n && oldIds.length < sample; c++) {
    const size = Math.min(CHUNK, n - c * CHUNK);
    const ids = randomIds(size, 1000 + c);
    const take = Math.ceil((sample * size) / n);
    for (let k = 0; k < take && oldIds.length < sample; k++) {
      const i = Math.floor(((k + 0.5) * size) / take);
      oldIds.push(ids.slice(32 * i, 32 * i + 32));
    }
  }
  let salt = 50;
  let last = oldIds[oldIds.length - 1];
  const rows = {
    'no deps': { make: (ids) => (i) => [ids.subarray(32 * i, 32 * i + 32), NO_DEPS] },
    'one recent dep (a chain)': {
      make: (ids) => (i) => {
        const id = ids.subarray(32 * i, 32 * i + 32);
        const deps = [last];
        last = id;
        return [id, deps];
      },
    },
    'one random old dep': { make: (ids) => (i) => [ids.subarray(32 * i, 32 * i + 32), [oldIds[(i * 7919) % oldIds.length]]] },
    'a duplicate of a random old fact': { make: () => (i) => [oldIds[(i * 104729) % oldIds.length], NO_DEPS] },
  };
  for (const [name, row] of Object.entries(rows)) {
    const tally = {};
    const times = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ids = randomIds(BATCH, salt++);
      times.push(timed(kernel, row.make(ids), tally));
    }
    const per = ns(median(times), BATCH);
    summary.push({ n, name, per });
    console.log(`| ${fmt(n)} | ${name} | ${per} | ${outcome(tally)} |`);
  }
  await settle(kernel);
  const m = kernel.historyMemory();
  const p = kernel.historyPauses();
  const perTier = (bytes, ids) => (ids === 0 ? '-' : (bytes / ids).toFixed(2));
  console.log(
    `| ${fmt(n)} | fill: ${fmt(Math.round(n / (fillMs / 1000)))} admissions/s; longest freeze ${p.longestFreezeMs.toFixed(3)} ms (${fmt(p.freezes)}), longest install ${p.longestInstallMs.toFixed(3)} ms (${fmt(p.installs)}); longest admission ${pauses.max.toFixed(2)} ms (longest GC meanwhile ${fillGc.toFixed(2)} ms); admissions > 100 µs: ${fmt(pauses.over100us)}, > 1 ms: ${fmt(pauses.over1ms)} | - | Ok ${fmt(n)} |`,
  );
  console.log(
    `| ${fmt(n)} | memory: ${(m.total / kernel.size).toFixed(2)} B/id overall; runs ${perTier(m.runs.bytes, m.runs.ids)} B/id (${m.runs.count} runs, ${fmt(m.runs.ids)} ids); hot + spare ${fmt(m.hot.bytes + m.spare.bytes)} B; frozen ${m.frozen.tables} | - | - |`,
  );
}

// Fresh against warm: the same 100,000 admissions.
{
  const count = QUICK ? 20_000 : 100_000;
  const ids = randomIds(count, 777);
  const run = (kernel) => {
    let ok = 0;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) if (kernel.tryAdmitRaw(ids.subarray(32 * i, 32 * i + 32), NO_DEPS, PAYLOAD) === AdmitCode.Ok) ok++;
    const ms = performance.now() - t0;
    if (ok !== count) throw new Error(`fresh/warm: ${ok} of ${count} admitted`);
    return ms;
  };
  const fresh = [];
  const freshPrefaulted = [];
  const warm = [];
  for (let r = 0; r < ROUNDS; r++) {
    gc();
    const k = new Kernel(new TotalSupplyInvariant());
    fresh.push(run(k));
    k.reset();
    warm.push(run(k));
    const p = new Kernel(new TotalSupplyInvariant(), { prefault: true });
    freshPrefaulted.push(run(p));
  }
  const f = median(fresh);
  const fp = median(freshPrefaulted);
  const w = median(warm);
  console.log(`| ${fmt(count)} | fresh kernel (prefault off / on) vs warm (after reset) | ${ns(f, count)} / ${ns(fp, count)} vs ${ns(w, count)} | ratios ${(f / w).toFixed(2)}× / ${(fp / w).toFixed(2)}×, Ok ${fmt(count)} each |`);
}

// A durable kernel: checkpoint and reopen at 1M facts.
if (process.env.CTFS_BENCH_DURABLE !== '0') {
  const facts = QUICK ? 50_000 : Number(process.env.CTFS_BENCH_DURABLE_FACTS ?? 1_000_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-history-bench-'));
  try {
    let kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { announce: false, prefault: true });
    const ids = randomIds(facts, 4242);
    let ok = 0;
    for (let i = 0; i < facts; i++) if (kernel.tryAdmitRaw(ids.subarray(32 * i, 32 * i + 32), NO_DEPS, PAYLOAD, AckMode.Volatile) === AdmitCode.Ok) ok++;
    if (ok !== facts) throw new Error(`durable fill: ${ok} of ${facts}`);
    await kernel.flush();
    const checkpoints = [];
    let info;
    for (let r = 0; r < Math.min(ROUNDS, 3); r++) {
      const t0 = performance.now();
      info = await kernel.checkpoint();
      checkpoints.push(performance.now() - t0);
    }
    await kernel.close();
    const reopens = [];
    for (let r = 0; r < Math.min(ROUNDS, 3); r++) {
      gc();
      const t0 = performance.now();
      kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { announce: false });
      reopens.push(performance.now() - t0);
      if (kernel.size !== facts) throw new Error(`reopen: ${kernel.size} facts`);
      await kernel.close();
    }
    console.log(
      `| ${fmt(facts)} | durable: checkpoint ${median(checkpoints).toFixed(0)} ms (${(info.bytes / 2 ** 20).toFixed(1)} MiB), reopen ${median(reopens).toFixed(0)} ms (from the checkpoint) | - | Ok ${fmt(facts)}; reopened with ${fmt(facts)} facts |`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Ratios the targets are stated in: 10M (or the largest size) against 10k, same run.
const small = SIZES[0];
const large = SIZES[SIZES.length - 1];
for (const name of ['no deps', 'one recent dep (a chain)']) {
  const a = summary.find((s) => s.n === small && s.name === name);
  const b = summary.find((s) => s.n === large && s.name === name);
  if (a && b) console.log(`ratio ${fmt(large)} / ${fmt(small)}, ${name}: ${(b.per / a.per).toFixed(2)}×`);
}
process.exit(0);
