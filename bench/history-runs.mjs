/**
 * `npm run bench:history`: the cold tier's building blocks (src/causal/id-filter.ts,
 * src/causal/sorted-run.ts), from dist/ (they are not in the public entry yet).
 *
 * - IdFilter: build ids/s, bits per id, measured false-positive rate, lookup ns (absent, present);
 * - SortedRun: build (sort + fences + filter [+ checksum]) ids/s at 1M ids, contains ns (absent,
 *   present) at 1M and 10M ids, RAM per cold id;
 * - k-way merge ids/s.
 *
 * Throughputs are the median of rounds timed with the real-time clock; lookups are mitata's p50,
 * median over rounds. Every loop counts what it returned (true/false) and the row prints it, so
 * no figure can come from an unexpected path: absent probes are ids never inserted (random), and
 * present probes copies of inserted ids, in a probe array of their own (the id being looked up is
 * in cache, as an incoming fact's dep is).
 *
 *   CTFS_BENCH_ROUNDS=5   rounds (default 5)        --quick   tiny sizes, figures meaningless
 */
import { QUICK, ROUNDS, resultTable, lookupNs, median, randomIds } from './history-common.mjs';

const { IdFilter } = await import(new URL('../dist/causal/id-filter.js', import.meta.url).href);
const { SortedRun } = await import(new URL('../dist/causal/sorted-run.js', import.meta.url).href);

const MILLION = QUICK ? 20_000 : 1_000_000;
const TEN_MILLION = QUICK ? 100_000 : 10_000_000;
/** Probe ids per lookup loop: 2 MiB, so lookups do not run over a handful of cache-resident cells. */
const PROBES = QUICK ? 4096 : 1 << 16;
/** Absent ids whose filter answers are counted for the false-positive rate. */
const FPR_PROBES = QUICK ? 100_000 : 4_000_000;

const { row, finish } = resultTable(58);

/** Copies of `count` members of `ids`, chosen by a fixed stride, in an array of their own. */
function presentProbes(ids, count) {
  const n = ids.length / 32;
  const out = new Uint8Array(32 * count);
  for (let i = 0; i < count; i++) {
    const k = Math.floor(((i * 2654435761) % 2 ** 32) / 2 ** 32 * n);
    out.set(ids.subarray(32 * k, 32 * k + 32), 32 * i);
  }
  return out;
}


const fmtRate = (idsPerSecond) => `${(idsPerSecond / 1e6).toFixed(2)}M`;

/** Median ids/s of `build()` over ROUNDS rounds (after one untimed warm-up round). */
function throughput(ids, build) {
  build();
  const rates = [];
  let last;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    last = build();
    rates.push(ids / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return { rate: median(rates), last };
}

const allTrue = (o) => o.startsWith('true ') && o.endsWith(' false 0');

// ------------------------------------------------------------------------------------ IdFilter

console.log(`IdFilter (binary fuse, 8-bit fingerprints), ${ROUNDS} rounds`);
for (const n of [MILLION, TEN_MILLION]) {
  const ids = randomIds(n, 1);
  const { rate, last: filter } = throughput(n, () => IdFilter.build(ids));
  row(`filter build, ${n.toLocaleString('en-US')} ids`, fmtRate(rate), 'ids/s', `${filter.count.toLocaleString('en-US')} ids in`, () => filter.count === n);
  const absent = randomIds(FPR_PROBES, 2);
  let hits = 0;
  for (let o = 0; o < absent.length; o += 32) hits += filter.mayContain(absent, o) ? 1 : 0;
  row(`filter size, ${n.toLocaleString('en-US')} ids`, filter.bitsPerId.toFixed(3), 'bits/id', `${filter.byteLength.toLocaleString('en-US')} bytes`);
  row(`filter false positives, ${n.toLocaleString('en-US')} ids`, `${((100 * hits) / FPR_PROBES).toFixed(3)}%`, '', `${hits.toLocaleString('en-US')} of ${FPR_PROBES.toLocaleString('en-US')} absent ids`);
  const a = await lookupNs(randomIds(PROBES, 3), (p, o) => filter.mayContain(p, o));
  row(`filter mayContain, absent id, ${n.toLocaleString('en-US')} ids`, a.ns.toFixed(1), 'ns', `true ${a.trues} false ${a.falses}`, () => a.falses > 0.98 * (a.trues + a.falses));
  const p = await lookupNs(presentProbes(ids, PROBES), (q, o) => filter.mayContain(q, o));
  row(`filter mayContain, present id, ${n.toLocaleString('en-US')} ids`, p.ns.toFixed(1), 'ns', `true ${p.trues} false ${p.falses}`, allTrue);
}

// ----------------------------------------------------------------------------------- SortedRun

console.log(`\nSortedRun (128 ids per fence, filter, BLAKE3 checksum optional), ${ROUNDS} rounds`);
const runs = new Map();
{
  const n = MILLION;
  const ids = randomIds(n, 11);
  const fresh = throughput(n, () => SortedRun.build(ids, { checksum: false }));
  row(`run build (sort + fences + filter), ${n.toLocaleString('en-US')} ids`, fmtRate(fresh.rate), 'ids/s', `${fresh.last.count.toLocaleString('en-US')} ids in`, () => fresh.last.count === n);
  const sealed = throughput(n, () => SortedRun.build(ids));
  row(`run build + BLAKE3 checksum, ${n.toLocaleString('en-US')} ids`, fmtRate(sealed.rate), 'ids/s', `${sealed.last.count.toLocaleString('en-US')} ids in, checksummed ${sealed.last.checksummed}`, () => sealed.last.checksummed);
  const into = new Uint8Array(new SharedArrayBuffer(fresh.last.byteLength));
  const reused = throughput(n, () => SortedRun.build(ids, { checksum: false, into }));
  row(`run build into a reused buffer, ${n.toLocaleString('en-US')} ids`, fmtRate(reused.rate), 'ids/s', `${reused.last.count.toLocaleString('en-US')} ids in`, () => reused.last.count === n);
  runs.set(n, { run: fresh.last, ids });
}
{
  const n = TEN_MILLION;
  const ids = randomIds(n, 12);
  const t0 = process.hrtime.bigint();
  const run = SortedRun.build(ids, { checksum: false });
  const rate = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  row(`run build, ${n.toLocaleString('en-US')} ids (one round)`, fmtRate(rate), 'ids/s', `${run.count.toLocaleString('en-US')} ids in`, () => run.count === n);
  runs.set(n, { run, ids });
}
for (const [n, { run, ids }] of runs) {
  row(`run RAM besides the ids (header, fences, filter), ${n.toLocaleString('en-US')} ids`, (run.residentBytes / n).toFixed(3), 'B/id', `${run.residentBytes.toLocaleString('en-US')} bytes`);
  const a = await lookupNs(randomIds(PROBES, 13), (p, o) => run.contains(p, o));
  row(`run contains, absent id, ${n.toLocaleString('en-US')} ids`, a.ns.toFixed(1), 'ns', `true ${a.trues} false ${a.falses}`, (o) => a.trues === 0 && o !== '');
  const p = await lookupNs(presentProbes(ids, PROBES), (q, o) => run.contains(q, o));
  row(`run contains, present id, ${n.toLocaleString('en-US')} ids`, p.ns.toFixed(1), 'ns', `true ${p.trues} false ${p.falses}`, allTrue);
}

// --------------------------------------------------------------------------------------- merge

console.log(`\nk-way merge (output with filter, no checksum), ${ROUNDS} rounds`);
for (const [k, total] of [
  [2, MILLION],
  [8, MILLION],
  [4, TEN_MILLION],
]) {
  const per = Math.floor(total / k);
  const inputs = Array.from({ length: k }, (_, i) => SortedRun.build(randomIds(per, 100 + i), { checksum: false }));
  const rounds = total >= TEN_MILLION ? 1 : ROUNDS;
  const rates = [];
  let merged;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    merged = SortedRun.merge(inputs, { checksum: false });
    rates.push((k * per) / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  row(`merge ${k} runs into ${(k * per).toLocaleString('en-US')} ids${rounds === 1 ? ' (one round)' : ''}`, fmtRate(median(rates)), 'ids/s', `${merged.count.toLocaleString('en-US')} ids out`, () => merged.count === k * per);
}

finish();
