/**
 * Kernels over shared memory: a kernel created in the test thread is attached from real
 * worker_threads Workers (which run the compiled library in dist/), read and written across
 * threads, synchronised with Atomics rather than messages; bad shared memory is refused.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  CtfsError,
  InvalidArgumentError,
  Kernel,
  SharedMemoryError,
  TwoLaneKernel,
  fromHex,
  toHex,
  type SharedKernelMemory,
} from './helpers/lib.js';
import { fill, seq } from './helpers/ids.js';
import {
  SINGLE_KINDS,
  balanceOf,
  delta,
  hashId,
  hex,
  prng,
  randInt,
  singleKernel,
  supplyCell,
  totalSupply,
} from './helpers/kernels.js';
import { thrown } from './helpers/errors.js';
import { runWorker as runFixture, terminateWorkers, until } from './helpers/workers.js';

const WORKER = fileURLToPath(new URL('./fixtures/attach-worker.mjs', import.meta.url));
const WORKER_TIMEOUT_MS = 20_000;

interface WorkerReport {
  size: number;
  balance: string;
  contains: boolean[];
  frontier: string[];
  sizeBefore?: number;
  waitResult?: string;
  codes?: number[];
  results?: { threw: boolean; name?: string; code?: string; ctfs?: boolean }[];
  error?: string;
}

/** Starts the fixture worker; resolves with its one report, rejects on error, exit or timeout. */
function runWorker(workerData: Record<string, unknown>): Promise<WorkerReport> {
  return runFixture<WorkerReport>(WORKER, workerData, {
    timeoutMs: WORKER_TIMEOUT_MS,
    failed: (m) => (m.error !== undefined ? `worker failed: ${m.error}` : undefined),
  });
}

afterEach(async () => {
  await terminateWorkers();
});

/** 1,000 facts with random deps on earlier ones and deltas in [−5, 10]; returns the ids and the sum. */
function admitThousand(k: Kernel | TwoLaneKernel, salt: number): { ids: Uint8Array[]; sum: bigint } {
  const rng = prng(salt);
  const ids: Uint8Array[] = [];
  let sum = 0n;
  for (let i = 0; i < 1000; i++) {
    const id = hashId(i, salt);
    const deps = i > 0 && rng() < 0.7 ? [ids[randInt(rng, ids.length)]!] : [];
    const d = randInt(rng, 16) - 5;
    expect(k.tryAdmitRaw(id, deps, delta(d))).toBe(AdmitCode.Ok);
    ids.push(id);
    sum += BigInt(d);
  }
  return { ids, sum };
}

describe('a worker attached to a kernel created here', () => {
  it.each(SINGLE_KINDS)('(a) %s: main admits 1,000 facts and publishes; the worker sees every one and the exact balance', async (kind) => {
    const k = singleKernel(kind, totalSupply(), { cell: supplyCell(1_000_000n), indexCapacity: 4096 });
    const { ids, sum } = admitThousand(k, 11);
    expect(k.publish()).toBe(1000);
    const phantoms = [fill(0xee), seq(123456), hashId(5000, 11)];
    const probe = [...ids.filter((_, i) => i % 20 === 0), ids[999]!, ...phantoms];
    const r = await runWorker({ mode: 'read', kind, shared: k.shared, ids: probe.map(toHex) });
    expect(r.size).toBe(1000);
    expect(r.balance).toBe((1_000_000n + sum).toString());
    expect(r.contains).toEqual(probe.map((_, i) => i < probe.length - phantoms.length));
    expect(r.frontier).toEqual(k.frontier().map(hex));
    expect(r.frontier.length).toBeGreaterThan(0);
  });

  it('(b) no messages for synchronisation: the worker Atomics.waits until main publishes and notifies', async () => {
    const k = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 4096 });
    const flag = new Int32Array(new SharedArrayBuffer(8));
    const ids = Array.from({ length: 1000 }, (_, i) => hashId(i, 12));
    const done = runWorker({
      mode: 'wait',
      shared: k.shared,
      flag: flag.buffer,
      timeoutMs: WORKER_TIMEOUT_MS - 2000,
      ids: [ids[0]!, ids[999]!, fill(1)].map(toHex),
    });
    // Wait (bounded) until the worker has attached and read the empty kernel.
    await until(() => Atomics.load(flag, 1) === 1, 'the worker to attach', WORKER_TIMEOUT_MS);
    ids.forEach((id, i) => k.admitRaw(id, i > 0 ? [ids[i - 1]!] : [], delta(2)));
    k.publish();
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const r = await done;
    expect(r.sizeBefore).toBe(0);
    expect(['ok', 'not-equal']).toContain(r.waitResult);
    expect(r.size).toBe(1000);
    expect(r.balance).toBe('2000');
    expect(r.contains).toEqual([true, true, false]);
    expect(r.frontier).toEqual([hex(ids[999]!)]);
  });

  it('(c) the worker admits into the attached kernel and publishes; main syncs and sees it all', async () => {
    const k = Kernel.withState(totalSupply(), supplyCell(0n, 0n, 1_000_000n), { indexCapacity: 4096 });
    for (let i = 0; i < 10; i++) k.admitRaw(seq(i), i > 0 ? [seq(i - 1)] : [], delta(1));
    k.publish();
    const workerIds = Array.from({ length: 100 }, (_, i) => hashId(i, 13));
    const facts = workerIds.map((id, i) => ({ id: toHex(id), deps: [toHex(i === 0 ? seq(9) : workerIds[i - 1]!)], delta: 2 }));
    facts.push({ id: toHex(seq(3)), deps: [], delta: 1000 }); // a duplicate of main's fact
    facts.push({ id: toHex(fill(0x77)), deps: [toHex(fill(0x78))], delta: 1 }); // a phantom dep
    facts.push({ id: toHex(fill(0x79)), deps: [], delta: -10_000 }); // underflow
    const r = await runWorker({ mode: 'admit', shared: k.shared, facts, ids: [seq(0), workerIds[99]!].map(toHex) });
    expect(r.codes).toEqual([
      ...workerIds.map(() => AdmitCode.Ok),
      AdmitCode.DuplicateFact,
      AdmitCode.CausalityViolation,
      AdmitCode.InvariantViolation,
    ]);
    expect(r.size).toBe(110);
    expect(r.balance).toBe('210');
    expect(r.contains).toEqual([true, true]);

    // Main was the writer before; now it catches up with what the worker published.
    expect(k.sync().size).toBe(110);
    expect(k.size).toBe(110);
    expect(balanceOf(k.state.toBytes())).toBe(210n);
    for (const id of workerIds) expect(k.contains(id)).toBe(true);
    expect(k.contains(fill(0x77))).toBe(false);
    expect(k.contains(fill(0x79))).toBe(false);
    expect(k.frontier().map(hex)).toEqual(r.frontier);
    expect(k.frontier().map(hex)).toEqual([hex(workerIds[99]!)]);
    // A fact the worker admitted is a duplicate here, and a valid dep.
    expect(k.tryAdmitRaw(workerIds[50]!, [], delta(2))).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmitRaw(fromHex(facts[0]!.id), [seq(9)], delta(2))).toBe(AdmitCode.DuplicateFact);
    expect(k.tryAdmitRaw(fill(0x80), [workerIds[99]!, workerIds[0]!, seq(0)], delta(5))).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state.toBytes())).toBe(215n);
    expect(k.size).toBe(111);
    expect(k.frontier().map(hex)).toEqual([hex(fill(0x80))]);
  });

  it('(d) garbage handed to Kernel.attach in a worker is refused with SharedMemoryError', async () => {
    const k = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    const garbage = [
      {},
      { control: new SharedArrayBuffer(320), history: k.shared.history },
      { control: k.shared.control, history: { directory: new SharedArrayBuffer(1024), arenas: k.shared.history.arenas } },
      { control: k.shared.history.directory, history: { directory: k.shared.control, arenas: k.shared.history.arenas } },
    ];
    const r = await runWorker({ mode: 'attach-garbage', garbage });
    expect(r.results).toEqual(garbage.map(() => ({ threw: true, name: 'SharedMemoryError', code: 'InvalidSharedMemory', ctfs: true })));
  });
});

describe('(d) Kernel.attach refuses garbage and wrong-size buffers', () => {
  const k = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
  k.admitRaw(seq(1), [], delta(1));
  const { control, history } = k.shared;
  const { directory, arenas } = history;
  const copyOf = (buffer: SharedArrayBuffer, length: number): SharedArrayBuffer => {
    const out = new SharedArrayBuffer(length);
    new Uint8Array(out).set(new Uint8Array(buffer, 0, Math.min(length, buffer.byteLength)));
    return out;
  };
  const biggerControl = copyOf(control, control.byteLength + 64);
  const plainControl = new ArrayBuffer(control.byteLength);
  new Uint8Array(plainControl).set(new Uint8Array(control));
  const at = (d: SharedArrayBuffer): SharedKernelMemory => ({ control, history: { directory: d, arenas } });

  const cases: [string, unknown][] = [
    ['an empty object', {}],
    ['a string', 'shared'],
    ['a number', 42],
    ['control only', { control }],
    ['history only', { history }],
    ['a zeroed control block', { control: new SharedArrayBuffer(control.byteLength), history }],
    ['a control block of the wrong size', { control: biggerControl, history }],
    ['a 100-byte control block', { control: new SharedArrayBuffer(100), history }],
    ['a non-shared ArrayBuffer as control', { control: plainControl, history }],
    ['a typed array as control', { control: new Uint8Array(control), history }],
    ['a zeroed directory', at(new SharedArrayBuffer(directory.byteLength))],
    ['a 10-byte directory', at(new SharedArrayBuffer(10))],
    ['a directory too big for its header', at(copyOf(directory, directory.byteLength + 64))],
    ['a truncated directory', at(copyOf(directory, directory.byteLength - 32))],
    ['swapped buffers', { control: directory, history: { directory: control, arenas } }],
    ['a non-shared directory', at(new ArrayBuffer(directory.byteLength) as unknown as SharedArrayBuffer)],
    ['no arenas', { control, history: { directory } }],
    ['arenas that are not growable', { control, history: { directory, arenas: arenas.map((a) => new SharedArrayBuffer(a.byteLength)) } }],
    ['one arena missing', { control, history: { directory, arenas: arenas.slice(1) } }],
    ['history of another kernel', { control, history: Kernel.withState(totalSupply(), supplyCell(0n)).shared.history }],
  ];

  it.each(cases)('%s → SharedMemoryError (InvalidSharedMemory) or InvalidArgumentError, never a kernel', (name, shared) => {
    const e = thrown(() => Kernel.attach(shared as SharedKernelMemory, totalSupply()));
    expect(e).toBeInstanceOf(CtfsError);
    if (typeof shared === 'object' && shared !== null) {
      expect(e, name).toBeInstanceOf(SharedMemoryError);
      expect((e as SharedMemoryError).code).toBe('InvalidSharedMemory');
    } else {
      expect(e).toBeInstanceOf(InvalidArgumentError);
    }
    for (const Ctor of [TwoLaneKernel]) expect(() => Ctor.attach(shared as SharedKernelMemory, totalSupply())).toThrow(CtfsError);
  });

  it('null → InvalidArgumentError; the original kernel is unharmed by every failed attach', () => {
    expect(() => Kernel.attach(null as unknown as SharedKernelMemory, totalSupply())).toThrow(InvalidArgumentError);
    expect(k.size).toBe(1);
    expect(k.tryAdmitRaw(seq(2), [seq(1)], delta(1))).toBe(AdmitCode.Ok);
    expect(balanceOf(k.state.toBytes())).toBe(2n);
    // A genuine attach still works after all the failures.
    const again = Kernel.attach(k.shared, totalSupply());
    expect(again.sync().size).toBe(0); // nothing published yet
    k.publish();
    expect(again.sync().size).toBe(2);
    expect(again.contains(seq(2))).toBe(true);
  });
});

describe('readers in the same thread', () => {
  it('an attached kernel sees only what was published', () => {
    const w = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    const r = Kernel.attach(w.shared, totalSupply());
    w.admitRaw(seq(1), [], delta(1));
    expect(r.size).toBe(0);
    w.publish();
    expect(r.size).toBe(0);
    expect(r.sync().size).toBe(1);
    expect(r.contains(seq(1))).toBe(true);
    expect(r.frontier().map(hex)).toEqual([hex(seq(1))]);
    expect(r.query([seq(1)])?.size).toBe(1);
  });

  it("a reader's frontier() and query() do not throw while the writer is ahead of its last publish", () => {
    const w = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 64 });
    const r = Kernel.attach(w.shared, totalSupply());
    w.admitRaw(seq(1), [], delta(1));
    w.publish();
    r.sync();
    w.admitRaw(seq(2), [seq(1)], delta(1)); // not yet published
    // Live reads on the reader must not fail. frontier() copies the writer's live ring (ids, not
    // looked up in the index), so it may name a fact this reader cannot see yet.
    expect(() => r.frontier()).not.toThrow();
    expect(r.frontier().map(hex)).toEqual([hex(seq(2))]);
    expect(r.contains(seq(2))).toBe(false);
    expect(r.query([seq(1)])).not.toBeNull();
    // The snapshot is the consistent read: state, frontier and size of the last publish.
    const view = r.sync();
    expect(view.size).toBe(1);
    expect(view.frontier.map(hex)).toEqual([hex(seq(1))]);
    expect(balanceOf(view.state.toBytes())).toBe(1n);
    w.publish();
    const next = r.sync();
    expect(next.size).toBe(2);
    expect(next.frontier.map(hex)).toEqual([hex(seq(2))]);
    expect(balanceOf(next.state.toBytes())).toBe(2n);
    expect(r.contains(seq(2))).toBe(true);
  });

  it('every snapshot pairs a state with the size it was published at', () => {
    const w = Kernel.withState(totalSupply(), supplyCell(0n), { indexCapacity: 256 });
    const r = Kernel.attach(w.shared, totalSupply());
    for (let i = 1; i <= 100; i++) {
      w.admitRaw(seq(i), [], delta(1));
      if (i % 7 === 0) w.publish();
      const view = r.sync();
      // balance = number of +1 facts published, whatever the writer has done since
      expect(balanceOf(view.state.toBytes())).toBe(BigInt(view.size));
      expect(view.size).toBe(Math.floor(i / 7) * 7);
    }
  });
});
