/**
 * admitInstrumented on every kernel family: the code returned is the plain admission's, and the
 * histogram records one latency and that outcome per call.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  DualKernel,
  GCounterInvariant,
  LatencyHistogram,
  MultiKernel,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  i128le,
  u64le,
} from './helpers/lib.js';

const id = (n: number): Uint8Array => {
  const out = new Uint8Array(32);
  new DataView(out.buffer).setUint32(0, n, true);
  out[31] = 0xa5;
  return out;
};

function expectRecorded(h: LatencyHistogram, outcomes: Record<number, number>): void {
  const snap = h.snapshot();
  const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
  expect(snap.count).toBe(total);
  for (const [code, n] of Object.entries(outcomes)) expect(snap.outcomes[Number(code)]).toBe(n);
  expect(snap.sum).toBeGreaterThan(0);
}

describe('admitInstrumented', () => {
  it('Kernel family: same codes as tryAdmitRaw, one record per call', () => {
    const k = new TwoLaneKernel(new TotalSupplyInvariant(), { indexCapacity: 64 });
    const h = new LatencyHistogram();
    expect(k.admitInstrumented(id(1), [], i128le(5n), h)).toBe(AdmitCode.Ok);
    expect(k.admitInstrumented(id(1), [], i128le(5n), h)).toBe(AdmitCode.DuplicateFact);
    expect(k.admitInstrumented(id(2), [id(99)], i128le(5n), h)).toBe(AdmitCode.CausalityViolation);
    expect(k.size).toBe(1);
    expectRecorded(h, { [AdmitCode.Ok]: 1, [AdmitCode.DuplicateFact]: 1, [AdmitCode.CausalityViolation]: 1 });
  });

  it('TenantKernel, MultiKernel and DualKernel record their outcomes too', () => {
    const h = new LatencyHistogram();
    const tenants = new TenantKernel(new TotalSupplyInvariant(), { maxTenants: 2 });
    tenants.registerTenant(1);
    expect(tenants.admitInstrumented(1, id(1), [], i128le(1n), h)).toBe(AdmitCode.Ok);
    expect(tenants.admitInstrumented(7, id(2), [], i128le(1n), h)).toBe(AdmitCode.UnknownTenant);

    const multi = new MultiKernel();
    multi.register(new TotalSupplyInvariant());
    multi.register(new GCounterInvariant());
    expect(multi.admitInstrumented(id(3), [], [i128le(1n), u64le(2n)], h)).toBe(AdmitCode.Ok);
    expect(multi.admitInstrumented(id(3), [], [i128le(1n), u64le(2n)], h)).toBe(AdmitCode.DuplicateFact);

    const dual = new DualKernel(new TotalSupplyInvariant(), undefined, new GCounterInvariant(), undefined);
    expect(dual.admitInstrumented(id(4), [], i128le(1n), u64le(1n), h)).toBe(AdmitCode.Ok);
    expectRecorded(h, { [AdmitCode.Ok]: 3, [AdmitCode.UnknownTenant]: 1, [AdmitCode.DuplicateFact]: 1 });
  });
});
