import { it } from 'vitest';
import { Simulation } from './harness/replication-sim.js';
it('x', () => {
  for (const [nodes, chaos] of [[12, true], [30, false], [30, true], [60, false]] as const) {
    const t = Date.now();
    const o = chaos ? {} : { loss: 0, duplication: 0, crashRate: 0, partitionRate: 0 };
    const r = new Simulation({ seed: 7, nodes, chaosMs: 2000, ...o }).run_();
    console.log(JSON.stringify({ nodes, chaos, facts: r.facts, hops: r.hops, byType: r.byType, repaired: r.repaired, frames: r.frames, bytes: r.bytes, conv: r.convergedAfterHealMs, v: r.violations.slice(0, 3), ms: Date.now() - t }));
  }
});
