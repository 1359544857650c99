/**
 * The frontier ring holds the heads' ids (docs/FORMATS.md §5), and the recent-admissions cache
 * holds ids too. What must hold whatever the interleaving:
 * - the frontier is exactly a simple model's: a new fact drops every head it depends on and
 *   becomes the newest head, the oldest of 8 falls off; a rejected fact changes nothing;
 * - ids that share a first word (the filter of the cache and the ring) are told apart;
 * - an attached reader's `sync()` sees the ids the writer published, nothing later;
 * - the cache never outlives a reset, even one by another instance on the same memory;
 * - a restored image behaves like the kernel it was taken from, and a reset ring is all zeros.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdmitCode, FRONTIER_WIDTH, I128_MAX, Kernel, RESTORE_IMAGE, toHex } from './helpers/lib.js';
import { KERNEL_KINDS, delta, hex, makeSubject, randomId, supplyCell, totalSupply, type Subject } from './helpers/kernels.js';

/** Bytes of the live frontier ring in the control block (docs/FORMATS.md §5). */
const RING_AT = 192;
const RING_BYTES = 256;

/** The frontier's rule, on hex ids: deps leave, the new fact joins last, the oldest of 8 falls off. */
class FrontierModel {
  heads: string[] = [];
  admit(id: Uint8Array, deps: readonly Uint8Array[]): void {
    const gone = new Set(deps.map(hex));
    this.heads = this.heads.filter((h) => !gone.has(h));
    this.heads.push(hex(id));
    if (this.heads.length > FRONTIER_WIDTH) this.heads.shift();
  }
}

/**
 * Fresh ids whose first word is one of two values, so most of them share it with a head or a
 * recent admission: every lookup past the filter is decided by the full compare.
 */
function collidingIds(): () => Uint8Array {
  let n = 0;
  return () => {
    const id = new Uint8Array(32);
    id[0] = n & 1;
    new DataView(id.buffer).setUint32(28, ++n, true); // unique in the last word only
    return id;
  };
}

/** `id` with its last byte changed: same first word, another id. */
function nearMiss(id: Uint8Array): Uint8Array {
  const out = id.slice();
  out[31] = out[31]! ^ 0x80;
  return out;
}

type Op =
  | { readonly kind: 'root' }
  | { readonly kind: 'chain' }
  | { readonly kind: 'heads'; readonly picks: readonly number[] }
  | { readonly kind: 'old'; readonly pick: number }
  | { readonly kind: 'duplicate'; readonly pick: number }
  | { readonly kind: 'unknownDep'; readonly pick: number; readonly nearMiss: boolean }
  | { readonly kind: 'refused'; readonly picks: readonly number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'root' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'chain' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('heads' as const), picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('old' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unknownDep' as const), pick: fc.nat(), nearMiss: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refused' as const), picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }) },
);

/** Runs `ops` against `s` and the model, checking the frontier after every one. */
function run(s: Subject, ops: readonly Op[]): void {
  const model = new FrontierModel();
  const admitted: Uint8Array[] = [];
  const next = collidingIds();
  const headIds = (): Uint8Array[] => s.frontier();
  const pickHeads = (picks: readonly number[]): Uint8Array[] => {
    const heads = headIds();
    return heads.length === 0 ? [] : [...new Set(picks.map((p) => p % heads.length))].map((i) => heads[i]!);
  };
  const admit = (deps: Uint8Array[]): void => {
    const id = next();
    expect(s.tryAdmit(id, deps, delta(1))).toBe(AdmitCode.Ok);
    admitted.push(id);
    model.admit(id, deps);
  };
  const refuse = (id: Uint8Array, deps: Uint8Array[], payload: Uint8Array, code: number): void => {
    expect(s.tryAdmit(id, deps, payload)).toBe(code);
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'root':
        admit([]);
        break;
      case 'chain':
        admit(admitted.length === 0 ? [] : [admitted.at(-1)!]);
        break;
      case 'heads':
        admit(pickHeads(op.picks));
        break;
      case 'old':
        admit(admitted.length === 0 ? [] : [admitted[op.pick % admitted.length]!]);
        break;
      case 'duplicate':
        if (admitted.length > 0) refuse(admitted[op.pick % admitted.length]!, [], delta(1), AdmitCode.DuplicateFact);
        break;
      case 'unknownDep': {
        // Current heads first (they must stay heads), then a dep never admitted.
        const heads = headIds();
        const unknown = op.nearMiss && heads.length > 0 ? nearMiss(heads[op.pick % heads.length]!) : randomId();
        refuse(next(), [...heads.slice(0, 3), unknown], delta(1), AdmitCode.CausalityViolation);
        break;
      }
      case 'refused':
        // The balance never goes below 0: taking more than was ever added is refused.
        refuse(next(), pickHeads(op.picks), delta(-1_000_000), AdmitCode.InvariantViolation);
        break;
    }
    expect(s.frontier().map(hex)).toEqual(model.heads);
  }
}

describe('the frontier follows the model', () => {
  it.each(KERNEL_KINDS)('%s: random interleavings of roots, chains, facts on heads or older facts, and rejections', (kind) => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        run(makeSubject(kind, totalSupply(), { cell: supplyCell(0n, 0n, I128_MAX), indexCapacity: 256 }), ops);
      }),
      { numRuns: 80 },
    );
  });

  it('a long chain, then many roots, then facts on several heads and on facts long gone from the frontier', () => {
    const s = makeSubject('Kernel', totalSupply(), { cell: supplyCell(0n), indexCapacity: 1 << 14 });
    const model = new FrontierModel();
    const next = collidingIds();
    const admitted: Uint8Array[] = [];
    const admit = (deps: Uint8Array[]): Uint8Array => {
      const id = next();
      expect(s.tryAdmit(id, deps, delta(1))).toBe(AdmitCode.Ok);
      model.admit(id, deps);
      admitted.push(id);
      return id;
    };
    let prev = admit([]);
    for (let i = 0; i < 5_000; i++) prev = admit([prev]);
    expect(s.frontier().map(hex)).toEqual([hex(prev)]);
    for (let i = 0; i < 1_000; i++) admit([]);
    expect(s.frontier().map(hex)).toEqual(model.heads);
    expect(model.heads).toHaveLength(FRONTIER_WIDTH);
    const heads = s.frontier();
    admit([heads[1]!, heads[5]!, admitted[10]!]);
    admit([heads[0]!, admitted[4_000]!]);
    admit([admitted[2_500]!]);
    expect(s.frontier().map(hex)).toEqual(model.heads);
    // A rejected fact naming every head changes nothing.
    expect(s.tryAdmit(next(), [...s.frontier(), randomId()], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(s.frontier().map(hex)).toEqual(model.heads);
  });
});

describe('readers and resets', () => {
  it('an attached reader sees the published frontier ids, and nothing admitted after the publish', () => {
    const w = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 256 });
    const model = new FrontierModel();
    const next = collidingIds();
    const admit = (deps: Uint8Array[]): Uint8Array => {
      const id = next();
      w.admitRaw(id, deps, delta(1));
      model.admit(id, deps);
      return id;
    };
    // Eleven roots: the ring has wrapped, its start is not slot 0.
    for (let i = 0; i < 11; i++) admit([]);
    const heads = w.frontier();
    admit([heads[2]!, heads[6]!]);
    w.publish();
    const published = [...model.heads];
    const r = Kernel.attach(w.shared, totalSupply());
    expect(r.sync().frontier.map(hex)).toEqual(published);
    expect(w.frontier().map(hex)).toEqual(published);

    // Admitted, not yet published: the reader's snapshot is still the last publish.
    let last = admit(w.frontier());
    expect(r.sync().frontier.map(hex)).toEqual(published);
    w.publish();
    expect(r.sync().frontier.map(hex)).toEqual([hex(last)]);
    // A frontier shrinking from 8 heads to 1 and growing again, each published.
    for (let i = 0; i < 9; i++) admit([]);
    w.publish();
    expect(r.sync().frontier.map(hex)).toEqual(model.heads);
    last = admit(w.frontier().slice(0, 4));
    w.publish();
    expect(r.sync().frontier.map(hex)).toEqual(model.heads);
    expect(model.heads.at(-1)).toBe(hex(last));
    // The ids returned are copies.
    r.sync().frontier[0]!.fill(0);
    expect(r.sync().frontier.map(hex)).toEqual(model.heads);
  });

  it("the recent cache never outlives a reset, even another instance's on the same memory", () => {
    const a = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    const x = collidingIds()();
    a.admitRaw(x, [], delta(1)); // in a's cache now
    const b = Kernel.attach(a.shared, totalSupply());
    b.reset(supplyCell(0n)); // b takes over as the writer and forgets everything
    expect(a.tryAdmitRaw(randomId(), [x], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(a.frontier()).toEqual([]);
    // Admitted again (by b), it is a dep again for a.
    b.admitRaw(x, [], delta(1));
    const y = randomId();
    expect(a.tryAdmitRaw(y, [x], delta(1))).toBe(AdmitCode.Ok);
    expect(a.frontier().map(hex)).toEqual([hex(y)]);
    // The same for a restore.
    a.admitRaw(randomId(), [y], delta(1));
    b[RESTORE_IMAGE](Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 }).historyImage());
    expect(a.tryAdmitRaw(randomId(), [y], delta(1))).toBe(AdmitCode.CausalityViolation);
  });

  it('a reset leaves the ring bytes (and the digest) exactly as a fresh kernel’s', () => {
    const k = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    for (let i = 0; i < 12; i++) k.admitRaw(randomId(), [], delta(1));
    expect(new Uint8Array(k.shared.control, RING_AT, RING_BYTES).some((b) => b !== 0)).toBe(true);
    k.reset(supplyCell(0n));
    expect(new Uint8Array(k.shared.control, RING_AT, RING_BYTES).every((b) => b === 0)).toBe(true);
    expect(toHex(k.digest())).toBe(toHex(Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 }).digest()));
  });

  it('a restored image has the same frontier and goes on exactly like the kernel it was taken from', () => {
    const make = (): Kernel => Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 256 });
    const original = make();
    const next = collidingIds();
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const id = next();
      original.admitRaw(id, i % 3 === 0 || ids.length === 0 ? [] : [ids.at(-1)!], delta(1));
      ids.push(id);
    }
    const restored = make();
    restored[RESTORE_IMAGE](original.historyImage());
    expect(restored.frontier().map(hex)).toEqual(original.frontier().map(hex));
    expect(toHex(restored.digest())).toBe(toHex(original.digest()));
    for (const k of [original, restored]) {
      const heads = k.frontier();
      k.admitRaw(fixedId(1), [heads[0]!, heads.at(-1)!], delta(1));
      k.admitRaw(fixedId(2), [ids[5]!], delta(1));
    }
    expect(restored.frontier().map(hex)).toEqual(original.frontier().map(hex));
    expect(toHex(restored.digest())).toBe(toHex(original.digest()));
  });
});

function fixedId(n: number): Uint8Array {
  return new Uint8Array(32).fill(0xf0 + n);
}
