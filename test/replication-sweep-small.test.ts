/**
 * The replication simulator over 1500 seeds of 3 to 8 nodes, each seed with its own fault
 * mix and features (test/harness/sim-sweep.ts): never a fact before its deps or twice, and after
 * healing every node holds the same facts and state, durable facts everywhere, membership settled.
 */
import { describe, expect, it } from 'vitest';
import { sweep } from './harness/sim-sweep.js';

describe('replication sweep, 3–8 nodes', () => {
  it('holds on every seed', { timeout: 900_000 }, () => {
    const result = sweep('test/replication-sweep-small.test.ts', 1, 1500, 3, 8);
    expect(result.failures).toEqual([]);
    expect(result.facts).toBeGreaterThan(result.seeds * 20); // the runs did admit facts
  });
});
