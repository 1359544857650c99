/**
 * Benchmark plumbing shared by the suites: id pools, outcome tallies, a batch timer for stateful
 * loops, mitata for stateless micro-operations, and the report table.
 *
 * Every timed loop records the outcome code of each operation. A loop that is meant to measure
 * the success path and saw anything else is reported as INVALID and makes the run exit non-zero,
 * so an error path can never pass for a result.
 */
import { measure } from 'mitata';
import { AdmitCode, admitCodeName } from 'ctfs';

export interface Row {
  name: string;
  /** Median ns/op over rounds (each round's own median over batches or samples). */
  median: number;
  min: number;
  max: number;
  outcomes: string;
  valid: boolean;
  note?: string;
}

export const rows: Row[] = [];

/** `count` distinct pseudo-random 32-byte ids in one buffer (views share it: no per-id allocation). */
export function idPool(count: number, salt = 1): Uint8Array[] {
  const bytes = new Uint8Array(32 * count);
  let x = (0x9e3779b9 ^ Math.imul(salt, 0x85ebca6b)) | 0;
  const words = new Uint32Array(bytes.buffer);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const ids: Uint8Array[] = [];
  for (let i = 0; i < count; i++) ids.push(bytes.subarray(32 * i, 32 * i + 32));
  return ids;
}

/** Tally of admission codes seen by one benchmark. */
export class Outcomes {
  readonly counts = new Float64Array(32);

  add(code: number): void {
    this.counts[code] = this.counts[code]! + 1;
  }

  get ok(): number {
    return this.counts[AdmitCode.Ok]!;
  }

  get total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  describe(): string {
    const parts: string[] = [];
    this.counts.forEach((n, code) => {
      if (n > 0) parts.push(`${code === 0 ? 'Ok' : admitCodeName(code)} ${n.toLocaleString('en-US')}`);
    });
    return parts.join(', ') || 'none';
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface BatchPlan {
  rounds: number;
  batches: number;
  batchSize: number;
  /** Untimed, before each round (reset, prefill). */
  setup: () => void;
  /** Runs operations [from, from + count) of the round; returns nothing. */
  run: (from: number, count: number) => void;
}

/**
 * Times `run` in batches of `batchSize` operations with the real-time clock, after one untimed
 * warm-up round (so JIT optimisation is not measured). Each round's figure is the median ns/op
 * over its batches; the reported figure is the median over rounds. Outcomes of the warm-up round
 * are counted too: it runs the same operations.
 */
export function timeBatches(name: string, plan: BatchPlan, outcomes: Outcomes, expectOk = true, note?: string): Row {
  const roundMedians: number[] = [];
  plan.setup();
  for (let b = 0; b < plan.batches; b++) plan.run(b * plan.batchSize, plan.batchSize);
  for (let r = 0; r < plan.rounds; r++) {
    plan.setup();
    const perBatch: number[] = [];
    for (let b = 0; b < plan.batches; b++) {
      const t0 = process.hrtime.bigint();
      plan.run(b * plan.batchSize, plan.batchSize);
      perBatch.push(Number(process.hrtime.bigint() - t0) / plan.batchSize);
    }
    roundMedians.push(median(perBatch));
  }
  return record(name, roundMedians, outcomes, expectOk, note);
}

/** mitata `measure` of a stateless operation, `rounds` times; reports the median of the p50s. */
export async function timeMitata(
  name: string,
  fn: () => unknown,
  rounds: number,
  outcomes: Outcomes,
  expectOk = true,
  note?: string,
): Promise<Row> {
  const p50s: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const stats = await measure(fn, { min_cpu_time: 300e6 });
    p50s.push(stats.p50);
  }
  return record(name, p50s, outcomes, expectOk, note);
}

/** Reports figures (ns/op, one per round) measured by the caller's own loop. */
export function record(name: string, figures: number[], outcomes: Outcomes, expectOk = true, note?: string): Row {
  const valid = !expectOk || (outcomes.total > 0 && outcomes.ok === outcomes.total);
  const row: Row = {
    name,
    median: median(figures),
    min: Math.min(...figures),
    max: Math.max(...figures),
    outcomes: outcomes.describe(),
    valid,
    ...(note === undefined ? {} : { note }),
  };
  rows.push(row);
  const flag = valid ? '' : '  INVALID: expected only Ok outcomes';
  console.log(
    `  ${name.padEnd(52)} ${row.median.toFixed(1).padStart(8)} ns/op  (rounds ${row.min.toFixed(1)}..${row.max.toFixed(1)})  [${row.outcomes}]${flag}`,
  );
  return row;
}

/** Prints every row as a markdown table (for docs/BENCHMARKS.md). */
export function printMarkdown(): void {
  console.log('\n| benchmark | median ns/op | rounds min..max | outcomes |');
  console.log('|---|---:|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.median.toFixed(1)} | ${r.min.toFixed(1)}..${r.max.toFixed(1)} | ${r.outcomes}${r.valid ? '' : ' **INVALID**'} |`);
  }
}
