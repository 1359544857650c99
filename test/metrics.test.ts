/**
 * Metrics: LatencyHistogram (bucket edges, validation, lanes, a property against a sorting/binning
 * reference, real threads recording while the test thread records and scrapes), the prom-client
 * exposition (`promtool check metrics`, histogram invariants, outcomes, kernel gauges, durable
 * counters), MetricsServer on loopback (routes, methods, addresses, close), and a real Prometheus
 * scraping a MetricsServer end to end.
 *
 * A `threads` file: lib.ts is loaded from `dist/` here, as DurableKernel starts its persistence
 * worker from compiled JS and the histogram worker fixture imports dist; shared histograms cross
 * to the worker as SharedArrayBuffers.
 *
 * `promtool` and `prometheus` are looked up on PATH. Tests that need them are skipped when they
 * are missing, except under CI (`process.env.CI` set), where a missing binary fails the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { Registry as PromRegistry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  AlgebraicClass,
  BoundedCounterState,
  BoundedGCounterInvariant,
  ConservationState,
  DEFAULT_LANES,
  HISTOGRAM_BUCKETS,
  InvalidArgumentError,
  InvariantCode,
  LatencyHistogram,
  MetricsServer,
  SharedMemoryError,
  TotalSupplyInvariant,
  TwoLaneDurableKernel,
  TwoLaneKernel,
  bucketOf,
  bucketUpperBound,
  createMetricsRegistry,
  factId,
  GCounterInvariant,
  Kernel,
  NetworkingKernel,
  u64le,
  i128le,
  type DurableKernel,
  type DurableKernelOptions,
  type HistogramSnapshot,
  type Invariant,
  type MetricsAddress,
} from './helpers/lib.js';
import { expectCtfsError, thrown } from './helpers/errors.js';
import { freshIdSource } from './helpers/ids.js';

// ------------------------------------------------------------------------------------------ setup

const HISTOGRAM_WORKER = fileURLToPath(new URL('./fixtures/metrics-histogram-worker.mjs', import.meta.url));
const CI = Boolean(process.env.CI);

/** An executable on PATH, or undefined. */
function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}
const PROMTOOL = which('promtool');
const PROMETHEUS = which('prometheus');
/** Skip when a tool is missing, unless under CI (then the test runs and fails on the missing tool). */
const withoutTool = (tool: string | undefined): boolean => tool === undefined && !CI;
function requireTool(tool: string | undefined, name: string): string {
  if (tool === undefined) throw new Error(`${name} not found on PATH (CI is set, so this is a failure, not a skip)`);
  return tool;
}

const dirs: string[] = [];
const durables: DurableKernel[] = [];
const servers: MetricsServer[] = [];
const children: ChildProcess[] = [];

function tempDir(prefix = 'ctfs-metrics-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Ends a child process of this file by its pid: SIGTERM, then SIGKILL if it is still there after 5 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

afterAll(async () => {
  // Each step bounded, so a server that cannot close (a failed close test) never keeps the temp dirs.
  const bounded = (work: Promise<unknown>[]): Promise<unknown> => Promise.race([Promise.allSettled(work), sleep(10_000)]);
  try {
    await bounded(children.splice(0).map(stopChild));
    await bounded(servers.splice(0).map((s) => s.close()));
    await bounded(durables.splice(0).map((k) => k.close()));
  } finally {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  }
});


/** The reference bucket: the bit length of ⌊v⌋ minus one (integer arithmetic, no logarithms); 0 below 2, NaN, negative. */
function refBucket(v: number): number {
  if (!(v >= 2)) return 0;
  if (v >= 2 ** 64) return HISTOGRAM_BUCKETS - 1;
  return Math.min(HISTOGRAM_BUCKETS - 1, BigInt(Math.floor(v)).toString(2).length - 1);
}
/** What `record` stores: negatives and NaN as 0. */
const clamp = (v: number): number => (v > 0 ? v : 0);

/** Bucket counts, count and sum of `values` (sum in recording order, as a lane adds it). */
function reference(values: readonly number[]): { buckets: number[]; count: number; sum: number } {
  const buckets = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  let sum = 0;
  for (const v of values) {
    buckets[refBucket(v)]! += 1;
    sum += clamp(v);
  }
  return { buckets, count: values.length, sum };
}

/** The percentile the brief defines: upper bound of the bucket of the sorted value at rank ⌈q·n⌉. */
function refPercentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return 2 ** (refBucket(sorted[rank - 1]!) + 1) - 1;
}

// Facts for kernels over TotalSupply (balance 100 in [0, 1000]).
const CELL_100 = new ConservationState(100n, 0n, 1000n).toBytes();
const freshId = freshIdSource(0x6d);
const ONE = i128le(1n);

function memKernel(): TwoLaneKernel<TotalSupplyInvariant> {
  return TwoLaneKernel.withState(new TotalSupplyInvariant(), CELL_100, { indexCapacity: 1 << 10 });
}

async function openDurable(options: Partial<DurableKernelOptions> & { faults?: { syncDelayMs?: number } } = {}): Promise<TwoLaneDurableKernel<TotalSupplyInvariant>> {
  const k = await TwoLaneDurableKernel.open(tempDir('ctfs-metrics-wal-'), new TotalSupplyInvariant(), {
    indexCapacity: 1 << 12,
    arenaBytes: 1 << 18,
    announce: false,
    initialState: CELL_100,
    ...options,
  } as DurableKernelOptions);
  durables.push(k);
  return k;
}

// ---------------------------------------------------------------------------- exposition helpers

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Text exposition format 0.0.4 → samples (strict: an unparsable line throws). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

function only(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${hits.length}`);
  return hits[0]!.value;
}

/**
 * The histogram `name` in `samples` against `snap`: 64 power-of-two `le` bounds (2^(b+1) − 1) and
 * +Inf in order; each `_bucket` the cumulative count, non-decreasing; +Inf = `_count` = snapshot
 * count; `_sum` = snapshot sum.
 */
function expectHistogram(samples: readonly Sample[], name: string, snap: HistogramSnapshot): void {
  const buckets = samples.filter((s) => s.name === `${name}_bucket`);
  expect(buckets).toHaveLength(HISTOGRAM_BUCKETS + 1);
  expect(buckets.slice(0, 4).map((s) => s.labels.le)).toEqual(['1', '3', '7', '15']);
  expect(buckets[9]!.labels.le).toBe('1023');
  expect(buckets.at(-1)!.labels.le).toBe('+Inf');
  let cumulative = 0;
  let previous = 0;
  for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
    expect(Number(buckets[b]!.labels.le), `le of bucket ${b}`).toBe(2 ** (b + 1) - 1);
    cumulative += snap.buckets[b]!;
    expect(buckets[b]!.value, `${name}_bucket{le="${buckets[b]!.labels.le}"}`).toBe(cumulative);
    expect(buckets[b]!.value).toBeGreaterThanOrEqual(previous);
    previous = buckets[b]!.value;
  }
  expect(buckets.at(-1)!.value).toBe(snap.count);
  expect(only(samples, `${name}_count`)).toBe(snap.count);
  expect(buckets.at(-1)!.value).toBe(only(samples, `${name}_count`));
  expect(only(samples, `${name}_sum`)).toBe(snap.sum);
}

/** `promtool check metrics` with `text` on stdin: must exit 0 and print nothing. */
function expectPromtoolClean(text: string): void {
  const tool = requireTool(PROMTOOL, 'promtool');
  const r = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  expect(r.error).toBeUndefined();
  expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
}

// ----------------------------------------------------------------------------------- http helpers

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a fresh connection (no keep-alive pool left behind). */
function request(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the error a TCP connect to 127.0.0.1:port fails with (rejects if it connects). */
function connectError(port: number, host = '127.0.0.1'): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    s.on('connect', () => {
      s.destroy();
      reject(new Error(`${host}:${port} still accepts connections`));
    });
    s.on('error', resolve);
  });
}

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function spawnServer(addr: MetricsAddress, admission: LatencyHistogram, persistence?: LatencyHistogram, options?: Parameters<typeof MetricsServer.spawn>[3]): Promise<MetricsServer> {
  const server = await MetricsServer.spawn(addr, admission, persistence, options);
  servers.push(server);
  return server;
}

async function closeServer(server: MetricsServer): Promise<void> {
  await server.close();
  servers.splice(servers.indexOf(server), 1);
}

/** Fails with `message` if `promise` has not settled within `ms` (a hang detector, not a timing threshold). */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ============================================================================ 1. LatencyHistogram

describe('LatencyHistogram: buckets', () => {
  it('bucketOf at the edges: 0, 1, 2, 3, 2^k − 1, 2^k, 2^32, 2^53, huge, NaN, negative', () => {
    const cases: [number, number][] = [
      [0, 0],
      [-0, 0],
      [0.5, 0],
      [1, 0],
      [1.999, 0],
      [2, 1],
      [3, 1],
      [3.999, 1],
      [4, 2],
      [1000, 9],
      [1023, 9],
      [1024, 10],
      [2 ** 31 - 1, 30],
      [2 ** 31, 31],
      [2 ** 32 - 1, 31],
      [2 ** 32 - 0.5, 31],
      [2 ** 32, 32],
      [2 ** 32 + 1, 32],
      [2 ** 33 - 1, 32],
      [2 ** 48 - 1, 47],
      [2 ** 53, 53],
      [2 ** 63, 63],
      [2 ** 64, 63],
      [2 ** 100, 63],
      [Number.MAX_VALUE, 63],
      [Infinity, 63],
      [NaN, 0],
      [-1, 0],
      [-(2 ** 40), 0],
      [-Infinity, 0],
    ];
    for (const [v, b] of cases) expect(bucketOf(v), `bucketOf(${v})`).toBe(b);
    for (let k = 1; k < 64; k++) expect(bucketOf(2 ** k), `bucketOf(2^${k})`).toBe(k);
    // 2^k − 1 is exact for k ≤ 53 (the larger k are covered below).
    for (let k = 1; k <= 48; k++) expect(bucketOf(2 ** k - 1), `bucketOf(2^${k} − 1)`).toBe(k - 1);
  });

  // Just below 2^k, Math.log2 rounds up to k once k ≥ 33 (non-integers) / k ≥ 49 (integers):
  // bucketOf must compute ⌊log2⌋ exactly.
  it('bucketOf is ⌊log2 ns⌋ just below every power of two above 2^32 (Math.log2 would round up)', () => {
    const wrong: string[] = [];
    for (let k = 33; k <= 63; k++) {
      const below = 2 ** k - 2 ** (k - 53); // the largest double below 2^k
      if (bucketOf(below) !== k - 1) wrong.push(`bucketOf(2^${k} − ulp) = ${bucketOf(below)}`);
    }
    for (let k = 49; k <= 53; k++) if (bucketOf(2 ** k - 1) !== k - 1) wrong.push(`bucketOf(2^${k} − 1) = ${bucketOf(2 ** k - 1)}`);
    const h = new LatencyHistogram({ lanes: 1 });
    h.record(2 ** 49 - 1);
    if (h.snapshot().buckets[48] !== 1) wrong.push('record(2^49 − 1) is not counted in bucket 48');
    expect(wrong).toEqual([]);
  });

  it('bucketUpperBound(b) = 2^(b+1) − 1: the largest integer in bucket b, the next integer is in b + 1', () => {
    expect(bucketUpperBound(0)).toBe(1);
    expect(bucketUpperBound(1)).toBe(3);
    expect(bucketUpperBound(9)).toBe(1023);
    expect(bucketUpperBound(31)).toBe(2 ** 32 - 1);
    expect(bucketUpperBound(52)).toBe(Number.MAX_SAFE_INTEGER);
    expect(bucketUpperBound(63)).toBe(2 ** 64); // 2^64 − 1 rounds to 2^64 in a double
    for (let b = 0; b <= 47; b++) {
      expect(bucketOf(bucketUpperBound(b)), `bucketOf(upper(${b}))`).toBe(b);
      expect(bucketOf(bucketUpperBound(b) + 1), `bucketOf(upper(${b}) + 1)`).toBe(b + 1);
    }
    for (let b = 1; b < HISTOGRAM_BUCKETS; b++) expect(bucketUpperBound(b)).toBeGreaterThan(bucketUpperBound(b - 1));
  });

  it('record clamps NaN and negatives to 0 (bucket 0, nothing added to the sum) and counts huge values in bucket 63', () => {
    const h = new LatencyHistogram({ lanes: 1 });
    h.record(NaN);
    h.record(-5);
    h.record(-Infinity);
    h.record(0);
    h.record(1);
    h.record(2);
    h.record(2 ** 64);
    const s = h.snapshot();
    expect(s.buckets[0]).toBe(5);
    expect(s.buckets[1]).toBe(1);
    expect(s.buckets[63]).toBe(1);
    expect(s.count).toBe(7);
    expect(s.sum).toBe(1 + 2 + 2 ** 64);
    expect(Number.isNaN(s.sum)).toBe(false);
  });

  it('recordOutcome counts codes 0..14 in their slot and anything above (or negative) in slot 15', () => {
    const h = new LatencyHistogram({ lanes: 1 });
    for (let code = 0; code <= 14; code++) for (let i = 0; i <= code; i++) h.recordOutcome(code, 10);
    h.recordOutcome(15, 10);
    h.recordOutcome(16, 10);
    h.recordOutcome(99, 10);
    h.recordOutcome(-1, 10);
    const s = h.snapshot();
    expect(s.outcomes).toHaveLength(16);
    for (let code = 0; code <= 14; code++) expect(s.outcomes[code], `outcome ${code}`).toBe(code + 1);
    expect(s.outcomes[15]).toBe(4);
    expect(s.count).toBe(120 + 4);
    expect(s.sum).toBe(10 * 124);
    expect(s.buckets[3]).toBe(124);
  });

  it('an empty histogram: zero counts, zero sum, percentiles 0', () => {
    const h = new LatencyHistogram();
    expect(h.snapshot()).toEqual({ buckets: new Array(64).fill(0), count: 0, sum: 0, outcomes: new Array(16).fill(0) });
    expect(h.count).toBe(0);
    expect(h.percentiles()).toEqual({ p50: 0, p90: 0, p99: 0 });
  });
});

describe('LatencyHistogram: construction, attach and lanes', () => {
  it('rejects a bad lane count with InvalidArgumentError', () => {
    for (const lanes of [0, -1, 1.5, 1025, NaN, Infinity, '4' as unknown as number]) {
      expectCtfsError(thrown(() => new LatencyHistogram({ lanes })), InvalidArgumentError, 'InvalidArgument');
    }
    expect(new LatencyHistogram({ lanes: 1 }).buffer.byteLength).toBeLessThan(new LatencyHistogram({ lanes: 1024 }).buffer.byteLength);
    expect(new LatencyHistogram().buffer.byteLength).toBe(new LatencyHistogram({ lanes: DEFAULT_LANES }).buffer.byteLength);
    expect(new LatencyHistogram(undefined).count).toBe(0);
  });

  it('attach rejects what is not a histogram buffer with SharedMemoryError (InvalidSharedMemory)', () => {
    const good = new LatencyHistogram({ lanes: 4 });
    const copy = (edit: (header: Int32Array) => void, byteLength = good.buffer.byteLength): SharedArrayBuffer => {
      const b = new SharedArrayBuffer(byteLength);
      new Uint8Array(b).set(new Uint8Array(good.buffer).subarray(0, Math.min(byteLength, good.buffer.byteLength)));
      edit(new Int32Array(b, 0, 16));
      return b;
    };
    const bad: [string, unknown][] = [
      ['undefined', undefined],
      ['null', null],
      ['an ArrayBuffer', new ArrayBuffer(good.buffer.byteLength)],
      ['a typed array', new Uint8Array(good.buffer)],
      ['a tiny SharedArrayBuffer', new SharedArrayBuffer(8)],
      ['zeros of the right size', new SharedArrayBuffer(good.buffer.byteLength)],
      ['a wrong magic', copy((h) => (h[0] = 0x12345678))],
      ['a wrong version', copy((h) => (h[1] = 2))],
      ['0 lanes', copy((h) => (h[2] = 0))],
      ['more lanes than bytes', copy((h) => (h[2] = 5))],
      ['a truncated buffer', copy(() => undefined, good.buffer.byteLength - 8)],
      ['an extended buffer', copy(() => undefined, good.buffer.byteLength + 8)],
    ];
    for (const [what, buffer] of bad) {
      const e = thrown(() => LatencyHistogram.attach(buffer as SharedArrayBuffer));
      expect(e, what).toBeInstanceOf(SharedMemoryError);
      expectCtfsError(e, SharedMemoryError, 'InvalidSharedMemory');
    }
    // A faithful copy attaches (one lane was claimed in the copy, three are left).
    expect(() => LatencyHistogram.attach(copy(() => undefined))).not.toThrow();
  });

  it('every attach claims its own lane; when they are exhausted attach throws SharedMemoryError, and keeps throwing', () => {
    const h = new LatencyHistogram({ lanes: 3 });
    const a = LatencyHistogram.attach(h.buffer);
    const b = LatencyHistogram.attach(h.buffer);
    for (let i = 0; i < 2; i++) expectCtfsError(thrown(() => LatencyHistogram.attach(h.buffer)), SharedMemoryError, 'InvalidSharedMemory');
    expectCtfsError(thrown(() => LatencyHistogram.attach(new LatencyHistogram({ lanes: 1 }).buffer)), SharedMemoryError, 'InvalidSharedMemory');
    // The failed attaches took nothing: the three lanes still add up, through every instance.
    h.record(1);
    a.record(1000);
    a.record(1000);
    b.record(2 ** 20);
    for (const view of [h, a, b]) {
      const s = view.snapshot();
      expect(s.count).toBe(4);
      expect(s.sum).toBe(1 + 2000 + 2 ** 20);
      expect(s.buckets[0]).toBe(1);
      expect(s.buckets[9]).toBe(2);
      expect(s.buckets[20]).toBe(1);
    }
  });

  it('lanes are separate memory: each instance writes only its own words of the buffer', () => {
    const h = new LatencyHistogram({ lanes: 3 });
    const a = LatencyHistogram.attach(h.buffer);
    const b = LatencyHistogram.attach(h.buffer);
    const words = new Float64Array(h.buffer, 64);
    const nonZero = (): number[] => [...words.keys()].filter((i) => words[i] !== 0);
    const touched: number[][] = [];
    for (const inst of [h, a, b]) {
      const before = new Set(nonZero());
      inst.record(5);
      touched.push(nonZero().filter((i) => !before.has(i)));
    }
    // Each record writes one bucket and the sum of its lane; three distinct lanes → six distinct words.
    expect(touched.map((t) => t.length)).toEqual([2, 2, 2]);
    expect(new Set(touched.flat()).size).toBe(6);
  });
});

describe('LatencyHistogram: property against a sorting/binning reference', () => {
  /** Latency-like values, edges included; integers below 2^44 (so 500 of them sum exactly) and fractions below 2^32. */
  const value = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 2 ** 44 - 1 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 5000 }) },
    { weight: 2, arbitrary: fc.double({ min: 0, max: 2 ** 32 - 1, noNaN: true }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 44 }).chain((k) => fc.constantFrom(2 ** k - 1, 2 ** k, 2 ** k + 1)) },
    { weight: 1, arbitrary: fc.constantFrom(NaN, -1, -(2 ** 40), 0, 1, 2, 3) },
  );

  it('per-bucket counts, count, sum and p50/p90/p99 equal the reference, over 1–4 lanes', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 500 }), fc.integer({ min: 1, max: 4 }), (values, laneCount) => {
        const h = new LatencyHistogram({ lanes: laneCount });
        const lanes = [h, ...Array.from({ length: laneCount - 1 }, () => LatencyHistogram.attach(h.buffer))];
        // Round robin across lanes; the reference sums each lane in order, then the lanes.
        values.forEach((v, i) => lanes[i % laneCount]!.record(v));
        const perLane = Array.from({ length: laneCount }, (_, l) => reference(values.filter((_, i) => i % laneCount === l)));
        const ref = reference(values);
        const snap = h.snapshot();
        expect(snap.buckets).toEqual(ref.buckets);
        expect(snap.count).toBe(values.length);
        expect(snap.sum).toBe(perLane.reduce((a, r) => a + r.sum, 0));
        // One lane adds in recording order, exactly like the reference (fractions make the order matter).
        if (laneCount === 1) expect(snap.sum).toBe(ref.sum);
        const sorted = values.map(clamp).sort((a, b) => a - b);
        expect(h.percentiles()).toEqual({ p50: refPercentile(sorted, 0.5), p90: refPercentile(sorted, 0.9), p99: refPercentile(sorted, 0.99) });
        // Every view of the buffer sees the same.
        for (const view of lanes) expect(view.snapshot()).toEqual(snap);
      }),
      { numRuns: 300 },
    );
  });
});

// ===================================================================== 2. concurrency, real threads

/** Same formula as the worker fixture: the i-th value of lane `w`. */
function metricsValue(w: number, i: number): number {
  return 2 ** ((i * 7 + w * 3) % 30) + ((i * 13 + w) % 5);
}

describe('LatencyHistogram: two worker threads record while the test thread records and scrapes', () => {
  it('exact counts, per-bucket counts and sum at a barrier and at the end; snapshots and the registry _count never decrease', async () => {
    const N = 1_000_000;
    const HALF_N = N >>> 1;
    const [READY, GO, HALF, RESUME, DONE] = [0, 1, 2, 3, 4] as const;
    // Exactly three lanes: this thread and two workers. A fourth attach must fail — so the
    // workers hold two distinct lanes of their own.
    const h = new LatencyHistogram({ lanes: 3 });
    const registry = createMetricsRegistry({ admission: h });
    const sync = new SharedArrayBuffer(8 * 4);
    const flags = new Int32Array(sync);
    const messages: unknown[] = [];
    const workers = [0, 1].map((lane) => {
      const w = new Worker(HISTOGRAM_WORKER, { workerData: { buffer: h.buffer, sync, lane, n: N } });
      w.on('message', (m) => messages.push(m));
      w.on('error', (e) => messages.push({ error: { message: String(e) } }));
      return w;
    });
    const exited = workers.map((w) => once(w, 'exit'));
    const deadline = Date.now() + 40_000;
    const failIfStuck = (what: string): void => {
      const errors = messages.filter((m) => (m as { error?: unknown }).error !== undefined);
      if (errors.length > 0) throw new Error(`worker failed: ${JSON.stringify(errors)}`);
      if (Date.now() > deadline) throw new Error(`stuck waiting for ${what}; flags ${JSON.stringify([...flags])}`);
    };

    try {
      while (Atomics.load(flags, READY) < 2) {
        failIfStuck('the workers to attach');
        await sleep(2);
      }
      expectCtfsError(thrown(() => LatencyHistogram.attach(h.buffer)), SharedMemoryError, 'InvalidSharedMemory');

      // What this thread records: lane 2 of the value formula.
      let mine = 0;
      let prev = h.snapshot();
      let prevRegistryCount = 0;
      let snapshots = 0;
      const violations: string[] = [];
      const check = async (): Promise<void> => {
        const s = h.snapshot();
        snapshots++;
        if (s.count < prev.count) violations.push(`snapshot count ${prev.count} → ${s.count}`);
        if (s.sum < prev.sum) violations.push(`snapshot sum ${prev.sum} → ${s.sum}`);
        for (let b = 0; b < HISTOGRAM_BUCKETS; b++) if (s.buckets[b]! < prev.buckets[b]!) violations.push(`bucket ${b}: ${prev.buckets[b]} → ${s.buckets[b]}`);
        const samples = parseExposition(await registry.metrics());
        const count = only(samples, 'ctfs_admission_latency_count');
        if (count < prevRegistryCount) violations.push(`registry _count ${prevRegistryCount} → ${count}`);
        if (count < s.count) violations.push(`registry _count ${count} below the snapshot before it (${s.count})`);
        if (only(samples, 'ctfs_admission_latency_bucket', { le: '+Inf' }) !== count) violations.push('+Inf ≠ _count within one scrape');
        prevRegistryCount = count;
        prev = s;
      };
      const recordAndScrapeUntil = async (index: number, what: string): Promise<void> => {
        while (Atomics.load(flags, index) < 2) {
          h.record(metricsValue(2, mine++));
          if (mine % 512 === 0) {
            await check();
            failIfStuck(what);
          }
        }
        await check();
      };

      Atomics.store(flags, GO, 1);
      Atomics.notify(flags, GO);
      await recordAndScrapeUntil(HALF, 'the workers to reach half way');

      // Both workers are parked: the histogram is exactly their first halves plus what this thread recorded.
      const expected = (counts: readonly number[]): number[] => [0, 1].flatMap((w) => Array.from({ length: counts[w]! }, (_, i) => metricsValue(w, i)));
      const atBarrier = reference([...expected([HALF_N, HALF_N]), ...Array.from({ length: mine }, (_, i) => metricsValue(2, i))]);
      const barrier = h.snapshot();
      expect(barrier.buckets).toEqual(atBarrier.buckets);
      expect(barrier.count).toBe(2 * HALF_N + mine);
      expect(barrier.sum).toBe(atBarrier.sum);
      expect(only(parseExposition(await registry.metrics()), 'ctfs_admission_latency_count')).toBe(2 * HALF_N + mine);

      Atomics.store(flags, RESUME, 1);
      Atomics.notify(flags, RESUME);
      await recordAndScrapeUntil(DONE, 'the workers to finish');

      const final = reference([...expected([N, N]), ...Array.from({ length: mine }, (_, i) => metricsValue(2, i))]);
      const end = h.snapshot();
      expect(end.buckets).toEqual(final.buckets);
      expect(end.count).toBe(2 * N + mine);
      expect(end.sum).toBe(final.sum);
      expect(end.outcomes).toEqual(new Array(16).fill(0));
      const samples = parseExposition(await registry.metrics());
      expectHistogram(samples, 'ctfs_admission_latency', end);
      expect(violations).toEqual([]);
      expect(snapshots).toBeGreaterThanOrEqual(2);
      await within(Promise.all(exited), 20_000, 'workers did not exit');
      expect(messages).toEqual([{ done: true }, { done: true }]);
    } finally {
      Atomics.store(flags, GO, 1);
      Atomics.store(flags, RESUME, 1);
      Atomics.notify(flags, GO);
      Atomics.notify(flags, RESUME);
      await Promise.allSettled(workers.map((w) => w.terminate()));
    }
  });
});

// ================================================================================= 3. exposition

describe('exposition: createMetricsRegistry passes promtool and keeps the histogram invariants', () => {
  /** Tests that run promtool: skipped without it, except under CI. */
  const itPromtool = it.skipIf(withoutTool(PROMTOOL));

  itPromtool('an empty registry, empty histograms, and a registry of kernels only', async () => {
    expectPromtoolClean(await createMetricsRegistry().metrics());
    expectPromtoolClean(await createMetricsRegistry({}).metrics());

    const admission = new LatencyHistogram();
    const persistence = new LatencyHistogram();
    const text = await createMetricsRegistry({ admission, persistence }).metrics();
    expectPromtoolClean(text);
    const samples = parseExposition(text);
    expectHistogram(samples, 'ctfs_admission_latency', admission.snapshot());
    expectHistogram(samples, 'ctfs_persistence_latency', persistence.snapshot());
    expect(only(samples, 'ctfs_admission_latency_count')).toBe(0);
    // An empty outcome counter still exposes Ok = 0, and nothing else.
    expect(samples.filter((s) => s.name === 'ctfs_admissions_total')).toEqual([{ name: 'ctfs_admissions_total', labels: { outcome: 'Ok' }, value: 0 }]);
    // No kernels, no kernel metrics.
    expect(samples.filter((s) => !s.name.startsWith('ctfs_admission') && !s.name.startsWith('ctfs_persistence_latency'))).toEqual([]);

    const k = memKernel();
    const kernelsOnly = await createMetricsRegistry({ kernels: { mem: k } }).metrics();
    expectPromtoolClean(kernelsOnly);
    expect(new Set(parseExposition(kernelsOnly).map((s) => s.name))).toEqual(
      new Set([
        'ctfs_exact_index_facts',
        'ctfs_exact_index_fill',
        'ctfs_bloom_saturation',
        'ctfs_exact_index_ids',
        'ctfs_exact_index_bytes',
        'ctfs_exact_index_runs',
        'ctfs_exact_index_frozen_tables',
      ]),
    );
  });

  it('values are nanoseconds, no ticks: record(1000) is in the le="1023" bucket, not le="511"; the sum is 1000', async () => {
    const h = new LatencyHistogram();
    h.record(1000);
    const samples = parseExposition(await createMetricsRegistry({ admission: h }).metrics());
    expect(only(samples, 'ctfs_admission_latency_bucket', { le: '511' })).toBe(0);
    expect(only(samples, 'ctfs_admission_latency_bucket', { le: '1023' })).toBe(1);
    expect(only(samples, 'ctfs_admission_latency_sum')).toBe(1000);
    expect(only(samples, 'ctfs_admission_latency_count')).toBe(1);
  });

  itPromtool('populated histograms (a property): promtool-clean, cumulative buckets equal the reference, +Inf = _count, _sum = the sum', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 2 ** 44 - 1 }), { minLength: 1, maxLength: 300 }), fc.array(fc.integer({ min: 0, max: 2 ** 36 }), { maxLength: 50 }), async (a, p) => {
        const admission = new LatencyHistogram({ lanes: 1 });
        const persistence = new LatencyHistogram({ lanes: 1 });
        a.forEach((v, i) => admission.recordOutcome(i % 3 === 0 ? AdmitCode.DuplicateFact : AdmitCode.Ok, v));
        p.forEach((v) => persistence.record(v));
        const text = await createMetricsRegistry({ admission, persistence }).metrics();
        expectPromtoolClean(text);
        const samples = parseExposition(text);
        expectHistogram(samples, 'ctfs_admission_latency', admission.snapshot());
        expectHistogram(samples, 'ctfs_persistence_latency', persistence.snapshot());
        // Against the reference, not just the snapshot: bucket b's own count is cumulative[b] − cumulative[b−1].
        const cumulative = samples.filter((s) => s.name === 'ctfs_admission_latency_bucket').map((s) => s.value);
        const own = cumulative.slice(0, HISTOGRAM_BUCKETS).map((c, b) => c - (b === 0 ? 0 : cumulative[b - 1]!));
        expect(own).toEqual(reference(a).buckets);
        expect(only(samples, 'ctfs_admission_latency_sum')).toBe(reference(a).sum);
        expect(only(samples, 'ctfs_persistence_latency_count')).toBe(p.length);
        expect(only(samples, 'ctfs_admissions_total', { outcome: 'DuplicateFact' })).toBe(Math.ceil(a.length / 3));
        expect(only(samples, 'ctfs_admissions_total', { outcome: 'Ok' })).toBe(a.length - Math.ceil(a.length / 3));
      }),
      { numRuns: 15 },
    );
  });

  itPromtool('outcome labels: admission codes by name, unnamed codes as code<N>, 15 and above as Other', async () => {
    const h = new LatencyHistogram();
    h.recordOutcome(AdmitCode.Ok, 1);
    h.recordOutcome(AdmitCode.InvariantViolation, 1);
    h.recordOutcome(AdmitCode.DurabilityFailed, 1);
    h.recordOutcome(5, 1); // reserved, no name
    h.recordOutcome(15, 1);
    h.recordOutcome(40, 1);
    const text = await createMetricsRegistry({ admission: h }).metrics();
    expectPromtoolClean(text);
    const outcomes = Object.fromEntries(
      parseExposition(text)
        .filter((s) => s.name === 'ctfs_admissions_total')
        .map((s) => [s.labels.outcome, s.value]),
    );
    expect(outcomes).toEqual({ Ok: 1, InvariantViolation: 1, DurabilityFailed: 1, code5: 1, Other: 2 });
  });

  itPromtool('admitInstrumented: outcomes (Ok, DuplicateFact, CausalityViolation, InvariantViolation), a TwoLaneKernel and a DurableKernel', async () => {
    const h = new LatencyHistogram();
    const mem = memKernel();
    const a = freshId();
    const codes = [
      mem.admitInstrumented(a, [], ONE, h),
      mem.admitInstrumented(freshId(), [a], ONE, h),
      mem.admitInstrumented(freshId(), [], ONE, h),
      mem.admitInstrumented(a, [], ONE, h), // the same id again
      mem.admitInstrumented(freshId(), [freshId()], ONE, h), // an unknown dependency
      mem.admitInstrumented(freshId(), [], i128le(-1000n), h), // below the floor
    ];
    expect(codes).toEqual([AdmitCode.Ok, AdmitCode.Ok, AdmitCode.Ok, AdmitCode.DuplicateFact, AdmitCode.CausalityViolation, AdmitCode.InvariantViolation]);

    // No ticks: one admission's recorded latency is at most the wall time around the call, in ns.
    const single = new LatencyHistogram({ lanes: 1 });
    const t0 = performance.now();
    mem.admitInstrumented(freshId(), [], ONE, single);
    const outerNs = (performance.now() - t0) * 1e6;
    expect(single.snapshot().count).toBe(1);
    expect(single.snapshot().sum).toBeLessThanOrEqual(Math.ceil(outerNs) + 1);

    // …and at least the time the invariant is made to take: an apply() that spins until
    // performance.now() has moved on by 2 ms cannot be recorded below 2e6 ns (by construction, on
    // the clock admitInstrumented reads; a µs or ms recording would be ~1000× too small).
    const SPIN_MS = 2;
    const slow: Invariant = {
      algebraicClass: AlgebraicClass.Commutative,
      mutatesOnlyOnSuccess: true,
      apply(): number {
        const until = performance.now() + SPIN_MS;
        while (performance.now() < until);
        return InvariantCode.Ok;
      },
    };
    const slowKernel = TwoLaneKernel.withState(slow, new Uint8Array(64));
    const timed = new LatencyHistogram({ lanes: 1 });
    const t1 = performance.now();
    expect(slowKernel.admitInstrumented(freshId(), [], ONE, timed)).toBe(AdmitCode.Ok);
    const outerSlowNs = (performance.now() - t1) * 1e6;
    const recorded = timed.snapshot().sum;
    expect(recorded).toBeGreaterThanOrEqual(SPIN_MS * 1e6 - 1);
    expect(recorded).toBeLessThanOrEqual(Math.ceil(outerSlowNs) + 1);
    expect(timed.snapshot().buckets[bucketOf(recorded)]).toBe(1);

    const durable = await openDurable();
    expect(durable.persistenceLatency.count).toBe(0);
    for (let i = 0; i < 10; i++) expect(durable.admitInstrumented(freshId(), [], ONE, h)).toBe(AdmitCode.Ok);
    await durable.flush();

    const registry = createMetricsRegistry({ admission: h, kernels: { mem, durable } });
    const text = await registry.metrics();
    expectPromtoolClean(text);
    const samples = parseExposition(text);

    const outcomes = Object.fromEntries(samples.filter((s) => s.name === 'ctfs_admissions_total').map((s) => [s.labels.outcome, s.value]));
    expect(outcomes).toEqual({ Ok: 13, DuplicateFact: 1, CausalityViolation: 1, InvariantViolation: 1 });
    expectHistogram(samples, 'ctfs_admission_latency', h.snapshot());
    expect(only(samples, 'ctfs_admission_latency_count')).toBe(16);

    // Persistence latency: the durable kernel's histogram (the default), one value per batch, recorded by the worker thread.
    const stats = durable.logStats;
    expect(stats.batches).toBeGreaterThan(0);
    expectHistogram(samples, 'ctfs_persistence_latency', durable.persistenceLatency.snapshot());
    expect(only(samples, 'ctfs_persistence_latency_count')).toBe(stats.batches);

    // Gauges for both kernels.
    expect(mem.size).toBe(4);
    expect(only(samples, 'ctfs_exact_index_facts', { kernel: 'mem' })).toBe(4);
    expect(only(samples, 'ctfs_exact_index_facts', { kernel: 'durable' })).toBe(10);
    expect(only(samples, 'ctfs_exact_index_fill', { kernel: 'mem' })).toBe(4 / mem.indexCapacity);
    expect(only(samples, 'ctfs_exact_index_fill', { kernel: 'durable' })).toBe(10 / durable.indexCapacity);
    // Per tier of the exact history: the ids add up to the facts, the bytes are what the kernel reports.
    for (const [name, k] of [['mem', mem], ['durable', durable]] as const) {
      const m = k.historyMemory();
      const ids = ['hot', 'frozen', 'runs'].map((tier) => only(samples, 'ctfs_exact_index_ids', { kernel: name, tier }));
      expect(ids.reduce((a, b) => a + b, 0)).toBe(k.size);
      expect(ids).toEqual([m.hot.ids, m.frozen.ids, m.runs.ids]);
      expect(only(samples, 'ctfs_exact_index_bytes', { kernel: name, tier: 'hot' })).toBe(m.hot.bytes);
      expect(only(samples, 'ctfs_exact_index_bytes', { kernel: name, tier: 'spare' })).toBe(m.spare.bytes);
      expect(only(samples, 'ctfs_exact_index_runs', { kernel: name })).toBe(m.runs.count);
      expect(only(samples, 'ctfs_exact_index_frozen_tables', { kernel: name })).toBe(m.frozen.tables);
    }
    expect(only(samples, 'ctfs_bloom_saturation', { kernel: 'mem' })).toBe(mem.saturation);
    expect(only(samples, 'ctfs_bloom_saturation', { kernel: 'durable' })).toBe(durable.saturation);
    expect(mem.saturation).toBeGreaterThan(0);

    // Durable counters: only for the durable kernel.
    expect(durable.lastSequence).toBe(10);
    expect(only(samples, 'ctfs_wal_records_total', { kernel: 'durable' })).toBe(durable.lastSequence);
    expect(only(samples, 'ctfs_durable_lag_facts', { kernel: 'durable' })).toBe(0);
    expect(only(samples, 'ctfs_wal_bytes_total', { kernel: 'durable' })).toBe(stats.bytes);
    expect(stats.bytes).toBeGreaterThan(0);
    expect(only(samples, 'ctfs_wal_fsyncs_total', { kernel: 'durable' })).toBe(stats.fsyncs);
    expect(stats.fsyncs).toBeGreaterThan(0);
    expect(['io_uring', 'portable']).toContain(durable.backend);
    expect(samples.filter((s) => s.name === 'ctfs_persistence_backend_info')).toEqual([
      { name: 'ctfs_persistence_backend_info', labels: { kernel: 'durable', backend: durable.backend }, value: 1 },
    ]);
    for (const name of ['ctfs_wal_records_total', 'ctfs_durable_lag_facts', 'ctfs_wal_bytes_total', 'ctfs_wal_fsyncs_total']) {
      expect(samples.filter((s) => s.name === name).map((s) => s.labels.kernel), name).toEqual(['durable']);
    }
  });

  it('the persistence histogram is in nanoseconds: one batch adds lastSyncMicros × 1000 (± rounding) to the sum', async () => {
    const durable = await openDurable({ backend: 'portable' });
    expect(durable.backend).toBe('portable');
    for (let round = 0; round < 3; round++) {
      const before = durable.persistenceLatency.snapshot();
      durable.admitInstrumented(freshId(), [], ONE, new LatencyHistogram({ lanes: 1 }));
      await durable.flush();
      const after = durable.persistenceLatency.snapshot();
      expect(after.count - before.count).toBe(1); // one fact → one batch
      const micros = durable.logStats.lastSyncMicros;
      // Both come from one elapsed time: round(ms × 1e6) and round(ms × 1e3) × 1e3.
      expect(Math.abs(after.sum - before.sum - micros * 1000)).toBeLessThanOrEqual(501);
    }
    const samples = parseExposition(await createMetricsRegistry({ kernels: { d: durable } }).metrics());
    expect(only(samples, 'ctfs_persistence_backend_info', { kernel: 'd' })).toBe(1);
    expect(samples.find((s) => s.name === 'ctfs_persistence_backend_info')!.labels.backend).toBe('portable');
    expect(only(samples, 'ctfs_persistence_latency_count')).toBe(3);
  });

  it('durable lag is lastSequence − durableSequence at scrape time, and 0 after flush; an explicit persistence histogram wins', async () => {
    const durable = await openDurable({ faults: { syncDelayMs: 150 } });
    const explicit = new LatencyHistogram();
    explicit.record(7);
    for (let i = 0; i < 5; i++) durable.admitInstrumented(freshId(), [], ONE, explicit);
    const registry = createMetricsRegistry({ persistence: explicit, kernels: { slow: durable } });
    const d0 = durable.durableSequence;
    const samples = parseExposition(await registry.metrics());
    const d1 = durable.durableSequence;
    const lag = only(samples, 'ctfs_durable_lag_facts', { kernel: 'slow' });
    expect(lag).toBeGreaterThanOrEqual(durable.lastSequence - d1);
    expect(lag).toBeLessThanOrEqual(durable.lastSequence - d0);
    expectHistogram(samples, 'ctfs_persistence_latency', explicit.snapshot());
    expect(samples.some((s) => s.name.startsWith('ctfs_admission'))).toBe(false);
    await durable.flush();
    const after = parseExposition(await registry.metrics());
    expect(only(after, 'ctfs_durable_lag_facts', { kernel: 'slow' })).toBe(0);
    expect(only(after, 'ctfs_wal_records_total', { kernel: 'slow' })).toBe(5);
    expect(only(after, 'ctfs_persistence_latency_count')).toBe(6); // the explicit one, not the kernel's
  });
});

// =============================================================================== 4. MetricsServer

async function ipv6Loopback(): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}
const HAS_IPV6 = await ipv6Loopback();

describe('MetricsServer on loopback', () => {
  it('port 0 → a real port on 127.0.0.1; GET /metrics 200 with prom-client’s content type; HEAD 200 without a body', async () => {
    const admission = new LatencyHistogram();
    admission.recordOutcome(AdmitCode.Ok, 1000);
    admission.recordOutcome(AdmitCode.DuplicateFact, 3000);
    const persistence = new LatencyHistogram();
    persistence.record(123456);
    const mem = memKernel();
    const server = await spawnServer(0, admission, persistence, { kernels: { mem } });
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.address.port}/metrics`);

    const get = await request(server.url);
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toBe(PromRegistry.PROMETHEUS_CONTENT_TYPE);
    expect(server.registry.contentType).toBe(PromRegistry.PROMETHEUS_CONTENT_TYPE);
    const samples = parseExposition(get.body);
    expectHistogram(samples, 'ctfs_admission_latency', admission.snapshot());
    expectHistogram(samples, 'ctfs_persistence_latency', persistence.snapshot());
    expect(only(samples, 'ctfs_admissions_total', { outcome: 'DuplicateFact' })).toBe(1);
    expect(only(samples, 'ctfs_exact_index_facts', { kernel: 'mem' })).toBe(0);
    if (!withoutTool(PROMTOOL)) expectPromtoolClean(get.body);

    // Every scrape reads the shared memory anew.
    admission.record(5);
    expect(only(parseExposition((await request(server.url)).body), 'ctfs_admission_latency_count')).toBe(3);
    // A query string is not part of the path.
    expect((await request(`${server.url}?name[]=x`)).status).toBe(200);

    const head = await request(server.url, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toBe(PromRegistry.PROMETHEUS_CONTENT_TYPE);
  });

  it('404 for every other path, 405 (Allow: GET, HEAD) for other methods on /metrics', async () => {
    const server = await spawnServer(0, new LatencyHistogram());
    const base = `http://127.0.0.1:${server.address.port}`;
    for (const p of ['/', '/other', '/metrics/', '/metricsx', '/METRICS', '/metrics/x']) {
      const r = await request(base + p);
      expect(r.status, `GET ${p}`).toBe(404);
    }
    expect((await request(`${base}/other`, 'POST')).status).toBe(404);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await request(`${base}/metrics`, method);
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
  });

  it('address forms: "host:port", ":port", { host, port }, { port }, {} — 127.0.0.1 unless told otherwise', async () => {
    const h = new LatencyHistogram();
    for (const addr of ['127.0.0.1:0', ':0', { host: '127.0.0.1', port: 0 }, { port: 0 }, {}] as MetricsAddress[]) {
      const server = await spawnServer(addr, h);
      expect(server.address.host, JSON.stringify(addr)).toBe('127.0.0.1');
      expect(server.address.port).toBeGreaterThan(0);
      expect((await request(server.url)).status).toBe(200);
      await closeServer(server);
    }
    // A fixed port, in both forms.
    const port = await freePort();
    const fixed = await spawnServer(`127.0.0.1:${port}`, h);
    expect(fixed.address).toEqual({ host: '127.0.0.1', port });
    await closeServer(fixed);
    const fixedObject = await spawnServer({ host: '127.0.0.1', port }, h);
    expect(fixedObject.address).toEqual({ host: '127.0.0.1', port });
    await closeServer(fixedObject);
  });

  it.skipIf(!HAS_IPV6)('an IPv6 host in brackets: binds ::1, and the url brackets it', async () => {
    const server = await spawnServer('[::1]:0', new LatencyHistogram());
    expect(server.address.host).toBe('::1');
    expect(server.url).toBe(`http://[::1]:${server.address.port}/metrics`);
    expect((await request(server.url)).status).toBe(200);
    await closeServer(server);
  });

  it('a bad address rejects with InvalidArgumentError', async () => {
    const h = new LatencyHistogram();
    const bad = ['127.0.0.1', 'localhost', '127.0.0.1:abc', '127.0.0.1:70000', '127.0.0.1:-1', '127.0.0.1:1.5', -1, 1.5, 65536, NaN, { port: -1 }, { port: 70000 }, { port: '80' }, null, true];
    for (const addr of bad) {
      const e = await MetricsServer.spawn(addr as MetricsAddress, h).then(
        (s) => {
          servers.push(s);
          return new Error(`${JSON.stringify(addr)} was accepted`);
        },
        (error: unknown) => error,
      );
      expect(e, JSON.stringify(addr)).toBeInstanceOf(InvalidArgumentError);
      expectCtfsError(e, InvalidArgumentError, 'InvalidArgument');
    }
  });

  // Number('') is 0 and Number('0x1f90') is 8080: the port must be checked as decimal digits.
  it('a port that is not decimal digits is rejected ("127.0.0.1:", "127.0.0.1:0x0", …)', async () => {
    const h = new LatencyHistogram();
    for (const addr of ['127.0.0.1:', '127.0.0.1: 0', '127.0.0.1:0x0', '127.0.0.1:0e0']) {
      const e = await MetricsServer.spawn(addr, h).then(
        (s) => {
          servers.push(s);
          return new Error(`${addr} was accepted`);
        },
        (error: unknown) => error,
      );
      expect(e, addr).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('a port in use rejects (EADDRINUSE), and the first server keeps serving', async () => {
    const h = new LatencyHistogram();
    const first = await spawnServer(0, h);
    const { port } = first.address;
    const e = await MetricsServer.spawn(port, h).then(
      (s) => {
        servers.push(s);
        return new Error('a second server bound the same port');
      },
      (error: unknown) => error,
    );
    expect((e as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    await expect(MetricsServer.spawn(`127.0.0.1:${port}`, h)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect((await request(first.url)).status).toBe(200);
  });

  it('close() resolves with keep-alive and half-sent requests open, ends those connections, and the port refuses afterwards', async () => {
    const server = await spawnServer(0, new LatencyHistogram());
    const { port } = server.address;

    // An idle keep-alive connection after a complete exchange.
    const idle = net.connect(port, '127.0.0.1');
    idle.on('error', () => undefined);
    await once(idle, 'connect');
    const firstBytes = once(idle, 'data');
    idle.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const [chunk] = (await firstBytes) as [Buffer];
    expect(chunk.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    // A connection in the middle of its request headers (not idle: server.close alone would wait for it).
    const busy = net.connect(port, '127.0.0.1');
    busy.on('error', () => undefined);
    await once(busy, 'connect');
    busy.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n');
    await sleep(50); // let the server see the partial request (not an assertion)

    const idleClosed = once(idle, 'close');
    const busyClosed = once(busy, 'close');
    try {
      await within(closeServer(server), 15_000, 'close() did not resolve with open connections');
      await within(Promise.all([idleClosed, busyClosed]), 15_000, 'close() left connections open');
      expect((await connectError(port)).code).toBe('ECONNREFUSED');
    } finally {
      idle.destroy();
      busy.destroy();
    }
  });
});

describe('MetricsServer connection limits (real sockets on loopback)', () => {
  /** A client socket that is connected, and a promise of its close. */
  async function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<unknown> }> {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    await once(socket, 'connect');
    return { socket, closed: once(socket, 'close') };
  }
  // Every limit not under test is far beyond the test's deadline, so only the one under test can close.
  const FAR = 600_000;

  it('a slowloris client (headers dripped in, never finished) is closed after headersTimeoutMs', async () => {
    const server = await spawnServer(0, new LatencyHistogram(), undefined, { headersTimeoutMs: 300, requestTimeoutMs: FAR, idleTimeoutMs: FAR, keepAliveTimeoutMs: FAR });
    const { socket, closed } = await connect(server.address.port);
    let open = true;
    void closed.then(() => (open = false));
    socket.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n');
    // A header line every 50 ms: never silent, never done.
    const drip = (async () => {
      for (let i = 0; open && i < 400; i++) {
        socket.write(`X-Drip-${i}: 1\r\n`);
        await sleep(50);
      }
    })();
    try {
      await within(closed, 15_000, 'the slowloris connection is still open');
    } finally {
      socket.destroy();
      await drip;
    }
  });

  it('a connection that stays silent (nothing sent, or a request cut short) is closed after idleTimeoutMs', async () => {
    const server = await spawnServer(0, new LatencyHistogram(), undefined, { headersTimeoutMs: FAR, requestTimeoutMs: FAR, idleTimeoutMs: 300, keepAliveTimeoutMs: FAR });
    const silent = await connect(server.address.port);
    const partial = await connect(server.address.port);
    partial.socket.write('GET /metr');
    try {
      await within(Promise.all([silent.closed, partial.closed]), 15_000, 'a silent connection is still open');
    } finally {
      silent.socket.destroy();
      partial.socket.destroy();
    }
  });

  it('an idle keep-alive connection is closed after keepAliveTimeoutMs; with a long one it stays open', async () => {
    const short = await spawnServer(0, new LatencyHistogram(), undefined, { headersTimeoutMs: FAR, requestTimeoutMs: FAR, idleTimeoutMs: FAR, keepAliveTimeoutMs: 300 });
    const long = await spawnServer(0, new LatencyHistogram(), undefined, { headersTimeoutMs: FAR, requestTimeoutMs: FAR, idleTimeoutMs: FAR, keepAliveTimeoutMs: FAR });
    const a = await connect(short.address.port);
    const b = await connect(long.address.port);
    let bOpen = true;
    void b.closed.then(() => (bOpen = false));
    for (const { socket } of [a, b]) {
      const reply = once(socket, 'data');
      socket.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const [chunk] = (await reply) as [Buffer];
      expect(chunk.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    }
    try {
      await within(a.closed, 15_000, 'the idle keep-alive connection is still open');
      // Past Node's own 5 s keep-alive: the long limit is the one in force.
      await sleep(6_000);
      expect(bOpen).toBe(true);
    } finally {
      a.socket.destroy();
      b.socket.destroy();
    }
  });

  it('limits are integers of milliseconds in [1, 2^31 − 1], headers within request (InvalidArgumentError)', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100']) {
      for (const key of ['headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'idleTimeoutMs']) {
        const outcome = await MetricsServer.spawn(0, new LatencyHistogram(), undefined, { [key]: bad }).then(
          (server) => server.close().then(() => 'listening'),
          (error: unknown) => error,
        );
        expect(outcome, `${key}: ${String(bad)}`).toBeInstanceOf(InvalidArgumentError);
      }
    }
    await expect(MetricsServer.spawn(0, new LatencyHistogram(), undefined, { headersTimeoutMs: 2_000, requestTimeoutMs: 1_000 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

// ========================================================================= 5. a real Prometheus

interface PromPoint {
  readonly metric: Record<string, string>;
  readonly value: number;
}

async function promQuery(port: number, query: string): Promise<PromPoint[] | undefined> {
  let reply: Reply;
  try {
    reply = await request(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  } catch {
    return undefined; // not listening yet
  }
  if (reply.status !== 200) return undefined;
  const body = JSON.parse(reply.body) as { status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success' || body.data.resultType !== 'vector') return undefined;
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

describe('end to end: a real Prometheus scrapes a MetricsServer', () => {
  it.skipIf(withoutTool(PROMETHEUS))(
    'admission and persistence counts recorded in this thread and the persistence worker reach Prometheus in the same scrape',
    async () => {
      const binary = requireTool(PROMETHEUS, 'prometheus');
      const admission = new LatencyHistogram();
      const mem = memKernel();
      const durable = await openDurable();
      // No persistence histogram given: the durable kernel's (recorded by its worker thread) is exported.
      const server = await spawnServer(0, admission, undefined, { kernels: { mem, durable } });

      const dir = tempDir('ctfs-prometheus-');
      const promPort = await freePort();
      fs.writeFileSync(
        path.join(dir, 'prom.yml'),
        [
          'global:',
          '  scrape_interval: 1s',
          '  scrape_timeout: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: ctfs',
          '    static_configs:',
          `      - targets: ['127.0.0.1:${server.address.port}']`,
          '',
        ].join('\n'),
      );
      const prom = spawn(
        binary,
        [`--config.file=${path.join(dir, 'prom.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      children.push(prom);
      let stderr = '';
      prom.stderr!.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString('utf8')).slice(-20_000);
      });
      const deadline = Date.now() + 60_000;
      const fail = (what: string): never => {
        throw new Error(`${what}\n--- prometheus (exit ${prom.exitCode ?? prom.signalCode ?? 'running'}) stderr, last 20 kB ---\n${stderr}`);
      };
      /** The scrape target as Prometheus sees it (health, last error), for failure messages. */
      const targetHealth = async (): Promise<string> => {
        try {
          const r = await request(`http://127.0.0.1:${promPort}/api/v1/targets`);
          const body = JSON.parse(r.body) as { data?: { activeTargets?: { scrapeUrl: string; health: string; lastError: string }[] } };
          return JSON.stringify((body.data?.activeTargets ?? []).map((t) => ({ url: t.scrapeUrl, health: t.health, lastError: t.lastError })));
        } catch (error) {
          return `(targets unavailable: ${String(error)})`;
        }
      };
      const tick = async (context: () => string): Promise<void> => {
        if (prom.exitCode !== null || prom.signalCode !== null) fail(`prometheus exited; ${context()}`);
        if (Date.now() > deadline) fail(`no answer within 60 s; ${context()}; targets ${await targetHealth()}`);
        await sleep(250);
      };
      const admitSome = (n: number): void => {
        for (let i = 0; i < n; i++) {
          expect(mem.admitInstrumented(freshId(), [], ONE, admission)).toBe(AdmitCode.Ok);
          expect(durable.admitInstrumented(freshId(), [], ONE, admission)).toBe(AdmitCode.Ok);
        }
        // And a rejection now and then, so an outcome other than Ok is scraped too.
        mem.admitInstrumented(freshId(), [freshId()], ONE, admission);
      };

      // Phase 1: keep admitting while Prometheus starts and scrapes; what it reports never exceeds
      // the histogram's count, and never goes down.
      const seen: number[] = [];
      while (seen.length === 0 || seen.at(-1)! === 0) {
        admitSome(3);
        const r = await promQuery(promPort, 'ctfs_admission_latency_count');
        const countNow = admission.count;
        if (r !== undefined && r.length > 0) {
          expect(r).toHaveLength(1);
          expect(r[0]!.value).toBeLessThanOrEqual(countNow);
          seen.push(r[0]!.value);
        }
        await tick(() => `phase 1 (admitting): counts seen so far ${JSON.stringify(seen)}`);
      }
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);

      // Phase 2: stop, flush, and wait until Prometheus has the final numbers of both histograms.
      admitSome(2);
      await durable.flush();
      const admissionCount = admission.count;
      const persistenceCount = durable.persistenceLatency.count;
      expect(persistenceCount).toBeGreaterThan(0);
      expect(persistenceCount).toBe(durable.logStats.batches);
      const wanted = { ctfs_admission_latency_count: admissionCount, ctfs_persistence_latency_count: persistenceCount };
      let last: PromPoint[] | undefined;
      for (;;) {
        last = await promQuery(promPort, '{__name__=~"ctfs_(admission|persistence)_latency_count"}');
        if (last !== undefined) {
          const got: Record<string, number> = Object.fromEntries(last.map((p) => [p.metric.__name__, p.value]));
          for (const [name, value] of Object.entries(got)) {
            if (value > wanted[name as keyof typeof wanted]) fail(`${name} = ${value} in Prometheus, above the histogram's ${wanted[name as keyof typeof wanted]}`);
          }
          if (got.ctfs_admission_latency_count === admissionCount && got.ctfs_persistence_latency_count === persistenceCount) break;
        }
        await tick(() => `phase 2 (flushed): last answer ${JSON.stringify(last)}, wanted ${JSON.stringify(wanted)}`);
      }
      expect(last!.every((p) => p.metric.job === 'ctfs' && p.metric.instance === `127.0.0.1:${server.address.port}`)).toBe(true);

      // Same scrape: both series carry the same sample timestamp.
      // (One expression, so one evaluation: a scrape landing between two queries cannot fake a difference.)
      const stampDiff = await promQuery(promPort, 'timestamp(ctfs_admission_latency_count) - on(job, instance) timestamp(ctfs_persistence_latency_count)');
      expect(stampDiff?.map((p) => p.value)).toEqual([0]);

      // The rest of the scrape agrees with the kernels too.
      const records = await promQuery(promPort, 'ctfs_wal_records_total{kernel="durable"}');
      expect(records?.map((p) => p.value)).toEqual([durable.lastSequence]);
      const rejected = await promQuery(promPort, 'ctfs_admissions_total{outcome="CausalityViolation"}');
      expect(rejected?.map((p) => p.value)).toEqual([admission.snapshot().outcomes[AdmitCode.CausalityViolation]]);
      const lag = await promQuery(promPort, 'ctfs_durable_lag_facts');
      expect(lag?.map((p) => p.value)).toEqual([0]);
    },
    90_000,
  );
});

describe('replication metrics', () => {
  it('export peers, bytes, facts, pending and rejections of real nodes, promtool-clean', async () => {
    const a = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'a', plaintext: true });
    const b = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'b', plaintext: true, peers: [a.address] });
    try {
      for (let i = 1; i <= 100; i++) {
        const payload = u64le(BigInt(i));
        expect(a.tryAdmitRaw(factId([], payload), [], payload)).toBe(AdmitCode.Ok);
      }
      // A connection with a hostile length word: counted under its reason on a.
      const [host, port] = [a.address.slice(0, a.address.lastIndexOf(':')), Number(a.address.slice(a.address.lastIndexOf(':') + 1))];
      await new Promise<void>((resolve) => {
        const s = net.connect({ host, port }, () => s.write(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 1, 1, 0, 0])));
        s.resume();
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
      const deadline = Date.now() + 20_000;
      // The worker counts an admission when it reads the kernel's answer, a moment after the kernel has it.
      while (b.stats().factsAdmitted < 100 || !b.peers().some((p) => p.state === 'ready')) {
        if (Date.now() > deadline) throw new Error(`b has ${b.size} facts`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const registry = createMetricsRegistry({ replication: { a, b } });
      const text = await registry.metrics();
      if (!withoutTool(PROMTOOL)) expectPromtoolClean(text);
      const samples = parseExposition(text);
      expect(only(samples, 'ctfs_replication_facts_total', { node: 'b', outcome: 'admitted' })).toBe(100);
      expect(only(samples, 'ctfs_replication_facts_total', { node: 'a', outcome: 'sent' })).toBeGreaterThanOrEqual(100);
      expect(only(samples, 'ctfs_replication_peers', { node: 'b', state: 'ready' })).toBeGreaterThanOrEqual(1);
      const bytesIn = only(samples, 'ctfs_replication_bytes_total', { node: 'b', direction: 'in' });
      expect(bytesIn).toBeGreaterThan(100 * 40); // 100 facts of at least id + payload
      expect(bytesIn).toBeLessThanOrEqual(b.stats().bytesIn);
      expect(only(samples, 'ctfs_replication_rejected_total', { node: 'a', reason: 'FrameTooLarge' })).toBe(1);
      expect(only(samples, 'ctfs_replication_pending_facts', { node: 'b' })).toBe(0);
      expect(() => createMetricsRegistry({ replication: { a: {} as never } })).toThrow(InvalidArgumentError);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});

describe('escrow metrics', () => {
  it('export rights, spends, requests, grants and the grant latency of real nodes, promtool-clean', async () => {
    const state = new BoundedCounterState(0n, 100n).toBytes();
    const escrow = { members: ['a', 'b'], lowWater: 5n, refill: 10n };
    const a = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), state), { nodeId: 'a', plaintext: true, escrow });
    const b = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), state), { nodeId: 'b', plaintext: true, peers: [a.address], escrow });
    try {
      const deadline = Date.now() + 20_000;
      while (!a.peers().some((p) => p.state === 'ready') || !b.peers().some((p) => p.state === 'ready')) {
        if (Date.now() > deadline) throw new Error('no link');
        await new Promise((r) => setTimeout(r, 10));
      }
      for (let i = 0; i < 50; i++) expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.Ok);
      expect(a.escrow!.tryAdmitSpend(u64le(1))).toBe(AdmitCode.EscrowExhausted);
      await a.escrow!.admitSpendAsync(u64le(1), [], { timeoutMs: 10_000 });
      const registry = createMetricsRegistry({ replication: { a, b } });
      const text = await registry.metrics();
      if (!withoutTool(PROMTOOL)) expectPromtoolClean(text);
      const samples = parseExposition(text);
      expect(only(samples, 'ctfs_escrow_spends_total', { node: 'a', outcome: 'ok' })).toBe(51);
      expect(only(samples, 'ctfs_escrow_spends_total', { node: 'a', outcome: 'exhausted' })).toBeGreaterThanOrEqual(1);
      expect(only(samples, 'ctfs_escrow_grants_total', { node: 'a', direction: 'received' })).toBeGreaterThanOrEqual(1);
      expect(only(samples, 'ctfs_escrow_grants_total', { node: 'b', direction: 'made' })).toBeGreaterThanOrEqual(1);
      expect(only(samples, 'ctfs_escrow_requests_total', { node: 'b', direction: 'received' })).toBeGreaterThanOrEqual(1);
      expect(only(samples, 'ctfs_escrow_available', { node: 'a', resource: 'up' })).toBe(Number(a.escrow!.available()));
      expect(only(samples, 'ctfs_escrow_grant_latency_p50_seconds', { node: 'a' })).toBeGreaterThan(0);
      expect(only(samples, 'ctfs_escrow_grant_latency_p99_seconds', { node: 'a' })).toBeGreaterThanOrEqual(only(samples, 'ctfs_escrow_grant_latency_p50_seconds', { node: 'a' }));
      expect(only(samples, 'ctfs_escrow_refused_total', { node: 'b' })).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});
