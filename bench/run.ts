/**
 * `npm run bench`: kernel admission, its building blocks, memory per id and heap growth.
 * Mirrors the upstream kernel benches (docs/BENCHMARKS.md lists what each one times).
 *
 *   CTFS_BENCH_ROUNDS=5   rounds per benchmark (default 5)
 *   CTFS_BENCH_ONLY=metrics  only the named suites (kernel, micro, metrics, invariants, memory, heap)
 *   --quick               tiny sizes: checks the harness and every outcome, figures meaningless
 */
import { PerformanceObserver } from 'node:perf_hooks';
import {
  AdmitCode,
  CausalMode,
  ConservationState,
  EscalatingKernel,
  ExactCausalIndex,
  Kernel,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  LatencyHistogram,
  nowNs,
  addI128,
  createFact,
  decodeFact,
  encodeFact,
  factId,
  i128le,
  type FactId,
} from 'ctfs';
import { Outcomes, idPool, printMarkdown, rows, timeBatches, timeMitata } from './harness.js';
import { invariantSuite } from './invariants.js';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 1 : Number(process.env.CTFS_BENCH_ROUNDS ?? 5);
const SMALL = QUICK ? 1 << 12 : 1 << 16; // ids per round for "small index" benches
const BATCH = QUICK ? 256 : 1024;
const MILLION = QUICK ? 20_000 : 1_000_000;
const CAPACITY = 1 << 20; // the default capacity
const NO_DEPS: FactId[] = [];

const cell = new ConservationState(0n).toCell();
// Alternating +1/-1 keeps the balance near zero: every admission passes the invariant.
const plus = i128le(1n);
const minus = i128le(-1n);
const payloadFor = (i: number): Uint8Array => ((i & 1) === 0 ? plus : minus);

const pool = idPool(MILLION + SMALL + 1);

interface Admitter {
  tryAdmitRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): number;
  reset(cell?: Uint8Array): void;
}

/**
 * Admits pool ids from `base` (at most SMALL per round, and never past the kernel's capacity),
 * with no deps or each depending on the previous one, after `prefill` untimed admissions.
 */
function admissionBench(name: string, kernel: Admitter & { indexCapacity: number }, base: number, prefill: number, withDep: boolean, note?: string): void {
  const room = Math.min(SMALL, kernel.indexCapacity - prefill) - 1;
  const outcomes = new Outcomes();
  const deps: FactId[] = [pool[0]!];
  const prefillIds = (): void => {
    kernel.reset(cell.bytes);
    for (let i = 0; i < prefill; i++) kernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloadFor(i));
    if (withDep) {
      kernel.tryAdmitRaw(pool[base]!, NO_DEPS, plus);
      deps[0] = pool[base]!;
    }
  };
  const first = base + (withDep ? 1 : 0);
  timeBatches(
    name,
    {
      rounds: ROUNDS,
      batches: Math.floor(room / BATCH),
      batchSize: BATCH,
      setup: prefillIds,
      run: withDep
        ? (from, count) => {
            for (let i = first + from, end = first + from + count; i < end; i++) {
              const id = pool[i]!;
              outcomes.add(kernel.tryAdmitRaw(id, deps, payloadFor(i)));
              deps[0] = id;
            }
          }
        : (from, count) => {
            for (let i = first + from, end = first + from + count; i < end; i++) {
              outcomes.add(kernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloadFor(i)));
            }
          },
    },
    outcomes,
    true,
    note,
  );
}

async function kernelSuite(): Promise<void> {
  console.log(`\nKernel admission, TotalSupply, default capacity ${CAPACITY.toLocaleString('en-US')} ids (${SMALL.toLocaleString('en-US')} admissions per round)`);
  const kernel = Kernel.withState(new TotalSupplyInvariant(), cell);
  admissionBench('Kernel: no deps, small index', kernel, 0, 0, false);
  admissionBench('Kernel: 1-dep chain, small index', kernel, 0, 0, true);
  admissionBench(`Kernel: no deps, ${MILLION.toLocaleString('en-US')} ids indexed`, kernel, MILLION, MILLION, false);
  admissionBench(`Kernel: 1-dep chain, ${MILLION.toLocaleString('en-US')} ids indexed`, kernel, MILLION, MILLION, true);

  const sized = Kernel.withState(new TotalSupplyInvariant(), cell, { indexCapacity: 1 << 16 });
  admissionBench('Kernel (capacity 65,536): no deps', sized, 0, 0, false);
  admissionBench('Kernel (capacity 65,536): 1-dep chain', sized, 0, 0, true);

  const twoLane = TwoLaneKernel.withState(new TotalSupplyInvariant(), cell);
  admissionBench('TwoLaneKernel: no deps, small index', twoLane, 0, 0, false);
  admissionBench('TwoLaneKernel: 1-dep chain, small index', twoLane, 0, 0, true);

  const escalating = EscalatingKernel.withState(new TotalSupplyInvariant(), cell);
  admissionBench('EscalatingKernel: 1-dep chain (escalates after ~90 facts)', escalating, 0, 0, true);
  if (escalating.mode !== CausalMode.Precise) throw new Error('EscalatingKernel did not escalate');

  const tenants = new TenantKernel(new TotalSupplyInvariant(), { maxTenants: 8 });
  for (let t = 0; t < 8; t++) tenants.registerTenant(t, cell);
  const tenant5 = {
    indexCapacity: Infinity,
    tryAdmitRaw: (id: FactId, deps: readonly FactId[], payload: Uint8Array) => tenants.tryAdmit(5, id, deps, payload),
    reset: (bytes?: Uint8Array) => tenants.reset(5, bytes),
  };
  admissionBench('TenantKernel: no deps, tenant 5 of 8', tenant5, 0, 0, false);
  admissionBench('TenantKernel: 1-dep chain, tenant 5 of 8', tenant5, 0, 0, true);

  // A brand-new kernel per round: includes first-touch page faults of the fresh key store.
  const fresh = new Outcomes();
  let freshKernel = Kernel.withState(new TotalSupplyInvariant(), cell);
  timeBatches(
    'Kernel: no deps, fresh kernel (first-touch page faults included)',
    {
      rounds: ROUNDS,
      batches: Math.floor(SMALL / BATCH),
      batchSize: BATCH,
      setup: () => {
        freshKernel = Kernel.withState(new TotalSupplyInvariant(), cell);
      },
      run: (from, count) => {
        for (let i = from; i < from + count; i++) fresh.add(freshKernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloadFor(i)));
      },
    },
    fresh,
  );

  // Rejection paths, measured on purpose and labelled as such.
  rejectionBench('rejection: DuplicateFact (id already admitted)', kernel, AdmitCode.DuplicateFact, NO_DEPS, () => {
    kernel.reset(cell.bytes);
    for (let i = 0; i < SMALL; i++) kernel.tryAdmitRaw(pool[i]!, NO_DEPS, payloadFor(i));
  });
  const phantomDep = [pool[pool.length - 1]!];
  rejectionBench('rejection: CausalityViolation (dep never admitted)', kernel, AdmitCode.CausalityViolation, phantomDep, () => kernel.reset(cell.bytes));
}

/** Times admissions that must all be rejected with `expected`; any other outcome aborts the run. */
function rejectionBench(name: string, kernel: Admitter, expected: number, deps: FactId[], setup: () => void): void {
  const outcomes = new Outcomes();
  timeBatches(
    name,
    {
      rounds: ROUNDS,
      batches: Math.floor(SMALL / BATCH),
      batchSize: BATCH,
      setup,
      run: (from, count) => {
        for (let i = from; i < from + count; i++) outcomes.add(kernel.tryAdmitRaw(pool[i]!, deps, plus));
      },
    },
    outcomes,
    false,
  );
  if (outcomes.counts[expected] !== outcomes.total) throw new Error(`${name} saw other outcomes: ${outcomes.describe()}`);
}

async function microSuite(): Promise<void> {
  console.log('\nBuilding blocks (mitata p50, median over rounds)');
  const rounds = QUICK ? 1 : 3;
  const invariant = new TotalSupplyInvariant();
  const state = cell.toBytes();
  const applied = new Outcomes();
  let flip = 0;
  await timeMitata(
    'TotalSupplyInvariant.apply (+1/-1)',
    () => applied.add(invariant.apply((flip++ & 1) === 0 ? plus : minus, state)),
    rounds,
    applied,
  );

  const index = new ExactCausalIndex({ capacity: CAPACITY });
  for (let i = 0; i < MILLION; i++) index.insert(pool[i]!);
  const hits = new Outcomes();
  let probe = 0;
  await timeMitata(
    `ExactCausalIndex.contains, hit, ${MILLION.toLocaleString('en-US')} ids`,
    () => {
      hits.add(index.contains(pool[probe]!) ? AdmitCode.Ok : AdmitCode.CausalityViolation);
      probe = (probe + 7919) % MILLION;
    },
    rounds,
    hits,
  );
  const misses = new Outcomes();
  await timeMitata(
    `ExactCausalIndex.contains, miss, ${MILLION.toLocaleString('en-US')} ids`,
    () => {
      misses.add(index.contains(pool[MILLION + (probe++ % SMALL)]!) ? AdmitCode.DuplicateFact : AdmitCode.Ok);
    },
    rounds,
    misses,
  );

  const payload = i128le(100n);
  const ids = new Outcomes();
  let sink = 0;
  await timeMitata(
    'factId(no deps, 16-byte payload)',
    () => {
      sink ^= factId(NO_DEPS, payload)[0]!;
      ids.add(0);
    },
    rounds,
    ids,
  );
  const oneDep = [pool[1]!];
  await timeMitata(
    'factId(1 dep, 16-byte payload)',
    () => {
      sink ^= factId(oneDep, payload)[0]!;
      ids.add(0);
    },
    rounds,
    ids,
  );
  const fact = createFact(oneDep, payload);
  const wire = encodeFact(fact);
  await timeMitata(
    'decodeFact + verify id (1 dep, 16-byte payload)',
    () => {
      sink ^= decodeFact(wire).payload[0]!;
      ids.add(0);
    },
    rounds,
    ids,
  );

  const a = new Uint32Array([0xffffffff, 0xffffffff, 0x12345678, 0x00000001]);
  const b = new Uint32Array([1, 0, 0, 0]);
  const out = new Uint32Array(4);
  const limb = new Outcomes();
  await timeMitata('i128 add, u32 limbs (addI128)', () => limb.add(addI128(a, 0, b, 0, out, 0) ? 0 : 1), rounds, limb);
  let big = (1n << 100n) + 12345n;
  const bigOut = new Outcomes();
  await timeMitata(
    'i128 add, BigInt + range check',
    () => {
      const s = big + 1n;
      bigOut.add(s > (1n << 127n) - 1n ? 1 : 0);
      big = s - 1n;
    },
    rounds,
    bigOut,
  );
  if (sink === -1) console.log(sink);
}

function memorySuite(): void {
  console.log('\nMemory');
  const index = new ExactCausalIndex();
  console.log(`  exact index at default capacity ${index.capacity.toLocaleString('en-US')}: ${index.tableSlots.toLocaleString('en-US')} table slots, ${(index.byteLength / 2 ** 20).toFixed(1)} MiB, ${index.bytesPerId.toFixed(1)} bytes per tracked id`);
  for (const capacity of [1_000_000, 4_000_000]) {
    const i = new ExactCausalIndex({ capacity });
    console.log(`  exact index at capacity ${capacity.toLocaleString('en-US')}: ${i.bytesPerId.toFixed(1)} bytes per tracked id`);
  }
}

function heapSuite(): void {
  const total = QUICK ? 200_000 : 10_000_000;
  console.log(`\nHeap growth over ${total.toLocaleString('en-US')} admissions (1-dep chain, reset every ${CAPACITY.toLocaleString('en-US')})`);
  const kernel = Kernel.withState(new TotalSupplyInvariant(), cell);
  const outcomes = new Outcomes();
  const deps: FactId[] = [pool[0]!];
  const span = Math.min(CAPACITY - 1, pool.length - 1);
  const lap = (): void => {
    for (let i = 1; i <= span; i++) {
      const id = pool[i]!;
      outcomes.add(kernel.tryAdmitRaw(id, deps, payloadFor(i)));
      deps[0] = id;
    }
  };
  // Warm up so that optimisation happens before the measurement.
  kernel.reset(cell.bytes);
  kernel.tryAdmitRaw(pool[0]!, NO_DEPS, plus);
  lap();
  const gcs: string[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcs.push(entry.name);
  });
  observer.observe({ entryTypes: ['gc'] });
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().heapUsed;
  let done = 0;
  const start = process.hrtime.bigint();
  outcomes.counts.fill(0);
  while (done < total) {
    kernel.reset(cell.bytes);
    kernel.tryAdmitRaw(pool[0]!, NO_DEPS, plus);
    deps[0] = pool[0]!;
    lap();
    done += span + 1;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const after = process.memoryUsage().heapUsed;
  observer.disconnect();
  const ok = outcomes.ok === outcomes.total;
  console.log(`  ${done.toLocaleString('en-US')} admissions in ${seconds.toFixed(2)} s; heapUsed ${before.toLocaleString('en-US')} -> ${after.toLocaleString('en-US')} bytes (${(after - before).toLocaleString('en-US')}); garbage collections during the loop: ${gcs.length}; outcomes [${outcomes.describe().replace(/^Ok [\d,]+$/, 'all Ok')}]${ok ? '' : '  INVALID'}`);
  rows.push({
    name: `heap growth over ${done.toLocaleString('en-US')} admissions (bytes)`,
    median: after - before,
    min: after - before,
    max: after - before,
    outcomes: `${gcs.length} GCs during the loop; ${outcomes.describe()}`,
    valid: ok,
  });
}

/** The histogram's record, the clock, and what admitInstrumented adds to an admission. */
async function metricsSuite(): Promise<void> {
  console.log('\nMetrics: LatencyHistogram and admitInstrumented');
  const rounds = QUICK ? 1 : 3;
  const histogram = new LatencyHistogram();
  const recorded = new Outcomes();
  let v = 1;
  await timeMitata(
    'LatencyHistogram.record',
    () => {
      histogram.record((v = (v * 1103515245 + 12345) & 0xfffff));
      recorded.add(AdmitCode.Ok);
    },
    rounds,
    recorded,
  );
  if (histogram.count === 0) throw new Error('the record benchmark recorded nothing');
  const clock = new Outcomes();
  await timeMitata('nowNs() (performance.now() in ns)', () => clock.add(nowNs() > 0 ? AdmitCode.Ok : AdmitCode.MalformedFact), rounds, clock);

  // The same kernel shape both ways, both through a closure, so only the instrumentation differs.
  const plain = Kernel.withState(new TotalSupplyInvariant(), cell, { indexCapacity: 1 << 16 });
  admissionBench('Kernel (capacity 65,536): no deps, tryAdmitRaw', {
    indexCapacity: plain.indexCapacity,
    tryAdmitRaw: (id, deps, payload) => plain.tryAdmitRaw(id, deps, payload),
    reset: (bytes) => plain.reset(bytes),
  }, 0, 0, false);
  const timed = Kernel.withState(new TotalSupplyInvariant(), cell, { indexCapacity: 1 << 16 });
  const admissions = new LatencyHistogram();
  admissionBench('Kernel (capacity 65,536): no deps, admitInstrumented', {
    indexCapacity: timed.indexCapacity,
    tryAdmitRaw: (id, deps, payload) => timed.admitInstrumented(id, deps, payload, admissions),
    reset: (bytes) => timed.reset(bytes),
  }, 0, 0, false);
  const { p50, p99 } = admissions.percentiles();
  console.log(`  (admitInstrumented's own view: ${admissions.count.toLocaleString('en-US')} admissions, p50 ≤ ${p50} ns, p99 ≤ ${p99} ns)`);
}

const startedAt = new Date().toISOString();
console.log(`ctfs benchmarks ${QUICK ? '(quick: figures meaningless)' : ''}— node ${process.version}, ${startedAt}, rounds ${ROUNDS}`);
// CTFS_BENCH_ONLY=kernel,micro,metrics,invariants,memory,heap runs only those suites.
const only = new Set((process.env.CTFS_BENCH_ONLY ?? 'kernel,micro,metrics,invariants,memory,heap').split(','));
if (only.has('kernel')) await kernelSuite();
if (only.has('micro')) await microSuite();
if (only.has('metrics')) await metricsSuite();
if (only.has('invariants')) await invariantSuite({ quick: QUICK, rounds: ROUNDS, pool });
if (only.has('memory')) memorySuite();
if (only.has('heap')) heapSuite();
printMarkdown();
const invalid = rows.filter((r) => !r.valid);
if (invalid.length > 0) {
  console.error(`\n${invalid.length} benchmark(s) did not see the outcomes they claim to measure`);
  process.exit(1);
}
