/**
 * DurableKernel / TwoLaneDurableKernel: admission is the foundation's (every rejection identical
 * to a TwoLaneKernel's, changing nothing and consuming neither a WAL sequence nor arena bytes),
 * the three ack modes, DurableHandle (poll, spinWait, durable(), thousands at once, after close,
 * after a failed sync), a lock-step property against an in-memory TwoLaneKernel with a reopen at
 * the end, the I/O backends and their overrides, the log's statistics, and misuse.
 *
 * A durable kernel starts its persistence worker from compiled JS, so in this `threads` file the
 * library (test/helpers/lib.ts) comes from `dist/`, error classes included. Only the
 * @internal `faults` option (test hooks of the worker) is reached through a cast.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AckMode,
  AdmitCode,
  AdmitError,
  AlgebraicClass,
  ConservationState,
  CtfsError,
  DurabilityError,
  DurableHandle,
  DurableKernel,
  InvalidArgumentError,
  InvariantCode,
  LogLockedError,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  TotalSupplyInvariant,
  TwoLaneDurableKernel,
  TwoLaneKernel,
  i128le,
  readI128le,
  toHex,
  type DurableKernelOptions,
  type Fact,
  type Invariant,
} from './helpers/lib.js';
import { DIST_URL } from './helpers/dist.js';
import { thrown } from './helpers/errors.js';
import { freshIdSource } from './helpers/ids.js';
import { prng } from './helpers/kernels.js';

// ------------------------------------------------------------------------------------------ setup

const INDEX_CAPACITY = 1 << 14;
const ARENA_BYTES = 1 << 18;
/** Small kernels, quiet. */
const SMALL = { indexCapacity: INDEX_CAPACITY, arenaBytes: ARENA_BYTES, announce: false } as const;
/** The worker's fault hooks (@internal, so not in the published option type). */
interface Faults {
  readonly failWriteAt?: number;
  readonly failSyncAt?: number;
  readonly syncDelayMs?: number;
}
const ACK_MODES = [AckMode.Volatile, AckMode.WALSubmitted, AckMode.Durable] as const;
const ACK_NAMES = ['Volatile', 'WALSubmitted', 'Durable'] as const;

/** Upstream's test state: balance 100 in [0, 1000]. */
const CELL_100 = new ConservationState(100n, 0n, 1000n).toBytes();

const dirs: string[] = [];
const kernels: DurableKernel[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-dk-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const k of kernels.splice(0)) await k.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

interface OpenOptions extends Omit<DurableKernelOptions, 'faults'> {
  readonly faults?: Faults;
}

/** A small, quiet TwoLaneDurableKernel over TotalSupply (balance 100 in [0, 1000] unless told), closed after the test. */
async function openKernel(options: OpenOptions = {}, dir: string = tempDir(), invariant: Invariant = new TotalSupplyInvariant()): Promise<TwoLaneDurableKernel> {
  const k = await TwoLaneDurableKernel.open(dir, invariant, { ...SMALL, initialState: CELL_100, ...options } as DurableKernelOptions);
  kernels.push(k);
  return k;
}

/** The in-memory twin: a TwoLaneKernel from the same cell. */
function twin(cell: Uint8Array = CELL_100, indexCapacity = INDEX_CAPACITY): TwoLaneKernel {
  return TwoLaneKernel.withState(new TotalSupplyInvariant(), cell, { indexCapacity });
}

/** A fresh 32-byte id (never used before in this file). */
const freshId = freshIdSource(0x5a);

const delta = (n: number | bigint): Uint8Array => i128le(BigInt(n));
const ONE = delta(1);

/** Everything observable about a kernel's admitted history. */
function look(k: TwoLaneKernel | DurableKernel): { state: string; clock: string; size: number; frontier: string[] } {
  return { state: toHex(k.state.toBytes()), clock: toHex(k.clock.toBytes()), size: k.size, frontier: k.frontier().map((id) => toHex(id)) };
}

/** `look` plus the log's position. */
function lookDurable(k: DurableKernel): ReturnType<typeof look> & { lastSequence: number } {
  return { ...look(k), lastSequence: k.lastSequence };
}

function idsOf(k: TwoLaneKernel | TwoLaneDurableKernel): string[] {
  return [...k.exactIndex.ids()].map((id) => toHex(id));
}


function admitError(fn: () => unknown, code: string): AdmitError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(AdmitError);
  expect(e).toBeInstanceOf(CtfsError);
  expect((e as AdmitError).code).toBe(code);
  return e as AdmitError;
}

/** WAL record bytes of a fact: 64-byte header, 32 per dep, the payload, padded to 8. */
const recordBytes = (deps: number, payload: number): number => (64 + 32 * deps + payload + 7) & ~7;

const ZERO_CELL = new Uint8Array(64);

/** Accepts any payload; counts admissions in the state's first u32. */
const COUNTING: Invariant = {
  algebraicClass: AlgebraicClass.Commutative,
  mutatesOnlyOnSuccess: true,
  apply(_payload: Uint8Array, state: Uint8Array): number {
    const v = new DataView(state.buffer, state.byteOffset, 4);
    v.setUint32(0, v.getUint32(0, true) + 1, true);
    return InvariantCode.Ok;
  },
};


function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const lockFile = (dir: string): string => path.join(dir, 'LOCK');

// ------------------------------------------------------------------------------------------ 1

describe('rejections are the foundation’s', () => {
  /** One bad input: what TwoLaneKernel returns for it is what the durable kernel must return. */
  interface Case {
    readonly name: string;
    readonly id: Uint8Array;
    readonly deps: readonly Uint8Array[];
    readonly payload: Uint8Array;
    readonly code: number;
  }

  function cases(a: Uint8Array, b: Uint8Array): Case[] {
    const bad = <T>(v: unknown): T => v as T;
    return [
      { name: 'id of 31 bytes', id: new Uint8Array(31), deps: [], payload: ONE, code: AdmitCode.MalformedFact },
      { name: 'id not a Uint8Array', id: bad([...freshId()]), deps: [], payload: ONE, code: AdmitCode.MalformedFact },
      { name: 'deps not an array', id: freshId(), deps: bad('deps'), payload: ONE, code: AdmitCode.MalformedFact },
      { name: 'second dep of 33 bytes', id: freshId(), deps: [a, new Uint8Array(33)], payload: ONE, code: AdmitCode.MalformedFact },
      { name: 'a dep that is not bytes', id: freshId(), deps: [bad(null)], payload: ONE, code: AdmitCode.MalformedFact },
      { name: `${MAX_DEPS + 1} deps`, id: freshId(), deps: new Array<Uint8Array>(MAX_DEPS + 1).fill(a), payload: ONE, code: AdmitCode.MalformedFact },
      { name: 'payload not a Uint8Array', id: freshId(), deps: [], payload: bad([1, 0, 0]), code: AdmitCode.MalformedFact },
      { name: 'payload the invariant cannot parse (15 bytes)', id: freshId(), deps: [a], payload: new Uint8Array(15), code: AdmitCode.MalformedFact },
      { name: 'payload too large', id: freshId(), deps: [], payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1), code: AdmitCode.PayloadTooLarge },
      { name: 'duplicate', id: a, deps: [], payload: ONE, code: AdmitCode.DuplicateFact },
      { name: 'duplicate with other deps and payload', id: b, deps: [b], payload: delta(-5), code: AdmitCode.DuplicateFact },
      { name: 'missing second dep', id: freshId(), deps: [a, freshId()], payload: ONE, code: AdmitCode.CausalityViolation },
      { name: 'missing first dep', id: freshId(), deps: [freshId(), b], payload: ONE, code: AdmitCode.CausalityViolation },
      { name: 'underflow', id: freshId(), deps: [b], payload: delta(-1000), code: AdmitCode.InvariantViolation },
      { name: 'overflow', id: freshId(), deps: [], payload: delta(10_000), code: AdmitCode.InvariantViolation },
    ];
  }

  it('return the same code as a TwoLaneKernel under every ack mode, change nothing and consume no sequence or arena bytes; the throwing variants throw AdmitError', async () => {
    const k = await openKernel();
    const m = twin();
    const a = freshId();
    const b = freshId();
    expect(k.tryAdmitRaw(a, [], ONE, AckMode.Durable)).toBe(AdmitCode.Ok);
    expect(m.tryAdmitRaw(a, [], ONE)).toBe(AdmitCode.Ok);
    expect(k.tryAdmitRaw(b, [a], delta(2), AckMode.Durable)).toBe(AdmitCode.Ok);
    expect(m.tryAdmitRaw(b, [a], delta(2))).toBe(AdmitCode.Ok);
    await k.flush();
    expect(k.arenaUsed).toBe(0);

    for (const c of cases(a, b)) {
      for (const ack of ACK_MODES) {
        const what = `${c.name}, ${ACK_NAMES[ack]}`;
        const before = lookDurable(k);
        const probes = c.id instanceof Uint8Array && c.id.length === 32 && c.code !== AdmitCode.DuplicateFact ? [c.id] : [];

        const code = k.tryAdmitRaw(c.id, c.deps, c.payload, ack);
        const expected = m.tryAdmitRaw(c.id, c.deps, c.payload);
        expect(expected, `${what}: the in-memory kernel`).toBe(c.code);
        expect(code, what).toBe(expected);
        expect(k.lastFailedDep, what).toBe(m.lastFailedDep);
        expect(k.lastInvariantError, what).toBe(m.lastInvariantError);
        expect(lookDurable(k), what).toEqual(before);
        expect(k.arenaUsed, what).toBe(0);
        for (const id of probes) expect(k.contains(id), what).toBe(false);

        const fact = { id: c.id, deps: c.deps, payload: c.payload } as Fact;
        expect(k.tryAdmit(fact, ack), what).toBe(expected);

        const name = thrownCodeOf(() => m.admitRaw(c.id, c.deps, c.payload));
        const e = admitError(() => k.admitRaw(c.id, c.deps, c.payload, ack), name.code);
        expect(e.admitCode, what).toBe(expected);
        expect(e.invariantError, what).toBe(name.invariantError);
        admitError(() => k.admit(fact, ack), name.code);
        admitError(() => k.admitAsync(c.id, c.deps, c.payload), name.code);
        admitError(() => k.admitFactAsync(fact), name.code);

        expect(lookDurable(k), what).toEqual(before);
        expect(k.arenaUsed, what).toBe(0);
      }
    }

    // Not a fact at all.
    const before = lookDurable(k);
    expect(k.tryAdmit(null as unknown as Fact)).toBe(AdmitCode.MalformedFact);
    expect(k.tryAdmit(42 as unknown as Fact, AckMode.Durable)).toBe(AdmitCode.MalformedFact);
    admitError(() => k.admit(null as unknown as Fact), 'MalformedFact');
    admitError(() => k.admitFactAsync(undefined as unknown as Fact), 'MalformedFact');
    expect(lookDurable(k)).toEqual(before);

    // The log holds exactly the two admitted facts.
    await k.flush();
    expect(k.lastSequence).toBe(2);
    expect(k.logStats.records).toBe(2);
    expect(k.logStats.bytes).toBe(recordBytes(0, 16) + recordBytes(1, 16));
    expect(k.arenaUsed).toBe(0);
  });

  function thrownCodeOf(fn: () => unknown): AdmitError {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(AdmitError);
    return e as AdmitError;
  }

  it('horizon exceeded: same code and precedence as a TwoLaneKernel, nothing changes', async () => {
    const k = await openKernel({ indexCapacity: 2 });
    const m = twin(CELL_100, 2);
    const a = freshId();
    const b = freshId();
    for (const [id, deps] of [[a, []], [b, [a]]] as const) {
      expect(k.tryAdmitRaw(id, deps, ONE, AckMode.Durable)).toBe(AdmitCode.Ok);
      expect(m.tryAdmitRaw(id, deps, ONE)).toBe(AdmitCode.Ok);
    }
    const full: [string, Uint8Array, Uint8Array[], Uint8Array, number][] = [
      ['a new fact', freshId(), [b], ONE, AdmitCode.CausalHorizonExceeded],
      ['a new root', freshId(), [], ONE, AdmitCode.CausalHorizonExceeded],
      ['a duplicate (checked first)', a, [], ONE, AdmitCode.DuplicateFact],
      ['a missing dep (checked first)', freshId(), [freshId()], ONE, AdmitCode.CausalityViolation],
      ['an invariant violation (checked after)', freshId(), [], delta(-5000), AdmitCode.CausalHorizonExceeded],
    ];
    for (const [name, id, deps, payload, code] of full) {
      for (const ack of ACK_MODES) {
        const before = lookDurable(k);
        expect(m.tryAdmitRaw(id, deps, payload), name).toBe(code);
        expect(k.tryAdmitRaw(id, deps, payload, ack), name).toBe(code);
        expect(k.lastFailedDep, name).toBe(m.lastFailedDep);
        expect(lookDurable(k), name).toEqual(before);
      }
    }
    const e = admitError(() => k.admitRaw(freshId(), [], ONE, AckMode.Durable), 'CausalHorizonExceeded');
    expect(e.admitCode).toBe(AdmitCode.CausalHorizonExceeded);
    admitError(() => k.admitAsync(freshId(), [b], ONE), 'CausalHorizonExceeded');
    await k.flush();
    expect(k.lastSequence).toBe(2);
    expect(k.logStats.records).toBe(2);
  });

  it('ArenaFull (the disk is behind): refused before anything changes, admitted once the batch lands', async () => {
    // Each record ~66 KB; the worker holds the first batch for 200 ms, so the 256 KiB arena fills.
    const k = await openKernel({ initialState: ZERO_CELL, faults: { syncDelayMs: 200 } }, tempDir(), COUNTING);
    const big = new Uint8Array(MAX_PAYLOAD_BYTES).fill(7);
    let admitted = 0;
    let code: number = AdmitCode.Ok;
    let id = freshId();
    for (let i = 0; i < 10 && code === AdmitCode.Ok; i++) {
      id = freshId();
      code = k.tryAdmitRaw(id, [], big);
      if (code === AdmitCode.Ok) admitted++;
    }
    expect(code).toBe(AdmitCode.ArenaFull);
    expect(admitted).toBeGreaterThanOrEqual(2);
    expect(admitted).toBeLessThanOrEqual(3);
    const before = lookDurable(k);
    expect(before.lastSequence).toBe(admitted);
    expect(k.contains(id)).toBe(false);
    for (const ack of ACK_MODES) expect(k.tryAdmitRaw(id, [], big, ack)).toBe(AdmitCode.ArenaFull);
    admitError(() => k.admitRaw(id, [], big), 'ArenaFull');
    admitError(() => k.admitAsync(id, [], big), 'ArenaFull');
    expect(lookDurable(k)).toEqual(before);
    // A small record may still fit: reservation is by size, and the foundation's checks come first.
    expect(k.tryAdmitRaw(freshId(), [freshId()], big)).toBe(AdmitCode.CausalityViolation);

    // The documented way to wait: the next batch landing.
    await k.whenDurable(k.durableSequence + 1);
    let retries = 0;
    while ((code = k.tryAdmitRaw(id, [], big)) === AdmitCode.ArenaFull && retries < 20) {
      retries++;
      await k.whenDurable(k.durableSequence + 1);
    }
    expect(code).toBe(AdmitCode.Ok);
    expect(k.lastSequence).toBe(admitted + 1);
    expect(new DataView(k.state.toBytes().buffer).getUint32(0, true)).toBe(admitted + 1);
    await k.flush();
    expect(k.logStats.bytes).toBe((admitted + 1) * recordBytes(0, MAX_PAYLOAD_BYTES));
  });
});

// ------------------------------------------------------------------------------------------ 2

describe('ack modes and sequences', () => {
  it('sequences start at 1 and grow by one per admitted fact; WALSubmitted returns written, Durable returns durable', async () => {
    const k = await openKernel();
    expect(k.lastSequence).toBe(0);
    expect(k.durableSequence).toBe(0);
    expect(k.writtenSequence).toBe(0);
    await k.flush();
    let prev: Uint8Array | undefined;
    let n = 0;
    const admitOne = (how: number, ack: AckMode): void => {
      const id = freshId();
      const deps = prev === undefined ? [] : [prev];
      switch (how) {
        case 0:
          expect(k.tryAdmitRaw(id, deps, ONE, ack)).toBe(AdmitCode.Ok);
          break;
        case 1:
          k.admitRaw(id, deps, ONE, ack);
          break;
        case 2:
          expect(k.tryAdmit({ id, deps, payload: ONE }, ack)).toBe(AdmitCode.Ok);
          break;
        default:
          k.admit({ id, deps, payload: ONE }, ack);
      }
      n++;
      prev = id;
      expect(k.lastSequence).toBe(n);
      expect(k.size).toBe(n);
      expect(k.contains(id)).toBe(true);
      if (ack === AckMode.WALSubmitted) expect(k.writtenSequence).toBeGreaterThanOrEqual(n);
      if (ack === AckMode.Durable) {
        expect(k.durableSequence).toBeGreaterThanOrEqual(n);
        expect(k.isDurable(n)).toBe(true);
      }
      // Durable first: the worker may move both watermarks between two reads, and written ≥ durable
      // holds at every instant, so a later written is ≥ an earlier durable (read in the other order,
      // a sync landing between the reads would make an earlier written look smaller).
      const durable = k.durableSequence;
      expect(k.writtenSequence).toBeGreaterThanOrEqual(durable);
      expect(k.durableSequence).toBeLessThanOrEqual(k.lastSequence);
    };
    for (let how = 0; how < 4; how++) for (const ack of ACK_MODES) for (let r = 0; r < 3; r++) admitOne(how, ack);
    // The default ack mode is Volatile.
    const id = freshId();
    expect(k.tryAdmitRaw(id, [], ONE)).toBe(AdmitCode.Ok);
    expect(k.lastSequence).toBe(n + 1);
    await k.flush();
    expect(k.isDurable(k.lastSequence)).toBe(true);
    expect(k.durableSequence).toBe(k.lastSequence);
    expect(k.writtenSequence).toBe(k.lastSequence);
    expect(readI128le(k.state.toBytes(), 0)).toBe(100n + BigInt(n + 1));
  });

  it('on a slow log: Volatile returns before the fact is durable, WALSubmitted before the sync, Durable after it', async () => {
    const k = await openKernel({ faults: { syncDelayMs: 200 } });
    const a = freshId();
    expect(k.tryAdmitRaw(a, [], ONE, AckMode.Volatile)).toBe(AdmitCode.Ok);
    // In memory at once, durable later.
    expect(k.contains(a)).toBe(true);
    expect(readI128le(k.state.toBytes(), 0)).toBe(101n);
    expect(k.lastSequence).toBe(1);
    expect(k.isDurable(1)).toBe(false);
    await k.flush();
    expect(k.isDurable(1)).toBe(true);
    expect(k.durableSequence).toBe(1);

    const b = freshId();
    expect(k.tryAdmitRaw(b, [a], ONE, AckMode.WALSubmitted)).toBe(AdmitCode.Ok);
    expect(k.writtenSequence).toBeGreaterThanOrEqual(2);
    expect(k.durableSequence).toBeLessThan(2);

    const c = freshId();
    expect(k.tryAdmitRaw(c, [b], ONE, AckMode.Durable)).toBe(AdmitCode.Ok);
    expect(k.durableSequence).toBeGreaterThanOrEqual(3);
    expect(k.isDurable(3)).toBe(true);
  });

  it('a blocking ack that times out: DurabilityFailed / DurabilityTimeout, yet the fact is admitted and becomes durable', async () => {
    const k = await openKernel({ faults: { syncDelayMs: 200 }, ackTimeoutMs: 1 });
    const a = freshId();
    expect(k.tryAdmitRaw(a, [], ONE, AckMode.Durable)).toBe(AdmitCode.DurabilityFailed);
    expect(k.contains(a)).toBe(true);
    expect(k.lastSequence).toBe(1);
    expect(k.isDurable(1)).toBe(false);
    const b = freshId();
    const e = thrown(() => k.admitRaw(b, [a], ONE, AckMode.Durable));
    expect(e).toBeInstanceOf(DurabilityError);
    expect((e as DurabilityError).code).toBe('DurabilityTimeout');
    expect((e as DurabilityError).sequence).toBe(2);
    expect(k.contains(b)).toBe(true);
    await k.flush();
    expect(k.durableSequence).toBe(2);
    expect(readI128le(k.state.toBytes(), 0)).toBe(102n);
  });
});

// ------------------------------------------------------------------------------------------ 3

describe('DurableHandle', () => {
  it('a synchronous poll loop ends without ever yielding to the event loop (records are published for pollers)', async () => {
    const k = await openKernel();
    const handles = Array.from({ length: 3 }, () => k.admitAsync(freshId(), [], ONE));
    const deadline = Date.now() + 20_000;
    for (const h of handles) while (!h.isDurable() && Date.now() < deadline);
    expect(handles.map((h) => h.poll())).toEqual(['durable', 'durable', 'durable']);
    const a = freshId();
    k.admitRaw(a, [], ONE);
    while (k.writtenSequence < 4 && Date.now() < deadline);
    expect(k.writtenSequence).toBeGreaterThanOrEqual(4);
  });

  it('handles keep their ids across slabs while the caller reuses one array; a read copy is the reader\'s own', async () => {
    const k = await openKernel({ initialState: new ConservationState(0n, 0n, 1_000_000n).toBytes() });
    const scratch = new Uint8Array(32);
    const expected: Uint8Array[] = [];
    const handles: DurableHandle[] = [];
    for (let i = 0; i < 2_500; i++) {
      scratch.set(freshId());
      expected.push(scratch.slice());
      handles.push(k.admitRawWithHandle(scratch, [], ONE));
    }
    await k.flush();
    handles.forEach((h, i) => expect(h.factId, `handle ${i}`).toEqual(expected[i]));
    const copy = handles[1_500]!.factId;
    copy.fill(0);
    expect(handles[1_500]!.factId).toEqual(expected[1_500]);
    expect(handles[1_500]!.factId).not.toBe(handles[1_500]!.factId);
  });

  it('pending → durable: isDurable, poll, spinWait, durable()', async () => {
    const k = await openKernel({ faults: { syncDelayMs: 200 } });
    const a = freshId();
    const h = k.admitAsync(a, [], ONE);
    expect(h).toBeInstanceOf(DurableHandle);
    expect(h.sequence).toBe(1);
    expect(h.factId).toEqual(a);
    a.fill(0xee); // the caller reuses its array: the handle keeps the id it was admitted with
    expect(h.factId).not.toEqual(a);
    a.set(h.factId);
    expect(k.contains(a)).toBe(true);
    expect(h.isDurable()).toBe(false);
    expect(h.poll()).toBe('pending');
    // A 1 ms wait on a 200 ms sync: false, neither a throw nor a hang.
    expect(h.spinWait(1)).toBe(false);
    // A wait that could never end, or is no number, is refused before waiting.
    for (const bad of [NaN, Infinity, -1, '5', 10n, Symbol()]) expect(thrown(() => h.spinWait(bad as number))).toBeInstanceOf(InvalidArgumentError);
    for (const bad of [Symbol(), 10n, null, {}]) expect(thrown(() => k.isDurable(bad as number))).toBeInstanceOf(InvalidArgumentError);
    expect(h.poll()).toBe('pending');
    await h.durable();
    expect(h.isDurable()).toBe(true);
    expect(h.poll()).toBe('durable');
    expect(h.spinWait()).toBe(true);
    expect(h.spinWait(0)).toBe(true);
    expect(k.durableSequence).toBeGreaterThanOrEqual(1);

    // spinWait blocks until durable.
    const h2 = k.admitFactAsync({ id: freshId(), deps: [a], payload: ONE });
    expect(h2.sequence).toBe(2);
    expect(h2.poll()).toBe('pending');
    expect(h2.spinWait(20_000)).toBe(true);
    expect(h2.isDurable()).toBe(true);
    expect(k.durableSequence).toBeGreaterThanOrEqual(2);
    await h2.durable();
  });

  it('10k handles through a 256 KiB arena: ArenaFull waited out with whenDurable; awaited at once in shuffled order, none resolves early', async () => {
    const wide = new ConservationState(0n, 0n, 1_000_000n).toBytes();
    const k = await openKernel({ initialState: wide, faults: { syncDelayMs: 50 } });
    const N = 10_000;
    const ids = Array.from({ length: N }, () => freshId());
    const handles: DurableHandle[] = [];
    let early = 0;
    let resolved = 0;
    const waitOn = (h: DurableHandle): Promise<void> =>
      h.durable().then(() => {
        resolved++;
        if (!h.isDurable() || k.durableSequence < h.sequence) early++;
      });
    // Half the handles are awaited as they are admitted (in order), the other half at the end,
    // all at once and in shuffled order.
    const waits: Promise<void>[] = [];
    let arenaFull = 0;
    for (let i = 0; i < N; ) {
      try {
        const h = k.admitAsync(ids[i]!, [], ONE);
        handles.push(h);
        if (i % 2 === 1) waits.push(waitOn(h));
        i++;
      } catch (e) {
        expect(e).toBeInstanceOf(AdmitError);
        expect((e as AdmitError).code).toBe('ArenaFull');
        expect(k.lastSequence).toBe(i);
        arenaFull++;
        await k.whenDurable(k.durableSequence + 1);
      }
    }
    // The tail admitted after the last wait cannot have landed yet (each sync takes ≥ 50 ms).
    const pending = handles.filter((h) => h.poll() === 'pending').length;
    for (const h of shuffled(handles.filter((_, i) => i % 2 === 0), prng(7))) waits.push(waitOn(h));
    expect(pending).toBeGreaterThan(0);
    expect(arenaFull).toBeGreaterThan(0);
    expect(k.lastSequence).toBe(N);
    handles.forEach((h, i) => {
      expect(h.sequence).toBe(i + 1);
      expect(h.factId).toEqual(ids[i]);
    });
    await Promise.all(waits);
    expect(resolved).toBe(N);
    expect(early).toBe(0);
    expect(handles.every((h) => h.poll() === 'durable')).toBe(true);
    expect(readI128le(k.state.toBytes(), 0)).toBe(BigInt(N));
  });

  it('awaited out of order: the durable watermark is a prefix', async () => {
    const k = await openKernel({ faults: { syncDelayMs: 30 } });
    const hs: DurableHandle[] = [];
    for (let i = 0; i < 50; i++) hs.push(k.admitAsync(freshId(), [], ONE));
    const last = hs[hs.length - 1]!;
    await last.durable();
    for (const h of hs) expect(h.isDurable()).toBe(true);
    // Later ones first, one at a time, then earlier ones: each resolves and stays durable.
    const more: DurableHandle[] = [];
    for (let i = 0; i < 20; i++) more.push(k.admitAsync(freshId(), [], ONE));
    for (const h of [...more].reverse()) {
      await h.durable();
      expect(h.isDurable()).toBe(true);
      for (const g of more) if (g.sequence <= h.sequence) expect(g.poll()).toBe('durable');
    }
    await expect(k.whenDurable(0)).resolves.toBeUndefined();
    await expect(k.whenDurable(k.lastSequence + 100)).resolves.toBeUndefined();
    await expect(k.whenDurable(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(k.whenDurable(1.5)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('close(): facts admitted before it are durable after it; afterwards admissions are refused with DurabilityFailed and nothing changes', async () => {
    const dir = tempDir();
    const k = await openKernel({}, dir);
    const m = twin();
    const a = freshId();
    const h = k.admitAsync(a, [], ONE);
    m.admitRaw(a, [], ONE);
    let prev = a;
    for (let i = 0; i < 30; i++) {
      const id = freshId();
      k.admitRaw(id, [prev], ONE);
      m.admitRaw(id, [prev], ONE);
      prev = id;
    }
    const lastId = freshId();
    const last = k.admitAsync(lastId, [prev], ONE);
    m.admitRaw(lastId, [prev], ONE);
    expect(last.sequence).toBe(32);
    const first = k.close();
    const second = k.close();
    await first;
    await second;
    await k.close();

    for (const handle of [h, last]) {
      expect(handle.isDurable()).toBe(true);
      expect(handle.poll()).toBe('durable');
      expect(handle.spinWait(0)).toBe(true);
      await handle.durable();
    }
    expect(k.durableSequence).toBe(32);
    expect(k.lastSequence).toBe(32);
    await k.flush();
    await k.whenDurable(32);

    const before = lookDurable(k);
    for (const ack of ACK_MODES) {
      expect(k.tryAdmitRaw(freshId(), [a], ONE, ack)).toBe(AdmitCode.DurabilityFailed);
      expect(k.tryAdmit({ id: freshId(), deps: [], payload: ONE }, ack)).toBe(AdmitCode.DurabilityFailed);
      const e = admitError(() => k.admitRaw(freshId(), [], ONE, ack), 'DurabilityFailed');
      expect(e.admitCode).toBe(AdmitCode.DurabilityFailed);
      // The foundation's checks still come first.
      expect(k.tryAdmitRaw(a, [], ONE, ack)).toBe(AdmitCode.DuplicateFact);
      expect(k.tryAdmitRaw(freshId(), [freshId()], ONE, ack)).toBe(AdmitCode.CausalityViolation);
    }
    admitError(() => k.admitAsync(freshId(), [], ONE), 'DurabilityFailed');
    admitError(() => k.admitFactAsync({ id: freshId(), deps: [], payload: ONE }), 'DurabilityFailed');
    expect(lookDurable(k)).toEqual(before);
    expect(k.arenaUsed).toBe(0);

    // The directory is free again and holds everything.
    const r = await openKernel({}, dir);
    expect(r.lastSequence).toBe(32);
    expect(look(r)).toEqual(look(m));
    expect(idsOf(r)).toEqual(idsOf(m));
  });

  it('an admission made while close() is in progress is either refused or durable once close() resolves', async () => {
    // A race (the worker may be checking for close at that instant), so several attempts.
    for (let attempt = 0; attempt < 12; attempt++) {
      const dir = tempDir();
      const k = await openKernel({}, dir);
      const closing = k.close();
      const id = freshId();
      const code = k.tryAdmitRaw(id, [], ONE);
      await closing;
      if (code === AdmitCode.Ok) {
        expect(k.isDurable(k.lastSequence), `attempt ${attempt}: admitted (Ok) during close(), sequence ${k.lastSequence}, never made durable`).toBe(true);
        const r = await openKernel({}, dir);
        expect(r.contains(id)).toBe(true);
        await r.close();
      } else {
        expect(code).toBe(AdmitCode.DurabilityFailed);
        expect(k.contains(id)).toBe(false);
        expect(k.lastSequence).toBe(0);
      }
    }
  });

  it('a failed sync: durable() rejects with DurabilityError, spinWait throws, poll() is failed; the log refuses further facts', async () => {
    const k = await openKernel({ faults: { failSyncAt: 1 } });
    const a = freshId();
    const h = k.admitAsync(a, [], ONE);
    const error = await h.durable().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DurabilityError);
    expect(error).toBeInstanceOf(CtfsError);
    expect((error as DurabilityError).code).toBe('DurabilityFailed');
    expect((error as DurabilityError).sequence).toBe(1);
    expect((error as DurabilityError).ioCode).toBe('EIO');
    // The worker's own error crossed as its wire form: typed, with the system code.
    expect((error as DurabilityError).cause).toBeInstanceOf(DurabilityError);
    expect((error as DurabilityError).cause).toMatchObject({ code: 'DurabilityFailed', ioCode: 'EIO', message: 'fdatasync failed (injected at batch 1)' });
    expect(h.poll()).toBe('failed');
    expect(h.isDurable()).toBe(false);
    for (const timeout of [undefined, 1, 0]) {
      const e = thrown(() => h.spinWait(timeout));
      expect(e).toBeInstanceOf(DurabilityError);
      expect((e as DurabilityError).code).toBe('DurabilityFailed');
    }
    await expect(h.durable()).rejects.toBeInstanceOf(DurabilityError);
    await expect(k.flush()).rejects.toBeInstanceOf(DurabilityError);
    expect(k.durableSequence).toBe(0);

    // The fact stays admitted in memory; nothing more is taken.
    expect(k.contains(a)).toBe(true);
    const before = lookDurable(k);
    expect(before.lastSequence).toBe(1);
    for (const ack of ACK_MODES) {
      expect(k.tryAdmitRaw(freshId(), [a], ONE, ack)).toBe(AdmitCode.DurabilityFailed);
      admitError(() => k.admitRaw(freshId(), [], ONE, ack), 'DurabilityFailed');
      expect(k.tryAdmitRaw(a, [], ONE, ack)).toBe(AdmitCode.DuplicateFact);
      expect(k.tryAdmitRaw(freshId(), [], delta(-5000), ack)).toBe(AdmitCode.DurabilityFailed);
    }
    admitError(() => k.admitAsync(freshId(), [], ONE), 'DurabilityFailed');
    expect(lookDurable(k)).toEqual(before);
    await k.close();
    expect(h.poll()).toBe('failed');
  });

  it('a Durable admission whose sync fails returns DurabilityFailed (admitRaw: DurabilityError) with the fact applied; a failed write fails WALSubmitted', async () => {
    const k = await openKernel({ faults: { failSyncAt: 1 } });
    const a = freshId();
    expect(k.tryAdmitRaw(a, [], ONE, AckMode.Durable)).toBe(AdmitCode.DurabilityFailed);
    expect(k.contains(a)).toBe(true);
    expect(k.lastSequence).toBe(1);
    expect(readI128le(k.state.toBytes(), 0)).toBe(101n);
    expect(k.durableSequence).toBe(0);

    const k2 = await openKernel({ faults: { failSyncAt: 1 } });
    const e = thrown(() => k2.admitRaw(freshId(), [], ONE, AckMode.Durable));
    expect(e).toBeInstanceOf(DurabilityError);
    expect(e).not.toBeInstanceOf(AdmitError);
    expect((e as DurabilityError).code).toBe('DurabilityFailed');
    expect(k2.size).toBe(1);

    const k3 = await openKernel({ faults: { failWriteAt: 1 } });
    expect(k3.tryAdmitRaw(freshId(), [], ONE, AckMode.WALSubmitted)).toBe(AdmitCode.DurabilityFailed);
    expect(k3.writtenSequence).toBe(0);
    expect(k3.size).toBe(1);
  });
});

// ------------------------------------------------------------------------------------------ 4

describe('property: lock-step with a TwoLaneKernel, then reopen', () => {
  it('identical codes and state at every step; the reopened kernel has the same state, size, frontier and ids in admission order', async () => {
    type Kind = 'valid' | 'duplicate' | 'missingDep' | 'violation' | 'malformed' | 'fact';
    const op = fc.record({
      kind: fc.constantFrom<Kind>('valid', 'valid', 'valid', 'valid', 'duplicate', 'missingDep', 'violation', 'malformed', 'fact'),
      deps: fc.array(fc.nat(), { maxLength: 3 }),
      delta: fc.integer({ min: -40, max: 40 }),
      ack: fc.constantFrom(...ACK_MODES),
      pick: fc.nat(),
    });
    const scenario = fc.record({
      balance: fc.integer({ min: 0, max: 100 }),
      headroom: fc.integer({ min: 0, max: 100 }),
      ops: fc.array(op, { minLength: 1, maxLength: 24 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ balance, headroom, ops }) => {
        const max = BigInt(balance + headroom);
        const cell = new ConservationState(BigInt(balance), 0n, max).toBytes();
        const dir = tempDir();
        const d = await TwoLaneDurableKernel.open(dir, new TotalSupplyInvariant(), { ...SMALL, initialState: cell });
        const m = twin(cell);
        try {
          const admitted: Uint8Array[] = [];
          let ok = 0;
          for (const o of ops) {
            let id = freshId();
            const deps = admitted.length === 0 ? [] : o.deps.map((i) => admitted[i % admitted.length]!);
            let payload = delta(o.delta);
            if (o.kind === 'duplicate' && admitted.length > 0) id = admitted[o.pick % admitted.length]!;
            if (o.kind === 'missingDep') deps.splice(o.pick % (deps.length + 1), 0, freshId());
            if (o.kind === 'violation') payload = delta(o.pick % 2 === 0 ? max + 1n : -(max + 1n));
            if (o.kind === 'malformed') payload = new Uint8Array(o.pick % 16);
            const cd = o.kind === 'fact' ? d.tryAdmit({ id, deps, payload }, o.ack) : d.tryAdmitRaw(id, deps, payload, o.ack);
            const cm = m.tryAdmitRaw(id, deps, payload);
            expect(cd).toBe(cm);
            if (cm === AdmitCode.Ok) {
              admitted.push(id);
              ok++;
            }
            expect(toHex(d.state.toBytes())).toBe(toHex(m.state.toBytes()));
            expect(d.size).toBe(m.size);
            expect(d.lastSequence).toBe(ok);
            expect(d.lastFailedDep).toBe(m.lastFailedDep);
            expect(d.lastInvariantError).toBe(m.lastInvariantError);
            if (cm === AdmitCode.Ok && o.ack === AckMode.Durable) expect(d.isDurable(ok)).toBe(true);
            if (cm === AdmitCode.Ok && o.ack === AckMode.WALSubmitted) expect(d.writtenSequence).toBeGreaterThanOrEqual(ok);
          }
          expect(look(d)).toEqual(look(m));
          expect(idsOf(d)).toEqual(idsOf(m));
          await d.close();
          expect(d.durableSequence).toBe(ok);

          const r = await TwoLaneDurableKernel.open(dir, new TotalSupplyInvariant(), SMALL);
          try {
            expect(r.recovery.created).toBe(false);
            expect(r.recovery.replayed).toBe(ok);
            expect(r.lastSequence).toBe(ok);
            expect(look(r)).toEqual(look(m));
            expect(idsOf(r)).toEqual(idsOf(m));
          } finally {
            await r.close();
          }
        } finally {
          await d.close();
        }
      }),
      { numRuns: 30 },
    );
  });
});

// ------------------------------------------------------------------------------------------ 5

const execFileAsync = promisify(execFile);

/** What a child process saw opening a kernel. */
interface ChildReport {
  opened?: { backend: string; note: string };
  error?: { name: string; code: string; native: boolean; ctfs: boolean; message: string };
  lockedAfterFailure?: boolean;
  reopened?: { backend: string; note: string };
}

/** The child's program: open a kernel (and, if that fails, check the directory is free by opening it without CTFS_IO). */
const CHILD_SCRIPT = `
  import * as fs from 'node:fs';
  import * as path from 'node:path';
  const { DurableKernel, TotalSupplyInvariant, NativeUnavailableError, CtfsError } = await import(process.env.CTFS_TEST_DIST);
  const dir = process.env.CTFS_TEST_DIR;
  const options = { announce: false, indexCapacity: 1024, arenaBytes: ${ARENA_BYTES}, backend: process.env.CTFS_TEST_BACKEND };
  const out = {};
  try {
    const k = await DurableKernel.open(dir, new TotalSupplyInvariant(), options);
    out.opened = { backend: k.backend, note: k.backendNote };
    await k.close();
  } catch (e) {
    out.error = { name: e?.constructor?.name, code: e?.code, native: e instanceof NativeUnavailableError, ctfs: e instanceof CtfsError, message: String(e?.message) };
    out.lockedAfterFailure = fs.existsSync(path.join(dir, 'LOCK'));
    // A lock still held by this process would be refused ('another kernel in this process').
    delete process.env.CTFS_IO;
    const k = await DurableKernel.open(dir, new TotalSupplyInvariant(), { ...options, backend: 'auto' });
    out.reopened = { backend: k.backend, note: k.backendNote };
    await k.close();
  }
  console.log(JSON.stringify(out));
`;

/**
 * Opens a kernel in a child process with `env` added (the native loader caches per process) and
 * reports what happened. `viaEval` runs the program with `node --input-type=module -e`, else
 * from a file.
 */
async function openInChild(dir: string, env: Record<string, string>, backendOption: string, viaEval = false): Promise<ChildReport> {
  let args: string[];
  if (viaEval) args = ['--input-type=module', '-e', CHILD_SCRIPT];
  else {
    const file = path.join(tempDir(), 'child.mjs');
    fs.writeFileSync(file, CHILD_SCRIPT);
    args = [file];
  }
  const result = await execFileAsync(process.execPath, args, {
    env: { ...process.env, ...env, CTFS_TEST_DIST: DIST_URL, CTFS_TEST_DIR: dir, CTFS_TEST_BACKEND: backendOption },
    timeout: 30_000,
  }).then(
    (r) => ({ ...r, code: 0 }),
    (e: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? -1 }),
  );
  expect(result.code, `child exited with ${result.code}: ${result.stderr}`).toBe(0);
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as ChildReport;
}

describe('backends', () => {
  const envIo = process.env['CTFS_IO'];

  it('the backend in use is visible: io_uring when the shim is built (required in CI on Linux), else portable with a reason', async () => {
    const k = await openKernel();
    expect(['io_uring', 'portable']).toContain(k.backend);
    if (k.backend === 'io_uring') expect(k.backendNote).toBe('');
    else expect(k.backendNote.length).toBeGreaterThan(0);
    if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.platform === 'linux' && envIo !== 'portable') {
      expect(k.backend, `CI on Linux must use io_uring (${k.backendNote})`).toBe('io_uring');
    }
    if (envIo === 'portable') expect(k.backend).toBe('portable');
  });

  it("backend: 'portable' forces the portable backend (and it logs and recovers like the other)", async () => {
    if (envIo === 'uring') return; // the environment overrides the option; covered in a child process below
    const dir = tempDir();
    const k = await openKernel({ backend: 'portable' }, dir);
    expect(k.backend).toBe('portable');
    expect(k.backendNote.length).toBeGreaterThan(0);
    const ids = [freshId(), freshId()];
    k.admitRaw(ids[0]!, [], ONE, AckMode.Durable);
    k.admitRaw(ids[1]!, [ids[0]!], ONE, AckMode.WALSubmitted);
    await k.close();
    const r = await openKernel({ backend: 'portable' }, dir);
    expect(r.lastSequence).toBe(2);
    expect(idsOf(r)).toEqual(ids.map((id) => toHex(id)));
  });

  it('CTFS_IO=portable forces portable even over the option', async () => {
    const out = await openInChild(tempDir(), { CTFS_IO: 'portable' }, 'uring');
    expect(out.error).toBeUndefined();
    expect(out.opened?.backend).toBe('portable');
    expect(out.opened?.note.length).toBeGreaterThan(0);
  });

  it('CTFS_IO=uring with no usable shim: open rejects with NativeUnavailableError and leaves the directory unlocked', async () => {
    const dir = tempDir();
    const out = await openInChild(dir, { CTFS_IO: 'uring', CTFS_NATIVE_PATH: '/nonexistent/ctfs_native.node' }, 'auto');
    expect(out.opened).toBeUndefined();
    expect(out.error).toMatchObject({ name: 'NativeUnavailableError', code: 'NativeUnavailable', native: true, ctfs: true });
    expect(out.lockedAfterFailure).toBe(false);
    // Without the override the same process opens it, falling back to portable and saying why.
    expect(out.reopened?.backend).toBe('portable');
    expect(out.reopened?.note.length).toBeGreaterThan(0);
    expect(fs.existsSync(lockFile(dir))).toBe(false);
  });

  it('a kernel opens in a program run with node --input-type=module -e', async () => {
    const out = await openInChild(tempDir(), {}, 'auto', true);
    expect(out.error).toBeUndefined();
    expect(['io_uring', 'portable']).toContain(out.opened?.backend);
  });

  it('announce: one debuglog line per open naming the backend (NODE_DEBUG=ctfs, on stderr); never stdout; none with announce: false', async () => {
    // debuglog reads NODE_DEBUG once per process, so each case runs in a child of its own.
    const program = `
      const { DurableKernel, TotalSupplyInvariant, factId } = await import(process.env.CTFS_TEST_DIST);
      const announce = process.env.CTFS_TEST_ANNOUNCE === 'true';
      const k = await DurableKernel.open(process.env.CTFS_TEST_DIR, new TotalSupplyInvariant(), { announce });
      k.admitRaw(factId([], new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), [], new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
      await k.close();
      const again = await DurableKernel.open(process.env.CTFS_TEST_DIR, new TotalSupplyInvariant(), { announce });
      await again.close();
      process.stderr.write('backend=' + again.backend + '\\n');
    `;
    const run = async (env: Record<string, string>): Promise<{ stdout: string; stderr: string }> => {
      const dir = tempDir();
      return execFileAsync(process.execPath, ['--input-type=module', '-e', program], {
        env: { ...process.env, NODE_DEBUG: '', ...env, CTFS_TEST_DIST: DIST_URL, CTFS_TEST_DIR: dir },
        timeout: 30_000,
      });
    };
    const on = await run({ NODE_DEBUG: 'ctfs', CTFS_TEST_ANNOUNCE: 'true' });
    expect(on.stdout).toBe('');
    const lines = on.stderr.split('\n').filter((l) => l.includes('durable kernel in'));
    expect(lines).toHaveLength(2);
    const backend = /backend=(\S+)/.exec(on.stderr)?.[1];
    expect(['io_uring', 'portable']).toContain(backend);
    expect(lines[0]).toContain(`${backend} backend`);
    expect(lines[0]).toContain('recovered 0 facts');
    expect(lines[1]).toContain('recovered 1 facts');
    expect(lines[0]).toMatch(/^CTFS \d+:/);
    const quiet = await run({ NODE_DEBUG: 'ctfs', CTFS_TEST_ANNOUNCE: 'false' });
    expect(quiet.stderr).not.toContain('durable kernel in');
    const unset = await run({ CTFS_TEST_ANNOUNCE: 'true' });
    expect(unset.stdout).toBe('');
    expect(unset.stderr).not.toContain('durable kernel in');
  });
});

// ------------------------------------------------------------------------------------------ 6

describe('logStats and the arena', () => {
  it('records, bytes, batches and fsyncs match what was admitted; the arena empties after flush', async () => {
    const k = await openKernel({ initialState: ZERO_CELL }, tempDir(), COUNTING);
    expect(k.logStats).toMatchObject({ batches: 0, records: 0, bytes: 0, fsyncs: 0, segments: 0 });
    expect(k.arenaUsed).toBe(0);
    const rng = prng(1234);
    const admitted: Uint8Array[] = [];
    let expectedBytes = 0;
    let rounds = 0;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) {
        const nDeps = admitted.length === 0 ? 0 : Math.floor(rng() * (Math.min(MAX_DEPS, admitted.length) + 1));
        const deps = new Set<Uint8Array>();
        while (deps.size < nDeps) deps.add(admitted[Math.floor(rng() * admitted.length)]!);
        const size = i === 0 && round === 2 ? MAX_PAYLOAD_BYTES : Math.floor(rng() * 300);
        const id = freshId();
        const ack = ACK_MODES[Math.floor(rng() * 3)]!;
        expect(k.tryAdmitRaw(id, [...deps], new Uint8Array(size).fill(round), ack)).toBe(AdmitCode.Ok);
        admitted.push(id);
        expectedBytes += recordBytes(deps.size, size);
      }
      await k.flush();
      rounds++;
      const s = k.logStats;
      expect(s.records).toBe(k.lastSequence);
      expect(s.records).toBe(admitted.length);
      expect(s.bytes).toBe(expectedBytes);
      expect(s.fsyncs).toBe(s.batches);
      expect(s.batches).toBeGreaterThanOrEqual(rounds);
      expect(s.batches).toBeLessThanOrEqual(s.records);
      expect(s.segments).toBe(0);
      expect(s.lastSyncMicros).toBeGreaterThanOrEqual(0);
      expect(k.arenaUsed).toBe(0);
    }
    await k.close();
    expect(k.logStats.records).toBe(admitted.length);
    expect(k.logStats.bytes).toBe(expectedBytes);
    expect(k.arenaUsed).toBe(0);
  });

  it('once a Durable ack returns, the stats count the fact and its arena bytes are free', async () => {
    const k = await openKernel();
    let bytes = 0;
    for (let i = 1; i <= 150; i++) {
      expect(k.tryAdmitRaw(freshId(), [], ONE, AckMode.Durable)).toBe(AdmitCode.Ok);
      bytes += recordBytes(0, 16);
      const s = k.logStats;
      expect({ records: s.records, bytes: s.bytes, arenaUsed: k.arenaUsed }, `after fact ${i}`).toEqual({ records: i, bytes, arenaUsed: 0 });
    }
  });

  it('small segments roll over; the stats count them and a reopen reads across them', async () => {
    const dir = tempDir();
    const k = await openKernel({ segmentBytes: 4096 }, dir);
    const m = twin();
    let prev: Uint8Array[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 60; i++) {
        const id = freshId();
        k.admitRaw(id, prev, ONE, i === 59 ? AckMode.Durable : AckMode.Volatile);
        m.admitRaw(id, prev, ONE);
        prev = [id];
      }
    }
    await k.flush();
    const segments = k.logStats.segments;
    expect(segments).toBeGreaterThanOrEqual(2);
    await k.close();
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('wal-'));
    expect(files.length).toBeGreaterThanOrEqual(segments); // + the one the next open appends to
    const r = await openKernel({ segmentBytes: 4096 }, dir);
    expect(r.lastSequence).toBe(360);
    expect(look(r)).toEqual(look(m));
    expect(idsOf(r)).toEqual(idsOf(m));
    expect(r.logStats.records).toBe(0);
  });

  it('checkpoint(): a reopen starts from it and replays only what came after', async () => {
    const dir = tempDir();
    const k = await openKernel({}, dir);
    const m = twin();
    for (let i = 0; i < 25; i++) {
      const id = freshId();
      k.admitRaw(id, [], ONE);
      m.admitRaw(id, [], ONE);
    }
    const info = await k.checkpoint();
    expect(info.sequence).toBe(25);
    expect(info.facts).toBe(25);
    expect(fs.existsSync(info.file)).toBe(true);
    expect(k.isDurable(25)).toBe(true);
    for (let i = 0; i < 5; i++) {
      const id = freshId();
      k.admitRaw(id, [], ONE);
      m.admitRaw(id, [], ONE);
    }
    await k.close();
    const r = await openKernel({}, dir);
    expect(r.recovery.checkpoint?.sequence).toBe(25);
    expect(r.recovery.replayed).toBe(5);
    expect(r.lastSequence).toBe(30);
    expect(look(r)).toEqual(look(m));
    expect(idsOf(r)).toEqual(idsOf(m));
  });
});

// ------------------------------------------------------------------------------------------ 7

describe('misuse', () => {
  it('prefault: false opens and admits the same (memory is then faulted in as it fills)', async () => {
    const k = await openKernel({ prefault: false } as OpenOptions);
    const a = freshId();
    expect(k.tryAdmitRaw(a, [], ONE, AckMode.Durable)).toBe(AdmitCode.Ok);
    expect(k.contains(a)).toBe(true);
  });

  it('a durable kernel is not constructible directly', () => {
    for (const Ctor of [DurableKernel, TwoLaneDurableKernel]) {
      const C = Ctor as unknown as new (invariant: Invariant, options?: object) => unknown;
      const e = thrown(() => new C(new TotalSupplyInvariant(), {}));
      expect(e).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('reset() throws InvalidArgumentError and changes nothing', async () => {
    const k = await openKernel();
    k.admitRaw(freshId(), [], ONE, AckMode.Durable);
    const before = lookDurable(k);
    const e = thrown(() => k.reset());
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).code).toBe('InvalidArgument');
    expect(thrown(() => (k as unknown as { reset(cell: Uint8Array): void }).reset(CELL_100))).toBeInstanceOf(InvalidArgumentError);
    expect(lookDurable(k)).toEqual(before);
  });

  it('open with a bad directory, options or invariant rejects with InvalidArgumentError and leaves the directory unlocked', async () => {
    const inv = new TotalSupplyInvariant();
    for (const dir of ['', 42, null, undefined, {}]) {
      await expect(DurableKernel.open(dir as string, inv, SMALL), String(dir)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    const dir = tempDir();
    const badOptions: [string, object][] = [
      ['arenaBytes not a power of two', { arenaBytes: 300_000 }],
      ['arenaBytes too small', { arenaBytes: 1 << 17 }],
      ['arenaBytes too large', { arenaBytes: 2 ** 31 }],
      ['arenaBytes fractional', { arenaBytes: 262_144.5 }],
      ['segmentBytes too small', { segmentBytes: 100 }],
      ['segmentBytes too large', { segmentBytes: 2 ** 41 }],
      ['segmentBytes NaN', { segmentBytes: Number.NaN }],
      ['ackTimeoutMs negative', { ackTimeoutMs: -1 }],
      ['ackTimeoutMs NaN', { ackTimeoutMs: Number.NaN }],
      ['ackTimeoutMs Infinity (a wait that never ends)', { ackTimeoutMs: Infinity }],
      ['ackTimeoutMs a string', { ackTimeoutMs: '5' }],
      ['backend unknown', { backend: 'fast' }],
      ['indexCapacity 0', { indexCapacity: 0 }],
      ['indexSeed not a number', { indexSeed: 'x' }],
      ['initialState of 10 bytes', { initialState: new Uint8Array(10) }],
      ['initialState not bytes', { initialState: 'abc' }],
    ];
    for (const [name, options] of badOptions) {
      const e = await DurableKernel.open(dir, inv, { ...SMALL, ...options } as DurableKernelOptions).then(
        async (k) => {
          await k.close();
          return 'opened';
        },
        (error: unknown) => error,
      );
      expect(e, name).toBeInstanceOf(InvalidArgumentError);
      expect(fs.existsSync(lockFile(dir)), name).toBe(false);
    }
    for (const invariant of [null, {}, { apply: 5 }]) {
      await expect(DurableKernel.open(dir, invariant as unknown as Invariant, SMALL)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(fs.existsSync(lockFile(dir))).toBe(false);
    }
    // Still usable, and nothing of the failed opens got in the way.
    const k = await openKernel({}, dir);
    expect(k.lastSequence).toBe(0);
    expect(k.recovery.created).toBe(true);
  });

  it('null options mean the defaults (as for every other kernel), never a TypeError', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const dir = tempDir();
    const outcome = await DurableKernel.open(dir, new TotalSupplyInvariant(), null as unknown as DurableKernelOptions).then(
      async (k) => {
        await k.close();
        return 'opened';
      },
      (error: unknown) => error,
    );
    if (outcome !== 'opened') expect(outcome).toBeInstanceOf(InvalidArgumentError);
    expect(fs.existsSync(lockFile(dir))).toBe(false);
  });

  it('one kernel per directory: a second open rejects with LogLockedError; free again after close(); close() twice is fine', async () => {
    const dir = tempDir();
    const k = await openKernel({}, dir);
    const e = await TwoLaneDurableKernel.open(dir, new TotalSupplyInvariant(), SMALL).then(
      async (other) => {
        await other.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(e).toBeInstanceOf(LogLockedError);
    expect((e as LogLockedError).code).toBe('LogLocked');
    // The refused open did not disturb the owner.
    expect(fs.existsSync(lockFile(dir))).toBe(true);
    k.admitRaw(freshId(), [], ONE, AckMode.Durable);
    await Promise.all([k.close(), k.close()]);
    await k.close();
    expect(fs.existsSync(lockFile(dir))).toBe(false);
    const r = await openKernel({}, dir);
    expect(r.lastSequence).toBe(1);
  });
});

describe('traceBatches (diagnostics)', () => {
  it('stamps every batch in order: the batches cover every sequence once, each stage no earlier than the one before', async () => {
    const k = await openKernel({ traceBatches: 1024 });
    expect(k.batchTrace?.capacity).toBe(1024);
    const before = performance.timeOrigin + performance.now();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 100; i++) expect(k.tryAdmitRaw(freshId(), [], ONE)).toBe(AdmitCode.Ok);
      await k.flush();
    }
    const after = performance.timeOrigin + performance.now();
    const batches = k.batchTrace!.read();
    expect(batches.length).toBe(k.logStats.batches);
    expect(batches.length).toBeGreaterThanOrEqual(5);
    let previous = 0;
    let records = 0;
    for (const b of batches) {
      expect(b.lastSequence - previous, 'a batch holds the sequences after the previous one').toBe(b.records);
      previous = b.lastSequence;
      records += b.records;
      expect(b.pickedUp).toBeGreaterThanOrEqual(before);
      expect(b.pickedUp).toBeLessThanOrEqual(b.submitted);
      expect(b.submitted).toBeLessThanOrEqual(b.written);
      expect(b.written).toBeLessThanOrEqual(b.synced);
      expect(b.synced).toBeLessThanOrEqual(b.published);
      expect(b.published).toBeLessThanOrEqual(after);
    }
    expect(records).toBe(500);
    expect(previous).toBe(k.lastSequence);
  });

  it('keeps the last `traceBatches` batches; off by default; a bad size is InvalidArgument before anything opens', async () => {
    const k = await openKernel({ traceBatches: 2 });
    for (let round = 0; round < 4; round++) {
      expect(k.tryAdmitRaw(freshId(), [], ONE)).toBe(AdmitCode.Ok);
      await k.flush();
    }
    expect(k.batchTrace!.batches).toBe(4);
    expect(k.batchTrace!.read().map((b) => b.lastSequence)).toEqual([3, 4]);
    expect((await openKernel()).batchTrace).toBeUndefined();
    const dir = tempDir();
    for (const bad of [0, -1, 1.5, 2 ** 21, Number.NaN]) {
      await expect(openKernel({ traceBatches: bad }, dir)).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
