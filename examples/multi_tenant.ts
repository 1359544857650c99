// Isolated causal domains per tenant: the seed's multi_tenant example.
import assert from 'node:assert/strict';
import { AdmitCode, ConservationState, TenantKernel, TotalSupplyInvariant, i128le } from 'ctfs';

const kernel = new TenantKernel(new TotalSupplyInvariant());
kernel.registerTenant(1, new ConservationState(100n, 0n, 10_000n).toCell()); // alice
kernel.registerTenant(2, new ConservationState(500n, 0n, 10_000n).toCell()); // bob

const aliceFact = new Uint8Array(32).fill(0xa1);
const bobFact = new Uint8Array(32).fill(0xb0);
kernel.admitRaw(1, aliceFact, [], i128le(50n));
kernel.admitRaw(2, bobFact, [], i128le(100n));

// Cross-tenant dependencies are rejected: bob's fact does not exist in alice's domain.
const code = kernel.tryAdmitRaw(1, new Uint8Array(32).fill(0xa2), [bobFact], i128le(1n));
console.log(`alice depending on bob's fact -> code ${code} (CausalityViolation)`);
assert.equal(code, AdmitCode.CausalityViolation);

// Within a tenant, dependencies work.
kernel.admitRaw(1, new Uint8Array(32).fill(0xa3), [aliceFact], i128le(25n));

// The same id may exist independently in two tenants.
kernel.admitRaw(2, aliceFact, [], i128le(1n));

assert.equal(kernel.tryAdmitRaw(7, new Uint8Array(32), [], i128le(1n)), AdmitCode.UnknownTenant);
console.log('unknown tenant -> UnknownTenant');

const alice = ConservationState.fromCell(kernel.stateOf(1)).balance;
const bob = ConservationState.fromCell(kernel.stateOf(2)).balance;
console.log(`alice ${alice}, bob ${bob}`);
assert.equal(alice, 175n);
assert.equal(bob, 601n);
