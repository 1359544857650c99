/**
 * The replication simulator over 12 seeds of 17 to 32 nodes, each seed with its own fault
 * mix and features (test/harness/sim-sweep.ts): never a fact before its deps or twice, and after
 * healing every node holds the same facts and state, durable facts everywhere, membership settled.
 */
import { describe, expect, it } from 'vitest';
import { sweep } from './harness/sim-sweep.js';

describe('replication sweep, 17–32 nodes', () => {
  it('holds on every seed', { timeout: 900_000 }, () => {
    const result = sweep('test/replication-sweep-large.test.ts', 200001, 12, 17, 32);
    expect(result.failures).toEqual([]);
    expect(result.facts).toBeGreaterThan(result.seeds * 20); // the runs did admit facts
  });
});
