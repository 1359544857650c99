#!/usr/bin/env node
// The replication simulator at sizes CI does not run: the CLI of test/harness/replication-sim.ts,
// run compiled from build/ (`npm run sim` builds first).
//
//   node scripts/replication-sim.mjs [--nodes=100] [--seeds=3] [--first-seed=1] [--chaos-ms=2000] [--sketch-cells=2048]
//
// Prints one line per seed (facts, crashes, partitions, convergence after healing, frames and
// bytes per fact, log streams) and the medians; exits 1 on the first seed with a violation.
import * as fs from 'node:fs';

const HARNESS = new URL('../build/test/harness/replication-sim.js', import.meta.url);
if (!fs.existsSync(HARNESS)) {
  console.error('the simulator is not built: run `npm run build` (or `npm run sim`)');
  process.exit(1);
}
const { Simulation } = await import(HARNESS.href);

const options = { nodes: 100, seeds: 3, firstSeed: 1, chaosMs: 2000, sketchCells: 2048 };
for (const arg of process.argv.slice(2)) {
  const m = /^--(nodes|seeds|first-seed|chaos-ms|sketch-cells)=(\d+)$/.exec(arg);
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
  const sim = new Simulation({ seed, nodes: options.nodes, chaosMs: options.chaosMs, sketchCells: options.sketchCells });
  const r = sim.run_();
  const idle = sim.idleBytesPerNodePerSecond();
  const line = `seed ${seed}: ${options.nodes} nodes, ${r.facts} facts, ${r.crashes} crashes, ${r.partitions} partitions; converged ${r.convergedAfterHealMs} ms after healing; ${(r.frames / r.facts).toFixed(1)} frames and ${Math.round(r.bytes / r.facts)} bytes per fact; ${r.streams} log streams; idle ${Math.round(idle)} B/s per node (${((performance.now() - started) / 1000).toFixed(1)} s)`;
  console.log(line);
  if (r.violations.length > 0) {
    console.error(`violation: ${r.violations[0]}\nreplay: node scripts/replication-sim.mjs --nodes=${options.nodes} --seeds=1 --first-seed=${seed} --chaos-ms=${options.chaosMs} --sketch-cells=${options.sketchCells}`);
    process.exit(1);
  }
  rows.push({ ...r, idle });
}
console.log(
  `medians over ${rows.length} seeds: converged ${median(rows.map((r) => r.convergedAfterHealMs))} ms after healing, ${median(rows.map((r) => r.frames / r.facts)).toFixed(1)} frames and ${Math.round(median(rows.map((r) => r.bytes / r.facts)))} bytes per fact, idle ${Math.round(median(rows.map((r) => r.idle)))} B/s per node`,
);
