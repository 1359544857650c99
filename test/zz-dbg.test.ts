import { it } from 'vitest';
import { Simulation } from './harness/replication-sim.js';
it('dbg', () => {
  for (const [seed, nodes, chaos] of [[1, 3, 500], [2, 5, 1000]] as const) {
    const t = performance.now();
    const r = new Simulation({ seed, nodes, chaosMs: chaos }).run_(3000);
    console.log(seed, nodes, 'ms', Math.round(performance.now() - t), JSON.stringify({ ...r, violations: r.violations.slice(0, 3) }));
  }
}, 600000);
