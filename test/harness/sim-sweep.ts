/**
 * Seed sweeps of the replication simulator: each seed picks its own cluster shape and fault mix
 * (derived from the seed, so a seed replays exactly), and a failing seed is reported with the one
 * command that replays it alone.
 */
import { Simulation, type SimulationOptions } from './replication-sim.js';

/** The shape a seed runs: node count within [min, max], and a mix of faults and features. */
export function sweepShape(seed: number, minNodes: number, maxNodes: number): SimulationOptions {
  // fmix32 of the seed: independent-looking bits for each choice.
  let h = Math.imul(seed ^ (seed >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  const bits = (at: number, n: number): number => (h >>> at) & ((1 << n) - 1);
  const nodes = minNodes + (h % (maxNodes - minNodes + 1));
  return {
    seed,
    nodes,
    chaosMs: 600 + 200 * bits(8, 2),
    loss: [0, 0.05, 0.1, 0.25][bits(10, 2)]!,
    duplication: [0, 0.05][bits(12, 1)]!,
    maxDelayMs: [5, 20][bits(13, 1)]!,
    crashRate: [0, 0.002, 0.005][bits(14, 2) % 3]!,
    partitionRate: [0, 0.002, 0.005][bits(16, 2) % 3]!,
    // One seed in four: joined through one seed node; tiny sketches (log streams); broadcast
    // trees on a small cluster; logs that keep only their last 40 facts (snapshots).
    seedOnly: bits(18, 2) === 0,
    sketchCells: bits(20, 2) === 0 ? 24 : 2048,
    directPushMax: bits(22, 2) === 0 ? 3 : 16,
    retainLogFacts: bits(24, 2) === 0 ? 40 : Number.POSITIVE_INFINITY,
  };
}

export interface SweepResult {
  readonly failures: string[];
  readonly facts: number;
  readonly seeds: number;
}

/** Runs seeds [first, first + count) (or only CTFS_SIM_SEED), shapes with node counts in [min, max]. */
export function sweep(testFile: string, first: number, count: number, minNodes: number, maxNodes: number): SweepResult {
  const only = process.env['CTFS_SIM_SEED'];
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => first + i);
  const failures: string[] = [];
  let facts = 0;
  for (const seed of seeds) {
    const shape = sweepShape(seed, minNodes, maxNodes);
    const report = new Simulation(shape).run_();
    facts += report.facts;
    if (report.violations.length > 0) failures.push(`seed ${seed} (${JSON.stringify(shape)}): ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run ${testFile}`);
  }
  return { failures, facts, seeds: seeds.length };
}
