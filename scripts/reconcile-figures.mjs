#!/usr/bin/env node
// Reconciliation between two nodes that hold overlapping sets (test/harness/reconcile-pair.ts, run
// compiled from build/): round trips, and bytes per difference beyond the fact records, at 10, 1k
// and 100k differences, one-sided (a node catching up) and split evenly (two diverged nodes).
//
//   node scripts/reconcile-figures.mjs [--common=100000] [--payload=32]
import * as fs from 'node:fs';

const HARNESS = new URL('../build/test/harness/reconcile-pair.js', import.meta.url);
if (!fs.existsSync(HARNESS)) {
  console.error('not built: run `npm run build` first');
  process.exit(1);
}
const { reconcilePair } = await import(HARNESS.href);

const options = { common: 100_000, payload: 32 };
for (const arg of process.argv.slice(2)) {
  const m = /^--(common|payload)=(\d+)$/.exec(arg);
  if (m === null) {
    console.error(`unknown argument ${arg}`);
    process.exit(2);
  }
  options[m[1]] = Number(m[2]);
}

const cases = [];
for (const d of [10, 1_000, 100_000]) {
  // The default sketch (4,096 cells) decodes up to ~2,300 differences; 100k take the log stream,
  // or a sketch sized for them (sketchCells 2^18).
  const sizes = d > 2_000 ? [4_096, 1 << 18] : [4_096];
  for (const sketchCells of sizes) {
    cases.push({ label: `${d} one-sided`, common: options.common, onlyA: 0, onlyB: d, sketchCells });
    cases.push({ label: `${d} split`, common: options.common, onlyA: d / 2, onlyB: d / 2, sketchCells });
  }
}
console.log(`${options.common} facts in common, ${options.payload}-byte payloads (a record is ${38 + options.payload} bytes)`);
console.log('differences      sketch cells  round trips  bytes/difference beyond records  (by frame type, bytes/difference)');
for (const c of cases) {
  const r = reconcilePair({ ...c, payloadBytes: options.payload });
  if (!r.converged) {
    console.error(`${c.label}: did not converge`);
    process.exit(1);
  }
  const per = (b) => (b / r.differences).toFixed(1);
  const types = Object.entries(r.byType)
    .map(([t, b]) => `${t} ${per(b)}`)
    .join(', ');
  console.log(`${c.label.padEnd(16)} ${String(c.sketchCells).padStart(12)}  ${String(r.roundTrips).padStart(11)}  ${per(r.bytes - r.recordBytes).padStart(32)}  (${types})`);
}
