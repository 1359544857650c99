/**
 * Escrow: the EscrowManager ledger and the PendingQuotaRequests retry state machine.
 *
 * - upstream conformance (upstream-spec §10.1, algebra/escrow/mod.rs and pending.rs), adapted: node
 *   ids are strings, amounts bigints, time is passed in as milliseconds;
 * - everything upstream wrongly accepted (§8, §12.4 item 35) is refused with an EscrowError of a
 *   stable code and leaves every allocation exactly as it was;
 * - a model-based property over random (valid and invalid) operation sequences;
 * - the global bound: three nodes splitting 1,000 units never consume more than 1,000 together,
 *   whatever they consume, transfer or grant each other, and in whatever order grants arrive (late,
 *   twice, or from two peers), and draining them at the end consumes exactly 1,000;
 * - the quota-request state machine: backoff, due times, failure, peer selection, and what a grant
 *   means (applied, late, extra, duplicate, unknown), so granted quota is applied exactly once.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EscrowError,
  EscrowManager,
  INITIAL_BACKOFF_MS,
  MAX_BACKOFF_MS,
  MAX_ESCROW_LIMIT,
  PendingQuotaRequests,
  QuotaRequest,
  type EscrowAllocation,
  type EscrowErrorCode,
  type GrantOutcome,
  type NodeId,
} from './helpers/lib.js';
import { caught, expectError, expectInvalid, thrown } from './helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Everything observable about a ledger. */
interface Ledger {
  readonly nodes: NodeId[];
  readonly allocations: EscrowAllocation[];
  readonly allocated: bigint;
  readonly used: bigint;
  readonly available: bigint;
}

function ledger(m: EscrowManager): Ledger {
  const nodes = m.nodes();
  return {
    nodes,
    allocations: nodes.map((n) => m.allocation(n)),
    allocated: m.totalAllocated(),
    used: m.totalUsed(),
    available: m.totalAvailable(),
  };
}

/** `fn` is refused with EscrowError `code` and changes nothing in `m`; returns the error. */
function refused(m: EscrowManager, fn: () => unknown, code: EscrowErrorCode): EscrowError {
  const before = ledger(m);
  expectError(fn, EscrowError, code);
  expect(ledger(m)).toEqual(before);
  const e = thrown(fn);
  expect(ledger(m)).toEqual(before);
  return e as EscrowError;
}

/** Smuggles a value of the wrong type past the compiler (what a JS caller can do). */
function untyped<T>(v: unknown): T {
  return v as T;
}

function manager(limit: bigint, nodes: NodeId[]): EscrowManager {
  const m = new EscrowManager(limit);
  m.initialize(nodes);
  return m;
}

const BAD_AMOUNTS: readonly unknown[] = [0n, -1n, -1000n, MAX_ESCROW_LIMIT + 1n, 1, 0, -1, 1.5, '5', undefined, null, NaN];

// ---------------------------------------------------------------------------------------------
// Upstream conformance

describe('EscrowManager: upstream conformance (algebra/escrow/mod.rs)', () => {
  it('test_escrow_allocation_basic: consume 30 of 100 → 70 available; release 10 → 80', () => {
    const m = manager(100n, ['n1']);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 100n, used: 0n, available: 100n });
    m.consume('n1', 30n);
    expect(m.available('n1')).toBe(70n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 100n, used: 30n, available: 70n });
    m.release('n1', 10n);
    expect(m.available('n1')).toBe(80n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 100n, used: 20n, available: 80n });
  });

  it('test_escrow_allocation_insufficient: 60 of 50 → InsufficientEscrow{requested 60, available 50}', () => {
    const m = manager(50n, ['n1']);
    const e = refused(m, () => m.consume('n1', 60n), 'InsufficientEscrow');
    expect(e.requested).toBe(60n);
    expect(e.available).toBe(50n);
    expect(m.tryConsume('n1', 60n)).toBe(false);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 50n, used: 0n, available: 50n });
  });

  it('test_escrow_manager_initialize: 1000 over 3 nodes → 334/333/333 (the remainder goes to the first)', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    expect(m.nodes()).toEqual(['n1', 'n2', 'n3']);
    expect(m.nodes().map((n) => m.allocation(n).quota)).toEqual([334n, 333n, 333n]);
    expect(m.totalAllocated()).toBe(1000n);
    expect(m.totalUsed()).toBe(0n);
    expect(m.totalAvailable()).toBe(1000n);
    expect(manager(1000n, ['b', 'a']).nodes()).toEqual(['b', 'a']);
    const two = manager(1000n, ['x', 'y']);
    expect([two.allocation('x').quota, two.allocation('y').quota]).toEqual([500n, 500n]);
    const five = manager(7n, ['a', 'b', 'c', 'd', 'e']);
    expect(five.nodes().map((n) => five.allocation(n).quota)).toEqual([2n, 2n, 1n, 1n, 1n]);
    // Fewer units than nodes: the last nodes hold nothing, and that is still a valid split.
    const sparse = manager(2n, ['a', 'b', 'c']);
    expect(sparse.nodes().map((n) => sparse.allocation(n).quota)).toEqual([1n, 1n, 0n]);
    expect(sparse.tryConsume('c', 1n)).toBe(false);
  });

  it('test_escrow_manager_consume_release: totals follow consumes and releases', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    expect(m.tryConsume('n1', 100n)).toBe(true);
    expect(m.available('n1')).toBe(234n);
    expect(m.totalUsed()).toBe(100n);
    m.consume('n2', 33n);
    expect(m.totalUsed()).toBe(133n);
    m.release('n1', 50n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 334n, used: 50n, available: 284n });
    expect(m.allocation('n2')).toEqual({ node: 'n2', quota: 333n, used: 33n, available: 300n });
    expect(m.allocation('n3')).toEqual({ node: 'n3', quota: 333n, used: 0n, available: 333n });
    expect(m.totalUsed()).toBe(83n);
    expect(m.totalAvailable()).toBe(917n);
    expect(m.totalAllocated()).toBe(1000n);
  });

  it('test_escrow_manager_transfer: 100 moves from n1 to n2, the total stays 1000', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    m.consume('n1', 10n);
    m.transfer('n1', 'n2', 100n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 234n, used: 10n, available: 224n });
    expect(m.allocation('n2')).toEqual({ node: 'n2', quota: 433n, used: 0n, available: 433n });
    expect(m.allocation('n3').quota).toBe(333n);
    expect(m.totalAllocated()).toBe(1000n);
    expect(m.totalUsed()).toBe(10n);
  });

  it('test_escrow_manager_rebalance: used 400/100 of 500/500 → 250/250 available, used kept', () => {
    const m = manager(1000n, ['n1', 'n2']);
    m.consume('n1', 400n);
    m.consume('n2', 100n);
    m.rebalance();
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 650n, used: 400n, available: 250n });
    expect(m.allocation('n2')).toEqual({ node: 'n2', quota: 350n, used: 100n, available: 250n });
    expect(m.totalAllocated()).toBe(1000n);
  });

  it('rebalance gives the remainder of the unused units to the first nodes', () => {
    const m = manager(1000n, ['a', 'b', 'c']);
    m.consume('c', 300n);
    m.consume('a', 2n);
    // unused = 698 → 233, 233, 232
    m.rebalance();
    expect(m.nodes().map((n) => m.available(n))).toEqual([233n, 233n, 232n]);
    expect(m.nodes().map((n) => m.allocation(n).used)).toEqual([2n, 0n, 300n]);
    expect(m.totalAllocated()).toBe(1000n);
    // Everything used: rebalance leaves nothing to share and changes nothing.
    const full = manager(10n, ['a', 'b']);
    full.consume('a', 5n);
    full.consume('b', 5n);
    const before = ledger(full);
    full.rebalance();
    expect(ledger(full)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------
// What upstream accepted and we refuse

describe('EscrowManager: refusals are typed and change nothing', () => {
  it('the global limit is a positive bigint up to 2^127 − 1 (InvalidAmount)', () => {
    for (const bad of BAD_AMOUNTS) expectError(() => new EscrowManager(untyped<bigint>(bad)), EscrowError, 'InvalidAmount');
    expect(new EscrowManager(MAX_ESCROW_LIMIT).globalLimit).toBe(MAX_ESCROW_LIMIT);
    expect(new EscrowManager(1n).globalLimit).toBe(1n);
    const big = manager(MAX_ESCROW_LIMIT, ['a', 'b', 'c']);
    expect(big.totalAllocated()).toBe(MAX_ESCROW_LIMIT);
    big.transfer('a', 'b', big.available('a'));
    expect(big.totalAllocated()).toBe(MAX_ESCROW_LIMIT);
  });

  it('negative, zero, non-bigint and oversized amounts are InvalidAmount for every operation', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    m.consume('n1', 100n);
    m.consume('n2', 50n);
    for (const bad of BAD_AMOUNTS) {
      const a = untyped<bigint>(bad);
      refused(m, () => m.consume('n1', a), 'InvalidAmount');
      refused(m, () => m.tryConsume('n1', a), 'InvalidAmount');
      refused(m, () => m.release('n1', a), 'InvalidAmount');
      refused(m, () => m.transfer('n1', 'n2', a), 'InvalidAmount');
      refused(m, () => m.transfer('n2', 'n1', a), 'InvalidAmount');
    }
    // Upstream: consume(−x) raised available, release(−x) raised used past quota, transfer(−x) pulled quota.
    expect(ledger(m).allocations).toEqual([
      { node: 'n1', quota: 334n, used: 100n, available: 234n },
      { node: 'n2', quota: 333n, used: 50n, available: 283n },
      { node: 'n3', quota: 333n, used: 0n, available: 333n },
    ]);
  });

  it('an empty list, duplicates, non-string or empty ids, non-arrays are InvalidNodes and leave it uninitialised', () => {
    const m = new EscrowManager(1000n);
    const bad: unknown[] = [[], ['a', 'a'], ['a', 'b', 'a'], ['a', ''], [''], ['a', 5], [undefined], [null], ['a', , 'b'], 'abc', null, undefined, { length: 1, 0: 'a' }];
    for (const nodes of bad) {
      refused(m, () => m.initialize(untyped<NodeId[]>(nodes)), 'InvalidNodes');
      expect(m.nodes()).toEqual([]);
      expect(m.totalAllocated()).toBe(0n);
    }
    // A refused initialisation left nothing half-done: a valid one still works, with only its nodes.
    m.initialize(['x', 'y']);
    expect(m.nodes()).toEqual(['x', 'y']);
    expect(m.totalAllocated()).toBe(1000n);
    expect(m.allocation('x').quota).toBe(500n);
    refused(m, () => m.allocation('a'), 'UnknownNode');
  });

  it('initialising twice is AlreadyInitialized, whatever the second list', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    m.consume('n2', 7n);
    refused(m, () => m.initialize(['n1', 'n2', 'n3']), 'AlreadyInitialized');
    refused(m, () => m.initialize(['other']), 'AlreadyInitialized');
    refused(m, () => m.initialize(['n1', 'n2', 'n3', 'n4']), 'AlreadyInitialized');
    const e = thrown(() => m.initialize([]));
    expect(e).toBeInstanceOf(EscrowError);
    expect(['AlreadyInitialized', 'InvalidNodes']).toContain((e as EscrowError).code);
    expect(m.allocation('n2')).toEqual({ node: 'n2', quota: 333n, used: 7n, available: 326n });
  });

  it('every operation before initialise is NotInitialized', () => {
    const m = new EscrowManager(1000n);
    refused(m, () => m.consume('n1', 1n), 'NotInitialized');
    refused(m, () => m.tryConsume('n1', 1n), 'NotInitialized');
    refused(m, () => m.release('n1', 1n), 'NotInitialized');
    refused(m, () => m.transfer('n1', 'n2', 1n), 'NotInitialized');
    refused(m, () => m.transfer('n1', 'n1', 1n), 'NotInitialized');
    refused(m, () => m.rebalance(), 'NotInitialized');
    refused(m, () => m.allocation('n1'), 'NotInitialized');
    refused(m, () => m.available('n1'), 'NotInitialized');
    expect(m.nodes()).toEqual([]);
    expect(m.totalUsed()).toBe(0n);
    expect(m.totalAvailable()).toBe(0n);
  });

  it('unknown nodes are UnknownNode, on either side of a transfer', () => {
    const m = manager(1000n, ['n1', 'n2']);
    m.consume('n1', 10n);
    for (const ghost of ['n3', '', 'N1', ' n1', untyped<string>(1), untyped<string>(undefined), '__proto__', 'constructor']) {
      refused(m, () => m.consume(ghost, 1n), 'UnknownNode');
      refused(m, () => m.tryConsume(ghost, 1n), 'UnknownNode');
      refused(m, () => m.release(ghost, 1n), 'UnknownNode');
      refused(m, () => m.transfer(ghost, 'n1', 1n), 'UnknownNode');
      refused(m, () => m.transfer('n1', ghost, 1n), 'UnknownNode');
      refused(m, () => m.allocation(ghost), 'UnknownNode');
      refused(m, () => m.available(ghost), 'UnknownNode');
    }
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 500n, used: 10n, available: 490n });
  });

  it('releasing more than was used is ReleaseExceedsUsage (upstream made used negative)', () => {
    const m = manager(100n, ['n1', 'n2']);
    refused(m, () => m.release('n1', 1n), 'ReleaseExceedsUsage');
    m.consume('n1', 10n);
    refused(m, () => m.release('n1', 11n), 'ReleaseExceedsUsage');
    refused(m, () => m.release('n2', 1n), 'ReleaseExceedsUsage');
    m.release('n1', 10n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 50n, used: 0n, available: 50n });
    refused(m, () => m.release('n1', 1n), 'ReleaseExceedsUsage');
    expect(m.available('n1')).toBe(50n);
  });

  it('a transfer to oneself is InvalidTransfer, even when the amount is also too large', () => {
    const m = manager(100n, ['n1', 'n2']);
    refused(m, () => m.transfer('n1', 'n1', 1n), 'InvalidTransfer');
    refused(m, () => m.transfer('n1', 'n1', 51n), 'InvalidTransfer');
  });

  it('consuming or transferring more than available is InsufficientEscrow with requested/available; tryConsume returns false', () => {
    const m = manager(1000n, ['n1', 'n2', 'n3']);
    let e = refused(m, () => m.transfer('n1', 'n2', 335n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([335n, 334n]);
    m.consume('n1', 300n);
    e = refused(m, () => m.transfer('n1', 'n2', 35n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([35n, 34n]);
    e = refused(m, () => m.consume('n1', 35n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([35n, 34n]);
    const before = ledger(m);
    expect(m.tryConsume('n1', 35n)).toBe(false);
    expect(ledger(m)).toEqual(before);
    // Exactly the available amount is fine; one more is not.
    m.transfer('n1', 'n2', 34n);
    expect(m.allocation('n1')).toEqual({ node: 'n1', quota: 300n, used: 300n, available: 0n });
    e = refused(m, () => m.consume('n1', 1n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([1n, 0n]);
    e = refused(m, () => m.transfer('n1', 'n3', 1n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([1n, 0n]);
    expect(m.tryConsume('n1', 1n)).toBe(false);
    m.consume('n2', 367n);
    expect(m.available('n2')).toBe(0n);
    expect(m.tryConsume('n2', 1n)).toBe(false);
    // Used quota cannot be transferred: only the available part moves.
    e = refused(m, () => m.transfer('n2', 'n3', 1n), 'InsufficientEscrow');
    expect([e.requested, e.available]).toEqual([1n, 0n]);
    expect(m.totalAllocated()).toBe(1000n);
    expect(m.totalUsed()).toBe(667n);
  });

  it('errors are EscrowErrors with the stable code, not plain Errors', () => {
    const m = manager(10n, ['a']);
    const e = thrown(() => m.consume('a', 11n));
    expect(e).toBeInstanceOf(EscrowError);
    expect((e as EscrowError).name).toBe('EscrowError');
    expect((e as EscrowError).code).toBe('InsufficientEscrow');
    const other = thrown(() => m.release('a', 1n)) as EscrowError;
    expect(other.code).toBe('ReleaseExceedsUsage');
    expect(other.requested).toBeUndefined();
    expect(other.available).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based property

type NodeRef = { readonly ref: number } | { readonly raw: unknown };
type AmountSpec = { readonly value: unknown } | { readonly near: 'available' | 'used'; readonly delta: bigint };

type Op =
  | { readonly kind: 'initialize'; readonly nodes: unknown }
  | { readonly kind: 'consume' | 'tryConsume' | 'release'; readonly node: NodeRef; readonly amount: AmountSpec }
  | { readonly kind: 'transfer'; readonly from: NodeRef; readonly to: NodeRef; readonly amount: AmountSpec }
  | { readonly kind: 'rebalance' };

interface ModelShare {
  quota: bigint;
  used: bigint;
}

/** The reference ledger: a plain re-statement of the documented rules. */
class Model {
  shares: Map<NodeId, ModelShare> | undefined;
  /** Σ successful consumes − Σ successful releases. */
  netUsed = 0n;
  constructor(readonly limit: bigint) {}

  ledger(): Ledger {
    const entries = [...(this.shares ?? new Map<NodeId, ModelShare>()).entries()];
    const allocated = entries.reduce((t, [, s]) => t + s.quota, 0n);
    const used = entries.reduce((t, [, s]) => t + s.used, 0n);
    return {
      nodes: entries.map(([n]) => n),
      allocations: entries.map(([node, s]) => ({ node, quota: s.quota, used: s.used, available: s.quota - s.used })),
      allocated,
      used,
      available: allocated - used,
    };
  }
}

function validAmount(a: unknown): a is bigint {
  return typeof a === 'bigint' && a > 0n && a <= MAX_ESCROW_LIMIT;
}

function validNodeList(nodes: unknown): nodes is NodeId[] {
  if (!Array.isArray(nodes) || nodes.length === 0) return false;
  for (let i = 0; i < nodes.length; i++) {
    const n: unknown = nodes[i];
    if (typeof n !== 'string' || n.length === 0) return false;
  }
  return new Set(nodes).size === nodes.length;
}

function nodeArb(): fc.Arbitrary<NodeRef> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.nat(15).map((ref) => ({ ref })) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('\u0000ghost', '', 7, undefined).map((raw) => ({ raw })) },
  );
}

function amountArb(limit: bigint): fc.Arbitrary<AmountSpec> {
  const small = limit < 40n ? limit : 40n;
  return fc.oneof(
    { weight: 4, arbitrary: fc.bigInt(1n, small).map((value) => ({ value })) },
    { weight: 3, arbitrary: fc.bigInt(1n, limit).map((value) => ({ value })) },
    { weight: 3, arbitrary: fc.record({ near: fc.constantFrom<'available' | 'used'>('available', 'used'), delta: fc.bigInt(-1n, 1n) }) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(fc.bigInt(-limit, 0n), fc.constantFrom<unknown>(0n, MAX_ESCROW_LIMIT + 1n, 1, '1', undefined, null, 2.5))
        .map((value) => ({ value })),
    },
  );
}

function nodeListArb(): fc.Arbitrary<NodeId[]> {
  return fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }).filter((s) => s !== '\u0000ghost'), { minLength: 1, maxLength: 8 });
}

const BAD_NODE_LISTS: readonly unknown[] = [[], ['a', 'a'], ['a', ''], ['a', 3], 'ab', null, [undefined]];

function opArb(limit: bigint, withInit: boolean): fc.Arbitrary<Op> {
  const node = nodeArb();
  const amount = amountArb(limit);
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ kind: fc.constantFrom<'consume' | 'tryConsume' | 'release'>('consume', 'tryConsume', 'release'), node, amount }),
    fc.record({ kind: fc.constant<'transfer'>('transfer'), from: node, to: node, amount }),
    fc.constant<Op>({ kind: 'rebalance' }),
  ];
  if (withInit) {
    ops.push(fc.record({ kind: fc.constant<'initialize'>('initialize'), nodes: fc.oneof(nodeListArb(), fc.constantFrom(...BAD_NODE_LISTS)) }));
  }
  return fc.oneof(...ops);
}

const scenarioArb = fc
  .record({
    limit: fc.oneof(fc.bigInt(1n, 12n), fc.bigInt(1n, 10_000n), fc.constant(MAX_ESCROW_LIMIT)),
    nodes: nodeListArb(),
  })
  .chain(({ limit, nodes }) =>
    fc.record({
      limit: fc.constant(limit),
      nodes: fc.constant(nodes),
      pre: fc.array(opArb(limit, false), { maxLength: 4 }),
      badInits: fc.array(fc.constantFrom(...BAD_NODE_LISTS), { maxLength: 2 }),
      ops: fc.array(opArb(limit, true), { minLength: 1, maxLength: 60 }),
    }),
  );

function resolveNode(model: Model, r: NodeRef): unknown {
  if ('raw' in r) return r.raw;
  const nodes = model.shares === undefined ? [] : [...model.shares.keys()];
  return nodes.length === 0 ? `n${r.ref}` : nodes[r.ref % nodes.length];
}

function resolveAmount(model: Model, node: unknown, a: AmountSpec): unknown {
  if ('value' in a) return a.value;
  const s = typeof node === 'string' ? model.shares?.get(node) : undefined;
  if (s === undefined) return 1n + a.delta;
  return (a.near === 'available' ? s.quota - s.used : s.used) + a.delta;
}

/** Codes a refusal may carry (the validation failures that apply), and the business outcome. */
interface Expectation {
  readonly structural: EscrowErrorCode[];
  readonly business: EscrowErrorCode | undefined;
}

function nodeProblem(model: Model, node: unknown): EscrowErrorCode | undefined {
  if (model.shares === undefined) return 'NotInitialized';
  return typeof node === 'string' && model.shares.has(node) ? undefined : 'UnknownNode';
}

function rebalanceModel(model: Model): void {
  const shares = [...(model.shares ?? new Map<NodeId, ModelShare>()).values()];
  const n = BigInt(shares.length);
  const unused = shares.reduce((t, s) => t + s.quota - s.used, 0n);
  shares.forEach((s, i) => {
    s.quota = s.used + unused / n + (BigInt(i) < unused % n ? 1n : 0n);
  });
}

function checkInvariants(m: EscrowManager, model: Model): void {
  const actual = ledger(m);
  expect(actual).toEqual(model.ledger());
  if (model.shares !== undefined) {
    expect(m.totalAllocated()).toBe(model.limit);
    expect(m.totalAllocated()).toBe(m.globalLimit);
  }
  for (const a of actual.allocations) {
    expect(a.used >= 0n).toBe(true);
    expect(a.used <= a.quota).toBe(true);
    expect(a.available).toBe(a.quota - a.used);
  }
  expect(m.totalUsed()).toBe(model.netUsed);
  expect(m.totalAvailable()).toBe(m.totalAllocated() - m.totalUsed());
}

/** Applies `op` to both the manager and the model, checking the outcome. */
function step(m: EscrowManager, model: Model, op: Op): void {
  const before = ledger(m);
  let expectation: Expectation;
  let run: () => unknown;
  let apply: () => void;
  let tryResult: boolean | undefined;
  switch (op.kind) {
    case 'initialize': {
      const structural: EscrowErrorCode[] = [];
      if (model.shares !== undefined) structural.push('AlreadyInitialized');
      if (!validNodeList(op.nodes)) structural.push('InvalidNodes');
      expectation = { structural, business: undefined };
      run = () => m.initialize(untyped<NodeId[]>(op.nodes));
      apply = () => {
        const nodes = op.nodes as NodeId[];
        const n = BigInt(nodes.length);
        model.shares = new Map(nodes.map((node, i) => [node, { quota: model.limit / n + (BigInt(i) < model.limit % n ? 1n : 0n), used: 0n }]));
        const quotas = nodes.map((node) => m.allocation(node).quota);
        // Even split: non-increasing, max − min ≤ 1.
        for (let i = 1; i < quotas.length; i++) expect((quotas[i - 1] ?? 0n) - (quotas[i] ?? 0n)).toBeGreaterThanOrEqual(0n);
        expect((quotas[0] ?? 0n) - (quotas[quotas.length - 1] ?? 0n) <= 1n).toBe(true);
      };
      break;
    }
    case 'consume':
    case 'tryConsume':
    case 'release': {
      const node = resolveNode(model, op.node);
      const amount = resolveAmount(model, node, op.amount);
      const structural: EscrowErrorCode[] = [];
      if (!validAmount(amount)) structural.push('InvalidAmount');
      const np = nodeProblem(model, node);
      if (np !== undefined) structural.push(np);
      let business: EscrowErrorCode | undefined;
      const share = typeof node === 'string' ? model.shares?.get(node) : undefined;
      if (structural.length === 0 && share !== undefined && typeof amount === 'bigint') {
        if (op.kind === 'release') {
          if (amount > share.used) business = 'ReleaseExceedsUsage';
        } else if (amount > share.quota - share.used) {
          business = 'InsufficientEscrow';
        }
      }
      if (op.kind === 'tryConsume' && business === 'InsufficientEscrow') {
        business = undefined;
        tryResult = false;
      } else if (op.kind === 'tryConsume') {
        tryResult = true;
      }
      expectation = { structural, business };
      const kind = op.kind;
      run = () => (kind === 'release' ? m.release(untyped<NodeId>(node), untyped<bigint>(amount)) : m[kind](untyped<NodeId>(node), untyped<bigint>(amount)));
      apply = () => {
        if (tryResult === false) return;
        const s = share as ModelShare;
        const a = amount as bigint;
        if (kind === 'release') {
          s.used -= a;
          model.netUsed -= a;
        } else {
          s.used += a;
          model.netUsed += a;
        }
      };
      if (business === 'InsufficientEscrow' && share !== undefined) {
        const avail = share.quota - share.used;
        const requested = amount;
        const inner = run;
        run = () => {
          const e = thrown(inner);
          expect(e).toBeInstanceOf(EscrowError);
          expect((e as EscrowError).requested).toBe(requested);
          expect((e as EscrowError).available).toBe(avail);
          throw e;
        };
      }
      break;
    }
    case 'transfer': {
      const from = resolveNode(model, op.from);
      const to = resolveNode(model, op.to);
      const amount = resolveAmount(model, from, op.amount);
      const structural: EscrowErrorCode[] = [];
      if (!validAmount(amount)) structural.push('InvalidAmount');
      const fp = nodeProblem(model, from);
      const tp = nodeProblem(model, to);
      if (fp !== undefined) structural.push(fp);
      if (tp !== undefined) structural.push(tp);
      if (from === to) structural.push('InvalidTransfer');
      const source = typeof from === 'string' ? model.shares?.get(from) : undefined;
      const target = typeof to === 'string' ? model.shares?.get(to) : undefined;
      let business: EscrowErrorCode | undefined;
      if (structural.length === 0 && source !== undefined && typeof amount === 'bigint' && amount > source.quota - source.used) {
        business = 'InsufficientEscrow';
      }
      expectation = { structural, business };
      run = () => m.transfer(untyped<NodeId>(from), untyped<NodeId>(to), untyped<bigint>(amount));
      if (business === 'InsufficientEscrow' && source !== undefined) {
        const avail = source.quota - source.used;
        const inner = run;
        run = () => {
          const e = thrown(inner);
          expect((e as EscrowError).requested).toBe(amount);
          expect((e as EscrowError).available).toBe(avail);
          throw e;
        };
      }
      apply = () => {
        (source as ModelShare).quota -= amount as bigint;
        (target as ModelShare).quota += amount as bigint;
      };
      break;
    }
    case 'rebalance': {
      expectation = { structural: model.shares === undefined ? ['NotInitialized'] : [], business: undefined };
      run = () => m.rebalance();
      apply = () => {
        rebalanceModel(model);
        const after = ledger(m);
        const avail = after.allocations.map((a) => a.available);
        const max = avail.reduce((x, y) => (y > x ? y : x));
        const min = avail.reduce((x, y) => (y < x ? y : x));
        expect(max - min <= 1n).toBe(true);
        expect(after.allocations.map((a) => a.used)).toEqual(before.allocations.map((a) => a.used));
        expect(after.available).toBe(before.available);
      };
      break;
    }
  }
  let result: unknown;
  const error = caught(() => {
    result = run();
  });
  const codes = expectation.structural.length > 0 ? expectation.structural : expectation.business === undefined ? [] : [expectation.business];
  if (codes.length > 0) {
    expect(error, `${op.kind} should be refused with one of ${codes.join(', ')}`).toBeInstanceOf(EscrowError);
    expect(codes).toContain((error as EscrowError).code);
    expect(ledger(m)).toEqual(before);
  } else {
    expect(error).toBeUndefined();
    if (op.kind === 'tryConsume') expect(result).toBe(tryResult);
    if (tryResult === false) expect(ledger(m)).toEqual(before);
    apply();
  }
  checkInvariants(m, model);
}

describe('EscrowManager: model-based property over random operation sequences', () => {
  it('quotas always sum to the limit, used ≤ quota, totals follow the model, refusals change nothing', () => {
    fc.assert(
      fc.property(scenarioArb, ({ limit, nodes, pre, badInits, ops }) => {
        const m = new EscrowManager(limit);
        const model = new Model(limit);
        for (const op of pre) step(m, model, op);
        for (const bad of badInits) step(m, model, { kind: 'initialize', nodes: bad });
        expect(m.nodes()).toEqual([]);
        step(m, model, { kind: 'initialize', nodes });
        expect(m.nodes()).toEqual(nodes);
        for (const op of ops) step(m, model, op);
      }),
      { numRuns: 300 },
    );
  });

  it('rebalance: available differ by at most 1, used unchanged, the limit preserved', () => {
    fc.assert(
      fc.property(
        fc.bigInt(1n, 100_000n),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.nat(7), fc.bigInt(1n, 100_000n)), { maxLength: 30 }),
        (limit, n, consumes) => {
          const nodes = Array.from({ length: n }, (_, i) => `node-${i}`);
          const m = manager(limit, nodes);
          for (const [i, a] of consumes) m.tryConsume(`node-${i % n}`, a);
          const usedBefore = nodes.map((node) => m.allocation(node).used);
          const unused = m.totalAvailable();
          m.rebalance();
          const avail = nodes.map((node) => m.available(node));
          const max = avail.reduce((x, y) => (y > x ? y : x));
          const min = avail.reduce((x, y) => (y < x ? y : x));
          expect(max - min <= 1n).toBe(true);
          expect(nodes.map((node) => m.allocation(node).used)).toEqual(usedBefore);
          expect(m.totalAllocated()).toBe(limit);
          expect(m.totalAvailable()).toBe(unused);
          // The extra units go to the first nodes.
          for (let i = 1; i < avail.length; i++) expect((avail[i - 1] ?? 0n) >= (avail[i] ?? 0n)).toBe(true);
          // Rebalancing a balanced ledger changes nothing.
          const once = ledger(m);
          m.rebalance();
          expect(ledger(m)).toEqual(once);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The global bound

type Action =
  | { readonly kind: 'consume' | 'tryConsume'; readonly node: number; readonly amount: bigint }
  | { readonly kind: 'transfer'; readonly node: number; readonly peer: number; readonly amount: bigint }
  | { readonly kind: 'request'; readonly node: number; readonly amount: bigint }
  | { readonly kind: 'retry' | 'prune'; readonly node: number }
  | { readonly kind: 'tick'; readonly ms: number }
  | { readonly kind: 'deliver'; readonly pick: number; readonly duplicate: boolean };

const NODES3 = ['A', 'B', 'C'] as const;
/** Where granted quota travels: its grantor moves it here when it grants, the requester takes it when the grant arrives. */
const WIRE = 'wire';
/** Short enough that requests retry, fail by attempts and by age within one scenario. */
const SIM_POLICY = { timeoutMs: 300, maxRetries: 3, maxAgeMs: 6000 } as const;

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constantFrom<'consume' | 'tryConsume'>('consume', 'tryConsume'), node: fc.nat(2), amount: fc.bigInt(1n, 400n) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant<'transfer'>('transfer'), node: fc.nat(2), peer: fc.integer({ min: 1, max: 2 }), amount: fc.bigInt(1n, 400n) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant<'request'>('request'), node: fc.nat(2), amount: fc.bigInt(1n, 400n) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constantFrom<'retry' | 'prune'>('retry', 'prune'), node: fc.nat(2) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant<'tick'>('tick'), ms: fc.integer({ min: 100, max: 3000 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant<'deliver'>('deliver'), pick: fc.nat(), duplicate: fc.boolean() }), weight: 2 },
);

/** 1,000 units split 334/333/333 between A, B and C, plus an empty wire. */
function ledgerWithWire(): EscrowManager {
  // Four shares of 250; the wire's share goes to the nodes so that it starts empty.
  const m = manager(1000n, [...NODES3, WIRE]);
  m.transfer(WIRE, 'A', 84n);
  m.transfer(WIRE, 'B', 83n);
  m.transfer(WIRE, 'C', 83n);
  expect(NODES3.map((n) => m.available(n))).toEqual([334n, 333n, 333n]);
  expect(m.allocation(WIRE)).toMatchObject({ quota: 0n, used: 0n });
  return m;
}

/**
 * Three nodes consume, transfer, and ask each other for quota through PendingQuotaRequests; grants
 * travel on the wire and arrive late, twice, or after a second peer also granted. A grantor gives
 * the units up (moves them to the wire) when it grants, and answers a repeated ask for the same
 * request with the same grant (a retransmission, no new units). The requester applies a grant
 * exactly when the outcome says so ('applied', 'late', 'extra') and ignores 'duplicate'.
 */
function runGlobalBound(actions: readonly Action[], seen: Set<GrantOutcome['status']>): void {
  const m = ledgerWithWire();
  const pending = NODES3.map(() => new PendingQuotaRequests(SIM_POLICY));
  /** The requester's view of each request, to predict what a grant means. */
  const requests = new Map<string, { to: number; amount: bigint; state: 'pending' | 'granted' | 'failed'; grantors: Set<number> }>();
  /** What each grantor granted for a request, by `${id}|${grantor}`. */
  const grants = new Map<string, bigint>();
  /** Units given up by their grantor and not applied yet, by `${id}|${grantor}`. */
  const onWire = new Map<string, bigint>();
  /** Grant messages in flight (a retransmission is another message with the same key). */
  const inFlight: { to: number; from: number; amount: bigint; id: string }[] = [];
  let consumed = 0n;
  let now = 0;
  let seq = 0;

  const ask = (to: number, id: string, peer: NodeId): void => {
    const from = NODES3.indexOf(peer as (typeof NODES3)[number]);
    expect(from).toBeGreaterThanOrEqual(0);
    expect(from).not.toBe(to);
    const key = `${id}|${from}`;
    let amount = grants.get(key);
    if (amount === undefined) {
      const want = (requests.get(id) as { amount: bigint }).amount;
      const spare = m.available(peer);
      amount = want < spare ? want : spare;
      if (amount === 0n) return; // nothing to spare: no grant, the requester will retry elsewhere
      m.transfer(peer, WIRE, amount); // the grantor gives the units up before it sends the grant
      grants.set(key, amount);
      onWire.set(key, amount);
    }
    inFlight.push({ to, from, amount, id });
  };

  const deliver = (i: number, keep: boolean): void => {
    const msg = inFlight[i] as (typeof inFlight)[number];
    if (!keep) inFlight.splice(i, 1);
    const key = `${msg.id}|${msg.from}`;
    const request = requests.get(msg.id) as NonNullable<ReturnType<typeof requests.get>>;
    const p = pending[msg.to] as PendingQuotaRequests;
    const outcome = p.grant(msg.id, NODES3[msg.from] as string);
    const expected: GrantOutcome['status'] = request.grantors.has(msg.from)
      ? 'duplicate'
      : request.state === 'pending'
        ? 'applied'
        : request.state === 'failed' && request.grantors.size === 0
          ? 'late'
          : 'extra';
    expect(outcome.status).toBe(expected);
    seen.add(outcome.status);
    switch (outcome.status) {
      case 'applied':
      case 'late':
      case 'extra': {
        expect(outcome.request.requestId).toBe(msg.id);
        expect(outcome.request.amount >= msg.amount).toBe(true);
        if (outcome.status === 'extra') expect(request.grantors.size).toBeGreaterThan(0);
        // Real quota, not lost: its grantor gave it up, and it is still on the wire until applied here.
        expect(onWire.get(key)).toBe(msg.amount);
        m.transfer(WIRE, NODES3[msg.to] as string, msg.amount);
        onWire.delete(key);
        request.grantors.add(msg.from);
        if (request.state === 'pending') request.state = 'granted';
        expect(p.get(msg.id)).toBeUndefined();
        break;
      }
      case 'duplicate':
        // Applied at the first delivery: nothing of it is left on the wire, nothing to do.
        expect(onWire.has(key)).toBe(false);
        break;
      case 'unknown':
        break; // never expected (every grant is for a request its requester opened)
    }
  };

  /** Every node sends what is due, starting with `first`. */
  const retryAll = (first: number): void => {
    for (let k = 0; k < 3; k++) {
      const node = (first + k) % 3;
      const p = pending[node] as PendingQuotaRequests;
      const peers = NODES3.filter((_, i) => i !== node);
      for (const r of p.due(now)) {
        expect(r.retries).toBeGreaterThan(0); // new requests were attempted when opened
        const peer = p.selectPeer(r.requestId, peers) as string;
        expect(peers).toContain(peer);
        p.recordAttempt(r.requestId, peer, now);
        ask(node, r.requestId, peer);
      }
    }
  };

  for (const action of actions) {
    now += 100;
    switch (action.kind) {
      case 'consume':
      case 'tryConsume': {
        const node = NODES3[action.node] as string;
        const avail = m.available(node);
        if (action.kind === 'tryConsume') {
          const ok = m.tryConsume(node, action.amount);
          expect(ok).toBe(action.amount <= avail);
          if (ok) consumed += action.amount;
        } else if (action.amount <= avail) {
          m.consume(node, action.amount);
          consumed += action.amount;
        } else {
          const e = refused(m, () => m.consume(node, action.amount), 'InsufficientEscrow');
          expect([e.requested, e.available]).toEqual([action.amount, avail]);
        }
        break;
      }
      case 'transfer': {
        const from = NODES3[action.node] as string;
        const to = NODES3[(action.node + action.peer) % 3] as string;
        if (action.amount <= m.available(from)) m.transfer(from, to, action.amount);
        else refused(m, () => m.transfer(from, to, action.amount), 'InsufficientEscrow');
        break;
      }
      case 'request': {
        // The node ran short: it opens a request, which is due at once, and asks the first untried peer.
        const p = pending[action.node] as PendingQuotaRequests;
        const id = `${action.node}:${seq++}`;
        const r = p.open(id, action.amount, now);
        requests.set(id, { to: action.node, amount: action.amount, state: 'pending', grantors: new Set() });
        expect(p.due(now)).toContain(r);
        const peers = NODES3.filter((_, i) => i !== action.node);
        const peer = p.selectPeer(id, peers) as string;
        expect(peer).toBe(peers[0]);
        p.recordAttempt(id, peer, now);
        ask(action.node, id, peer);
        break;
      }
      case 'retry':
        retryAll(action.node);
        break;
      case 'prune': {
        for (const r of (pending[action.node] as PendingQuotaRequests).pruneFailed(now)) {
          const request = requests.get(r.requestId);
          expect(request?.state).toBe('pending');
          (request as { state: string }).state = 'failed';
        }
        break;
      }
      case 'tick':
        now += action.ms;
        break;
      case 'deliver': {
        // Deliver a grant, possibly keeping it in flight to arrive again (a retransmission).
        if (inFlight.length > 0) deliver(action.pick % inFlight.length, action.duplicate);
        break;
      }
    }
    expect(consumed <= 1000n).toBe(true);
    expect(m.totalUsed()).toBe(consumed);
    expect(m.totalAllocated()).toBe(1000n);
    expect(m.allocation(WIRE)).toMatchObject({ quota: [...onWire.values()].reduce((a, b) => a + b, 0n), used: 0n });
    for (const node of NODES3) {
      const a = m.allocation(node);
      expect(a.used <= a.quota).toBe(true);
      expect(a.quota >= 0n).toBe(true);
    }
    for (const [id, request] of requests) {
      expect(pending[request.to]?.get(id) !== undefined).toBe(request.state === 'pending');
    }
  }
  // In the end the requests still pending are sent once more, then fail by age, and every grant
  // still in flight arrives (late, extra or duplicate): the wire empties.
  now += MAX_BACKOFF_MS;
  retryAll(0);
  now += SIM_POLICY.maxAgeMs;
  for (const p of pending) {
    for (const r of p.pruneFailed(now)) (requests.get(r.requestId) as { state: string }).state = 'failed';
    expect(p.size).toBe(0);
  }
  while (inFlight.length > 0) deliver(0, false);
  expect(onWire.size).toBe(0);
  expect(m.allocation(WIRE)).toMatchObject({ quota: 0n, used: 0n });
  // Nothing is lost either: draining every node consumes exactly the rest.
  for (const node of NODES3) {
    const rest = m.available(node);
    if (rest > 0n) {
      expect(m.tryConsume(node, rest)).toBe(true);
      consumed += rest;
    }
    expect(m.tryConsume(node, 1n)).toBe(false);
  }
  expect(consumed).toBe(1000n);
  expect(m.totalUsed()).toBe(1000n);
}

describe('EscrowManager: the global bound', () => {
  it('three nodes splitting 1,000 units never consume more than 1,000 together, in any interleaving', () => {
    const seen = new Set<GrantOutcome['status']>();
    // A fixed scenario in which every outcome occurs: applied, duplicate and extra (A's request 0:0
    // is granted by B, retried to C which grants too; B's grant arrives twice, then C's), and late
    // (A's request 0:1 fails by age and is pruned before B's grant arrives).
    const everyOutcome: Action[] = [
      { kind: 'request', node: 0, amount: 10n },
      { kind: 'tick', ms: 500 },
      { kind: 'retry', node: 0 },
      { kind: 'deliver', pick: 0, duplicate: true },
      { kind: 'deliver', pick: 0, duplicate: false },
      { kind: 'deliver', pick: 0, duplicate: false },
      { kind: 'request', node: 0, amount: 20n },
      { kind: 'tick', ms: 3000 },
      { kind: 'tick', ms: 3000 },
      { kind: 'prune', node: 0 },
      { kind: 'deliver', pick: 0, duplicate: false },
    ];
    const fixed = new Set<GrantOutcome['status']>();
    runGlobalBound(everyOutcome, fixed);
    expect([...fixed].sort()).toEqual(['applied', 'duplicate', 'extra', 'late']);
    fc.assert(
      fc.property(fc.array(actionArb, { maxLength: 120 }), (actions) => runGlobalBound(actions, seen)),
      { numRuns: 300 },
    );
    // Random scenarios reach every outcome too (late and extra each in about a third of the runs).
    expect([...seen].sort()).toEqual(['applied', 'duplicate', 'extra', 'late']);
  });

  it('every node trying to take the whole 1,000 gets only its share', () => {
    const m = manager(1000n, [...NODES3]);
    for (const node of NODES3) expect(m.tryConsume(node, 1000n)).toBe(false);
    for (const node of NODES3) refused(m, () => m.consume(node, 1000n), 'InsufficientEscrow');
    let total = 0n;
    for (const node of NODES3) {
      const share = m.available(node);
      m.consume(node, share);
      total += share;
    }
    expect(total).toBe(1000n);
    for (const node of NODES3) expect(m.tryConsume(node, 1n)).toBe(false);
    for (const node of NODES3) refused(m, () => m.transfer(node, node === 'A' ? 'B' : 'A', 1n), 'InsufficientEscrow');
  });
});

// ---------------------------------------------------------------------------------------------
// Quota requests

describe('QuotaRequest / PendingQuotaRequests: upstream conformance (algebra/escrow/pending.rs)', () => {
  it('test_pending_request_backoff: 0 before the first attempt, then 500, 1000, 2000, 4000, capped at 4000 (attempt 10 too)', () => {
    expect(INITIAL_BACKOFF_MS).toBe(500);
    expect(MAX_BACKOFF_MS).toBe(4000);
    const r = new QuotaRequest('r', 5n, 1000);
    expect([r.requestId, r.amount, r.createdAt, r.lastAttemptAt, r.retries, r.tried]).toEqual(['r', 5n, 1000, 1000, 0, []]);
    const seen: number[] = [];
    for (let retries = 0; retries <= 10; retries++) {
      r.retries = retries;
      seen.push(r.backoffMs());
    }
    expect(seen).toEqual([0, 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    r.retries = 1_000;
    expect(r.backoffMs()).toBe(4000);
    expect(r.age(1000)).toBe(0);
    expect(r.age(4500)).toBe(3500);
  });

  it('backoff follows the attempts recorded through the map', () => {
    const p = new PendingQuotaRequests();
    const r = p.open('r', 1n, 0);
    const seen = [r.backoffMs()];
    for (let i = 1; i <= 6; i++) {
      p.recordAttempt('r', 'peer', i * 10);
      seen.push(r.backoffMs());
    }
    expect(seen).toEqual([0, 500, 1000, 2000, 4000, 4000, 4000]);
    expect(r.retries).toBe(6);
    expect(r.lastAttemptAt).toBe(60);
    expect(r.tried).toEqual(['peer']);
  });

  it('test_pending_request_map: open / get / size / grant', () => {
    const p = new PendingQuotaRequests();
    expect(p.size).toBe(0);
    expect(p.get('r1')).toBeUndefined();
    const r1 = p.open('r1', 10n, 0);
    const r2 = p.open('r2', 20n, 5);
    expect(p.size).toBe(2);
    expect(p.get('r1')).toBe(r1);
    expect(p.get('r2')).toBe(r2);
    expect(r2.amount).toBe(20n);
    expect(r2.createdAt).toBe(5);
    expect(p.grant('r1', 'peer')).toEqual({ status: 'applied', request: r1 });
    expect(p.size).toBe(1);
    expect(p.get('r1')).toBeUndefined();
    expect(p.get('r2')).toBe(r2);
  });

  it('test_peer_selection: untried peers first in the given order, then round-robin by attempt count', () => {
    const p = new PendingQuotaRequests();
    p.open('r', 1n, 0);
    const peers = ['a', 'b', 'c'];
    const picked: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++) {
      const peer = p.selectPeer('r', peers);
      picked.push(peer);
      p.recordAttempt('r', peer as string, i);
    }
    // a, b, c untried; then peers[retries % 3] with retries 3, 4, 5, 6, 7.
    expect(picked).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b']);
    expect(p.get('r')?.tried).toEqual(['a', 'b', 'c']);
  });

  it('selectPeer: an untried peer wins even when listed first after others were tried out of order', () => {
    const p = new PendingQuotaRequests();
    p.open('r', 1n, 0);
    p.recordAttempt('r', 'b', 1);
    expect(p.selectPeer('r', ['a', 'b', 'c'])).toBe('a');
    p.recordAttempt('r', 'c', 2);
    expect(p.selectPeer('r', ['a', 'b', 'c'])).toBe('a');
    expect(p.selectPeer('r', ['b', 'c'])).toBe('b'); // all tried: retries 2 % 2 = 0
    p.recordAttempt('r', 'a', 3);
    // A peer that joins later is untried, so it is asked next.
    expect(p.selectPeer('r', ['a', 'b', 'c', 'd'])).toBe('d');
    expect(p.selectPeer('r', ['a', 'b', 'c'])).toBe('a'); // retries 3 % 3 = 0
    expect(p.selectPeer('r', ['x'])).toBe('x');
    // selectPeer does not record anything.
    expect(p.get('r')?.retries).toBe(3);
    expect(p.get('r')?.tried).toEqual(['b', 'c', 'a']);
  });

  it('selectPeer: undefined for an unknown, granted or failed-and-pruned id, or no peers', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 1000 });
    expect(p.selectPeer('nope', ['a'])).toBeUndefined();
    p.open('r', 1n, 0);
    expect(p.selectPeer('r', [])).toBeUndefined();
    expect(p.selectPeer('r', ['a'])).toBe('a');
    p.grant('r', 'a');
    expect(p.selectPeer('r', ['a'])).toBeUndefined();
    p.open('f', 1n, 0);
    expect(p.selectPeer('f', ['a'])).toBe('a');
    expect(p.pruneFailed(1000).map((r) => r.requestId)).toEqual(['f']);
    expect(p.selectPeer('f', ['a'])).toBeUndefined();
    expect(p.selectPeer('f', ['a', 'b'])).toBeUndefined();
  });
});

describe('PendingQuotaRequests: due and failed', () => {
  it('the defaults are timeout 500 ms, 5 attempts, 30 s; partial policies keep the other defaults', () => {
    const d = new PendingQuotaRequests();
    expect([d.timeoutMs, d.maxRetries, d.maxAgeMs]).toEqual([500, 5, 30_000]);
    const e = new PendingQuotaRequests({});
    expect([e.timeoutMs, e.maxRetries, e.maxAgeMs]).toEqual([500, 5, 30_000]);
    const p = new PendingQuotaRequests({ maxRetries: 3 });
    expect([p.timeoutMs, p.maxRetries, p.maxAgeMs]).toEqual([500, 3, 30_000]);
    const q = new PendingQuotaRequests({ timeoutMs: 0, maxRetries: 0, maxAgeMs: 0 });
    expect([q.timeoutMs, q.maxRetries, q.maxAgeMs]).toEqual([0, 0, 0]);
  });

  it('a new request is due at once; then only once max(timeout, backoff) has passed since the last attempt', () => {
    const p = new PendingQuotaRequests();
    const r = p.open('r', 1n, 1000);
    expect(p.due(1000)).toEqual([r]);
    expect(p.due(1000)).toEqual([r]); // asking does not count as an attempt
    expect(r.retries).toBe(0);
    p.recordAttempt('r', 'a', 1000); // 1st attempt: wait max(500, 500)
    expect(p.due(1000)).toEqual([]);
    expect(p.due(1499)).toEqual([]);
    expect(p.due(1500)).toEqual([r]);
    p.recordAttempt('r', 'a', 1600); // 2nd: wait 1000
    expect(p.due(2599)).toEqual([]);
    expect(p.due(2600)).toEqual([r]);
    p.recordAttempt('r', 'a', 2600); // 3rd: wait 2000
    expect(p.due(4599)).toEqual([]);
    expect(p.due(4600)).toEqual([r]);
    p.recordAttempt('r', 'a', 4600); // 4th: wait 4000
    expect(p.due(8599)).toEqual([]);
    expect(p.due(8600)).toEqual([r]);
    // A clock that went backwards is not "due".
    expect(p.due(0)).toEqual([]);
  });

  it('a timeout longer than the backoff wins; a zero timeout leaves the backoff', () => {
    const slow = new PendingQuotaRequests({ timeoutMs: 3000 });
    const r = slow.open('r', 1n, 0);
    expect(slow.due(0)).toEqual([r]);
    slow.recordAttempt('r', 'a', 0); // backoff 500 < 3000
    expect(slow.due(2999)).toEqual([]);
    expect(slow.due(3000)).toEqual([r]);
    slow.recordAttempt('r', 'a', 3000); // 1000
    expect(slow.due(5999)).toEqual([]);
    expect(slow.due(6000)).toEqual([r]);
    slow.recordAttempt('r', 'a', 6000); // 2000
    expect(slow.due(8999)).toEqual([]);
    expect(slow.due(9000)).toEqual([r]);
    slow.recordAttempt('r', 'a', 9000); // backoff 4000 > 3000 from now on
    expect(slow.due(12_000)).toEqual([]);
    expect(slow.due(12_999)).toEqual([]);
    expect(slow.due(13_000)).toEqual([r]);

    const eager = new PendingQuotaRequests({ timeoutMs: 0 });
    const s = eager.open('s', 1n, 0);
    expect(eager.due(0)).toEqual([s]);
    eager.recordAttempt('s', 'a', 0);
    expect(eager.due(499)).toEqual([]);
    expect(eager.due(500)).toEqual([s]);
  });

  it('fails after maxRetries attempts once the last one has waited max(timeout, backoff), and is then never due', () => {
    const p = new PendingQuotaRequests({ maxRetries: 2 });
    const r = p.open('r', 1n, 0);
    p.recordAttempt('r', 'a', 0);
    expect(p.failed(500)).toEqual([]);
    expect(p.due(500)).toEqual([r]);
    p.recordAttempt('r', 'b', 500); // the last attempt: its answer may take 1000 ms
    expect(p.failed(500)).toEqual([]);
    expect(p.failed(1499)).toEqual([]);
    expect(p.due(1499)).toEqual([]);
    expect(p.failed(1500)).toEqual([r]);
    expect(p.due(1500)).toEqual([]);
    expect(p.due(100_000)).toEqual([]);
    expect(p.get('r')).toBe(r); // failed is a query; pruneFailed removes
  });

  it('failure comes only after the last attempt’s wait: a grant arriving during it is applied', () => {
    const p = new PendingQuotaRequests(); // 5 attempts: at 0, 500, 1500, 3500, 7500; the last waits 4000
    const r = p.open('r', 3n, 0);
    for (const at of [0, 500, 1500, 3500, 7500]) {
      expect(p.due(at)).toEqual([r]);
      p.recordAttempt('r', 'peer', at);
    }
    expect(r.retries).toBe(5);
    expect(p.due(11_499)).toEqual([]);
    expect(p.failed(11_499)).toEqual([]);
    expect(p.pruneFailed(11_499)).toEqual([]);
    expect(p.grant('r', 'peer')).toEqual({ status: 'applied', request: r });
    expect(p.failed(11_500)).toEqual([]);
    expect(p.pruneFailed(100_000)).toEqual([]);
    expect(p.size).toBe(0);

    // The same without a grant: failed at 11 500, not before.
    const q = new PendingQuotaRequests();
    const s = q.open('s', 3n, 0);
    for (const at of [0, 500, 1500, 3500, 7500]) q.recordAttempt('s', 'peer', at);
    expect(q.failed(11_499)).toEqual([]);
    expect(q.failed(11_500)).toEqual([s]);
  });

  it('fails at maxAgeMs (not before) even if it is due by backoff', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 1000 });
    const r = p.open('r', 1n, 0);
    expect(p.due(0)).toEqual([r]);
    expect(p.due(999)).toEqual([r]);
    expect(p.failed(999)).toEqual([]);
    expect(p.failed(1000)).toEqual([r]);
    expect(p.due(1000)).toEqual([]);
    // Age wins over a pending wait as well.
    const q = new PendingQuotaRequests({ maxAgeMs: 1000 });
    const s = q.open('s', 1n, 0);
    q.recordAttempt('s', 'a', 900);
    expect(q.failed(999)).toEqual([]);
    expect(q.failed(1000)).toEqual([s]);
  });

  it('maxRetries 0 fails a request at once; it is never due', () => {
    // With no attempts allowed, the request has already made its (zero) attempts and waited for them.
    const q = new PendingQuotaRequests({ maxRetries: 0, timeoutMs: 0 });
    const s = q.open('s', 1n, 0);
    expect(q.failed(0)).toEqual([s]);
    expect(q.due(0)).toEqual([]);
    // The same with the default timeout of 500 ms: no attempt is ever due, so there is nothing to wait for.
    const p = new PendingQuotaRequests({ maxRetries: 0 });
    const r = p.open('r', 1n, 0);
    expect(p.due(0)).toEqual([]);
    expect(p.failed(0)).toEqual([r]);
    expect(p.due(10_000)).toEqual([]);
  });

  it('pruneFailed removes and returns exactly the failed requests, in creation order', () => {
    const p = new PendingQuotaRequests({ maxRetries: 2, maxAgeMs: 10_000 });
    const old = p.open('old', 1n, 0); // fails by age at 10 000
    const tired = p.open('tired', 2n, 100); // fails by attempts, at 2000 + 1000
    const fresh = p.open('fresh', 3n, 5000);
    const almost = p.open('almost', 4n, 200); // one attempt: not failed
    p.recordAttempt('tired', 'a', 1000);
    p.recordAttempt('tired', 'b', 2000);
    p.recordAttempt('almost', 'a', 1000);
    expect(p.failed(2999)).toEqual([]);
    expect(p.failed(3000)).toEqual([tired]);
    expect(p.failed(9999)).toEqual([tired]);
    expect(p.failed(10_000)).toEqual([old, tired]);
    expect(p.pruneFailed(10_000)).toEqual([old, tired]);
    expect(p.size).toBe(2);
    expect(p.get('old')).toBeUndefined();
    expect(p.get('tired')).toBeUndefined();
    expect(p.get('fresh')).toBe(fresh);
    expect(p.get('almost')).toBe(almost);
    expect(p.pruneFailed(10_000)).toEqual([]);
    expect(p.size).toBe(2);
    // A pruned request's grant is late: real quota, to be applied.
    expect(p.grant('tired', 'b')).toEqual({ status: 'late', request: tired });
    expect(p.size).toBe(2);
  });

  it('due() and failed() list requests in creation order, not by id', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 5000 });
    const zeta = p.open('zeta', 1n, 0);
    const alpha = p.open('alpha', 1n, 10);
    const mid = p.open('mid', 1n, 20);
    expect(p.due(20)).toEqual([zeta, alpha, mid]);
    p.recordAttempt('mid', 'a', 30);
    p.recordAttempt('zeta', 'a', 40);
    p.recordAttempt('alpha', 'a', 50);
    expect(p.due(4000)).toEqual([zeta, alpha, mid]);
    expect(p.failed(6000)).toEqual([zeta, alpha, mid]);
    expect(p.pruneFailed(6000)).toEqual([zeta, alpha, mid]);
    expect(p.size).toBe(0);
  });

  it('requests opened in the same millisecond are listed in the order they were opened', () => {
    // Millisecond clocks tie often; "creation order" must still be the order of open().
    const p = new PendingQuotaRequests({ maxAgeMs: 5000 });
    const b = p.open('b', 1n, 100);
    const a = p.open('a', 1n, 100);
    const c = p.open('c', 1n, 100);
    expect(p.due(100).map((r) => r.requestId)).toEqual([b.requestId, a.requestId, c.requestId]);
    expect(p.due(1000).map((r) => r.requestId)).toEqual(['b', 'a', 'c']);
    expect(p.failed(6000).map((r) => r.requestId)).toEqual(['b', 'a', 'c']);
  });

  it('full timeline: opened at t=0 with the default policy, attempted at 0, 500, 1500, 3500, 7500 ms, failed at 11 500', () => {
    const p = new PendingQuotaRequests();
    const r = p.open('q', 42n, 0);
    const peers = ['p1', 'p2'];
    const attempts: { at: number; peer: string }[] = [];
    let failedAt: number | undefined;
    for (let now = 0; now <= 40_000; now += 100) {
      // The fifth attempt (at 7500 ms) uses up the attempts; its wait of 4000 ms ends at 11 500.
      const failed = p.failed(now);
      if (failed.length > 0 && failedAt === undefined) failedAt = now;
      expect(failed).toEqual(now >= 11_500 ? [r] : []);
      for (const due of p.due(now)) {
        expect(due).toBe(r);
        const peer = p.selectPeer(due.requestId, peers) as string;
        attempts.push({ at: now, peer });
        p.recordAttempt(due.requestId, peer, now);
      }
      expect(p.failed(now)).toEqual(failed);
    }
    expect(attempts).toEqual([
      { at: 0, peer: 'p1' },
      { at: 500, peer: 'p2' },
      { at: 1500, peer: 'p1' },
      { at: 3500, peer: 'p2' },
      { at: 7500, peer: 'p1' },
    ]);
    expect(failedAt).toBe(11_500);
    expect(r.retries).toBe(5);
    expect(p.pruneFailed(40_000)).toEqual([r]);
    expect(p.size).toBe(0);
  });

  it('timeline with maxAgeMs 5000: four attempts, then it fails by age at 5000 ms', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 5000 });
    const r = p.open('q', 1n, 0);
    const attempts: number[] = [];
    let failedAt: number | undefined;
    for (let now = 0; now <= 20_000; now += 100) {
      if (failedAt === undefined && p.failed(now).length > 0) failedAt = now;
      for (const due of p.due(now)) {
        attempts.push(now);
        p.recordAttempt(due.requestId, 'peer', now);
      }
    }
    expect(attempts).toEqual([0, 500, 1500, 3500]);
    expect(failedAt).toBe(5000);
    expect(r.retries).toBe(4);
  });

  it('a model of due/failed/grant outcomes over random opens, reopens, attempts, grants and prunes', () => {
    const opArb = fc.oneof(
      fc.record({ kind: fc.constant<'open'>('open'), amount: fc.bigInt(1n, 100n) }),
      fc.record({ kind: fc.constant<'reopen'>('reopen'), pick: fc.nat() }),
      fc.record({ kind: fc.constant<'attempt'>('attempt'), pick: fc.nat(), peer: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ kind: fc.constant<'grant'>('grant'), pick: fc.nat(), grantor: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ kind: fc.constant<'prune'>('prune') }),
    );
    fc.assert(
      fc.property(
        fc.record({ timeoutMs: fc.integer({ min: 0, max: 5000 }), maxRetries: fc.integer({ min: 0, max: 6 }), maxAgeMs: fc.integer({ min: 0, max: 40_000 }) }),
        fc.array(fc.tuple(opArb, fc.integer({ min: 0, max: 3000 })), { maxLength: 40 }),
        (policy, ops) => {
          const p = new PendingQuotaRequests(policy);
          interface M { id: string; createdAt: number; last: number; retries: number }
          /** Pending requests, in opening order. */
          const model: M[] = [];
          /** Granted or failed-and-pruned requests, with the grantors whose grant arrived. */
          const finished = new Map<string, { state: 'granted' | 'failed'; grantors: Set<string> }>();
          /** Every id ever opened. */
          const opened: string[] = [];
          let now = 0;
          let seq = 0;
          const backoff = (retries: number) => (retries === 0 ? 0 : Math.min(500 * 2 ** Math.min(retries - 1, 3), 4000));
          const waited = (r: M) => now - r.last >= Math.max(policy.timeoutMs, backoff(r.retries));
          // The formula the source implements (see the maxRetries 0 test for where it departs from "fails at once").
          const isFailed = (r: M) => (r.retries >= policy.maxRetries && (r.retries === 0 || waited(r))) || now - r.createdAt >= policy.maxAgeMs;
          const isDue = (r: M) => !isFailed(r) && (r.retries === 0 || waited(r));
          for (const [op, dt] of ops) {
            now += dt;
            switch (op.kind) {
              case 'open': {
                const id = `r${seq++}`;
                p.open(id, op.amount, now);
                model.push({ id, createdAt: now, last: now, retries: 0 });
                opened.push(id);
                break;
              }
              case 'reopen': {
                // Pending or finished, an id once opened is never opened again.
                const id = opened[op.pick % Math.max(opened.length, 1)];
                if (id === undefined) break;
                const before = p.get(id);
                expectError(() => p.open(id, 1n, now), EscrowError, 'DuplicateRequest');
                expect(p.get(id)).toBe(before);
                break;
              }
              case 'attempt': {
                const r = model[op.pick % Math.max(model.length, 1)];
                if (r === undefined) {
                  expectError(() => p.recordAttempt('r-none', op.peer, now), EscrowError, 'UnknownRequest');
                  for (const id of finished.keys()) expectError(() => p.recordAttempt(id, op.peer, now), EscrowError, 'UnknownRequest');
                  break;
                }
                p.recordAttempt(r.id, op.peer, now);
                r.retries++;
                r.last = now;
                break;
              }
              case 'grant': {
                // Any id ever opened, or one never opened.
                const id = opened[op.pick % (opened.length + 1)] ?? 'r-none';
                const outcome = p.grant(id, op.grantor);
                const i = model.findIndex((r) => r.id === id);
                const done = finished.get(id);
                if (i >= 0) {
                  expect(outcome.status).toBe('applied');
                  model.splice(i, 1);
                  finished.set(id, { state: 'granted', grantors: new Set([op.grantor]) });
                } else if (done === undefined) {
                  expect(outcome).toEqual({ status: 'unknown' });
                } else if (done.grantors.has(op.grantor)) {
                  expect(outcome).toEqual({ status: 'duplicate' });
                } else {
                  expect(outcome.status).toBe(done.state === 'failed' && done.grantors.size === 0 ? 'late' : 'extra');
                  done.grantors.add(op.grantor);
                }
                if (outcome.status === 'applied' || outcome.status === 'late' || outcome.status === 'extra') {
                  expect(outcome.request.requestId).toBe(id);
                }
                break;
              }
              case 'prune': {
                const expected = model.filter(isFailed).map((r) => r.id);
                expect(p.pruneFailed(now).map((r) => r.requestId)).toEqual(expected);
                for (const id of expected) finished.set(id, { state: 'failed', grantors: new Set() });
                for (let i = model.length - 1; i >= 0; i--) if (isFailed(model[i] as M)) model.splice(i, 1);
                break;
              }
            }
            expect(p.size).toBe(model.length);
            for (const r of model) {
              const q = p.get(r.id) as QuotaRequest;
              expect([q.retries, q.lastAttemptAt, q.createdAt, q.backoffMs()]).toEqual([r.retries, r.last, r.createdAt, backoff(r.retries)]);
            }
            const due = p.due(now).map((r) => r.requestId);
            const failed = p.failed(now).map((r) => r.requestId);
            expect(due).toEqual(model.filter(isDue).map((r) => r.id));
            expect(failed).toEqual(model.filter(isFailed).map((r) => r.id));
            for (const id of due) expect(failed).not.toContain(id);
            for (const id of finished.keys()) {
              expect(p.get(id)).toBeUndefined();
              expect(p.selectPeer(id, ['a', 'b'])).toBeUndefined();
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('PendingQuotaRequests: grant outcomes and refusals', () => {
  it('every GrantOutcome: applied, duplicate, extra, late, unknown', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 1000 });
    const r = p.open('r', 7n, 0);
    const other = p.open('o', 8n, 0);
    // applied: the first grant of a pending request, which it removes.
    expect(p.grant('r', 'b')).toEqual({ status: 'applied', request: r });
    expect(p.get('r')).toBeUndefined();
    expect(p.size).toBe(1);
    // duplicate: the same grantor's grant again (a retransmission), however often.
    expect(p.grant('r', 'b')).toEqual({ status: 'duplicate' });
    expect(p.grant('r', 'b')).toEqual({ status: 'duplicate' });
    // extra: another grantor granted too; then its retransmission is a duplicate.
    expect(p.grant('r', 'c')).toEqual({ status: 'extra', request: r });
    expect(p.grant('r', 'c')).toEqual({ status: 'duplicate' });
    expect(p.grant('r', 'd')).toEqual({ status: 'extra', request: r });
    // unknown: an id never opened (also in another map).
    expect(p.grant('never', 'b')).toEqual({ status: 'unknown' });
    expect(new PendingQuotaRequests().grant('r', 'b')).toEqual({ status: 'unknown' });
    // late: the first grant of a request that failed (by age) and was pruned; then extra, duplicate.
    expect(p.pruneFailed(1000)).toEqual([other]);
    expect(p.grant('o', 'c')).toEqual({ status: 'late', request: other });
    expect(p.grant('o', 'c')).toEqual({ status: 'duplicate' });
    expect(p.grant('o', 'b')).toEqual({ status: 'extra', request: other });
    expect(p.grant('o', 'b')).toEqual({ status: 'duplicate' });
    expect(p.size).toBe(0);
    expectError(() => p.recordAttempt('r', 'a', 10), EscrowError, 'UnknownRequest');
    expectError(() => p.recordAttempt('o', 'a', 10), EscrowError, 'UnknownRequest');
  });

  it('a grant from an empty or non-string grantor is InvalidNodes and changes nothing', () => {
    const p = new PendingQuotaRequests();
    const r = p.open('r', 7n, 0);
    for (const grantor of ['', 5, undefined, null, {}, ['a']]) {
      expectError(() => p.grant('r', untyped<string>(grantor)), EscrowError, 'InvalidNodes');
      expectError(() => p.grant('never', untyped<string>(grantor)), EscrowError, 'InvalidNodes');
    }
    expect(p.get('r')).toBe(r);
    expect(p.size).toBe(1);
    expect(p.grant('r', 'b')).toEqual({ status: 'applied', request: r });
    expectError(() => p.grant('r', ''), EscrowError, 'InvalidNodes');
    expect(p.grant('r', 'c')).toEqual({ status: 'extra', request: r });
  });

  it('applying outcomes through a ledger moves every granted unit exactly once', () => {
    // Each grantor gave its units up (to the wire) when it granted; the requester applies
    // applied, late and extra grants and ignores duplicates, so the wire empties and nothing is lost.
    const m = manager(120n, ['me', 'peer', 'peer2', WIRE]); // 30 each; the wire's share goes to the others
    for (const node of ['me', 'peer', 'peer2']) m.transfer(WIRE, node, 10n);
    expect([m.available('me'), m.available('peer'), m.available('peer2'), m.available(WIRE)]).toEqual([40n, 40n, 40n, 0n]);
    const p = new PendingQuotaRequests({ maxAgeMs: 1000 });
    const apply = (id: string, grantor: string, amount: bigint): GrantOutcome['status'] => {
      const outcome = p.grant(id, grantor);
      if (outcome.status === 'applied' || outcome.status === 'late' || outcome.status === 'extra') m.transfer(WIRE, 'me', amount);
      return outcome.status;
    };
    p.open('g', 5n, 0);
    m.transfer('peer', WIRE, 5n); // peer grants g
    m.transfer('peer2', WIRE, 5n); // peer2 grants g as well
    const statuses = [apply('g', 'peer', 5n), apply('g', 'peer', 5n), apply('g', 'peer2', 5n), apply('g', 'peer', 5n), apply('g', 'peer2', 5n)];
    expect(statuses).toEqual(['applied', 'duplicate', 'extra', 'duplicate', 'duplicate']);
    p.open('h', 4n, 0);
    m.transfer('peer', WIRE, 4n); // peer grants h, but the grant arrives after h failed
    expect(p.pruneFailed(1000).map((r) => r.requestId)).toEqual(['h']);
    expect([apply('h', 'peer', 4n), apply('h', 'peer', 4n)]).toEqual(['late', 'duplicate']);
    expect(m.available(WIRE)).toBe(0n);
    expect([m.available('me'), m.available('peer'), m.available('peer2')]).toEqual([54n, 31n, 35n]);
    expect(m.totalAllocated()).toBe(120n);
  });

  it('finished ids are never reopened: granted, failed and pruned, or still pending', () => {
    const p = new PendingQuotaRequests({ maxRetries: 1 });
    const r = p.open('r', 5n, 0);
    p.recordAttempt('r', 'a', 600);
    expectError(() => p.open('r', 7n, 10), EscrowError, 'DuplicateRequest');
    expect(p.get('r')).toBe(r);
    expect([r.amount, r.createdAt, r.retries, r.lastAttemptAt, r.tried]).toEqual([5n, 0, 1, 600, ['a']]);
    expect(p.size).toBe(1);
    // Failed but not pruned yet: still pending.
    expect(p.failed(1100)).toEqual([r]);
    expectError(() => p.open('r', 7n, 1100), EscrowError, 'DuplicateRequest');
    expect(p.get('r')).toBe(r);
    // Granted: finished, and the id stays used.
    expect(p.grant('r', 'a').status).toBe('applied');
    expectError(() => p.open('r', 9n, 1200), EscrowError, 'DuplicateRequest');
    expect(p.get('r')).toBeUndefined();
    expect(p.size).toBe(0);
    // Failed and pruned: the same.
    const s = p.open('s', 3n, 2000);
    p.recordAttempt('s', 'a', 2000);
    expect(p.pruneFailed(2500)).toEqual([s]);
    expectError(() => p.open('s', 3n, 2600), EscrowError, 'DuplicateRequest');
    expect(p.get('s')).toBeUndefined();
    expect(p.size).toBe(0);
    // The refused reopenings did not disturb what a grant means.
    expect(p.grant('s', 'b')).toEqual({ status: 'late', request: s });
    expect(p.grant('r', 'a')).toEqual({ status: 'duplicate' });
  });

  it('a request that fails by age, then is granted, is late (apply it), and not due or failed again', () => {
    const p = new PendingQuotaRequests({ maxAgeMs: 5000 });
    const r = p.open('r', 11n, 0);
    for (const at of [0, 500, 1500, 3500]) p.recordAttempt('r', 'peer', at);
    expect(p.failed(4999)).toEqual([]);
    // A grant after failing by age but before the prune still finds it pending.
    const s = p.open('s', 12n, 0);
    expect(p.failed(5000)).toEqual([r, s]);
    expect(p.grant('s', 'peer')).toEqual({ status: 'applied', request: s });
    expect(p.pruneFailed(5000)).toEqual([r]);
    expect(p.grant('r', 'peer')).toEqual({ status: 'late', request: r });
    expect(r.amount).toBe(11n);
    expect(p.due(10_000)).toEqual([]);
    expect(p.failed(10_000)).toEqual([]);
    expect(p.pruneFailed(10_000)).toEqual([]);
    expect(p.grant('r', 'peer')).toEqual({ status: 'duplicate' });
    expect(p.grant('r', 'other')).toEqual({ status: 'extra', request: r });
  });

  it('bad ids, amounts, clocks and policies are typed errors and change nothing', () => {
    const p = new PendingQuotaRequests();
    for (const id of ['', 5, undefined, null, {}]) expectInvalid(() => p.open(untyped<string>(id), 1n, 0));
    for (const amount of [0n, -1n, -(1n << 100n), 5, '5', undefined, null, 1.5]) {
      expectError(() => p.open('r', untyped<bigint>(amount), 0), EscrowError, 'InvalidAmount');
    }
    for (const now of [NaN, Infinity, -Infinity, '0', undefined, null, 1n]) {
      expectInvalid(() => p.open('r', 1n, untyped<number>(now)));
      expectInvalid(() => p.due(untyped<number>(now)));
      expectInvalid(() => p.failed(untyped<number>(now)));
      expectInvalid(() => p.pruneFailed(untyped<number>(now)));
    }
    expect(p.size).toBe(0);
    const r = p.open('r', 1n, 0);
    for (const now of [NaN, Infinity, '5']) expectInvalid(() => p.recordAttempt('r', 'a', untyped<number>(now)));
    expect([r.retries, r.lastAttemptAt, r.tried]).toEqual([0, 0, []]);
    expectError(() => p.recordAttempt('missing', 'a', 10), EscrowError, 'UnknownRequest');
    expect(p.size).toBe(1);
    for (const bad of [-1, 1.5, NaN, Infinity, '5', null, 5n]) {
      expectInvalid(() => new PendingQuotaRequests({ timeoutMs: untyped<number>(bad) }));
      expectInvalid(() => new PendingQuotaRequests({ maxRetries: untyped<number>(bad) }));
      expectInvalid(() => new PendingQuotaRequests({ maxAgeMs: untyped<number>(bad) }));
    }
  });

  it('a request for more than the largest escrow amount (i128 on the wire) is InvalidAmount', () => {
    // EscrowManager refuses amounts above MAX_ESCROW_LIMIT and QuotaRequest frames carry an i128,
    // so such a request could neither be sent nor granted.
    const p = new PendingQuotaRequests();
    expect(p.open('max', MAX_ESCROW_LIMIT, 0).amount).toBe(MAX_ESCROW_LIMIT);
    expectError(() => p.open('over', MAX_ESCROW_LIMIT + 1n, 0), EscrowError, 'InvalidAmount');
    expect(p.get('over')).toBeUndefined();
  });
});
