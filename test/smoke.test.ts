import { describe, expect, it } from 'vitest';
import { ConservationState, Kernel, TotalSupplyInvariant, i128le } from './helpers/lib.js';
import { seq } from './helpers/ids.js';

describe('smoke', () => {
  it('admits a fact and a dependent fact', () => {
    const kernel = Kernel.withState(new TotalSupplyInvariant(), new ConservationState(1000n, 0n, 1_000_000n).toCell());
    kernel.admitRaw(seq(1), [], i128le(500n));
    kernel.admitRaw(seq(2), [seq(1)], i128le(-200n));
    expect(ConservationState.fromCell(kernel.state).balance).toBe(1300n);
  });
});
