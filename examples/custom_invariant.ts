// A custom invariant: the seed's monotonic u64, as a TypeScript class, in every kernel.
import assert from 'node:assert/strict';
import {
  AdmitCode,
  AlgebraicClass,
  DualKernel,
  EscalatingKernel,
  InvariantCode,
  Kernel,
  MultiKernel,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  i128le,
  readU64le,
  u64le,
  type Invariant,
} from 'ctfs';
import { checkAlgebraicClass } from 'ctfs/properties';
import fc from 'fast-check';

/** A u64 that may only be raised: proposing a smaller value is refused with Underflow. */
class MonotonicInvariant implements Invariant {
  // Acceptance depends on order (5 then 3 accepts 5 and refuses 3; 3 then 5 accepts both), so this
  // is not a lattice: replicas would admit different facts. It is bounded below by the current value.
  readonly algebraicClass = AlgebraicClass.BoundedCommutative;
  readonly mutatesOnlyOnSuccess = true;

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 8) return InvariantCode.MalformedPayload;
    const view = new DataView(payload.buffer, payload.byteOffset, 8); // fine outside a hot path
    const proposed = view.getBigUint64(0, true);
    const current = new DataView(state.buffer, state.byteOffset, 8).getBigUint64(0, true);
    if (proposed < current) return InvariantCode.Underflow;
    new DataView(state.buffer, state.byteOffset, 8).setBigUint64(0, proposed, true);
    return InvariantCode.Ok;
  }
}

const id = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const value = (state: Uint8Array): bigint => readU64le(state, 0);

for (const kernel of [new Kernel(new MonotonicInvariant()), new TwoLaneKernel(new MonotonicInvariant()), new EscalatingKernel(new MonotonicInvariant())]) {
  kernel.admitRaw(id(1), [], u64le(5));
  kernel.admitRaw(id(2), [id(1)], u64le(9));
  assert.equal(kernel.tryAdmitRaw(id(3), [id(2)], u64le(4)), AdmitCode.InvariantViolation);
  assert.equal(kernel.lastInvariantError, InvariantCode.Underflow);
  assert.equal(kernel.tryAdmitRaw(id(2), [id(1)], u64le(9)), AdmitCode.DuplicateFact);
  assert.equal(value(kernel.state.bytes), 9n);
  console.log(`${kernel.constructor.name}: 5 → 9 accepted, 4 refused (Underflow), value ${value(kernel.state.bytes)}`);
}

const tenants = new TenantKernel(new MonotonicInvariant());
tenants.registerTenant(7);
tenants.admitRaw(7, id(1), [], u64le(3));
assert.equal(tenants.tryAdmitRaw(7, id(2), [], u64le(2)), AdmitCode.InvariantViolation);
console.log(`TenantKernel: tenant 7 holds ${value(tenants.stateOf(7).bytes)}`);

const multi = new MultiKernel();
multi.register(new MonotonicInvariant());
multi.register(new TotalSupplyInvariant());
multi.admitRaw(id(1), [], [u64le(10), i128le(100n)]);
assert.equal(multi.tryAdmitRaw(id(2), [id(1)], [u64le(1), i128le(5n)]), AdmitCode.InvariantViolation);
assert.equal(multi.lastFailedInvariant, 0);
console.log('MultiKernel: a refusal by the monotonic invariant leaves the balance untouched too');

const dual = new DualKernel(new MonotonicInvariant(), undefined, new TotalSupplyInvariant(), undefined);
dual.admitRaw(id(1), [], u64le(1), i128le(1n));
console.log(`DualKernel: class ${dual.algebraicClass} (BoundedCommutative ⊕ BoundedCommutative)`);

// The property checkers confirm the class: bounded, so only order-independent when nothing is refused.
const report = checkAlgebraicClass(new MonotonicInvariant(), { payload: fc.bigInt({ min: 0n, max: 100n }).map((v) => u64le(v)), numRuns: 200 });
assert.ok(report.holds);
const wrong = checkAlgebraicClass(Object.assign(new MonotonicInvariant(), { algebraicClass: AlgebraicClass.Lattice }), {
  payload: fc.bigInt({ min: 0n, max: 100n }).map((v) => u64le(v)),
  numRuns: 200,
});
assert.ok(!wrong.holds);
console.log(`labelled Lattice it would be caught: ${wrong.results.filter((r) => !r.holds).map((r) => r.property).join(', ')} fail`);
