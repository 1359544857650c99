// Basic fact admission and causality: the seed's basic_kernel example, plus the rejections.
import assert from 'node:assert/strict';
import { AdmitCode, AdmitError, ConservationState, Kernel, TotalSupplyInvariant, i128le } from 'ctfs';

// balance 1000, bounds [0, 1_000_000]
const kernel = Kernel.withState(new TotalSupplyInvariant(), new ConservationState(1000n, 0n, 1_000_000n).toCell());

const fact1 = new Uint8Array(32).fill(1);
kernel.admitRaw(fact1, [], i128le(500n));

// A causal dependency on fact1
const fact2 = new Uint8Array(32).fill(2);
kernel.admitRaw(fact2, [fact1], i128le(-200n));
const balance = ConservationState.fromCell(kernel.state).balance;
console.log(`balance after two facts: ${balance}`);
assert.equal(balance, 1300n);

// Hot paths use tryAdmitRaw, which returns a numeric code instead of throwing.
const phantom = new Uint8Array(32).fill(99);
const code = kernel.tryAdmitRaw(new Uint8Array(32).fill(3), [phantom], i128le(1n));
console.log(`depending on a fact never admitted -> code ${code} (CausalityViolation)`);
assert.equal(code, AdmitCode.CausalityViolation);

assert.equal(kernel.tryAdmitRaw(fact1, [], i128le(500n)), AdmitCode.DuplicateFact);
console.log('re-admitting fact1 -> DuplicateFact (balance unchanged)');

try {
  kernel.admitRaw(new Uint8Array(32).fill(4), [fact2], i128le(-5000n));
  assert.fail('an overdraft must be rejected');
} catch (err) {
  assert.ok(err instanceof AdmitError);
  console.log(`overdraft -> ${err.code} (${err.invariantError})`);
  assert.equal(err.code, 'InvariantViolation');
  assert.equal(err.invariantError, 'Underflow');
}

assert.equal(ConservationState.fromCell(kernel.state).balance, 1300n);
console.log(`frontier heads: ${kernel.frontier().length}, facts admitted: ${kernel.size}`);
