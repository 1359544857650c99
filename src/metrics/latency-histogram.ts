/**
 * LatencyHistogram: nanosecond latencies in 64 power-of-two buckets (bucket i counts values in
 * [2^i, 2^(i+1)); values below 2 go to bucket 0), in one SharedArrayBuffer that any thread can
 * record into and any thread can read.
 *
 * Recording is lock-free and uses no atomic read-modify-write: each recording instance (the
 * creating one, and every `attach` in another thread) owns a **lane** of its own — 64 bucket
 * counts, the sum, and a tally of admission outcomes, as float64 (exact integers up to 2^53) — and
 * is its lane's only writer, so `record` is two plain increments (~2–5 ns) instead of three
 * `Atomics.add` (~30 ns). Readers add the lanes up; an aligned 8-byte load never tears on the
 * platforms Node runs on, and each lane's counts only grow, so a read is at worst a few records
 * behind. Layout in docs/FORMATS.md.
 */
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { checkSharedHeader } from '../core/shared-header.js';
import { optionsObject } from '../core/options.js';
import { describeValue } from '../describe-value.js';

/** "CTLH" little-endian. */
const MAGIC = 0x484c5443;
const VERSION = 1;
export const HISTOGRAM_BUCKETS = 64;
/** Outcome slots: one per admission code (0..15). */
export const OUTCOME_SLOTS = 16;
/** Header: magic, version, lane capacity, lanes claimed (Int32). 64 bytes. */
const HEADER_BYTES = 64;
const H_MAGIC = 0;
const H_VERSION = 1;
const H_LANES = 2;
const H_CLAIMED = 3;
/** A lane: 64 buckets, the sum, 16 outcomes — 81 float64, padded to 88 (11 cache lines). */
const LANE_WORDS = 88;
const SUM = HISTOGRAM_BUCKETS;
const OUTCOMES = SUM + 1;
/** Lanes a histogram has unless told otherwise: the creating thread, a persistence worker, pool threads. */
export const DEFAULT_LANES = 16;
const MAX_LANES = 1024;
const TWO_POW_32 = 0x1_0000_0000;

export interface HistogramSnapshot {
  /** Count per bucket: bucket i holds values in [2^i, 2^(i+1)) ns (bucket 0: [0, 2)). */
  readonly buckets: number[];
  readonly count: number;
  /** Sum of the recorded values, ns. */
  readonly sum: number;
  /** Count per admission code (`admitInstrumented` records them). */
  readonly outcomes: number[];
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** The current time in nanoseconds (`performance.now()` scaled: sub-microsecond resolution, ~30 ns a call). */
export function nowNs(): number {
  return performance.now() * 1e6;
}

/**
 * Records an admission that began at `started` (a `performance.now()` reading) and ended with
 * `code`, in whole nanoseconds; returns `code`. What every kernel's `admitInstrumented` does.
 */
export function recordAdmission(histogram: LatencyHistogram, started: number, code: number): number {
  histogram.recordOutcome(code, Math.round((performance.now() - started) * 1e6));
  return code;
}

/**
 * @internal Throws InvalidArgumentError unless `histogram` is a LatencyHistogram. The
 * `admitInstrumented` methods call it before admitting, so a bad histogram never follows an
 * admission that already happened.
 */
export function checkHistogram(histogram: unknown): asserts histogram is LatencyHistogram {
  if (!(histogram instanceof LatencyHistogram)) throw new InvalidArgumentError(`expected a LatencyHistogram, got ${describeValue(histogram)}`);
}

/**
 * A latency to record: a number below +Infinity (which would make the sum Infinity for good).
 * NaN and negatives are recorded as 0; anything that is not a number would throw a TypeError
 * half-way through a record.
 */
function checkLatency(ns: number): void {
  if (typeof ns !== 'number' || ns === Infinity) throw new InvalidArgumentError(`a latency is a number of nanoseconds below Infinity, got ${describeValue(ns)}`);
}

/** The bucket of `ns`: ⌊log2 ns⌋ clamped to 0..63 (NaN and negatives count as 0). */
export function bucketOf(ns: number): number {
  if (typeof ns !== 'number') throw new InvalidArgumentError(`bucketOf takes a number, got ${describeValue(ns)}`);
  if (!(ns >= 2)) return 0;
  if (ns < TWO_POW_32) return 31 - Math.clz32(ns);
  if (ns >= 2 ** 63) return HISTOGRAM_BUCKETS - 1;
  // Exact: dividing by 2^32 is exact in float64, and Math.log2 would round 2^k − ε up to k.
  return 63 - Math.clz32(Math.floor(ns / TWO_POW_32));
}

/** The largest integer in bucket `b`: its inclusive upper bound, the `le` of Prometheus. */
export function bucketUpperBound(b: number): number {
  if (!Number.isInteger(b) || b < 0 || b >= HISTOGRAM_BUCKETS) {
    throw new InvalidArgumentError(`a bucket is an integer in [0, ${HISTOGRAM_BUCKETS}), got ${describeValue(b)}`);
  }
  return 2 ** (b + 1) - 1;
}

export class LatencyHistogram {
  readonly buffer: SharedArrayBuffer;
  private readonly header: Int32Array;
  private readonly all: Float64Array;
  /** This instance's lane. */
  private readonly lane: Float64Array;

  /** A new histogram with room for `lanes` recording instances (threads). */
  constructor(options: { lanes?: number } = {}) {
    const { lanes = DEFAULT_LANES } = optionsObject(options);
    if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) {
      throw new InvalidArgumentError(`lanes must be an integer from 1 to ${MAX_LANES}`);
    }
    const buffer = new SharedArrayBuffer(HEADER_BYTES + lanes * LANE_WORDS * 8);
    const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    header[H_MAGIC] = MAGIC;
    header[H_VERSION] = VERSION;
    header[H_LANES] = lanes;
    this.buffer = buffer;
    this.header = header;
    this.all = new Float64Array(buffer, HEADER_BYTES);
    this.lane = this.claimLane();
  }

  /**
   * The histogram over `buffer` (from another instance, usually in another thread), with a lane
   * of its own to record into. Throws `SharedMemoryError` if every lane is taken.
   */
  static attach(buffer: SharedArrayBuffer): LatencyHistogram {
    checkSharedHeader(buffer, MAGIC, VERSION, 'a LatencyHistogram', HEADER_BYTES + LANE_WORDS * 8);
    const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const lanes = header[H_LANES]!;
    if (lanes < 1 || buffer.byteLength !== HEADER_BYTES + lanes * LANE_WORDS * 8) {
      throw new SharedMemoryError(`LatencyHistogram header (${lanes} lanes) does not match the buffer size`);
    }
    const h = Object.create(LatencyHistogram.prototype) as LatencyHistogram;
    const fields = { buffer, header, all: new Float64Array(buffer, HEADER_BYTES) };
    Object.assign(h, fields);
    Object.assign(h, { lane: h.claimLane() });
    return h;
  }

  private claimLane(): Float64Array {
    const lanes = this.header[H_LANES]!;
    const index = Atomics.add(this.header, H_CLAIMED, 1);
    if (index >= lanes) {
      Atomics.sub(this.header, H_CLAIMED, 1);
      throw new SharedMemoryError(`all ${lanes} lanes of the histogram are taken (create it with more lanes)`);
    }
    return this.all.subarray(index * LANE_WORDS, (index + 1) * LANE_WORDS);
  }

  /**
   * Records one latency in nanoseconds (NaN and negatives, e.g. from a clock stepping back, as
   * 0). Lock-free, allocation-free, single writer per instance. +Infinity and non-numbers throw
   * InvalidArgumentError and record nothing.
   */
  record(ns: number): void {
    checkLatency(ns);
    this.add(ns);
  }

  /** `record` without the check, for values this module computed. */
  private add(ns: number): void {
    const lane = this.lane;
    const v = ns > 0 ? ns : 0;
    lane[v < 2 ? 0 : v < TWO_POW_32 ? 31 - Math.clz32(v) : bucketOf(v)]! += 1;
    lane[SUM]! += v;
  }

  /**
   * Records a latency and the admission code it ended with (codes above 15, negative or not
   * integers count as 15). A code that is not a number, or a latency `record` refuses, throws
   * InvalidArgumentError and records nothing.
   */
  recordOutcome(code: number, ns: number): void {
    if (typeof code !== 'number') throw new InvalidArgumentError(`an admission code is a number, got ${describeValue(code)}`);
    checkLatency(ns);
    this.add(ns);
    this.lane[OUTCOMES + (Number.isInteger(code) && code >= 0 && code < OUTCOME_SLOTS ? code : OUTCOME_SLOTS - 1)]! += 1;
  }

  /** All lanes added up. */
  snapshot(): HistogramSnapshot {
    const buckets = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
    const outcomes = new Array<number>(OUTCOME_SLOTS).fill(0);
    let sum = 0;
    const claimed = Math.min(Atomics.load(this.header, H_CLAIMED), this.header[H_LANES]!);
    for (let l = 0; l < claimed; l++) {
      const base = l * LANE_WORDS;
      for (let b = 0; b < HISTOGRAM_BUCKETS; b++) buckets[b]! += this.all[base + b]!;
      sum += this.all[base + SUM]!;
      for (let o = 0; o < OUTCOME_SLOTS; o++) outcomes[o]! += this.all[base + OUTCOMES + o]!;
    }
    const count = buckets.reduce((a, b) => a + b, 0);
    return { buckets, count, sum, outcomes };
  }

  /**
   * p50, p90 and p99 in nanoseconds, each the upper bound of the bucket holding that rank (so
   * within a factor of 2 above the true value, never below it); 0 when empty.
   */
  percentiles(): Percentiles {
    const { buckets, count } = this.snapshot();
    const at = (q: number): number => {
      if (count === 0) return 0;
      const rank = Math.ceil(q * count);
      let seen = 0;
      for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
        seen += buckets[b]!;
        if (seen >= rank) return bucketUpperBound(b);
      }
      return bucketUpperBound(HISTOGRAM_BUCKETS - 1);
    };
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
  }

  /** Number of values recorded (all lanes). */
  get count(): number {
    return this.snapshot().count;
  }
}
