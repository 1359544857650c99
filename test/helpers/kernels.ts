/**
 * Test helpers for kernels: one interface over every kernel kind (a TenantKernel is driven through
 * one of its tenants), snapshots for "nothing changed" checks, ids, TotalSupply cells and payloads,
 * tiny custom invariants, and a seeded PRNG.
 */
import {
  AlgebraicClass,
  CausalClock,
  ConservationState,
  EscalatingKernel,
  I128_MAX,
  I128_MIN,
  InvariantCode,
  Kernel,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  factId,
  i128le,
  readI128le,
  toHex,
  u64le,
  type Invariant,
  type StateCell,
  type View,
} from './lib.js';

export type KernelKind = 'Kernel' | 'TwoLaneKernel' | 'EscalatingKernel' | 'TenantKernel';
export const KERNEL_KINDS: readonly KernelKind[] = ['Kernel', 'TwoLaneKernel', 'EscalatingKernel', 'TenantKernel'];
export type SingleKind = Exclude<KernelKind, 'TenantKernel'>;
export const SINGLE_KINDS: readonly SingleKind[] = ['Kernel', 'TwoLaneKernel', 'EscalatingKernel'];

/** The tenant a TenantKernel subject is driven through (a neighbour tenant is registered too). */
export const SUBJECT_TENANT = 7;
export const NEIGHBOUR_TENANT = 3;

/** One kernel, whatever its kind, seen through the operations every kind has. */
export interface Subject {
  readonly kind: KernelKind;
  /** The underlying kernel object. */
  readonly raw: Kernel | TwoLaneKernel | EscalatingKernel | TenantKernel;
  tryAdmit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number;
  /** The throwing variant. */
  admit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): void;
  state(): Uint8Array;
  clock(): CausalClock;
  size(): number;
  saturation(): number;
  contains(id: Uint8Array): boolean;
  frontier(): Uint8Array[];
  lastInvariantError(): number;
  query(ids: readonly Uint8Array[]): View | null;
}

export interface SubjectOptions {
  readonly cell?: StateCell | Uint8Array;
  readonly indexCapacity?: number;
  /** Ids per hot table of the history (small: many freezes and merges). */
  readonly historyHotCapacity?: number;
}

export function singleKernel(
  kind: SingleKind,
  invariant: Invariant,
  options: SubjectOptions = {},
): Kernel | TwoLaneKernel | EscalatingKernel {
  const opts = { indexCapacity: options.indexCapacity ?? 4096, ...(options.historyHotCapacity === undefined ? {} : { historyHotCapacity: options.historyHotCapacity }) };
  const Ctor = kind === 'Kernel' ? Kernel : kind === 'TwoLaneKernel' ? TwoLaneKernel : EscalatingKernel;
  return options.cell === undefined ? new Ctor(invariant, opts) : Ctor.withState(invariant, options.cell, opts);
}

export function makeSubject(kind: KernelKind, invariant: Invariant, options: SubjectOptions = {}): Subject {
  if (kind === 'TenantKernel') {
    const tk = new TenantKernel(invariant, {
      indexCapacity: options.indexCapacity ?? 4096,
      maxTenants: 4,
      ...(options.historyHotCapacity === undefined ? {} : { historyHotCapacity: options.historyHotCapacity }),
    });
    tk.registerTenant(NEIGHBOUR_TENANT, options.cell);
    tk.registerTenant(SUBJECT_TENANT, options.cell);
    const t = SUBJECT_TENANT;
    return {
      kind,
      raw: tk,
      tryAdmit: (id, deps, payload) => tk.tryAdmit(t, id, deps, payload),
      admit: (id, deps, payload) => tk.admit(t, id, deps, payload),
      state: () => tk.state(t).toBytes(),
      clock: () => tk.clock(t),
      size: () => tk.size(t),
      saturation: () => tk.saturation(t),
      contains: (id) => tk.contains(t, id),
      frontier: () => tk.frontier(t),
      lastInvariantError: () => tk.lastInvariantError(t),
      query: (ids) => tk.query(t, ids),
    };
  }
  const k = singleKernel(kind, invariant, options);
  return {
    kind,
    raw: k,
    tryAdmit: (id, deps, payload) => k.tryAdmitRaw(id, deps, payload),
    admit: (id, deps, payload) => k.admitRaw(id, deps, payload),
    state: () => k.state.toBytes(),
    clock: () => k.clock,
    size: () => k.size,
    saturation: () => k.saturation,
    contains: (id) => k.contains(id),
    frontier: () => k.frontier(),
    lastInvariantError: () => k.lastInvariantError,
    query: (ids) => k.query(ids),
  };
}

/** Everything observable about a kernel, in comparable form. */
export interface Snapshot {
  readonly state: string;
  readonly clock: string;
  readonly size: number;
  readonly frontier: string[];
  /** contains() of each probe id. */
  readonly contains: boolean[];
}

export function snapshot(s: Subject, probes: readonly Uint8Array[] = []): Snapshot {
  return {
    state: toHex(s.state()),
    clock: toHex(s.clock().toBytes()),
    size: s.size(),
    frontier: s.frontier().map(toHex),
    contains: probes.map((id) => s.contains(id)),
  };
}

// ---------------------------------------------------------------------------------------------
// ids

/** 32 cryptographically random bytes. */
export function randomId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** A BLAKE3-derived id (a content address of the payload `u64 i ‖ u64 salt`), like upstream's BLAKE3(seq(i)). */
export function hashId(i: number, salt = 0): Uint8Array {
  const p = new Uint8Array(16);
  p.set(u64le(i), 0);
  p.set(u64le(salt), 8);
  return factId([], p);
}

export const hex = toHex;

// ---------------------------------------------------------------------------------------------
// TotalSupply

export function supplyCell(balance: bigint, min: bigint = I128_MIN, max: bigint = I128_MAX): Uint8Array {
  return new ConservationState(balance, min, max).toBytes();
}

export function delta(n: number | bigint): Uint8Array {
  return i128le(BigInt(n));
}

export function balanceOf(state: Uint8Array): bigint {
  return readI128le(state, 0);
}

export function totalSupply(): TotalSupplyInvariant {
  return new TotalSupplyInvariant();
}

// ---------------------------------------------------------------------------------------------
// custom invariants

/** A coordination-free u64 counter: adds the payload's u64 (mod 2^64), no bounds. Payload: exactly 8 bytes. */
export class CounterInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Commutative;
  readonly mutatesOnlyOnSuccess = true;
  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length !== 8) return InvariantCode.MalformedPayload;
    let carry = 0;
    for (let i = 0; i < 8; i++) {
      const s = state[i]! + payload[i]! + carry;
      state[i] = s & 0xff;
      carry = s >>> 8;
    }
    return InvariantCode.Ok;
  }
}

export function counterOf(state: Uint8Array): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(state[i]!);
  return v;
}

/**
 * A badly behaved invariant that does NOT declare mutatesOnlyOnSuccess: it scribbles over the
 * whole state before deciding. Payload (8 bytes): byte 0 = 0 → add bytes 1..7 to the counter and
 * succeed; 1 → scribble and return BoundsViolation; 2 → scribble and return custom code 9.
 */
export class ScribblingInvariant implements Invariant {
  readonly algebraicClass = AlgebraicClass.Commutative;
  calls = 0;
  apply(payload: Uint8Array, state: Uint8Array): number {
    this.calls++;
    if (payload.length !== 8) {
      state.fill(0xee);
      return InvariantCode.MalformedPayload;
    }
    const op = payload[0]!;
    if (op === 0) {
      state[8] = (state[8]! + 1) & 0xff; // an "applications" byte
      for (let i = 1; i < 8; i++) state[i] = (state[i]! + payload[i]!) & 0xff;
      return InvariantCode.Ok;
    }
    state.fill(0xa5);
    return op === 1 ? InvariantCode.BoundsViolation : 9;
  }
}

// ---------------------------------------------------------------------------------------------
// randomness

export { prng, xorshift32 } from './random.mjs';

export function randInt(rng: () => number, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher–Yates shuffle (a new array). */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A random DAG node: its index and the indices of its deps (all earlier). */
export interface DagNode {
  readonly deps: readonly number[];
}

/** A random DAG of `n` nodes; node i depends on up to `maxDeps` distinct earlier nodes. */
export function randomDag(n: number, maxDeps: number, rng: () => number): DagNode[] {
  const nodes: DagNode[] = [];
  for (let i = 0; i < n; i++) {
    const k = i === 0 ? 0 : randInt(rng, Math.min(maxDeps, i) + 1);
    const deps = new Set<number>();
    // Prefer recent nodes half of the time so chains get deep, but reach far back too.
    while (deps.size < k) deps.add(rng() < 0.5 ? i - 1 - randInt(rng, Math.min(i, 8)) : randInt(rng, i));
    nodes.push({ deps: [...deps] });
  }
  return nodes;
}

/** A random topological order of a DAG (Kahn's algorithm picking a random ready node each step). */
export function randomTopologicalOrder(dag: readonly DagNode[], rng: () => number): number[] {
  const n = dag.length;
  const pending = new Array<number>(n).fill(0);
  const dependents: number[][] = Array.from({ length: n }, () => []);
  dag.forEach((node, i) => {
    pending[i] = node.deps.length;
    for (const d of node.deps) dependents[d]!.push(i);
  });
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (pending[i] === 0) ready.push(i);
  const order: number[] = [];
  while (ready.length > 0) {
    const j = randInt(rng, ready.length);
    const node = ready[j]!;
    ready[j] = ready[ready.length - 1]!;
    ready.pop();
    order.push(node);
    for (const m of dependents[node]!) {
      pending[m] = pending[m]! - 1;
      if (pending[m] === 0) ready.push(m);
    }
  }
  return order;
}

/**
 * `count` random ids that were never admitted but whose three Bloom bits are all set in `clock`:
 * ids a Bloom-only kernel would wrongly accept as deps.
 */
export function bloomPositivePhantoms(clock: CausalClock, count: number, maxTries = 200_000): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let t = 0; t < maxTries && out.length < count; t++) {
    const id = randomId();
    if (clock.mightContain(id)) out.push(id);
  }
  return out;
}
