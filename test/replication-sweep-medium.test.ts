/**
 * The replication simulator over 100 seeds of 9 to 16 nodes, each seed with its own fault
 * mix and features (test/harness/sim-sweep.ts): never a fact before its deps or twice, and after
 * healing every node holds the same facts and state, durable facts everywhere, membership settled.
 */
import { describe, expect, it } from 'vitest';
import { sweep } from './harness/sim-sweep.js';

describe('replication sweep, 9–16 nodes', () => {
  it('holds on every seed', { timeout: 900_000 }, () => {
    const result = sweep('test/replication-sweep-medium.test.ts', 100001, 100, 9, 16);
    expect(result.failures).toEqual([]);
    expect(result.facts).toBeGreaterThan(result.seeds * 20); // the runs did admit facts
  });
});
