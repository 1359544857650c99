// The Bloom lane and the exact lane. The 512-bit Bloom clock saturates quickly; the exact index
// decides, so a dependency that was never admitted is rejected however full the Bloom is.
import assert from 'node:assert/strict';
import { AdmitCode, ConservationState, TotalSupplyInvariant, TwoLaneKernel, createFact, i128le } from 'ctfs';

const kernel = TwoLaneKernel.withState(new TotalSupplyInvariant(), new ConservationState(0n).toCell());

let previous = createFact([], i128le(1n));
kernel.admit(previous);
for (let i = 1; i < 1000; i++) {
  const fact = createFact([previous.id], i128le(1n));
  kernel.admit(fact);
  previous = fact;
}
console.log(`1000 chained facts: Bloom saturation ${(kernel.saturation * 100).toFixed(1)}%`);
console.log(`exact index: ${kernel.exactIndex.size} ids in ${(kernel.exactIndex.byteLength / 2 ** 20).toFixed(1)} MiB (its hot tables; no limit on ids)`);

// Find ids the Bloom clock would wrongly accept, and show the exact lane rejecting them.
const clock = kernel.clock;
let falsePositives = 0;
for (let i = 0; i < 1000; i++) {
  const phantom = createFact([], i128le(BigInt(-1 - i))).id; // never admitted
  if (!clock.mightContain(phantom)) continue;
  falsePositives++;
  const code = kernel.tryAdmitRaw(createFact([phantom], i128le(1n)).id, [phantom], i128le(1n));
  assert.equal(code, AdmitCode.CausalityViolation);
}
console.log(`${falsePositives} of 1000 never-admitted ids pass the Bloom filter; the exact lane rejected all of them`);
assert.ok(falsePositives > 500);
assert.equal(ConservationState.fromCell(kernel.state).balance, 1000n);
