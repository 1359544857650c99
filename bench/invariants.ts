/**
 * Invariant benchmarks: each built-in invariant's `apply`, admission through a Kernel for each,
 * and DualKernel / MultiKernel admission beside single-invariant admission.
 *
 * Every loop stays on the success path on purpose and proves it: Uniqueness claims cycle through
 * 512 elements and GGraph through fresh edges, with the state reset between cycles (upstream's
 * dual-kernel bench ran out of elements after 512 iterations and then timed rejections).
 */
import {
  ConservationState,
  DualKernel,
  GCounterInvariant,
  GGraphInvariant,
  GraphState,
  Kernel,
  LWWInvariant,
  MaxInvariant,
  MultiKernel,
  TotalSupplyInvariant,
  UniquenessInvariant,
  BoundedGCounterInvariant,
  i128le,
  u64le,
  type FactId,
  type Invariant,
} from 'ctfs';
import { Outcomes, timeBatches, timeMitata } from './harness.js';

export interface InvariantSuiteOptions {
  readonly quick: boolean;
  readonly rounds: number;
  readonly pool: readonly Uint8Array[];
}

const NO_DEPS: FactId[] = [];

/** A payload stream that never makes its invariant refuse, and the state to start from. */
interface Workload {
  readonly name: string;
  readonly invariant: Invariant;
  readonly state: Uint8Array;
  /** Payload for the i-th operation (i from 0 after each reset). */
  readonly payload: (i: number) => Uint8Array;
  /**
   * Operations before the state must be reset to stay on the path this bench measures (Uniqueness:
   * 512 elements; GGraph: 240 new edges, after which re-adding is an idempotent no-op).
   */
  readonly cycle: number;
}

function workloads(): Workload[] {
  const counts = Array.from({ length: 4096 }, (_, i) => u64le(i + 1));
  const elements = Array.from({ length: 512 }, (_, e) => UniquenessInvariant.payload(e));
  const edges: Uint8Array[] = [];
  for (let f = 0; f < 16; f++) for (let t = 0; t < 16; t++) if (f !== t) edges.push(GGraphInvariant.payload(f, t));
  const lww = Array.from({ length: 4096 }, (_, i) => LWWInvariant.payload(new Uint8Array(32).fill(i & 0xff), i + 1, 1));
  const plus = i128le(1n);
  const minus = i128le(-1n);
  return [
    { name: 'TotalSupply', invariant: new TotalSupplyInvariant(), state: new ConservationState(0n).toBytes(), payload: (i) => ((i & 1) === 0 ? plus : minus), cycle: Infinity },
    { name: 'Max', invariant: new MaxInvariant(), state: new Uint8Array(64), payload: (i) => counts[i & 4095]!, cycle: Infinity },
    { name: 'GCounter', invariant: new GCounterInvariant(), state: new Uint8Array(64), payload: (i) => counts[i & 4095]!, cycle: Infinity },
    { name: 'BoundedGCounter', invariant: new BoundedGCounterInvariant(), state: new BoundedGCounterInvariant().initialState(), payload: (i) => counts[i & 4095]!, cycle: Infinity },
    { name: 'LWW', invariant: new LWWInvariant(), state: new Uint8Array(64), payload: (i) => lww[i & 4095]!, cycle: Infinity },
    { name: 'Uniqueness', invariant: new UniquenessInvariant(), state: new Uint8Array(64), payload: (i) => elements[i]!, cycle: 512 },
    { name: 'GGraph (16 vertices, directed)', invariant: new GGraphInvariant(), state: new GraphState(16, { directed: true }).toBytes(), payload: (i) => edges[i]!, cycle: edges.length },
  ];
}

/**
 * The timed function for one workload, compiled separately (`new Function`), so V8 keeps inline
 * caches per invariant: one shared closure would see all seven invariants at its `apply` call and
 * go megamorphic, and the later ones would be measured slower than they are.
 */
function isolatedApplyLoop(w: Workload, outcomes: Outcomes): () => void {
  const make = new Function(
    'invariant',
    'payload',
    'initial',
    'cycle',
    'outcomes',
    `const state = initial.slice();
     let i = 0;
     return function applyOnce() {
       if (i === cycle) { state.set(initial); i = 0; }
       outcomes.add(invariant.apply(payload(i++), state));
     };`,
  ) as (...args: unknown[]) => () => void;
  return make(w.invariant, w.payload, w.state, w.cycle, outcomes);
}

export async function invariantSuite({ quick, rounds, pool }: InvariantSuiteOptions): Promise<void> {
  console.log('\nInvariants: apply (mitata p50, median over rounds)');
  for (const w of workloads()) {
    const outcomes = new Outcomes();
    await timeMitata(`${w.name}.apply`, isolatedApplyLoop(w, outcomes), quick ? 1 : 3, outcomes);
  }

  const capacity = 1 << 16;
  const admissions = quick ? 4096 : 1 << 15;
  const batch = quick ? 256 : 1024;
  console.log(`\nAdmission per invariant: Kernel (capacity ${capacity.toLocaleString('en-US')}), no deps, ${admissions.toLocaleString('en-US')} per round`);
  for (const w of workloads()) {
    const kernel = Kernel.withState(w.invariant, w.state, { indexCapacity: capacity });
    const outcomes = new Outcomes();
    // A finite cycle runs as rounds of exactly one cycle, reset (untimed) before each.
    const cycled = Number.isFinite(w.cycle);
    timeBatches(
      `Kernel<${w.name}>: admit`,
      {
        rounds: cycled ? rounds * Math.floor(admissions / w.cycle) : rounds,
        batches: cycled ? 1 : Math.floor(admissions / batch),
        batchSize: cycled ? w.cycle : batch,
        setup: () => kernel.reset(w.state),
        run: (from, count) => {
          for (let i = from; i < from + count; i++) outcomes.add(kernel.tryAdmitRaw(pool[i]!, NO_DEPS, w.payload(i)));
        },
      },
      outcomes,
    );
  }

  console.log('\nComposed admission (capacity 65,536, no deps) beside single-invariant admission');
  const [supply, , gcounter, , , uniqueness] = workloads() as [Workload, Workload, Workload, Workload, Workload, Workload, Workload];
  const max = new MaxInvariant();
  const single = Kernel.withState(supply.invariant, supply.state, { indexCapacity: capacity });
  const singleOutcomes = new Outcomes();
  timeBatches(
    'Kernel<TotalSupply>: admit (reference)',
    {
      rounds,
      batches: Math.floor(admissions / batch),
      batchSize: batch,
      setup: () => single.reset(supply.state),
      run: (from, count) => {
        for (let i = from; i < from + count; i++) singleOutcomes.add(single.tryAdmitRaw(pool[i]!, NO_DEPS, supply.payload(i)));
      },
    },
    singleOutcomes,
  );
  const dual = new DualKernel(supply.invariant, supply.state, gcounter.invariant, gcounter.state, { indexCapacity: capacity });
  const dualOutcomes = new Outcomes();
  timeBatches(
    'DualKernel<TotalSupply, GCounter>: admit',
    {
      rounds,
      batches: Math.floor(admissions / batch),
      batchSize: batch,
      setup: () => dual.reset(supply.state, gcounter.state),
      run: (from, count) => {
        for (let i = from; i < from + count; i++) dualOutcomes.add(dual.tryAdmitRaw(pool[i]!, NO_DEPS, supply.payload(i), gcounter.payload(i)));
      },
    },
    dualOutcomes,
  );
  // TotalSupply + Uniqueness: 512 claims per cycle, then a reset (untimed, between batches of 512).
  const claims = new DualKernel(supply.invariant, supply.state, uniqueness.invariant, uniqueness.state, { indexCapacity: capacity });
  const claimOutcomes = new Outcomes();
  timeBatches(
    'DualKernel<TotalSupply, Uniqueness>: admit, 512 claims per reset',
    {
      rounds: rounds * Math.floor(admissions / 512),
      batches: 1,
      batchSize: 512,
      setup: () => claims.reset(supply.state, uniqueness.state),
      run: (from, count) => {
        for (let i = from; i < from + count; i++) claimOutcomes.add(claims.tryAdmitRaw(pool[i]!, NO_DEPS, supply.payload(i), uniqueness.payload(i)));
      },
    },
    claimOutcomes,
  );
  const maxPayloads = Array.from({ length: 4096 }, (_, i) => u64le(i));
  for (const n of [2, 4]) {
    const multi = new MultiKernel({ indexCapacity: capacity });
    const members: [Invariant, Uint8Array, (i: number) => Uint8Array][] = [
      [supply.invariant, supply.state, supply.payload],
      [gcounter.invariant, gcounter.state, gcounter.payload],
      [max, new Uint8Array(64), (i) => maxPayloads[i & 4095]!],
      [new GCounterInvariant(), new Uint8Array(64), gcounter.payload],
    ];
    const used = members.slice(0, n);
    for (const [inv, cell] of used) multi.register(inv, cell);
    const payloads: Uint8Array[] = used.map(() => new Uint8Array(16));
    const outcomes = new Outcomes();
    timeBatches(
      `MultiKernel (${n} invariants): admit`,
      {
        rounds,
        batches: Math.floor(admissions / batch),
        batchSize: batch,
        setup: () => multi.reset(used.map(([, cell]) => cell)),
        run: (from, count) => {
          for (let i = from; i < from + count; i++) {
            for (let m = 0; m < n; m++) payloads[m] = used[m]![2](i);
            outcomes.add(multi.tryAdmitRaw(pool[i]!, NO_DEPS, payloads));
          }
        },
      },
      outcomes,
    );
  }
}
