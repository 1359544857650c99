/**
 * `npm run bench:tiered`: TieredExactIndex (src/causal/tiered-index.ts) against a plain
 * ExactCausalIndex big enough for the same ids, side by side in the same run, from dist/ (neither
 * is wired into the kernels here).
 *
 * At 10k, 1M and 10M ids indexed:
 * - insert of fresh ids (ns per insert, rounds of a few thousand, the two indexes alternating);
 * - contains of an absent id, a recent id (among the last 1,024 inserted: in the hot table), an
 *   old id (from the first half inserted: in the runs), and insert of an old id (a duplicate);
 *   the tiered/plain ratio of each;
 * - the tiered index's memory per id per tier, the plain index's per id.
 * While the tiered index fills, compaction keeps up as a worker would (the same thread here,
 * untimed in the inserts): each frozen table's run is built, then the merges the policy asks for;
 * the bench times each step: freeze (the insert that freezes, against an ordinary insert timed
 * the same way: it must not grow with the history), run build and merge throughput (ids/s), and
 * the installs (the swaps the admitting thread would do). A freeze with no spare table (compaction
 * behind) is timed on its own.
 *
 * Both indexes are driven the same way: ids are read at offsets of one packed buffer; the plain
 * index through its internal probe/insertAt pair with the same `IdHasher.loadAt` (what the
 * admission path does), the tiered one through its public `insert`/`contains`. Inserts are timed
 * with the real-time clock (median of rounds); lookups are mitata's p50, median over rounds. Every
 * loop tallies what it returned and the row prints it, so no figure comes from an error path.
 *
 *   CTFS_BENCH_ROUNDS=5   rounds (default 5)        --quick   tiny sizes, figures meaningless
 *   CTFS_BENCH_SIZES=1000000,10000000   ids indexed (default 10k, 1M, 10M)
 *   CTFS_HOT_CAPACITY=65536             ids per hot table (default: the library's)
 */
import { QUICK, ROUNDS, resultTable, lookupNs, median, randomIds } from './history-common.mjs';

const { TieredExactIndex, buildRun, mergeRuns, DEFAULT_HOT_CAPACITY } = await import(new URL('../dist/causal/tiered-index.js', import.meta.url).href);
const { ExactCausalIndex } = await import(new URL('../dist/causal/exact-index.js', import.meta.url).href);
const { IdHasher } = await import(new URL('../dist/causal/id-hash.js', import.meta.url).href);

const SIZES = process.env.CTFS_BENCH_SIZES?.split(',').map(Number) ?? (QUICK ? [10_000, 200_000] : [10_000, 1_000_000, 10_000_000]);
/** Probe ids per lookup loop: 2 MiB, so lookups do not run over a handful of cached ids. */
const PROBES = QUICK ? 4096 : 1 << 16;
const RECENT = 1024;
const gc = globalThis.gc ?? (() => {});

const { row, finish } = resultTable(62);

/** Copies of `count` ids of `ids[from..to)` (id numbers), chosen by a fixed stride, packed in a buffer of their own. */
function probesFrom(ids, from, to, count) {
  const out = new Uint8Array(32 * count);
  for (let i = 0; i < count; i++) {
    const k = from + Math.floor((((i * 2654435761) % 2 ** 32) / 2 ** 32) * (to - from));
    out.set(ids.subarray(32 * k, 32 * k + 32), 32 * i);
  }
  return out;
}

const fmt = (n) => n.toLocaleString('en-US');
const now = () => process.hrtime.bigint();
const since = (t0) => Number(process.hrtime.bigint() - t0);


/** The plain index driven as the admission path drives it: one hasher, probe, insertAt. */
class Plain {
  constructor(capacity) {
    this.index = new ExactCausalIndex({ capacity });
    this.h = new IdHasher(this.index.seed);
  }
  insert(ids, o) {
    const h = this.h;
    h.loadAt(ids, o);
    const index = this.index;
    index.beginWrite();
    const p = index.probe(h);
    if (p >= 0) return false;
    if (index.size >= index.capacity) throw new Error('plain index full');
    index.insertAt(~p, h);
    return true;
  }
  contains(ids, o) {
    const h = this.h;
    h.loadAt(ids, o);
    return this.index.find(h) >= 0;
  }
}

/** Compaction as a compactor thread would run it (claim, run, complete; the writer installs), each step timed; adds to `stats`. */
function compactTimed(index, stats) {
  for (;;) {
    const job = index.claimCompaction();
    if (job === undefined) break;
    let t0 = now();
    const count = index.runCompaction(job);
    if (job.kind === 'build') {
      stats.buildNs += since(t0);
      stats.buildIds += job.count;
    } else {
      stats.mergeNs += since(t0);
      stats.mergeIds += job.count;
      stats.merges++;
    }
    index.completeCompaction(job, count);
    t0 = now();
    index.publish(); // installs what finished: the writer's pause
    stats.installNs.push(since(t0));
  }
}

const outcome = (o) => `true ${fmt(o.trues)} false ${fmt(o.falses)}`;

const hotCapacity = Number(process.env.CTFS_HOT_CAPACITY ?? DEFAULT_HOT_CAPACITY);
console.log(`TieredExactIndex (hot table ${fmt(hotCapacity)} ids, merge factor 4) vs ExactCausalIndex, ${ROUNDS} rounds`);

for (const n of SIZES) {
  const batch = Math.min(16384, n >> 3);
  const WARM = batch >> 3;
  const extra = (ROUNDS + 1) * batch;
  const ids = randomIds(n + extra, n);
  const absent = randomIds(PROBES, 7);
  const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
  console.log(`\n${label} ids indexed`);

  // ----- fill, with compaction keeping up; freezes timed one by one
  const tiered = new TieredExactIndex({ hotCapacity });
  const stats = { buildNs: 0, buildIds: 0, mergeNs: 0, mergeIds: 0, merges: 0, installNs: [] };
  const freezeNs = [];
  const plainInsertNs = [];
  let filled = 0;
  let t0 = now();
  for (let k = 0; k < n; k++) {
    if (k > 0 && k % hotCapacity === 0) {
      const t = now();
      filled += tiered.insert(ids, 32 * k) ? 1 : 0;
      freezeNs.push(since(t));
      compactTimed(tiered, stats);
    } else if (k % 1024 === 512) {
      const t = now();
      filled += tiered.insert(ids, 32 * k) ? 1 : 0;
      plainInsertNs.push(since(t));
    } else {
      filled += tiered.insert(ids, 32 * k) ? 1 : 0;
    }
  }
  const tieredFillS = since(t0) / 1e9;
  const plain = new Plain(n + extra);
  t0 = now();
  let plainFilled = 0;
  for (let k = 0; k < n; k++) plainFilled += plain.insert(ids, 32 * k) ? 1 : 0;
  const plainFillS = since(t0) / 1e9;
  row(`fill (tiered incl. compaction / plain), ${label}`, `${tieredFillS.toFixed(2)} / ${plainFillS.toFixed(2)}`, 's', `${fmt(filled)} / ${fmt(plainFilled)} inserted`, () => filled === n && plainFilled === n);

  // ----- lookups
  const recent = probesFrom(ids, n - RECENT, n, PROBES);
  const old = probesFrom(ids, 0, n >> 1, PROBES);
  const m0 = tiered.memoryBytes();
  console.log(`    tiers: hot ${fmt(m0.hot.ids)} ids, ${m0.frozen.tables} frozen, runs ${tiered.runSizes().map(fmt).join(' ')}`);
  for (const [what, probes, want] of [
    ['contains, absent id', absent, false],
    ['contains, recent id (hot table)', recent, true],
    ['contains, old id (runs)', old, true],
  ]) {
    const t = await lookupNs(probes, (p, o) => tiered.contains(p, o));
    const p = await lookupNs(probes, (q, o) => plain.contains(q, o));
    const good = () => (want ? t.falses === 0 && p.falses === 0 : t.trues === 0 && p.trues === 0);
    row(`${what}, ${label}: tiered / plain`, `${t.ns.toFixed(1)} / ${p.ns.toFixed(1)}`, 'ns', `${outcome(t)} / ${outcome(p)}`, good);
    row(`  ratio`, (t.ns / p.ns).toFixed(2), '×', '', undefined);
  }
  {
    const t = await lookupNs(old, (p, o) => tiered.insert(p, o));
    const p = await lookupNs(old, (q, o) => plain.insert(q, o));
    row(`insert, old id (a duplicate), ${label}: tiered / plain`, `${t.ns.toFixed(1)} / ${p.ns.toFixed(1)}`, 'ns', `${outcome(t)} / ${outcome(p)}`, () => t.trues === 0 && p.trues === 0);
    row(`  ratio`, (t.ns / p.ns).toFixed(2), '×', '', undefined);
  }

  // ----- inserts of fresh ids: the two indexes take turns going first; each batch follows an
  // untimed warm-up of its own; compaction between rounds, untimed
  {
    const tNs = [];
    const pNs = [];
    let tOk = 0;
    let pOk = 0;
    const timed = (index, from) => {
      let ok = 0;
      for (let k = from; k < from + WARM; k++) ok += index.insert(ids, 32 * k) ? 1 : 0;
      const t = now();
      for (let k = from + WARM; k < from + batch; k++) ok += index.insert(ids, 32 * k) ? 1 : 0;
      const ns = since(t) / (batch - WARM);
      if (index === tiered) tOk += ok;
      else pOk += ok;
      return ns;
    };
    for (let r = 0; r <= ROUNDS; r++) {
      const from = n + r * batch;
      let tiered1;
      let plain1;
      if (r % 2 === 0) {
        tiered1 = timed(tiered, from);
        plain1 = timed(plain, from);
      } else {
        plain1 = timed(plain, from);
        tiered1 = timed(tiered, from);
      }
      compactTimed(tiered, stats);
      if (r > 0) {
        tNs.push(tiered1);
        pNs.push(plain1);
      }
    }
    const t = median(tNs);
    const p = median(pNs);
    row(`insert, fresh id, ${label}: tiered / plain`, `${t.toFixed(1)} / ${p.toFixed(1)}`, 'ns', `${fmt(tOk)} / ${fmt(pOk)} of ${fmt(extra)} inserted`, () => tOk === extra && pOk === extra);
    row(`  ratio`, (t / p).toFixed(2), '×', '', undefined);
  }

  // ----- freezes, compaction, installs
  if (freezeNs.length > 0) {
    row(`freeze (the insert that freezes), ${label}: median / max`, `${(median(freezeNs) / 1e3).toFixed(2)} / ${(Math.max(...freezeNs) / 1e3).toFixed(2)}`, 'µs', `${freezeNs.length} freezes; an ordinary insert timed alike: median ${(median(plainInsertNs) / 1e3).toFixed(2)} µs`);
  }
  if (stats.buildIds > 0) {
    row(`run build throughput, ${label}`, `${((stats.buildIds / stats.buildNs) * 1e3).toFixed(2)}M`, 'ids/s', `${fmt(stats.buildIds)} ids in ${fmt(stats.buildIds / hotCapacity)} runs`);
  }
  if (stats.mergeIds > 0) {
    row(`merge throughput, ${label}`, `${((stats.mergeIds / stats.mergeNs) * 1e3).toFixed(2)}M`, 'ids/s', `${fmt(stats.mergeIds)} ids in ${stats.merges} merges (${(stats.mergeIds / Math.max(1, stats.buildIds)).toFixed(2)} rewrites per id)`);
  }
  if (stats.installNs.length > 0) {
    row(`install (swap a run in), ${label}: median / max`, `${(median(stats.installNs) / 1e3).toFixed(1)} / ${(Math.max(...stats.installNs) / 1e3).toFixed(1)}`, 'µs', `${stats.installNs.length} installs`);
  }

  // ----- memory per id per tier
  const m = tiered.memoryBytes();
  const per = (bytes, count) => (count === 0 ? '-' : (bytes / count).toFixed(3));
  row(`memory, ${label}: tiered overall / plain (per id held)`, `${per(m.total, tiered.size)} / ${per(plain.index.byteLength, plain.index.size)}`, 'B/id', `${fmt(m.total)} / ${fmt(plain.index.byteLength)} bytes for ${fmt(tiered.size)} ids`);
  row(`  runs: keys + filters + fences + other`, per(m.runs.bytes, m.runs.ids), 'B/id', `${per(m.runs.keys, m.runs.ids)} + ${per(m.runs.filters, m.runs.ids)} + ${per(m.runs.fences, m.runs.ids)} + ${per(m.runs.other, m.runs.ids)}, ${m.runs.count} runs, ${fmt(m.runs.ids)} ids`, () => m.runs.ids === 0 || m.runs.bytes / m.runs.ids <= 36);
  row(`  hot table (at capacity) + spare`, per(m.hot.bytes, hotCapacity), 'B/id', `${fmt(m.hot.bytes + m.spare.bytes)} bytes, ${fmt(m.hot.ids)} ids hot, ${m.spare.tables} spare`);
  row(`  frozen tables`, per(m.frozen.bytes, m.frozen.ids), 'B/id', `${m.frozen.tables} tables, ${fmt(m.frozen.ids)} ids`);
  gc();
}

// ----- a freeze with no spare (compaction behind): the table is allocated on the admitting path
{
  const index = new TieredExactIndex({ hotCapacity });
  const n = 12 * hotCapacity;
  const ids = randomIds(n + 1, 99);
  const times = [];
  let ok = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0 && k % hotCapacity === 0) {
      const t = now();
      ok += index.insert(ids, 32 * k) ? 1 : 0;
      times.push(since(t));
    } else ok += index.insert(ids, 32 * k) ? 1 : 0;
  }
  // The first freeze used the spare; the others allocated.
  const allocating = times.slice(1);
  row(`freeze without a spare (allocates a table): median / max`, `${(median(allocating) / 1e3).toFixed(1)} / ${(Math.max(...allocating) / 1e3).toFixed(1)}`, 'µs', `${allocating.length} freezes, ${index.frozenCount} frozen, ${fmt(ok)} inserted`, () => ok === n + 1);
}

finish();
