// EscalatingKernel: once the Bloom clock is 40% saturated it stops pre-filtering deps with it
// (mode Fast -> Precise) and goes straight to the exact index. Outcomes never change.
import assert from 'node:assert/strict';
import { AdmitCode, CausalMode, ConservationState, EscalatingKernel, TotalSupplyInvariant, createFact, i128le } from 'ctfs';

const kernel = EscalatingKernel.withState(new TotalSupplyInvariant(), new ConservationState(0n).toCell());
assert.equal(kernel.mode, CausalMode.Fast);

const first = createFact([], i128le(1n));
kernel.admit(first);
let admitted = 1;
while (kernel.mode === CausalMode.Fast) {
  kernel.admit(createFact([], i128le(BigInt(admitted + 1))));
  admitted++;
}
console.log(`escalated to Precise after ${admitted} facts (saturation ${(kernel.saturation * 100).toFixed(1)}%)`);

// The very first fact is still a valid dependency (upstream's Precise mode kept only 16 ids).
kernel.admit(createFact([first.id], i128le(1n)));
// And a dependency that was never admitted is still rejected.
const phantom = createFact([], i128le(-1n)).id;
assert.equal(kernel.tryAdmitRaw(createFact([phantom], i128le(1n)).id, [phantom], i128le(1n)), AdmitCode.CausalityViolation);
console.log('Precise mode: old deps accepted, phantom deps rejected');

kernel.resetMode();
console.log(`resetMode() -> ${kernel.mode === CausalMode.Fast ? 'Fast' : 'Precise'} (re-escalates on the next admission while saturated)`);
