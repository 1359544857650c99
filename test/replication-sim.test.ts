/**
 * The replication core in the deterministic simulator: many seeds, 3–8 nodes, with loss,
 * duplication, reordering, partitions, crashes and restarts. A failing seed names the command that
 * replays it alone.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from './harness/replication-sim.js';

const ONE_SEED = process.env['CTFS_SIM_SEED'];
const SEEDS = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: Number(process.env['CTFS_SIM_SEEDS'] ?? 150) }, (_, i) => i + 1);

describe('replication in the simulator', () => {
  it('never hands a fact over before its deps or twice, and converges after healing, on every seed', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    let facts = 0;
    for (const seed of SEEDS) {
      const nodes = 3 + (seed % 6);
      const report = new Simulation({ seed, nodes, chaosMs: 2_000 }).run_();
      facts += report.facts;
      if (report.violations.length > 0) {
        failures.push(`seed ${seed} (${nodes} nodes): ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
      }
    }
    expect(failures).toEqual([]);
    expect(facts).toBeGreaterThan(SEEDS.length * 100); // the runs did admit facts
  });

  it('beyond what a sketch decodes, nodes catch up by streaming each other\'s logs (tiny sketches force it)', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    let streams = 0;
    for (const seed of SEEDS.slice(0, 20)) {
      const report = new Simulation({ seed, nodes: 3 + (seed % 4), chaosMs: 1_500, sketchCells: 24 }).run_();
      streams += report.streams;
      if (report.violations.length > 0) failures.push(`seed ${seed}: ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
    }
    expect(failures).toEqual([]);
    expect(streams).toBeGreaterThan(0); // the fallback did run
  });

  it('nodes that start knowing one seed learn every other node and converge the same way', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    for (const seed of SEEDS.slice(0, 30)) {
      const report = new Simulation({ seed, nodes: 4 + (seed % 8), chaosMs: 1_500, seedOnly: true }).run_();
      if (report.violations.length > 0) failures.push(`seed ${seed}: ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
    }
    expect(failures).toEqual([]);
  });

  it('nodes that crash for good are failed by every survivor, live nodes are not, and the survivors converge', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    let crashes = 0;
    for (const seed of SEEDS.slice(0, 20)) {
      const report = new Simulation({ seed, nodes: 4 + (seed % 5), chaosMs: 2_000, permanentCrashes: true, crashRate: 0.001 }).run_();
      crashes += report.crashes;
      if (report.violations.length > 0) failures.push(`seed ${seed}: ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
    }
    expect(failures).toEqual([]);
    expect(crashes).toBeGreaterThan(0);
  });

  it('facts travel down broadcast trees (forced on small clusters) and still converge under every fault', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    let viaTree = 0;
    let repaired = 0;
    for (const seed of SEEDS.slice(0, 30)) {
      const report = new Simulation({ seed, nodes: 5 + (seed % 8), chaosMs: 1_500, directPushMax: 3 }).run_();
      viaTree += report.hops.slice(2).reduce((a, b) => a + b, 0);
      repaired += report.repaired;
      if (report.violations.length > 0) failures.push(`seed ${seed}: ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
    }
    expect(failures).toEqual([]);
    expect(viaTree).toBeGreaterThan(0); // facts did take more than one hop: the trees relayed
    expect(repaired).toBeGreaterThan(0);
  });

  it('without faults, a tree delivers nearly everything, within the overlay\'s diameter', { timeout: 600_000 }, () => {
    const report = new Simulation({ seed: 11, nodes: 40, chaosMs: 1_500, loss: 0, duplication: 0, crashRate: 0, partitionRate: 0 }).run_();
    expect(report.violations).toEqual([]);
    const pushed = report.hops.reduce((a, b) => a + b, 0);
    expect(pushed).toBeGreaterThan(2 * report.repaired);
    // 40 nodes, fanout 4: diameter 3 (test/broadcast-tree.test.ts); a Prune after a lost race may add a hop or two.
    expect(report.hops.length - 1).toBeLessThanOrEqual(6);
  });

  it('a node whose peers\' logs no longer reach back far enough catches up from a verified snapshot, reanchoring its kernel', { timeout: 600_000 }, () => {
    const failures: string[] = [];
    let reanchors = 0;
    for (const seed of SEEDS.slice(0, 20)) {
      const report = new Simulation({ seed, nodes: 3 + (seed % 4), chaosMs: 1_500, sketchCells: 24, retainLogFacts: 40 }).run_();
      reanchors += report.reanchors;
      if (report.violations.length > 0) failures.push(`seed ${seed}: ${report.violations[0]} — replay: CTFS_SIM_SEED=${seed} npx vitest run test/replication-sim.test.ts`);
    }
    expect(failures).toEqual([]);
    expect(reanchors).toBeGreaterThan(0);
  });
});
