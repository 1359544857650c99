/**
 * Kernels over a tiered exact history (hot table, sorted runs; docs/ARCHITECTURE.md §3), with
 * tiny hot tables so that a few hundred facts freeze and merge many times:
 * - every kernel kind agrees with a model (admitted set, balance with a floor, frontier) at every
 *   step, with duplicates, unknown deps and invariant refusals interleaved — a rejection changes
 *   nothing, whichever tier the fact it names lives in;
 * - an old dep and an old duplicate are decided exactly once their ids sit in runs;
 * - the digest and the image do not depend on how the tiers stand (hot capacity, compaction);
 * - the optional limits (`indexCapacity`, `historyBudgetBytes`) refuse with the figures and
 *   change nothing; there is no limit without them;
 * - reset forgets every tier; an attached instance sees old ids.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdmitCode, I128_MAX, Kernel, TenantKernel, TwoLaneKernel, factId } from './helpers/lib.js';
import { KERNEL_KINDS, balanceOf, delta, hex, makeSubject, supplyCell, totalSupply } from './helpers/kernels.js';
import { thrown } from './helpers/errors.js';

interface Admitted {
  readonly id: Uint8Array;
  readonly deps: readonly Uint8Array[];
  readonly payload: Uint8Array;
}

type Op =
  | { t: 'new'; deps: number[]; amount: number }
  | { t: 'dup'; pick: number }
  | { t: 'unknownDep'; pick: number }
  | { t: 'overdraw' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant('new' as const), deps: fc.array(fc.nat(), { maxLength: 3 }), amount: fc.integer({ min: -3, max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('dup' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('unknownDep' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'overdraw' as const }) },
);

describe('kernels over a tiered history agree with a model', () => {
  it.each(KERNEL_KINDS)('%s: across many freezes and merges, with rejections interleaved (fast-check)', (kind) => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 50, maxLength: 500 }), fc.integer({ min: 1, max: 8 }), (ops, hot) => {
        const subject = makeSubject(kind, totalSupply(), { cell: supplyCell(0n, 0n, I128_MAX), historyHotCapacity: hot, indexCapacity: 100_000 });
        const admitted: Admitted[] = [];
        const ids = new Set<string>();
        let balance = 0n;
        let nonce = 0;
        const frontier: string[] = [];
        const fresh = (deps: readonly Uint8Array[], amount: number): Admitted => {
          const payload = new Uint8Array(20);
          payload.set(delta(amount));
          new DataView(payload.buffer).setUint32(16, ++nonce, true);
          return { id: factId(deps, payload), deps, payload };
        };
        for (const o of ops) {
          const before = { size: subject.size(), state: hex(subject.state()), frontier: subject.frontier().map(hex) };
          let expected: number;
          let fact: Admitted;
          if (o.t === 'new' || o.t === 'overdraw') {
            // Deps anywhere in the history: the oldest ids sit in the largest run.
            const deps = o.t === 'new' && admitted.length > 0 ? [...new Set(o.deps.map((d) => d % admitted.length))].map((d) => admitted[d]!.id) : [];
            const amount = o.t === 'overdraw' ? -(Number(balance) + 1) : o.amount;
            fact = fresh(deps, amount);
            expected = balance + BigInt(amount) < 0n ? AdmitCode.InvariantViolation : AdmitCode.Ok;
          } else if (o.t === 'dup') {
            if (admitted.length === 0) continue;
            fact = admitted[o.pick % admitted.length]!;
            expected = AdmitCode.DuplicateFact;
          } else {
            const unknown = fresh([], 1).id;
            const deps = admitted.length > 0 ? [admitted[o.pick % admitted.length]!.id, unknown] : [unknown];
            fact = fresh(deps, 1);
            expected = AdmitCode.CausalityViolation;
          }
          const code = subject.tryAdmit(fact.id, fact.deps, fact.payload);
          expect(code).toBe(expected);
          if (code === AdmitCode.Ok) {
            admitted.push(fact);
            ids.add(hex(fact.id));
            balance += BigInt(new DataView(fact.payload.buffer).getBigInt64(0, true));
            const gone = new Set(fact.deps.map(hex));
            for (let i = frontier.length - 1; i >= 0; i--) if (gone.has(frontier[i]!)) frontier.splice(i, 1);
            frontier.push(hex(fact.id));
            if (frontier.length > 8) frontier.shift();
          } else {
            expect({ size: subject.size(), state: hex(subject.state()), frontier: subject.frontier().map(hex) }).toEqual(before);
          }
          expect(subject.size()).toBe(ids.size);
          expect(balanceOf(subject.state())).toBe(balance);
          expect(subject.frontier().map(hex)).toEqual(frontier);
        }
        // Every id, whatever its tier, is found and refused again as a duplicate.
        for (const f of admitted) {
          expect(subject.contains(f.id)).toBe(true);
          expect(subject.tryAdmit(f.id, f.deps, f.payload)).toBe(AdmitCode.DuplicateFact);
        }
        expect(subject.size()).toBe(ids.size);
      }),
      { numRuns: 25 },
    );
  });
});

/** A chain of `n` facts (each on the previous), +1 each. */
function chain(kernel: Kernel | TwoLaneKernel, n: number, salt = 0): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const payload = new Uint8Array(20);
    payload.set(delta(1));
    new DataView(payload.buffer).setUint32(16, i + salt * 1_000_000, true);
    const deps = out.length === 0 ? [] : [out[out.length - 1]!];
    const id = factId(deps, payload);
    expect(kernel.tryAdmitRaw(id, deps, payload)).toBe(AdmitCode.Ok);
    out.push(id);
  }
  return out;
}

describe('old ids in runs', () => {
  it('an old dep admits and an old duplicate is refused, with the id in the largest run; a fact on an unknown dep does not', () => {
    const kernel = new TwoLaneKernel(totalSupply(), { historyHotCapacity: 16 });
    const ids = chain(kernel, 2_000);
    const m = kernel.historyMemory();
    expect(m.runs.ids).toBeGreaterThan(1_900);
    expect(m.runs.count).toBeGreaterThan(1);
    expect(m.hot.ids + m.frozen.ids + m.runs.ids).toBe(2_000);
    for (const k of [0, 1, 500, 1_023, 1_990, 1_999]) {
      const payload = delta(1);
      const onOld = factId([ids[k]!], payload);
      expect(kernel.tryAdmitRaw(onOld, [ids[k]!], payload)).toBe(AdmitCode.Ok);
      expect(kernel.tryAdmitRaw(ids[k]!, k === 0 ? [] : [ids[k - 1]!], delta(1))).toBe(AdmitCode.DuplicateFact);
    }
    const unknown = factId([], delta(99));
    expect(kernel.tryAdmitRaw(factId([unknown], delta(1)), [unknown], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(kernel.exactIndex.containsAll(ids)).toBe(true);
    expect(kernel.size).toBe(2_006);
  });

  it('an attached instance (as another thread would hold) sees old ids after the writer publishes', () => {
    const kernel = Kernel.withState(totalSupply(), supplyCell(0n), { historyHotCapacity: 8 });
    const ids = chain(kernel, 300);
    kernel.publish();
    const reader = Kernel.attach(kernel.shared, totalSupply());
    reader.sync();
    for (const id of ids) expect(reader.contains(id)).toBe(true);
    expect(reader.size).toBe(300);
    chain(kernel, 100, 1);
    kernel.publish();
    reader.sync();
    expect(reader.size).toBe(400);
    for (const id of ids) expect(reader.contains(id)).toBe(true);
  });
});

describe('the tiers do not show', () => {
  it('kernels with different hot capacities that admitted the same facts have equal digests and images', () => {
    const a = new TwoLaneKernel(totalSupply(), { historyHotCapacity: 4 });
    const b = new TwoLaneKernel(totalSupply(), { historyHotCapacity: 1_000 });
    const c = new TwoLaneKernel(totalSupply());
    for (const k of [a, b, c]) chain(k, 700);
    expect(a.historyMemory().runs.ids).toBeGreaterThan(0);
    expect(b.historyMemory().runs.ids).toBe(0);
    expect(hex(a.digest())).toBe(hex(b.digest()));
    expect(hex(a.digest())).toBe(hex(c.digest()));
    expect([...a.exactIndex.ids()].map(hex).sort()).toEqual([...c.exactIndex.ids()].map(hex).sort());
  });

  it('reset forgets every tier and the kernel starts over', () => {
    const kernel = new TwoLaneKernel(totalSupply(), { historyHotCapacity: 8 });
    const ids = chain(kernel, 200);
    kernel.reset();
    expect(kernel.size).toBe(0);
    for (const id of ids) expect(kernel.contains(id)).toBe(false);
    const m = kernel.historyMemory();
    expect([m.runs.count, m.frozen.tables, m.hot.ids]).toEqual([0, 0, 0]);
    expect(m.total).toBe(m.hot.bytes + m.spare.bytes);
    expect(chain(kernel, 200)).toEqual(ids);
  });
});

describe('limits are opt-in', () => {
  it('no limit by default: a kernel admits far past the old 2^20 horizon', () => {
    const kernel = new Kernel(totalSupply(), { historyHotCapacity: 1 << 12 });
    expect(kernel.indexCapacity).toBe(Infinity);
    const payload = new Uint8Array(20);
    const words = new DataView(payload.buffer);
    const id = new Uint8Array(32);
    const idWords = new DataView(id.buffer);
    // Ids need not be content addresses for tryAdmitRaw: distinct counters are enough here.
    for (let i = 0; i < (1 << 20) + 1_000; i++) {
      idWords.setUint32(0, i, true);
      idWords.setUint32(8, Math.imul(i, 0x9e3779b1), true);
      words.setUint32(16, i, true);
      if (kernel.tryAdmitRaw(id, [], payload) !== AdmitCode.Ok) throw new Error(`refused at ${i}`);
    }
    expect(kernel.size).toBe((1 << 20) + 1_000);
    idWords.setUint32(0, 7, true);
    idWords.setUint32(8, Math.imul(7, 0x9e3779b1), true);
    expect(kernel.tryAdmitRaw(id, [], payload)).toBe(AdmitCode.DuplicateFact);
  }, 120_000);

  it('indexCapacity refuses the fact after the limit with CausalHorizonExceeded and changes nothing', () => {
    const kernel = new TwoLaneKernel(totalSupply(), { indexCapacity: 50, historyHotCapacity: 8 });
    const ids = chain(kernel, 50);
    const payload = delta(1);
    const next = factId([ids[49]!], payload);
    const before = hex(kernel.digest());
    expect(kernel.tryAdmitRaw(next, [ids[49]!], payload)).toBe(AdmitCode.CausalHorizonExceeded);
    const error = thrown(() => kernel.admitRaw(next, [ids[49]!], payload));
    expect(error).toMatchObject({ code: 'CausalHorizonExceeded' });
    expect((error as Error).message).toContain('id limit (50 ids)');
    expect(hex(kernel.digest())).toBe(before);
    expect(kernel.tryAdmitRaw(ids[3]!, [ids[2]!], delta(1))).toBe(AdmitCode.DuplicateFact);
  });

  it('historyBudgetBytes refuses new facts once the history holds more, with the figures, and changes nothing', () => {
    const kernel = new TwoLaneKernel(totalSupply(), { historyHotCapacity: 64, historyBudgetBytes: 200_000 });
    let last: Uint8Array[] = [];
    let code: number = AdmitCode.Ok;
    let n = 0;
    while (code === AdmitCode.Ok && n < 100_000) {
      const payload = new Uint8Array(20);
      new DataView(payload.buffer).setUint32(16, n++, true);
      const id = factId(last, payload);
      code = kernel.tryAdmitRaw(id, last, payload);
      if (code === AdmitCode.Ok) last = [id];
    }
    expect(code).toBe(AdmitCode.CausalHorizonExceeded);
    const size = kernel.size;
    const payload = delta(5);
    const error = thrown(() => kernel.admitRaw(factId(last, payload), last, payload));
    expect(error).toMatchObject({ code: 'CausalHorizonExceeded' });
    expect((error as Error).message).toMatch(new RegExp(`${size} ids held in \\d+ bytes .*budget 200000 bytes`));
    expect(kernel.size).toBe(size);
    expect(kernel.historyMemory().total).toBeGreaterThan(150_000);
  });

  it('a TenantKernel keeps each tenant in small hot tables and its own runs', () => {
    const tk = new TenantKernel(totalSupply(), { maxTenants: 2, historyHotCapacity: 16 });
    tk.registerTenant(1, supplyCell(0n));
    tk.registerTenant(2, supplyCell(0n));
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) {
      const payload = new Uint8Array(20);
      payload.set(delta(1));
      new DataView(payload.buffer).setUint32(16, i, true);
      const deps = ids.length === 0 ? [] : [ids[ids.length - 1]!];
      const id = factId(deps, payload);
      expect(tk.tryAdmit(1, id, deps, payload)).toBe(AdmitCode.Ok);
      ids.push(id);
    }
    expect(tk.size(1)).toBe(500);
    expect(tk.size(2)).toBe(0);
    expect(tk.tryAdmit(2, factId([ids[0]!], delta(1)), [ids[0]!], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(tk.tryAdmit(1, factId([ids[0]!], delta(1)), [ids[0]!], delta(1))).toBe(AdmitCode.Ok);
  });
});
