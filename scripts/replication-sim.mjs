#!/usr/bin/env node
// The replication simulator at sizes CI does not run: the CLI of test/harness/replication-sim.ts,
// run compiled from build/ (`npm run sim` builds first).
//
//   node scripts/replication-sim.mjs [--nodes=100] [--seeds=3] [--first-seed=1] [--chaos-ms=2000]
//        [--sketch-cells=2048] [--direct-push-max=16] [--quiet=0|1] [--breakdown=0|1]
//        [--anti-entropy-ms=200] [--probe-ms=100]
//
// Prints one line per seed (facts, crashes, partitions, convergence after healing, frames and
// bytes per fact, hops of pushed facts, log streams, failure-detector verdicts) and the medians;
// exits 1 on the first seed with a violation. --quiet=1: no loss, duplication, crash or partition
// (delays and reordering remain). --breakdown=1: bytes per fact by frame type.
import * as fs from 'node:fs';

const HARNESS = new URL('../build/test/harness/replication-sim.js', import.meta.url);
if (!fs.existsSync(HARNESS)) {
  console.error('the simulator is not built: run `npm run build` (or `npm run sim`)');
  process.exit(1);
}
const { Simulation } = await import(HARNESS.href);

const options = { nodes: 100, seeds: 3, firstSeed: 1, chaosMs: 2000, sketchCells: 2048, directPushMax: 16, quiet: 0, breakdown: 0, antiEntropyMs: 200, probeMs: 100 };
for (const arg of process.argv.slice(2)) {
  const m = /^--(nodes|seeds|first-seed|chaos-ms|sketch-cells|direct-push-max|quiet|breakdown|anti-entropy-ms|probe-ms)=(\d+)$/.exec(arg);
  if (m === null) {
    console.error(`unknown argument ${arg}`);
    process.exit(2);
  }
  options[m[1].replace(/-(\w)/g, (_, c) => c.toUpperCase())] = Number(m[2]);
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const rows = [];
for (let seed = options.firstSeed; seed < options.firstSeed + options.seeds; seed++) {
  const started = performance.now();
  const faults = options.quiet ? { loss: 0, duplication: 0, crashRate: 0, partitionRate: 0 } : {};
  const sim = new Simulation({ seed, nodes: options.nodes, chaosMs: options.chaosMs, sketchCells: options.sketchCells, directPushMax: options.directPushMax, antiEntropyMs: options.antiEntropyMs, probeMs: options.probeMs, ...faults });
  const r = sim.run_();
  const idle = sim.idleBytesPerNodePerSecond();
  const pushed = r.hops.reduce((a, b) => a + b, 0);
  const hops = r.hops.map((n, h) => (n > 0 ? `${h}:${n}` : '')).filter(Boolean).join(' ');
  const line = `seed ${seed}: ${options.nodes} nodes, ${r.facts} facts, ${r.crashes} crashes, ${r.partitions} partitions; converged ${r.convergedAfterHealMs} ms after healing, membership settled ${r.membershipSettledMs} ms; ${(r.frames / r.facts).toFixed(1)} frames and ${Math.round(r.bytes / r.facts)} bytes per fact; delivered by push ${pushed} (hops ${hops}), by repair ${r.repaired}; ${r.streams} log streams; ${r.falseFailures} live nodes failed; idle ${Math.round(idle)} B/s per node (${((performance.now() - started) / 1000).toFixed(1)} s)`;
  console.log(line);
  if (options.breakdown) {
    for (const [type, t] of Object.entries(r.byType).sort((a, b) => b[1].bytes - a[1].bytes)) console.log(`  ${type.padEnd(14)} ${String(t.frames).padStart(9)} frames ${(t.bytes / r.facts).toFixed(0).padStart(8)} B/fact`);
  }
  if (r.violations.length > 0) {
    console.error(`violation: ${r.violations[0]}\nreplay: node scripts/replication-sim.mjs --nodes=${options.nodes} --seeds=1 --first-seed=${seed} --chaos-ms=${options.chaosMs} --sketch-cells=${options.sketchCells} --direct-push-max=${options.directPushMax} --quiet=${options.quiet} --anti-entropy-ms=${options.antiEntropyMs} --probe-ms=${options.probeMs}`);
    process.exit(1);
  }
  rows.push({ ...r, idle, maxHops: r.hops.length - 1 });
}
console.log(
  `medians over ${rows.length} seeds: converged ${median(rows.map((r) => r.convergedAfterHealMs))} ms after healing, ${median(rows.map((r) => r.frames / r.facts)).toFixed(1)} frames and ${Math.round(median(rows.map((r) => r.bytes / r.facts)))} bytes per fact, idle ${Math.round(median(rows.map((r) => r.idle)))} B/s per node, most hops ${Math.max(...rows.map((r) => r.maxHops))}`,
);
