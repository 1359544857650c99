/**
 * Regression tests for the upstream crate's causality bugs (upstream-spec §12.1) and the i128 wrap
 * (§12.2 item 9). Each test is written so that the upstream behaviour would fail it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AdmitError,
  CausalMode,
  ESCALATION_POPCOUNT,
  EscalatingKernel,
  FRONTIER_WIDTH,
  I128_MAX,
  I128_MIN,
  InvariantCode,
  bloomPositions,
  createFact,
  u64le,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import {
  CounterInvariant,
  KERNEL_KINDS,
  SINGLE_KINDS,
  balanceOf,
  bloomPositivePhantoms,
  counterOf,
  delta,
  hashId,
  hex,
  makeSubject,
  prng,
  randomDag,
  randomId,
  randomTopologicalOrder,
  singleKernel,
  snapshot,
  supplyCell,
  totalSupply,
  type KernelKind,
  type Subject,
} from './helpers/kernels.js';
import { thrown } from './helpers/errors.js';

function subject(kind: KernelKind, indexCapacity = 4096, cell: Uint8Array = supplyCell(0n)): Subject {
  return makeSubject(kind, totalSupply(), { cell, indexCapacity });
}

/** Ids = `prefix` followed by bytes that differ per id (`vary(i)` fills the rest). */
function idsWithPrefix(prefix: Uint8Array, n: number, vary: (i: number, rest: Uint8Array) => void): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const id = new Uint8Array(32);
    id.set(prefix, 0);
    vary(i, id.subarray(prefix.length));
    return id;
  });
}

describe('§12.1 #1 Bloom false positives: no kernel decides causality from the Bloom clock', () => {
  it.each(KERNEL_KINDS)('%s: with the clock ~99%% saturated, Bloom-positive phantom deps are CausalityViolation', (kind) => {
    const s = subject(kind);
    const admitted = Array.from({ length: 1000 }, (_, i) => hashId(i, 1));
    for (const id of admitted) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
    expect(s.saturation()).toBeGreaterThan(0.95);

    // The Bloom alone would accept almost any never-seen id now (upstream: ~99% after 1,000 facts).
    let passes = 0;
    for (let i = 0; i < 1000; i++) if (s.clock().mightContain(randomId())) passes++;
    expect(passes).toBeGreaterThan(800);

    const phantoms = bloomPositivePhantoms(s.clock(), 100);
    expect(phantoms.length).toBe(100);
    const probes = [admitted[0]!, admitted[999]!, ...phantoms];
    const before = snapshot(s, probes);
    for (const p of phantoms) {
      expect(s.clock().mightContain(p)).toBe(true);
      expect(s.contains(p)).toBe(false);
      expect(s.tryAdmit(randomId(), [p], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.tryAdmit(randomId(), [admitted[3]!, p, admitted[4]!], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.query([p])).toBeNull();
    }
    // upstream test_causal_poison_8_deps: 7 real deps and one ghost.
    const eight = [...admitted.slice(10, 17), phantoms[0]!];
    expect(s.tryAdmit(fill(0x8d), eight, delta(1))).toBe(AdmitCode.CausalityViolation);
    const err = thrown(() => s.admit(fill(0x8d), eight, delta(1)));
    expect((err as AdmitError).code).toBe('CausalityViolation');
    expect(snapshot(s, probes)).toEqual(before);
    expect(balanceOf(s.state())).toBe(1000n);
    // The real deps alone are fine.
    expect(s.tryAdmit(fill(0x8d), eight.slice(0, 7), delta(1))).toBe(AdmitCode.Ok);
  });

  it('EscalatingKernel in Fast mode (clock below the escalation point) rejects Bloom-positive phantoms too', () => {
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 1024 });
    let i = 0;
    while (k.clock.popcount() < ESCALATION_POPCOUNT - 15) k.admitRaw(hashId(i++, 2), [], delta(1));
    expect(k.mode).toBe(CausalMode.Fast);
    const phantoms = bloomPositivePhantoms(k.clock, 10);
    expect(phantoms.length).toBe(10);
    for (const p of phantoms) {
      expect(k.tryAdmitRaw(randomId(), [p], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(k.mode).toBe(CausalMode.Fast);
    }
    expect(k.size).toBe(i);
  });
});

describe('§12.1 #2 entropy: every id byte matters', () => {
  it('ids differing only in bytes 24..31 have distinct Bloom positions and are tracked distinctly', () => {
    const prefix = crypto.getRandomValues(new Uint8Array(24));
    const ids = idsWithPrefix(prefix, 300, (i, rest) => rest.set(u64le(i + 1)));
    // Upstream fed only bytes 0..24 to the Bloom: all 300 ids had the same three positions.
    const triples = new Set(ids.map((id) => bloomPositions(id).join(',')));
    expect(triples.size).toBeGreaterThan(250);
    for (const kind of KERNEL_KINDS) {
      const s = subject(kind);
      ids.forEach((id, i) => {
        if (i % 2 === 0) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
      });
      ids.forEach((id, i) => {
        const code = s.tryAdmit(randomId(), [id], delta(1));
        expect(code).toBe(i % 2 === 0 ? AdmitCode.Ok : AdmitCode.CausalityViolation);
        expect(s.contains(id)).toBe(i % 2 === 0);
      });
      ids.forEach((id, i) => {
        expect(s.tryAdmit(id, [], delta(1))).toBe(i % 2 === 0 ? AdmitCode.DuplicateFact : AdmitCode.Ok);
      });
      expect(s.size()).toBe(150 + 150 + 150);
      expect(balanceOf(s.state())).toBe(450n);
    }
  });

  it('ids sharing bytes 0..8 (differing only in bytes 8..31) are tracked distinctly', () => {
    const prefix = crypto.getRandomValues(new Uint8Array(8));
    const ids = idsWithPrefix(prefix, 256, (i, rest) => {
      rest.fill(0);
      rest[23] = i; // only the last byte differs
    });
    expect(new Set(ids.map((id) => bloomPositions(id).join(','))).size).toBeGreaterThan(200);
    for (const kind of KERNEL_KINDS) {
      const s = subject(kind);
      for (const id of ids.slice(0, 128)) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
      for (const id of ids.slice(0, 128)) expect(s.tryAdmit(randomId(), [id], delta(1))).toBe(AdmitCode.Ok);
      for (const id of ids.slice(128)) expect(s.tryAdmit(randomId(), [id], delta(1))).toBe(AdmitCode.CausalityViolation);
      expect(s.size()).toBe(256);
    }
  });

  it.each(KERNEL_KINDS)('%s: 200 ids sharing their first 8 bytes are all admitted and all usable as deps (upstream lost 71)', (kind) => {
    const prefix = crypto.getRandomValues(new Uint8Array(8));
    const ids = idsWithPrefix(prefix, 200, (_i, rest) => crypto.getRandomValues(rest));
    expect(new Set(ids.map(hex)).size).toBe(200);
    const s = subject(kind);
    for (const id of ids) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
    expect(s.size()).toBe(200);
    for (const id of ids) expect(s.contains(id)).toBe(true);
    ids.forEach((id, i) => expect(s.tryAdmit(seq(i + 1), [id], delta(1))).toBe(AdmitCode.Ok));
    // ... and all deduplicated.
    for (const id of ids) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(s.state())).toBe(400n);
  });

  it('structured ids ([v;32], seq(i)) are all distinct deps', () => {
    const structured = [...Array.from({ length: 256 }, (_, v) => fill(v)), ...Array.from({ length: 1000 }, (_, i) => seq(i + 1))];
    for (const kind of KERNEL_KINDS) {
      const s = subject(kind);
      structured.forEach((id, i) => {
        if (i % 3 !== 0) expect(s.tryAdmit(id, [], delta(1))).toBe(AdmitCode.Ok);
      });
      structured.forEach((id, i) => {
        expect(s.tryAdmit(randomId(), [id], delta(0))).toBe(i % 3 !== 0 ? AdmitCode.Ok : AdmitCode.CausalityViolation);
      });
    }
  });
});

describe('§12.1 #3 horizon: nothing is evicted within the index capacity', () => {
  it.each(KERNEL_KINDS)('%s: after 5,000 facts the first is still a valid dep and still deduplicated', (kind) => {
    const s = subject(kind, 8192);
    for (let i = 0; i < 5000; i++) {
      if (s.tryAdmit(seq(i), i > 0 && i % 2 === 0 ? [seq(i - 1)] : [], delta(1)) !== AdmitCode.Ok) {
        throw new Error(`fact ${i} rejected`);
      }
    }
    expect(s.size()).toBe(5000);
    // Upstream kept only the most recent 512–767 ids (after 5,000 the oldest retained was 4,352).
    const before = snapshot(s, [seq(0)]);
    expect(s.tryAdmit(seq(0), [], delta(1))).toBe(AdmitCode.DuplicateFact);
    expect(snapshot(s, [seq(0)])).toEqual(before);
    expect(balanceOf(s.state())).toBe(5000n);
    for (const i of [1, 100, 511, 767, 2000, 4351]) {
      expect(s.contains(seq(i))).toBe(true);
      expect(s.tryAdmit(seq(i), [], delta(1))).toBe(AdmitCode.DuplicateFact);
    }
    expect(s.tryAdmit(fill(0xf0), [seq(0)], delta(1))).toBe(AdmitCode.Ok);
    expect(s.tryAdmit(fill(0xf1), [seq(0), seq(1), seq(4999)], delta(1))).toBe(AdmitCode.Ok);
    expect(balanceOf(s.state())).toBe(5002n);
  });
});

describe('§12.1 #4 dedup in every kernel kind (upstream: TwoLaneKernel only)', () => {
  it.each(KERNEL_KINDS)('%s: re-admitting a TotalSupply +100 fact never double-credits', (kind) => {
    const s = subject(kind);
    const x = hashId(1, 4);
    expect(s.tryAdmit(x, [], delta(100))).toBe(AdmitCode.Ok);
    expect(s.tryAdmit(x, [], delta(100))).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(s.state())).toBe(100n);
    const err = thrown(() => s.admit(x, [], delta(100)));
    expect(err).toBeInstanceOf(AdmitError);
    expect((err as AdmitError).code).toBe('DuplicateFact');
    // Much later, and with other deps: still a duplicate.
    for (let i = 0; i < 2000; i++) s.tryAdmit(hashId(i, 5), [], delta(0));
    expect(s.tryAdmit(x, [], delta(100))).toBe(AdmitCode.DuplicateFact);
    expect(s.tryAdmit(x, [hashId(7, 5)], delta(100))).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(s.state())).toBe(100n);
    expect(s.size()).toBe(2001);
  });

  it.each(SINGLE_KINDS)('%s: a replicated fact delivered twice is applied once', (kind) => {
    const k = singleKernel(kind, new CounterInvariant(), { indexCapacity: 64 });
    const f = createFact([], u64le(100));
    expect(k.tryAdmitReplicated(f)).toBe(AdmitCode.Ok);
    expect(k.tryAdmitReplicated(f)).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmit(f)).toBe(AdmitCode.DuplicateFact);
    expect(counterOf(k.state.toBytes())).toBe(100n);
  });
});

describe('§12.1 #5 EscalatingKernel Precise mode is exact, not a 16-entry FIFO', () => {
  it('accepts a dep admitted 1,000 facts earlier, and any other earlier fact', () => {
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 4096 });
    const f = hashId(0, 6);
    k.admitRaw(f, [], delta(1));
    const later = Array.from({ length: 1000 }, (_, i) => hashId(i + 1, 6));
    later.forEach((id, i) => k.admitRaw(id, [i > 0 ? later[i - 1]! : f], delta(1)));
    expect(k.mode).toBe(CausalMode.Precise);
    expect(k.tryAdmitRaw(fill(0x51), [f], delta(1))).toBe(AdmitCode.Ok);
    later.forEach((id, i) => expect(k.tryAdmitRaw(seq(i + 1), [id], delta(0))).toBe(AdmitCode.Ok));
    expect(k.tryAdmitRaw(fill(0x52), [fill(0x53)], delta(1))).toBe(AdmitCode.CausalityViolation);
    expect(balanceOf(k.state.toBytes())).toBe(1002n);
  });

  it('forced Precise from the start: a dep 20 facts back is accepted', () => {
    const k = EscalatingKernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    k.escalate();
    k.admitRaw(seq(0), [], delta(1));
    for (let i = 1; i <= 20; i++) k.admitRaw(seq(i), [], delta(1));
    expect(k.mode).toBe(CausalMode.Precise);
    expect(k.tryAdmitRaw(fill(1), [seq(0)], delta(1))).toBe(AdmitCode.Ok);
    // And Precise mode deduplicates (upstream did not).
    expect(k.tryAdmitRaw(seq(0), [], delta(1))).toBe(AdmitCode.DuplicateFact);
    expect(balanceOf(k.state.toBytes())).toBe(22n);
  });
});

describe('§12.1 #6 frontier: heads are facts nothing admitted depends on', () => {
  it.each(KERNEL_KINDS)('%s: property over random DAGs (with rejected attempts interleaved)', (kind) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (n, maxDeps, seed) => {
        const rng = prng(seed);
        const dag = randomDag(n, maxDeps, rng);
        const order = randomTopologicalOrder(dag, rng);
        const ids = dag.map((_, i) => hashId(i, seed >>> 0));
        const s = subject(kind, 128);
        const admittedOrder: number[] = [];
        const hasDependent = new Set<number>();
        const check = (): void => {
          const heads = s.frontier().map(hex);
          const pos = new Map(admittedOrder.map((node, p) => [hex(ids[node]!), p]));
          expect(heads.length).toBeLessThanOrEqual(FRONTIER_WIDTH);
          expect(new Set(heads).size).toBe(heads.length);
          const positions = heads.map((h) => pos.get(h));
          for (const p of positions) expect(p).toBeDefined(); // every head was admitted
          for (let j = 1; j < positions.length; j++) expect(positions[j]!).toBeGreaterThan(positions[j - 1]!); // oldest first
          for (const p of positions) expect(hasDependent.has(admittedOrder[p!]!)).toBe(false); // nothing depends on a head
          // Every fact among the last FRONTIER_WIDTH admitted that nothing depends on is a head.
          for (const node of admittedOrder.slice(-FRONTIER_WIDTH)) {
            if (!hasDependent.has(node)) expect(heads).toContain(hex(ids[node]!));
          }
          if (admittedOrder.length > 0) expect(heads.at(-1)).toBe(hex(ids[admittedOrder.at(-1)!]!));
        };
        for (const i of order) {
          const deps = dag[i]!.deps.map((d) => ids[d]!);
          // A rejected attempt that names current heads as deps must not remove them.
          if (rng() < 0.3) {
            const heads = s.frontier();
            expect(s.tryAdmit(ids[i]!, [...heads.slice(0, 3), randomId()], delta(1))).toBe(AdmitCode.CausalityViolation);
            check();
          }
          expect(s.tryAdmit(ids[i]!, deps, delta(1))).toBe(AdmitCode.Ok);
          admittedOrder.push(i);
          for (const d of dag[i]!.deps) hasDependent.add(d);
          check();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('§12.1 #8 content addressing: replicated facts are verified on receipt', () => {
  it.each(SINGLE_KINDS)('%s: tryAdmitReplicated with a forged id → FactIdMismatch, nothing changed', (kind) => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 0, max: 255 }), (value, bit) => {
        const k = singleKernel(kind, new CounterInvariant(), { indexCapacity: 16 });
        const root = createFact([], u64le(1));
        expect(k.tryAdmitReplicated(root)).toBe(AdmitCode.Ok);
        const f = createFact([root.id], u64le(value));
        const forged = f.id.slice();
        forged[bit >> 3] = forged[bit >> 3]! ^ (1 << (bit & 7));
        const state = k.state.toBytes();
        const clock = k.clock.toBytes();
        expect(k.tryAdmitReplicated({ id: forged, deps: f.deps, payload: f.payload })).toBe(AdmitCode.FactIdMismatch);
        expect(k.tryAdmitReplicatedRaw(forged, f.deps, f.payload)).toBe(AdmitCode.FactIdMismatch);
        // A real id attached to someone else's content is forged too.
        expect(k.tryAdmitReplicatedRaw(root.id, f.deps, f.payload)).toBe(AdmitCode.FactIdMismatch);
        expect(k.state.toBytes()).toEqual(state);
        expect(k.clock.toBytes()).toEqual(clock);
        expect(k.size).toBe(1);
        expect(k.contains(forged)).toBe(false);
        expect(k.tryAdmitReplicated(f)).toBe(AdmitCode.Ok);
        expect(counterOf(k.state.toBytes())).toBe((1n + value) & ((1n << 64n) - 1n));
      }),
      { numRuns: 100 },
    );
  });
});

describe('§12.2 #9 i128 never wraps (kernel level)', () => {
  it.each(KERNEL_KINDS)('%s: balance 2^127−1 plus 1 → InvariantViolation / Overflow, balance unchanged', (kind) => {
    const s = subject(kind, 16, supplyCell(I128_MAX));
    const before = snapshot(s, [seq(1)]);
    expect(s.tryAdmit(seq(1), [], delta(1))).toBe(AdmitCode.InvariantViolation);
    expect(s.lastInvariantError()).toBe(InvariantCode.Overflow);
    expect(s.tryAdmit(seq(1), [], delta(I128_MAX))).toBe(AdmitCode.InvariantViolation);
    const err = thrown(() => s.admit(seq(1), [], delta(1)));
    expect((err as AdmitError).code).toBe('InvariantViolation');
    expect((err as AdmitError).invariantError).toBe('Overflow');
    expect(snapshot(s, [seq(1)])).toEqual(before);
    expect(balanceOf(s.state())).toBe(I128_MAX); // upstream: wrapped to −2^127
  });

  it.each(KERNEL_KINDS)('%s: balance −2^127 minus 1 → InvariantViolation / Underflow, balance unchanged', (kind) => {
    const s = subject(kind, 16, supplyCell(I128_MIN));
    expect(s.tryAdmit(seq(1), [], delta(-1))).toBe(AdmitCode.InvariantViolation);
    expect(s.lastInvariantError()).toBe(InvariantCode.Underflow);
    expect(s.tryAdmit(seq(1), [], delta(I128_MIN))).toBe(AdmitCode.InvariantViolation);
    expect(balanceOf(s.state())).toBe(I128_MIN);
    // The extremes themselves are reachable.
    expect(s.tryAdmit(seq(1), [], delta(I128_MAX))).toBe(AdmitCode.Ok);
    expect(balanceOf(s.state())).toBe(-1n);
  });
});
