/**
 * Shared by the durable-kernel test files: temp directories and kernels cleaned up after each
 * test, a seeded history of TotalSupply facts, and the in-memory reference a recovered kernel is
 * compared with. The library comes through lib.ts, which the `threads` project these files run in
 * loads from dist/ (DurableKernel starts its worker from compiled JS).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import {
  AdmitCode,
  DurableKernel,
  TotalSupplyInvariant,
  TwoLaneDurableKernel,
  TwoLaneKernel,
  factId,
  toHex,
  type DurableKernelOptions,
} from './lib.js';
import { rejectionOf } from './errors.js';
import { prng } from './random.mjs';

export const SMALL = { indexCapacity: 1 << 14, arenaBytes: 1 << 18, announce: false } as const;

/** The @internal fault plan of the persistence worker (stripped from the .d.ts). */
export interface FaultPlan {
  readonly failWriteAt?: number;
  readonly failSyncAt?: number;
  readonly ioCode?: string;
  readonly syncDelayMs?: number;
}
export type OpenOptions = DurableKernelOptions & { faults?: FaultPlan };

/** Temp dirs and kernels of the running test, cleaned up after it. */
export const testDirs: string[] = [];
export const openKernels = new Set<DurableKernel>();

export function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
  testDirs.push(dir);
  return dir;
}

export async function cleanup(dirs: string[]): Promise<void> {
  await Promise.allSettled([...openKernels].map((k) => k.close()));
  openKernels.clear();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export async function open(dir: string, options: OpenOptions = {}): Promise<TwoLaneDurableKernel<TotalSupplyInvariant>> {
  const kernel = await TwoLaneDurableKernel.open(dir, new TotalSupplyInvariant(), { ...SMALL, backend: 'portable', ...options } as DurableKernelOptions);
  openKernels.add(kernel);
  return kernel;
}

export async function closeKernel(kernel: DurableKernel): Promise<void> {
  await kernel.close();
  openKernels.delete(kernel);
}

/** Runs `fn` over `items` with at most `n` at a time; every item runs, then the first error is thrown. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        try {
          await fn(item);
        } catch (error) {
          errors.push(error);
        }
      }
    }),
  );
  if (errors.length > 0) throw errors[0];
}

export interface Fact {
  readonly id: Uint8Array;
  readonly deps: Uint8Array[];
  readonly payload: Uint8Array;
}

/** Generates TotalSupply facts (±deltas, 16..2000-byte payloads, up to 3 deps) and remembers the admitted ones in order. */
export class History {
  readonly facts: Fact[] = [];
  private readonly rand: () => number;
  private counter = 0;

  constructor(seed: number) {
    this.rand = prng(seed);
  }

  make(options: { payloadBytes?: number; deps?: number } = {}): Fact {
    const r = this.rand;
    const n = ++this.counter;
    const size = options.payloadBytes ?? 16 + Math.floor(r() * 1985);
    const app = new Uint8Array(size - 16);
    for (let i = 0; i < app.length; i++) app[i] = Math.floor(r() * 256);
    let delta: bigint;
    if (app.length >= 4) {
      new DataView(app.buffer).setUint32(0, n, true); // unique payload, so unique ids
      delta = BigInt(Math.floor(r() * 2001) - 1000);
    } else {
      delta = BigInt(r() < 0.5 ? -n : n);
    }
    const want = Math.min(options.deps ?? Math.floor(r() * 4), this.facts.length);
    const deps: Uint8Array[] = [];
    const picked = new Set<number>();
    while (deps.length < want) {
      const i = Math.floor(r() * this.facts.length);
      if (picked.has(i)) continue;
      picked.add(i);
      deps.push(this.facts[i]!.id);
    }
    const payload = TotalSupplyInvariant.payload(delta, app);
    return { id: factId(deps, payload), deps, payload };
  }
}

/** Admits `count` new facts (Volatile), waiting for the disk on ArenaFull. */
export async function admitMany(kernel: DurableKernel, history: History, count: number, options: { payloadBytes?: number; deps?: number } = {}): Promise<Fact[]> {
  const out: Fact[] = [];
  for (let i = 0; i < count; i++) {
    const fact = history.make(options);
    let code = kernel.tryAdmitRaw(fact.id, fact.deps, fact.payload);
    while (code === AdmitCode.ArenaFull) {
      await kernel.flush();
      code = kernel.tryAdmitRaw(fact.id, fact.deps, fact.payload);
    }
    expect(code).toBe(AdmitCode.Ok);
    history.facts.push(fact);
    out.push(fact);
  }
  return out;
}

export interface Snap {
  readonly state: string;
  readonly size: number;
  readonly ids: string[];
  readonly frontier: string[];
  readonly clock: string;
}

export function snap(kernel: TwoLaneDurableKernel | TwoLaneKernel): Snap {
  return {
    state: toHex(kernel.state.toBytes()),
    size: kernel.size,
    // The set, in its canonical order: where an index keeps an id depends on its tiers.
    ids: [...kernel.exactIndex.ids()].map(toHex).sort(),
    frontier: kernel.frontier().map(toHex),
    clock: toHex(kernel.clock.toBytes()),
  };
}

/** The in-memory reference: a TwoLaneKernel that admitted `facts` in order. */
export function replay(facts: readonly Fact[]): Snap {
  const kernel = new TwoLaneKernel(new TotalSupplyInvariant(), { indexCapacity: 1 << 14 });
  for (const f of facts) kernel.admitRaw(f.id, f.deps, f.payload);
  return snap(kernel);
}

/** What `promise` rejected with; a kernel it opened instead is closed, and the test fails. */
export function rejection(promise: Promise<unknown>): Promise<unknown> {
  return rejectionOf(
    promise.then(async (value) => {
      if (value instanceof DurableKernel) {
        openKernels.add(value);
        await closeKernel(value);
      }
      return value;
    }),
  );
}

/**
 * The directory as a crash of the kernel's process would leave it right now: everything admitted
 * is flushed (fsynced), then the files are copied while the kernel still runs — so the manifest
 * says what the open and the segment starts recorded, not a clean close — except the LOCK (its
 * owner, this process, is alive). Returns the copy (`into`, or a new temp dir).
 */
export async function crashImage(kernel: DurableKernel, into: string = tmpDir()): Promise<string> {
  await kernel.flush();
  // The manifest first: the worker may be starting a segment meanwhile, and it names a segment
  // only after creating it, so a manifest copied before the segments never names a missing one.
  // Temporary files come and go meanwhile (open deletes the ones a crash leaves anyway).
  const manifests = ['MANIFEST.1', 'MANIFEST.2'];
  fs.mkdirSync(into, { recursive: true });
  for (const name of manifests) fs.copyFileSync(path.join(kernel.dir, name), path.join(into, name));
  for (const name of fs.readdirSync(kernel.dir)) {
    if (name === 'LOCK' || manifests.includes(name) || name.endsWith('.tmp')) continue;
    fs.copyFileSync(path.join(kernel.dir, name), path.join(into, name));
  }
  return into;
}

/** A copy of a data directory in a fresh temp dir (removed with the others after the test). */
export function copyDir(src: string): string {
  const dst = tmpDir();
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

/** Flips one bit of a file in place (one byte read and written back): damage only a checksum can see. */
export function flipBit(file: string, byte: number, bit: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, byte);
    b[0] = b[0]! ^ (1 << bit);
    fs.writeSync(fd, b, 0, 1, byte);
  } finally {
    fs.closeSync(fd);
  }
}
