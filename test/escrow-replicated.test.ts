/**
 * Escrow as replicated facts, without a network: random spends, grants and hint losses on a
 * cluster of real kernels, delivered between nodes in random causal orders (test/harness/
 * escrow-world.ts checks the promises after every step).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AdmitCode, EscrowCode, EscrowKind, EscrowLedger, BoundedGCounterInvariant, BoundedCounterState, Resource, decodeEscrowFact, factId } from './helpers/lib.js';
import { EscrowWorld } from './harness/escrow-world.js';

type Op =
  | { t: 'spend'; node: number; amount: number; negative: boolean }
  | { t: 'deliver'; to: number; from: number; pick: number }
  | { t: 'hint'; index: number; drop: boolean }
  | { t: 'tick'; ms: number };

const op = (nodes: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('spend' as const), node: fc.nat(nodes - 1), amount: fc.integer({ min: 1, max: 40 }), negative: fc.boolean() }) },
    { weight: 6, arbitrary: fc.record({ t: fc.constant('deliver' as const), to: fc.nat(nodes - 1), from: fc.nat(nodes - 1), pick: fc.nat(5) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('hint' as const), index: fc.nat(50), drop: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 700 }) }) },
  );

function play(world: EscrowWorld, ops: readonly Op[], nodes: number): void {
  for (const o of ops) {
    if (o.t === 'spend') {
      if (o.node >= nodes) continue;
      const amount = BigInt(o.amount);
      const code = world.spend(o.node, world.kind === 'supply' && o.negative ? -amount : amount);
      expect([AdmitCode.Ok, AdmitCode.EscrowExhausted]).toContain(code);
    } else if (o.t === 'deliver') {
      if (o.to !== o.from && o.to < nodes && o.from < nodes) world.deliver(o.to, o.from, o.pick);
    } else if (o.t === 'hint') {
      if (world.hints.length > 0) world.hint(o.index, o.drop);
    } else world.tick(o.ms);
    expect(world.check()).toEqual([]);
  }
  // Heal: every hint delivered, every fact everywhere; then every replica holds the same ledger.
  while (world.hints.length > 0) world.hint(0, false);
  world.syncAll();
  expect(world.check()).toEqual([]);
  const prints = world.fingerprints();
  expect(new Set(prints).size).toBe(1);
}

describe('escrow as replicated facts', () => {
  it('a bounded counter: never oversold, no replica refuses what its origin accepted, ledgers equal after sync', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.array(op(4), { minLength: 1, maxLength: 120 }), (n, limit, ops) => {
        const world = new EscrowWorld('counter', ['a', 'b', 'c', 'd'].slice(0, n), BigInt(limit), { lowWater: 5n, refill: 10n, maxRetries: 3 });
        play(world, ops, n);
      }),
      { numRuns: 300 },
    );
  });

  it('a total supply with a floor and a ceiling: increments create the rights decrements use', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.array(op(4), { minLength: 1, maxLength: 120 }), (n, limit, ops) => {
        const world = new EscrowWorld('supply', ['a', 'b', 'c', 'd'].slice(0, n), BigInt(limit), { lowWater: 5n, refill: 10n, maxRetries: 3 });
        play(world, ops, n);
      }),
      { numRuns: 300 },
    );
  });

  it('a rush on every node sells the whole limit through requests and grants, and not one more', () => {
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 1000n);
    let sold = 0n;
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 3; i++) if (world.spend(i, 7n) === AdmitCode.Ok) sold += 7n;
      while (world.hints.length > 0) world.hint(0, false);
      world.syncAll();
      world.tick(10);
      expect(world.check()).toEqual([]);
    }
    // 1000 is not a multiple of 7: the last 6 (1000 − 142·7) can only go in smaller pieces.
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 3; i++) if (world.spend(i, 1n) === AdmitCode.Ok) sold += 1n;
      while (world.hints.length > 0) world.hint(0, false);
      world.syncAll();
      world.tick(10);
    }
    expect(sold).toBe(1000n);
    expect(world.check()).toEqual([]);
    expect(world.spend(0, 1n)).toBe(AdmitCode.EscrowExhausted);
    expect(new Set(world.fingerprints()).size).toBe(1);
    const grants = world.nodes[0]!.log.filter((f) => decodeEscrowFact(world.nodes[0]!.agent.adapter, f.payload)?.kind === EscrowKind.Grant).length;
    expect(grants).toBeGreaterThan(0);
  });

  it('a repeated request gets no second grant; a lost grant request is retried with another peer', () => {
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 300n, { lowWater: 1n, refill: 10n });
    expect(world.spend(0, 100n)).toBe(AdmitCode.Ok);
    // Below the low-water mark: a asks for the refill (10) in the background…
    expect(world.hints).toHaveLength(1);
    // …and one request at a time: being short again asks nothing more.
    expect(world.spend(0, 5n)).toBe(AdmitCode.EscrowExhausted);
    expect(world.hints).toHaveLength(1);
    const [from, to, hint] = world.hints[0]!;
    world.hint(0, false);
    world.node(to).agent.onHint(from, hint, world.now); // the same request again
    const grantsBy = (n: string): number => world.node(n).log.filter((f) => decodeEscrowFact(world.node(n).agent.adapter, f.payload)?.kind === EscrowKind.Grant).length;
    expect(grantsBy(to)).toBe(1);
    world.syncAll();
    expect(world.node('a').agent.available(Resource.Up)).toBe(10n);
    expect(world.node('a').agent.counters.grantsReceived).toBe(1);
    // A request that is lost goes to the other peer after the timeout.
    expect(world.spend(0, 20n)).toBe(AdmitCode.EscrowExhausted);
    expect(world.hints).toHaveLength(1);
    const first = world.hints[0]![1];
    world.hint(0, true);
    world.tick(600);
    expect(world.hints).toHaveLength(1);
    expect(world.hints[0]![1]).not.toBe(first);
    expect(world.check()).toEqual([]);
  });

  it('a denial sends the requester to the next peer at once', () => {
    // No low-water requests here: only the one the test makes.
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 30n, { lowWater: 0n, refill: 1n });
    expect(world.spend(1, 10n)).toBe(AdmitCode.Ok);
    world.syncAll();
    expect(world.spend(0, 9n)).toBe(AdmitCode.Ok);
    expect(world.spend(0, 5n)).toBe(AdmitCode.EscrowExhausted);
    expect(world.hints).toHaveLength(1);
    // The ledger shows c as the richest: the request goes there.
    expect(world.hints[0]![1]).toBe('c');
    world.syncAll();
    world.hint(0, true);
    world.tick(600);
    const [, to] = world.hints[0]!;
    expect(to).toBe('b');
    world.hint(0, false); // b has nothing: a denial comes back
    expect(world.hints[0]![2].type).toBe('denial');
    world.hint(0, false);
    expect(world.hints[0]![1]).toBe('c'); // asked again at once, no backoff wait
    world.hint(0, false);
    world.syncAll();
    expect(world.node('a').agent.available(Resource.Up)).toBe(6n);
    expect(world.spend(0, 5n)).toBe(AdmitCode.Ok);
    expect(world.check()).toEqual([]);
  });

  it('reclaims a dead node’s rights once, and closes its chain', () => {
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 300n);
    expect(world.spend(2, 40n)).toBe(AdmitCode.Ok);
    world.syncAll();
    // c is gone for good. a reclaims what c had left (60), naming c's last fact.
    expect(world.nodes[0]!.agent.tryAdmitReclaim('c')).toBe(AdmitCode.Ok);
    world.syncAll();
    expect(world.check()).toEqual([]);
    expect(world.nodes[1]!.ledger.holder('c')).toMatchObject({ fenced: true, available: [0n, 0n] });
    expect(world.nodes[1]!.ledger.available('a', Resource.Up)).toBe(160n);
    // c's own ledger has the reclaim too: c can spend nothing more.
    expect(world.spend(2, 1n)).toBe(AdmitCode.InvariantViolation);
    expect(world.nodes[2]!.agent.lastRefusal).toBe(EscrowCode.Fenced);
  });

  it('a reclaimed node’s requests get nothing; a wait ends at its deadline', async () => {
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 300n, { lowWater: 0n, refill: 1n });
    expect(world.nodes[0]!.agent.tryAdmitReclaim('c')).toBe(AdmitCode.Ok);
    const before = world.nodes[0]!.log.length;
    world.nodes[0]!.agent.onHint('c', { type: 'request', requestId: new Uint8Array(16).fill(1), resource: Resource.Up, amount: 5n }, world.now);
    expect(world.nodes[0]!.log.length).toBe(before); // no grant fact
    expect(world.hints).toEqual([]); // and no denial either: c is out of the cluster
    // b waits for more than anyone can give it before its deadline: false at the first tick past it.
    expect(world.spend(1, 100n)).toBe(AdmitCode.Ok);
    world.hints.length = 0;
    const waited = world.nodes[1]!.agent.waitFor(Resource.Up, 1_000n, world.now + 100);
    world.tick(150);
    await expect(waited).resolves.toBe(false);
  });

  it('the hazard: a fenced node that was not dead forks the ledgers (refusals name it)', () => {
    const world = new EscrowWorld('counter', ['a', 'b', 'c'], 300n);
    expect(world.spend(2, 40n)).toBe(AdmitCode.Ok);
    world.syncAll();
    expect(world.nodes[0]!.agent.tryAdmitReclaim('c')).toBe(AdmitCode.Ok);
    // c was only cut off: it spends before it hears of the reclaim.
    expect(world.spend(2, 10n)).toBe(AdmitCode.Ok);
    world.syncAll();
    // a and b refuse c's spend (c is fenced); c refuses the reclaim (it names an old head).
    expect(world.violations.filter((v) => v.includes('refused'))).toHaveLength(3);
    world.violations.length = 0;
    // Still never oversold, anywhere.
    expect(world.check()).toEqual([]);
    expect(world.fingerprints()[0]).toBe(world.fingerprints()[1]);
    expect(world.fingerprints()[0]).not.toBe(world.fingerprints()[2]);
  });
});

describe('the ledger refuses what does not follow', () => {
  const setup = () => {
    const inv = new BoundedGCounterInvariant();
    const initial = new BoundedCounterState(0n, 100n).toBytes();
    const ledger = EscrowLedger.create(inv, 'x', ['a', 'b'], initial);
    const g = ledger.genesisFact();
    expect(ledger.check(g.id, g.deps, g.payload)).toBe(EscrowCode.Ok);
    ledger.commit(g.id);
    return { inv, initial, ledger, g };
  };

  it('another genesis, a second branch, a spend beyond the origin’s rights, a non-escrow payload', () => {
    const { inv, initial, ledger, g } = setup();
    const other = EscrowLedger.create(inv, 'x', ['a', 'c'], initial).genesisFact();
    expect(ledger.check(other.id, other.deps, other.payload)).toBe(EscrowCode.GenesisMismatch);
    expect(ledger.check(g.id, [], new Uint8Array(8))).toBe(EscrowCode.NotEscrowFact);
    expect(ledger.holder('a')?.quota).toEqual([0n, 50n]);
    // Facts of a, built with a's own ledger.
    const a = EscrowLedger.create(inv, 'a', ['a', 'b'], initial);
    a.check(g.id, [], g.payload);
    a.commit(g.id);
    const spends: { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array }[] = [];
    // Hand-built spends: delta, then the trailer (via decode round trip of the agent's encoder).
    const mk = (seq: number, head: Uint8Array, delta: bigint) => {
      const payload = new Uint8Array(8 + 16 + 1);
      new DataView(payload.buffer).setBigUint64(0, delta, true);
      payload.set([0x43, 0x54, 0x46, 0x45, 1, 2, 1, 0], 8);
      new DataView(payload.buffer).setBigUint64(16, BigInt(seq), true);
      payload[24] = 'a'.charCodeAt(0);
      const deps = [head];
      return { id: factId(deps, payload), deps, payload };
    };
    spends.push(mk(1, g.id, 30n));
    expect(ledger.check(spends[0]!.id, spends[0]!.deps, spends[0]!.payload)).toBe(EscrowCode.Ok);
    ledger.commit(spends[0]!.id);
    const fork = mk(1, g.id, 10n);
    expect(ledger.check(fork.id, fork.deps, fork.payload)).toBe(EscrowCode.Fork);
    const tooMuch = mk(2, spends[0]!.id, 21n);
    expect(ledger.check(tooMuch.id, tooMuch.deps, tooMuch.payload)).toBe(EscrowCode.Insufficient);
    const fits = mk(2, spends[0]!.id, 20n);
    expect(ledger.check(fits.id, fits.deps, fits.payload)).toBe(EscrowCode.Ok);
    const skipped = mk(3, spends[0]!.id, 1n);
    expect(ledger.check(skipped.id, skipped.deps, skipped.payload)).toBe(EscrowCode.Fork);
    expect(decodeEscrowFact(ledger.adapter, fits.payload)).toMatchObject({ kind: EscrowKind.Spend, origin: 'a', seq: 2, delta: 20n });
  });

  it('decodes any bytes without throwing', () => {
    const { ledger, g } = setup();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, cut) => {
        const payload = new Uint8Array(g.payload.length);
        payload.set(g.payload);
        payload.set(bytes.subarray(0, Math.max(0, payload.length - (cut % payload.length))), cut % payload.length);
        expect(() => decodeEscrowFact(ledger.adapter, payload)).not.toThrow();
        expect(() => decodeEscrowFact(ledger.adapter, bytes)).not.toThrow();
        expect(() => ledger.check(g.id, [], bytes)).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });
});
