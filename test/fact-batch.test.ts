/**
 * FactBatch (facts packed in a SharedArrayBuffer, docs/FORMATS.md §7) and Kernel.admitBatch.
 *
 * - building: push / pushRaw / from / clear, length and byteLength, the record layout (padding
 *   zeroed, also after clear), growth far past the initial size (MAX_PAYLOAD_BYTES payloads,
 *   16 deps), shape validation with typed errors that leaves the batch unchanged;
 * - admitBatch ≡ tryAdmitRaw one fact at a time: same codes, same final state, clock, frontier,
 *   ids and digest (fast-check over random facts with duplicates, missing deps, invariant and
 *   shape rejections, a full index), for every single-domain kernel kind, in chunks through one
 *   reused batch; the returned codes are a copy;
 * - hostile buffers, through the internal `admitShared`: a bad dep count, a payload running past
 *   the end, a truncated record, a count larger than the records present, random bytes — never a
 *   throw or a hang, MalformedFact for every fact from the damaged record on;
 * - Kernel.digest: equal for equal histories, different when a fact or the admission order differs;
 * - verifyLog on an empty directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  ConservationState,
  DEFAULT_BATCH_FACTS,
  EscalatingKernel,
  FactBatch,
  HISTORY_DIGEST_BYTES,
  Kernel,
  MAX_BATCH_FACTS,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  TotalSupplyInvariant,
  TwoLaneKernel,
  admitShared,
  createFact,
  factId,
  toHex,
  u64le,
  verifyLog,
  type Fact,
} from './helpers/lib.js';
import { expectBadMemory, expectInvalid } from './helpers/errors.js';
import { xorshift32 } from './helpers/kernels.js';

const tmpDirs: string[] = [];
afterEach(() => {
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------ helpers

/** The handles `admitShared` reads (the batch's @internal `shared`). */
interface SharedBatch {
  data: SharedArrayBuffer;
  codes: SharedArrayBuffer;
  count: number;
  bytes: number;
}
const sharedOf = (batch: FactBatch): SharedBatch => (batch as unknown as { shared: SharedBatch }).shared;

interface RawFact {
  readonly id: Uint8Array;
  readonly deps: readonly Uint8Array[];
  readonly payload: Uint8Array;
}

const pad4 = (n: number): number => (n + 3) & ~3;
const recordBytes = (f: RawFact): number => 8 + 32 + 32 * f.deps.length + pad4(f.payload.length);


/** Deterministic u32s (xorshift32). */
const prng = xorshift32;
function bytes(n: number, seed: number): Uint8Array {
  const next = prng(seed * 2654435761 + 7);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** A TotalSupply payload: `delta`, then `appBytes` bytes that start with the nonce `n` (unique ids). */
function supply(delta: number | bigint, n: number, appBytes = 8): Uint8Array {
  const app = bytes(Math.max(8, appBytes), n);
  app.set(u64le(n), 0);
  return TotalSupplyInvariant.payload(BigInt(delta), app);
}

/** A content-addressed TotalSupply fact. */
function fact(deps: readonly Uint8Array[], delta: number | bigint, n: number, appBytes?: number): RawFact {
  const payload = supply(delta, n, appBytes);
  return { id: factId(deps, payload), deps, payload };
}

/** A chain of `n` facts, each depending on the one before. */
function chain(n: number, salt = 0): RawFact[] {
  const out: RawFact[] = [];
  for (let i = 0; i < n; i++) out.push(fact(i === 0 ? [] : [out[i - 1]!.id], (i % 7) - 3, salt * 1_000_003 + i));
  return out;
}

/**
 * A RawAdmitter that records copies of what it was given, checks the shapes admitShared promises
 * (32-byte id and deps, at most 16 deps, payload at most 64 KiB, all inside the batch's bytes),
 * and answers `answer(i)`.
 */
function recorder(batch?: SharedBatch, answer: (i: number) => number = () => AdmitCode.Ok) {
  const calls: RawFact[] = [];
  const problems: string[] = [];
  const inside = (v: Uint8Array, what: string): void => {
    if (batch === undefined) return;
    if (v.buffer !== batch.data) problems.push(`${what} is not a view of the batch`);
    else if (v.byteOffset < 0 || v.byteOffset + v.length > batch.bytes) problems.push(`${what} reaches past the batch's length`);
  };
  return {
    calls,
    problems,
    tryAdmitRaw(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
      const i = calls.length;
      if (!(id instanceof Uint8Array) || id.length !== 32) problems.push(`call ${i}: id of ${id?.length}`);
      if (!Array.isArray(deps) || deps.length > MAX_DEPS) problems.push(`call ${i}: ${deps?.length} deps`);
      for (const d of deps) if (!(d instanceof Uint8Array) || d.length !== 32) problems.push(`call ${i}: a dep of ${d?.length}`);
      if (!(payload instanceof Uint8Array) || payload.length > MAX_PAYLOAD_BYTES) problems.push(`call ${i}: payload of ${payload?.length}`);
      inside(id, `call ${i} id`);
      deps.forEach((d, k) => inside(d, `call ${i} dep ${k}`));
      inside(payload, `call ${i} payload`);
      calls.push({ id: id.slice(), deps: deps.map((d) => d.slice()), payload: payload.slice() });
      return answer(i);
    },
  };
}

const hexFact = (f: RawFact): { id: string; deps: string[]; payload: string } => ({
  id: toHex(f.id),
  deps: f.deps.map(toHex),
  payload: toHex(f.payload),
});

/** The facts a batch holds, as admitShared hands them out. */
function contents(batch: FactBatch): RawFact[] {
  const r = recorder(sharedOf(batch));
  admitShared(sharedOf(batch), r);
  expect(r.problems).toEqual([]);
  return r.calls;
}

function expectContents(batch: FactBatch, facts: readonly RawFact[]): void {
  expect(batch.length).toBe(facts.length);
  expect(batch.byteLength).toBe(facts.reduce((s, f) => s + recordBytes(f), 0));
  const got = contents(batch);
  expect(got.length).toBe(facts.length);
  for (let i = 0; i < facts.length; i++) {
    const a = got[i]!;
    const b = facts[i]!;
    // Cheap compare first; a readable diff only on mismatch.
    const same =
      Buffer.from(a.id).equals(Buffer.from(b.id)) &&
      Buffer.from(a.payload).equals(Buffer.from(b.payload)) &&
      a.deps.length === b.deps.length &&
      a.deps.every((d, k) => Buffer.from(d).equals(Buffer.from(b.deps[k]!)));
    if (!same) expect(hexFact(a)).toEqual(hexFact(b));
  }
}

/** The records of a batch parsed by hand from its buffer (the documented layout), with padding. */
function parseLayout(batch: FactBatch): { fact: RawFact; padding: number[] }[] {
  const { data, bytes: end, count } = sharedOf(batch);
  const view = new DataView(data);
  const u8 = new Uint8Array(data);
  const out: { fact: RawFact; padding: number[] }[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const p = view.getUint32(at, true);
    const d = view.getUint32(at + 4, true);
    const id = u8.slice(at + 8, at + 40);
    const deps = Array.from({ length: d }, (_, k) => u8.slice(at + 40 + 32 * k, at + 72 + 32 * k));
    const payloadAt = at + 40 + 32 * d;
    out.push({ fact: { id, deps, payload: u8.slice(payloadAt, payloadAt + p) }, padding: Array.from(u8.subarray(payloadAt + p, payloadAt + pad4(p))) });
    at = payloadAt + pad4(p);
  }
  expect(at).toBe(end);
  return out;
}

type AnyKernel = Kernel | TwoLaneKernel | EscalatingKernel;
type KernelKind = 'Kernel' | 'TwoLaneKernel' | 'EscalatingKernel';
const KINDS: readonly KernelKind[] = ['Kernel', 'TwoLaneKernel', 'EscalatingKernel'];

function makeKernel(kind: KernelKind, options: { indexCapacity?: number; indexSeed?: number; balance?: bigint } = {}): AnyKernel {
  const cell = new ConservationState(options.balance ?? 0n, -1000n, 1000n).toBytes();
  const opts = { indexCapacity: options.indexCapacity ?? 4096, ...(options.indexSeed === undefined ? {} : { indexSeed: options.indexSeed }) };
  const Ctor = kind === 'Kernel' ? Kernel : kind === 'TwoLaneKernel' ? TwoLaneKernel : EscalatingKernel;
  return Ctor.withState(new TotalSupplyInvariant(), cell, opts);
}

/** Everything observable about a kernel, comparable. */
function snap(k: AnyKernel, probes: readonly RawFact[] = []) {
  return {
    state: toHex(k.state.toBytes()),
    clock: toHex(k.clock.toBytes()),
    frontier: k.frontier().map(toHex),
    size: k.size,
    digest: toHex(k.digest()),
    lastInvariantError: k.lastInvariantError,
    mode: k instanceof EscalatingKernel ? k.mode : -1,
    contains: probes.map((f) => k.contains(f.id)),
  };
}

const KNOWN_CODES = new Set<number>(Object.values(AdmitCode));

// ------------------------------------------------------------------------- random fact streams

interface Step {
  kind: 'new' | 'dup' | 'randomId';
  deps: number[];
  missingDep: boolean;
  delta: number;
  payload: 'ok' | 'short' | 'long';
  size: number;
  pick: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.oneof({ arbitrary: fc.constant('new' as const), weight: 8 }, { arbitrary: fc.constant('dup' as const), weight: 2 }, { arbitrary: fc.constant('randomId' as const), weight: 1 }),
  deps: fc.oneof({ arbitrary: fc.array(fc.nat(), { maxLength: 3 }), weight: 6 }, { arbitrary: fc.array(fc.nat(), { minLength: 10, maxLength: MAX_DEPS }), weight: 1 }),
  missingDep: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
  delta: fc.oneof({ arbitrary: fc.integer({ min: -400, max: 400 }), weight: 9 }, { arbitrary: fc.constantFrom(5000, -5000), weight: 1 }),
  payload: fc.oneof({ arbitrary: fc.constant('ok' as const), weight: 8 }, { arbitrary: fc.constant('short' as const), weight: 1 }, { arbitrary: fc.constant('long' as const), weight: 1 }),
  size: fc.nat({ max: 3000 }),
  pick: fc.nat(),
});

/**
 * Facts from steps: deps on earlier facts (admitted or not, repeats allowed), sometimes on an id
 * nobody has; duplicates of earlier facts; ids that are not content addresses; payloads too short
 * for TotalSupply (MalformedFact) or long (up to ~3 KB); deltas that break the ±1000 bounds.
 */
function buildFacts(steps: readonly Step[], salt: number): RawFact[] {
  const out: RawFact[] = [];
  steps.forEach((s, n) => {
    if (s.kind === 'dup' && out.length > 0) {
      out.push(out[s.pick % out.length]!);
      return;
    }
    const nonce = salt * 100_000 + n;
    const deps = out.length === 0 ? [] : s.deps.map((d) => out[d % out.length]!.id);
    if (s.missingDep) deps.push(bytes(32, nonce ^ 0x5a5a));
    while (deps.length > MAX_DEPS) deps.pop();
    const payload =
      s.payload === 'short' ? bytes(s.size % 16, nonce) : s.payload === 'long' ? supply(s.delta, nonce, 8 + s.size) : supply(s.delta, nonce, 8 + (s.size % 40));
    const id = s.kind === 'randomId' ? bytes(32, nonce ^ 0x77) : factId(deps, payload);
    out.push({ id, deps, payload });
  });
  return out;
}

// ===================================================================================== tests

describe('FactBatch: building', () => {
  it('starts empty; sizes are validated', () => {
    for (const b of [new FactBatch(), new FactBatch(1), new FactBatch(5, 40), new FactBatch(3, 41)]) {
      expect(b.length).toBe(0);
      expect(b.byteLength).toBe(0);
      expect(b.codes.length).toBe(0);
      expect(b.inFlight).toBe(false);
      expect(contents(b)).toEqual([]);
    }
    expect(DEFAULT_BATCH_FACTS).toBe(1024);
    for (const facts of [0, -1, 1.5, Number.NaN, MAX_BATCH_FACTS + 1, Number.POSITIVE_INFINITY, '4' as unknown as number]) {
      expectInvalid(() => new FactBatch(facts));
    }
    for (const size of [0, 39, -40, 40.5, Number.NaN]) expectInvalid(() => new FactBatch(1, size));
  });

  it('push, pushRaw and from append copies in order; length, byteLength and recordBytes add up', () => {
    const facts = chain(5);
    const a = new FactBatch();
    expect(a.push(facts[0]!)).toBe(a); // chainable
    a.push(facts[1]!).pushRaw(facts[2]!.id, facts[2]!.deps, facts[2]!.payload);
    expect(a.length).toBe(3);
    for (const f of facts.slice(3)) a.push(f);
    expectContents(a, facts);
    expect(a.byteLength).toBe(facts.reduce((s, f) => s + FactBatch.recordBytes(f as Fact), 0));
    for (const f of facts) expect(FactBatch.recordBytes(f as Fact)).toBe(recordBytes(f));
    // from: an array, any iterable, created facts (frozen deps), an empty list.
    expectContents(FactBatch.from(facts as Fact[]), facts);
    expectContents(FactBatch.from((function* () {
      yield* facts as Fact[];
    })()), facts);
    const created = [createFact([], supply(1, 1)), createFact([facts[0]!.id, facts[1]!.id], supply(-1, 2, 33))];
    expectContents(FactBatch.from(created), created);
    const empty = FactBatch.from([]);
    expect(empty.length).toBe(0);
    expect(empty.byteLength).toBe(0);
  });

  it('copies on push: changing the pushed arrays afterwards changes nothing', () => {
    const f = fact([bytes(32, 1), bytes(32, 2)], 5, 9, 13);
    const original = { id: f.id.slice(), deps: f.deps.map((d) => d.slice()), payload: f.payload.slice() };
    const batch = new FactBatch().push(f);
    f.id.fill(1);
    f.deps[0]!.fill(2);
    f.payload.fill(3);
    (f.deps as Uint8Array[]).push(bytes(32, 3));
    expectContents(batch, [original]);
  });

  it('writes the documented layout, with zero padding to 4 bytes, also after clear over old bytes', () => {
    const batch = new FactBatch(2, 64);
    // Fill the buffer with non-zero bytes first: big payloads whose bytes are all 0xff.
    for (let i = 0; i < 6; i++) batch.pushRaw(new Uint8Array(32).fill(0xff), [new Uint8Array(32).fill(0xff)], new Uint8Array(101 + i).fill(0xff));
    batch.clear();
    expect(batch.length).toBe(0);
    expect(batch.byteLength).toBe(0);
    const facts: RawFact[] = [0, 1, 2, 3, 5, 7, 13].map((len, i) => ({ id: bytes(32, i), deps: i % 2 ? [bytes(32, 100 + i)] : [], payload: bytes(len, 50 + i) }));
    for (const f of facts) batch.push(f as Fact);
    const parsed = parseLayout(batch);
    expect(parsed.map((p) => hexFact(p.fact))).toEqual(facts.map(hexFact));
    for (const p of parsed) expect(p.padding.every((b) => b === 0)).toBe(true);
    // And nothing stale follows the last record.
    const { data, bytes: end } = sharedOf(batch);
    expect(new Uint8Array(data, end, Math.min(64, data.byteLength - end)).every((b) => b === 0)).toBe(true);
  });

  it('grows far past its initial size: 3,000 mixed facts, 64 KiB payloads, 16 deps', () => {
    const batch = new FactBatch(1, 40);
    const facts: RawFact[] = [];
    const sizes = [0, 1, 3, 4, 17, 255, 1024, MAX_PAYLOAD_BYTES - 1, MAX_PAYLOAD_BYTES];
    for (let i = 0; i < 3000; i++) {
      const big = i % 97 === 0;
      const payload = bytes(big ? sizes[(i / 97) % sizes.length]! : i % 61, i);
      const deps = Array.from({ length: i % 50 === 0 ? MAX_DEPS : i % 4 }, (_, k) => bytes(32, i * 31 + k));
      facts.push({ id: bytes(32, ~i), deps, payload });
      batch.push(facts[i]! as Fact);
    }
    expectContents(batch, facts);
    expect(batch.codes.length).toBe(3000);
    // A reused batch keeps its room and grows again as needed.
    batch.clear();
    expectContents(batch, []);
    const again = facts.slice(0, 50).reverse();
    for (const f of again) batch.push(f as Fact);
    expectContents(batch, again);
  });

  it('keeps a fact of the wrong shape as a refused record: admission gives it exactly the code the kernel gives it', () => {
    const good = fact([], 1, 1);
    const batch = new FactBatch(2, 40).push(good);
    const before = { length: batch.length, byteLength: batch.byteLength };
    const id = bytes(32, 5);
    const payload = new Uint8Array(4);
    const sparse = new Array<Uint8Array>(2);
    sparse[1] = bytes(32, 6);
    type Pushed = () => unknown;
    const bad: Pushed[] = [
      // not a fact
      () => batch.push(null as unknown as Fact),
      () => batch.push(undefined as unknown as Fact),
      () => batch.push(42 as unknown as Fact),
      () => batch.push('fact' as unknown as Fact),
      () => batch.push({} as unknown as Fact),
      () => batch.push({ id, deps: [] } as unknown as Fact),
      // bad id length / type
      () => batch.pushRaw(new Uint8Array(31), [], payload),
      () => batch.pushRaw(new Uint8Array(33), [], payload),
      () => batch.pushRaw(new Uint8Array(0), [], payload),
      () => batch.pushRaw(Array.from(id) as unknown as Uint8Array, [], payload),
      () => batch.pushRaw(id.buffer as unknown as Uint8Array, [], payload),
      // deps: not an array, > 16, a bad dep, a hole
      () => batch.pushRaw(id, id as unknown as Uint8Array[], payload),
      () => batch.pushRaw(id, Array.from({ length: MAX_DEPS + 1 }, (_, k) => bytes(32, k)), payload),
      () => batch.pushRaw(id, Array.from({ length: MAX_DEPS + 1 }, () => id), payload), // 17 copies of one dep
      () => batch.pushRaw(id, [bytes(32, 1), new Uint8Array(16)], payload),
      () => batch.pushRaw(id, [null as unknown as Uint8Array], payload),
      () => batch.pushRaw(id, sparse, payload),
      // payload: too large, not bytes
      () => batch.pushRaw(id, [], new Uint8Array(MAX_PAYLOAD_BYTES + 1)),
      () => batch.push({ id, deps: [], payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1) }),
      () => batch.pushRaw(id, [], new ArrayBuffer(4) as unknown as Uint8Array),
      () => batch.pushRaw(id, [], [1, 2, 3] as unknown as Uint8Array),
      () => batch.pushRaw(id, [], undefined as unknown as Uint8Array),
      // recordBytes and from
      () => FactBatch.recordBytes(null as unknown as Fact),
      () => FactBatch.from([good as Fact, null as unknown as Fact]),
      () => FactBatch.from([good as Fact, { id: new Uint8Array(31), deps: [], payload } as Fact]),
    ];
    // recordBytes and from, last three entries, are checked below; the pushes each add one record.
    const pushes = bad.slice(0, bad.length - 3);
    for (const [n, fn] of pushes.entries()) {
      expect(fn).not.toThrow();
      expect(batch.length).toBe(before.length + n + 1);
      expect(batch.byteLength).toBe(before.byteLength + 40 * (n + 1));
    }
    // What a kernel says about the same inputs, one by one (the payload is checked first there too).
    const oneByOne = makeKernel('Kernel');
    const expected: number[] = [AdmitCode.Ok];
    expected.push(...Array.from({ length: 6 }, () => AdmitCode.MalformedFact)); // not facts
    expected.push(...Array.from({ length: 5 }, () => AdmitCode.MalformedFact)); // ids
    expected.push(...Array.from({ length: 6 }, () => AdmitCode.MalformedFact)); // deps
    expected.push(AdmitCode.PayloadTooLarge, AdmitCode.PayloadTooLarge); // payload too large
    expected.push(...Array.from({ length: 3 }, () => AdmitCode.MalformedFact)); // payload not bytes
    expect(oneByOne.tryAdmit(null as unknown as Fact)).toBe(AdmitCode.MalformedFact);
    expect(oneByOne.tryAdmitRaw(id, [], new Uint8Array(MAX_PAYLOAD_BYTES + 1))).toBe(AdmitCode.PayloadTooLarge);
    expect(oneByOne.tryAdmitRaw(new Uint8Array(31), [], payload)).toBe(AdmitCode.MalformedFact);
    expect(oneByOne.tryAdmitRaw(id, sparse, payload)).toBe(AdmitCode.MalformedFact);
    const k = makeKernel('Kernel');
    const result = k.admitBatch(batch);
    expect(Array.from(result.codes)).toEqual(expected);
    expect(result.admitted).toBe(1);
    expect(k.size).toBe(1);
    // recordBytes: a refused record's 40 bytes; from: the same refused records.
    expect(FactBatch.recordBytes(null as unknown as Fact)).toBe(40);
    expect(Array.from(makeKernel('Kernel').admitBatch(FactBatch.from([good as Fact, null as unknown as Fact])).codes)).toEqual([0, AdmitCode.MalformedFact]);
    expect(
      Array.from(makeKernel('Kernel').admitBatch(FactBatch.from([good as Fact, { id: new Uint8Array(31), deps: [], payload } as Fact])).codes),
    ).toEqual([0, AdmitCode.MalformedFact]);
    // The limits themselves are fine.
    const limits = new FactBatch(1, 40).pushRaw(id, Array.from({ length: MAX_DEPS }, (_, k) => bytes(32, k)), new Uint8Array(MAX_PAYLOAD_BYTES));
    expect(limits.length).toBe(1);
    expect(limits.byteLength).toBe(8 + 32 + 32 * MAX_DEPS + MAX_PAYLOAD_BYTES);
  });

  it('a forged refused record with an unknown code or a payload length is damage: MalformedFact from there on', () => {
    const batch = FactBatch.from([fact([], 1, 1) as Fact, null as unknown as Fact, fact([], 1, 2) as Fact]);
    const shared = (batch as unknown as { shared: SharedBatch }).shared;
    const words = new DataView(shared.data);
    // The refused record starts after the first record.
    const at = FactBatch.recordBytes(fact([], 1, 1) as Fact);
    expect(words.getUint32(at + 4, true)).toBe((0x8000_0000 | AdmitCode.MalformedFact) >>> 0);
    const k1 = makeKernel('Kernel');
    expect(Array.from(k1.admitBatch(batch).codes)).toEqual([0, AdmitCode.MalformedFact, 0]);
    words.setUint32(at + 4, 0x8000_0000 | AdmitCode.Ok, true);
    expect(Array.from(makeKernel('Kernel').admitBatch(batch).codes)).toEqual([0, AdmitCode.MalformedFact, AdmitCode.MalformedFact]);
    words.setUint32(at + 4, 0x8000_0000 | AdmitCode.MalformedFact, true);
    words.setUint32(at, 4, true);
    expect(Array.from(makeKernel('Kernel').admitBatch(batch).codes)).toEqual([0, AdmitCode.MalformedFact, AdmitCode.MalformedFact]);
  });

  it('a batch in flight (sealed for a pool thread) refuses push, clear and admitBatch until unsealed', () => {
    const batch = FactBatch.from(chain(3) as Fact[]);
    const internal = batch as unknown as { seal(): SharedBatch; unseal(): void };
    const handles = internal.seal();
    expect(batch.inFlight).toBe(true);
    expect(handles.count).toBe(3);
    expect(handles.bytes).toBe(batch.byteLength);
    const k = makeKernel('Kernel');
    expectInvalid(() => batch.push(fact([], 1, 99) as Fact));
    expectInvalid(() => batch.clear());
    expectInvalid(() => k.admitBatch(batch));
    expectInvalid(() => internal.seal());
    expect(k.size).toBe(0);
    expect(batch.length).toBe(3);
    internal.unseal();
    expect(batch.inFlight).toBe(false);
    expect(k.admitBatch(batch).admitted).toBe(3);
  });
});

describe('Kernel.admitBatch', () => {
  it('admits a batch in order and reports one code per fact', () => {
    const k = makeKernel('Kernel');
    const [a, b, c] = chain(3);
    const orphan = fact([bytes(32, 123)], 1, 77);
    const over = fact([a!.id], 5000, 78); // past the +1000 bound
    const short = { id: bytes(32, 9), deps: [], payload: new Uint8Array(5) };
    const batch = FactBatch.from([a, b, a, orphan, over, short, c] as Fact[]);
    const r = k.admitBatch(batch);
    expect(Array.from(r.codes)).toEqual([
      AdmitCode.Ok,
      AdmitCode.Ok,
      AdmitCode.DuplicateFact,
      AdmitCode.CausalityViolation,
      AdmitCode.InvariantViolation,
      AdmitCode.MalformedFact,
      AdmitCode.Ok,
    ]);
    expect(r.admitted).toBe(3);
    expect(r.codes).toBeInstanceOf(Uint8Array);
    expect(k.size).toBe(3);
    expect(Array.from(batch.codes)).toEqual(Array.from(r.codes));
  });

  it('an empty batch admits nothing and changes nothing', () => {
    const k = makeKernel('TwoLaneKernel');
    const before = snap(k);
    const r = k.admitBatch(new FactBatch());
    expect(r.admitted).toBe(0);
    expect(r.codes.length).toBe(0);
    expect(snap(k)).toEqual(before);
  });

  it('rejects anything but a FactBatch with InvalidArgumentError', () => {
    const k = makeKernel('Kernel');
    const facts = chain(2);
    for (const bad of [null, undefined, 1, 'batch', {}, facts, sharedOf(FactBatch.from(facts as Fact[]))]) {
      expectInvalid(() => k.admitBatch(bad as unknown as FactBatch));
    }
    expect(k.size).toBe(0);
  });

  it('gives exactly the codes and final state of tryAdmitRaw one fact at a time, in chunks through one reused batch (fast-check)', () => {
    let rejections = 0;
    const seen = new Set<number>();
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 0, maxLength: 70, size: 'max' }),
        fc.constantFrom(...KINDS),
        fc.constantFrom(12, 40, 4096),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.nat({ max: 1000 }),
        (steps, kind, indexCapacity, chunkSizes, seedA, seedB, salt) => {
          const facts = buildFacts(steps, salt);
          const one = makeKernel(kind, { indexCapacity, indexSeed: seedA });
          const many = makeKernel(kind, { indexCapacity, indexSeed: seedB });
          const want = facts.map((f) => one.tryAdmitRaw(f.id, f.deps, f.payload));
          // Batches: chunk sizes cycle; one small batch reused (cleared) for every chunk.
          const batch = new FactBatch(1, 40);
          const got: number[] = [];
          let admitted = 0;
          for (let at = 0, c = 0; at < facts.length; c++) {
            const size = chunkSizes[c % chunkSizes.length]!;
            batch.clear();
            for (const f of facts.slice(at, at + size)) batch.pushRaw(f.id, f.deps, f.payload);
            const r = many.admitBatch(batch);
            expect(r.codes.length).toBe(Math.min(size, facts.length - at));
            got.push(...r.codes);
            admitted += r.admitted;
            expect(r.admitted).toBe(Array.from(r.codes).filter((x) => x === 0).length);
            at += size;
          }
          expect(got).toEqual(want);
          expect(admitted).toBe(want.filter((x) => x === 0).length);
          expect(snap(many, facts)).toEqual(snap(one, facts));
          for (const code of want) {
            seen.add(code);
            if (code !== 0) rejections++;
          }
        },
      ),
      { numRuns: 150 },
    );
    // The generator reached every kind of outcome.
    for (const code of [
      AdmitCode.Ok,
      AdmitCode.CausalityViolation,
      AdmitCode.InvariantViolation,
      AdmitCode.MalformedFact,
      AdmitCode.DuplicateFact,
      AdmitCode.CausalHorizonExceeded,
    ]) {
      expect(seen.has(code), `code ${code} never produced`).toBe(true);
    }
    expect(rejections).toBeGreaterThan(100);
  });

  it('an EscalatingKernel escalates at the same fact in a batch as one by one', () => {
    const facts: RawFact[] = [];
    for (let i = 0; i < 400; i++) facts.push(fact(i > 0 && i % 3 === 0 ? [facts[i - 1]!.id] : [], i % 2 ? 1 : -1, 10_000 + i));
    const one = makeKernel('EscalatingKernel') as EscalatingKernel;
    const many = makeKernel('EscalatingKernel') as EscalatingKernel;
    const want = facts.map((f) => one.tryAdmitRaw(f.id, f.deps, f.payload));
    const r = many.admitBatch(FactBatch.from(facts as Fact[]));
    expect(Array.from(r.codes)).toEqual(want);
    expect(one.mode).toBe(1); // it did escalate
    expect(snap(many, facts)).toEqual(snap(one, facts));
  });

  it('returns a copy of the codes: it stays put when the batch is cleared, reused and admitted again', () => {
    const k = makeKernel('Kernel');
    const facts = chain(4);
    const batch = FactBatch.from(facts as Fact[]);
    const first = k.admitBatch(batch);
    expect(Array.from(first.codes)).toEqual([0, 0, 0, 0]);
    const view = batch.codes;
    // The result is not the batch's view.
    first.codes[0] = 99;
    expect(view[0]).toBe(0);
    first.codes[0] = 0;
    // Admitted again: every fact is a duplicate now; the first result does not change.
    const second = k.admitBatch(batch);
    expect(Array.from(second.codes)).toEqual([10, 10, 10, 10]);
    expect(Array.from(first.codes)).toEqual([0, 0, 0, 0]);
    expect(Array.from(batch.codes)).toEqual([10, 10, 10, 10]);
    // Cleared and refilled with other facts, some rejected.
    batch.clear();
    expect(batch.codes.length).toBe(0);
    const more = chain(3, 1);
    batch.push(more[0] as Fact).push(fact([bytes(32, 4242)], 1, 4242) as Fact).push(more[1] as Fact);
    const third = k.admitBatch(batch);
    expect(Array.from(third.codes)).toEqual([0, AdmitCode.CausalityViolation, 0]);
    expect(third.admitted).toBe(2);
    expect(Array.from(first.codes)).toEqual([0, 0, 0, 0]);
    expect(Array.from(second.codes)).toEqual([10, 10, 10, 10]);
    // Grown past its code buffer: still exact.
    batch.clear();
    const lots = chain(2000, 2);
    for (const f of lots) batch.push(f as Fact);
    const fourth = k.admitBatch(batch);
    expect(fourth.admitted).toBe(2000);
    expect(fourth.codes.length).toBe(2000);
    expect(Array.from(third.codes)).toEqual([0, AdmitCode.CausalityViolation, 0]);
  });

  it('the kernel keeps no view of the batch: overwriting the batch after admission changes nothing', () => {
    const k = makeKernel('TwoLaneKernel');
    const ref = makeKernel('TwoLaneKernel');
    const facts = chain(40, 3);
    for (const f of facts) ref.tryAdmitRaw(f.id, f.deps, f.payload);
    const batch = FactBatch.from(facts as Fact[]);
    expect(k.admitBatch(batch).admitted).toBe(40);
    const before = snap(k, facts);
    expect(before).toEqual(snap(ref, facts));
    // Overwrite every byte the facts occupied (clear zeroes, then different facts over them).
    batch.clear();
    for (let i = 0; i < 40; i++) batch.pushRaw(new Uint8Array(32).fill(0xee), [new Uint8Array(32).fill(0xdd)], new Uint8Array(200).fill(0xcc));
    expect(snap(k, facts)).toEqual(before);
    // And the kernel goes on: the next fact of the chain is admitted, duplicates are still found.
    expect(k.tryAdmitRaw(facts[5]!.id, facts[5]!.deps, facts[5]!.payload)).toBe(AdmitCode.DuplicateFact);
    const next = fact([facts[39]!.id], 1, 9999);
    expect(k.tryAdmitRaw(next.id, next.deps, next.payload)).toBe(AdmitCode.Ok);
  });
});

// ---------------------------------------------------------------------------- hostile buffers

/** A hand-made batch: `records` laid out as documented (headers can be forged), `count` facts. */
function forge(
  records: readonly { payloadLength?: number; depCount?: number; id: Uint8Array; deps: readonly Uint8Array[]; payload: Uint8Array }[],
  options: { count?: number; bytes?: number; dataBytes?: number; codeBytes?: number } = {},
): SharedBatch {
  const size = records.reduce((s, r) => s + 40 + 32 * r.deps.length + pad4(r.payload.length), 0);
  const data = new SharedArrayBuffer(options.dataBytes ?? Math.max(size, 4));
  const view = new DataView(data);
  const u8 = new Uint8Array(data);
  let at = 0;
  for (const r of records) {
    view.setUint32(at, r.payloadLength ?? r.payload.length, true);
    view.setUint32(at + 4, r.depCount ?? r.deps.length, true);
    u8.set(r.id, at + 8);
    r.deps.forEach((d, k) => u8.set(d, at + 40 + 32 * k));
    u8.set(r.payload, at + 40 + 32 * r.deps.length);
    at += 40 + 32 * r.deps.length + pad4(r.payload.length);
  }
  const count = options.count ?? records.length;
  const codes = new SharedArrayBuffer(options.codeBytes ?? Math.max(count, 1));
  new Uint8Array(codes).fill(0xee); // stale codes: every fact must get a fresh one
  return { data, codes, count, bytes: options.bytes ?? at };
}

const codesOf = (b: SharedBatch): number[] => Array.from(new Uint8Array(b.codes, 0, b.count));

/** Admits `b` into a fresh kernel and into a reference that admits the first `good` facts one by one; compares. */
function expectPrefixAdmitted(b: SharedBatch, facts: readonly RawFact[], good: number): void {
  const k = makeKernel('Kernel');
  const ref = makeKernel('Kernel');
  const want = facts.slice(0, good).map((f) => ref.tryAdmitRaw(f.id, f.deps, f.payload));
  const admitted = admitShared(b, k);
  expect(codesOf(b)).toEqual([...want, ...Array<number>(b.count - good).fill(AdmitCode.MalformedFact)]);
  expect(admitted).toBe(want.filter((x) => x === 0).length);
  expect(snap(k, facts)).toEqual(snap(ref, facts));
}

/** Pieces of hostile buffers: well-formed records, garbage, and plausible headers over garbage. */
const chunkArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ deps: fc.nat({ max: 3 }), payload: fc.nat({ max: 40 }), seed: fc.nat() }).map(({ deps, payload, seed }) => {
      const out = new Uint8Array(40 + 32 * deps + pad4(payload));
      const v = new DataView(out.buffer);
      v.setUint32(0, payload, true);
      v.setUint32(4, deps, true);
      out.set(bytes(out.length - 8 - pad4(payload) + payload, seed), 8);
      return out;
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(0, 3, 64, 4096, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, 0xffffffff), fc.constantFrom(0, 1, 16, 17, 0xffffffff), fc.uint8Array({ minLength: 32, maxLength: 100 }))
      .map(([p, d, rest]) => {
        const out = new Uint8Array(8 + rest.length);
        const v = new DataView(out.buffer);
        v.setUint32(0, p, true);
        v.setUint32(4, d, true);
        out.set(rest, 8);
        return out;
      }),
  },
);
const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

describe('admitShared over damaged and hostile buffers', () => {
  const facts = chain(6, 7);

  it('an intact forged batch is admitted like the FactBatch it mirrors', () => {
    expectPrefixAdmitted(forge(facts), facts, 6);
    const batch = FactBatch.from(facts as Fact[]);
    const forged = forge(facts);
    expect(Array.from(new Uint8Array(forged.data))).toEqual(Array.from(new Uint8Array(sharedOf(batch).data, 0, batch.byteLength)));
  });

  it('a bad dep count makes that record and every later one MalformedFact', () => {
    for (const depCount of [MAX_DEPS + 1, 17, 1000, 0x7fffffff, 0xffffffff]) {
      for (const bad of [0, 3, 5]) {
        const records = facts.map((f, i) => (i === bad ? { ...f, depCount } : f));
        expectPrefixAdmitted(forge(records), facts, bad);
      }
    }
  });

  it('a dep count that is in range but runs past the end is MalformedFact too', () => {
    // The last record claims 16 deps it does not have.
    const records = facts.map((f, i) => (i === 5 ? { ...f, depCount: MAX_DEPS } : f));
    expectPrefixAdmitted(forge(records), facts, 5);
  });

  it('a payload length past the end or past the limit makes that record and every later one MalformedFact', () => {
    const end = forge(facts).bytes;
    for (const payloadLength of [end, end + 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, 0x80000000, 0xffffffff]) {
      for (const bad of [0, 2, 5]) {
        const records = facts.map((f, i) => (i === bad ? { ...f, payloadLength } : f));
        expectPrefixAdmitted(forge(records), facts, bad);
      }
    }
    // Past the batch's length but inside the buffer: still refused (nothing past `bytes` is read).
    const roomy = forge(
      facts.map((f, i) => (i === 5 ? { ...f, payloadLength: f.payload.length + 64 } : f)),
      { dataBytes: 4096 },
    );
    expectPrefixAdmitted(roomy, facts, 5);
  });

  it('a header past the limits (17 deps, 65,537-byte payload) is refused even when the bytes are there', () => {
    const seventeen = Array.from({ length: MAX_DEPS + 1 }, (_, k) => facts[k % 6]!.id);
    const tooBig = supply(1, 777, MAX_PAYLOAD_BYTES + 1 - 16);
    expect(tooBig.length).toBe(MAX_PAYLOAD_BYTES + 1);
    for (const odd of [
      { id: bytes(32, 1), deps: seventeen, payload: supply(1, 778) },
      { id: bytes(32, 2), deps: [facts[5]!.id], payload: tooBig },
    ]) {
      const list = [...facts, odd, fact([facts[5]!.id], 1, 779)];
      const b = forge(list);
      expect(b.bytes).toBe(list.reduce((s, f) => s + recordBytes(f), 0)); // every byte is present
      expectPrefixAdmitted(b, list, 6);
    }
  });

  it('a truncated batch: every record that does not fit entirely is MalformedFact', () => {
    const whole = forge(facts);
    const starts: number[] = [];
    let at = 0;
    for (const f of facts) {
      starts.push(at);
      at += recordBytes(f);
    }
    for (let cut = 0; cut <= whole.bytes; cut++) {
      const fit = starts.filter((s, i) => s + recordBytes(facts[i]!) <= cut).length;
      const b = forge(facts, { bytes: cut });
      expectPrefixAdmitted(b, facts, fit);
    }
  });

  it('a count larger than the records present gives MalformedFact for the missing ones', () => {
    for (const count of [7, 8, 64, 1000]) {
      const b = forge(facts, { count, dataBytes: 8192 }); // zeros after the records, inside the buffer
      expectPrefixAdmitted(b, facts, 6);
    }
    // A count smaller than the records: only the counted ones are admitted; the codes buffer
    // beyond the count is not touched.
    const b = forge(facts, { count: 2, codeBytes: 8 });
    expectPrefixAdmitted(b, facts, 2);
    expect(Array.from(new Uint8Array(b.codes, 2))).toEqual(Array(6).fill(0xee));
    // Count 0 admits nothing.
    const none = forge(facts, { count: 0 });
    const k = makeKernel('Kernel');
    expect(admitShared(none, k)).toBe(0);
    expect(k.size).toBe(0);
  });

  it('handles that do not fit their buffers throw SharedMemoryError before admitting anything', () => {
    const good = forge(facts);
    const bad: SharedBatch[] = [
      { ...good, count: good.codes.byteLength + 1 },
      { ...good, count: -1 },
      { ...good, count: 1.5 },
      { ...good, count: Number.NaN },
      { ...good, bytes: good.data.byteLength + 4 },
      { ...good, bytes: -4 },
      { ...good, bytes: 2.5 },
      { ...good, data: new ArrayBuffer(good.data.byteLength) as unknown as SharedArrayBuffer },
      { ...good, codes: new ArrayBuffer(8) as unknown as SharedArrayBuffer },
      { ...good, data: null as unknown as SharedArrayBuffer },
    ];
    for (const b of bad) {
      const k = makeKernel('Kernel');
      expectBadMemory(() => admitShared(b, k));
      expect(k.size).toBe(0);
    }
  });

  it('random bytes never make it throw, hang or read past the length: admitted prefix, then MalformedFact (fast-check)', () => {
    let damaged = 0;
    let some = 0;
    fc.assert(
      fc.property(
        fc.array(chunkArb, { maxLength: 12 }).map(concat),
        fc.nat({ max: 16 }),
        fc.nat(),
        fc.array(fc.record({ at: fc.nat(), value: fc.constantFrom(0, 1, 4, 16, 17, 32, 64, 0xffffffff) }), { maxLength: 4 }),
        (raw, count, cutSeed, headerWrites) => {
          const data = new SharedArrayBuffer(raw.length + 4);
          new Uint8Array(data).set(raw);
          // Small header values are likelier to parse: plant some at word boundaries.
          const view = new DataView(data);
          for (const w of headerWrites) {
            const at = (w.at % (raw.length + 1)) & ~3;
            if (at + 4 <= data.byteLength) view.setUint32(at, w.value, true);
          }
          const end = cutSeed % 2 === 0 ? raw.length : (cutSeed >>> 1) % (data.byteLength + 1);
          const codes = new SharedArrayBuffer(count + 3);
          new Uint8Array(codes).fill(0xee);
          const b = { data, codes, count, bytes: end };
          const r = recorder(b, (i) => (i % 3 === 2 ? AdmitCode.CausalityViolation : AdmitCode.Ok));
          const admitted = admitShared(b, r);
          expect(r.problems).toEqual([]);
          const got = codesOf(b);
          const calls = r.calls.length;
          expect(got.slice(0, calls)).toEqual(Array.from({ length: calls }, (_, i) => (i % 3 === 2 ? AdmitCode.CausalityViolation : 0)));
          expect(got.slice(calls)).toEqual(Array(count - calls).fill(AdmitCode.MalformedFact));
          expect(admitted).toBe(got.filter((x) => x === 0).length);
          expect(Array.from(new Uint8Array(codes, count))).toEqual([0xee, 0xee, 0xee]);
          if (calls < count) damaged++;
          if (calls > 0) some++;
          // A real kernel on the same bytes: no throw, only known codes.
          const codes2 = new SharedArrayBuffer(count + 1);
          const k = makeKernel('Kernel');
          const admitted2 = admitShared({ ...b, codes: codes2 }, k);
          const got2 = Array.from(new Uint8Array(codes2, 0, count));
          for (const c of got2) expect(KNOWN_CODES.has(c)).toBe(true);
          expect(got2.slice(calls)).toEqual(Array(count - calls).fill(AdmitCode.MalformedFact));
          expect(admitted2).toBe(k.size);
        },
      ),
      { numRuns: 400 },
    );
    expect(damaged).toBeGreaterThan(50);
    expect(some).toBeGreaterThan(20);
  });

  it('a valid batch damaged at a random record: the facts before it as one by one, MalformedFact from it on (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.constantFrom('depCount', 'payloadLength', 'truncate', 'count'),
        fc.nat({ max: 0xffff }),
        (steps, pick, how, noise) => {
          const list = buildFacts(steps, noise);
          const batch = FactBatch.from(list as Fact[]);
          const s = sharedOf(batch);
          const bad = pick % list.length;
          let at = 0;
          for (let i = 0; i < bad; i++) at += recordBytes(list[i]!);
          const view = new DataView(s.data);
          let handles: SharedBatch = s;
          if (how === 'depCount') view.setUint32(at + 4, MAX_DEPS + 1 + (noise % 1000), true);
          else if (how === 'payloadLength') view.setUint32(at, s.bytes - at + (noise % 64), true);
          else if (how === 'truncate') handles = { ...s, bytes: at + (noise % recordBytes(list[bad]!)) };
          else {
            // Claim more facts than the records: only the extra ones are missing.
            const codes = new SharedArrayBuffer(list.length + 1 + (noise % 5));
            handles = { ...s, codes, count: codes.byteLength };
          }
          const good = how === 'count' ? list.length : bad;
          expectPrefixAdmitted(handles, list, good);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Kernel.digest', () => {
  it('is 32 bytes; equal for kernels with equal histories, whatever the index seed, kind or admission path', () => {
    const facts = chain(30, 11);
    const a = makeKernel('Kernel', { indexSeed: 1 });
    const b = makeKernel('TwoLaneKernel', { indexSeed: 0xdeadbeef });
    const c = makeKernel('EscalatingKernel');
    expect(a.digest().length).toBe(HISTORY_DIGEST_BYTES);
    expect(HISTORY_DIGEST_BYTES).toBe(32);
    expect(toHex(a.digest())).toBe(toHex(b.digest()));
    for (const f of facts) a.tryAdmitRaw(f.id, f.deps, f.payload);
    b.admitBatch(FactBatch.from(facts as Fact[]));
    c.admitBatch(FactBatch.from(facts.slice(0, 10) as Fact[]));
    c.admitBatch(FactBatch.from(facts.slice(10) as Fact[]));
    expect(toHex(b.digest())).toBe(toHex(a.digest()));
    expect(toHex(c.digest())).toBe(toHex(a.digest()));
    // Reading it changes nothing.
    expect(toHex(a.digest())).toBe(toHex(a.digest()));
  });

  it('rejected facts do not change it', () => {
    const facts = chain(10, 12);
    const a = makeKernel('Kernel');
    const b = makeKernel('Kernel');
    for (const f of facts) a.tryAdmitRaw(f.id, f.deps, f.payload);
    const noise = [facts[3]!, fact([bytes(32, 1)], 1, 5000), fact([], 99_999, 5001), { id: bytes(32, 3), deps: [], payload: new Uint8Array(3) }];
    const r = b.admitBatch(FactBatch.from([...facts.slice(0, 5), ...noise, ...facts.slice(5)] as Fact[]));
    expect(r.admitted).toBe(10);
    expect(toHex(b.digest())).toBe(toHex(a.digest()));
  });

  it('differs when one fact differs, when the admission order differs, and when the initial state differs', () => {
    const base = chain(8, 13);
    const digestOf = (facts: readonly RawFact[], balance = 0n): string => {
      const k = makeKernel('Kernel', { balance });
      const r = k.admitBatch(FactBatch.from(facts as Fact[]));
      expect(r.admitted).toBe(facts.length);
      return toHex(k.digest());
    };
    const d0 = digestOf(base);
    // One payload byte of the last fact differs (same delta, so the same state): a different id.
    const last = base[7]!;
    const payload = last.payload.slice();
    payload[payload.length - 1]! ^= 1;
    const changed = [...base.slice(0, 7), { id: factId(last.deps, payload), deps: last.deps, payload }];
    expect(digestOf(changed)).not.toBe(d0);
    // A different delta in the middle.
    const other = fact([base[2]!.id], 1, 424242);
    expect(digestOf([...base.slice(0, 3), other])).not.toBe(digestOf([...base.slice(0, 3), fact([base[2]!.id], 2, 424242)]));
    // Two independent facts in either order: same state, different history.
    const x = fact([], 5, 31);
    const y = fact([], -2, 32);
    const kxy = makeKernel('Kernel');
    const kyx = makeKernel('Kernel');
    kxy.admitBatch(FactBatch.from([x, y] as Fact[]));
    kyx.admitBatch(FactBatch.from([y, x] as Fact[]));
    expect(toHex(kxy.state.toBytes())).toBe(toHex(kyx.state.toBytes()));
    expect(toHex(kxy.digest())).not.toBe(toHex(kyx.digest()));
    // A prefix differs from the whole.
    expect(digestOf(base.slice(0, 7))).not.toBe(d0);
    // The same facts from another initial state.
    expect(digestOf(base, 1n)).not.toBe(d0);
    // An empty kernel differs from one with a history; reset returns to the empty digest.
    const k = makeKernel('Kernel');
    const empty = toHex(k.digest());
    k.admitBatch(FactBatch.from(base as Fact[]));
    expect(toHex(k.digest())).toBe(d0);
    expect(d0).not.toBe(empty);
  });

  it('after reset, equal histories give equal digests again (a reset kernel vs a fresh one)', () => {
    const initial = new ConservationState(0n, -1000n, 1000n).toBytes();
    // Eight independent facts fill the frontier ring; then reset and a shorter history.
    const wide = Array.from({ length: 8 }, (_, i) => fact([], 1, 600 + i));
    const short = chain(2, 14);
    const fresh = makeKernel('Kernel');
    const reused = makeKernel('Kernel');
    expect(reused.admitBatch(FactBatch.from(wide as Fact[])).admitted).toBe(8);
    reused.reset(initial);
    expect(snap(reused, wide)).toEqual({ ...snap(fresh, wide), digest: snap(reused).digest });
    expect(toHex(reused.digest()), 'an empty reset kernel vs an empty fresh one').toBe(toHex(fresh.digest()));
    for (const k of [fresh, reused]) expect(k.admitBatch(FactBatch.from(short as Fact[])).admitted).toBe(2);
    expect(snap(reused, [...wide, ...short])).toEqual({ ...snap(fresh, [...wide, ...short]), digest: snap(reused).digest });
    expect(toHex(reused.digest()), 'the same two facts after reset vs fresh').toBe(toHex(fresh.digest()));
  });
});

describe('verifyLog', () => {
  it('reports an empty directory as an empty, valid log', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-verify-'));
    tmpDirs.push(dir);
    expect(verifyLog(dir)).toEqual({
      checkpoints: [],
      fromSequence: 1,
      lastSequence: 0,
      records: 0,
      payloadBytes: 0,
      segments: 0,
      tornTail: undefined,
    });
    // Read-only: it created nothing.
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
