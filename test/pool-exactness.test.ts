/**
 * KernelPool exactness: the same facts admitted through a real pool (threads: 2), split into
 * batches any way and interleaved by real threads, leave byte-identical shard state to one
 * single-threaded `Kernel` per shard admitting the same batches in the same per-shard order.
 *
 * The pool's contract, as tested: the batches of one shard are admitted in the order `admitBatch`
 * (or `admitBatchSync`, once nothing is queued for the shard) was called for it, each batch in
 * order; different shards run in parallel. A dep admitted by another shard (and published) is
 * reported as `CrossShardDependency` where the isolated reference can only say
 * `CausalityViolation`: the expected codes are mapped for exactly those facts.
 *
 * 1. Exactness with rejections (BoundedGCounter): random per-shard streams with deps on earlier,
 *    rejected, never-admitted and other shards' facts, duplicates, malformed payloads, overflows
 *    and a full index, in phases; per fact codes, then state, size, clock, frontier, membership and
 *    history digest (also mid-stream, queued between batches) equal the reference's.
 * 2. Order independence (GCounter): one causally closed workload per shard pair, each replica in its
 *    own causal order and batch splitting, with resubmitted duplicates: state, clock, size and id
 *    set equal a kernel that admitted the workload in generation order.
 * 3. admitBatchSync racing queued and running tasks of its own shard (the shard lock): every
 *    distinct fact admitted exactly once, state as the reference.
 * 4. Stress: 8 shards, 62,000 facts in 1-dep chains, every batch submitted at once.
 *
 * One pool per fast-check run (a pool cannot be reset), so runs are few. The library comes from
 * dist/ in this `threads` file (pool threads run the compiled library).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  BoundedCounterState,
  BoundedGCounterInvariant,
  FactBatch,
  GCounterInvariant,
  Kernel,
  KernelPool,
  U64_MAX,
  createFact,
  toHex,
  u64le,
  type Fact,
  type KernelPool as Pool,
  type Kernel as RefKernel,
} from './helpers/lib.js';
import { prng } from './helpers/kernels.js';

const THREADS = 2;
/** Fixed so the reference kernels hash ids (Bloom clock, index) exactly like the pool's shards. */
const INDEX_SEED = 0x5eed_1234;

// ---------------------------------------------------------------------------------------------
// shared machinery


/** An 8-byte u64 increment followed by u32 tags (which keep ids unique). */
function payload(inc: bigint, tags: readonly number[]): Uint8Array {
  const p = new Uint8Array(8 + 4 * tags.length);
  p.set(u64le(inc), 0);
  const view = new DataView(p.buffer);
  tags.forEach((t, i) => view.setUint32(8 + 4 * i, t >>> 0, true));
  return p;
}

/** One call into the pool for one shard. */
interface Submission {
  readonly shard: number;
  readonly facts: readonly Fact[];
  /** admitBatchSync (after awaiting everything pending for the shard) instead of admitBatch. */
  readonly sync: boolean;
  /** Pass a FactBatch instead of an array of facts. */
  readonly packed: boolean;
  /** Queue pool.digest(shard) right after this batch. */
  readonly digestAfter: boolean;
}

/** `items` cut into consecutive batches; a cut of 0 makes an empty batch (then one fact). */
function split<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const out: T[][] = [];
  let at = 0;
  let k = 0;
  while (at < items.length) {
    let n = cuts.length === 0 ? items.length : cuts[k++ % cuts.length]!;
    if (n === 0) {
      out.push([]);
      n = 1;
    }
    out.push(items.slice(at, at + n));
    at += n;
  }
  return out;
}

/** One global submission order keeping each shard's own order; `picks` choose the next shard. */
function interleave<T>(perShard: readonly (readonly T[])[], picks: readonly number[]): T[] {
  const queues = perShard.map((q) => [...q]);
  const out: T[] = [];
  for (let k = 0; ; k++) {
    const live: number[] = [];
    queues.forEach((q, s) => {
      if (q.length > 0) live.push(s);
    });
    if (live.length === 0) return out;
    const pick = picks.length === 0 ? 0 : picks[k % picks.length]!;
    out.push(queues[live[pick % live.length]!]!.shift()!);
  }
}

interface PoolOutcome {
  readonly codes: Uint8Array[];
  readonly admitted: number[];
  /** Hex digest queued right after submission i (if digestAfter). */
  readonly digests: (string | undefined)[];
  readonly digestSizes: (number | undefined)[];
}

/**
 * Submits `schedule` in order without awaiting between admitBatch calls; a sync submission first
 * awaits what is pending for its shard (other shards keep running on the pool threads), then
 * admits in this thread. Everything is awaited at the end.
 */
async function submit(pool: Pool, schedule: readonly Submission[]): Promise<PoolOutcome> {
  const codes: Uint8Array[] = new Array<Uint8Array>(schedule.length);
  const admitted: number[] = new Array<number>(schedule.length).fill(-1);
  const digests: (string | undefined)[] = new Array<string | undefined>(schedule.length).fill(undefined);
  const digestSizes: (number | undefined)[] = new Array<number | undefined>(schedule.length).fill(undefined);
  let pending: Promise<unknown>[][] = Array.from({ length: pool.shardCount }, () => []);
  const all: Promise<unknown>[] = [];
  const track = (shard: number, p: Promise<unknown>): void => {
    p.catch(() => undefined); // surfaced by Promise.all(all) below, never unhandled
    pending[shard]!.push(p);
    all.push(p);
  };
  try {
    for (let i = 0; i < schedule.length; i++) {
      const op = schedule[i]!;
      const input = op.packed ? FactBatch.from(op.facts) : op.facts;
      if (op.sync) {
        await Promise.all(pending[op.shard]!);
        pending = pending.map((q, s) => (s === op.shard ? [] : q));
        const r = pool.admitBatchSync(op.shard, input);
        codes[i] = r.codes;
        admitted[i] = r.admitted;
      } else {
        track(
          op.shard,
          pool.admitBatch(op.shard, input).then((r) => {
            codes[i] = r.codes;
            admitted[i] = r.admitted;
          }),
        );
      }
      if (op.digestAfter) {
        track(
          op.shard,
          pool.digest(op.shard).then((d) => {
            digests[i] = toHex(d.digest);
            digestSizes[i] = d.size;
          }),
        );
      }
    }
  } finally {
    await Promise.allSettled(all);
  }
  await Promise.all(all);
  return { codes, admitted, digests, digestSizes };
}

function zeros(codes: Uint8Array): number {
  let n = 0;
  for (const c of codes) if (c === AdmitCode.Ok) n++;
  return n;
}

/** Everything `stateOf` shows, against the reference kernel's live view. */
function expectSameShard(pool: Pool, shard: number, ref: RefKernel, label: string): void {
  const snap = pool.stateOf(shard);
  expect(toHex(snap.state.bytes), `${label}: state bytes`).toBe(toHex(ref.state.bytes));
  expect(snap.size, `${label}: size`).toBe(ref.size);
  expect(toHex(snap.clock.toBytes()), `${label}: clock`).toBe(toHex(ref.clock.toBytes()));
  expect(snap.frontier.map(toHex), `${label}: frontier`).toEqual(ref.frontier().map(toHex));
}

// ---------------------------------------------------------------------------------------------
// property 1: exactness with rejections (BoundedGCounter)

type DepSpec =
  | { readonly t: 'own'; readonly back: number }
  | { readonly t: 'ghost'; readonly g: number }
  | { readonly t: 'cross'; readonly shard: number; readonly back: number };

type FactKind = 'new' | 'dup' | 'ghost' | 'foreign' | 'short';

interface FactSpec {
  readonly kind: FactKind;
  readonly inc: bigint;
  readonly deps: readonly DepSpec[];
  readonly ref: number;
}

interface ShardPhaseSpec {
  readonly facts: readonly FactSpec[];
  readonly cuts: readonly number[];
  readonly sync: readonly boolean[];
  readonly packed: readonly boolean[];
  readonly digest: readonly boolean[];
}

interface PhaseSpec {
  readonly shards: readonly ShardPhaseSpec[];
  readonly picks: readonly number[];
}

interface Scenario1 {
  readonly shards: number;
  readonly maxBatchesPerTask: number;
  readonly indexCapacity: number;
  readonly cells: readonly { readonly value: bigint; readonly capacity: bigint }[];
  readonly phases: readonly PhaseSpec[];
}

const MAX_SHARDS_1 = 6;
const GHOSTS = 4;

/** n = 0 most of the time shrinks to false. */
const rarely = (oneIn: number): fc.Arbitrary<boolean> => fc.integer({ min: 0, max: oneIn - 1 }).map((n) => n === oneIn - 1);

const depArb: fc.Arbitrary<DepSpec> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('own' as const), back: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('ghost' as const), g: fc.nat(GHOSTS - 1) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cross' as const), shard: fc.nat(MAX_SHARDS_1), back: fc.nat(30) }) },
);

const incArb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 12, arbitrary: fc.bigInt({ min: 0n, max: 25n }) },
  { weight: 1, arbitrary: fc.constantFrom(U64_MAX, 1n << 63n) },
);

const factArb: fc.Arbitrary<FactSpec> = fc.record({
  kind: fc.oneof(
    { weight: 14, arbitrary: fc.constant('new' as const) },
    { weight: 2, arbitrary: fc.constant('dup' as const) },
    { weight: 1, arbitrary: fc.constant('ghost' as const) },
    { weight: 1, arbitrary: fc.constant('foreign' as const) },
    { weight: 1, arbitrary: fc.constant('short' as const) },
  ),
  inc: incArb,
  deps: fc.array(depArb, { maxLength: 2 }),
  ref: fc.nat(40),
});

const shardPhaseArb: fc.Arbitrary<ShardPhaseSpec> = fc.record({
  facts: fc.array(factArb, { maxLength: 24 }),
  cuts: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 6 }),
  sync: fc.array(rarely(5), { maxLength: 8 }),
  packed: fc.array(fc.boolean(), { maxLength: 8 }),
  digest: fc.array(rarely(6), { maxLength: 8 }),
});

const scenario1Arb: fc.Arbitrary<Scenario1> = fc.record({
  shards: fc.integer({ min: 4, max: MAX_SHARDS_1 }),
  maxBatchesPerTask: fc.oneof(fc.constant(64), fc.integer({ min: 1, max: 3 })),
  indexCapacity: fc.constantFrom(4096, 12, 5),
  cells: fc.array(
    fc.record({
      value: fc.bigInt({ min: 0n, max: 100n }),
      capacity: fc.oneof({ weight: 3, arbitrary: fc.bigInt({ min: 0n, max: 600n }) }, { weight: 1, arbitrary: fc.constant(U64_MAX) }),
    }),
    { minLength: MAX_SHARDS_1, maxLength: MAX_SHARDS_1 },
  ),
  phases: fc.array(
    fc.record({
      shards: fc.array(shardPhaseArb, { minLength: MAX_SHARDS_1, maxLength: MAX_SHARDS_1 }),
      picks: fc.array(fc.nat(1000), { maxLength: 40 }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

function cellOf(c: { value: bigint; capacity: bigint }): Uint8Array {
  return new BoundedCounterState(c.value > c.capacity ? c.capacity : c.value, c.capacity).toBytes();
}

/** Codes every run of property 1 saw, summed over runs (the generator must reach all of them). */
const seen1 = new Map<number, number>();
let syncBatches1 = 0;
let digestProbes1 = 0;

async function runScenario1(sc: Scenario1): Promise<void> {
  const S = sc.shards;
  const cells = sc.cells.slice(0, S).map(cellOf);
  const invariant = new BoundedGCounterInvariant();
  const refs = cells.map((cell) => Kernel.withState(invariant, cell, { indexCapacity: sc.indexCapacity, indexSeed: INDEX_SEED }));
  const ghosts = Array.from({ length: GHOSTS }, (_, g) => createFact([], payload(BigInt(g + 1), [0xffffffff, g])));
  /** Every fact submitted to each shard, in submission order (dups included). */
  const streams: Fact[][] = Array.from({ length: S }, () => []);
  /** Ids (hex) the reference admitted per shard, growing as the reference runs. */
  const admittedRef: Set<string>[] = Array.from({ length: S }, () => new Set());

  const pool = await KernelPool.create({
    shards: S,
    threads: THREADS,
    invariant: { builtin: 'BoundedGCounter' },
    indexCapacity: sc.indexCapacity,
    indexSeed: INDEX_SEED,
    initialState: (s) => cells[s]!,
    maxBatchesPerTask: sc.maxBatchesPerTask,
  });
  try {
    for (let p = 0; p < sc.phases.length; p++) {
      const phase = sc.phases[p]!;
      // 1. Materialize this phase's facts, shard by shard (cross deps see earlier shards' facts of
      //    this phase too: those are the timing-dependent ones).
      const perShard: Submission[][] = [];
      for (let s = 0; s < S; s++) {
        const spec = phase.shards[s]!;
        const stream = streams[s]!;
        const other = (k: number): number => (s + 1 + (k % (S - 1))) % S;
        const pickFrom = (list: readonly Fact[], back: number): Fact | undefined => (list.length === 0 ? undefined : list[list.length - 1 - (back % list.length)]);
        const facts: Fact[] = [];
        spec.facts.forEach((f, j) => {
          const depIds = (): Uint8Array[] => {
            const ids: Uint8Array[] = [];
            for (const d of f.deps) {
              const dep = d.t === 'own' ? pickFrom(stream, d.back) : d.t === 'ghost' ? ghosts[d.g % GHOSTS] : pickFrom(streams[other(d.shard)]!, d.back);
              if (dep !== undefined) ids.push(dep.id);
            }
            return ids;
          };
          let fact: Fact | undefined;
          if (f.kind === 'dup') fact = pickFrom(stream, f.ref);
          else if (f.kind === 'ghost') fact = ghosts[f.ref % GHOSTS];
          else if (f.kind === 'foreign') fact = pickFrom(streams[other(f.ref)]!, f.ref);
          else if (f.kind === 'short') fact = createFact(depIds(), new Uint8Array([s, p, j & 0xff, j >> 8, 0xee, 0xee, 0xee]));
          fact ??= createFact(depIds(), payload(f.inc, [s, p, j]));
          facts.push(fact);
          stream.push(fact);
        });
        perShard.push(
          split(facts, spec.cuts).map((batch, b) => ({
            shard: s,
            facts: batch,
            sync: spec.sync[b] ?? false,
            packed: spec.packed[b] ?? false,
            digestAfter: spec.digest[b] ?? false,
          })),
        );
      }

      // 2. The reference: per shard, the same batches in the same order, one kernel, one thread.
      //    Remember for each fact the first dep (in its canonical order) the shard lacked.
      const before = admittedRef.map((set) => new Set(set));
      const refCodes = new Map<Submission, Uint8Array>();
      const firstMissing = new Map<Submission, (string | undefined)[]>();
      const refDigest = new Map<Submission, { digest: string; size: number }>();
      for (let s = 0; s < S; s++) {
        const ref = refs[s]!;
        const have = admittedRef[s]!;
        for (const op of perShard[s]!) {
          const r = ref.admitBatch(FactBatch.from(op.facts));
          expect(r.admitted).toBe(zeros(r.codes));
          // Walk the batch as the kernel did: what the shard held when fact j came up.
          const missing = op.facts.map((f, j) => {
            const dep = f.deps.map(toHex).find((d) => !have.has(d));
            if (r.codes[j] === AdmitCode.Ok) have.add(toHex(f.id));
            return dep;
          });
          refCodes.set(op, r.codes);
          firstMissing.set(op, missing);
          if (op.digestAfter) refDigest.set(op, { digest: toHex(ref.digest()), size: ref.size });
        }
      }
      const inOther = (sets: readonly Set<string>[], s: number, id: string): boolean => sets.some((set, i) => i !== s && set.has(id));

      // 3. The pool: every shard's batches in a random interleaving, nothing awaited in between.
      const schedule = interleave(perShard, phase.picks);
      const outcome = await submit(pool, schedule);

      // 4. Codes, batch by batch.
      const mismatches: string[] = [];
      schedule.forEach((op, i) => {
        if (op.sync) syncBatches1++;
        const got = outcome.codes[i]!;
        const want = refCodes.get(op)!;
        expect(got.length).toBe(op.facts.length);
        expect(outcome.admitted[i], `admitted count of batch ${i}`).toBe(zeros(got));
        for (let j = 0; j < want.length; j++) {
          const w = want[j]!;
          let allowed: number[] = [w];
          if (w === AdmitCode.CausalityViolation) {
            const dep = firstMissing.get(op)![j];
            expect(dep, 'a CausalityViolation names a missing dep').toBeDefined();
            if (inOther(before, op.shard, dep!)) allowed = [AdmitCode.CrossShardDependency];
            else if (inOther(admittedRef, op.shard, dep!)) allowed = [AdmitCode.CausalityViolation, AdmitCode.CrossShardDependency];
          }
          seen1.set(got[j]!, (seen1.get(got[j]!) ?? 0) + 1);
          if (!allowed.includes(got[j]!)) {
            mismatches.push(`phase ${p} shard ${op.shard} batch#${i}${op.sync ? ' (sync)' : ''} fact ${j}: pool ${got[j]}, expected ${allowed.join('|')}`);
          }
        }
        if (op.digestAfter) {
          digestProbes1++;
          const want = refDigest.get(op)!;
          if (outcome.digests[i] !== want.digest || outcome.digestSizes[i] !== want.size) {
            mismatches.push(`phase ${p} shard ${op.shard} digest after batch#${i}: size ${outcome.digestSizes[i]} vs ${want.size}`);
          }
        }
      });
      expect(mismatches).toEqual([]);

      // 5. Whole shards: state, size, clock, frontier, membership, digest.
      for (let s = 0; s < S; s++) {
        const ref = refs[s]!;
        expectSameShard(pool, s, ref, `phase ${p} shard ${s}`);
        expect(streams[s]!.filter((f) => pool.contains(s, f.id) !== ref.contains(f.id)).map((f) => toHex(f.id)), `phase ${p} shard ${s}: contains`).toEqual([]);
        const d = await pool.digest(s);
        expect(toHex(d.digest), `phase ${p} shard ${s}: digest`).toBe(toHex(ref.digest()));
        expect(d.size).toBe(ref.size);
      }
    }
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------------------------------------
// property 2: order independence for a commutative invariant (GCounter)

interface NodeSpec {
  readonly deps: readonly number[];
  readonly inc: bigint;
}

interface ReplicaSpec {
  readonly choices: readonly number[];
  readonly dups: readonly { readonly at: number; readonly after: number }[];
  readonly cuts: readonly number[];
  readonly sync: readonly boolean[];
  readonly packed: readonly boolean[];
}

interface Scenario2 {
  readonly maxBatchesPerTask: number;
  readonly workloads: readonly { readonly nodes: readonly NodeSpec[]; readonly replicas: readonly [ReplicaSpec, ReplicaSpec] }[];
  readonly picks: readonly number[];
}

const replicaArb: fc.Arbitrary<ReplicaSpec> = fc.record({
  choices: fc.array(fc.nat(1000), { maxLength: 40 }),
  dups: fc.array(fc.record({ at: fc.nat(100), after: fc.nat(10) }), { maxLength: 4 }),
  cuts: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
  sync: fc.array(rarely(5), { maxLength: 10 }),
  packed: fc.array(fc.boolean(), { maxLength: 10 }),
});

const scenario2Arb: fc.Arbitrary<Scenario2> = fc.record({
  maxBatchesPerTask: fc.oneof(fc.constant(64), fc.integer({ min: 1, max: 3 })),
  workloads: fc.array(
    fc.record({
      nodes: fc.array(
        fc.record({
          deps: fc.array(fc.nat(1000), { maxLength: 3 }),
          inc: fc.oneof({ weight: 9, arbitrary: fc.bigInt({ min: 0n, max: 1000n }) }, { weight: 1, arbitrary: fc.bigInt({ min: 1n << 62n, max: U64_MAX }) }),
        }),
        { minLength: 1, maxLength: 60 },
      ),
      replicas: fc.tuple(replicaArb, replicaArb),
    }),
    { minLength: 2, maxLength: 3 },
  ),
  picks: fc.array(fc.nat(1000), { maxLength: 40 }),
});

/** A topological order of `deps` (node i's deps are all < i); `choices` pick among ready nodes. */
function causalOrder(deps: readonly (readonly number[])[], choices: readonly number[]): number[] {
  const n = deps.length;
  const pending = deps.map((d) => d.length);
  const dependents: number[][] = Array.from({ length: n }, () => []);
  deps.forEach((d, i) => d.forEach((x) => dependents[x]!.push(i)));
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (pending[i] === 0) ready.push(i);
  const order: number[] = [];
  for (let k = 0; ready.length > 0; k++) {
    const c = choices.length === 0 ? 0 : choices[k % choices.length]! % ready.length;
    const node = ready.splice(c, 1)[0]!;
    order.push(node);
    for (const m of dependents[node]!) if (--pending[m]! === 0) ready.push(m);
  }
  return order;
}

async function runScenario2(sc: Scenario2): Promise<void> {
  const S = sc.workloads.length * 2;
  const invariant = new GCounterInvariant();
  const refs: RefKernel[] = [];
  const factsOf: Fact[][] = [];
  const perShard: Submission[][] = [];
  const expected = new Map<Submission, number[]>();
  sc.workloads.forEach((w, wi) => {
    // The workload, in generation (causal) order; the reference admits it in that order.
    const deps = w.nodes.map((node, i) => (i === 0 ? [] : [...new Set(node.deps.map((d) => d % i))]));
    const facts: Fact[] = [];
    w.nodes.forEach((node, i) => facts.push(createFact(deps[i]!.map((d) => facts[d]!.id), payload(node.inc, [wi, i]))));
    const ref = new Kernel(invariant, { indexCapacity: 4096, indexSeed: INDEX_SEED });
    const r = ref.admitBatch(FactBatch.from(facts));
    expect(r.admitted, 'the reference admits the whole causally closed workload').toBe(facts.length);
    factsOf.push(facts);
    refs.push(ref);
    // Each replica: its own causal order, duplicates resubmitted later, its own batch splitting.
    w.replicas.forEach((rs, r2) => {
      const shard = 2 * wi + r2;
      const seq = causalOrder(deps, rs.choices);
      for (const dup of rs.dups) {
        const a = dup.at % seq.length;
        seq.splice(Math.min(a + 1 + dup.after, seq.length), 0, seq[a]!);
      }
      const sent = new Set<number>();
      const codes = seq.map((i) => (sent.has(i) ? AdmitCode.DuplicateFact : (sent.add(i), AdmitCode.Ok)));
      const batches = split(seq, rs.cuts);
      let at = 0;
      perShard[shard] = batches.map((b, k) => {
        const op: Submission = { shard, facts: b.map((i) => facts[i]!), sync: rs.sync[k] ?? false, packed: rs.packed[k] ?? false, digestAfter: false };
        expected.set(op, codes.slice(at, at + b.length));
        at += b.length;
        return op;
      });
    });
  });

  const pool = await KernelPool.create({
    shards: S,
    threads: THREADS,
    invariant: { builtin: 'GCounter' },
    indexCapacity: 4096,
    indexSeed: INDEX_SEED,
    maxBatchesPerTask: sc.maxBatchesPerTask,
  });
  try {
    const schedule = interleave(perShard, sc.picks);
    const outcome = await submit(pool, schedule);
    schedule.forEach((op, i) => {
      expect([...outcome.codes[i]!], `shard ${op.shard} batch#${i} codes`).toEqual(expected.get(op));
    });
    for (let s = 0; s < S; s++) {
      const ref = refs[s >> 1]!;
      const snap = pool.stateOf(s);
      expect(toHex(snap.state.bytes), `shard ${s}: state bytes`).toBe(toHex(ref.state.bytes));
      expect(snap.size, `shard ${s}: size`).toBe(ref.size);
      // The Bloom clock is an OR over admitted ids: order-independent too.
      expect(toHex(snap.clock.toBytes()), `shard ${s}: clock`).toBe(toHex(ref.clock.toBytes()));
      // Same size and every fact present: the same set of admitted ids.
      expect(factsOf[s >> 1]!.filter((f) => !pool.contains(s, f.id)).length, `shard ${s}: facts missing`).toBe(0);
    }
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------------------------------------
// property 3: admitBatchSync racing the pool's own tasks for the same shard (the shard lock)

/**
 * admitBatchSync does not wait for batches queued for its shard, only for the shard's lock, so its
 * batch lands before or after them. With independent facts and a commutative invariant the order
 * does not matter: every distinct fact is admitted exactly once (each further copy is a
 * DuplicateFact), and the shard ends in the reference's state, clock and size.
 */
interface RaceOp {
  readonly sync: boolean;
  readonly size: number;
  /** Copies of facts from earlier ops appended to this one (duplicates that may race). */
  readonly dups: readonly number[];
}

interface Scenario3 {
  readonly shards: readonly (readonly RaceOp[])[];
  readonly picks: readonly number[];
  /** Before each sync batch: 0 none, 1 setImmediate, n ≥ 2 setTimeout(n − 2 ms). */
  readonly pauses: readonly number[];
}

const RACE_SHARDS = 3;
const RACE_FACTS = 6_000;

const scenario3Arb: fc.Arbitrary<Scenario3> = fc.record({
  shards: fc.array(
    fc.array(
      fc.record({
        sync: fc.boolean(),
        size: fc.integer({ min: 100, max: 1_500 }),
        dups: fc.array(fc.nat(RACE_FACTS), { maxLength: 4 }),
      }),
      { minLength: 2, maxLength: 6 },
    ),
    { minLength: RACE_SHARDS, maxLength: RACE_SHARDS },
  ),
  picks: fc.array(fc.nat(1000), { maxLength: 20 }),
  pauses: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }),
});

/** Independent GCounter facts per shard, made once (every run starts a fresh pool). */
let raceFacts: Fact[][] | undefined;

async function runScenario3(sc: Scenario3): Promise<void> {
  raceFacts ??= Array.from({ length: RACE_SHARDS }, (_, s) =>
    Array.from({ length: RACE_FACTS }, (_, i) => createFact([], payload(BigInt(1 + (i % 97)), [0x3ace, s, i]))),
  );
  const perShard: Submission[][] = sc.shards.map((ops, s) => {
    const facts = raceFacts![s]!;
    let next = 0;
    return ops.map((op) => {
      const batch = facts.slice(next, next + op.size);
      next += batch.length;
      if (next > 0) for (const d of op.dups) batch.push(facts[d % next]!);
      return { shard: s, facts: batch, sync: op.sync, packed: false, digestAfter: false };
    });
  });
  const pool = await KernelPool.create({ shards: RACE_SHARDS, threads: THREADS, invariant: { builtin: 'GCounter' }, indexCapacity: 1 << 13, indexSeed: INDEX_SEED });
  try {
    // Nothing is awaited: a sync batch takes the shard's lock while earlier batches of the same
    // shard may still be queued or running on a pool thread.
    // Before a sync batch the event loop may turn once, so the queued tasks reach the pool
    // threads and the sync batch meets one running (otherwise every sync batch would simply run
    // before any task is dispatched).
    // The pool threads must be up, or every task waits for them and nothing overlaps.
    await Promise.all(Array.from({ length: RACE_SHARDS }, (_, s) => pool.digest(s)));
    const schedule = interleave(perShard, sc.picks);
    const codes: Uint8Array[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < schedule.length; i++) {
      const op = schedule[i]!;
      if (op.sync) {
        const pause = sc.pauses[i % sc.pauses.length]!;
        if (pause > 0) await new Promise((resolve) => (pause === 1 ? setImmediate(resolve) : setTimeout(resolve, pause - 2)));
        codes[i] = pool.admitBatchSync(op.shard, op.facts).codes;
      } else {
        const p = pool.admitBatch(op.shard, op.facts).then((r) => void (codes[i] = r.codes));
        p.catch(() => undefined);
        pending.push(p);
      }
    }
    await Promise.all(pending);
    for (let s = 0; s < RACE_SHARDS; s++) {
      const okCount = new Map<string, number>();
      const copies = new Map<string, number>();
      const distinct: Fact[] = [];
      const otherCodes: number[] = [];
      schedule.forEach((op, i) => {
        if (op.shard !== s) return;
        op.facts.forEach((f, j) => {
          const id = toHex(f.id);
          if (!copies.has(id)) distinct.push(f);
          copies.set(id, (copies.get(id) ?? 0) + 1);
          const c = codes[i]![j]!;
          if (c === AdmitCode.Ok) okCount.set(id, (okCount.get(id) ?? 0) + 1);
          else if (c !== AdmitCode.DuplicateFact) otherCodes.push(c);
        });
      });
      expect(otherCodes, `shard ${s}: codes other than Ok and DuplicateFact`).toEqual([]);
      const wrong = distinct.filter((f) => okCount.get(toHex(f.id)) !== 1).length;
      expect(wrong, `shard ${s}: facts not admitted exactly once`).toBe(0);
      const ref = new Kernel(new GCounterInvariant(), { indexCapacity: 1 << 13, indexSeed: INDEX_SEED });
      expect(ref.admitBatch(FactBatch.from(distinct)).admitted).toBe(distinct.length);
      const snap = pool.stateOf(s);
      expect(toHex(snap.state.bytes), `shard ${s}: state bytes`).toBe(toHex(ref.state.bytes));
      expect(snap.size, `shard ${s}: size`).toBe(ref.size);
      expect(toHex(snap.clock.toBytes()), `shard ${s}: clock`).toBe(toHex(ref.clock.toBytes()));
      expect(distinct.filter((f) => !pool.contains(s, f.id)).length, `shard ${s}: facts missing from the published index`).toBe(0);
    }
  } finally {
    await pool.close();
  }
}

// ---------------------------------------------------------------------------------------------

describe('KernelPool exactness (real threads)', () => {
  it('matches one single-threaded kernel per shard: codes, state, size, clock, frontier, digest — with rejections', { timeout: 50_000 }, async () => {
    seen1.clear();
    await fc.assert(fc.asyncProperty(scenario1Arb, runScenario1), { numRuns: 20, interruptAfterTimeLimit: 30_000 });
    // The generator reached every outcome the mapping cares about.
    for (const code of [AdmitCode.Ok, AdmitCode.CausalityViolation, AdmitCode.InvariantViolation, AdmitCode.MalformedFact, AdmitCode.CausalHorizonExceeded, AdmitCode.DuplicateFact, AdmitCode.CrossShardDependency]) {
      expect(seen1.get(code) ?? 0, `code ${code} was exercised`).toBeGreaterThan(0);
    }
    expect(syncBatches1).toBeGreaterThan(0);
    expect(digestProbes1).toBeGreaterThan(0);
  });

  it('a commutative invariant (GCounter) ends in the same state and id set however the facts are ordered, split and interleaved', { timeout: 40_000 }, async () => {
    await fc.assert(fc.asyncProperty(scenario2Arb, runScenario2), { numRuns: 12, interruptAfterTimeLimit: 20_000 });
  });

  it('admitBatchSync racing queued and running pool tasks of the same shard: every fact exactly once, state as the reference', { timeout: 40_000 }, async () => {
    await fc.assert(fc.asyncProperty(scenario3Arb, runScenario3), { numRuns: 8, interruptAfterTimeLimit: 20_000 });
  });

  it('stress: 8 shards, 1-dep chains, batches of random sizes all submitted at once, every shard equals its reference', { timeout: 45_000 }, async () => {
    const rand = prng(0xc0ffee);
    const SHARDS = 8;
    const perShardFacts = [20_000, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000]; // 62,000
    // Shard 0's coalesced tasks exceed the 16,384-fact task cap; shards 6 and 7 overflow their capacity.
    const capacities = perShardFacts.map((_, s) => (s >= 6 ? 40_000n : U64_MAX));
    const cells = capacities.map((capacity) => new BoundedCounterState(0n, capacity).toBytes());
    const invariant = new BoundedGCounterInvariant();
    const indexCapacity = 32_768;
    const refs = cells.map((cell) => Kernel.withState(invariant, cell, { indexCapacity, indexSeed: INDEX_SEED }));
    const perShard: { shard: number; batch: FactBatch; facts: number }[][] = [];
    const refCodes = new Map<FactBatch, Uint8Array>();
    let total = 0;
    for (let s = 0; s < SHARDS; s++) {
      const chains = 1 + Math.floor(rand() * 4);
      const tails: (Uint8Array | undefined)[] = new Array(chains).fill(undefined);
      const facts: Fact[] = [];
      for (let i = 0; i < perShardFacts[s]!; i++) {
        const c = Math.floor(rand() * chains);
        // Now and then a fact depends on an id nobody admits: it and its chain's rest are refused.
        const dep = rand() < 0.0005 ? [createFact([], payload(0n, [0xdead, s, i])).id] : tails[c] === undefined ? [] : [tails[c]!];
        const fact = createFact(dep, payload(BigInt(Math.floor(rand() * 16)), [s, i]));
        tails[c] = fact.id;
        facts.push(fact);
      }
      total += facts.length;
      const maxBatch = s === 0 ? 3000 : 1200;
      const cuts = Array.from({ length: 64 }, () => 1 + Math.floor(rand() * maxBatch));
      perShard.push(
        split(facts, cuts).map((b) => {
          const batch = FactBatch.from(b);
          refCodes.set(batch, refs[s]!.admitBatch(FactBatch.from(b)).codes);
          return { shard: s, batch, facts: b.length };
        }),
      );
    }
    expect(total).toBeGreaterThanOrEqual(50_000);
    const picks = Array.from({ length: 97 }, () => Math.floor(rand() * 1000));
    const schedule = interleave(perShard, picks);

    const pool = await KernelPool.create({ shards: SHARDS, threads: THREADS, invariant: { builtin: 'BoundedGCounter' }, indexCapacity, indexSeed: INDEX_SEED, initialState: (s) => cells[s]! });
    try {
      const results = await Promise.all(schedule.map((op) => pool.admitBatch(op.shard, op.batch)));
      let bad = 0;
      results.forEach((r, i) => {
        if (toHex(r.codes) !== toHex(refCodes.get(schedule[i]!.batch)!)) bad++;
      });
      expect(bad, 'batches whose codes differ from the reference').toBe(0);
      let rejected = 0;
      for (let s = 0; s < SHARDS; s++) {
        const ref = refs[s]!;
        rejected += perShardFacts[s]! - ref.size;
        expectSameShard(pool, s, ref, `shard ${s}`);
        const d = await pool.digest(s);
        expect(toHex(d.digest), `shard ${s}: digest`).toBe(toHex(ref.digest()));
        expect(d.size).toBe(ref.size);
      }
      expect(rejected, 'the workload includes rejections').toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});
